//! The transcoder's error type.

/// Why the AAC → Opus transcoder refused a configuration or an access unit.
///
/// Errors about one access unit ([`TranscodeError::CorruptFrame`]) leave the transcoder
/// usable: the next good access unit decodes normally. Errors from
/// [`AacToOpus::new`](super::AacToOpus::new) mean the stream cannot be transcoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TranscodeError {
    /// The AudioSpecificConfig names another audio object type than AAC-LC (2), for
    /// example HE-AAC (5) or HE-AACv2 (29).
    #[error("unsupported AAC audio object type {object_type}: only 2 (AAC-LC) is supported")]
    UnsupportedObjectType {
        /// The audio object type of the config.
        object_type: u8,
    },
    /// The channel configuration is not 1 (mono) or 2 (stereo): 0 (layout defined in-band
    /// by a program config element) and multichannel layouts are refused.
    #[error("unsupported AAC channel configuration {channels}: only 1 (mono) or 2 (stereo)")]
    UnsupportedChannels {
        /// The channel configuration of the config.
        channels: u8,
    },
    /// The sample rate is not one of the 13 rates of the AAC sampling-frequency table.
    #[error("unsupported AAC sample rate {sample_rate} Hz")]
    UnsupportedSampleRate {
        /// The sample rate of the config, in Hz.
        sample_rate: u32,
    },
    /// The requested Opus bitrate is outside Opus's 6–510 kb/s range.
    #[error("Opus bitrate {bitrate_bps} b/s is outside 6000..=510000")]
    InvalidBitrate {
        /// The bitrate passed to [`AacToOpus::new`](super::AacToOpus::new).
        bitrate_bps: u32,
    },
    /// The AAC decoder refused the config.
    #[error("AAC decoder setup failed: {reason}")]
    DecoderSetup {
        /// The decoder's message.
        reason: String,
    },
    /// One access unit could not be decoded (corrupt, truncated or empty). It was replaced
    /// by one frame of silence so the output timeline stays aligned; the transcoder is
    /// still usable.
    #[error("AAC access unit at {pts_us} µs ({len} bytes) could not be decoded: {reason}")]
    CorruptFrame {
        /// Presentation time of the access unit, in µs.
        pts_us: i64,
        /// Length of the access unit in bytes.
        len: usize,
        /// The decoder's message.
        reason: String,
    },
    /// The sample-rate converter failed (setup or processing).
    #[error("resampler {context}: {reason}")]
    Resampler {
        /// What was being done.
        context: &'static str,
        /// The resampler's message.
        reason: String,
    },
    /// The Opus encoder failed (setup or encoding).
    #[error("Opus encoder {context}: {reason}")]
    Opus {
        /// What was being done.
        context: &'static str,
        /// The encoder's message.
        reason: String,
    },
}

impl TranscodeError {
    pub(super) fn resampler(context: &'static str, err: impl std::fmt::Display) -> Self {
        TranscodeError::Resampler {
            context,
            reason: err.to_string(),
        }
    }

    pub(super) fn opus(context: &'static str, err: impl std::fmt::Display) -> Self {
        TranscodeError::Opus {
            context,
            reason: err.to_string(),
        }
    }
}
