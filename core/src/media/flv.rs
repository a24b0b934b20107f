//! FLV: reading H.264/AAC files tag by tag, and the tag-body layout that RTMP audio and
//! video messages share with FLV (Adobe FLV spec v10.1, annex E).

use std::io::{self, Read};

use bytes::Bytes;
use rml_rtmp::rml_amf0::Amf0Value;

use super::{
    AudioFormat, AudioFrame, AudioSpecificConfig, AvcDecoderConfig, MediaError, StreamMetadata,
};
use super::{VideoFormat, VideoFrame};

/// FLV/RTMP video codec id of H.264 (AVC).
pub const CODEC_ID_AVC: u8 = 7;
/// FLV/RTMP sound format of AAC.
pub const SOUND_FORMAT_AAC: u8 = 10;
/// AVCPacketType / AACPacketType of a sequence header.
pub const PACKET_SEQUENCE_HEADER: u8 = 0;
/// AVCPacketType / AACPacketType of coded media.
pub const PACKET_CODED: u8 = 1;
/// AVCPacketType of an end-of-sequence marker.
pub const PACKET_END_OF_SEQUENCE: u8 = 2;

/// FLV tag type of audio (also the RTMP audio message type).
pub const TAG_AUDIO: u8 = 8;
/// FLV tag type of video (also the RTMP video message type).
pub const TAG_VIDEO: u8 = 9;
const TAG_SCRIPT: u8 = 18;
const TAG_HEADER_LEN: usize = 11;
/// Largest tag body an FLV tag header can describe (24-bit size).
const MAX_TAG_SIZE: usize = 0xff_ffff;

/// The five bytes that start an H.264 video tag body.
pub fn video_tag_header(keyframe: bool, packet_type: u8, composition_time_ms: i32) -> [u8; 5] {
    let frame_type: u8 = if keyframe { 1 } else { 2 };
    let cts = composition_time_ms.to_be_bytes();
    [
        (frame_type << 4) | CODEC_ID_AVC,
        packet_type,
        cts[1],
        cts[2],
        cts[3],
    ]
}

/// The two bytes that start an AAC audio tag body. AAC always declares 44 kHz,
/// 16-bit stereo here; the real values are in the AudioSpecificConfig.
pub fn audio_tag_header(packet_type: u8) -> [u8; 2] {
    [(SOUND_FORMAT_AAC << 4) | 0x0f, packet_type]
}

/// Enhanced RTMP `SoundFormat` that announces an extended audio header.
pub const SOUND_FORMAT_EX_HEADER: u8 = 9;
/// Enhanced RTMP `AudioPacketType`: sequence start (codec configuration).
pub const EX_AUDIO_SEQUENCE_START: u8 = 0;
/// Enhanced RTMP `AudioPacketType`: coded frames.
pub const EX_AUDIO_CODED_FRAMES: u8 = 1;
/// Enhanced RTMP `AudioPacketType`: sequence end.
pub const EX_AUDIO_SEQUENCE_END: u8 = 2;
/// The FourCC of Opus in Enhanced RTMP.
pub const FOURCC_OPUS: [u8; 4] = *b"Opus";

/// The five bytes that start an Enhanced RTMP Opus audio body.
pub fn opus_tag_header(packet_type: u8) -> [u8; 5] {
    let [a, b, c, d] = FOURCC_OPUS;
    [
        (SOUND_FORMAT_EX_HEADER << 4) | (packet_type & 0x0f),
        a,
        b,
        c,
        d,
    ]
}

/// An OpusHead (RFC 7845 §5.1) for `channels` channels at 48 kHz with the usual 312
/// samples of pre-skip: the body of an Enhanced RTMP Opus sequence start.
pub fn opus_head(channels: u8) -> [u8; 19] {
    let mut head = [0u8; 19];
    head[..8].copy_from_slice(b"OpusHead");
    head[8] = 1; // version
    head[9] = channels;
    head[10..12].copy_from_slice(&312u16.to_le_bytes());
    head[12..16].copy_from_slice(&48_000u32.to_le_bytes());
    // Output gain 0, channel mapping family 0 (mono or stereo).
    head
}

/// An error while reading an FLV file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlvError {
    /// Reading the underlying file failed.
    #[error("reading FLV: {0}")]
    Io(#[from] io::Error),
    /// The file does not start with an FLV header.
    #[error("not an FLV file (no FLV signature)")]
    NotFlv,
    /// The file ends inside a tag.
    #[error("truncated FLV: file ends inside the tag at byte {offset}")]
    Truncated {
        /// Byte offset of the incomplete tag.
        offset: u64,
    },
    /// A tag's body is not valid media.
    #[error("bad FLV tag at byte {offset}: {source}")]
    Media {
        /// Byte offset of the tag.
        offset: u64,
        /// What was wrong with it.
        source: MediaError,
    },
}

/// What one FLV tag carries.
#[derive(Debug, Clone, PartialEq)]
pub enum FlvPayload {
    /// An AVC sequence header.
    VideoConfig(AvcDecoderConfig),
    /// One H.264 access unit in AVCC form.
    Video(VideoFrame),
    /// An AVC end-of-sequence marker.
    VideoEndOfSequence,
    /// An AAC sequence header.
    AudioConfig(AudioSpecificConfig),
    /// One raw AAC access unit.
    Audio(AudioFrame),
    /// The `onMetaData` script tag.
    Metadata(StreamMetadata),
    /// Any other script data, passed over.
    OtherScript,
}

/// One tag read from an FLV file.
#[derive(Debug, Clone, PartialEq)]
pub struct FlvTag {
    /// Byte offset of the tag in the file.
    pub offset: u64,
    /// The tag's timestamp in milliseconds (the decode time for video).
    pub timestamp_ms: u32,
    /// The decoded tag.
    pub payload: FlvPayload,
}

/// Reads an FLV file tag by tag.
#[derive(Debug)]
pub struct FlvReader<R> {
    inner: R,
    offset: u64,
    has_audio: bool,
    has_video: bool,
}

impl<R: Read> FlvReader<R> {
    /// Reads and checks the FLV header.
    pub fn new(mut inner: R) -> Result<Self, FlvError> {
        let mut header = [0u8; 9];
        read_exact_or(&mut inner, &mut header, || FlvError::NotFlv)?;
        if &header[..3] != b"FLV" {
            return Err(FlvError::NotFlv);
        }
        let data_offset = u32::from_be_bytes([header[5], header[6], header[7], header[8]]);
        if data_offset < 9 {
            return Err(FlvError::NotFlv);
        }
        // Skip any extra header bytes and PreviousTagSize0.
        let skip = u64::from(data_offset - 9) + 4;
        let skipped = io::copy(&mut (&mut inner).take(skip), &mut io::sink())?;
        if skipped != skip {
            return Err(FlvError::Truncated { offset: 9 });
        }
        Ok(FlvReader {
            inner,
            offset: u64::from(data_offset) + 4,
            has_audio: header[4] & 0x04 != 0,
            has_video: header[4] & 0x01 != 0,
        })
    }

    /// Whether the header announces audio.
    pub fn has_audio(&self) -> bool {
        self.has_audio
    }

    /// Whether the header announces video.
    pub fn has_video(&self) -> bool {
        self.has_video
    }

    /// The next tag, or `None` at a clean end of file.
    pub fn next_tag(&mut self) -> Result<Option<FlvTag>, FlvError> {
        let offset = self.offset;
        let mut header = [0u8; TAG_HEADER_LEN];
        let got = read_up_to(&mut self.inner, &mut header)?;
        if got == 0 {
            return Ok(None);
        }
        if got < TAG_HEADER_LEN {
            return Err(FlvError::Truncated { offset });
        }
        let tag_type = header[0] & 0x1f;
        let size =
            usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
        let timestamp_ms = u32::from_be_bytes([header[7], header[4], header[5], header[6]]);
        // Read into spare capacity (no zeroing first: a tenth of a fast push's CPU).
        let want = size + 4;
        let mut body = Vec::with_capacity(want);
        (&mut self.inner)
            .take(want as u64)
            .read_to_end(&mut body)
            .map_err(FlvError::Io)?;
        if body.len() < want {
            return Err(FlvError::Truncated { offset });
        }
        body.truncate(size);
        self.offset += (TAG_HEADER_LEN + size + 4) as u64;
        if header[0] & 0x20 != 0 {
            return Err(FlvError::Media {
                offset,
                source: MediaError::UnsupportedCodec("encrypted FLV tag".into()),
            });
        }
        let payload = parse_tag_body(tag_type, timestamp_ms, Bytes::from(body))
            .map_err(|source| FlvError::Media { offset, source })?;
        Ok(Some(FlvTag {
            offset,
            timestamp_ms,
            payload,
        }))
    }
}

impl<R: Read> Iterator for FlvReader<R> {
    type Item = Result<FlvTag, FlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_tag().transpose()
    }
}

/// Decodes an FLV tag body, which is also the body of an RTMP audio or video message
/// ([`TAG_AUDIO`], [`TAG_VIDEO`]); `timestamp_ms` is the tag's (decode) time.
pub fn parse_tag_body(
    tag_type: u8,
    timestamp_ms: u32,
    body: Bytes,
) -> Result<FlvPayload, MediaError> {
    let ts_us = i64::from(timestamp_ms) * 1000;
    match tag_type {
        TAG_VIDEO => {
            MediaError::check_len("FLV video tag", &body, 1)?;
            let codec = body[0] & 0x0f;
            if body[0] & 0x80 != 0 || codec != CODEC_ID_AVC {
                return Err(MediaError::UnsupportedCodec(format!(
                    "FLV video codec id {codec}"
                )));
            }
            MediaError::check_len("FLV AVC tag", &body, 5)?;
            let keyframe = body[0] >> 4 == 1;
            let cts = i32::from_be_bytes([0, body[2], body[3], body[4]]) << 8 >> 8;
            match body[1] {
                PACKET_SEQUENCE_HEADER => Ok(FlvPayload::VideoConfig(AvcDecoderConfig::parse(
                    &body[5..],
                )?)),
                PACKET_CODED => Ok(FlvPayload::Video(
                    VideoFrame::new(
                        body.slice(5..),
                        VideoFormat::Avcc,
                        keyframe,
                        ts_us + i64::from(cts) * 1000,
                    )
                    .with_dts(ts_us),
                )),
                PACKET_END_OF_SEQUENCE => Ok(FlvPayload::VideoEndOfSequence),
                other => Err(MediaError::invalid(
                    "FLV AVC tag",
                    format!("AVCPacketType {other}"),
                )),
            }
        }
        TAG_AUDIO => {
            MediaError::check_len("FLV audio tag", &body, 1)?;
            let format = body[0] >> 4;
            if format != SOUND_FORMAT_AAC {
                return Err(MediaError::UnsupportedCodec(format!(
                    "FLV sound format {format}"
                )));
            }
            MediaError::check_len("FLV AAC tag", &body, 2)?;
            match body[1] {
                PACKET_SEQUENCE_HEADER => Ok(FlvPayload::AudioConfig(AudioSpecificConfig::parse(
                    &body[2..],
                )?)),
                PACKET_CODED => Ok(FlvPayload::Audio(AudioFrame::new(
                    body.slice(2..),
                    AudioFormat::AacRaw,
                    ts_us,
                ))),
                other => Err(MediaError::invalid(
                    "FLV AAC tag",
                    format!("AACPacketType {other}"),
                )),
            }
        }
        TAG_SCRIPT => parse_script(&body),
        other => Err(MediaError::invalid("FLV tag", format!("tag type {other}"))),
    }
}

fn parse_script(body: &[u8]) -> Result<FlvPayload, MediaError> {
    // Our decoder, not rml_amf0's: a file is input too, and rml_amf0 recurses without
    // a bound on nested objects.
    let values = crate::rtmp::amf0::decode(body)
        .map_err(|e| MediaError::invalid("FLV script tag", e.to_string()))?;
    let mut values = values.into_iter();
    match (values.next(), values.next()) {
        (Some(Amf0Value::Utf8String(name)), Some(Amf0Value::Object(props)))
            if name == "onMetaData" =>
        {
            let num = |key: &str| match props.get(key) {
                Some(Amf0Value::Number(n)) => Some(*n),
                _ => None,
            };
            let whole = |key: &str| num(key).filter(|v| *v >= 0.0).map(|v| v as u32);
            Ok(FlvPayload::Metadata(StreamMetadata {
                width: whole("width"),
                height: whole("height"),
                frame_rate: num("framerate"),
                video_bitrate_kbps: num("videodatarate"),
                audio_bitrate_kbps: num("audiodatarate"),
                audio_sample_rate: whole("audiosamplerate"),
                stereo: match props.get("stereo") {
                    Some(Amf0Value::Boolean(b)) => Some(*b),
                    _ => None,
                },
            }))
        }
        _ => Ok(FlvPayload::OtherScript),
    }
}

/// Reads as many bytes as are available up to `buf.len()`; fewer only at end of file.
fn read_up_to<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn read_exact_or<R: Read>(
    reader: &mut R,
    buf: &mut [u8],
    short: impl FnOnce() -> FlvError,
) -> Result<(), FlvError> {
    if read_up_to(reader, buf)? < buf.len() {
        Err(short())
    } else {
        Ok(())
    }
}

/// Largest body an RTMP media message can carry (its length field is 24 bits).
pub const MAX_MESSAGE_BODY: usize = MAX_TAG_SIZE;

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(tag_type: u8, ts: u32, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag_type];
        out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        let t = ts.to_be_bytes();
        out.extend_from_slice(&[t[1], t[2], t[3], t[0], 0, 0, 0]);
        out.extend_from_slice(body);
        out.extend_from_slice(&((body.len() + 11) as u32).to_be_bytes());
        out
    }

    fn file(tags: &[Vec<u8>]) -> Vec<u8> {
        let mut out = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        for t in tags {
            out.extend_from_slice(t);
        }
        out
    }

    #[test]
    fn reads_video_audio_and_extended_timestamps() {
        let video = [0x17, 1, 0xff, 0xff, 0xdf, 0, 0, 0, 1, 0x65]; // cts = -33
        let audio = [0xaf, 1, 9, 8];
        let data = file(&[tag(9, 0x1234_5678, &video), tag(8, 40, &audio)]);
        let mut reader = FlvReader::new(&data[..]).unwrap();
        assert!(reader.has_audio() && reader.has_video());
        let first = reader.next_tag().unwrap().unwrap();
        assert_eq!(first.timestamp_ms, 0x1234_5678);
        let FlvPayload::Video(frame) = first.payload else {
            panic!("expected video")
        };
        assert!(frame.keyframe);
        assert_eq!(frame.dts_us, 0x1234_5678i64 * 1000);
        assert_eq!(frame.pts_us - frame.dts_us, -33_000);
        assert_eq!(&frame.data[..], &[0, 0, 0, 1, 0x65]);
        let second = reader.next_tag().unwrap().unwrap();
        assert_eq!(
            second.payload,
            FlvPayload::Audio(AudioFrame::new(
                Bytes::from_static(&[9, 8]),
                AudioFormat::AacRaw,
                40_000
            ))
        );
        assert!(reader.next_tag().unwrap().is_none());
    }

    #[test]
    fn truncated_file_is_an_error_not_a_panic() {
        let data = file(&[tag(8, 0, &[0xaf, 1, 1, 2, 3])]);
        for cut in 14..data.len() {
            let mut reader = FlvReader::new(&data[..cut]).unwrap();
            match reader.next_tag() {
                Err(FlvError::Truncated { offset: 13 }) => {}
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn rejects_non_flv_and_other_codecs() {
        assert!(matches!(
            FlvReader::new(&b"GIF89a..."[..]),
            Err(FlvError::NotFlv)
        ));
        assert!(matches!(FlvReader::new(&b"FL"[..]), Err(FlvError::NotFlv)));
        let vp6 = file(&[tag(9, 0, &[0x14, 0, 0])]);
        let err = FlvReader::new(&vp6[..]).unwrap().next_tag().unwrap_err();
        assert!(matches!(
            err,
            FlvError::Media {
                source: MediaError::UnsupportedCodec(_),
                ..
            }
        ));
        let mp3 = file(&[tag(8, 0, &[0x2f, 0])]);
        assert!(FlvReader::new(&mp3[..]).unwrap().next_tag().is_err());
    }

    #[test]
    fn reads_metadata() {
        let mut props = std::collections::HashMap::new();
        props.insert("width".to_string(), Amf0Value::Number(640.0));
        props.insert("framerate".to_string(), Amf0Value::Number(30.0));
        props.insert("stereo".to_string(), Amf0Value::Boolean(true));
        let body = rml_rtmp::rml_amf0::serialize(&vec![
            Amf0Value::Utf8String("onMetaData".into()),
            Amf0Value::Object(props),
        ])
        .unwrap();
        let data = file(&[tag(18, 0, &body)]);
        let tag = FlvReader::new(&data[..])
            .unwrap()
            .next_tag()
            .unwrap()
            .unwrap();
        let FlvPayload::Metadata(meta) = tag.payload else {
            panic!("expected metadata")
        };
        assert_eq!(meta.width, Some(640));
        assert_eq!(meta.frame_rate, Some(30.0));
        assert_eq!(meta.stereo, Some(true));
        assert_eq!(meta.height, None);
    }

    #[test]
    fn tag_headers_encode_negative_composition_time() {
        assert_eq!(video_tag_header(true, 1, -33), [0x17, 1, 0xff, 0xff, 0xdf]);
        assert_eq!(video_tag_header(false, 1, 66), [0x27, 1, 0, 0, 66]);
        assert_eq!(audio_tag_header(0), [0xaf, 0]);
    }
}
