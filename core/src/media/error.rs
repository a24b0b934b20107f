//! Errors raised while parsing or converting media.

/// A problem with media handed to StreamHub or read from a file.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaError {
    /// The data ended before a complete structure could be read.
    #[error("truncated {what}: needed {needed} bytes, had {available}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes required to finish it.
        needed: usize,
        /// Bytes that were available.
        available: usize,
    },
    /// The data does not follow the format it claims to be in.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was being read.
        what: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// The codec is not one this build can carry.
    #[error("unsupported codec: {0}")]
    UnsupportedCodec(String),
    /// A video frame was sent before any SPS/PPS was known.
    #[error(
        "no H.264 decoder configuration yet: send a frame carrying SPS and PPS, or set the configuration explicitly"
    )]
    MissingVideoConfig,
    /// An AAC frame was sent raw before any AudioSpecificConfig was known.
    #[error(
        "no AAC AudioSpecificConfig yet: send ADTS frames, or set the configuration explicitly"
    )]
    MissingAudioConfig,
    /// A timestamp lies before the stream's origin or goes backwards.
    #[error("invalid timestamp: {0}")]
    Timestamp(String),
}

impl MediaError {
    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        MediaError::Invalid {
            what,
            reason: reason.into(),
        }
    }

    pub(crate) fn check_len(what: &'static str, data: &[u8], needed: usize) -> Result<(), Self> {
        if data.len() < needed {
            Err(MediaError::Truncated {
                what,
                needed,
                available: data.len(),
            })
        } else {
            Ok(())
        }
    }
}
