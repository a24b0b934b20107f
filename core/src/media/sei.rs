//! Latency stamps carried in the picture stream: an H.264 SEI message of type
//! `user_data_unregistered` (ITU-T H.264 §D.1.7) with StreamHub's UUID and the wall-clock
//! time the frame was handed to the publisher. Decoders ignore it; servers that pass
//! H.264 through (our hub, most SFUs) keep it; a player that finds it knows how long the
//! frame took from the publisher's `send_video` to the viewer, on one clock.

use bytes::{BufMut, Bytes, BytesMut};

use super::{MediaError, annexb_nal_units, avcc_nal_units, nal_type};

/// NAL unit type of SEI.
pub const NAL_SEI: u8 = 6;
/// SEI payload type `user_data_unregistered`.
const USER_DATA_UNREGISTERED: u8 = 5;
/// Identifies StreamHub's latency stamp among other unregistered user data.
pub const LATENCY_STAMP_UUID: [u8; 16] = *b"StreamHub-stamp1";

/// The SEI NAL unit (without start code or length) stamping `unix_us`, microseconds
/// since the Unix epoch.
pub fn latency_stamp(unix_us: u64) -> Bytes {
    let mut payload = Vec::with_capacity(24);
    payload.extend_from_slice(&LATENCY_STAMP_UUID);
    payload.extend_from_slice(&unix_us.to_be_bytes());
    let mut rbsp = vec![USER_DATA_UNREGISTERED, payload.len() as u8];
    rbsp.extend_from_slice(&payload);
    rbsp.push(0x80); // rbsp_trailing_bits
    let mut nal = BytesMut::with_capacity(rbsp.len() + 8);
    nal.put_u8(NAL_SEI);
    // Emulation prevention (§7.4.1): no 00 00 0x (x ≤ 3) inside a NAL unit.
    let mut zeros = 0;
    for byte in rbsp {
        if zeros >= 2 && byte <= 3 {
            nal.put_u8(3);
            zeros = 0;
        }
        nal.put_u8(byte);
        zeros = if byte == 0 { zeros + 1 } else { 0 };
    }
    nal.freeze()
}

/// An AVCC access unit (NAL units with `length_size`-byte prefixes) with `nal` put in
/// front of its first slice, where the standard wants SEI.
pub fn insert_before_first_slice(
    avcc: &[u8],
    length_size: usize,
    nal: &[u8],
) -> Result<Bytes, MediaError> {
    if !(1..=4).contains(&length_size) {
        return Err(MediaError::invalid(
            "NAL length size",
            format!("{length_size}"),
        ));
    }
    let len =
        u32::try_from(nal.len()).map_err(|_| MediaError::invalid("SEI", "larger than 4 GiB"))?;
    if length_size < 4 && len >= 1 << (8 * length_size) {
        return Err(MediaError::invalid(
            "SEI",
            "too large for the NAL length size",
        ));
    }
    let mut out = BytesMut::with_capacity(avcc.len() + nal.len() + length_size);
    let mut inserted = false;
    for unit in avcc_nal_units(avcc, length_size)? {
        let is_slice = (1..=5).contains(&nal_type(unit));
        if is_slice && !inserted {
            out.put_slice(&len.to_be_bytes()[4 - length_size..]);
            out.put_slice(nal);
            inserted = true;
        }
        out.put_slice(&(unit.len() as u32).to_be_bytes()[4 - length_size..]);
        out.put_slice(unit);
    }
    if !inserted {
        return Err(MediaError::invalid("H.264 access unit", "no slice"));
    }
    Ok(out.freeze())
}

/// The latency stamp in an Annex-B access unit, if it carries one.
pub fn find_latency_stamp(annexb: &[u8]) -> Option<u64> {
    annexb_nal_units(annexb)
        .filter(|nal| nal_type(nal) == NAL_SEI)
        .find_map(|nal| stamp_in_sei(&unescape(&nal[1..])))
}

fn unescape(ebsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ebsp.len());
    let mut zeros = 0;
    for &byte in ebsp {
        if zeros >= 2 && byte == 3 {
            zeros = 0;
            continue;
        }
        out.push(byte);
        zeros = if byte == 0 { zeros + 1 } else { 0 };
    }
    out
}

/// Walks the SEI messages of one SEI RBSP (§7.3.2.3) looking for our stamp.
fn stamp_in_sei(rbsp: &[u8]) -> Option<u64> {
    let mut rest = rbsp;
    while rest.len() > 1 {
        let mut payload_type = 0usize;
        while *rest.first()? == 0xff {
            payload_type += 255;
            rest = &rest[1..];
        }
        payload_type += usize::from(*rest.first()?);
        rest = &rest[1..];
        let mut size = 0usize;
        while *rest.first()? == 0xff {
            size += 255;
            rest = &rest[1..];
        }
        size += usize::from(*rest.first()?);
        rest = &rest[1..];
        let payload = rest.get(..size)?;
        if payload_type == usize::from(USER_DATA_UNREGISTERED)
            && size == 24
            && payload[..16] == LATENCY_STAMP_UUID
        {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&payload[16..24]);
            return Some(u64::from_be_bytes(ts));
        }
        rest = &rest[size..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annexb(nals: &[&[u8]]) -> Vec<u8> {
        nals.iter()
            .flat_map(|nal| [&[0, 0, 0, 1][..], nal].concat())
            .collect()
    }

    #[test]
    fn a_stamp_round_trips_including_emulation_prevention() {
        for ts in [
            0u64,
            1,
            0x0000_0001_0000_0000,
            1_764_000_000_123_456,
            u64::MAX,
        ] {
            let nal = latency_stamp(ts);
            // No start code can appear inside the NAL unit.
            assert!(!nal.windows(3).any(|w| w[0] == 0 && w[1] == 0 && w[2] <= 2));
            let au = annexb(&[&[0x09, 0xf0], &nal, &[0x65, 0x88, 0x84]]);
            assert_eq!(find_latency_stamp(&au), Some(ts), "ts {ts}");
        }
    }

    #[test]
    fn other_sei_and_frames_without_stamps() {
        // x264's own unregistered user data (another UUID) and a recovery point SEI.
        let mut other = vec![NAL_SEI, 5, 20];
        other.extend_from_slice(&[0xdc; 16]);
        other.extend_from_slice(b"x264");
        other.push(0x80);
        let recovery = [NAL_SEI, 6, 1, 0xc4, 0x80];
        let au = annexb(&[&other, &recovery, &[0x41, 0x9a]]);
        assert_eq!(find_latency_stamp(&au), None);
        // Truncated SEI is not a stamp (and not a panic).
        let stamp = latency_stamp(42);
        let au = annexb(&[&stamp[..10]]);
        assert_eq!(find_latency_stamp(&au), None);
    }

    #[test]
    fn inserted_before_the_first_slice_after_parameter_sets() {
        let sps = [0x67, 0x42];
        let idr = [0x65, 0x88];
        let mut avcc = Vec::new();
        for nal in [&sps[..], &idr[..]] {
            avcc.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            avcc.extend_from_slice(nal);
        }
        let stamp = latency_stamp(7);
        let out = insert_before_first_slice(&avcc, 4, &stamp).expect("insert");
        let types: Vec<u8> = avcc_nal_units(&out, 4)
            .expect("nals")
            .map(nal_type)
            .collect();
        assert_eq!(types, vec![7, NAL_SEI, 5]);
        assert!(insert_before_first_slice(&avcc[..6], 4, &stamp).is_err());
        assert!(
            insert_before_first_slice(&avcc[..9], 4, &stamp).is_err(),
            "truncated"
        );
    }
}
