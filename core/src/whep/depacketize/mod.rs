//! RTP payload formats to whole frames: H.264 (RFC 6184), H.265 (RFC 7798), VP8 (RFC 7741),
//! VP9 (RFC 9628),
//! AV1 (AOMedia's RTP payload format), Opus (RFC 7587).
//!
//! Each depacketizer is fed packets in sequence order (after the jitter buffer) and is
//! told when packets were lost. It returns a frame only when it is complete; a frame
//! that lost a packet is dropped, and video waits for the next keyframe, whose
//! `discontinuity` flag then tells the app that frames are missing before it.

mod av1;
mod gate;
mod h264;
mod h265;
mod nal;
mod vp8;
mod vp9;

pub use av1::Av1Depacketizer;
pub use h264::H264Depacketizer;
pub use h265::H265Depacketizer;
pub use nal::NalDepacketizer;
pub use vp8::Vp8Depacketizer;
pub use vp9::Vp9Depacketizer;

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
    /// The frame (Annex-B for H.264 and H.265, a whole VP8 frame or VP9 picture, an AV1 temporal
    /// unit in the Low Overhead Bitstream Format, one Opus packet).
    pub data: Bytes,
    /// RTP timestamp of the frame.
    pub timestamp: u32,
    /// True for a keyframe (IDR for H.264).
    pub keyframe: bool,
    /// True if frames were lost before this one.
    pub discontinuity: bool,
}

/// A packet for the depacketizers' tests.
#[cfg(test)]
pub(crate) fn pkt(ts: u32, marker: bool, payload: impl AsRef<[u8]>) -> RtpPayload {
    RtpPayload {
        timestamp: ts,
        marker,
        payload: Bytes::copy_from_slice(payload.as_ref()),
    }
}
