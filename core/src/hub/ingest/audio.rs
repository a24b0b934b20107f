//! The audio path of a publisher: AAC transcoded to Opus (feature `transcode`), or Opus
//! passed through.

use crate::media::{AudioSpecificConfig, MediaError};

#[cfg(feature = "transcode")]
use crate::media::transcode::{AacToOpus, OpusPacket};

/// An Opus packet ready for the stream.
#[cfg(not(feature = "transcode"))]
#[derive(Debug)]
pub struct OpusPacket {
    /// The Opus packet.
    pub data: bytes::Bytes,
    /// Presentation time in microseconds.
    pub pts_us: i64,
}

/// How the publisher's audio reaches viewers.
pub enum AudioPath {
    /// No audio configuration yet.
    None,
    /// AAC, transcoded to Opus.
    #[cfg(feature = "transcode")]
    Aac(Box<AacToOpus>),
    /// AAC in a build without the transcoder: dropped.
    #[cfg(not(feature = "transcode"))]
    Aac,
    /// Opus, passed through.
    Opus,
}

impl AudioPath {
    /// The path for an AAC configuration.
    pub fn aac(config: &AudioSpecificConfig, opus_bitrate: u32) -> Result<Self, MediaError> {
        #[cfg(feature = "transcode")]
        {
            AacToOpus::new(config, opus_bitrate)
                .map(|t| AudioPath::Aac(Box::new(t)))
                .map_err(|e| MediaError::UnsupportedCodec(format!("AAC to Opus: {e}")))
        }
        #[cfg(not(feature = "transcode"))]
        {
            let _ = (config, opus_bitrate);
            tracing::warn!("built without the transcode feature: AAC audio is not forwarded");
            Ok(AudioPath::Aac)
        }
    }

    /// Output channels, once known.
    pub fn channels(&self) -> Option<u8> {
        match self {
            #[cfg(feature = "transcode")]
            AudioPath::Aac(t) => Some(t.channels()),
            _ => None,
        }
    }

    /// Transcodes one raw AAC access unit; nothing without an AAC configuration.
    pub fn transcode(&mut self, aac: &[u8], pts_us: i64) -> Result<Vec<OpusPacket>, MediaError> {
        match self {
            #[cfg(feature = "transcode")]
            AudioPath::Aac(t) => t
                .push(aac, pts_us)
                .map_err(|e| MediaError::invalid("AAC frame", e.to_string())),
            _ => {
                let _ = (aac, pts_us);
                Ok(Vec::new())
            }
        }
    }
}

impl std::fmt::Debug for AudioPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AudioPath::None => "AudioPath::None",
            #[cfg(feature = "transcode")]
            AudioPath::Aac(_) => "AudioPath::Aac",
            #[cfg(not(feature = "transcode"))]
            AudioPath::Aac => "AudioPath::Aac",
            _ => "AudioPath::Opus",
        })
    }
}
