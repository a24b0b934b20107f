//! The objects, listener traits and functions Swift and Kotlin see.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use streamhub::media::{AudioSpecificConfig, AvcDecoderConfig};
use streamhub::session::SessionEvent;

use super::errors::{ChatError, FileError, MediaError, SessionError};
use super::types::{
    AudioFormat, AudioFrame, BroadcastOptions, FlvSample, ReceivedFrame, SampleKind, StreamEvent,
    StreamState, StreamStats, VideoFormat, VideoFrame, WatchOptions,
};
use crate::dispatch::{EventSink, lock};
use crate::flv::{SampleKind as CoreSampleKind, SampleReader};
use crate::log::{LogLevel, LogSink};
use crate::runtime;
use crate::session::{Session, SessionOptions};

/// Receives a session's events; implemented by the app.
///
/// Called on the session's `streamhub-events` thread, one event at a time and in
/// order, never with a library lock held. It may call any method of the library,
/// including `cancel()` of its own subscription.
#[uniffi::export(with_foreign)]
pub trait StreamListener: Send + Sync {
    /// One event.
    fn on_event(&self, event: StreamEvent);
}

/// A subscription to a session's events; `cancel()` (or dropping it) ends it.
#[derive(uniffi::Object)]
pub struct Subscription {
    session: Arc<Session>,
    id: u64,
}

#[uniffi::export]
impl Subscription {
    /// Ends the subscription: an event being delivered now completes, no other
    /// follows. Idempotent.
    pub fn cancel(&self) {
        self.session.dispatcher().unsubscribe(self.id);
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.session.dispatcher().unsubscribe(self.id);
    }
}

struct ListenerSink(Arc<dyn StreamListener>);

impl EventSink for ListenerSink {
    fn deliver(&self, event: &SessionEvent) {
        self.0.on_event(event.into());
    }
}

/// One live stream: a broadcast (RTMP) or a watch (WHEP), with its chat room.
///
/// Every method may be called from any thread. `async` methods run on the library's
/// runtime whatever executor awaits them. Dropping the last reference ends the session
/// as `stop()` would, in the background.
#[derive(uniffi::Object)]
pub struct StreamSession {
    session: Arc<Session>,
}

#[uniffi::export]
impl StreamSession {
    /// Goes live: starts publishing to `options.url` (and joining the chat room) in the
    /// background and returns at once, connecting.
    #[uniffi::constructor]
    pub fn broadcast(options: BroadcastOptions) -> Result<Arc<Self>, SessionError> {
        let session = Session::broadcast(&SessionOptions::from(&options))?;
        Ok(Arc::new(StreamSession {
            session: Arc::new(session),
        }))
    }

    /// Starts watching `options.url` (and joining the chat room) in the background.
    #[uniffi::constructor]
    pub fn watch(options: WatchOptions) -> Result<Arc<Self>, SessionError> {
        let session = Session::watch(&SessionOptions::from(&options))?;
        Ok(Arc::new(StreamSession {
            session: Arc::new(session),
        }))
    }

    /// Sends the session's events to `listener` until the returned subscription is
    /// cancelled or dropped — keep it: on the JVM a subscription nobody holds is dropped
    /// at the garbage collector's next whim. Events from before the first subscription
    /// are kept (up to 256) and delivered to it.
    pub fn subscribe(
        &self,
        listener: Arc<dyn StreamListener>,
    ) -> Result<Arc<Subscription>, SessionError> {
        let id = self.session.subscribe(Arc::new(ListenerSink(listener)))?;
        Ok(Arc::new(Subscription {
            session: self.session.clone(),
            id,
        }))
    }

    /// The state now.
    pub fn state(&self) -> StreamState {
        (&self.session.core().state()).into()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> StreamStats {
        (&self.session.core().stats()).into()
    }

    /// Waits up to `timeout_ms` until the session is Live, Ended or Failed; returns the
    /// state then.
    pub async fn wait_live(&self, timeout_ms: u32) -> Result<StreamState, SessionError> {
        let session = self.session.clone();
        let within = Duration::from_millis(timeout_ms.into());
        let state = runtime::spawn(async move { session.wait_live(within).await }).await?;
        Ok((&state).into())
    }

    /// Sets the H.264 configuration (an AVCDecoderConfigurationRecord) of a broadcast.
    pub fn set_video_config(&self, record: Vec<u8>) -> Result<(), MediaError> {
        let config = AvcDecoderConfig::parse(&record).map_err(|e| MediaError::InvalidMedia {
            detail: e.to_string(),
        })?;
        Ok(self.session.core().set_video_config(config)?)
    }

    /// Sets the AAC AudioSpecificConfig of a broadcast (required for raw AAC).
    pub fn set_audio_config(&self, config: Vec<u8>) -> Result<(), MediaError> {
        let config = AudioSpecificConfig::parse(&config).map_err(|e| MediaError::InvalidMedia {
            detail: e.to_string(),
        })?;
        Ok(self.session.core().set_audio_config(config)?)
    }

    /// Tells a broadcast what its video encoder now runs at, bits per second (for
    /// example after following `recommendedBps` of the `Congestion` event): later
    /// recommendations start from there.
    pub fn set_encoder_bitrate(&self, bits_per_second: u64) -> Result<(), MediaError> {
        Ok(self.session.core().set_encoder_bitrate(bits_per_second)?)
    }

    /// Sends one H.264 access unit (broadcast), suspending while the send queue is
    /// full. Frames sent while not Live are dropped and counted. A cancelled call still
    /// sends its frame (it runs on the library's runtime).
    pub async fn send_video(&self, frame: VideoFrame) -> Result<(), MediaError> {
        let core = self.session.core().clone();
        let video = streamhub::media::VideoFrame::new(
            Bytes::from(frame.data),
            match frame.format {
                VideoFormat::AnnexB => streamhub::media::VideoFormat::AnnexB,
                VideoFormat::Avcc => streamhub::media::VideoFormat::Avcc,
            },
            frame.keyframe,
            frame.pts_us,
        )
        .with_dts(frame.dts_us);
        Ok(runtime::spawn(async move { core.send_video(&video).await }).await??)
    }

    /// Sends one audio frame (broadcast), like sending video.
    pub async fn send_audio(&self, frame: AudioFrame) -> Result<(), MediaError> {
        let core = self.session.core().clone();
        let audio = streamhub::media::AudioFrame::new(
            Bytes::from(frame.data),
            match frame.format {
                AudioFormat::AacRaw => streamhub::media::AudioFormat::AacRaw,
                AudioFormat::AacAdts => streamhub::media::AudioFormat::AacAdts,
                AudioFormat::Opus => streamhub::media::AudioFormat::Opus,
            },
            frame.pts_us,
        );
        Ok(runtime::spawn(async move { core.send_audio(&audio).await }).await??)
    }

    /// The next received frame (watch), across reconnects; nothing (null, nil) once the
    /// session is over and every frame was read. Cancelling the call loses no frame: the
    /// wait happens in the caller's own task, not on the library's runtime.
    pub async fn next_frame(&self) -> Result<Option<ReceivedFrame>, MediaError> {
        // The frame queue is tokio channels only (no timers, no I/O), so it can be
        // awaited on any executor and dropped at any point without losing a frame.
        let frame = self.session.core().next_frame().await?;
        Ok(frame.map(ReceivedFrame::from))
    }

    /// Queues a chat message for the room; returns its client message id. The outcome
    /// arrives as `ChatSent` or `ChatSendFailed`, never dropped; the message survives
    /// chat reconnects.
    pub async fn send_chat(&self, text: String) -> Result<String, ChatError> {
        let core = self.session.core().clone();
        Ok(runtime::spawn(async move { core.send_chat(&text).await }).await??)
    }

    /// Ends the session (bounded) and returns the final counters. Idempotent.
    pub async fn stop(&self) -> Result<StreamStats, SessionError> {
        let session = self.session.clone();
        let stats = runtime::spawn(async move { session.stop().await }).await?;
        Ok((&stats).into())
    }
}

/// Reads an FLV file (H.264 + AAC) as samples to push.
#[derive(uniffi::Object)]
pub struct FlvReader {
    reader: Mutex<SampleReader>,
}

#[uniffi::export]
impl FlvReader {
    /// Opens `path`.
    #[uniffi::constructor]
    pub fn open(path: String) -> Result<Arc<Self>, FileError> {
        let reader = SampleReader::open(Path::new(&path)).map_err(|e| FileError::Unreadable {
            detail: format!("{path}: {e}"),
        })?;
        Ok(Arc::new(FlvReader {
            reader: Mutex::new(reader),
        }))
    }

    /// The next sample; nothing (null, nil) at the end of the file.
    pub fn next_sample(&self) -> Result<Option<FlvSample>, FileError> {
        let sample = lock(&self.reader)
            .next_sample()
            .map_err(|e| FileError::Unreadable {
                detail: e.to_string(),
            })?;
        Ok(sample.map(|sample| FlvSample {
            kind: match sample.kind {
                CoreSampleKind::VideoConfig => SampleKind::VideoConfig,
                CoreSampleKind::Video => SampleKind::Video,
                CoreSampleKind::AudioConfig => SampleKind::AudioConfig,
                CoreSampleKind::Audio => SampleKind::Audio,
            },
            data: sample.data.to_vec(),
            keyframe: sample.keyframe,
            pts_us: sample.pts_us,
            dts_us: sample.dts_us,
        }))
    }
}

/// Receives the library's log lines; implemented by the app. Called on whichever
/// thread logs (the library's runtime threads among them): keep it quick.
#[uniffi::export(with_foreign)]
pub trait LogListener: Send + Sync {
    /// One line: level (1 error … 5 trace), module path, message.
    fn on_log(&self, level: u8, target: String, message: String);
}

struct ListenerLog(Arc<dyn LogListener>);

impl LogSink for ListenerLog {
    fn log(&self, level: LogLevel, target: &str, message: &str) {
        self.0
            .on_log(level as u8, target.to_string(), message.to_string());
    }
}

/// Sends log lines at `level` (1 error … 5 trace; 0 off) and above to `listener`;
/// no listener turns logging off.
#[uniffi::export]
pub fn set_log_listener(level: u8, listener: Option<Arc<dyn LogListener>>) {
    let level = LogLevel::from_i32(level.into()).unwrap_or(LogLevel::Trace);
    crate::log::set_sink(
        level,
        listener.map(|listener| Box::new(ListenerLog(listener)) as Box<dyn LogSink>),
    );
}

/// The library's version.
#[uniffi::export]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Stops the library's runtime (sessions still running end abruptly; stop them first).
/// Afterwards every call fails with a `ShutDown` error. For apps that unload the
/// library or tests; most apps never call it.
#[uniffi::export]
pub fn shutdown(timeout_ms: u32) {
    runtime::shutdown(Duration::from_millis(timeout_ms.into()));
}

/// Panics inside the library on purpose, so an app can check that a library panic
/// reaches it as an error (Kotlin: `InternalException`; Swift: a thrown error). A panic
/// surfaces as an error from calls that can throw; in Swift, a call that cannot throw
/// (`state()`, `stats()`) would trap instead — none of them is known to panic.
#[uniffi::export]
pub fn debug_panic(message: String) -> Result<(), SessionError> {
    panic!("debug_panic: {message}");
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for StreamSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSession")
            .field("session", &self.session)
            .finish()
    }
}

impl std::fmt::Debug for FlvReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlvReader").finish_non_exhaustive()
    }
}
