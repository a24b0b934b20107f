//! The watch side of a session: a [`Player`] per connection, replaced after a loss.
//! Each player hands its frames straight to the session's one frame queue (a
//! [`FrameSink`]), the queue [`super::StreamSession::next_frame`] reads across
//! connections: a frame crosses one queue, and is dropped and counted in one place.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use tracing::{debug, info, warn};

use super::lifecycle::{FailReason, Failure, OnStreamEnd};
use super::{AfterFailure, SessionError, SessionEvent, SessionStats, Shared, WatchConfig};
use crate::whep::frame_sink::FrameSink;
use crate::whep::{MediaFrame, MediaKind, PlayConfig, PlayStats, Player, WhepError};

/// How often the current connection's [`PlayStats`] are read.
const PLAY_STATS_REFRESH: Duration = Duration::from_millis(250);

/// Longest the DELETE of a dead WHEP session may take.
const CLOSE_LIMIT: Duration = Duration::from_secs(2);

pub(crate) fn check_url(url: &str) -> Result<(), SessionError> {
    let parsed =
        url::Url::parse(url).map_err(|e| SessionError::InvalidConfig(format!("{url}: {e}")))?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err(SessionError::InvalidConfig(format!(
            "{url}: a WHEP URL is http or https"
        )));
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Counters {
    video_frames: AtomicU64,
    audio_frames: AtomicU64,
    bytes: AtomicU64,
    dropped: AtomicU64,
}

pub(crate) struct Media {
    url: String,
    frames: tokio::sync::Mutex<mpsc::Receiver<MediaFrame>>,
    counters: Counters,
    play: Mutex<Option<PlayStats>>,
}

impl Media {
    pub(crate) fn new(config: &WatchConfig) -> (Media, mpsc::Sender<MediaFrame>) {
        let (tx, rx) = mpsc::channel(config.frame_capacity.max(1));
        let media = Media {
            url: config.url.clone(),
            frames: tokio::sync::Mutex::new(rx),
            counters: Counters::default(),
            play: Mutex::new(None),
        };
        (media, tx)
    }

    /// The next frame; `None` once `finished` is set and every frame was read.
    pub(crate) async fn next_frame(
        &self,
        mut finished: tokio::sync::watch::Receiver<bool>,
    ) -> Option<MediaFrame> {
        let mut frames = self.frames.lock().await;
        tokio::select! {
            biased;
            frame = frames.recv() => frame,
            _ = finished.wait_for(|done| *done) => frames.try_recv().ok(),
        }
    }

    fn set_play(&self, stats: Option<PlayStats>) {
        *crate::sync::lock(&self.play) = stats;
    }

    pub(crate) fn fill_stats(&self, stats: &mut SessionStats) {
        let c = &self.counters;
        stats.video_frames = c.video_frames.load(Ordering::Relaxed);
        stats.audio_frames = c.audio_frames.load(Ordering::Relaxed);
        stats.bytes = c.bytes.load(Ordering::Relaxed);
        stats.frames_dropped = c.dropped.load(Ordering::Relaxed);
        stats.play = crate::sync::lock(&self.play).clone();
    }
}

/// One connection's way into the session's frame queue.
struct ConnectionFrames {
    shared: Arc<Shared>,
    media: Arc<Media>,
    frames: mpsc::Sender<MediaFrame>,
    /// A connection after the first marks its first frame queued as a discontinuity.
    mark_pending: AtomicBool,
    went_live: AtomicBool,
    /// Notified once, by the first frame.
    first_frame: Notify,
}

impl ConnectionFrames {
    fn new(
        shared: &Arc<Shared>,
        media: &Arc<Media>,
        frames: &mpsc::Sender<MediaFrame>,
        reconnected: bool,
    ) -> Self {
        ConnectionFrames {
            shared: shared.clone(),
            media: media.clone(),
            frames: frames.clone(),
            mark_pending: AtomicBool::new(reconnected),
            went_live: AtomicBool::new(false),
            first_frame: Notify::new(),
        }
    }
}

impl FrameSink for ConnectionFrames {
    fn offer(&self, mut frame: MediaFrame) -> bool {
        // Media flows: Live before the app can read the frame.
        if !self.went_live.swap(true, Ordering::AcqRel) {
            self.shared.live();
            self.first_frame.notify_one();
        }
        let mark = self.mark_pending.swap(false, Ordering::AcqRel);
        frame.discontinuity |= mark;
        let (kind, len) = (frame.kind, frame.data.len() as u64);
        let counters = &self.media.counters;
        if self.frames.try_send(frame).is_err() {
            // The mark goes on the next frame that is queued.
            if mark {
                self.mark_pending.store(true, Ordering::Release);
            }
            counters.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let counter = match kind {
            MediaKind::Video => &counters.video_frames,
            MediaKind::Audio => &counters.audio_frames,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        counters.bytes.fetch_add(len, Ordering::Relaxed);
        true
    }
}

/// How a failed WHEP negotiation is judged.
pub(crate) fn classify(error: &WhepError) -> Failure {
    let detail = error.to_string();
    match error {
        WhepError::InvalidUrl(_) => Failure::Terminal(FailReason::InvalidConfig { detail }),
        WhepError::Status {
            status: 401 | 403, ..
        } => Failure::Terminal(FailReason::Unauthorized { detail }),
        WhepError::Status { status: 404, .. } => {
            Failure::Transient(FailReason::NotFound { detail })
        }
        WhepError::Status {
            status: 408 | 409 | 429,
            ..
        } => Failure::Transient(FailReason::Unreachable {
            attempts: 0,
            detail,
        }),
        WhepError::Status { status, .. } if (400..500).contains(status) => {
            Failure::Terminal(FailReason::Rejected { detail })
        }
        _ => Failure::Transient(FailReason::Unreachable {
            attempts: 0,
            detail,
        }),
    }
}

enum Outcome {
    Stop,
    /// The sender said goodbye: the stream is over, the network is fine.
    StreamEnded,
    Lost(String),
}

/// Plays one connection (its frames go to the session's queue by themselves) until it
/// is lost or the app stops.
async fn play(
    media: &Media,
    player: &mut Player,
    sink: &ConnectionFrames,
    stop: &mut watch::Receiver<bool>,
) -> Outcome {
    let mut refresh = tokio::time::interval(PLAY_STATS_REFRESH);
    loop {
        tokio::select! {
            biased;
            _ = super::stop_requested(stop) => return Outcome::Stop,
            () = player.played() => {
                if let Some(failure) = player.failure() {
                    return Outcome::Lost(failure.to_string());
                }
                return if player.ended_by_sender() {
                    Outcome::StreamEnded
                } else {
                    Outcome::Lost("the peer connection failed or closed".into())
                };
            }
            // The playback's figures as soon as it is live, then every refresh.
            () = sink.first_frame.notified() => media.set_play(Some(player.stats())),
            _ = refresh.tick() => media.set_play(Some(player.stats())),
        }
    }
}

/// The watch driver: negotiate, play, and negotiate again after a loss; until stopped
/// or failed.
pub(crate) async fn drive(
    shared: Arc<Shared>,
    media: Arc<Media>,
    frames: mpsc::Sender<MediaFrame>,
    config: PlayConfig,
    stall_timeout: Duration,
    on_stream_end: OnStreamEnd,
    mut stop: watch::Receiver<bool>,
) {
    // The player ends a playback without media after the session's stall timeout,
    // naming what it saw; the session then reconnects.
    let config = PlayConfig {
        stall_timeout,
        ..config
    };
    let mut connections = 0u32;
    loop {
        let sink = Arc::new(ConnectionFrames::new(
            &shared,
            &media,
            &frames,
            connections > 0,
        ));
        let attempt = tokio::select! {
            result = Player::connect_into(&media.url, config.clone(), sink.clone()) => result,
            _ = super::stop_requested(&mut stop) => return,
        };
        let next = match attempt {
            Ok(mut player) => {
                connections += 1;
                let outcome = play(&media, &mut player, &sink, &mut stop).await;
                media.set_play(Some(player.stats()));
                match tokio::time::timeout(CLOSE_LIMIT, player.close()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => info!(%error, "closing the WHEP session"),
                    Err(_) => info!("closing the WHEP session took longer than {CLOSE_LIMIT:?}"),
                }
                match outcome {
                    Outcome::Stop => return,
                    Outcome::StreamEnded => {
                        info!(?on_stream_end, "the stream ended (the sender said goodbye)");
                        shared.stream_ended(on_stream_end)
                    }
                    Outcome::Lost(reason) => {
                        warn!(%reason, "connection lost");
                        shared.emit(SessionEvent::Error(SessionError::whep("connection lost")(
                            WhepError::ConnectionLost(reason.clone()),
                        )));
                        shared.lost(&reason)
                    }
                }
            }
            Err(error) => {
                let failure = classify(&error);
                let waiting = shared.state() == super::SessionState::StreamEnded
                    && matches!(failure, Failure::Transient(FailReason::NotFound { .. }));
                if waiting {
                    // Expected while the stream is away: not an error.
                    debug!(%error, "the stream is not back yet");
                } else {
                    warn!(%error, "WHEP negotiation failed");
                    shared.emit(SessionEvent::Error(SessionError::whep("connecting")(error)));
                }
                shared.attempt_failed(failure)
            }
        };
        match super::wait_retry(next, &mut stop).await {
            AfterFailure::Retry => continue,
            AfterFailure::Stop | AfterFailure::Failed => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16) -> WhepError {
        WhepError::Status {
            status,
            body: String::new(),
        }
    }

    #[test]
    fn statuses_are_classified() {
        assert!(matches!(
            classify(&status(401)),
            Failure::Terminal(FailReason::Unauthorized { .. })
        ));
        assert!(matches!(
            classify(&status(404)),
            Failure::Transient(FailReason::NotFound { .. })
        ));
        assert!(matches!(
            classify(&status(503)),
            Failure::Transient(FailReason::Unreachable { .. })
        ));
        assert!(matches!(
            classify(&status(409)),
            Failure::Transient(FailReason::Unreachable { .. })
        ));
        assert!(matches!(
            classify(&status(400)),
            Failure::Terminal(FailReason::Rejected { .. })
        ));
        assert!(matches!(
            classify(&WhepError::Http("refused".into())),
            Failure::Transient(FailReason::Unreachable { .. })
        ));
    }

    fn video(n: u8) -> MediaFrame {
        MediaFrame {
            kind: MediaKind::Video,
            codec: crate::whep::Codec::H264,
            data: bytes::Bytes::from(vec![n; 4]),
            timestamp_us: i64::from(n),
            keyframe: n == 0,
            discontinuity: false,
        }
    }

    #[tokio::test]
    async fn a_connection_queues_into_the_one_session_queue_and_keeps_its_mark() {
        let mut config = WatchConfig::new("http://127.0.0.1:1/whep/x");
        config.frame_capacity = 1;
        let (shared, _events) = Shared::new(super::super::ReconnectPolicy::default(), 8, None);
        let (media, frames) = Media::new(&config);
        let media = Arc::new(media);
        let (_finished_tx, finished) = watch::channel(false);

        // The first connection: its first frame makes the session Live, unmarked.
        shared.start();
        let first = ConnectionFrames::new(&shared, &media, &frames, false);
        assert!(first.offer(video(0)));
        assert_eq!(shared.state(), super::super::SessionState::Live);
        // The app has not read it: the next frame is dropped, counted once.
        assert!(!first.offer(video(1)));
        // A reconnection whose first frame finds the queue full: the discontinuity
        // mark waits for the next frame that is queued.
        let second = ConnectionFrames::new(&shared, &media, &frames, true);
        assert!(!second.offer(video(2)));
        let read = media.next_frame(finished.clone()).await.expect("frame 0");
        assert!(read.keyframe && !read.discontinuity);
        assert!(second.offer(video(3)));
        let read = media.next_frame(finished.clone()).await.expect("frame 3");
        assert_eq!((read.timestamp_us, read.discontinuity), (3, true));
        assert!(second.offer(video(4)));
        let read = media.next_frame(finished).await.expect("frame 4");
        assert!(!read.discontinuity);

        let mut stats = SessionStats::default();
        media.fill_stats(&mut stats);
        assert_eq!((stats.video_frames, stats.frames_dropped), (3, 2));
    }

    #[test]
    fn only_http_urls_are_accepted() {
        assert!(check_url("http://127.0.0.1:1/whep/x").is_ok());
        assert!(check_url("rtmp://127.0.0.1/live").is_err());
        assert!(check_url("not a url").is_err());
    }
}
