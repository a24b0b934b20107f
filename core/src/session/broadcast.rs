//! The broadcast side of a session: a [`Publisher`] per connection, replaced after a
//! loss, behind a keyframe gate.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{RwLock, mpsc, watch};
use tracing::{debug, info, warn};

use super::lifecycle::{FailReason, Failure};
use super::{AfterFailure, SessionError, SessionEvent, SessionStats, Shared};
use crate::media::{AudioFrame, AudioSpecificConfig, AvcDecoderConfig, VideoFrame};
use crate::rtmp::{
    CongestionReport, DropCounts, PublishConfig, PublishStats, Publisher, RtmpError, RtmpUrl,
};
use crate::sync::lock;

/// Which frames may go out on a fresh connection.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gate {
    awaiting_keyframe: bool,
    video_seen: bool,
}

impl Gate {
    /// A new connection: nothing but a keyframe starts the video.
    pub(crate) fn reset(&mut self) {
        self.awaiting_keyframe = true;
    }

    pub(crate) fn admit_video(&mut self, keyframe: bool) -> bool {
        self.video_seen = true;
        if self.awaiting_keyframe && !keyframe {
            return false;
        }
        self.awaiting_keyframe = false;
        true
    }

    /// Audio waits for the keyframe too, once the stream is known to carry video (an
    /// audio-only stream is never held back).
    pub(crate) fn admit_audio(&self) -> bool {
        !(self.awaiting_keyframe && self.video_seen)
    }
}

pub(crate) struct Media {
    /// The ingest and its backups, in order.
    urls: Vec<RtmpUrl>,
    attempts_per_ingest: u32,
    /// The ingest in use (or last live).
    ingest: std::sync::atomic::AtomicUsize,
    config: PublishConfig,
    slot: RwLock<Option<Publisher>>,
    /// Bumped for every new connection: a loss reported for an older one is stale.
    generation: AtomicU64,
    gate: Mutex<Gate>,
    video_config: Mutex<Option<AvcDecoderConfig>>,
    audio_config: Mutex<Option<AudioSpecificConfig>>,
    configs_pending: AtomicBool,
    lost: mpsc::UnboundedSender<(u64, RtmpError)>,
    /// Counters of the connections that are over.
    past: Mutex<PublishStats>,
    /// The current connection's counters, as last read.
    current: Mutex<Option<PublishStats>>,
    dropped: AtomicU64,
    /// What the app's encoder runs at, bits per second (0: not told).
    encoder_bps: AtomicU64,
    /// Frames the app handed in (sent, dropped or not).
    handed_in: AtomicU64,
    /// The connections that are over: their drops added up, their peak wait, and the
    /// last one's recommended bitrate and RTT (shown until the next connection).
    past_link: Mutex<CongestionReport>,
}

pub(crate) type LostReceiver = mpsc::UnboundedReceiver<(u64, RtmpError)>;

impl Media {
    pub(crate) fn new(
        urls: Vec<RtmpUrl>,
        attempts_per_ingest: u32,
        config: PublishConfig,
    ) -> (Media, LostReceiver) {
        let (lost, lost_rx) = mpsc::unbounded_channel();
        let media = Media {
            urls,
            attempts_per_ingest,
            ingest: std::sync::atomic::AtomicUsize::new(0),
            config,
            slot: RwLock::new(None),
            generation: AtomicU64::new(0),
            gate: Mutex::new(Gate::default()),
            video_config: Mutex::new(None),
            audio_config: Mutex::new(None),
            configs_pending: AtomicBool::new(false),
            lost,
            past: Mutex::new(PublishStats::default()),
            current: Mutex::new(None),
            dropped: AtomicU64::new(0),
            encoder_bps: AtomicU64::new(0),
            handed_in: AtomicU64::new(0),
            past_link: Mutex::new(CongestionReport::default()),
        };
        (media, lost_rx)
    }

    pub(crate) fn set_encoder_bitrate(&self, bps: u64) {
        self.encoder_bps.store(bps, Ordering::Relaxed);
        if let Ok(slot) = self.slot.try_read()
            && let Some(publisher) = slot.as_ref()
        {
            publisher.set_encoder_bitrate(bps);
        }
    }

    fn apply_configs(&self, publisher: &Publisher) {
        let bps = self.encoder_bps.load(Ordering::Relaxed);
        if bps > 0 {
            publisher.set_encoder_bitrate(bps);
        }
        if let Some(config) = lock(&self.video_config).clone() {
            publisher.set_video_config(config);
        }
        if let Some(config) = lock(&self.audio_config).clone() {
            publisher.set_audio_config(config);
        }
    }

    pub(crate) fn set_video_config(&self, config: AvcDecoderConfig) {
        *lock(&self.video_config) = Some(config);
        self.configs_pending.store(true, Ordering::Release);
    }

    pub(crate) fn set_audio_config(&self, config: AudioSpecificConfig) {
        *lock(&self.audio_config) = Some(config);
        self.configs_pending.store(true, Ordering::Release);
    }

    /// A frame that cannot go out now: dropped and counted, unless the session is over.
    fn drop_frame(&self, shared: &Shared) -> Result<(), SessionError> {
        shared.check_open()?;
        self.dropped.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn send(
        &self,
        shared: &Shared,
        admit: impl FnOnce(&mut Gate) -> bool,
        send: impl AsyncFnOnce(&Publisher) -> Result<(), RtmpError>,
        context: &'static str,
    ) -> Result<(), SessionError> {
        self.handed_in.fetch_add(1, Ordering::Relaxed);
        let slot = self.slot.read().await;
        let Some(publisher) = slot.as_ref() else {
            return self.drop_frame(shared);
        };
        if !admit(&mut lock(&self.gate)) {
            return self.drop_frame(shared);
        }
        if self.configs_pending.swap(false, Ordering::AcqRel) {
            self.apply_configs(publisher);
        }
        let generation = self.generation.load(Ordering::Acquire);
        match send(publisher).await {
            Ok(()) => Ok(()),
            Err(e @ RtmpError::Media(_)) => Err(SessionError::rtmp(context)(e)),
            Err(e) => {
                debug!(error = %e, "send failed: connection lost");
                let _ = self.lost.send((generation, e));
                self.dropped.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    pub(crate) async fn send_video(
        &self,
        shared: &Shared,
        frame: &VideoFrame,
    ) -> Result<(), SessionError> {
        self.send(
            shared,
            |gate| gate.admit_video(frame.keyframe),
            async |p| p.send_video(frame).await,
            "sending a video frame",
        )
        .await
    }

    pub(crate) async fn send_audio(
        &self,
        shared: &Shared,
        frame: &AudioFrame,
    ) -> Result<(), SessionError> {
        self.send(
            shared,
            |gate| gate.admit_audio(),
            async |p| p.send_audio(frame).await,
            "sending an audio frame",
        )
        .await
    }

    /// Puts a new connection in place: configs applied, gate closed until a keyframe.
    async fn install(&self, publisher: Publisher) {
        let mut slot = self.slot.write().await;
        self.apply_configs(&publisher);
        self.configs_pending.store(false, Ordering::Release);
        lock(&self.gate).reset();
        *lock(&self.current) = Some(publisher.stats());
        self.generation.fetch_add(1, Ordering::AcqRel);
        *slot = Some(publisher);
    }

    /// Takes the connection out, adding its counters to the past ones; the frames it
    /// still had queued are lost with it and count as dropped.
    async fn retire(&self) -> Option<Publisher> {
        let publisher = self.slot.write().await.take()?;
        self.add_past(&publisher.stats());
        self.dropped
            .fetch_add(publisher.queued_frames(), Ordering::Relaxed);
        Some(publisher)
    }

    fn add_past(&self, stats: &PublishStats) {
        let mut past = lock(&self.past);
        past.video_frames += stats.video_frames;
        past.audio_frames += stats.audio_frames;
        past.bytes_sent += stats.bytes_sent;
        let mut link = lock(&self.past_link);
        let last = stats.congestion;
        add_drops(&mut link.dropped, last.dropped);
        link.peak_waiting = link.peak_waiting.max(last.peak_waiting);
        link.recommended_bps = last.recommended_bps;
        link.rtt = last.rtt;
        *lock(&self.current) = None;
    }

    pub(crate) fn fill_stats(&self, stats: &mut SessionStats) {
        // Never wait for the slot here: a send may hold it while the queue is full.
        if let Ok(slot) = self.slot.try_read() {
            *lock(&self.current) = slot.as_ref().map(Publisher::stats);
        }
        let current = *lock(&self.current);
        let past = *lock(&self.past);
        let now = current.unwrap_or_default();
        stats.video_frames = past.video_frames + now.video_frames;
        stats.audio_frames = past.audio_frames + now.audio_frames;
        stats.bytes = past.bytes_sent + now.bytes_sent;
        let past_link = *lock(&self.past_link);
        let mut congestion = match current {
            Some(now) => now.congestion,
            // Between connections and after the end: nothing waits or flows, the last
            // advice stands.
            None => CongestionReport {
                recommended_bps: past_link.recommended_bps,
                rtt: past_link.rtt,
                ..CongestionReport::default()
            },
        };
        add_drops(&mut congestion.dropped, past_link.dropped);
        congestion.peak_waiting = congestion.peak_waiting.max(past_link.peak_waiting);
        stats.frames_dropped = self.dropped.load(Ordering::Relaxed) + congestion.dropped.total();
        stats.congestion = Some(congestion);
        stats.ingest = self.ingest.load(Ordering::Relaxed);
        stats.frames_sent_by_app = self.handed_in.load(Ordering::Relaxed);
        stats.publish = current;
    }

    /// The current connection's link report (drops of this connection only).
    async fn congestion(&self) -> Option<CongestionReport> {
        self.slot.read().await.as_ref().map(Publisher::congestion)
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

fn add_drops(to: &mut DropCounts, more: DropCounts) {
    to.disposable += more.disposable;
    to.until_keyframe += more.until_keyframe;
    to.gop += more.gop;
}

/// How a failed connect is judged.
pub(crate) fn classify(error: &RtmpError) -> Failure {
    let detail = error.to_string();
    match error {
        RtmpError::InvalidUrl { .. } | RtmpError::TlsConfig(_) | RtmpError::InvalidConfig(_) => {
            Failure::Terminal(FailReason::InvalidConfig { detail })
        }
        RtmpError::Tls { .. } => Failure::Terminal(FailReason::Tls { detail }),
        RtmpError::ConnectRefused { .. } | RtmpError::PublishRefused { .. } => {
            Failure::Refused(FailReason::Rejected { detail })
        }
        _ => Failure::Transient(FailReason::Unreachable {
            attempts: 0,
            detail,
        }),
    }
}

/// How often [`SessionEvent::Congestion`] is sent while live.
const CONGESTION_EVENT_PERIOD: Duration = Duration::from_secs(1);

/// The broadcast driver: connect, wait for a loss, reconnect; until stopped or failed.
/// After `attempts_per_ingest` failed attempts in a row, the next ingest is tried.
pub(crate) async fn drive(
    shared: Arc<Shared>,
    media: Arc<Media>,
    mut lost: LostReceiver,
    mut stop: watch::Receiver<bool>,
) {
    let mut failures_here = 0u32;
    loop {
        let index = media.ingest.load(Ordering::Relaxed);
        let url = media.urls[index].clone();
        let attempt = tokio::select! {
            result = Publisher::connect_url(url.clone(), media.config.clone()) => result,
            _ = super::stop_requested(&mut stop) => break,
        };
        let next = match attempt {
            Ok(publisher) => {
                failures_here = 0;
                let closed = publisher.closed();
                tokio::pin!(closed);
                media.install(publisher).await;
                shared.live();
                info!(index, url = %url, "live on ingest");
                shared.emit(SessionEvent::IngestLive {
                    index,
                    url: url.to_string(),
                });
                let generation = media.generation();
                let mut reports = tokio::time::interval(CONGESTION_EVENT_PERIOD);
                reports.tick().await;
                let error = loop {
                    tokio::select! {
                        report = lost.recv() => match report {
                            Some((g, error)) if g == generation => break Some(error),
                            Some(_) => continue,
                            None => break None,
                        },
                        // A dead link is noticed without sending (paused apps too).
                        error = &mut closed => break Some(error),
                        _ = reports.tick() => {
                            if let Some(report) = media.congestion().await {
                                shared.emit(SessionEvent::Congestion(report));
                            }
                        }
                        _ = super::stop_requested(&mut stop) => break None,
                    }
                };
                let Some(error) = error else { break };
                warn!(%error, "connection lost");
                if let Some(dead) = media.retire().await {
                    // Its socket is gone: dropping ends its task without a flush.
                    drop(dead);
                }
                let reason = error.to_string();
                shared.emit(SessionEvent::Error(SessionError::rtmp("connection lost")(
                    error,
                )));
                shared.lost(&reason)
            }
            Err(error) => {
                warn!(%error, index, "connect failed");
                let failure = classify(&error);
                shared.emit(SessionEvent::Error(SessionError::rtmp("connecting")(error)));
                failures_here += 1;
                if failures_here >= media.attempts_per_ingest && media.urls.len() > 1 {
                    failures_here = 0;
                    let next = (index + 1) % media.urls.len();
                    info!(from = index, to = next, "trying the next ingest");
                    media.ingest.store(next, Ordering::Relaxed);
                }
                shared.attempt_failed(failure)
            }
        };
        match super::wait_retry(next, &mut stop).await {
            AfterFailure::Retry => continue,
            AfterFailure::Stop => break,
            AfterFailure::Failed => return,
        }
    }
    // Stopped: send what is queued and unpublish.
    if let Some(publisher) = media.retire_for_finish().await {
        let limit = media.config.flush_timeout + Duration::from_secs(5);
        let before = publisher.stats();
        let last = match tokio::time::timeout(limit, publisher.finish()).await {
            Ok(Ok(stats)) => {
                info!(?stats, "publish finished");
                stats
            }
            Ok(Err(error)) => {
                shared.emit(SessionEvent::Error(SessionError::rtmp("finishing")(error)));
                before
            }
            Err(_) => {
                warn!("finishing the publish took longer than {limit:?}");
                before
            }
        };
        media.add_past(&last);
    }
}

impl Media {
    /// Takes the connection out for a clean finish; its final counters are read after.
    async fn retire_for_finish(&self) -> Option<Publisher> {
        let publisher = self.slot.write().await.take()?;
        Some(publisher)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_opens_on_a_keyframe_and_holds_audio_only_when_there_is_video() {
        let mut gate = Gate::default();
        // First connection of an audio-first stream: audio passes.
        gate.reset();
        assert!(gate.admit_audio());
        assert!(!gate.admit_video(false));
        assert!(
            !gate.admit_audio(),
            "video seen: audio waits for the keyframe"
        );
        assert!(gate.admit_video(true));
        assert!(gate.admit_audio());
        assert!(gate.admit_video(false));
        // Reconnect: closed again until the next keyframe.
        gate.reset();
        assert!(!gate.admit_audio());
        assert!(!gate.admit_video(false));
        assert!(gate.admit_video(true));
        assert!(gate.admit_audio());
    }

    #[test]
    fn audio_only_streams_are_never_held() {
        let mut gate = Gate::default();
        gate.reset();
        assert!(gate.admit_audio());
        gate.reset();
        assert!(gate.admit_audio());
    }

    #[test]
    fn refusals_and_tls_are_classified() {
        let refused = RtmpError::PublishRefused {
            code: "NetStream.Publish.BadName".into(),
            description: "bad key".into(),
        };
        assert!(matches!(
            classify(&refused),
            Failure::Refused(FailReason::Rejected { .. })
        ));
        let lost = RtmpError::ConnectionLost {
            reason: "reset".into(),
        };
        assert!(matches!(
            classify(&lost),
            Failure::Transient(FailReason::Unreachable { .. })
        ));
        assert!(matches!(
            classify(&RtmpError::TlsConfig("x".into())),
            Failure::Terminal(FailReason::InvalidConfig { .. })
        ));
    }
}
