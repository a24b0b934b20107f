//! Reading an FLV file as the samples an app would push: codec configurations and
//! frames with their times. For apps and examples that stream a recorded file; both
//! bindings wrap it.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use bytes::Bytes;
use streamhub::media::flv::{FlvError, FlvPayload, FlvReader};

/// What a sample is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleKind {
    /// An AVCDecoderConfigurationRecord (for `set_video_config`).
    VideoConfig,
    /// An H.264 access unit, AVCC (4-byte lengths).
    Video,
    /// An AAC AudioSpecificConfig (for `set_audio_config`).
    AudioConfig,
    /// A raw AAC access unit.
    Audio,
}

/// One sample of the file.
#[derive(Debug, Clone)]
pub struct Sample {
    /// What it is.
    pub kind: SampleKind,
    /// Its bytes.
    pub data: Bytes,
    /// An IDR frame (video).
    pub keyframe: bool,
    /// Presentation time, microseconds.
    pub pts_us: i64,
    /// Decode time, microseconds.
    pub dts_us: i64,
}

/// Reads an FLV file sample by sample.
#[derive(Debug)]
pub struct SampleReader {
    reader: FlvReader<BufReader<File>>,
}

impl SampleReader {
    /// Opens `path` and checks its FLV header.
    pub fn open(path: &Path) -> Result<SampleReader, FlvError> {
        let file = File::open(path)?;
        Ok(SampleReader {
            reader: FlvReader::new(BufReader::new(file))?,
        })
    }

    /// The next sample; `None` at the end of the file. Script tags and end-of-sequence
    /// markers are passed over.
    pub fn next_sample(&mut self) -> Result<Option<Sample>, FlvError> {
        while let Some(tag) = self.reader.next_tag()? {
            let time_us = i64::from(tag.timestamp_ms) * 1000;
            let sample = |kind, data| Sample {
                kind,
                data,
                keyframe: false,
                pts_us: time_us,
                dts_us: time_us,
            };
            return Ok(Some(match tag.payload {
                FlvPayload::VideoConfig(config) => {
                    sample(SampleKind::VideoConfig, config.record().clone())
                }
                FlvPayload::Video(frame) => Sample {
                    kind: SampleKind::Video,
                    data: frame.data,
                    keyframe: frame.keyframe,
                    pts_us: frame.pts_us,
                    dts_us: frame.dts_us,
                },
                FlvPayload::AudioConfig(config) => {
                    sample(SampleKind::AudioConfig, config.bytes().clone())
                }
                FlvPayload::Audio(frame) => sample(SampleKind::Audio, frame.data),
                FlvPayload::VideoEndOfSequence
                | FlvPayload::Metadata(_)
                | FlvPayload::OtherScript => continue,
            }));
        }
        Ok(None)
    }
}
