//! RTP payload formats to whole frames: H.264 (RFC 6184), VP8 (RFC 7741), Opus (RFC 7587).
//!
//! Each depacketizer is fed packets in sequence order (after the jitter buffer) and is
//! told when packets were lost. It returns a frame only when it is complete; a frame
//! that lost a packet is dropped, and video waits for the next keyframe, whose
//! `discontinuity` flag then tells the app that frames are missing before it.

mod h264;
mod vp8;

pub use h264::H264Depacketizer;
pub use vp8::Vp8Depacketizer;

use bytes::Bytes;

/// One RTP packet as the depacketizers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPayload {
    /// The RTP timestamp.
    pub timestamp: u32,
    /// The marker bit (last packet of a video frame).
    pub marker: bool,
    /// The payload after the RTP header.
    pub payload: Bytes,
}

/// A complete frame out of a depacketizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssembledFrame {
    /// The frame (Annex-B for H.264, the whole VP8 frame, one Opus packet).
    pub data: Bytes,
    /// RTP timestamp of the frame.
    pub timestamp: u32,
    /// True for a keyframe (IDR for H.264).
    pub keyframe: bool,
    /// True if frames were lost before this one.
    pub discontinuity: bool,
}
