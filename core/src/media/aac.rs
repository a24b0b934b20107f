//! AAC helpers: the AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1) that RTMP sends as
//! the audio sequence header, and ADTS frame parsing.

use bytes::Bytes;

use super::MediaError;

const SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// The AAC AudioSpecificConfig: object type, sample rate and channel layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    bytes: Bytes,
    object_type: u8,
    sample_rate: u32,
    channels: u8,
}

impl AudioSpecificConfig {
    /// Parses a serialized AudioSpecificConfig (at least its first two bytes).
    pub fn parse(data: &[u8]) -> Result<Self, MediaError> {
        const WHAT: &str = "AudioSpecificConfig";
        MediaError::check_len(WHAT, data, 2)?;
        let object_type = data[0] >> 3;
        let index = ((data[0] & 0x07) << 1) | (data[1] >> 7);
        let (sample_rate, channel_byte_offset) = if index == 15 {
            MediaError::check_len(WHAT, data, 5)?;
            let rate = (u32::from(data[1] & 0x7f) << 17)
                | (u32::from(data[2]) << 9)
                | (u32::from(data[3]) << 1)
                | u32::from(data[4] >> 7);
            (rate, 4)
        } else {
            let rate = SAMPLE_RATES
                .get(usize::from(index))
                .copied()
                .ok_or_else(|| MediaError::invalid(WHAT, format!("sample rate index {index}")))?;
            (rate, 1)
        };
        if object_type == 0 || object_type == 31 {
            return Err(MediaError::invalid(
                WHAT,
                format!("audio object type {object_type}"),
            ));
        }
        let channels = (data[channel_byte_offset] >> 3) & 0x0f;
        Ok(AudioSpecificConfig {
            bytes: Bytes::copy_from_slice(data),
            object_type,
            sample_rate,
            channels,
        })
    }

    /// Builds the two-byte config for an object type (2 = AAC-LC), sample rate and channel count.
    pub fn new(object_type: u8, sample_rate: u32, channels: u8) -> Result<Self, MediaError> {
        let index = SAMPLE_RATES
            .iter()
            .position(|&r| r == sample_rate)
            .ok_or_else(|| {
                MediaError::invalid("AudioSpecificConfig", format!("sample rate {sample_rate}"))
            })? as u8;
        if object_type == 0 || object_type > 30 || channels > 7 {
            return Err(MediaError::invalid(
                "AudioSpecificConfig",
                format!("object type {object_type}, {channels} channels"),
            ));
        }
        let bytes = [
            (object_type << 3) | (index >> 1),
            ((index & 1) << 7) | (channels << 3),
        ];
        Self::parse(&bytes)
    }

    /// The serialized config, as sent in the RTMP audio sequence header.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Audio object type (2 is AAC-LC).
    pub fn object_type(&self) -> u8 {
        self.object_type
    }

    /// Sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Channel configuration (1 mono, 2 stereo, ...; 0 means defined in-band).
    pub fn channels(&self) -> u8 {
        self.channels
    }
}

/// One ADTS frame: the config its header implies and its raw AAC payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdtsFrame {
    /// The AudioSpecificConfig equivalent to this frame's header.
    pub config: AudioSpecificConfig,
    /// The raw AAC access unit, without the ADTS header.
    pub payload: Bytes,
}

impl AdtsFrame {
    /// The frame with its 7-byte ADTS header (no CRC), as `.aac` files and MPEG-TS
    /// carry AAC. ADTS names only object types 1-4 (2 = AAC-LC), one of the 13 table
    /// sample rates, and frames up to 8191 bytes: others are an error.
    pub fn to_bytes(&self) -> Result<Vec<u8>, MediaError> {
        const WHAT: &str = "ADTS frame";
        let config = &self.config;
        let object_type = config.object_type();
        if !(1..=4).contains(&object_type) {
            return Err(MediaError::invalid(
                WHAT,
                format!("object type {object_type} has no ADTS profile"),
            ));
        }
        let index = SAMPLE_RATES
            .iter()
            .position(|&r| r == config.sample_rate())
            .ok_or_else(|| {
                MediaError::invalid(WHAT, format!("sample rate {}", config.sample_rate()))
            })?;
        let len = self.payload.len() + 7;
        if len > 0x1fff {
            return Err(MediaError::invalid(WHAT, format!("{len} bytes")));
        }
        // Both fit their fields: index < 13, len <= 13 bits, checked above.
        let (index, channels) = (index as u8, config.channels());
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&[
            0xff,
            0xf1, // MPEG-4, layer 0, no CRC
            ((object_type - 1) << 6) | (index << 2) | (channels >> 2),
            ((channels & 3) << 6) | ((len >> 11) as u8 & 3),
            (len >> 3) as u8,
            ((len as u8 & 7) << 5) | 0x1f, // buffer fullness 0x7ff: variable rate
            0xfc,                          // one raw data block
        ]);
        out.extend_from_slice(&self.payload);
        Ok(out)
    }
}

/// Splits a buffer of one or more ADTS frames into raw AAC access units.
pub fn split_adts(data: &Bytes) -> Result<Vec<AdtsFrame>, MediaError> {
    const WHAT: &str = "ADTS frame";
    let mut frames = Vec::new();
    let mut offset = 0;
    while offset < data.len() {
        let header = &data[offset..];
        MediaError::check_len(WHAT, header, 7)?;
        if header[0] != 0xff || header[1] & 0xf6 != 0xf0 {
            return Err(MediaError::invalid(WHAT, "missing syncword"));
        }
        let protection_absent = header[1] & 0x01 == 1;
        let profile = (header[2] >> 6) + 1;
        let index = (header[2] >> 2) & 0x0f;
        let channels = ((header[2] & 0x01) << 2) | (header[3] >> 6);
        let frame_len = (usize::from(header[3] & 0x03) << 11)
            | (usize::from(header[4]) << 3)
            | usize::from(header[5] >> 5);
        let raw_blocks = usize::from(header[6] & 0x03) + 1;
        if raw_blocks != 1 {
            return Err(MediaError::invalid(
                WHAT,
                "several raw data blocks in one frame",
            ));
        }
        let header_len = if protection_absent { 7 } else { 9 };
        if frame_len < header_len {
            return Err(MediaError::invalid(
                WHAT,
                format!("frame length {frame_len}"),
            ));
        }
        MediaError::check_len(WHAT, header, frame_len)?;
        let rate = *SAMPLE_RATES
            .get(usize::from(index))
            .ok_or_else(|| MediaError::invalid(WHAT, format!("sample rate index {index}")))?;
        frames.push(AdtsFrame {
            config: AudioSpecificConfig::new(profile, rate, channels)?,
            payload: data.slice(offset + header_len..offset + frame_len),
        });
        offset += frame_len;
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AAC-LC at 44.1 kHz (table index 4), stereo, around `payload`.
    fn adts(payload: &[u8]) -> Vec<u8> {
        AdtsFrame {
            config: AudioSpecificConfig::new(2, 44_100, 2).unwrap(),
            payload: Bytes::copy_from_slice(payload),
        }
        .to_bytes()
        .unwrap()
    }

    #[test]
    fn parses_lc_44100_stereo() {
        let config = AudioSpecificConfig::parse(&[0x12, 0x10]).unwrap();
        assert_eq!(config.object_type(), 2);
        assert_eq!(config.sample_rate(), 44100);
        assert_eq!(config.channels(), 2);
        assert_eq!(
            AudioSpecificConfig::new(2, 44100, 2).unwrap().bytes()[..],
            [0x12, 0x10]
        );
        assert_eq!(
            AudioSpecificConfig::new(2, 48000, 1).unwrap().bytes()[..],
            [0x11, 0x88]
        );
    }

    #[test]
    fn parses_explicit_sample_rate() {
        // AAC-LC, index 15, rate 44100 written out, 2 channels.
        let rate: u32 = 44100;
        let bits: u64 = (2u64 << 35) | (15u64 << 31) | (u64::from(rate) << 7) | (2u64 << 3);
        let bytes = bits.to_be_bytes();
        let config = AudioSpecificConfig::parse(&bytes[3..]).unwrap();
        assert_eq!(config.sample_rate(), 44100);
        assert_eq!(config.channels(), 2);
    }

    #[test]
    fn rejects_bad_configs() {
        assert!(AudioSpecificConfig::parse(&[0x12]).is_err());
        assert!(AudioSpecificConfig::parse(&[0x06, 0x80]).is_err()); // index 13
        assert!(AudioSpecificConfig::new(2, 12345, 2).is_err());
    }

    #[test]
    fn splits_adts_frames_into_raw_units() {
        let mut data = adts(&[1, 2, 3]);
        data.extend(adts(&[4, 5]));
        let frames = split_adts(&Bytes::from(data)).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(&frames[0].payload[..], &[1, 2, 3]);
        assert_eq!(&frames[1].payload[..], &[4, 5]);
        assert_eq!(frames[0].config.bytes()[..], [0x12, 0x10]);
    }

    #[test]
    fn writes_the_adts_header_encoders_write() {
        // AAC-LC, 48 kHz, stereo, 2 bytes: the header ffmpeg's ADTS muxer writes.
        let frame = AdtsFrame {
            config: AudioSpecificConfig::new(2, 48_000, 2).unwrap(),
            payload: Bytes::from_static(&[0xaa, 0xbb]),
        };
        assert_eq!(
            frame.to_bytes().unwrap(),
            [0xff, 0xf1, 0x4c, 0x80, 0x01, 0x3f, 0xfc, 0xaa, 0xbb]
        );
        let back = split_adts(&Bytes::from(frame.to_bytes().unwrap())).unwrap();
        assert_eq!(back, [frame]);
    }

    #[test]
    fn refuses_what_adts_cannot_say() {
        let he_aac = AdtsFrame {
            config: AudioSpecificConfig::new(5, 44_100, 2).unwrap(),
            payload: Bytes::new(),
        };
        assert!(he_aac.to_bytes().is_err(), "object type 5 has no profile");
        let huge = AdtsFrame {
            config: AudioSpecificConfig::new(2, 44_100, 2).unwrap(),
            payload: Bytes::from(vec![0; 8185]),
        };
        assert!(huge.to_bytes().is_err(), "8192 bytes do not fit 13 bits");
    }

    #[test]
    fn rejects_truncated_and_garbage_adts() {
        let data = adts(&[1, 2, 3]);
        let err = split_adts(&Bytes::copy_from_slice(&data[..8])).unwrap_err();
        assert!(matches!(err, MediaError::Truncated { .. }));
        assert!(split_adts(&Bytes::from_static(&[0, 1, 2, 3, 4, 5, 6, 7])).is_err());
    }
}
