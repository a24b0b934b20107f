//! AV1 over RTP (the AOMedia "RTP Payload Format for AV1"): joins the OBU elements of
//! a temporal unit, fragments included, and hands out the temporal unit in the Low
//! Overhead Bitstream Format that decoders and IVF files take: a temporal delimiter,
//! then every OBU with its size field.
//!
//! Each packet starts with an aggregation header `Z|Y|W|W|N|-|-|-`: Z, the first
//! element continues the previous packet's last one; Y, the last element continues in
//! the next packet; W, how many elements (0: each has a LEB128 length; else the last
//! has none); N, the first packet of a new coded video sequence (a keyframe). The
//! marker bit ends the temporal unit. A fragment is only used when its start arrived,
//! and a temporal unit that lost a packet is dropped until the next N=1.

use bytes::{BufMut, Bytes, BytesMut};

use super::gate::KeyframeGate;
use super::{AssembledFrame, RtpPayload};

/// OBU type of a temporal delimiter (dropped by senders, added back here).
const OBU_TEMPORAL_DELIMITER: u8 = 2;
/// OBU type of tile lists, never sent over RTP.
const OBU_TILE_LIST: u8 = 8;

/// Assembles whole AV1 temporal units.
#[derive(Debug)]
pub struct Av1Depacketizer {
    /// Complete OBUs of the temporal unit being assembled.
    obus: Vec<Bytes>,
    /// The OBU element being reassembled across packets.
    fragment: Option<BytesMut>,
    timestamp: Option<u32>,
    keyframe: bool,
    broken: bool,
    gate: KeyframeGate,
}

impl Default for Av1Depacketizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Av1Depacketizer {
    /// A depacketizer that waits for the first keyframe (N=1).
    pub fn new() -> Self {
        Av1Depacketizer {
            obus: Vec::new(),
            fragment: None,
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
        self.fragment = None;
    }

    /// Feeds one packet; returns a temporal unit when its last packet arrived.
    pub fn push(&mut self, packet: &RtpPayload) -> Option<AssembledFrame> {
        if self.timestamp.is_some_and(|ts| ts != packet.timestamp) {
            // The previous temporal unit's marker never came.
            self.reset();
            self.gate.frame_lost();
        }
        if self.timestamp.is_none() {
            self.timestamp = Some(packet.timestamp);
            self.keyframe = packet.payload.first().is_some_and(|h| h & 0x08 != 0);
        }
        if self.parse(&packet.payload).is_err() {
            self.broken = true;
            self.fragment = None;
        }
        if !packet.marker {
            return None;
        }
        let obus = std::mem::take(&mut self.obus);
        let broken = std::mem::replace(&mut self.broken, false) || self.fragment.is_some();
        let keyframe = self.keyframe;
        self.reset();
        if broken {
            self.gate.frame_lost();
            return None;
        }
        if obus.is_empty() || !self.gate.admits(keyframe) {
            return None;
        }
        self.gate
            .pass(low_overhead(&obus), packet.timestamp, keyframe)
    }

    fn reset(&mut self) {
        self.obus.clear();
        self.fragment = None;
        self.timestamp = None;
    }

    fn parse(&mut self, payload: &Bytes) -> Result<(), ()> {
        let header = *payload.first().ok_or(())?;
        let (continues, will_continue) = (header & 0x80 != 0, header & 0x40 != 0);
        let count = usize::from((header >> 4) & 0x03);
        let mut rest = payload.slice(1..);
        let mut index = 0;
        while !rest.is_empty() {
            index += 1;
            let last_without_length = count != 0 && index == count;
            let element = if last_without_length {
                std::mem::take(&mut rest)
            } else {
                let (length, used) = leb128(&rest).ok_or(())?;
                let end = used
                    .checked_add(length)
                    .filter(|&e| e <= rest.len())
                    .ok_or(())?;
                let element = rest.slice(used..end);
                rest = rest.slice(end..);
                element
            };
            let first = index == 1;
            let last = rest.is_empty();
            if first && continues {
                // The end (or middle) of an OBU whose start came before; without the
                // start it is unusable.
                let fragment = self.fragment.as_mut().ok_or(())?;
                fragment.put_slice(&element);
            } else {
                if self.fragment.is_some() {
                    return Err(()); // a fragment that never ended
                }
                self.fragment = Some(BytesMut::from(&element[..]));
            }
            if !(last && will_continue)
                && let Some(obu) = self.fragment.take()
            {
                self.obus.push(obu.freeze());
            }
            if last_without_length {
                break;
            }
        }
        if count != 0 && index != count {
            return Err(());
        }
        Ok(())
    }
}

/// The OBUs as the Low Overhead Bitstream Format: a temporal delimiter, then each OBU
/// with `obu_has_size_field` set and its size. Temporal delimiters and tile lists a
/// sender should not have sent are left out, as are OBUs too short for a header.
fn low_overhead(obus: &[Bytes]) -> Bytes {
    let mut out = BytesMut::with_capacity(obus.iter().map(|o| o.len() + 8).sum::<usize>() + 2);
    out.put_slice(&[OBU_TEMPORAL_DELIMITER << 3 | 0x02, 0]);
    for obu in obus {
        let Some(&header) = obu.first() else {
            continue;
        };
        let kind = (header >> 3) & 0x0f;
        if kind == OBU_TEMPORAL_DELIMITER || kind == OBU_TILE_LIST {
            continue;
        }
        let header_len = if header & 0x04 != 0 { 2 } else { 1 };
        if obu.len() < header_len {
            continue;
        }
        if header & 0x02 != 0 {
            // Already has a size field: kept as it is.
            out.put_slice(obu);
            continue;
        }
        let body = &obu[header_len..];
        out.put_u8(header | 0x02);
        if header_len == 2 {
            out.put_u8(obu[1]);
        }
        put_leb128(&mut out, body.len());
        out.put_slice(body);
    }
    out.freeze()
}

/// A LEB128 value and how many bytes it took; `None` when truncated or longer than 8
/// bytes.
fn leb128(data: &[u8]) -> Option<(usize, usize)> {
    let mut value: usize = 0;
    for (i, &byte) in data.iter().enumerate().take(8) {
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

fn put_leb128(out: &mut BytesMut, mut value: usize) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.put_u8(byte);
            return;
        }
        out.put_u8(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whep::depacketize::pkt;

    // OBU headers without size fields: sequence header (1), frame (6).
    const SEQ: u8 = 1 << 3;
    const FRAME: u8 = 6 << 3;

    #[test]
    fn a_keyframe_with_a_fragmented_frame_obu_becomes_a_low_overhead_temporal_unit() {
        let mut d = Av1Depacketizer::new();
        // N=1, W=2: a sequence header with a length, then the start of a frame OBU
        // (the last element, no length) that continues (Y=1).
        let first = [0x40 | 0x20 | 0x08, 2, SEQ, 0xaa, FRAME, 0x01, 0x02];
        assert!(d.push(&pkt(0, false, first)).is_none());
        // Z=1, W=1: the rest of the frame OBU.
        let frame = d
            .push(&pkt(0, true, [0x80 | 0x10, 0x03, 0x04]))
            .expect("keyframe");
        assert!(frame.keyframe && !frame.discontinuity);
        assert_eq!(
            frame.data.as_ref(),
            &[0x12, 0, SEQ | 0x02, 1, 0xaa, FRAME | 0x02, 4, 1, 2, 3, 4]
        );
        // An inter temporal unit, W=0 (every element has a length).
        let frame = d
            .push(&pkt(3000, true, [0x00, 2, FRAME, 9]))
            .expect("inter");
        assert!(!frame.keyframe);
        assert_eq!(frame.data.as_ref(), &[0x12, 0, FRAME | 0x02, 1, 9]);
    }

    #[test]
    fn a_continuation_without_its_start_or_a_loss_waits_for_the_next_keyframe() {
        let mut d = Av1Depacketizer::new();
        // Joined mid-fragment.
        assert!(d.push(&pkt(0, true, [0x80 | 0x10, 0x03])).is_none());
        assert!(
            d.push(&pkt(3000, true, [0x00, 2, FRAME, 9])).is_none(),
            "not a keyframe"
        );
        assert!(d.needs_keyframe());
        assert!(d.push(&pkt(6000, true, [0x08, 2, FRAME, 9])).is_some());
        d.push(&pkt(9000, false, [0x40 | 0x10, FRAME, 1]));
        d.lost();
        assert!(d.push(&pkt(9000, true, [0x80 | 0x10, 2])).is_none());
        let frame = d
            .push(&pkt(12000, true, [0x08, 2, FRAME, 9]))
            .expect("keyframe");
        assert!(frame.discontinuity);
    }

    #[test]
    fn malformed_aggregation_is_dropped_without_panic() {
        let mut d = Av1Depacketizer::new();
        for bad in [
            &[][..],
            &[0x08, 5, FRAME],   // a length past the end
            &[0x08, 0xff, 0xff], // a truncated LEB128
            &[0x28, 1, FRAME],   // W=2 but one element
        ] {
            assert!(d.push(&pkt(0, true, bad)).is_none(), "{bad:?}");
        }
        assert_eq!(leb128(&[0xe5, 0x8e, 0x26]), Some((624_485, 3)));
        let mut out = BytesMut::new();
        put_leb128(&mut out, 624_485);
        assert_eq!(out.as_ref(), &[0xe5, 0x8e, 0x26]);
    }
}
