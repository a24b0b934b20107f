//! H.265 over RTP (RFC 7798): single NAL units, aggregation packets (AP) and
//! fragmentation units (FU), without DONL fields (the player offers no
//! `sprop-max-don-diff`), assembled by [`NalDepacketizer`] into Annex-B access units.
//! PACI packets (type 50) are not read: an access unit with one is dropped.

use bytes::Bytes;

use super::nal::{NalDepacketizer, NalPacket, NalSyntax};

const VPS: u8 = 32;
const SPS: u8 = 33;
const PPS: u8 = 34;
const AP: u8 = 48;
const FU: u8 = 49;
const PACI: u8 = 50;

/// Assembles H.265 access units (Annex B, VPS, SPS and PPS before every IRAP picture).
pub type H265Depacketizer = NalDepacketizer<H265>;

/// The H.265 payload format's syntax.
#[derive(Debug)]
pub struct H265;

impl NalSyntax for H265 {
    const HEADER_LEN: usize = 2;
    const PARAMETER_SETS: &'static [u8] = &[VPS, SPS, PPS];
    const SPROP_KEYS: &'static [&'static str] = &["sprop-vps", "sprop-sps", "sprop-pps"];

    fn nal_type(nal: &[u8]) -> Option<u8> {
        nal.first().map(|b| (b >> 1) & 0x3f)
    }

    fn is_slice(nal_type: u8) -> bool {
        nal_type < 32
    }

    /// IRAP pictures (BLA, IDR, CRA: types 16 to 23): decoding can start there.
    fn is_keyframe(nal_type: u8) -> bool {
        (16..=23).contains(&nal_type)
    }

    fn packet(payload: &Bytes) -> Result<NalPacket, ()> {
        let (first, second) = match payload.as_ref() {
            [first, second, ..] => (*first, *second),
            _ => return Err(()),
        };
        // The forbidden zero bit set: not H.265.
        if first & 0x80 != 0 {
            return Err(());
        }
        match (first >> 1) & 0x3f {
            AP => Ok(NalPacket::Aggregate(payload.slice(2..))),
            FU => {
                let fu = *payload.get(2).ok_or(())?;
                Ok(NalPacket::Fragment {
                    start: fu & 0x80 != 0,
                    end: fu & 0x40 != 0,
                    header: [(first & 0x81) | ((fu & 0x3f) << 1), second],
                    data: payload.slice(3..),
                })
            }
            PACI => Err(()),
            _ => Ok(NalPacket::Single),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whep::depacketize::pkt;

    /// A NAL unit header of `nal_type`, layer 0, temporal id 1.
    fn header(nal_type: u8) -> [u8; 2] {
        [nal_type << 1, 1]
    }

    fn nal(nal_type: u8, body: &[u8]) -> Vec<u8> {
        let mut out = header(nal_type).to_vec();
        out.extend_from_slice(body);
        out
    }

    fn ap(nals: &[&[u8]]) -> Vec<u8> {
        let mut out = header(AP).to_vec();
        for n in nals {
            out.extend_from_slice(&(n.len() as u16).to_be_bytes());
            out.extend_from_slice(n);
        }
        out
    }

    fn fu(nal_type: u8, start: bool, end: bool, data: &[u8]) -> Vec<u8> {
        let mut out = header(FU).to_vec();
        out.push((u8::from(start) << 7) | (u8::from(end) << 6) | nal_type);
        out.extend_from_slice(data);
        out
    }

    fn annex_b(nals: &[&[u8]]) -> Vec<u8> {
        nals.iter()
            .flat_map(|n| [&[0, 0, 0, 1][..], n].concat())
            .collect()
    }

    const IDR_W_RADL: u8 = 19;
    const CRA: u8 = 21;
    const TRAIL_R: u8 = 1;

    #[test]
    fn parameter_sets_from_the_sdp_go_before_an_irap_without_its_own() {
        let (vps, sps, pps) = (nal(VPS, &[1]), nal(SPS, &[2]), nal(PPS, &[3]));
        let sdp = "a=fmtp:98 profile-id=1;sprop-max-don-diff=0; sprop-vps=QAEB;\
                   sprop-sps=QgEC;sprop-pps=RAED\r\n";
        let idr = nal(IDR_W_RADL, &[7]);
        let frame = H265Depacketizer::with_sdp(sdp)
            .push(&pkt(0, true, idr.clone()))
            .unwrap();
        assert_eq!(
            frame.data.as_ref(),
            annex_b(&[&vps, &sps, &pps, &idr]).as_slice()
        );
        // Without them the IRAP cannot be decoded and is not delivered.
        let mut d = H265Depacketizer::new();
        assert!(d.push(&pkt(0, true, idr)).is_none());
        assert!(d.needs_keyframe());
    }

    #[test]
    fn assembles_an_aggregate_and_fragments_into_annex_b_with_parameter_sets() {
        let (vps, sps, pps) = (nal(VPS, &[1]), nal(SPS, &[2]), nal(PPS, &[3]));
        let mut d = H265Depacketizer::new();
        assert!(d.push(&pkt(0, false, ap(&[&vps, &sps, &pps]))).is_none());
        assert!(
            d.push(&pkt(0, false, fu(IDR_W_RADL, true, false, &[7, 8])))
                .is_none()
        );
        let frame = d
            .push(&pkt(0, true, fu(IDR_W_RADL, false, true, &[9])))
            .unwrap();
        assert!(frame.keyframe && !frame.discontinuity);
        assert_eq!(
            frame.data.as_ref(),
            annex_b(&[&vps, &sps, &pps, &nal(IDR_W_RADL, &[7, 8, 9])]).as_slice()
        );
        // A trailing picture as a single NAL unit.
        let frame = d.push(&pkt(3000, true, nal(TRAIL_R, &[4]))).unwrap();
        assert!(!frame.keyframe);
        assert_eq!(
            frame.data.as_ref(),
            annex_b(&[&nal(TRAIL_R, &[4])]).as_slice()
        );
    }

    #[test]
    fn a_loss_waits_for_the_next_irap_which_gets_the_last_parameter_sets() {
        let (vps, sps, pps) = (nal(VPS, &[1]), nal(SPS, &[2]), nal(PPS, &[3]));
        let mut d = H265Depacketizer::new();
        d.push(&pkt(0, false, ap(&[&vps, &sps, &pps])));
        d.push(&pkt(0, true, nal(IDR_W_RADL, &[1]))).unwrap();
        d.push(&pkt(3000, false, fu(TRAIL_R, true, false, &[1])));
        d.lost();
        assert!(
            d.push(&pkt(3000, true, fu(TRAIL_R, false, true, &[2])))
                .is_none()
        );
        assert!(d.needs_keyframe());
        assert!(d.push(&pkt(6000, true, nal(TRAIL_R, &[3]))).is_none());
        let frame = d.push(&pkt(9000, true, nal(CRA, &[5]))).unwrap();
        assert!(frame.keyframe && frame.discontinuity);
        assert_eq!(
            frame.data.as_ref(),
            annex_b(&[&vps, &sps, &pps, &nal(CRA, &[5])]).as_slice()
        );
    }

    #[test]
    fn fragments_joined_mid_unit_are_not_delivered() {
        let mut d = H265Depacketizer::new();
        assert!(
            d.push(&pkt(0, true, fu(IDR_W_RADL, false, true, &[9])))
                .is_none()
        );
        assert!(d.needs_keyframe());
    }

    #[test]
    fn malformed_payloads_are_dropped_without_panic() {
        let mut d = H265Depacketizer::new();
        for bad in [
            &[][..],
            &[0x60],
            &header(FU)[..],
            &[0x80, 1, 2],
            &[AP << 1, 1, 0, 9, 1],
            &[AP << 1, 1, 0, 0],
            &[PACI << 1, 1, 0, 0],
        ] {
            assert!(d.push(&pkt(0, true, bad)).is_none());
        }
    }
}
