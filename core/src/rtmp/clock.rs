//! Maps the app's microsecond timestamps onto RTMP's millisecond clock.
//!
//! Audio and video share one origin, so their RTMP timestamps stay in sync. Times are
//! floored to milliseconds independently for decode and presentation time, so a stream
//! that came from FLV (whole milliseconds) goes back out with the same values. RTMP
//! timestamps are 32-bit and wrap after 2^32 ms (49.7 days); the chunk writer handles
//! the wrap and the extended-timestamp field.

use crate::media::MediaError;

/// Largest composition-time offset an FLV/RTMP video header can carry (signed 24 bits).
const MAX_CTS_MS: i64 = (1 << 23) - 1;

/// One clock for a stream's audio and video.
#[derive(Debug, Clone, Default)]
pub struct MediaClock {
    origin_us: Option<i64>,
    last_video_dts_us: Option<i64>,
    last_audio_pts_us: Option<i64>,
}

/// RTMP timing of one video frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoTiming {
    /// Decode time in RTMP milliseconds (wrapped to 32 bits).
    pub dts_ms: u32,
    /// Presentation minus decode time in milliseconds.
    pub composition_ms: i32,
}

impl MediaClock {
    /// The origin in use, once known.
    #[cfg(test)]
    pub fn origin_us(&self) -> Option<i64> {
        self.origin_us
    }

    /// A clock whose zero is `origin_us`, or the first frame's time when `None`.
    pub fn new(origin_us: Option<i64>) -> Self {
        MediaClock {
            origin_us,
            ..Self::default()
        }
    }

    /// Timing for a video frame; decode times must not go backwards.
    pub fn video(&mut self, pts_us: i64, dts_us: i64) -> Result<VideoTiming, MediaError> {
        if let Some(last) = self.last_video_dts_us
            && dts_us < last
        {
            return Err(MediaError::Timestamp(format!(
                "video dts went backwards from {last} us to {dts_us} us"
            )));
        }
        let origin = *self.origin_us.get_or_insert(dts_us);
        let dts_ms = relative_ms(dts_us, origin, "video dts")?;
        let pts_ms = (pts_us - origin).div_euclid(1000);
        let composition = pts_ms - dts_ms;
        if composition.abs() > MAX_CTS_MS {
            return Err(MediaError::Timestamp(format!(
                "pts - dts of {composition} ms does not fit RTMP's 24-bit composition time"
            )));
        }
        self.last_video_dts_us = Some(dts_us);
        Ok(VideoTiming {
            dts_ms: wrap(dts_ms),
            composition_ms: composition as i32,
        })
    }

    /// Timing for an audio frame; presentation times must not go backwards.
    pub fn audio(&mut self, pts_us: i64) -> Result<u32, MediaError> {
        if let Some(last) = self.last_audio_pts_us
            && pts_us < last
        {
            return Err(MediaError::Timestamp(format!(
                "audio pts went backwards from {last} us to {pts_us} us"
            )));
        }
        let origin = *self.origin_us.get_or_insert(pts_us);
        let ms = relative_ms(pts_us, origin, "audio pts")?;
        self.last_audio_pts_us = Some(pts_us);
        Ok(wrap(ms))
    }
}

fn relative_ms(us: i64, origin: i64, what: &str) -> Result<i64, MediaError> {
    let relative = us.checked_sub(origin).filter(|r| *r >= 0).ok_or_else(|| {
        MediaError::Timestamp(format!(
            "{what} {us} us is before the stream's origin {origin} us"
        ))
    })?;
    Ok(relative / 1000)
}

fn wrap(ms: i64) -> u32 {
    (ms as u64 & 0xffff_ffff) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_frame_sets_origin_and_audio_shares_it() {
        let mut clock = MediaClock::new(None);
        let t = clock.video(5_000_000, 5_000_000).unwrap();
        assert_eq!(
            t,
            VideoTiming {
                dts_ms: 0,
                composition_ms: 0
            }
        );
        assert_eq!(clock.audio(5_023_999).unwrap(), 23);
        assert_eq!(clock.origin_us(), Some(5_000_000));
    }

    #[test]
    fn composition_time_for_b_frames() {
        let mut clock = MediaClock::new(Some(0));
        let t = clock.video(100_000, 33_000).unwrap();
        assert_eq!(
            t,
            VideoTiming {
                dts_ms: 33,
                composition_ms: 67
            }
        );
        let t = clock.video(66_000, 66_000).unwrap();
        assert_eq!(t.composition_ms, 0);
    }

    #[test]
    fn whole_milliseconds_round_trip_exactly() {
        let mut clock = MediaClock::new(Some(0));
        for ms in [0i64, 1, 999, 16_777_215, 16_777_216, 2_147_483_648] {
            let t = clock.video((ms + 66) * 1000, ms * 1000).unwrap();
            assert_eq!(t.dts_ms, ms as u32);
            assert_eq!(t.composition_ms, 66);
        }
    }

    #[test]
    fn wraps_after_2_32_ms() {
        let mut clock = MediaClock::new(Some(0));
        let ms = (1i64 << 32) + 10;
        assert_eq!(clock.audio(ms * 1000).unwrap(), 10);
    }

    #[test]
    fn rejects_going_backwards_and_before_origin() {
        let mut clock = MediaClock::new(Some(1_000_000));
        assert!(clock.audio(999_999).is_err());
        clock.video(2_000_000, 2_000_000).unwrap();
        assert!(clock.video(1_990_000, 1_990_000).is_err());
        clock.audio(3_000_000).unwrap();
        assert!(clock.audio(2_999_000).is_err());
        assert!(clock.video(2_000_000 + (1 << 33), 2_000_000).is_err());
    }
}
