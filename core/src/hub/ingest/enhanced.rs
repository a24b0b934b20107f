//! Enhanced RTMP (v2) audio carrying Opus: `SoundFormat` 9 (ExHeader), then an
//! `AudioPacketType` and the FourCC `Opus`. Sequence start carries the OpusHead; coded
//! frames carry one Opus packet each.

use bytes::Bytes;

use crate::media::MediaError;
use crate::media::flv::{
    EX_AUDIO_CODED_FRAMES as PACKET_CODED_FRAMES, EX_AUDIO_SEQUENCE_END as PACKET_SEQUENCE_END,
    EX_AUDIO_SEQUENCE_START as PACKET_SEQUENCE_START, FOURCC_OPUS, SOUND_FORMAT_EX_HEADER,
};

/// An Enhanced RTMP Opus message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpusMessage {
    /// The OpusHead: the channel count.
    Header {
        /// Output channels (1 or 2 for WebRTC).
        channels: u8,
    },
    /// One Opus packet.
    Packet(Bytes),
}

/// Reads an audio message body as Enhanced RTMP Opus; `Ok(None)` when it is not
/// Enhanced RTMP at all (legacy AAC and others), an error when it is but is malformed
/// or carries another codec.
pub fn parse_opus(body: &Bytes) -> Result<Option<OpusMessage>, MediaError> {
    const WHAT: &str = "Enhanced RTMP audio";
    let Some(first) = body.first() else {
        return Ok(None);
    };
    if first >> 4 != SOUND_FORMAT_EX_HEADER {
        return Ok(None);
    }
    MediaError::check_len(WHAT, body, 5)?;
    let packet_type = first & 0x0f;
    if body[1..5] != FOURCC_OPUS {
        return Err(MediaError::UnsupportedCodec(format!(
            "Enhanced RTMP audio {:?}",
            String::from_utf8_lossy(&body[1..5])
        )));
    }
    let payload = body.slice(5..);
    match packet_type {
        PACKET_SEQUENCE_START => {
            // OpusHead (RFC 7845 §5.1): "OpusHead", version, channel count, ...
            MediaError::check_len("OpusHead", &payload, 10)?;
            if &payload[..8] != b"OpusHead" {
                return Err(MediaError::invalid("OpusHead", "no OpusHead magic"));
            }
            Ok(Some(OpusMessage::Header {
                channels: payload[9],
            }))
        }
        PACKET_CODED_FRAMES if !payload.is_empty() => Ok(Some(OpusMessage::Packet(payload))),
        PACKET_CODED_FRAMES => Err(MediaError::invalid(WHAT, "empty Opus packet")),
        PACKET_SEQUENCE_END => Ok(None),
        other => Err(MediaError::invalid(
            WHAT,
            format!("AudioPacketType {other}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_aac_is_not_enhanced() {
        assert_eq!(parse_opus(&Bytes::from_static(&[0xaf, 1, 2])), Ok(None));
        assert_eq!(parse_opus(&Bytes::new()), Ok(None));
    }

    #[test]
    fn opus_header_and_packets() {
        let mut head = vec![0x90];
        head.extend_from_slice(b"Opus");
        head.extend_from_slice(b"OpusHead");
        head.extend_from_slice(&[1, 2, 0x38, 1, 0x80, 0xbb, 0, 0, 0, 0, 0]);
        assert_eq!(
            parse_opus(&Bytes::from(head)),
            Ok(Some(OpusMessage::Header { channels: 2 }))
        );
        let mut packet = vec![0x91];
        packet.extend_from_slice(b"Opus");
        packet.extend_from_slice(&[0xfc, 0xff, 0xfe]);
        assert_eq!(
            parse_opus(&Bytes::from(packet)),
            Ok(Some(OpusMessage::Packet(Bytes::from_static(&[
                0xfc, 0xff, 0xfe
            ]))))
        );
    }

    #[test]
    fn malformed_or_other_codecs_are_errors() {
        assert!(parse_opus(&Bytes::from_static(&[0x91, b'O', b'p'])).is_err());
        assert!(parse_opus(&Bytes::from_static(b"\x91fLaC\x00")).is_err());
        assert!(parse_opus(&Bytes::from_static(b"\x91Opus")).is_err());
        assert!(parse_opus(&Bytes::from_static(b"\x90OpusNotAHead00")).is_err());
    }
}
