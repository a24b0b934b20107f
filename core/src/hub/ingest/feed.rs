//! Turns a publisher's RTMP audio and video messages into what viewers get: H.264 access
//! units cut into RTP payloads once (SPS/PPS in front of every keyframe, NAL units
//! untouched), and Opus packets (AAC transcoded, Opus passed through).

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use rtc::rtp::codec::h264::H264Payloader;
use rtc::rtp::packetizer::Payloader;
use tracing::{debug, warn};

use crate::hub::stream::{AudioInfo, AudioUnit, LiveStream, VideoInfo, VideoUnit};
use crate::media::flv::{FlvPayload, TAG_AUDIO, TAG_VIDEO, parse_tag_body};
use crate::media::{
    AvcDecoderConfig, MediaError, NAL_IDR, NAL_PPS, NAL_SPS, avcc_nal_units, nal_type,
};

use super::audio::AudioPath;
use super::timestamps::Unwrapper;

/// Largest RTP payload sent to viewers (leaves room for SRTP and header extensions).
pub const RTP_PAYLOAD_MTU: usize = 1200;

/// One publisher's media, on its way to the stream.
pub struct Feed {
    stream: Arc<LiveStream>,
    clock: Unwrapper,
    video_config: Option<AvcDecoderConfig>,
    payloader: H264Payloader,
    audio: AudioPath,
    opus_bitrate: u32,
}

/// The H.264 profile name for a `profile_idc` and its constraint flags.
pub fn profile_name(profile_idc: u8, constraints: u8) -> &'static str {
    match profile_idc {
        66 if constraints & 0x40 != 0 => "constrained baseline",
        66 => "baseline",
        77 => "main",
        88 => "extended",
        100 => "high",
        110 => "high 10",
        122 => "high 4:2:2",
        244 => "high 4:4:4",
        _ => "other",
    }
}

impl Feed {
    /// A feed into `stream`; AAC is transcoded to Opus at `opus_bitrate` bits per second.
    pub fn new(stream: Arc<LiveStream>, opus_bitrate: u32) -> Self {
        Feed {
            stream,
            clock: Unwrapper::default(),
            video_config: None,
            payloader: H264Payloader::default(),
            audio: AudioPath::None,
            opus_bitrate,
        }
    }

    /// The stream fed.
    pub fn stream(&self) -> &Arc<LiveStream> {
        &self.stream
    }

    /// One RTMP video message body with its timestamp.
    pub fn video(&mut self, timestamp_ms: u32, body: Bytes) -> Result<(), MediaError> {
        self.stream.count_input(body.len());
        let dts_ms = self.clock.unwrap(timestamp_ms);
        match parse_tag_body(TAG_VIDEO, timestamp_ms, body)? {
            FlvPayload::VideoConfig(config) => {
                let sps = &config.sps()[0];
                let (width, height) = config.dimensions().unwrap_or((0, 0));
                let constraints = sps.get(2).copied().unwrap_or(0);
                let info = VideoInfo {
                    codec: "h264".into(),
                    profile: profile_name(config.profile_idc(), constraints).into(),
                    profile_level_id: format!(
                        "{:02x}{:02x}{:02x}",
                        config.profile_idc(),
                        constraints,
                        config.level_idc()
                    ),
                    width,
                    height,
                };
                debug!(stream = self.stream.name(), ?info, "video configuration");
                self.stream.set_video_info(info);
                self.video_config = Some(config);
                Ok(())
            }
            FlvPayload::Video(frame) => {
                let Some(config) = &self.video_config else {
                    return Err(MediaError::MissingVideoConfig);
                };
                let cts_ms = (frame.pts_us - frame.dts_us) / 1000;
                let pts_90k = (dts_ms + cts_ms) * 90;
                let (annexb, keyframe) = to_annexb(&frame.data, config)?;
                let payloads = self
                    .payloader
                    .payload(RTP_PAYLOAD_MTU, &annexb)
                    .map_err(|e| MediaError::invalid("H.264 access unit", e.to_string()))?;
                if payloads.is_empty() {
                    return Ok(());
                }
                self.stream.publish_video(VideoUnit {
                    pts_90k,
                    keyframe,
                    payloads,
                    size: annexb.len(),
                });
                Ok(())
            }
            FlvPayload::VideoEndOfSequence => Ok(()),
            _ => Ok(()),
        }
    }

    /// One RTMP audio message body with its timestamp.
    pub fn audio(&mut self, timestamp_ms: u32, body: Bytes) -> Result<(), MediaError> {
        self.stream.count_input(body.len());
        let pts_ms = self.clock.unwrap(timestamp_ms);
        if let Some(opus) = super::enhanced::parse_opus(&body)? {
            return self.opus(pts_ms, opus);
        }
        match parse_tag_body(TAG_AUDIO, timestamp_ms, body)? {
            FlvPayload::AudioConfig(config) => {
                let path = AudioPath::aac(&config, self.opus_bitrate)?;
                if let Some(channels) = path.channels() {
                    self.stream.set_audio_info(AudioInfo {
                        codec: "opus".into(),
                        source: "aac".into(),
                        sample_rate: 48_000,
                        channels,
                    });
                }
                self.audio = path;
                Ok(())
            }
            FlvPayload::Audio(frame) => {
                let packets = self.audio.transcode(&frame.data, pts_ms * 1000)?;
                for packet in packets {
                    self.stream.publish_audio(AudioUnit {
                        pts_48k: packet.pts_us * 48 / 1000,
                        payload: packet.data,
                    });
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn opus(&mut self, pts_ms: i64, opus: super::enhanced::OpusMessage) -> Result<(), MediaError> {
        match opus {
            super::enhanced::OpusMessage::Header { channels } => {
                self.audio = AudioPath::Opus;
                self.stream.set_audio_info(AudioInfo {
                    codec: "opus".into(),
                    source: "opus".into(),
                    sample_rate: 48_000,
                    channels: channels.clamp(1, 2),
                });
            }
            super::enhanced::OpusMessage::Packet(data) => {
                if !matches!(self.audio, AudioPath::Opus) {
                    // No OpusHead came first: assume stereo, as WebRTC does.
                    warn!(
                        stream = self.stream.name(),
                        "Opus before its sequence start"
                    );
                    self.audio = AudioPath::Opus;
                }
                self.stream.publish_audio(AudioUnit {
                    pts_48k: pts_ms * 48,
                    payload: data,
                });
            }
        }
        Ok(())
    }
}

/// An AVCC access unit as Annex B, with the configuration's SPS/PPS in front of an IDR
/// that does not carry its own. Returns the data and whether it is a keyframe.
pub fn to_annexb(avcc: &[u8], config: &AvcDecoderConfig) -> Result<(Bytes, bool), MediaError> {
    let nals: Vec<&[u8]> = avcc_nal_units(avcc, config.nal_length_size())?.collect();
    let keyframe = nals.iter().any(|nal| nal_type(nal) == NAL_IDR);
    let has_parameter_sets = nals.iter().any(|nal| nal_type(nal) == NAL_SPS)
        && nals.iter().any(|nal| nal_type(nal) == NAL_PPS);
    let mut out = BytesMut::with_capacity(avcc.len() + 64);
    if keyframe && !has_parameter_sets {
        for set in config.sps().iter().chain(config.pps()) {
            out.put_slice(&[0, 0, 0, 1]);
            out.put_slice(set);
        }
    }
    for nal in nals {
        out.put_slice(&[0, 0, 0, 1]);
        out.put_slice(nal);
    }
    Ok((out.freeze(), keyframe))
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("stream", &self.stream)
            .field("audio", &self.audio)
            .field("opus_bitrate", &self.opus_bitrate)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xbf, 0xe5, 0x84];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    fn avcc(nals: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for nal in nals {
            out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            out.extend_from_slice(nal);
        }
        out
    }

    fn config() -> AvcDecoderConfig {
        AvcDecoderConfig::from_parameter_sets(
            &[Bytes::from_static(SPS)],
            &[Bytes::from_static(PPS)],
        )
        .expect("config")
    }

    #[test]
    fn keyframes_get_parameter_sets_and_other_frames_stay_as_they_are() {
        let idr = [0x65, 0x88, 0x80, 0x40];
        let (out, keyframe) = to_annexb(&avcc(&[&idr]), &config()).expect("idr");
        assert!(keyframe);
        let mut expected = vec![0, 0, 0, 1];
        expected.extend_from_slice(SPS);
        expected.extend_from_slice(&[0, 0, 0, 1]);
        expected.extend_from_slice(PPS);
        expected.extend_from_slice(&[0, 0, 0, 1]);
        expected.extend_from_slice(&idr);
        assert_eq!(&out[..], &expected[..]);

        let p = [0x41, 0x9a, 0x00];
        let sei = [0x06, 0x05, 0x01, 0x00, 0x80];
        let (out, keyframe) = to_annexb(&avcc(&[&sei, &p]), &config()).expect("p");
        assert!(!keyframe);
        assert_eq!(
            &out[..],
            &[0, 0, 0, 1, 6, 5, 1, 0, 0x80, 0, 0, 0, 1, 0x41, 0x9a, 0][..]
        );
    }

    #[test]
    fn an_idr_with_its_own_parameter_sets_is_not_given_a_second_copy() {
        let idr = [0x65, 0x88];
        let (out, _) = to_annexb(&avcc(&[SPS, PPS, &idr]), &config()).expect("idr");
        assert_eq!(out.len(), 3 * 4 + SPS.len() + PPS.len() + idr.len());
    }

    #[test]
    fn a_truncated_access_unit_is_an_error() {
        let mut data = avcc(&[&[0x65, 0x88, 0x80]]);
        data.truncate(5);
        assert!(to_annexb(&data, &config()).is_err());
    }

    #[test]
    fn profile_names() {
        assert_eq!(profile_name(66, 0xc0), "constrained baseline");
        assert_eq!(profile_name(66, 0), "baseline");
        assert_eq!(profile_name(100, 0), "high");
    }

    #[tokio::test]
    async fn video_messages_become_payloaded_units_with_90khz_times() {
        let stream = Arc::new(LiveStream::new("t"));
        let mut feed = Feed::new(stream.clone(), 64_000);
        let mut sub = stream.subscribe();
        let mut header = vec![0x17, 0, 0, 0, 0];
        header.extend_from_slice(config().record());
        feed.video(1000, Bytes::from(header)).expect("config");
        let mut body = vec![0x17, 1, 0, 0, 40];
        body.extend(avcc(&[&[0x65, 0x88, 0x80, 0x40]]));
        feed.video(1000, Bytes::from(body)).expect("frame");
        let mut body = vec![0x27, 1, 0, 0, 0];
        body.extend(avcc(&[&[0x41, 0x9a]]));
        feed.video(1033, Bytes::from(body)).expect("frame");
        let mut got = Vec::new();
        while let Ok(crate::hub::stream::MediaUnit::Video(unit)) = sub.live.try_recv() {
            got.push((unit.pts_90k, unit.keyframe, unit.payloads.len()));
        }
        // The first timestamp is the origin; the IDR's composition offset is 40 ms.
        // SPS+PPS travel in one STAP-A before the IDR.
        assert_eq!(got, vec![(3600, true, 2), (2970, false, 1)]);
        let (video, _) = stream.info();
        assert_eq!(video.expect("info").profile, "constrained baseline");
    }

    #[test]
    fn a_frame_before_the_sequence_header_is_refused() {
        let stream = Arc::new(LiveStream::new("t"));
        let mut feed = Feed::new(stream, 64_000);
        let mut body = vec![0x27, 1, 0, 0, 0];
        body.extend(avcc(&[&[0x41, 0x9a]]));
        assert!(matches!(
            feed.video(0, Bytes::from(body)),
            Err(MediaError::MissingVideoConfig)
        ));
    }
}
