//! VP8 over RTP (RFC 7741): strips the payload descriptor and joins the partitions of
//! a frame. A frame starts at a packet with S=1 and partition index 0 and ends at the
//! marker bit; a keyframe has the P bit of the VP8 payload header clear.

use bytes::{BufMut, BytesMut};

use super::gate::KeyframeGate;
use super::{AssembledFrame, RtpPayload};

/// Assembles whole VP8 frames.
#[derive(Debug)]
pub struct Vp8Depacketizer {
    frame: Option<BytesMut>,
    timestamp: Option<u32>,
    broken: bool,
    gate: KeyframeGate,
}

impl Default for Vp8Depacketizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Vp8Depacketizer {
    /// A depacketizer that waits for the first keyframe.
    pub fn new() -> Self {
        Vp8Depacketizer {
            frame: None,
            timestamp: None,
            broken: false,
            gate: KeyframeGate::default(),
        }
    }

    /// Whether the depacketizer is waiting for a keyframe.
    pub fn needs_keyframe(&self) -> bool {
        self.gate.awaiting_keyframe()
    }

    /// Tells the depacketizer that packets were lost just before the next one.
    pub fn lost(&mut self) {
        self.broken = true;
        // The lost packets may have been a whole frame between two others, which the
        // next frame may reference: without a way to tell (picture IDs are optional),
        // wait for a keyframe, as the H.264 and AV1 depacketizers do.
        self.gate.frame_lost();
    }

    /// Feeds one packet; returns a frame when its last packet arrived.
    pub fn push(&mut self, packet: &RtpPayload) -> Option<AssembledFrame> {
        if self.timestamp.is_some_and(|ts| ts != packet.timestamp) && self.frame.is_some() {
            // The previous frame's last packet never came.
            self.frame = None;
            self.broken = false;
            self.gate.frame_lost();
        }
        let Some((start, body)) = parse_descriptor(&packet.payload) else {
            self.broken = true;
            return None;
        };
        if start {
            self.frame = Some(BytesMut::with_capacity(body.len() * 4));
            self.timestamp = Some(packet.timestamp);
            self.broken = false;
        } else if self.broken || self.frame.is_none() {
            self.frame = None;
            self.gate.frame_lost();
            return None;
        }
        let frame = self.frame.as_mut()?;
        frame.put_slice(body);
        if !packet.marker {
            return None;
        }
        let data = self.frame.take()?.freeze();
        self.timestamp = None;
        let keyframe = data.first().is_some_and(|b| b & 0x01 == 0);
        self.gate.pass(data, packet.timestamp, keyframe)
    }
}

/// Returns (starts a frame, VP8 payload) or `None` for a malformed descriptor.
fn parse_descriptor(payload: &[u8]) -> Option<(bool, &[u8])> {
    let first = *payload.first()?;
    let mut offset = 1;
    if first & 0x80 != 0 {
        let ext = *payload.get(offset)?;
        offset += 1;
        if ext & 0x80 != 0 {
            let picture_id = *payload.get(offset)?;
            offset += if picture_id & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            offset += 1; // TL0PICIDX
        }
        if ext & 0x30 != 0 {
            offset += 1; // TID / KEYIDX
        }
    }
    let body = payload.get(offset..)?;
    if body.is_empty() {
        return None;
    }
    let start = first & 0x10 != 0 && first & 0x07 == 0;
    Some((start, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whep::depacketize::pkt;

    /// Descriptor with X=1, I=1 and a two-byte picture id, as libwebrtc sends.
    fn with_descriptor(start: bool, body: &[u8]) -> Vec<u8> {
        let mut out = vec![0x80 | if start { 0x10 } else { 0 }, 0x80, 0x81, 0x23];
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn joins_partitions_and_detects_keyframes() {
        let mut d = Vp8Depacketizer::new();
        assert!(
            d.push(&pkt(90, false, with_descriptor(true, &[0x10, 1])))
                .is_none()
        );
        let frame = d
            .push(&pkt(90, true, with_descriptor(false, &[2, 3])))
            .unwrap();
        assert_eq!(&frame.data[..], &[0x10, 1, 2, 3]);
        assert!(frame.keyframe && !frame.discontinuity);
        let frame = d.push(&pkt(180, true, vec![0x10, 0x11, 5])).unwrap();
        assert!(!frame.keyframe, "P bit set");
        assert_eq!(&frame.data[..], &[0x11, 5]);
    }

    #[test]
    fn joining_mid_frame_or_losing_a_packet_waits_for_a_keyframe() {
        let mut d = Vp8Depacketizer::new();
        assert!(
            d.push(&pkt(90, true, with_descriptor(false, &[0x10, 1])))
                .is_none()
        );
        assert!(d.needs_keyframe());
        let first = d
            .push(&pkt(100, true, with_descriptor(true, &[0x10, 0])))
            .unwrap();
        assert!(!first.discontinuity);
        let p_frame = d
            .push(&pkt(180, true, with_descriptor(true, &[0x11])))
            .unwrap();
        assert!(!p_frame.keyframe);
        assert!(
            d.push(&pkt(270, false, with_descriptor(true, &[0x10, 1])))
                .is_none()
        );
        d.lost();
        assert!(
            d.push(&pkt(270, true, with_descriptor(false, &[2])))
                .is_none()
        );
        let frame = d
            .push(&pkt(360, true, with_descriptor(true, &[0x10, 7])))
            .unwrap();
        assert!(frame.keyframe && frame.discontinuity);
    }

    #[test]
    fn a_whole_frame_lost_between_two_others_waits_for_a_keyframe() {
        let mut d = Vp8Depacketizer::new();
        assert!(
            d.push(&pkt(0, true, with_descriptor(true, &[0x10])))
                .is_some()
        );
        d.lost(); // frame 90, one packet
        assert!(
            d.push(&pkt(180, true, with_descriptor(true, &[0x11])))
                .is_none(),
            "frame 180 may reference the lost one"
        );
        assert!(d.needs_keyframe());
        let frame = d
            .push(&pkt(270, true, with_descriptor(true, &[0x10])))
            .unwrap();
        assert!(frame.keyframe && frame.discontinuity);
    }

    #[test]
    fn malformed_descriptors_are_dropped() {
        let mut d = Vp8Depacketizer::new();
        for bad in [vec![], vec![0x80], vec![0x90, 0x80], vec![0x10]] {
            assert!(d.push(&pkt(0, true, bad)).is_none());
        }
    }
}
