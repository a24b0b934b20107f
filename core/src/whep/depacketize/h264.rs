//! H.264 over RTP (RFC 6184): single NAL units, STAP-A aggregates and FU-A fragments,
//! in packetization mode 1, assembled into Annex-B access units.
//!
//! webrtc-rs's own H.264 depacketizer ignores the FU-A start bit, so a viewer that joins
//! in the middle of a fragmented IDR gets a corrupt frame. Here a fragment run is only
//! used when it began with a start fragment and every packet up to the end fragment
//! arrived.

use bytes::{BufMut, Bytes, BytesMut};

use super::{AssembledFrame, RtpPayload};
use crate::media::{NAL_IDR, NAL_PPS, NAL_SPS};

const STAP_A: u8 = 24;
const FU_A: u8 = 28;
const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// Assembles H.264 access units.
#[derive(Debug, Default)]
pub struct H264Depacketizer {
    /// NAL units of the access unit being assembled.
    nals: Vec<Bytes>,
    timestamp: Option<u32>,
    /// The FU-A unit being reassembled; `None` when not inside one.
    fragment: Option<BytesMut>,
    /// The current access unit lost a packet: drop it.
    broken: bool,
    /// Frames were lost: deliver nothing until the next IDR, then flag it.
    awaiting_keyframe: bool,
    sps: Option<Bytes>,
    pps: Option<Bytes>,
    /// At least one frame went out.
    delivered: bool,
}

impl H264Depacketizer {
    /// A depacketizer that waits for the first IDR before delivering anything.
    pub fn new() -> Self {
        H264Depacketizer {
            awaiting_keyframe: true,
            ..Default::default()
        }
    }

    /// Whether the depacketizer is waiting for a keyframe (the caller should ask for one).
    pub fn needs_keyframe(&self) -> bool {
        self.awaiting_keyframe
    }

    /// Tells the depacketizer that packets were lost just before the next one.
    pub fn lost(&mut self) {
        self.broken = true;
        self.fragment = None;
    }

    /// Feeds one packet; returns an access unit when its last packet arrived.
    pub fn push(&mut self, packet: &RtpPayload) -> Option<AssembledFrame> {
        let mut out = None;
        if self.timestamp.is_some_and(|ts| ts != packet.timestamp) {
            // A new access unit started without the previous one's marker: the end of
            // the previous one was lost.
            self.broken = true;
            out = self.finish();
        }
        self.timestamp = Some(packet.timestamp);
        if self.parse(&packet.payload).is_err() {
            self.broken = true;
            self.fragment = None;
        }
        if packet.marker {
            out = self.finish().or(out);
        }
        out
    }

    fn parse(&mut self, payload: &Bytes) -> Result<(), ()> {
        let header = *payload.first().ok_or(())?;
        match header & 0x1f {
            0 | 30 | 31 => Err(()),
            STAP_A => {
                let mut rest = payload.slice(1..);
                while rest.len() >= 2 {
                    let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                    if len == 0 || rest.len() < 2 + len {
                        return Err(());
                    }
                    self.nals.push(rest.slice(2..2 + len));
                    rest = rest.slice(2 + len..);
                }
                if rest.is_empty() { Ok(()) } else { Err(()) }
            }
            FU_A => {
                let fu = *payload.get(1).ok_or(())?;
                let (start, end) = (fu & 0x80 != 0, fu & 0x40 != 0);
                if start {
                    let mut nal = BytesMut::with_capacity(payload.len() * 8);
                    nal.put_u8((header & 0xe0) | (fu & 0x1f));
                    self.fragment = Some(nal);
                }
                // A middle or end fragment with no start before it: joined mid-NAL or
                // the start was lost. Nothing usable until the next start.
                let nal = self.fragment.as_mut().ok_or(())?;
                nal.put_slice(&payload[2..]);
                if end && let Some(nal) = self.fragment.take() {
                    self.nals.push(nal.freeze());
                }
                Ok(())
            }
            _ => {
                self.nals.push(payload.clone());
                Ok(())
            }
        }
    }

    fn finish(&mut self) -> Option<AssembledFrame> {
        let nals = std::mem::take(&mut self.nals);
        let timestamp = self.timestamp.take()?;
        let broken = std::mem::replace(&mut self.broken, false) || self.fragment.is_some();
        self.fragment = None;
        for nal in &nals {
            match nal.first().map(|b| b & 0x1f) {
                Some(NAL_SPS) => self.sps = Some(nal.clone()),
                Some(NAL_PPS) => self.pps = Some(nal.clone()),
                _ => {}
            }
        }
        if broken {
            self.awaiting_keyframe = true;
            return None;
        }
        let keyframe = nals
            .iter()
            .any(|n| n.first().map(|b| b & 0x1f) == Some(NAL_IDR));
        let has_slices = nals
            .iter()
            .any(|n| matches!(n.first().map(|b| b & 0x1f), Some(1..=5)));
        if !has_slices {
            return None; // parameter sets or SEI alone
        }
        if self.awaiting_keyframe && !keyframe {
            return None;
        }
        // Only a gap after delivered frames is a discontinuity for the app.
        let discontinuity = std::mem::replace(&mut self.awaiting_keyframe, false) && self.delivered;
        self.delivered = true;
        let mut data =
            BytesMut::with_capacity(nals.iter().map(|n| n.len() + 4).sum::<usize>() + 64);
        if keyframe {
            let in_band = |t: u8| nals.iter().any(|n| n.first().map(|b| b & 0x1f) == Some(t));
            // SPS/PPS before every IDR, from the stream's last ones when not in band.
            for (kind, set) in [(NAL_SPS, &self.sps), (NAL_PPS, &self.pps)] {
                if !in_band(kind)
                    && let Some(set) = set
                {
                    data.put_slice(&START_CODE);
                    data.put_slice(set);
                }
            }
        }
        for nal in &nals {
            data.put_slice(&START_CODE);
            data.put_slice(nal);
        }
        Some(AssembledFrame {
            data: data.freeze(),
            timestamp,
            keyframe,
            discontinuity,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(ts: u32, marker: bool, payload: &[u8]) -> RtpPayload {
        RtpPayload {
            timestamp: ts,
            marker,
            payload: Bytes::copy_from_slice(payload),
        }
    }

    fn fu(nal_type: u8, start: bool, end: bool, data: &[u8]) -> Vec<u8> {
        let mut out = vec![
            0x60 | FU_A,
            (u8::from(start) << 7) | (u8::from(end) << 6) | nal_type,
        ];
        out.extend_from_slice(data);
        out
    }

    const SPS: &[u8] = &[0x67, 0x42, 0xe0, 0x1f];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    fn stap(nals: &[&[u8]]) -> Vec<u8> {
        let mut out = vec![0x78];
        for n in nals {
            out.extend_from_slice(&(n.len() as u16).to_be_bytes());
            out.extend_from_slice(n);
        }
        out
    }

    #[test]
    fn assembles_stap_a_and_fu_a_into_annexb_with_parameter_sets() {
        let mut d = H264Depacketizer::new();
        assert!(d.push(&pkt(1000, false, &stap(&[SPS, PPS]))).is_none());
        assert!(
            d.push(&pkt(1000, false, &fu(5, true, false, &[1, 2])))
                .is_none()
        );
        assert!(
            d.push(&pkt(1000, false, &fu(5, false, false, &[3])))
                .is_none()
        );
        let frame = d.push(&pkt(1000, true, &fu(5, false, true, &[4]))).unwrap();
        assert!(frame.keyframe);
        let mut expected = vec![0, 0, 0, 1];
        expected.extend_from_slice(SPS);
        expected.extend_from_slice(&[0, 0, 0, 1]);
        expected.extend_from_slice(PPS);
        expected.extend_from_slice(&[0, 0, 0, 1, 0x65, 1, 2, 3, 4]);
        assert_eq!(&frame.data[..], &expected[..]);
        assert!(
            !frame.discontinuity,
            "the first keyframe is not a discontinuity"
        );
        // A P-frame as a single NAL unit.
        let frame = d.push(&pkt(4000, true, &[0x41, 9, 9])).unwrap();
        assert_eq!(&frame.data[..], &[0, 0, 0, 1, 0x41, 9, 9]);
        assert!(!frame.keyframe);
    }

    #[test]
    fn fu_a_joined_mid_nal_is_not_delivered() {
        let mut d = H264Depacketizer::new();
        // The viewer joins on the middle fragment of an IDR.
        assert!(
            d.push(&pkt(1000, false, &fu(5, false, false, &[3])))
                .is_none()
        );
        assert!(
            d.push(&pkt(1000, true, &fu(5, false, true, &[4])))
                .is_none()
        );
        assert!(d.needs_keyframe());
        // P-frames are held back until a complete IDR arrives.
        assert!(d.push(&pkt(2000, true, &[0x41, 1])).is_none());
        d.push(&pkt(3000, false, &stap(&[SPS, PPS])));
        let frame = d.push(&pkt(3000, true, &fu(5, true, true, &[7]))).unwrap();
        assert!(frame.keyframe);
        assert!(!frame.discontinuity, "nothing was delivered before it");
    }

    #[test]
    fn loss_inside_a_frame_drops_it_and_waits_for_a_keyframe() {
        let mut d = H264Depacketizer::new();
        d.push(&pkt(0, false, &stap(&[SPS, PPS])));
        d.push(&pkt(0, true, &[0x65, 1])).unwrap();
        d.push(&pkt(3000, false, &fu(1, true, false, &[1])));
        d.lost();
        assert!(
            d.push(&pkt(3000, true, &fu(1, false, true, &[2])))
                .is_none()
        );
        assert!(
            d.push(&pkt(6000, true, &[0x41, 2])).is_none(),
            "P-frame after loss"
        );
        // An IDR without in-band SPS/PPS gets the stream's last ones in front.
        let frame = d.push(&pkt(9000, true, &[0x65, 5])).unwrap();
        assert!(frame.discontinuity && frame.keyframe);
        assert!(frame.data.starts_with(&[0, 0, 0, 1, 0x67]));
    }

    #[test]
    fn missing_marker_closes_the_frame_as_broken() {
        let mut d = H264Depacketizer::new();
        d.push(&pkt(0, false, &stap(&[SPS, PPS])));
        d.push(&pkt(0, true, &[0x65, 1])).unwrap();
        assert!(d.push(&pkt(3000, false, &[0x41, 1])).is_none());
        // Next timestamp begins: the previous frame never saw its marker.
        assert!(d.push(&pkt(6000, true, &[0x41, 2])).is_none());
        assert!(d.needs_keyframe());
    }

    #[test]
    fn malformed_payloads_are_dropped_without_panic() {
        let mut d = H264Depacketizer::new();
        for bad in [
            &[][..],
            &[0x78, 0, 9, 1],
            &[0x7c],
            &[0x1f, 1],
            &[0x78, 0, 0],
        ] {
            assert!(d.push(&pkt(0, true, bad)).is_none());
        }
    }
}
