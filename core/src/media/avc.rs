//! H.264 helpers: splitting Annex-B and AVCC access units into NAL units, and the
//! AVC decoder configuration record (ISO/IEC 14496-15 §5.3.3) that RTMP sends as the
//! video sequence header.

use bytes::{BufMut, Bytes, BytesMut};
use h264_reader::nal::sps::SeqParameterSet;
use h264_reader::nal::{Nal, RefNal};

use super::MediaError;

/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 8;
/// NAL unit type of an access unit delimiter.
pub const NAL_AUD: u8 = 9;
/// NAL unit type of an IDR slice.
pub const NAL_IDR: u8 = 5;

/// The `nal_unit_type` of a NAL unit (0 for an empty one).
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

/// An iterator over the NAL units of one access unit.
pub type NalUnits<'a> = Box<dyn Iterator<Item = &'a [u8]> + 'a>;

/// Splits an Annex-B byte stream at its start codes. Leading bytes before the first
/// start code and trailing zero bytes of each NAL unit are dropped; empty units are skipped.
pub fn annexb_nal_units(data: &[u8]) -> NalUnits<'_> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut ranges = Vec::with_capacity(starts.len());
    for (n, &start) in starts.iter().enumerate() {
        let mut end = starts.get(n + 1).map_or(data.len(), |next| next - 3);
        while end > start && data[end - 1] == 0 {
            end -= 1;
        }
        if end > start {
            ranges.push(&data[start..end]);
        }
    }
    Box::new(ranges.into_iter())
}

/// Splits an AVCC access unit (NAL units prefixed by `length_size`-byte lengths).
pub fn avcc_nal_units(data: &[u8], length_size: usize) -> Result<NalUnits<'_>, MediaError> {
    if !(1..=4).contains(&length_size) || length_size == 3 {
        return Err(MediaError::invalid(
            "AVCC access unit",
            format!("NAL length size {length_size}"),
        ));
    }
    let mut units = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        MediaError::check_len("AVCC NAL length", rest, length_size)?;
        let len = rest[..length_size]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[length_size..];
        MediaError::check_len("AVCC NAL unit", rest, len)?;
        units.push(&rest[..len]);
        rest = &rest[len..];
    }
    Ok(Box::new(units.into_iter()))
}

/// The AVC decoder configuration record: SPS and PPS plus the profile they declare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcDecoderConfig {
    record: Bytes,
    sps: Vec<Bytes>,
    pps: Vec<Bytes>,
    nal_length_size: usize,
}

impl AvcDecoderConfig {
    /// Builds a record from one or more SPS and PPS NAL units (without start codes).
    pub fn from_parameter_sets(sps: &[Bytes], pps: &[Bytes]) -> Result<Self, MediaError> {
        let first = sps
            .first()
            .ok_or_else(|| MediaError::invalid("AVC configuration", "no SPS"))?;
        if pps.is_empty() {
            return Err(MediaError::invalid("AVC configuration", "no PPS"));
        }
        if sps.len() > 31 || pps.len() > 255 {
            return Err(MediaError::invalid(
                "AVC configuration",
                "too many parameter sets",
            ));
        }
        MediaError::check_len("SPS", first, 4)?;
        let mut record = BytesMut::new();
        record.put_u8(1); // configurationVersion
        record.put_slice(&first[1..4]); // profile_idc, constraint flags, level_idc
        record.put_u8(0xfc | 3); // reserved + lengthSizeMinusOne = 3
        record.put_u8(0xe0 | sps.len() as u8);
        for set in sps {
            put_parameter_set(&mut record, set)?;
        }
        record.put_u8(pps.len() as u8);
        for set in pps {
            put_parameter_set(&mut record, set)?;
        }
        Ok(AvcDecoderConfig {
            record: record.freeze(),
            sps: sps.to_vec(),
            pps: pps.to_vec(),
            nal_length_size: 4,
        })
    }

    /// Parses a record as found in an FLV/RTMP sequence header or an MP4 `avcC` box.
    pub fn parse(record: &[u8]) -> Result<Self, MediaError> {
        const WHAT: &str = "AVC decoder configuration record";
        MediaError::check_len(WHAT, record, 7)?;
        if record[0] != 1 {
            return Err(MediaError::invalid(
                WHAT,
                format!("configurationVersion {}", record[0]),
            ));
        }
        let nal_length_size = usize::from(record[4] & 0x03) + 1;
        let mut rest = &record[5..];
        let read_sets = |count: usize, rest: &mut &[u8]| -> Result<Vec<Bytes>, MediaError> {
            let mut sets = Vec::with_capacity(count);
            for _ in 0..count {
                MediaError::check_len(WHAT, rest, 2)?;
                let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                if len == 0 {
                    return Err(MediaError::invalid(WHAT, "an empty parameter set"));
                }
                MediaError::check_len(WHAT, &rest[2..], len)?;
                sets.push(Bytes::copy_from_slice(&rest[2..2 + len]));
                *rest = &rest[2 + len..];
            }
            Ok(sets)
        };
        let sps_count = usize::from(rest[0] & 0x1f);
        rest = &rest[1..];
        let sps = read_sets(sps_count, &mut rest)?;
        MediaError::check_len(WHAT, rest, 1)?;
        let pps_count = usize::from(rest[0]);
        rest = &rest[1..];
        let pps = read_sets(pps_count, &mut rest)?;
        if sps.is_empty() {
            return Err(MediaError::invalid(WHAT, "no SPS"));
        }
        Ok(AvcDecoderConfig {
            record: Bytes::copy_from_slice(record),
            sps,
            pps,
            nal_length_size,
        })
    }

    /// The serialized record, as sent in the RTMP video sequence header.
    pub fn record(&self) -> &Bytes {
        &self.record
    }

    /// The sequence parameter sets.
    pub fn sps(&self) -> &[Bytes] {
        &self.sps
    }

    /// The picture parameter sets.
    pub fn pps(&self) -> &[Bytes] {
        &self.pps
    }

    /// Bytes in each NAL length prefix of frames that use this configuration.
    pub fn nal_length_size(&self) -> usize {
        self.nal_length_size
    }

    /// `profile_idc` of the first SPS.
    pub fn profile_idc(&self) -> u8 {
        self.sps[0].get(1).copied().unwrap_or(0)
    }

    /// `level_idc` of the first SPS.
    pub fn level_idc(&self) -> u8 {
        self.sps[0].get(3).copied().unwrap_or(0)
    }

    /// Picture width and height in pixels, after cropping, read from the first SPS.
    pub fn dimensions(&self) -> Result<(u32, u32), MediaError> {
        let sps = self.parsed_sps()?;
        sps.pixel_dimensions()
            .map_err(|e| MediaError::invalid("SPS", format!("{e:?}")))
    }

    /// The frame rate the SPS declares in its VUI timing info, if any.
    pub fn frame_rate(&self) -> Option<f64> {
        self.parsed_sps().ok()?.fps()
    }

    fn parsed_sps(&self) -> Result<SeqParameterSet, MediaError> {
        // h264-reader panics on an empty NAL unit.
        let sps = self
            .sps
            .first()
            .filter(|sps| !sps.is_empty())
            .ok_or_else(|| MediaError::invalid("SPS", "empty"))?;
        let nal = RefNal::new(sps, &[], true);
        SeqParameterSet::from_bits(nal.rbsp_bits())
            .map_err(|e| MediaError::invalid("SPS", format!("{e:?}")))
    }
}

fn put_parameter_set(record: &mut BytesMut, set: &[u8]) -> Result<(), MediaError> {
    let len = u16::try_from(set.len())
        .map_err(|_| MediaError::invalid("AVC configuration", "parameter set over 64 KiB"))?;
    record.put_u16(len);
    record.put_slice(set);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // SPS/PPS of a 640x360 High-profile x264 stream (level 3.0).
    pub(crate) const SPS: &[u8] = &[
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03,
        0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2d, 0x96,
    ];
    pub(crate) const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

    #[test]
    fn splits_annexb_with_both_start_code_lengths() {
        let data = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5, 0,
        ];
        let units: Vec<&[u8]> = annexb_nal_units(&data).collect();
        assert_eq!(
            units,
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 4, 5][..]]
        );
    }

    #[test]
    fn annexb_without_start_code_has_no_units() {
        assert_eq!(annexb_nal_units(&[1, 2, 3, 4]).count(), 0);
    }

    #[test]
    fn splits_avcc_and_rejects_truncation() {
        let data = [0, 0, 0, 2, 0x65, 1, 0, 0, 0, 1, 0x41];
        let units: Vec<&[u8]> = avcc_nal_units(&data, 4).unwrap().collect();
        assert_eq!(units, vec![&[0x65, 1][..], &[0x41][..]]);
        let err = avcc_nal_units(&data[..9], 4).err().unwrap();
        assert!(matches!(err, MediaError::Truncated { .. }));
        assert!(avcc_nal_units(&data, 3).is_err());
    }

    #[test]
    fn builds_record_and_parses_it_back() {
        let sps = [Bytes::from_static(SPS)];
        let pps = [Bytes::from_static(PPS)];
        let config = AvcDecoderConfig::from_parameter_sets(&sps, &pps).unwrap();
        let record = config.record();
        assert_eq!(&record[..6], &[1, 0x64, 0x00, 0x1e, 0xff, 0xe1]);
        assert_eq!(&record[6..8], &(SPS.len() as u16).to_be_bytes());
        assert_eq!(&record[8..8 + SPS.len()], SPS);
        assert_eq!(record[8 + SPS.len()], 1);
        let parsed = AvcDecoderConfig::parse(record).unwrap();
        assert_eq!(parsed, config);
        assert_eq!(parsed.profile_idc(), 100);
        assert_eq!(parsed.level_idc(), 30);
        assert_eq!(parsed.dimensions().unwrap(), (640, 360));
    }

    #[test]
    fn rejects_bad_records() {
        assert!(AvcDecoderConfig::parse(&[1, 2, 3]).is_err());
        assert!(AvcDecoderConfig::parse(&[2, 0x64, 0, 0x1e, 0xff, 0xe1, 0]).is_err());
        // Claims one SPS of 200 bytes but holds 2.
        assert!(AvcDecoderConfig::parse(&[1, 0x64, 0, 0x1e, 0xff, 0xe1, 0, 200, 1, 2]).is_err());
        assert!(AvcDecoderConfig::from_parameter_sets(&[], &[Bytes::from_static(PPS)]).is_err());
        assert!(AvcDecoderConfig::from_parameter_sets(&[Bytes::from_static(SPS)], &[]).is_err());
    }

    /// Found by the `avc`, `flv` and `rtmp_media` fuzz targets: a record whose SPS is
    /// empty made `dimensions` panic in h264-reader (in the hub, a publisher's sequence
    /// header could do it).
    #[test]
    fn a_record_with_an_empty_parameter_set_is_refused() {
        let empty_sps = [1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, 0, 1, 0, 1, 0x68];
        assert!(matches!(
            AvcDecoderConfig::parse(&empty_sps),
            Err(MediaError::Invalid { .. })
        ));
        let empty_pps = [1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, 1, 0x67, 1, 0, 0];
        assert!(AvcDecoderConfig::parse(&empty_pps).is_err());
        // The fuzzer's input (fuzz/seeds/avc/crash-empty-sps, after its first byte).
        let found = [
            0x01, 0x1e, 0x70, 0x5b, 0xa0, 0x81, 0x00, 0x00, 0x00, 0x01, 0x67, 0xf9,
        ];
        assert!(AvcDecoderConfig::parse(&found).is_err());
    }
}
