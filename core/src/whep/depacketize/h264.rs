//! H.264 over RTP (RFC 6184): single NAL units, STAP-A aggregates and FU-A fragments,
//! in packetization mode 1, assembled by [`NalDepacketizer`] into Annex-B access units.

use bytes::Bytes;

use super::nal::{NalDepacketizer, NalPacket, NalSyntax};
use crate::media::{NAL_IDR, NAL_PPS, NAL_SPS};

const STAP_A: u8 = 24;
const FU_A: u8 = 28;

/// Assembles H.264 access units (Annex B, SPS and PPS before every IDR).
pub type H264Depacketizer = NalDepacketizer<H264>;

/// The H.264 payload format's syntax.
#[derive(Debug)]
pub struct H264;

impl NalSyntax for H264 {
    const HEADER_LEN: usize = 1;
    const PARAMETER_SETS: &'static [u8] = &[NAL_SPS, NAL_PPS];
    const SPROP_KEYS: &'static [&'static str] = &["sprop-parameter-sets"];

    fn nal_type(nal: &[u8]) -> Option<u8> {
        nal.first().map(|b| b & 0x1f)
    }

    fn is_slice(nal_type: u8) -> bool {
        matches!(nal_type, 1..=5)
    }

    fn is_keyframe(nal_type: u8) -> bool {
        nal_type == NAL_IDR
    }

    fn packet(payload: &Bytes) -> Result<NalPacket, ()> {
        let header = *payload.first().ok_or(())?;
        match header & 0x1f {
            0 | 30 | 31 => Err(()),
            STAP_A => Ok(NalPacket::Aggregate(payload.slice(1..))),
            FU_A => {
                let fu = *payload.get(1).ok_or(())?;
                Ok(NalPacket::Fragment {
                    start: fu & 0x80 != 0,
                    end: fu & 0x40 != 0,
                    header: [(header & 0xe0) | (fu & 0x1f), 0],
                    data: payload.slice(2..),
                })
            }
            _ => Ok(NalPacket::Single),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whep::depacketize::pkt;

    const START_CODE: [u8; 4] = [0, 0, 0, 1];

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
    fn an_access_unit_that_never_ends_is_capped_and_dropped() {
        use crate::whep::depacketize::nal::MAX_ACCESS_UNIT_BYTES;
        let mut d = H264Depacketizer::new();
        let keyframe = [stap(&[SPS, PPS]), vec![0x65, 1, 2, 3]];
        assert!(d.push(&pkt(1, false, &keyframe[0])).is_none());
        assert!(d.push(&pkt(1, true, &keyframe[1])).is_some());
        // 12 MiB of fragments with one timestamp and no marker.
        let middle = fu(1, false, false, &[7u8; 1200]);
        assert!(
            d.push(&pkt(2, false, fu(1, true, false, &[7u8; 1200])))
                .is_none()
        );
        for _ in 0..(12 << 20) / 1200 {
            assert!(d.push(&pkt(2, false, &middle)).is_none());
            let held = d.held_bytes();
            assert!(held <= MAX_ACCESS_UNIT_BYTES, "{held} bytes held");
        }
        // The oversized unit is dropped; the stream goes on from the next keyframe.
        assert!(
            d.push(&pkt(2, true, fu(1, false, true, &[7u8; 10])))
                .is_none()
        );
        assert!(d.push(&pkt(3, false, &keyframe[0])).is_none());
        assert!(d.push(&pkt(3, true, &keyframe[1])).is_some());
    }

    #[test]
    fn assembles_stap_a_and_fu_a_into_annexb_with_parameter_sets() {
        let mut d = H264Depacketizer::new();
        assert!(d.push(&pkt(1000, false, stap(&[SPS, PPS]))).is_none());
        assert!(
            d.push(&pkt(1000, false, fu(5, true, false, &[1, 2])))
                .is_none()
        );
        assert!(
            d.push(&pkt(1000, false, fu(5, false, false, &[3])))
                .is_none()
        );
        let frame = d.push(&pkt(1000, true, fu(5, false, true, &[4]))).unwrap();
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
        let frame = d.push(&pkt(4000, true, [0x41, 9, 9])).unwrap();
        assert_eq!(&frame.data[..], &[0, 0, 0, 1, 0x41, 9, 9]);
        assert!(!frame.keyframe);
    }

    #[test]
    fn fu_a_joined_mid_nal_is_not_delivered() {
        let mut d = H264Depacketizer::new();
        // The viewer joins on the middle fragment of an IDR.
        assert!(
            d.push(&pkt(1000, false, fu(5, false, false, &[3])))
                .is_none()
        );
        assert!(d.push(&pkt(1000, true, fu(5, false, true, &[4]))).is_none());
        assert!(d.needs_keyframe());
        // P-frames are held back until a complete IDR arrives.
        assert!(d.push(&pkt(2000, true, [0x41, 1])).is_none());
        d.push(&pkt(3000, false, stap(&[SPS, PPS])));
        let frame = d.push(&pkt(3000, true, fu(5, true, true, &[7]))).unwrap();
        assert!(frame.keyframe);
        assert!(!frame.discontinuity, "nothing was delivered before it");
    }

    #[test]
    fn loss_inside_a_frame_drops_it_and_waits_for_a_keyframe() {
        let mut d = H264Depacketizer::new();
        d.push(&pkt(0, false, stap(&[SPS, PPS])));
        d.push(&pkt(0, true, [0x65, 1])).unwrap();
        d.push(&pkt(3000, false, fu(1, true, false, &[1])));
        d.lost();
        assert!(d.push(&pkt(3000, true, fu(1, false, true, &[2]))).is_none());
        assert!(
            d.push(&pkt(6000, true, [0x41, 2])).is_none(),
            "P-frame after loss"
        );
        // An IDR without in-band SPS/PPS gets the stream's last ones in front.
        let frame = d.push(&pkt(9000, true, [0x65, 5])).unwrap();
        assert!(frame.discontinuity && frame.keyframe);
        assert!(frame.data.starts_with(&[0, 0, 0, 1, 0x67]));
    }

    #[test]
    fn an_idr_without_parameter_sets_anywhere_waits_for_the_next_keyframe() {
        // The viewer's first packet, the STAP-A with SPS and PPS, was lost: the IDR's
        // start arrived first, so no gap showed.
        let mut d = H264Depacketizer::new();
        assert!(d.push(&pkt(0, true, [0x65, 1])).is_none());
        assert!(d.needs_keyframe());
        assert!(d.push(&pkt(3000, true, [0x41, 1])).is_none());
        d.push(&pkt(6000, false, stap(&[SPS, PPS])));
        let frame = d.push(&pkt(6000, true, [0x65, 2])).unwrap();
        assert!(frame.keyframe && !frame.discontinuity);
    }

    #[test]
    fn parameter_sets_from_the_sdp_go_before_an_idr_without_its_own() {
        let sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n\
                   a=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;\
                   profile-level-id=42e01f; sprop-parameter-sets=Z0LgHw==,aM48gA==,@@\r\n\
                   a=fmtp:97 apt=96\r\n";
        let mut d = H264Depacketizer::with_sdp(sdp);
        let frame = d.push(&pkt(0, true, [0x65, 1])).unwrap();
        let mut expected = Vec::new();
        for nal in [SPS, PPS, &[0x65, 1]] {
            expected.extend_from_slice(&START_CODE);
            expected.extend_from_slice(nal);
        }
        assert_eq!(frame.data.as_ref(), expected.as_slice());
        // Only one of the two in the SDP: still nothing to decode with.
        let mut d = H264Depacketizer::with_sdp("a=fmtp:96 sprop-parameter-sets=Z0LgHw==");
        assert!(d.push(&pkt(0, true, [0x65, 1])).is_none());
    }

    #[test]
    fn missing_marker_closes_the_frame_as_broken() {
        let mut d = H264Depacketizer::new();
        d.push(&pkt(0, false, stap(&[SPS, PPS])));
        d.push(&pkt(0, true, [0x65, 1])).unwrap();
        assert!(d.push(&pkt(3000, false, [0x41, 1])).is_none());
        // Next timestamp begins: the previous frame never saw its marker.
        assert!(d.push(&pkt(6000, true, [0x41, 2])).is_none());
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

    #[test]
    fn parameter_sets_repeated_between_slices_are_moved_before_the_first_slice_once() {
        // GStreamer's rtph264pay (config-interval=-1) on a two-slice x264 IDR:
        // AUD, SPS, PPS, SPS, PPS, IDR slice, SPS, PPS, IDR slice.
        let mut d = H264Depacketizer::new();
        let aud: &[u8] = &[0x09, 0xf0];
        d.push(&pkt(0, false, stap(&[aud, SPS, PPS, SPS, PPS])));
        d.push(&pkt(0, false, [0x65, 1]));
        d.push(&pkt(0, false, stap(&[SPS, PPS])));
        let frame = d.push(&pkt(0, true, [0x65, 2])).unwrap();
        let mut expected = Vec::new();
        for nal in [aud, SPS, PPS, &[0x65, 1], &[0x65, 2]] {
            expected.extend_from_slice(&START_CODE);
            expected.extend_from_slice(nal);
        }
        assert_eq!(frame.data.as_ref(), expected.as_slice());
        // The next IDR, without parameter sets of its own, gets them before its slices.
        let frame = d.push(&pkt(3000, true, [0x65, 3])).unwrap();
        assert!(frame.data.starts_with(&[0, 0, 0, 1, 0x67]));
    }
}
