//! The session object both bindings wrap: a [`StreamSession`] on the library's runtime,
//! its event [`Dispatcher`] and, for C, its frame delivery thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use streamhub::redact::{Hidden, HiddenOption, IngestUrl, IngestUrls};
use streamhub::rtmp::CongestionPolicy;
use streamhub::session::{
    BroadcastConfig, OnStreamEnd, SessionChat, SessionError, SessionEvents, SessionState,
    SessionStats, StreamSession, WatchConfig,
};
use streamhub::whep::MediaFrame;
use tracing::warn;

use crate::dispatch::{Dispatcher, EventSink, lock};
use crate::gate::{CallbackGate, Delivery};
use crate::runtime::{self, RuntimeError};

/// What an app says about a session, in either binding. Its `Debug` hides the tokens
/// and masks the stream keys.
#[derive(Clone, Default)]
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
    /// Events buffered for the app (`None`: 256).
    pub event_capacity: Option<usize>,
    /// Watch: frames buffered for the app (`None`: 512).
    pub frame_capacity: Option<usize>,
}

impl std::fmt::Debug for SessionOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL is an ingest's (a stream key inside) or a WHEP endpoint's: mask it as
        // an ingest when it parses as one.
        let url: &dyn std::fmt::Debug = if self.url.starts_with("rtmp") {
            &IngestUrl(&self.url)
        } else {
            &self.url
        };
        f.debug_struct("SessionOptions")
            .field("url", url)
            .field("token", &HiddenOption(self.token.as_deref()))
            .field(
                "chat",
                &self
                    .chat
                    .as_ref()
                    .map(|(url, room, token)| (url, room, Hidden(token))),
            )
            .field("max_reconnect_attempts", &self.max_reconnect_attempts)
            .field("stats_interval", &self.stats_interval)
            .field("stall_timeout", &self.stall_timeout)
            .field("end_when_stream_ends", &self.end_when_stream_ends)
            .field("backup_urls", &IngestUrls(&self.backup_urls))
            .field("attempts_per_ingest", &self.attempts_per_ingest)
            .field("congestion", &self.congestion)
            .field("event_capacity", &self.event_capacity)
            .field("frame_capacity", &self.frame_capacity)
            .finish()
    }
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
        if let Some(capacity) = self.event_capacity {
            config.event_capacity = capacity;
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
        if let Some(capacity) = self.event_capacity {
            config.event_capacity = capacity;
        }
        if let Some(capacity) = self.frame_capacity {
            config.frame_capacity = capacity;
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
    frames_started: AtomicBool,
    frames_gate: Arc<CallbackGate>,
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
            frames_started: AtomicBool::new(false),
            frames_gate: Arc::new(CallbackGate::new()),
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
        if self.frames_started.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let session = self.session.clone();
        let gate = self.frames_gate.clone();
        // Detached: it ends with the session's frames, or at the first frame after the
        // gate is shut.
        std::thread::Builder::new()
            .name("streamhub-frames".into())
            .spawn(move || {
                gate.bind_current_thread();
                pump_frames(
                    || match runtime::block_on(session.next_frame()) {
                        Ok(Ok(frame)) => frame,
                        _ => None,
                    },
                    &gate,
                    sink.as_ref(),
                )
            })
            .map_err(|_| RuntimeError::StartFailed)?;
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
        self.session.stop().await
    }

    /// Stops the session and waits until its listeners got every event (up to
    /// [`EVENTS_AFTER_STOP`]; not from inside a callback, which would wait for itself).
    /// Blocking: not for a runtime thread.
    pub fn stop_blocking(&self) -> Result<SessionStats, RuntimeError> {
        let stats = runtime::block_on(self.stop())?;
        if !self.dispatcher.wait_delivered(EVENTS_AFTER_STOP) {
            warn!("the event listeners are slow: events may still be delivered after stop");
        }
        Ok(stats)
    }

    /// Ends the session for the app at once: once this returns no callback of this
    /// session runs any more (called from inside one of its callbacks, the one running
    /// now is the last), and the session stops in the background (see
    /// [`wait_for_background_stops`]). Waits only for a callback running on another
    /// thread at this moment.
    pub fn close(&self) {
        self.dispatcher.close();
        self.frames_gate.shut();
        stop_in_background(self.session.clone());
    }
}

/// How long [`Session::stop_blocking`] waits for slow listeners.
pub const EVENTS_AFTER_STOP: Duration = Duration::from_secs(5);

/// Sessions closed by the app, still stopping on the runtime.
static STOPPING: Mutex<Vec<tokio::task::JoinHandle<()>>> = Mutex::new(Vec::new());

fn stop_in_background(session: StreamSession) {
    let Ok(handle) = runtime::handle() else {
        // Shut down: the session's tasks are gone with the runtime.
        return;
    };
    let task = handle.spawn(async move {
        session.stop().await;
    });
    let mut stopping = lock(&STOPPING);
    stopping.retain(|task| !task.is_finished());
    stopping.push(task);
}

/// Waits up to `within` for the sessions closed by the app to finish stopping (a
/// broadcast unpublishes, a watch deletes its WHEP session); for a clean shutdown.
pub fn wait_for_background_stops(within: Duration) {
    let tasks = std::mem::take(&mut *lock(&STOPPING));
    if tasks.is_empty() {
        return;
    }
    let all = async move {
        for task in tasks {
            let _ = task.await;
        }
    };
    // The timer is made inside the runtime (it needs its time driver).
    match runtime::block_on(async move { tokio::time::timeout(within, all).await }) {
        Ok(Ok(())) => {}
        Ok(Err(_)) => warn!("closed sessions were still stopping at shutdown"),
        Err(error) => warn!(%error, "cannot wait for closed sessions"),
    }
}

/// The frame delivery loop: hands each frame `next` yields to `sink` until `next` says
/// the stream is over or `gate` is shut. Public for the benchmark of the callback path.
pub fn pump_frames(
    mut next: impl FnMut() -> Option<MediaFrame>,
    gate: &CallbackGate,
    sink: &dyn FrameSink,
) {
    while gate.is_open() {
        let Some(frame) = next() else {
            return;
        };
        match gate.run(|| sink.deliver(&frame)) {
            Delivery::Done => {}
            Delivery::Panicked => warn!("the frame callback panicked; the frame was skipped"),
            Delivery::Shut => return,
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Dropping is safe on any thread and never blocks: the delivery threads hold
        // their own clones and end with the session, which ends when its last handle is
        // dropped.
        self.frames_gate.shut_without_waiting();
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uniffi::types::{BroadcastOptions, ChatRoom};

    #[test]
    fn the_options_debug_form_shows_no_secret() {
        let options = SessionOptions {
            url: "rtmp://ingest.example.com/app/key-SECRET".into(),
            token: Some("whep-SECRET".into()),
            chat: Some(("ws://c/chat".into(), "room".into(), "jwt-SECRET".into())),
            backup_urls: vec!["rtmps://b.example.com/app/key-SECRET".into()],
            ..SessionOptions::default()
        };
        let record = BroadcastOptions {
            url: options.url.clone(),
            chat: Some(ChatRoom {
                url: "ws://c/chat".into(),
                room: "room".into(),
                token: "jwt-SECRET".into(),
            }),
            max_reconnect_attempts: None,
            stats_interval_ms: None,
            backup_urls: options.backup_urls.clone(),
            attempts_per_ingest: None,
            back_pressure: false,
            drop_disposable_ms: None,
            drop_until_keyframe_ms: None,
            drop_gops_ms: None,
            event_queue_capacity: None,
        };
        for shown in [format!("{options:?}"), format!("{record:?}")] {
            assert!(!shown.contains("SECRET"), "{shown}");
            assert!(
                shown.contains("rtmp://ingest.example.com/app/<key>"),
                "{shown}"
            );
        }
    }
}
