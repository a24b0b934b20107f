//! The records and enums Swift and Kotlin see, and their conversions from the core.

use std::time::Duration;

use streamhub::session::{FailReason as CoreFailReason, SessionEvent, SessionState, SessionStats};
use streamhub::whep::{Codec, MediaFrame, MediaKind};

use streamhub::redact::Hidden;

use crate::session::{CongestionOptions, SessionOptions};

/// The stream's chat room.
#[derive(Clone, uniffi::Record)]
pub struct ChatRoom {
    /// The chat server, e.g. `ws://127.0.0.1:8080/chat`.
    pub url: String,
    /// The room (named like the stream).
    pub room: String,
    /// The JWT for the server.
    pub token: String,
}

/// How to go live.
#[derive(Clone, uniffi::Record)]
pub struct BroadcastOptions {
    /// The ingest, `rtmp://host[:port]/app/key` or `rtmps://…`.
    pub url: String,
    /// The stream's chat room, if any.
    #[uniffi(default = None)]
    pub chat: Option<ChatRoom>,
    /// Consecutive failed connection attempts before the session fails (default 10; at
    /// most 4294967295, which in practice retries for ever).
    #[uniffi(default = None)]
    pub max_reconnect_attempts: Option<u32>,
    /// Period of the `Stats` event in ms; 0 turns it off (default 1000).
    #[uniffi(default = None)]
    pub stats_interval_ms: Option<u32>,
    /// Backup ingests (IVS and YouTube give one), tried in order after `url` when one
    /// fails `attempts_per_ingest` times in a row; `IngestLive` says which is live.
    #[uniffi(default = [])]
    pub backup_urls: Vec<String>,
    /// Failed attempts in a row on one ingest before the next is tried (default 2).
    #[uniffi(default = None)]
    pub attempts_per_ingest: Option<u32>,
    /// A file source: never drop, and let `sendVideo`/`sendAudio` wait while the queue
    /// is full. By default (a live source) they never wait and video is dropped by
    /// priority when media waits too long.
    #[uniffi(default = false)]
    pub back_pressure: bool,
    /// Live: media waiting longer than this (ms) drops disposable video (default 700).
    #[uniffi(default = None)]
    pub drop_disposable_ms: Option<u32>,
    /// Live: past this (ms) video is dropped until the next keyframe (default 900).
    #[uniffi(default = None)]
    pub drop_until_keyframe_ms: Option<u32>,
    /// Live: the hard cap (ms): queued video is dropped by whole GOPs (default 1000).
    /// The three must be in order; audio is never dropped.
    #[uniffi(default = None)]
    pub drop_gops_ms: Option<u32>,
    /// Events held for the listener (default 256). Chat outcomes are never dropped;
    /// other events past this are dropped and counted (`eventsDropped`).
    #[uniffi(default = None)]
    pub event_queue_capacity: Option<u32>,
}

/// How to watch.
#[derive(Clone, uniffi::Record)]
pub struct WatchOptions {
    /// The WHEP endpoint, `http(s)://…/whep/{stream}`.
    pub url: String,
    /// Bearer token for the WHEP server.
    #[uniffi(default = None)]
    pub token: Option<String>,
    /// The stream's chat room, if any.
    #[uniffi(default = None)]
    pub chat: Option<ChatRoom>,
    /// Consecutive failed connection attempts before the session fails (default 10; at
    /// most 4294967295, which in practice retries for ever).
    #[uniffi(default = None)]
    pub max_reconnect_attempts: Option<u32>,
    /// Period of the `Stats` event in ms; 0 turns it off (default 1000).
    #[uniffi(default = None)]
    pub stats_interval_ms: Option<u32>,
    /// No frame for this long (ms) counts as a lost connection (default 3000).
    #[uniffi(default = None)]
    pub stall_timeout_ms: Option<u32>,
    /// End the session once the sender ended the stream (`StreamEnded`, then `Ended`)
    /// instead of waiting for it to come back (the default).
    #[uniffi(default = false)]
    pub end_when_stream_ends: bool,
    /// Events held for the listener (default 256). Chat outcomes are never dropped;
    /// other events past this are dropped and counted (`eventsDropped`).
    #[uniffi(default = None)]
    pub event_queue_capacity: Option<u32>,
    /// Frames held for the listener (default 512); past this the newest are dropped
    /// and counted (`framesDropped`), and the next frame says so (`discontinuity`).
    #[uniffi(default = None)]
    pub frame_queue_capacity: Option<u32>,
}

// `Debug` by hand: the token stays hidden.
impl std::fmt::Debug for ChatRoom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatRoom")
            .field("url", &self.url)
            .field("room", &self.room)
            .field("token", &Hidden(&self.token))
            .finish()
    }
}

/// Shown as the session options they make (whose `Debug` hides the secrets).
impl std::fmt::Debug for BroadcastOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("BroadcastOptions")
            .field(&SessionOptions::from(self))
            .finish()
    }
}

/// Shown as the session options they make (whose `Debug` hides the secrets).
impl std::fmt::Debug for WatchOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("WatchOptions")
            .field(&SessionOptions::from(self))
            .finish()
    }
}

fn chat_triple(chat: &Option<ChatRoom>) -> Option<(String, String, String)> {
    chat.as_ref()
        .map(|c| (c.url.clone(), c.room.clone(), c.token.clone()))
}

fn ms(value: Option<u32>) -> Option<Duration> {
    value.map(|v| Duration::from_millis(v.into()))
}

/// A queue capacity from the app (u32 always fits usize on the platforms we build).
fn capacity(value: Option<u32>) -> Option<usize> {
    value.and_then(|v| usize::try_from(v).ok())
}

impl From<&BroadcastOptions> for SessionOptions {
    fn from(options: &BroadcastOptions) -> Self {
        SessionOptions {
            url: options.url.clone(),
            token: None,
            chat: chat_triple(&options.chat),
            max_reconnect_attempts: options.max_reconnect_attempts,
            stats_interval: ms(options.stats_interval_ms),
            stall_timeout: None,
            end_when_stream_ends: false,
            backup_urls: options.backup_urls.clone(),
            attempts_per_ingest: options.attempts_per_ingest,
            congestion: CongestionOptions {
                back_pressure: options.back_pressure,
                drop_disposable_at: ms(options.drop_disposable_ms),
                drop_until_keyframe_at: ms(options.drop_until_keyframe_ms),
                drop_gops_at: ms(options.drop_gops_ms),
            },
            event_capacity: capacity(options.event_queue_capacity),
            ..SessionOptions::default()
        }
    }
}

impl From<&WatchOptions> for SessionOptions {
    fn from(options: &WatchOptions) -> Self {
        SessionOptions {
            url: options.url.clone(),
            token: options.token.clone(),
            chat: chat_triple(&options.chat),
            max_reconnect_attempts: options.max_reconnect_attempts,
            stats_interval: ms(options.stats_interval_ms),
            stall_timeout: ms(options.stall_timeout_ms),
            end_when_stream_ends: options.end_when_stream_ends,
            event_capacity: capacity(options.event_queue_capacity),
            frame_capacity: capacity(options.frame_queue_capacity),
            ..SessionOptions::default()
        }
    }
}

/// Why a session failed for good.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum FailReason {
    /// The configuration cannot work.
    InvalidConfig {
        /// What is wrong.
        detail: String,
    },
    /// The server refused the credentials (WHEP 401/403).
    Unauthorized {
        /// What the server said.
        detail: String,
    },
    /// The server refused the stream (wrong application, refused or busy key).
    Rejected {
        /// What the server said.
        detail: String,
    },
    /// The stream does not exist (WHEP 404 after every retry).
    NotFound {
        /// What the server said.
        detail: String,
    },
    /// The TLS handshake failed.
    Tls {
        /// The TLS error.
        detail: String,
    },
    /// The server could not be reached after every attempt allowed.
    Unreachable {
        /// Consecutive failed attempts.
        attempts: u32,
        /// The last error.
        detail: String,
    },
}

impl From<&CoreFailReason> for FailReason {
    fn from(reason: &CoreFailReason) -> Self {
        match reason.clone() {
            CoreFailReason::InvalidConfig { detail } => FailReason::InvalidConfig { detail },
            CoreFailReason::Unauthorized { detail } => FailReason::Unauthorized { detail },
            CoreFailReason::Rejected { detail } => FailReason::Rejected { detail },
            CoreFailReason::NotFound { detail } => FailReason::NotFound { detail },
            CoreFailReason::Tls { detail } => FailReason::Tls { detail },
            CoreFailReason::Unreachable { attempts, detail } => {
                FailReason::Unreachable { attempts, detail }
            }
            other => FailReason::Rejected {
                detail: other.to_string(),
            },
        }
    }
}

/// Where a session is in its life: `Idle → Connecting → Live ⇄ Reconnecting → Ended |
/// Failed`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum StreamState {
    /// Created, nothing started.
    Idle,
    /// Opening the first connection.
    Connecting {
        /// Retries so far (0 for the first try).
        attempt: u32,
    },
    /// Media flows.
    Live,
    /// The connection was lost; the session reconnects by itself.
    Reconnecting {
        /// The attempt to come (1, 2, …).
        attempt: u32,
        /// Milliseconds until it starts.
        retry_in_ms: u64,
        /// Why the connection ended.
        reason: String,
    },
    /// Stopped by the app (or after the stream ended, with `end_when_stream_ends`).
    /// Final.
    Ended,
    /// Stopped by an error retrying cannot fix. Final.
    Failed {
        /// Why.
        reason: FailReason,
    },
    /// Watching: the sender ended the stream (not an error, not a lost connection).
    /// The session waits for it to come back (Live again), or ends with
    /// `end_when_stream_ends`.
    StreamEnded,
}

impl StreamState {
    /// True for `Ended` and `Failed`.
    pub fn is_terminal(&self) -> bool {
        matches!(self, StreamState::Ended | StreamState::Failed { .. })
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl From<&SessionState> for StreamState {
    fn from(state: &SessionState) -> Self {
        match state {
            SessionState::Idle => StreamState::Idle,
            SessionState::Connecting { attempt } => StreamState::Connecting { attempt: *attempt },
            SessionState::Live => StreamState::Live,
            SessionState::Reconnecting {
                attempt,
                retry_in,
                reason,
            } => StreamState::Reconnecting {
                attempt: *attempt,
                retry_in_ms: millis(*retry_in),
                reason: reason.clone(),
            },
            SessionState::StreamEnded => StreamState::StreamEnded,
            SessionState::Ended => StreamState::Ended,
            SessionState::Failed { reason } => StreamState::Failed {
                reason: reason.into(),
            },
            // The core may add states (it is built with this crate, so none is missing
            // today); one this binding does not know yet reads as connecting.
            _ => StreamState::Connecting { attempt: 0 },
        }
    }
}

/// Counters of a session.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct StreamStats {
    /// The state now.
    pub state: StreamState,
    /// Milliseconds since the session was created.
    pub uptime_ms: u64,
    /// Milliseconds spent Live.
    pub time_live_ms: u64,
    /// Milliseconds from creation to the first Live.
    pub time_to_live_ms: Option<u64>,
    /// Times the session went Live again after a loss.
    pub reconnects: u32,
    /// Video frames sent (broadcast) or delivered (watch).
    pub video_frames: u64,
    /// Audio frames sent or delivered.
    pub audio_frames: u64,
    /// Bytes sent or frame bytes delivered.
    pub bytes: u64,
    /// Frames dropped.
    pub frames_dropped: u64,
    /// Watch: RTP packets lost on the current connection.
    pub packets_lost: u64,
    /// Chat messages delivered.
    pub chat_messages_received: u64,
    /// Chat messages acknowledged by the server.
    pub chat_messages_sent: u64,
    /// The room's audience as last pushed.
    pub viewers: Option<u64>,
    /// Events dropped because the app did not take them in time.
    pub events_dropped: u64,
    /// Broadcast: media waiting to be delivered now, ms.
    pub queue_delay_ms: u64,
    /// Broadcast: the longest wait seen, ms.
    pub peak_queue_delay_ms: u64,
    /// Broadcast: bits per second the ingest acknowledged over the last second.
    pub delivered_bps: u64,
    /// Broadcast: the video bitrate the app's encoder should use, bits per second.
    pub recommended_bps: u64,
    /// Broadcast: smoothed round-trip time, ms.
    pub rtt_ms: Option<u64>,
    /// Broadcast: video frames dropped for congestion: disposable ones.
    pub dropped_disposable: u64,
    /// Broadcast: video frames dropped while waiting for a keyframe.
    pub dropped_until_keyframe: u64,
    /// Broadcast: queued video frames dropped at the hard cap (whole GOPs).
    pub dropped_gop: u64,
    /// Broadcast: audio frames dropped: always 0.
    pub audio_dropped: u64,
    /// Broadcast: which ingest is live (0: the URL, then the backups).
    pub ingest: u32,
    /// Watch: lost packets repaired by retransmission (NACK/RTX).
    pub packets_recovered: u64,
    /// Watch: NACKs sent.
    pub nacks_sent: u64,
    /// Watch: keyframe requests sent (PLI/FIR).
    pub keyframe_requests: u64,
    /// Watch: times the picture froze (no new frame for a while).
    pub freezes: u64,
    /// Watch: milliseconds spent frozen.
    pub frozen_ms: u64,
    /// Watch: milliseconds from the start of the connection to its first frame.
    pub first_frame_ms: Option<u64>,
}

impl From<&SessionStats> for StreamStats {
    fn from(stats: &SessionStats) -> Self {
        let chat = stats.chat.unwrap_or_default();
        let congestion = stats.congestion.as_ref();
        let play = stats.play.as_ref();
        StreamStats {
            state: (&stats.state).into(),
            uptime_ms: millis(stats.uptime),
            time_live_ms: millis(stats.time_live),
            time_to_live_ms: stats.time_to_live.map(millis),
            reconnects: stats.reconnects,
            video_frames: stats.video_frames,
            audio_frames: stats.audio_frames,
            bytes: stats.bytes,
            frames_dropped: stats.frames_dropped,
            packets_lost: play.map_or(0, |p| p.packets_lost),
            chat_messages_received: chat.messages_received,
            chat_messages_sent: chat.messages_sent,
            viewers: stats.viewers,
            events_dropped: stats.events_dropped,
            queue_delay_ms: congestion.map_or(0, |c| millis(c.waiting)),
            peak_queue_delay_ms: congestion.map_or(0, |c| millis(c.peak_waiting)),
            delivered_bps: congestion.map_or(0, |c| c.delivered_bps),
            recommended_bps: congestion.map_or(0, |c| c.recommended_bps),
            rtt_ms: congestion.and_then(|c| c.rtt).map(millis),
            dropped_disposable: congestion.map_or(0, |c| c.dropped.disposable),
            dropped_until_keyframe: congestion.map_or(0, |c| c.dropped.until_keyframe),
            dropped_gop: congestion.map_or(0, |c| c.dropped.gop),
            audio_dropped: 0,
            ingest: u32::try_from(stats.ingest).unwrap_or(u32::MAX),
            packets_recovered: play.map_or(0, |p| p.packets_recovered),
            nacks_sent: play.map_or(0, |p| p.nacks_sent),
            keyframe_requests: play.map_or(0, |p| p.pli_sent),
            freezes: play.map_or(0, |p| p.freezes),
            frozen_ms: play.map_or(0, |p| millis(p.frozen)),
            first_frame_ms: play.and_then(|p| p.first_frame).map(millis),
        }
    }
}

/// A chat message.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChatMessage {
    /// The room.
    pub room: String,
    /// Position in the room (1, 2, 3, …).
    pub seq: u64,
    /// The server's message id.
    pub id: String,
    /// Server time of publication, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// The author's user id.
    pub user_id: String,
    /// The author's display name.
    pub user_name: String,
    /// The text (empty when deleted).
    pub text: String,
    /// The sender's idempotency key.
    pub client_msg_id: Option<String>,
    /// Removed by a moderator or its author.
    pub deleted: bool,
}

/// What a session tells the app.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum StreamEvent {
    /// The lifecycle moved.
    StateChanged {
        /// The new state.
        state: StreamState,
    },
    /// Broadcast, about once a second while live: how the link is doing.
    Congestion {
        /// Media waiting to be delivered, ms.
        queue_delay_ms: u64,
        /// Bits per second the ingest acknowledged over the last second.
        delivered_bps: u64,
        /// The video bitrate the app's encoder should use, bits per second.
        recommended_bps: u64,
        /// Smoothed round-trip time, ms.
        rtt_ms: Option<u64>,
    },
    /// Broadcast: live on this ingest (0: the URL, then the backups in order).
    IngestLive {
        /// Its position.
        index: u32,
        /// Its URL with the stream key masked.
        url: String,
    },
    /// Periodic stats.
    Stats {
        /// The counters.
        stats: StreamStats,
    },
    /// Connected to the chat server.
    ChatConnected {
        /// True after a drop.
        reconnect: bool,
    },
    /// The chat connection dropped; the client reconnects by itself.
    ChatDisconnected {
        /// Why.
        reason: String,
        /// Milliseconds until the next attempt.
        retry_in_ms: u64,
    },
    /// The room was (re-)joined.
    ChatJoined {
        /// The room.
        room: String,
        /// Its audience.
        viewers: u64,
    },
    /// A chat message, exactly once and in order.
    Chat {
        /// The message.
        message: ChatMessage,
    },
    /// A message sent with `sendChat` was published.
    ChatSent {
        /// The id `sendChat` returned.
        client_msg_id: String,
        /// Its position in the room.
        seq: u64,
    },
    /// A message sent with `sendChat` was refused for good; it will not be sent.
    ChatSendFailed {
        /// The id `sendChat` returned.
        client_msg_id: String,
        /// Why.
        message: String,
    },
    /// A message of the room was hidden by a moderator or its author.
    ChatDeleted {
        /// The room.
        room: String,
        /// The message's position in the room.
        seq: u64,
    },
    /// This session was removed from the chat room (banned); the media part goes on.
    ChatKicked {
        /// The room.
        room: String,
        /// The server's reason, for logs.
        reason: String,
    },
    /// The room's audience changed.
    Viewers {
        /// Chat members and video viewers, each person once.
        count: u64,
    },
    /// Something failed that the session survives.
    Error {
        /// What.
        message: String,
    },
}

impl From<&SessionEvent> for StreamEvent {
    fn from(event: &SessionEvent) -> Self {
        match event {
            SessionEvent::StateChanged(state) => StreamEvent::StateChanged {
                state: state.into(),
            },
            SessionEvent::Stats(stats) => StreamEvent::Stats {
                stats: stats.as_ref().into(),
            },
            SessionEvent::ChatConnected { reconnect } => StreamEvent::ChatConnected {
                reconnect: *reconnect,
            },
            SessionEvent::ChatDisconnected { reason, retry_in } => StreamEvent::ChatDisconnected {
                reason: reason.clone(),
                retry_in_ms: millis(*retry_in),
            },
            SessionEvent::ChatJoined { room, viewers } => StreamEvent::ChatJoined {
                room: room.clone(),
                viewers: *viewers,
            },
            SessionEvent::Chat(message) => StreamEvent::Chat {
                message: ChatMessage {
                    room: message.room.clone(),
                    seq: message.seq,
                    id: message.id.clone(),
                    timestamp_ms: message.ts,
                    user_id: message.user.id.clone(),
                    user_name: message.user.name.clone(),
                    text: message.text.clone(),
                    client_msg_id: message.client_msg_id.clone(),
                    deleted: message.deleted,
                },
            },
            SessionEvent::ChatSent { client_msg_id, seq } => StreamEvent::ChatSent {
                client_msg_id: client_msg_id.clone(),
                seq: *seq,
            },
            SessionEvent::ChatSendFailed {
                client_msg_id,
                error,
            } => StreamEvent::ChatSendFailed {
                client_msg_id: client_msg_id.clone(),
                message: error.to_string(),
            },
            SessionEvent::ChatDeleted { room, seq } => StreamEvent::ChatDeleted {
                room: room.clone(),
                seq: *seq,
            },
            SessionEvent::ChatKicked { room, reason } => StreamEvent::ChatKicked {
                room: room.clone(),
                reason: reason.clone(),
            },
            SessionEvent::Viewers(count) => StreamEvent::Viewers { count: *count },
            SessionEvent::Error(error) => StreamEvent::Error {
                message: error.to_string(),
            },
            SessionEvent::Congestion(report) => StreamEvent::Congestion {
                queue_delay_ms: millis(report.waiting),
                delivered_bps: report.delivered_bps,
                recommended_bps: report.recommended_bps,
                rtt_ms: report.rtt.map(millis),
            },
            SessionEvent::IngestLive { index, url } => StreamEvent::IngestLive {
                index: u32::try_from(*index).unwrap_or(u32::MAX),
                url: url.clone(),
            },
            other => StreamEvent::Error {
                message: format!("unknown event: {other:?}"),
            },
        }
    }
}

/// How a video frame delimits its NAL units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum VideoFormat {
    /// Start codes (Android MediaCodec, most hardware encoders).
    AnnexB,
    /// 4-byte lengths (MP4, FLV, VideoToolbox).
    Avcc,
}

/// One H.264 access unit to send.
#[derive(Debug, Clone, uniffi::Record)]
pub struct VideoFrame {
    /// The access unit.
    pub data: Vec<u8>,
    /// How it delimits its NAL units.
    pub format: VideoFormat,
    /// An IDR frame.
    pub keyframe: bool,
    /// Presentation time, microseconds.
    pub pts_us: i64,
    /// Decode time, microseconds (`pts_us` without B-frames).
    pub dts_us: i64,
}

/// How an audio frame is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum AudioFormat {
    /// A raw AAC access unit (set the AudioSpecificConfig first).
    AacRaw,
    /// One or more ADTS frames.
    AacAdts,
    /// One Opus packet (Enhanced RTMP).
    Opus,
}

/// One audio frame to send.
#[derive(Debug, Clone, uniffi::Record)]
pub struct AudioFrame {
    /// The encoded audio.
    pub data: Vec<u8>,
    /// How it is framed.
    pub format: AudioFormat,
    /// Presentation time of the first sample, microseconds.
    pub pts_us: i64,
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum MediaType {
    /// Video.
    Video,
    /// Audio.
    Audio,
}

/// A received frame.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReceivedFrame {
    /// Audio or video.
    pub media: MediaType,
    /// The codec: `h264`, `h265`, `vp8`, `vp9`, `av1`, `opus` or a MIME type.
    pub codec: String,
    /// The encoded frame (H.264: Annex B with SPS/PPS before each IDR).
    pub data: Vec<u8>,
    /// Presentation time, microseconds on the player's clock.
    pub timestamp_us: i64,
    /// A keyframe (always true for audio).
    pub keyframe: bool,
    /// Frames were lost before this one (or the session reconnected).
    pub discontinuity: bool,
}

impl From<MediaFrame> for ReceivedFrame {
    fn from(frame: MediaFrame) -> Self {
        ReceivedFrame {
            media: match frame.kind {
                MediaKind::Video => MediaType::Video,
                MediaKind::Audio => MediaType::Audio,
            },
            codec: match &frame.codec {
                Codec::Other(mime) => mime.clone(),
                codec => codec.name().to_string(),
            },
            data: frame.data.to_vec(),
            timestamp_us: frame.timestamp_us,
            keyframe: frame.keyframe,
            discontinuity: frame.discontinuity,
        }
    }
}

/// What an FLV sample is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SampleKind {
    /// An AVCDecoderConfigurationRecord: `setVideoConfig`.
    VideoConfig,
    /// An H.264 access unit, AVCC: `sendVideo`.
    Video,
    /// An AAC AudioSpecificConfig: `setAudioConfig`.
    AudioConfig,
    /// A raw AAC frame: `sendAudio`.
    Audio,
}

/// One sample of an FLV file.
#[derive(Debug, Clone, uniffi::Record)]
pub struct FlvSample {
    /// What it is.
    pub kind: SampleKind,
    /// Its bytes.
    pub data: Vec<u8>,
    /// An IDR frame (video).
    pub keyframe: bool,
    /// Presentation time, microseconds.
    pub pts_us: i64,
    /// Decode time, microseconds.
    pub dts_us: i64,
}
