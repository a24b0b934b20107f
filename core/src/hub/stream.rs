//! One live stream as the hub holds it: the publisher's media, packetized once and
//! fanned out to every viewer, with the current group of pictures kept so that a new
//! viewer starts at a keyframe at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::sync::lock;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

/// Units a viewer may fall behind before it must resynchronise at the next keyframe.
const FANOUT_CAPACITY: usize = 1024;
/// A group of pictures longer than this is not cached (a viewer then waits for the
/// next keyframe): it bounds the memory a stream with rare keyframes can pin.
const GOP_CACHE_MAX_BYTES: usize = 16 * 1024 * 1024;
/// The same bound in frames (10 s at 60 fps).
const GOP_CACHE_MAX_FRAMES: usize = 600;

/// One video frame, already cut into RTP payloads (shared by every viewer).
#[derive(Debug)]
pub struct VideoUnit {
    /// Presentation time on a 90 kHz clock, from the stream's start.
    pub pts_90k: i64,
    /// True for an IDR frame (SPS/PPS are in front of it).
    pub keyframe: bool,
    /// RTP payloads (single NAL units, STAP-A, FU-A), in order.
    pub payloads: Vec<Bytes>,
    /// Encoded size in bytes.
    pub size: usize,
}

/// One Opus packet.
#[derive(Debug)]
pub struct AudioUnit {
    /// Presentation time on the 48 kHz Opus clock, from the stream's start.
    pub pts_48k: i64,
    /// The Opus packet.
    pub payload: Bytes,
}

/// What flows from a publisher to its viewers.
#[derive(Debug, Clone)]
pub enum MediaUnit {
    /// A video frame.
    Video(Arc<VideoUnit>),
    /// An audio packet.
    Audio(Arc<AudioUnit>),
}

/// The video track as viewers get it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoInfo {
    /// Always `h264` (passed through).
    pub codec: String,
    /// The H.264 profile, e.g. `constrained baseline`, `high`.
    pub profile: String,
    /// The `profile-level-id` of the stream (six hex digits).
    pub profile_level_id: String,
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
}

/// The audio track as viewers get it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudioInfo {
    /// Always `opus`.
    pub codec: String,
    /// What the publisher sent: `aac` (transcoded) or `opus` (passed through).
    pub source: String,
    /// Always 48000.
    pub sample_rate: u32,
    /// 1 or 2.
    pub channels: u8,
}

/// What a new viewer gets: the frames since the last keyframe, then the live feed.
pub struct Subscription {
    /// The cached group of pictures, oldest (the keyframe) first; empty if none yet.
    pub gop: Vec<Arc<VideoUnit>>,
    /// Everything published after `gop`.
    pub live: broadcast::Receiver<MediaUnit>,
    /// Turns true when the publisher leaves.
    pub ended: watch::Receiver<bool>,
}

#[derive(Default)]
struct Cache {
    gop: Vec<Arc<VideoUnit>>,
    gop_bytes: usize,
    /// The current group outgrew the cache; wait for the next keyframe.
    overflowed: bool,
    video: Option<VideoInfo>,
    audio: Option<AudioInfo>,
}

#[derive(Debug)]
struct Meter {
    window_start: Instant,
    window_bytes: u64,
    last_bps: u64,
    last_update: Instant,
}

/// A stream that is live: one publisher, any number of viewers.
pub struct LiveStream {
    name: String,
    started: Instant,
    cache: Mutex<Cache>,
    fanout: broadcast::Sender<MediaUnit>,
    ended: watch::Sender<bool>,
    meter: Mutex<Meter>,
    video_frames: AtomicU64,
    audio_packets: AtomicU64,
    whep_viewers: AtomicU64,
    /// WHEP viewers who sent a valid chat token, by user id (several sessions each).
    named_viewers: Mutex<std::collections::HashMap<String, usize>>,
}

impl LiveStream {
    /// A stream with no media yet.
    pub fn new(name: &str) -> Self {
        let now = Instant::now();
        LiveStream {
            name: name.to_string(),
            started: now,
            cache: Mutex::new(Cache::default()),
            fanout: broadcast::channel(FANOUT_CAPACITY).0,
            ended: watch::Sender::new(false),
            meter: Mutex::new(Meter {
                window_start: now,
                window_bytes: 0,
                last_bps: 0,
                last_update: now,
            }),
            video_frames: AtomicU64::new(0),
            audio_packets: AtomicU64::new(0),
            whep_viewers: AtomicU64::new(0),
            named_viewers: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The stream's name (its WHEP path and chat room).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long the stream has been live.
    pub fn live_for(&self) -> Duration {
        self.started.elapsed()
    }

    /// Records the video track's description.
    pub fn set_video_info(&self, info: VideoInfo) {
        lock(&self.cache).video = Some(info);
    }

    /// Records the audio track's description.
    pub fn set_audio_info(&self, info: AudioInfo) {
        lock(&self.cache).audio = Some(info);
    }

    /// The tracks' descriptions.
    pub fn info(&self) -> (Option<VideoInfo>, Option<AudioInfo>) {
        let cache = lock(&self.cache);
        (cache.video.clone(), cache.audio.clone())
    }

    /// Counts bytes received from the publisher, for the bitrate.
    pub fn count_input(&self, bytes: usize) {
        let mut meter = lock(&self.meter);
        let now = Instant::now();
        meter.window_bytes += bytes as u64;
        let elapsed = now.duration_since(meter.window_start);
        if elapsed >= Duration::from_secs(1) {
            meter.last_bps = (meter.window_bytes as f64 * 8.0 / elapsed.as_secs_f64()) as u64;
            meter.window_bytes = 0;
            meter.window_start = now;
        }
        meter.last_update = now;
    }

    /// Input bitrate over the last second or so (0 when nothing came for 3 s).
    pub fn bitrate_bps(&self) -> u64 {
        let meter = lock(&self.meter);
        if meter.last_update.elapsed() > Duration::from_secs(3) {
            0
        } else {
            meter.last_bps
        }
    }

    /// Hands a video frame to every viewer and to the cache.
    pub fn publish_video(&self, unit: VideoUnit) {
        let unit = Arc::new(unit);
        let mut cache = lock(&self.cache);
        if unit.keyframe {
            cache.gop.clear();
            cache.gop_bytes = 0;
            cache.overflowed = false;
        }
        if !cache.overflowed && (unit.keyframe || !cache.gop.is_empty()) {
            cache.gop_bytes += unit.size;
            cache.gop.push(unit.clone());
            if cache.gop_bytes > GOP_CACHE_MAX_BYTES || cache.gop.len() > GOP_CACHE_MAX_FRAMES {
                cache.gop.clear();
                cache.gop_bytes = 0;
                cache.overflowed = true;
            }
        }
        self.video_frames.fetch_add(1, Ordering::Relaxed);
        // Sent under the cache lock: a subscriber sees each frame in exactly one of
        // its cache snapshot or its live feed.
        let _ = self.fanout.send(MediaUnit::Video(unit));
    }

    /// Hands an audio packet to every viewer.
    pub fn publish_audio(&self, unit: AudioUnit) {
        self.audio_packets.fetch_add(1, Ordering::Relaxed);
        let _ = self.fanout.send(MediaUnit::Audio(Arc::new(unit)));
    }

    /// The cached group of pictures and the live feed after it.
    pub fn subscribe(&self) -> Subscription {
        let cache = lock(&self.cache);
        Subscription {
            gop: cache.gop.clone(),
            live: self.fanout.subscribe(),
            ended: self.ended.subscribe(),
        }
    }

    /// Video frames published so far.
    pub fn video_frames(&self) -> u64 {
        self.video_frames.load(Ordering::Relaxed)
    }

    /// Audio packets published so far.
    pub fn audio_packets(&self) -> u64 {
        self.audio_packets.load(Ordering::Relaxed)
    }

    /// Frames in the cached group of pictures.
    pub fn cached_frames(&self) -> usize {
        lock(&self.cache).gop.len()
    }

    /// WHEP viewers now.
    pub fn whep_viewers(&self) -> u64 {
        self.whep_viewers.load(Ordering::Relaxed)
    }

    /// A WHEP viewer joined, known by user id if it sent a chat token.
    pub fn viewer_joined(&self, user: Option<&str>) {
        self.whep_viewers.fetch_add(1, Ordering::Relaxed);
        if let Some(user) = user {
            *lock(&self.named_viewers)
                .entry(user.to_string())
                .or_default() += 1;
        }
    }

    /// A WHEP viewer left.
    pub fn viewer_left(&self, user: Option<&str>) {
        let _ = self
            .whep_viewers
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            });
        if let Some(user) = user {
            let mut named = lock(&self.named_viewers);
            if let Some(count) = named.get_mut(user) {
                *count -= 1;
                if *count == 0 {
                    named.remove(user);
                }
            }
        }
    }

    /// The WHEP audience: viewers without a name, and the names of the others.
    pub fn audience(&self) -> (u64, Vec<String>) {
        let named = lock(&self.named_viewers);
        let sessions: usize = named.values().sum();
        let anonymous = self.whep_viewers().saturating_sub(sessions as u64);
        (anonymous, named.keys().cloned().collect())
    }

    /// Resolves once the publisher left.
    pub async fn ended(ended: &mut watch::Receiver<bool>) {
        let _ = ended.wait_for(|ended| *ended).await;
    }

    /// The publisher left: viewers are told.
    pub fn end(&self) {
        self.ended.send_replace(true);
    }

    /// True once the publisher left.
    pub fn has_ended(&self) -> bool {
        *self.ended.borrow()
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("gop", &self.gop.len())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for LiveStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveStream")
            .field("name", &self.name)
            .field("video_frames", &self.video_frames)
            .field("audio_packets", &self.audio_packets)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(pts: i64, keyframe: bool, size: usize) -> VideoUnit {
        VideoUnit {
            pts_90k: pts,
            keyframe,
            payloads: vec![Bytes::from(vec![0u8; size])],
            size,
        }
    }

    #[test]
    fn a_subscriber_gets_the_group_since_the_last_keyframe_then_live() {
        let stream = LiveStream::new("s");
        stream.publish_video(frame(0, false, 10)); // before any keyframe: not cached
        stream.publish_video(frame(1, true, 10));
        stream.publish_video(frame(2, false, 10));
        stream.publish_video(frame(3, true, 10));
        stream.publish_video(frame(4, false, 10));
        let mut sub = stream.subscribe();
        let cached: Vec<i64> = sub.gop.iter().map(|u| u.pts_90k).collect();
        assert_eq!(cached, vec![3, 4]);
        stream.publish_video(frame(5, false, 10));
        match sub.live.try_recv() {
            Ok(MediaUnit::Video(unit)) => assert_eq!(unit.pts_90k, 5),
            other => panic!("expected frame 5, got {other:?}"),
        }
        assert!(sub.live.try_recv().is_err(), "nothing twice");
    }

    #[test]
    fn an_oversized_group_is_dropped_until_the_next_keyframe() {
        let stream = LiveStream::new("s");
        stream.publish_video(frame(0, true, GOP_CACHE_MAX_BYTES));
        stream.publish_video(frame(1, false, 10));
        assert_eq!(stream.cached_frames(), 0);
        stream.publish_video(frame(2, false, 10));
        assert_eq!(stream.cached_frames(), 0, "no group without its keyframe");
        stream.publish_video(frame(3, true, 10));
        assert_eq!(stream.cached_frames(), 1);
    }

    #[test]
    fn the_audience_counts_named_and_anonymous_viewers() {
        let stream = LiveStream::new("s");
        stream.viewer_joined(None);
        stream.viewer_joined(Some("ada"));
        stream.viewer_joined(Some("ada"));
        assert_eq!(stream.whep_viewers(), 3);
        assert_eq!(stream.audience(), (1, vec!["ada".to_string()]));
        stream.viewer_left(Some("ada"));
        assert_eq!(stream.audience(), (1, vec!["ada".to_string()]));
        stream.viewer_left(Some("ada"));
        stream.viewer_left(None);
        stream.viewer_left(None);
        assert_eq!(stream.whep_viewers(), 0, "never below zero");
        assert_eq!(stream.audience(), (0, vec![]));
    }

    #[test]
    fn ending_is_seen_by_subscribers() {
        let stream = LiveStream::new("s");
        let sub = stream.subscribe();
        assert!(!*sub.ended.borrow());
        stream.end();
        assert!(*sub.ended.borrow());
        assert!(stream.has_ended());
    }
}
