//! VP9 over RTP (RFC 9628): strips the payload descriptor and joins a picture's
//! packets. A picture starts at a packet with B=1 (beginning of a frame) after the end
//! of the previous one and ends at the marker bit (the end of the picture, all its
//! spatial layers). As with H.264, a run is only used when it began with its start
//! packet and nothing was lost up to its end; a keyframe has P=0 in its first packet.

use bytes::{BufMut, BytesMut};

use super::gate::KeyframeGate;
use super::{AssembledFrame, RtpPayload};

/// Assembles whole VP9 pictures.
#[derive(Debug)]
pub struct Vp9Depacketizer {
    frame: Option<BytesMut>,
    timestamp: Option<u32>,
    keyframe: bool,
    broken: bool,
    gate: KeyframeGate,
}

impl Default for Vp9Depacketizer {
    fn default() -> Self {
        Self::new()
    }
}

/// What the payload descriptor says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Descriptor {
    /// B: the first packet of a layer frame.
    begins: bool,
    /// P: inter-picture predicted (a keyframe's first layer has P=0).
    predicted: bool,
    /// The spatial layer (0 without layer indices).
    spatial: u8,
    /// Where the VP9 data starts.
    offset: usize,
}

impl Vp9Depacketizer {
    /// A depacketizer that waits for the first keyframe.
    pub fn new() -> Self {
        Vp9Depacketizer {
            frame: None,
            timestamp: None,
            keyframe: false,
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
        // The lost packets may have been a whole picture between two others, which the
        // next picture may reference: without a way to tell (picture IDs are optional),
        // wait for a keyframe, as the H.264 and AV1 depacketizers do.
        self.gate.frame_lost();
    }

    /// Feeds one packet; returns a picture when its last packet arrived.
    pub fn push(&mut self, packet: &RtpPayload) -> Option<AssembledFrame> {
        if self.timestamp.is_some_and(|ts| ts != packet.timestamp) && self.frame.is_some() {
            // The previous picture's marker never came.
            self.frame = None;
            self.gate.frame_lost();
        }
        let Some(descriptor) = parse_descriptor(&packet.payload) else {
            self.broken = true;
            return None;
        };
        let body = &packet.payload[descriptor.offset..];
        let starts_picture = descriptor.begins && self.frame.is_none();
        if starts_picture {
            self.frame = Some(BytesMut::with_capacity(body.len() * 4));
            self.timestamp = Some(packet.timestamp);
            self.keyframe = !descriptor.predicted && descriptor.spatial == 0;
            self.broken = false;
        } else if self.broken || self.frame.is_none() {
            // Joined mid-picture, or a packet of this one was lost.
            self.frame = None;
            self.broken = false;
            self.gate.frame_lost();
            return None;
        }
        self.frame.as_mut()?.put_slice(body);
        if !packet.marker {
            return None;
        }
        let data = self.frame.take()?.freeze();
        self.timestamp = None;
        self.gate.pass(data, packet.timestamp, self.keyframe)
    }
}

/// Parses the payload descriptor (RFC 9628 §4.2); `None` when it is malformed or
/// carries no data.
fn parse_descriptor(payload: &[u8]) -> Option<Descriptor> {
    let first = *payload.first()?;
    let (picture_id, predicted, layers, flexible) = (
        first & 0x80 != 0,
        first & 0x40 != 0,
        first & 0x20 != 0,
        first & 0x10 != 0,
    );
    let (begins, scalability) = (first & 0x08 != 0, first & 0x02 != 0);
    let mut offset = 1;
    if picture_id {
        let id = *payload.get(offset)?;
        offset += if id & 0x80 != 0 { 2 } else { 1 };
    }
    let mut spatial = 0;
    if layers {
        spatial = (*payload.get(offset)? >> 1) & 0x07;
        offset += 1;
        if !flexible {
            offset += 1; // TL0PICIDX
        }
    }
    if flexible && predicted {
        // Up to three reference indices, each with a "one more follows" bit.
        for _ in 0..3 {
            let diff = *payload.get(offset)?;
            offset += 1;
            if diff & 0x01 == 0 {
                break;
            }
        }
    }
    if scalability {
        let ss = *payload.get(offset)?;
        offset += 1;
        let spatial_layers = usize::from(ss >> 5) + 1;
        if ss & 0x10 != 0 {
            offset += 4 * spatial_layers; // width and height per layer
        }
        if ss & 0x08 != 0 {
            let groups = *payload.get(offset)?;
            offset += 1;
            for _ in 0..groups {
                let group = *payload.get(offset)?;
                offset += 1 + usize::from((group >> 2) & 0x03);
            }
        }
    }
    (payload.len() > offset).then_some(Descriptor {
        begins,
        predicted,
        spatial,
        offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whep::depacketize::pkt;

    // I=1 (7-bit picture ID), B/E per packet; P for inter pictures.
    const KEY_START: u8 = 0x80 | 0x08;
    const INTER_START: u8 = 0x80 | 0x40 | 0x08;
    const MIDDLE: u8 = 0x80 | 0x40;

    #[test]
    fn a_keyframe_in_three_packets_then_an_inter_picture() {
        let mut d = Vp9Depacketizer::new();
        assert!(d.push(&pkt(0, false, [KEY_START, 1, 0xaa])).is_none());
        assert!(d.push(&pkt(0, false, [0x80, 1, 0xbb])).is_none());
        let frame = d.push(&pkt(0, true, [0x84, 1, 0xcc])).expect("keyframe");
        assert!(frame.keyframe && !frame.discontinuity);
        assert_eq!(frame.data.as_ref(), &[0xaa, 0xbb, 0xcc]);
        let frame = d
            .push(&pkt(3000, true, [INTER_START | 0x04, 2, 0xdd]))
            .expect("inter");
        assert!(!frame.keyframe);
        assert_eq!(frame.data.as_ref(), &[0xdd]);
    }

    #[test]
    fn joining_mid_picture_or_losing_a_packet_waits_for_a_keyframe() {
        let mut d = Vp9Depacketizer::new();
        // Joined in the middle of a picture: nothing until a keyframe.
        assert!(d.push(&pkt(0, true, [MIDDLE, 1, 0xaa])).is_none());
        assert!(d.push(&pkt(3000, true, [INTER_START, 2, 0xbb])).is_none());
        assert!(d.needs_keyframe());
        assert!(d.push(&pkt(6000, true, [KEY_START, 3, 0xcc])).is_some());
        // A lost middle packet drops the picture and waits for the next keyframe.
        d.push(&pkt(9000, false, [INTER_START, 4, 0xdd]));
        d.lost();
        assert!(d.push(&pkt(9000, true, [MIDDLE, 4, 0xee])).is_none());
        assert!(d.push(&pkt(12000, true, [INTER_START, 5, 0xff])).is_none());
        let frame = d
            .push(&pkt(15000, true, [KEY_START, 6, 0x11]))
            .expect("keyframe");
        assert!(frame.discontinuity);
    }

    #[test]
    fn a_whole_picture_lost_between_two_others_waits_for_a_keyframe() {
        let mut d = Vp9Depacketizer::new();
        assert!(d.push(&pkt(0, true, [KEY_START | 0x04, 1, 0xaa])).is_some());
        d.lost(); // picture 3000, one packet
        assert!(
            d.push(&pkt(6000, true, [INTER_START | 0x04, 3, 0xbb]))
                .is_none(),
            "picture 6000 may reference the lost one"
        );
        assert!(d.needs_keyframe());
        let frame = d
            .push(&pkt(9000, true, [KEY_START | 0x04, 4, 0xcc]))
            .expect("keyframe");
        assert!(frame.keyframe && frame.discontinuity);
    }

    #[test]
    fn descriptors_with_layers_references_and_scalability_are_skipped() {
        // I (15-bit ID), P, L, F, B; layer byte with SID 1; two reference diffs; data.
        let payload = [0xf8, 0x81, 0x02, 0x02, 0x03, 0x02, 0x77];
        let descriptor = parse_descriptor(&payload).expect("valid");
        assert_eq!(descriptor.spatial, 1);
        assert_eq!(&payload[descriptor.offset..], &[0x77]);
        // B, V: one layer with its size, one group with one reference.
        let payload = [0x0a, 0x18, 1, 64, 0, 240, 1, 0x04, 0x01, 0x55];
        let descriptor = parse_descriptor(&payload).expect("valid");
        assert_eq!(&payload[descriptor.offset..], &[0x55]);
        for bad in [&[][..], &[0x80], &[0x08], &[0xa0, 1], &[0x02, 0xff]] {
            assert_eq!(parse_descriptor(bad), None, "{bad:?}");
        }
    }
}
