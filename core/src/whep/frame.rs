//! What the player hands to the app.

use bytes::Bytes;

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// A video track.
    Video,
    /// An audio track.
    Audio,
}

/// The codec of a received track.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Codec {
    /// H.264; frames are Annex-B with SPS/PPS before every IDR.
    H264,
    /// H.265; frames are Annex-B with VPS/SPS/PPS before every IRAP picture.
    H265,
    /// VP8; frames are whole VP8 frames.
    Vp8,
    /// VP9; frames are whole pictures (every spatial layer).
    Vp9,
    /// AV1; frames are temporal units in the Low Overhead Bitstream Format (a
    /// temporal delimiter, then OBUs with their sizes), as IVF and decoders take them.
    Av1,
    /// Opus; one frame per RTP packet.
    Opus,
    /// A codec the player does not assemble (its MIME type).
    Other(String),
}

impl Codec {
    /// The codec for an RTP MIME type such as `video/H264`.
    pub fn from_mime(mime: &str) -> Self {
        match mime.to_ascii_lowercase().as_str() {
            "video/h264" => Codec::H264,
            "video/h265" => Codec::H265,
            "video/vp8" => Codec::Vp8,
            "video/vp9" => Codec::Vp9,
            "video/av1" => Codec::Av1,
            "audio/opus" => Codec::Opus,
            other => Codec::Other(other.to_string()),
        }
    }

    /// A short lowercase name (`h264`, `h265`, `vp8`, `vp9`, `av1`, `opus`).
    pub fn name(&self) -> &str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
            Codec::Vp8 => "vp8",
            Codec::Vp9 => "vp9",
            Codec::Av1 => "av1",
            Codec::Opus => "opus",
            Codec::Other(mime) => mime,
        }
    }
}

/// One complete encoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaFrame {
    /// Audio or video.
    pub kind: MediaKind,
    /// The codec.
    pub codec: Codec,
    /// The encoded frame.
    pub data: Bytes,
    /// Presentation time in microseconds on the player's clock (zero at the start of
    /// `connect`), monotonic per track; audio and video are aligned through the sender's
    /// RTCP sender reports once they arrive.
    pub timestamp_us: i64,
    /// True for a keyframe (always true for audio).
    pub keyframe: bool,
    /// True if frames of this track were lost before this one.
    pub discontinuity: bool,
}
