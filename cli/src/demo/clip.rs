//! The built-in test stream: `assets/demo.flv` (see `assets/README.md` for how it was
//! made), compiled into the binary, played in a loop at its own pace with a latency
//! stamp in every video frame.

use std::io::Cursor;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use streamhub::media::flv::{FlvPayload, FlvReader, FlvTag};
use streamhub::media::sei::{insert_before_first_slice, latency_stamp};
use streamhub::media::{AudioFrame, AvcDecoderConfig, Pacer, VideoFrame};
use streamhub::session::{SessionError, StreamSession};

/// The clip's bytes.
const DEMO_FLV: &[u8] = include_bytes!("../../../assets/demo.flv");

/// The clip, read once.
pub struct Clip {
    tags: Vec<FlvTag>,
    video_config: AvcDecoderConfig,
    /// Length of one pass, in milliseconds (the next pass starts right after).
    length_ms: i64,
}

/// Microseconds since the Unix epoch, now.
pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl Clip {
    /// Reads the embedded clip.
    pub fn load() -> Result<Clip, String> {
        let reader =
            FlvReader::new(Cursor::new(DEMO_FLV)).map_err(|e| format!("demo clip: {e}"))?;
        let mut tags = Vec::new();
        let mut video_config = None;
        let mut last_video_ms = 0i64;
        let mut frame_ms = 33i64;
        for tag in reader {
            let tag = tag.map_err(|e| format!("demo clip: {e}"))?;
            match &tag.payload {
                FlvPayload::VideoConfig(config) => video_config = Some(config.clone()),
                FlvPayload::Video(frame) => {
                    let ms = frame.dts_us / 1000;
                    if ms > last_video_ms {
                        frame_ms = ms - last_video_ms;
                    }
                    last_video_ms = ms;
                }
                _ => {}
            }
            tags.push(tag);
        }
        let video_config = video_config.ok_or("demo clip: no H.264 configuration")?;
        Ok(Clip {
            tags,
            video_config,
            length_ms: last_video_ms + frame_ms,
        })
    }

    /// Publishes the clip in a loop for `duration`, at its own pace; `on_video` is
    /// called after each video frame is handed over.
    pub async fn publish(
        &self,
        session: &StreamSession,
        duration: Duration,
        mut on_video: impl FnMut(),
    ) -> Result<(), SessionError> {
        let mut pacer = Pacer::new(tokio::time::Instant::now(), 0);
        let duration_ms = duration.as_millis() as i64;
        for pass in 0i64.. {
            let offset_ms = pass * self.length_ms;
            for tag in &self.tags {
                let at_ms = offset_ms + i64::from(tag.timestamp_ms);
                if at_ms >= duration_ms {
                    return Ok(());
                }
                pacer.wait(at_ms * 1000).await;
                let offset_us = offset_ms * 1000;
                match &tag.payload {
                    FlvPayload::VideoConfig(config) => session.set_video_config(config.clone())?,
                    FlvPayload::AudioConfig(config) => session.set_audio_config(config.clone())?,
                    FlvPayload::Video(frame) => {
                        let stamped = insert_before_first_slice(
                            &frame.data,
                            self.video_config.nal_length_size(),
                            &latency_stamp(unix_us()),
                        )
                        .map_err(|e| SessionError::InvalidConfig(format!("demo clip: {e}")))?;
                        let frame = VideoFrame {
                            data: stamped,
                            pts_us: frame.pts_us + offset_us,
                            dts_us: frame.dts_us + offset_us,
                            ..frame.clone()
                        };
                        session.send_video(&frame).await?;
                        on_video();
                    }
                    FlvPayload::Audio(frame) => {
                        let frame = AudioFrame {
                            pts_us: frame.pts_us + offset_us,
                            ..frame.clone()
                        };
                        session.send_audio(&frame).await?;
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}
