//! What C callbacks receive: session events, stats, states and frames as flat C
//! structs, with the strings they point to kept alive for the duration of the call.

use std::ffi::{CString, c_char, c_void};

use streamhub::session::{FailReason, SessionEvent, SessionState, SessionStats};
use streamhub::whep::{Codec, MediaFrame, MediaKind};

use super::versioned::{Versioned, own_size};
use crate::dispatch::EventSink;
use crate::session::FrameSink;

/// Where a session is in its life (see `streamhub_event` for the details that go with
/// each state).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum streamhub_state {
    /// Created, nothing started.
    STREAMHUB_STATE_IDLE = 0,
    /// Opening the first connection.
    STREAMHUB_STATE_CONNECTING = 1,
    /// Media flows.
    STREAMHUB_STATE_LIVE = 2,
    /// The connection was lost; the session reconnects by itself.
    STREAMHUB_STATE_RECONNECTING = 3,
    /// Stopped by the app. Final.
    STREAMHUB_STATE_ENDED = 4,
    /// Stopped by an error retrying cannot fix. Final.
    STREAMHUB_STATE_FAILED = 5,
    /// Watch: the sender ended the stream (not an error, not a lost connection). Then,
    /// as `streamhub_session_config.on_stream_end` says, the session waits for the
    /// stream to come back (Live again) or ends (`STREAMHUB_STATE_ENDED`).
    STREAMHUB_STATE_STREAM_ENDED = 6,
}

/// Why a session failed (with `STREAMHUB_STATE_FAILED`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum streamhub_fail_reason {
    /// Not failed.
    STREAMHUB_FAIL_NONE = 0,
    /// The configuration cannot work.
    STREAMHUB_FAIL_INVALID_CONFIG = 1,
    /// The server refused the credentials (WHEP 401/403).
    STREAMHUB_FAIL_UNAUTHORIZED = 2,
    /// The server refused the stream (wrong application, refused or busy key).
    STREAMHUB_FAIL_REJECTED = 3,
    /// The stream does not exist (WHEP 404 after every retry).
    STREAMHUB_FAIL_NOT_FOUND = 4,
    /// The TLS handshake failed.
    STREAMHUB_FAIL_TLS = 5,
    /// The server could not be reached after every attempt allowed.
    STREAMHUB_FAIL_UNREACHABLE = 6,
    /// A reason this version does not know.
    STREAMHUB_FAIL_OTHER = 7,
}

/// A state with its details.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct streamhub_state_info {
    /// `sizeof(streamhub_state_info)`, set by the app before the call (see the header's
    /// compatibility rule); the library sets it to the bytes it wrote.
    pub struct_size: u32,
    /// The state.
    pub state: streamhub_state,
    /// Why, for `STREAMHUB_STATE_FAILED`.
    pub fail_reason: streamhub_fail_reason,
    /// Connecting: retries so far (0 for the first try); reconnecting: the attempt to
    /// come (1, 2, …).
    pub attempt: u32,
    /// Reconnecting: milliseconds until the next attempt.
    pub retry_in_ms: u64,
}

/// Counters of a session (`streamhub_session_stats`, `STREAMHUB_EVENT_STATS`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct streamhub_stats {
    /// `sizeof(streamhub_stats)`, set by the app before the call (see the header's
    /// compatibility rule); the library sets it to the bytes it wrote. In
    /// `STREAMHUB_EVENT_STATS`, the library's size.
    pub struct_size: u32,
    /// The state now.
    pub state: streamhub_state,
    /// Milliseconds since the session was created.
    pub uptime_ms: u64,
    /// Milliseconds spent Live.
    pub time_live_ms: u64,
    /// Milliseconds spent Reconnecting.
    pub time_reconnecting_ms: u64,
    /// Milliseconds from creation to the first Live; -1 before.
    pub time_to_live_ms: i64,
    /// Times the session went Live again after a loss.
    pub reconnects: u32,
    /// Video frames sent (broadcast) or delivered (watch).
    pub video_frames: u64,
    /// Audio frames sent or delivered.
    pub audio_frames: u64,
    /// Bytes sent (RTMP framing included) or frame bytes delivered.
    pub bytes: u64,
    /// Frames dropped (sent while not Live; not taken by the app in time).
    pub frames_dropped: u64,
    /// Watch: RTP packets received on the current connection.
    pub packets_received: u64,
    /// Watch: RTP packets lost on the current connection.
    pub packets_lost: u64,
    /// True while connected to the chat server.
    pub chat_connected: bool,
    /// Chat messages delivered.
    pub chat_messages_received: u64,
    /// Chat messages acknowledged by the server.
    pub chat_messages_sent: u64,
    /// Chat messages refused for good.
    pub chat_send_failures: u64,
    /// The room's audience as last pushed; -1 when unknown.
    pub viewers: i64,
    /// Events dropped because the app's callback was too slow.
    pub events_dropped: u64,
    /// Broadcast: media waiting to be delivered now (queued, in the socket or in flight), ms.
    pub queue_delay_ms: u64,
    /// Broadcast: the longest wait seen, ms.
    pub peak_queue_delay_ms: u64,
    /// Broadcast: bits per second the ingest acknowledged over the last second.
    pub delivered_bps: u64,
    /// Broadcast: the video bitrate the app's encoder should use, bits per second.
    pub recommended_bps: u64,
    /// Broadcast: smoothed round-trip time in ms; -1 when the platform does not tell.
    pub rtt_ms: i64,
    /// Broadcast: disposable video frames dropped for congestion.
    pub dropped_disposable: u64,
    /// Broadcast: video frames dropped while waiting for a keyframe.
    pub dropped_until_keyframe: u64,
    /// Broadcast: queued video frames dropped at the hard cap (whole GOPs).
    pub dropped_gop: u64,
    /// Broadcast: audio frames dropped for congestion: always 0 (audio is never dropped).
    pub audio_dropped: u64,
    /// Broadcast: which ingest is live (0: the URL, 1…: the backups in order).
    pub ingest: u32,
    /// Since ABI 2. Watch: lost packets repaired by retransmission (NACK/RTX).
    pub packets_recovered: u64,
    /// Since ABI 2. Watch: NACKs sent.
    pub nacks_sent: u64,
    /// Since ABI 2. Watch: keyframe requests sent (PLI/FIR).
    pub keyframe_requests: u64,
    /// Since ABI 2. Watch: times the picture froze (no new frame for a while).
    pub freezes: u64,
    /// Since ABI 2. Watch: milliseconds spent frozen.
    pub frozen_ms: u64,
    /// Since ABI 2. Watch: milliseconds from the start of the connection to its first
    /// frame; -1 before.
    pub first_frame_ms: i64,
}

/// `sizeof(streamhub_stats)` in ABI 1 (`ffi/abi/streamhub-abi1.h`).
const STATS_ABI1_SIZE: usize = 224;
const _: () = assert!(std::mem::offset_of!(streamhub_stats, packets_recovered) == STATS_ABI1_SIZE);

/// What happened (which fields of `streamhub_event` are set).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum streamhub_event_kind {
    /// `state`; `text`: why (reconnecting, failed), else "".
    STREAMHUB_EVENT_STATE_CHANGED = 0,
    /// `stats`.
    STREAMHUB_EVENT_STATS = 1,
    /// `reconnect`: true after a drop.
    STREAMHUB_EVENT_CHAT_CONNECTED = 2,
    /// `text`: why; `state.retry_in_ms`: when the chat client tries again.
    STREAMHUB_EVENT_CHAT_DISCONNECTED = 3,
    /// `room`, `viewers`.
    STREAMHUB_EVENT_CHAT_JOINED = 4,
    /// A chat message, exactly once and in order: `room`, `seq`, `message_id`,
    /// `timestamp_ms`, `user_id`, `user_name`, `text`, `client_msg_id`, `deleted`.
    STREAMHUB_EVENT_CHAT_MESSAGE = 5,
    /// A message sent with `streamhub_session_send_chat` was published: `client_msg_id`,
    /// `seq`.
    STREAMHUB_EVENT_CHAT_SENT = 6,
    /// The room's audience changed: `viewers`.
    STREAMHUB_EVENT_VIEWERS = 7,
    /// Something failed that the session survives: `text`.
    STREAMHUB_EVENT_ERROR = 8,
    /// Broadcast, about once a second while live: `queue_delay_ms`, `delivered_bps`,
    /// `recommended_bps` (the video bitrate the encoder should use), `rtt_ms`.
    STREAMHUB_EVENT_CONGESTION = 9,
    /// Broadcast: live on ingest `ingest` (0: the URL, then the backups); `text`: its URL
    /// with the stream key masked.
    STREAMHUB_EVENT_INGEST_LIVE = 10,
    /// A message sent with `streamhub_session_send_chat` was refused for good and will
    /// not be sent: `client_msg_id`, `text` (why).
    STREAMHUB_EVENT_CHAT_SEND_FAILED = 11,
    /// A message of the room was hidden by a moderator or its author: `room`, `seq`.
    STREAMHUB_EVENT_CHAT_DELETED = 12,
    /// This session was removed from the chat room (banned): `room`, `text` (the
    /// server's reason). The media part goes on.
    STREAMHUB_EVENT_CHAT_KICKED = 13,
}

/// One event. Strings are NUL-terminated UTF-8, never NULL (empty when they do not
/// apply), and like `stats` valid only during the callback: copy what you keep.
#[repr(C)]
#[derive(Debug)]
pub struct streamhub_event {
    /// `sizeof(streamhub_event)` in the library: a field past it is not there (an app
    /// built against a newer header than the library).
    pub struct_size: u32,
    /// What happened.
    pub kind: streamhub_event_kind,
    /// The new state (STATE_CHANGED; `retry_in_ms` also for CHAT_DISCONNECTED); never
    /// NULL.
    pub state: *const streamhub_state_info,
    /// See the event kinds.
    pub text: *const c_char,
    /// The room (CHAT_JOINED, CHAT_MESSAGE).
    pub room: *const c_char,
    /// The author's user id (CHAT_MESSAGE).
    pub user_id: *const c_char,
    /// The author's display name (CHAT_MESSAGE).
    pub user_name: *const c_char,
    /// The server's message id (CHAT_MESSAGE).
    pub message_id: *const c_char,
    /// The sender's idempotency key (CHAT_MESSAGE, CHAT_SENT); "" when none.
    pub client_msg_id: *const c_char,
    /// Position in the room (CHAT_MESSAGE, CHAT_SENT).
    pub seq: u64,
    /// Server time of publication, ms since the Unix epoch (CHAT_MESSAGE).
    pub timestamp_ms: u64,
    /// The room's audience (CHAT_JOINED, VIEWERS).
    pub viewers: u64,
    /// CHAT_CONNECTED after a drop.
    pub reconnect: bool,
    /// CHAT_MESSAGE removed by a moderator or its author.
    pub deleted: bool,
    /// STATS; NULL otherwise.
    pub stats: *const streamhub_stats,
    /// CONGESTION: media waiting to be delivered, ms.
    pub queue_delay_ms: u64,
    /// CONGESTION: bits per second the ingest acknowledged over the last second.
    pub delivered_bps: u64,
    /// CONGESTION: the video bitrate the app's encoder should use, bits per second.
    pub recommended_bps: u64,
    /// CONGESTION: smoothed round-trip time in ms; -1 when unknown.
    pub rtt_ms: i64,
    /// INGEST_LIVE: which ingest.
    pub ingest: u32,
}

/// Called with each event of a session, on the session's `streamhub-events` thread.
pub type streamhub_event_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, event: *const streamhub_event)>;

/// Audio or video.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum streamhub_media_kind {
    /// Video.
    STREAMHUB_MEDIA_VIDEO = 0,
    /// Audio.
    STREAMHUB_MEDIA_AUDIO = 1,
}

/// The codec of a received frame.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum streamhub_codec {
    /// H.264, Annex B with SPS/PPS before every IDR.
    STREAMHUB_CODEC_H264 = 0,
    /// VP8 frames.
    STREAMHUB_CODEC_VP8 = 1,
    /// Opus packets.
    STREAMHUB_CODEC_OPUS = 2,
    /// Another codec.
    STREAMHUB_CODEC_OTHER = 3,
    /// VP9 pictures (every spatial layer).
    STREAMHUB_CODEC_VP9 = 4,
    /// AV1 temporal units, Low Overhead Bitstream Format (OBUs with sizes).
    STREAMHUB_CODEC_AV1 = 5,
    /// H.265, Annex B with VPS/SPS/PPS before every IRAP picture.
    STREAMHUB_CODEC_H265 = 6,
}

/// A received frame; `data` is valid only during the callback.
#[repr(C)]
#[derive(Debug)]
pub struct streamhub_frame {
    /// `sizeof(streamhub_frame)` in the library: a field past it is not there.
    pub struct_size: u32,
    /// Audio or video.
    pub kind: streamhub_media_kind,
    /// The codec.
    pub codec: streamhub_codec,
    /// The encoded frame.
    pub data: *const u8,
    /// Its length in bytes.
    pub len: usize,
    /// Presentation time in microseconds on the player's clock.
    pub timestamp_us: i64,
    /// A keyframe (always true for audio).
    pub keyframe: bool,
    /// Frames of this track were lost before this one (or the session reconnected).
    pub discontinuity: bool,
}

/// Called with each frame of a watch session, on the session's `streamhub-frames`
/// thread.
pub type streamhub_frame_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, frame: *const streamhub_frame)>;

/// The app's `userdata`, handed back to its callbacks on our threads. The app promises
/// (documented in the header) that it may be used from them.
#[derive(Clone, Copy)]
pub struct UserData(pub *mut c_void);

// SAFETY: the pointer is only passed back to the app's own callbacks, which the app
// documents as callable from any thread (the contract of `streamhub_session_config`).
unsafe impl Send for UserData {}
// SAFETY: as above; we never dereference it.
unsafe impl Sync for UserData {}

/// A C event callback as an [`EventSink`].
pub struct CEventSink {
    /// The callback.
    pub callback: unsafe extern "C" fn(*mut c_void, *const streamhub_event),
    /// Its userdata.
    pub userdata: UserData,
}

impl EventSink for CEventSink {
    fn deliver(&self, event: &SessionEvent) {
        with_c_event(event, |c_event| {
            // SAFETY: the app's callback, called with its userdata and an event valid
            // for the call.
            unsafe { (self.callback)(self.userdata.0, c_event) }
        });
    }
}

/// A C frame callback as a [`FrameSink`].
pub struct CFrameSink {
    /// The callback.
    pub callback: unsafe extern "C" fn(*mut c_void, *const streamhub_frame),
    /// Its userdata.
    pub userdata: UserData,
}

impl FrameSink for CFrameSink {
    fn deliver(&self, frame: &MediaFrame) {
        let c_frame = streamhub_frame {
            struct_size: own_size::<streamhub_frame>(),
            kind: match frame.kind {
                MediaKind::Video => streamhub_media_kind::STREAMHUB_MEDIA_VIDEO,
                MediaKind::Audio => streamhub_media_kind::STREAMHUB_MEDIA_AUDIO,
            },
            codec: match frame.codec {
                Codec::H264 => streamhub_codec::STREAMHUB_CODEC_H264,
                Codec::H265 => streamhub_codec::STREAMHUB_CODEC_H265,
                Codec::Vp8 => streamhub_codec::STREAMHUB_CODEC_VP8,
                Codec::Vp9 => streamhub_codec::STREAMHUB_CODEC_VP9,
                Codec::Av1 => streamhub_codec::STREAMHUB_CODEC_AV1,
                Codec::Opus => streamhub_codec::STREAMHUB_CODEC_OPUS,
                Codec::Other(_) => streamhub_codec::STREAMHUB_CODEC_OTHER,
            },
            data: frame.data.as_ptr(),
            len: frame.data.len(),
            timestamp_us: frame.timestamp_us,
            keyframe: frame.keyframe,
            discontinuity: frame.discontinuity,
        };
        // SAFETY: the app's callback; the frame and its data live through the call.
        unsafe { (self.callback)(self.userdata.0, &c_frame) }
    }
}

/// A C string of `text`; a NUL inside (legal in JSON chat text) becomes U+FFFD.
pub fn c_string(text: &str) -> CString {
    CString::new(text.replace('\0', "\u{FFFD}")).unwrap_or_default()
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The C form of a state.
pub fn state_info(state: &SessionState) -> streamhub_state_info {
    use streamhub_fail_reason::*;
    use streamhub_state::*;
    let mut info = streamhub_state_info {
        struct_size: own_size::<streamhub_state_info>(),
        state: STREAMHUB_STATE_IDLE,
        fail_reason: STREAMHUB_FAIL_NONE,
        attempt: 0,
        retry_in_ms: 0,
    };
    match state {
        SessionState::Idle => {}
        SessionState::Connecting { attempt } => {
            info.state = STREAMHUB_STATE_CONNECTING;
            info.attempt = *attempt;
        }
        SessionState::Live => info.state = STREAMHUB_STATE_LIVE,
        SessionState::Reconnecting {
            attempt, retry_in, ..
        } => {
            info.state = STREAMHUB_STATE_RECONNECTING;
            info.attempt = *attempt;
            info.retry_in_ms = millis(*retry_in);
        }
        SessionState::StreamEnded => info.state = STREAMHUB_STATE_STREAM_ENDED,
        SessionState::Ended => info.state = STREAMHUB_STATE_ENDED,
        SessionState::Failed { reason } => {
            info.state = STREAMHUB_STATE_FAILED;
            info.fail_reason = match reason {
                FailReason::InvalidConfig { .. } => STREAMHUB_FAIL_INVALID_CONFIG,
                FailReason::Unauthorized { .. } => STREAMHUB_FAIL_UNAUTHORIZED,
                FailReason::Rejected { .. } => STREAMHUB_FAIL_REJECTED,
                FailReason::NotFound { .. } => STREAMHUB_FAIL_NOT_FOUND,
                FailReason::Tls { .. } => STREAMHUB_FAIL_TLS,
                FailReason::Unreachable { attempts, .. } => {
                    info.attempt = *attempts;
                    STREAMHUB_FAIL_UNREACHABLE
                }
                _ => STREAMHUB_FAIL_OTHER,
            };
        }
        // The core may add states (built with this crate, none is missing today); one
        // the C ABI does not know yet reads as connecting.
        _ => info.state = STREAMHUB_STATE_CONNECTING,
    }
    info
}

/// Why the session is in `state`, as text ("" for Idle, Connecting, Live, Ended).
pub fn state_text(state: &SessionState) -> String {
    match state {
        SessionState::StreamEnded => "the stream ended".into(),
        SessionState::Reconnecting { reason, .. } => reason.clone(),
        SessionState::Failed { reason } => reason.to_string(),
        _ => String::new(),
    }
}

/// The C form of stats.
pub fn c_stats(stats: &SessionStats) -> streamhub_stats {
    let congestion = stats.congestion.as_ref();
    let play = stats.play.as_ref();
    let chat = stats.chat.unwrap_or_default();
    streamhub_stats {
        struct_size: own_size::<streamhub_stats>(),
        state: state_info(&stats.state).state,
        uptime_ms: millis(stats.uptime),
        time_live_ms: millis(stats.time_live),
        time_reconnecting_ms: millis(stats.time_reconnecting),
        time_to_live_ms: stats
            .time_to_live
            .map_or(-1, |t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX)),
        reconnects: stats.reconnects,
        video_frames: stats.video_frames,
        audio_frames: stats.audio_frames,
        bytes: stats.bytes,
        frames_dropped: stats.frames_dropped,
        packets_received: play.map_or(0, |p| p.packets_received),
        packets_lost: play.map_or(0, |p| p.packets_lost),
        chat_connected: chat.connected,
        chat_messages_received: chat.messages_received,
        chat_messages_sent: chat.messages_sent,
        chat_send_failures: chat.send_failures,
        viewers: stats
            .viewers
            .map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX)),
        events_dropped: stats.events_dropped,
        queue_delay_ms: congestion.map_or(0, |c| millis(c.waiting)),
        peak_queue_delay_ms: congestion.map_or(0, |c| millis(c.peak_waiting)),
        delivered_bps: congestion.map_or(0, |c| c.delivered_bps),
        recommended_bps: congestion.map_or(0, |c| c.recommended_bps),
        rtt_ms: congestion
            .and_then(|c| c.rtt)
            .map_or(-1, |rtt| i64::try_from(rtt.as_millis()).unwrap_or(i64::MAX)),
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
        first_frame_ms: play
            .and_then(|p| p.first_frame)
            .map_or(-1, |t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX)),
    }
}

/// Builds the C form of `event` and passes it to `call`; the strings live until `call`
/// returns.
fn with_c_event(event: &SessionEvent, call: impl FnOnce(&streamhub_event)) {
    use streamhub_event_kind::*;
    let empty = c"";
    let mut strings: Vec<CString> = Vec::new();
    let mut keep = |text: &str| -> *const c_char {
        let owned = c_string(text);
        let ptr = owned.as_ptr();
        strings.push(owned);
        ptr
    };
    let mut state = state_info(&SessionState::Idle);
    let mut c_event = streamhub_event {
        struct_size: own_size::<streamhub_event>(),
        kind: STREAMHUB_EVENT_ERROR,
        state: std::ptr::null(),
        text: empty.as_ptr(),
        room: empty.as_ptr(),
        user_id: empty.as_ptr(),
        user_name: empty.as_ptr(),
        message_id: empty.as_ptr(),
        client_msg_id: empty.as_ptr(),
        seq: 0,
        timestamp_ms: 0,
        viewers: 0,
        reconnect: false,
        deleted: false,
        stats: std::ptr::null(),
        queue_delay_ms: 0,
        delivered_bps: 0,
        recommended_bps: 0,
        rtt_ms: -1,
        ingest: 0,
    };
    let stats_storage;
    match event {
        SessionEvent::StateChanged(new_state) => {
            c_event.kind = STREAMHUB_EVENT_STATE_CHANGED;
            state = state_info(new_state);
            c_event.text = keep(&state_text(new_state));
        }
        SessionEvent::Stats(stats) => {
            c_event.kind = STREAMHUB_EVENT_STATS;
            stats_storage = c_stats(stats);
            c_event.stats = &stats_storage;
        }
        SessionEvent::ChatConnected { reconnect } => {
            c_event.kind = STREAMHUB_EVENT_CHAT_CONNECTED;
            c_event.reconnect = *reconnect;
        }
        SessionEvent::ChatDisconnected { reason, retry_in } => {
            c_event.kind = STREAMHUB_EVENT_CHAT_DISCONNECTED;
            c_event.text = keep(reason);
            state.retry_in_ms = millis(*retry_in);
        }
        SessionEvent::ChatJoined { room, viewers } => {
            c_event.kind = STREAMHUB_EVENT_CHAT_JOINED;
            c_event.room = keep(room);
            c_event.viewers = *viewers;
        }
        SessionEvent::Chat(message) => {
            c_event.kind = STREAMHUB_EVENT_CHAT_MESSAGE;
            c_event.room = keep(&message.room);
            c_event.seq = message.seq;
            c_event.message_id = keep(&message.id);
            c_event.timestamp_ms = message.ts;
            c_event.user_id = keep(&message.user.id);
            c_event.user_name = keep(&message.user.name);
            c_event.text = keep(&message.text);
            c_event.client_msg_id = keep(message.client_msg_id.as_deref().unwrap_or(""));
            c_event.deleted = message.deleted;
        }
        SessionEvent::ChatSent { client_msg_id, seq } => {
            c_event.kind = STREAMHUB_EVENT_CHAT_SENT;
            c_event.client_msg_id = keep(client_msg_id);
            c_event.seq = *seq;
        }
        SessionEvent::ChatSendFailed {
            client_msg_id,
            error,
        } => {
            c_event.kind = STREAMHUB_EVENT_CHAT_SEND_FAILED;
            c_event.client_msg_id = keep(client_msg_id);
            c_event.text = keep(&error.to_string());
        }
        SessionEvent::ChatDeleted { room, seq } => {
            c_event.kind = STREAMHUB_EVENT_CHAT_DELETED;
            c_event.room = keep(room);
            c_event.seq = *seq;
        }
        SessionEvent::ChatKicked { room, reason } => {
            c_event.kind = STREAMHUB_EVENT_CHAT_KICKED;
            c_event.room = keep(room);
            c_event.text = keep(reason);
        }
        SessionEvent::Viewers(count) => {
            c_event.kind = STREAMHUB_EVENT_VIEWERS;
            c_event.viewers = *count;
        }
        SessionEvent::Error(error) => {
            c_event.kind = STREAMHUB_EVENT_ERROR;
            c_event.text = keep(&error.to_string());
        }
        SessionEvent::Congestion(report) => {
            c_event.kind = STREAMHUB_EVENT_CONGESTION;
            c_event.queue_delay_ms = millis(report.waiting);
            c_event.delivered_bps = report.delivered_bps;
            c_event.recommended_bps = report.recommended_bps;
            c_event.rtt_ms = report
                .rtt
                .map_or(-1, |rtt| i64::try_from(rtt.as_millis()).unwrap_or(i64::MAX));
        }
        SessionEvent::IngestLive { index, url } => {
            c_event.kind = STREAMHUB_EVENT_INGEST_LIVE;
            c_event.ingest = u32::try_from(*index).unwrap_or(u32::MAX);
            c_event.text = keep(url);
        }
        other => {
            c_event.kind = STREAMHUB_EVENT_ERROR;
            c_event.text = keep(&format!("unknown event: {other:?}"));
        }
    }
    c_event.state = &state;
    call(&c_event);
    drop(strings);
}

// SAFETY: repr(C), starts with `struct_size: u32`; the app writes only `struct_size`
// (the library reads no other field of it).
unsafe impl Versioned for streamhub_state_info {
    const OLDEST_SIZE: usize = size_of::<streamhub_state_info>();
    const NAME: &'static str = "streamhub_state_info";
}

// SAFETY: as for `streamhub_state_info`.
unsafe impl Versioned for streamhub_stats {
    const OLDEST_SIZE: usize = STATS_ABI1_SIZE;
    const NAME: &'static str = "streamhub_stats";
}

impl std::fmt::Debug for UserData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserData")
    }
}

impl std::fmt::Debug for CEventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CEventSink").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for CFrameSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CFrameSink").finish_non_exhaustive()
    }
}
