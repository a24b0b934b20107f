//! Turns an app's frames into RTMP media messages: sequence headers when the codec
//! configuration appears or changes, `@setDataFrame onMetaData` before the first media,
//! and FLV-layout audio/video bodies on one clock.
//!
//! It runs on the caller's thread, so a bad frame is refused right away with a
//! [`MediaError`] and never reaches (or breaks) the connection.

use bytes::{BufMut, Bytes, BytesMut};
use rml_rtmp::rml_amf0::{self, Amf0Value};

use super::clock::MediaClock;
use crate::media::flv::{self, PACKET_CODED, PACKET_SEQUENCE_HEADER};
use crate::media::{
    AudioFormat, AudioFrame, AudioSpecificConfig, AvcDecoderConfig, MediaError, StreamMetadata,
    VideoFormat, VideoFrame, annexb_nal_units, avcc_nal_units, nal_type, split_adts,
};

/// What a media message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// A video message (type 9).
    Video,
    /// An audio message (type 8).
    Audio,
    /// An AMF0 data message (type 18).
    Data,
}

/// One RTMP media message, ready for the chunk writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaMessage {
    /// Audio, video or data.
    pub kind: MessageKind,
    /// RTMP timestamp in milliseconds.
    pub timestamp: u32,
    /// FLV tag header bytes (5 for video, 2 for audio, 0 for data).
    pub header: Bytes,
    /// The payload after the header.
    pub body: Bytes,
    /// True for a coded frame (not a sequence header or metadata).
    pub is_frame: bool,
    /// A video keyframe (IDR): a decoder can start here.
    pub keyframe: bool,
    /// A video frame no other frame refers to (every slice has `nal_ref_idc` 0: a
    /// non-reference B- or P-frame): dropping it harms no other picture.
    pub disposable: bool,
}

impl MediaMessage {
    /// Size of the message body on the wire.
    pub fn len(&self) -> usize {
        self.header.len() + self.body.len()
    }

    /// Whether the message carries no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Frames in, media messages out.
#[derive(Debug)]
pub struct Packetizer {
    clock: MediaClock,
    metadata: StreamMetadata,
    metadata_sent: bool,
    video_config: Option<AvcDecoderConfig>,
    video_config_sent: bool,
    audio_config: Option<AudioSpecificConfig>,
    audio_config_sent: bool,
    /// Channels announced in the last Opus sequence start.
    opus_channels: Option<u8>,
}

impl Packetizer {
    /// A packetizer whose clock starts at `origin_us` (or at the first frame).
    pub fn new(origin_us: Option<i64>, metadata: StreamMetadata) -> Self {
        Packetizer {
            clock: MediaClock::new(origin_us),
            metadata,
            metadata_sent: false,
            video_config: None,
            video_config_sent: false,
            audio_config: None,
            audio_config_sent: false,
            opus_channels: None,
        }
    }

    /// Sets the H.264 configuration explicitly; it is sent before the next video frame.
    pub fn set_video_config(&mut self, config: AvcDecoderConfig) {
        if self.video_config.as_ref() != Some(&config) {
            self.video_config = Some(config);
            self.video_config_sent = false;
        }
    }

    /// Sets the AAC configuration explicitly; it is sent before the next audio frame.
    pub fn set_audio_config(&mut self, config: AudioSpecificConfig) {
        if self.audio_config.as_ref() != Some(&config) {
            self.audio_config = Some(config);
            self.audio_config_sent = false;
        }
    }

    /// Messages for one video frame (sequence header and metadata first when due).
    pub fn video(&mut self, frame: &VideoFrame) -> Result<Vec<MediaMessage>, MediaError> {
        let body = match frame.format {
            VideoFormat::AnnexB => self.annexb_to_avcc(&frame.data)?,
            VideoFormat::Avcc => {
                self.scan_avcc_parameter_sets(&frame.data)?;
                frame.data.clone()
            }
        };
        if self.video_config.is_none() {
            return Err(MediaError::MissingVideoConfig);
        }
        let timing = self.clock.video(frame.pts_us, frame.dts_us)?;
        let length_size = match frame.format {
            VideoFormat::AnnexB => 4,
            VideoFormat::Avcc => self
                .video_config
                .as_ref()
                .map_or(4, |c| c.nal_length_size()),
        };
        let mut out = Vec::with_capacity(3);
        self.push_pending_configs(&mut out, timing.dts_ms, true, false);
        out.push(MediaMessage {
            kind: MessageKind::Video,
            timestamp: timing.dts_ms,
            header: Bytes::copy_from_slice(&flv::video_tag_header(
                frame.keyframe,
                PACKET_CODED,
                timing.composition_ms,
            )),
            disposable: !frame.keyframe && is_disposable(&body, length_size),
            body,
            is_frame: true,
            keyframe: frame.keyframe,
        });
        Ok(out)
    }

    /// Messages for one audio frame; an ADTS buffer may yield several frames.
    pub fn audio(&mut self, frame: &AudioFrame) -> Result<Vec<MediaMessage>, MediaError> {
        let mut out = Vec::with_capacity(3);
        match frame.format {
            AudioFormat::AacRaw => {
                if self.audio_config.is_none() {
                    return Err(MediaError::MissingAudioConfig);
                }
                let ts = self.clock.audio(frame.pts_us)?;
                self.push_audio(&mut out, ts, frame.data.clone());
            }
            AudioFormat::Opus => {
                let Some(&toc) = frame.data.first() else {
                    return Err(MediaError::invalid("Opus packet", "empty"));
                };
                let ts = self.clock.audio(frame.pts_us)?;
                self.push_pending_configs(&mut out, ts, false, false);
                // The TOC's stereo flag (RFC 6716 §3.1) gives the OpusHead's channels.
                let channels = if toc & 0x04 != 0 { 2 } else { 1 };
                if self.opus_channels != Some(channels) {
                    self.opus_channels = Some(channels);
                    out.push(MediaMessage {
                        kind: MessageKind::Audio,
                        timestamp: ts,
                        header: Bytes::copy_from_slice(&flv::opus_tag_header(
                            flv::EX_AUDIO_SEQUENCE_START,
                        )),
                        body: Bytes::copy_from_slice(&flv::opus_head(channels)),
                        is_frame: false,
                        keyframe: false,
                        disposable: false,
                    });
                }
                out.push(MediaMessage {
                    kind: MessageKind::Audio,
                    timestamp: ts,
                    header: Bytes::copy_from_slice(&flv::opus_tag_header(
                        flv::EX_AUDIO_CODED_FRAMES,
                    )),
                    body: frame.data.clone(),
                    is_frame: true,
                    keyframe: false,
                    disposable: false,
                });
            }
            AudioFormat::AacAdts => {
                let frames = split_adts(&frame.data)?;
                let mut pts_us = frame.pts_us;
                for adts in frames {
                    let rate = i64::from(adts.config.sample_rate().max(1));
                    self.set_audio_config(adts.config);
                    let ts = self.clock.audio(pts_us)?;
                    self.push_audio(&mut out, ts, adts.payload);
                    pts_us += 1024 * 1_000_000 / rate;
                }
            }
        }
        Ok(out)
    }

    fn push_audio(&mut self, out: &mut Vec<MediaMessage>, ts: u32, body: Bytes) {
        self.push_pending_configs(out, ts, false, true);
        out.push(MediaMessage {
            kind: MessageKind::Audio,
            timestamp: ts,
            header: Bytes::copy_from_slice(&flv::audio_tag_header(PACKET_CODED)),
            body,
            is_frame: true,
            keyframe: false,
            disposable: false,
        });
    }

    fn push_pending_configs(
        &mut self,
        out: &mut Vec<MediaMessage>,
        ts: u32,
        video: bool,
        audio: bool,
    ) {
        if !self.metadata_sent {
            self.metadata_sent = true;
            out.push(self.metadata_message(ts));
        }
        if video
            && !self.video_config_sent
            && let Some(config) = &self.video_config
        {
            out.push(MediaMessage {
                kind: MessageKind::Video,
                timestamp: ts,
                header: Bytes::copy_from_slice(&flv::video_tag_header(
                    true,
                    PACKET_SEQUENCE_HEADER,
                    0,
                )),
                body: config.record().clone(),
                is_frame: false,
                keyframe: false,
                disposable: false,
            });
            self.video_config_sent = true;
        }
        if audio
            && !self.audio_config_sent
            && let Some(config) = &self.audio_config
        {
            out.push(MediaMessage {
                kind: MessageKind::Audio,
                timestamp: ts,
                header: Bytes::copy_from_slice(&flv::audio_tag_header(PACKET_SEQUENCE_HEADER)),
                body: config.bytes().clone(),
                is_frame: false,
                keyframe: false,
                disposable: false,
            });
            self.audio_config_sent = true;
        }
    }

    fn metadata_message(&self, ts: u32) -> MediaMessage {
        let meta = &self.metadata;
        let mut props = std::collections::HashMap::new();
        let mut num = |key: &str, value: Option<f64>| {
            if let Some(v) = value {
                props.insert(key.to_string(), Amf0Value::Number(v));
            }
        };
        let dims = self.video_config.as_ref().and_then(|c| c.dimensions().ok());
        num("duration", Some(0.0));
        num("width", meta.width.or(dims.map(|d| d.0)).map(f64::from));
        num("height", meta.height.or(dims.map(|d| d.1)).map(f64::from));
        num(
            "framerate",
            meta.frame_rate
                .or_else(|| self.video_config.as_ref().and_then(|c| c.frame_rate())),
        );
        num("videodatarate", meta.video_bitrate_kbps);
        num("audiodatarate", meta.audio_bitrate_kbps);
        num(
            "audiosamplerate",
            meta.audio_sample_rate
                .or(self.audio_config.as_ref().map(|c| c.sample_rate()))
                .map(f64::from),
        );
        num("videocodecid", Some(f64::from(flv::CODEC_ID_AVC)));
        num("audiocodecid", Some(f64::from(flv::SOUND_FORMAT_AAC)));
        num("audiosamplesize", Some(16.0));
        let stereo = meta
            .stereo
            .or(self.audio_config.as_ref().map(|c| c.channels() >= 2));
        if let Some(stereo) = stereo {
            props.insert("stereo".into(), Amf0Value::Boolean(stereo));
        }
        props.insert(
            "encoder".into(),
            Amf0Value::Utf8String(concat!("StreamHub ", env!("CARGO_PKG_VERSION")).into()),
        );
        let values = vec![
            Amf0Value::Utf8String("@setDataFrame".into()),
            Amf0Value::Utf8String("onMetaData".into()),
            Amf0Value::Object(props),
        ];
        // Serializing numbers, booleans and short strings cannot fail.
        let body = rml_amf0::serialize(&values).unwrap_or_default();
        MediaMessage {
            kind: MessageKind::Data,
            timestamp: ts,
            header: Bytes::new(),
            body: Bytes::from(body),
            is_frame: false,
            keyframe: false,
            disposable: false,
        }
    }

    /// Converts Annex-B to 4-byte AVCC, taking SPS/PPS (and AUDs) out of the frame.
    fn annexb_to_avcc(&mut self, data: &[u8]) -> Result<Bytes, MediaError> {
        let mut sps = Vec::new();
        let mut pps = Vec::new();
        let mut out = BytesMut::with_capacity(data.len() + 16);
        for nal in annexb_nal_units(data) {
            match nal_type(nal) {
                crate::media::NAL_SPS => sps.push(Bytes::copy_from_slice(nal)),
                crate::media::NAL_PPS => pps.push(Bytes::copy_from_slice(nal)),
                crate::media::NAL_AUD => {}
                _ => {
                    out.put_u32(nal.len() as u32);
                    out.put_slice(nal);
                }
            }
        }
        if out.is_empty() && sps.is_empty() {
            return Err(MediaError::invalid(
                "Annex-B frame",
                "no NAL units (missing start codes?)",
            ));
        }
        self.update_parameter_sets(sps, pps)?;
        Ok(out.freeze())
    }

    fn scan_avcc_parameter_sets(&mut self, data: &[u8]) -> Result<(), MediaError> {
        let length_size = self
            .video_config
            .as_ref()
            .map_or(4, |c| c.nal_length_size());
        let mut sps = Vec::new();
        let mut pps = Vec::new();
        for nal in avcc_nal_units(data, length_size)? {
            match nal_type(nal) {
                crate::media::NAL_SPS => sps.push(Bytes::copy_from_slice(nal)),
                crate::media::NAL_PPS => pps.push(Bytes::copy_from_slice(nal)),
                _ => {}
            }
        }
        self.update_parameter_sets(sps, pps)
    }

    fn update_parameter_sets(
        &mut self,
        sps: Vec<Bytes>,
        pps: Vec<Bytes>,
    ) -> Result<(), MediaError> {
        if sps.is_empty() && pps.is_empty() {
            return Ok(());
        }
        let current = self.video_config.as_ref();
        let sps = if sps.is_empty() {
            current.map(|c| c.sps().to_vec()).unwrap_or_default()
        } else {
            sps
        };
        let pps = if pps.is_empty() {
            current.map(|c| c.pps().to_vec()).unwrap_or_default()
        } else {
            pps
        };
        if sps.is_empty() || pps.is_empty() {
            return Ok(()); // wait for the other half
        }
        if let Some(c) = current
            && c.sps() == sps.as_slice()
            && c.pps() == pps.as_slice()
        {
            return Ok(());
        }
        self.set_video_config(AvcDecoderConfig::from_parameter_sets(&sps, &pps)?);
        Ok(())
    }
}

/// Whether an AVCC access unit is disposable: it has slices and none of them is used for
/// reference (`nal_ref_idc` 0, ITU-T H.264 §7.4.1). Unreadable lengths make it not
/// disposable (never drop what cannot be judged).
fn is_disposable(avcc: &[u8], length_size: usize) -> bool {
    let Ok(units) = avcc_nal_units(avcc, length_size) else {
        return false;
    };
    let mut slices = 0;
    for nal in units {
        let Some(&header) = nal.first() else {
            continue;
        };
        if (1..=5).contains(&(header & 0x1f)) {
            if header & 0x60 != 0 {
                return false;
            }
            slices += 1;
        }
    }
    slices > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: &[u8] = &[
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03,
        0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2d, 0x96,
    ];
    const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

    fn annexb_keyframe() -> Vec<u8> {
        let mut data = vec![0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1];
        data.extend_from_slice(SPS);
        data.extend_from_slice(&[0, 0, 0, 1]);
        data.extend_from_slice(PPS);
        data.extend_from_slice(&[0, 0, 1, 0x65, 0x88, 0x84]);
        data
    }

    #[test]
    fn annexb_keyframe_yields_metadata_sequence_header_and_avcc_frame() {
        let mut p = Packetizer::new(None, StreamMetadata::default());
        let frame = VideoFrame::new(annexb_keyframe(), VideoFormat::AnnexB, true, 1_000_000);
        let msgs = p.video(&frame).unwrap();
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[0].kind, MessageKind::Data);
        assert_eq!(msgs[1].header[..], [0x17, 0, 0, 0, 0]);
        let config = AvcDecoderConfig::parse(&msgs[1].body).unwrap();
        assert_eq!(config.sps()[0][..], *SPS);
        assert_eq!(msgs[2].header[..], [0x17, 1, 0, 0, 0]);
        assert_eq!(msgs[2].body[..], [0, 0, 0, 3, 0x65, 0x88, 0x84]);
        assert!(msgs[2].is_frame);
        // Metadata carries the size read from the SPS.
        let values = rml_amf0::deserialize(&mut std::io::Cursor::new(&msgs[0].body[..])).unwrap();
        let Amf0Value::Object(props) = &values[2] else {
            panic!("no object")
        };
        assert_eq!(props.get("width"), Some(&Amf0Value::Number(640.0)));
        assert_eq!(props.get("height"), Some(&Amf0Value::Number(360.0)));
        // The same parameter sets again do not resend the sequence header.
        let frame = VideoFrame::new(annexb_keyframe(), VideoFormat::AnnexB, true, 1_033_000);
        let msgs = p.video(&frame).unwrap();
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].timestamp, 33);
    }

    #[test]
    fn changed_parameter_sets_resend_the_sequence_header() {
        let mut p = Packetizer::new(Some(0), StreamMetadata::default());
        p.video(&VideoFrame::new(
            annexb_keyframe(),
            VideoFormat::AnnexB,
            true,
            0,
        ))
        .unwrap();
        let mut changed = annexb_keyframe();
        let pos = changed.len() - 7;
        changed[pos] ^= 0x01; // last PPS byte
        let msgs = p
            .video(&VideoFrame::new(changed, VideoFormat::AnnexB, true, 40_000))
            .unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].header[1], PACKET_SEQUENCE_HEADER);
        assert_eq!(msgs[0].timestamp, 40);
    }

    #[test]
    fn video_before_any_config_is_refused() {
        let mut p = Packetizer::new(None, StreamMetadata::default());
        let err = p
            .video(&VideoFrame::new(
                vec![0, 0, 0, 2, 0x41, 0],
                VideoFormat::Avcc,
                false,
                0,
            ))
            .unwrap_err();
        assert_eq!(err, MediaError::MissingVideoConfig);
        let err = p
            .video(&VideoFrame::new(
                vec![1, 2, 3],
                VideoFormat::AnnexB,
                false,
                0,
            ))
            .unwrap_err();
        assert!(matches!(err, MediaError::Invalid { .. }));
    }

    #[test]
    fn avcc_frames_pass_through_untouched_with_composition_time() {
        let mut p = Packetizer::new(Some(0), StreamMetadata::default());
        let config = AvcDecoderConfig::from_parameter_sets(
            &[Bytes::from_static(SPS)],
            &[Bytes::from_static(PPS)],
        )
        .unwrap();
        p.set_video_config(config);
        let data = Bytes::from_static(&[0, 0, 0, 2, 0x41, 0x9a]);
        let frame =
            VideoFrame::new(data.clone(), VideoFormat::Avcc, false, 100_000).with_dts(33_000);
        let msgs = p.video(&frame).unwrap();
        let last = msgs.last().unwrap();
        assert_eq!(last.body, data);
        assert_eq!(last.header[..], [0x27, 1, 0, 0, 67]);
        assert_eq!(last.timestamp, 33);
    }

    #[test]
    fn opus_goes_out_as_enhanced_rtmp_with_an_opus_head_first() {
        let mut p = Packetizer::new(Some(0), StreamMetadata::default());
        let stereo = Bytes::from_static(&[0xfc, 0xff, 0xfe]);
        let msgs = p
            .audio(&AudioFrame::new(stereo.clone(), AudioFormat::Opus, 20_000))
            .unwrap();
        let audio: Vec<_> = msgs
            .iter()
            .filter(|m| m.kind == MessageKind::Audio)
            .collect();
        assert_eq!(audio.len(), 2, "sequence start, then the packet");
        assert_eq!(audio[0].header[..], [0x90, b'O', b'p', b'u', b's']);
        assert_eq!(&audio[0].body[..8], b"OpusHead");
        assert_eq!(audio[0].body[9], 2, "stereo from the TOC");
        assert_eq!(audio[1].header[..], [0x91, b'O', b'p', b'u', b's']);
        assert_eq!(audio[1].body, stereo);
        assert_eq!(audio[1].timestamp, 20);
        // The same layout again: just the packet. Mono: a new OpusHead first.
        let msgs = p
            .audio(&AudioFrame::new(stereo, AudioFormat::Opus, 40_000))
            .unwrap();
        assert_eq!(msgs.len(), 1);
        let msgs = p
            .audio(&AudioFrame::new(
                vec![0xf8, 0xff],
                AudioFormat::Opus,
                60_000,
            ))
            .unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].body[9], 1);
        assert!(
            p.audio(&AudioFrame::new(Vec::new(), AudioFormat::Opus, 80_000))
                .is_err()
        );
    }

    #[test]
    fn adts_buffer_splits_into_frames_with_derived_config() {
        let mut p = Packetizer::new(Some(0), StreamMetadata::default());
        let mut data = Vec::new();
        for payload in [[1u8, 2], [3, 4]] {
            // AAC-LC, 48 kHz (index 3), stereo, length 9.
            data.extend_from_slice(&[0xff, 0xf1, 0x4c, 0x80, 0x01, 0x3f, 0xfc]);
            data.extend_from_slice(&payload);
        }
        let msgs = p
            .audio(&AudioFrame::new(data, AudioFormat::AacAdts, 0))
            .unwrap();
        // metadata, sequence header, frame, frame
        assert_eq!(msgs.len(), 4);
        assert_eq!(msgs[1].header[..], [0xaf, 0]);
        assert_eq!(msgs[1].body[..], [0x11, 0x90]);
        assert_eq!(msgs[2].body[..], [1, 2]);
        assert_eq!(msgs[3].timestamp, 21, "1024 samples at 48 kHz later");
    }

    #[test]
    fn raw_aac_without_config_is_refused() {
        let mut p = Packetizer::new(None, StreamMetadata::default());
        let err = p
            .audio(&AudioFrame::new(vec![1, 2], AudioFormat::AacRaw, 0))
            .unwrap_err();
        assert_eq!(err, MediaError::MissingAudioConfig);
    }
}
