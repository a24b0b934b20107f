//! The session object both bindings wrap: a [`StreamSession`] on the library's runtime,
//! its event [`Dispatcher`] and, for C, its frame delivery thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use streamhub::rtmp::CongestionPolicy;
use streamhub::session::{
    BroadcastConfig, OnStreamEnd, SessionChat, SessionError, SessionEvents, SessionState,
    SessionStats, StreamSession, WatchConfig,
};
use streamhub::whep::MediaFrame;
use tracing::warn;

use crate::dispatch::{Dispatcher, EventSink, lock};
use crate::runtime::{self, RuntimeError};

/// What an app says about a session, in either binding.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// `rtmp(s)://…` to broadcast, the WHEP endpoint `http(s)://…` to watch.
    pub url: String,
    /// Bearer token for the WHEP server (watch).
    pub token: Option<String>,
    /// The stream's chat room: server URL, room, JWT.
    pub chat: Option<(String, String, String)>,
    /// Consecutive failed connection attempts before the session fails (`None`: the
    /// default, 10).
    pub max_reconnect_attempts: Option<u32>,
    /// Stats event period; 0 turns it off (`None`: 1 s).
    pub stats_interval: Option<Duration>,
    /// Watch: no frame for this long counts as a lost connection (`None`: 3 s).
    pub stall_timeout: Option<Duration>,
    /// Watch: end the session once the sender ended the stream, instead of waiting for
    /// the stream to come back.
    pub end_when_stream_ends: bool,
    /// Broadcast: backup ingests, tried in order after `url`.
    pub backup_urls: Vec<String>,
    /// Broadcast: failed attempts in a row on one ingest before the next (`None`: 2).
    pub attempts_per_ingest: Option<u32>,
    /// Broadcast: what to do when media waits too long.
    pub congestion: CongestionOptions,
}

/// Broadcast: the congestion policy as the app sets it; `None`s keep the defaults of
/// [`CongestionPolicy::live`] (700 ms, 900 ms, 1 s).
#[derive(Debug, Clone, Copy, Default)]
pub struct CongestionOptions {
    /// Never drop and let `send_*` wait instead (a file source).
    pub back_pressure: bool,
    /// Waiting media past which disposable video is dropped.
    pub drop_disposable_at: Option<Duration>,
    /// Waiting media past which video is dropped until the next keyframe.
    pub drop_until_keyframe_at: Option<Duration>,
    /// Waiting media past which queued video is dropped by whole GOPs.
    pub drop_gops_at: Option<Duration>,
}

impl CongestionOptions {
    fn policy(&self) -> CongestionPolicy {
        if self.back_pressure {
            return CongestionPolicy::back_pressure();
        }
        let live = CongestionPolicy::live();
        CongestionPolicy::live_with(
            self.drop_disposable_at.unwrap_or(live.drop_disposable_at),
            self.drop_until_keyframe_at
                .unwrap_or(live.drop_until_keyframe_at),
            self.drop_gops_at.unwrap_or(live.drop_gops_at),
        )
    }
}

impl SessionOptions {
    fn chat(&self) -> Option<SessionChat> {
        self.chat
            .as_ref()
            .map(|(url, room, token)| SessionChat::new(url, room, token))
    }

    fn broadcast_config(&self) -> BroadcastConfig {
        let mut config = BroadcastConfig::new(&self.url);
        config.chat = self.chat();
        config.backup_urls = self.backup_urls.clone();
        if let Some(attempts) = self.attempts_per_ingest {
            config.attempts_per_ingest = attempts;
        }
        config.publish.congestion = self.congestion.policy();
        if let Some(max) = self.max_reconnect_attempts {
            config.reconnect.max_attempts = Some(max);
        }
        if let Some(interval) = self.stats_interval {
            config.stats_interval = interval;
        }
        config
    }

    fn watch_config(&self) -> WatchConfig {
        let mut config = WatchConfig::new(&self.url);
        config.chat = self.chat();
        config.play.token = self.token.clone();
        if let Some(max) = self.max_reconnect_attempts {
            config.reconnect.max_attempts = Some(max);
        }
        if let Some(interval) = self.stats_interval {
            config.stats_interval = interval;
        }
        if let Some(stall) = self.stall_timeout {
            config.stall_timeout = stall;
        }
        if self.end_when_stream_ends {
            config.on_stream_end = OnStreamEnd::End;
        }
        config
    }
}

/// Why a session could not be created.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The core refused the configuration.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The runtime is not available.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// Receives a watch session's frames on its `streamhub-frames` thread (C only; the
/// uniffi bindings pull frames with an async call instead).
pub trait FrameSink: Send + Sync {
    /// Called once per frame, in order.
    fn deliver(&self, frame: &MediaFrame);
}

/// One session as the bindings hold it.
pub struct Session {
    session: StreamSession,
    dispatcher: Dispatcher,
    frames: Mutex<Option<JoinHandle<()>>>,
    closed: Arc<AtomicBool>,
}

impl Session {
    /// Starts a broadcast on the library's runtime.
    pub fn broadcast(options: &SessionOptions) -> Result<Session, OpenError> {
        let handle = runtime::handle()?;
        let _entered = handle.enter();
        let (session, events) = StreamSession::broadcast(options.broadcast_config())?;
        Ok(Self::wrap(session, events))
    }

    /// Starts watching on the library's runtime.
    pub fn watch(options: &SessionOptions) -> Result<Session, OpenError> {
        let handle = runtime::handle()?;
        let _entered = handle.enter();
        let (session, events) = StreamSession::watch(options.watch_config())?;
        Ok(Self::wrap(session, events))
    }

    fn wrap(session: StreamSession, events: SessionEvents) -> Session {
        Session {
            session,
            dispatcher: Dispatcher::new(events),
            frames: Mutex::new(None),
            closed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The core session.
    pub fn core(&self) -> &StreamSession {
        &self.session
    }

    /// The session's event fan-out.
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    /// Starts delivering frames to `sink` on a `streamhub-frames` thread until the
    /// session ends or [`Session::close`] is called. Only one sink per session.
    pub fn deliver_frames(&self, sink: Arc<dyn FrameSink>) -> Result<(), RuntimeError> {
        let mut slot = lock(&self.frames);
        if slot.is_some() {
            return Ok(());
        }
        let session = self.session.clone();
        let closed = self.closed.clone();
        let thread = std::thread::Builder::new()
            .name("streamhub-frames".into())
            .spawn(move || {
                pump_frames(
                    || match runtime::block_on(session.next_frame()) {
                        Ok(Ok(frame)) => frame,
                        _ => None,
                    },
                    &closed,
                    sink.as_ref(),
                )
            })
            .map_err(|_| RuntimeError::StartFailed)?;
        *slot = Some(thread);
        Ok(())
    }

    /// Subscribes `sink` to the session's events.
    pub fn subscribe(&self, sink: Arc<dyn EventSink>) -> Result<u64, RuntimeError> {
        self.dispatcher.subscribe(sink)
    }

    /// Waits up to `within` until the session is Live, Ended or Failed; the state then.
    pub async fn wait_live(&self, within: Duration) -> SessionState {
        self.session
            .wait_for_state(within, |state| {
                matches!(state, SessionState::Live) || state.is_terminal()
            })
            .await
    }

    /// Stops the session (bounded, see [`StreamSession::stop`]) and returns its final
    /// stats.
    pub async fn stop(&self) -> SessionStats {
        match self.session.stop().await {
            Ok(stats) => stats,
            Err(_) => self.session.stats(),
        }
    }

    /// Ends the session for the app: stops it, and once this returns no callback of
    /// this session runs any more — unless called from inside one of its callbacks,
    /// where the callback running now is the last.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if runtime::block_on(self.session.stop()).is_err() {
            // No runtime (shut down, or a runtime thread): the session's tasks are gone
            // or will see the stop flag when the last handle drops.
            warn!("closing a session without its runtime");
        }
        self.dispatcher.close();
        let frames = lock(&self.frames).take();
        if let Some(thread) = frames
            && thread.thread().id() != std::thread::current().id()
            && thread.join().is_err()
        {
            warn!("the frame delivery thread panicked");
        }
    }
}

/// The frame delivery loop: hands each frame `next` yields to `sink` until `next` says
/// the stream is over or `closed` is set. Public for the benchmark of the callback path.
pub fn pump_frames(
    mut next: impl FnMut() -> Option<MediaFrame>,
    closed: &AtomicBool,
    sink: &dyn FrameSink,
) {
    while !closed.load(Ordering::Acquire) {
        let Some(frame) = next() else {
            return;
        };
        if closed.load(Ordering::Acquire) {
            return;
        }
        let delivered =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink.deliver(&frame)));
        if delivered.is_err() {
            warn!("the frame callback panicked; the frame was skipped");
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Dropping is safe on any thread: the delivery threads hold their own clones
        // and end with the session, which ends when its last handle is dropped.
        self.closed.store(true, Ordering::Release);
    }
}
