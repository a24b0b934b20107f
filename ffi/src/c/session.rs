//! `streamhub_session_*`: broadcast and watch sessions, frames in and out, chat, stats.

use std::ffi::{c_char, c_void};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use streamhub::chat::client::CLIENT_MSG_ID_LEN;
use streamhub::media::MediaError;
use streamhub::media::{
    AudioFormat, AudioFrame, AudioSpecificConfig, AvcDecoderConfig, VideoFormat, VideoFrame,
};
use streamhub::session::SessionError;

use super::events::{
    CEventSink, CFrameSink, UserData, c_stats, state_info, streamhub_event_callback,
    streamhub_frame_callback, streamhub_state_info, streamhub_stats,
};
use super::handles::Table;
use super::result::*;
use super::versioned::{self, Versioned, read_in};
use crate::runtime;
use crate::session::{CongestionOptions, Session, SessionOptions};

/// A broadcast or watch session. Create with `streamhub_session_broadcast` or
/// `streamhub_session_watch`, end with `streamhub_session_free`.
pub struct streamhub_session {
    _private: [u8; 0],
}

pub(crate) static SESSIONS: LazyLock<Table<Session, streamhub_session>> =
    LazyLock::new(|| Table::new("session"));

/// How to start a session. Fill it with `streamhub_session_config_defaults(&config,
/// sizeof config)`, then set what you need. Strings are read during the create call
/// only.
///
/// `on_event` and `on_frame` are called on threads the library owns (one
/// `streamhub-events` and one `streamhub-frames` thread per session), never with a
/// library lock held, with `userdata` passed back untouched: `userdata` must be usable
/// from those threads. A callback may call any StreamHub function, including
/// `streamhub_session_stop` and `streamhub_session_free` of its own session. After
/// `streamhub_session_free` returns (on another thread), no callback of the session
/// runs any more.
#[repr(C)]
#[derive(Debug)]
pub struct streamhub_session_config {
    /// `sizeof(streamhub_session_config)`, set by `streamhub_session_config_defaults`:
    /// fields past it take their defaults (see the header's compatibility rule).
    pub struct_size: u32,
    /// Broadcast: the ingest, `rtmp://host[:port]/app/key` or `rtmps://…`. Watch: the
    /// WHEP endpoint, `http(s)://…`. Required.
    pub url: *const c_char,
    /// Watch: the bearer token for the WHEP server, or NULL.
    pub token: *const c_char,
    /// The chat server (`ws://…/chat`), or NULL for a session without chat.
    pub chat_url: *const c_char,
    /// The chat room (required with `chat_url`).
    pub chat_room: *const c_char,
    /// The chat JWT (required with `chat_url`).
    pub chat_token: *const c_char,
    /// Consecutive failed connection attempts before the session fails; negative for
    /// the default (10).
    pub max_reconnect_attempts: i32,
    /// Period of `STREAMHUB_EVENT_STATS` in ms; 0 turns it off, negative for the default
    /// (1000).
    pub stats_interval_ms: i32,
    /// Watch: no frame for this long (ms) counts as a lost connection; negative for
    /// the default (3000).
    pub stall_timeout_ms: i32,
    /// Called with each event, or NULL.
    pub on_event: streamhub_event_callback,
    /// Watch: called with each received frame, or NULL.
    pub on_frame: streamhub_frame_callback,
    /// Passed to the callbacks.
    pub userdata: *mut c_void,
    /// Watch: what to do once the sender ended the stream (`STREAMHUB_STATE_STREAM_ENDED`):
    /// a `streamhub_on_stream_end` (an `int`, so that a wrong value is refused); negative
    /// for the default, `STREAMHUB_ON_STREAM_END_WAIT`.
    pub on_stream_end: i32,
    /// Broadcast: backup ingests (IVS and YouTube give one), tried in order after `url`
    /// when one fails `attempts_per_ingest` times in a row; `STREAMHUB_EVENT_INGEST_LIVE`
    /// says which is live. An array of `backup_url_count` strings, or NULL with 0.
    pub backup_urls: *const *const c_char,
    /// The number of strings in `backup_urls`.
    pub backup_url_count: usize,
    /// Broadcast: failed attempts in a row on one ingest before the next is tried;
    /// negative for the default (2).
    pub attempts_per_ingest: i32,
    /// Broadcast: a `streamhub_congestion` (an `int`); negative for the default,
    /// `STREAMHUB_CONGESTION_LIVE`.
    pub congestion: i32,
    /// Broadcast, live: media waiting longer than this (ms) drops disposable video
    /// (frames nothing refers to); negative for the default (700).
    pub drop_disposable_ms: i32,
    /// Broadcast, live: past this (ms), video is dropped until the next keyframe;
    /// negative for the default (900).
    pub drop_until_keyframe_ms: i32,
    /// Broadcast, live: the hard cap (ms): queued video is dropped by whole GOPs;
    /// negative for the default (1000). The three must be in order. Audio, sequence
    /// headers and metadata are never dropped.
    pub drop_gops_ms: i32,
    /// Since ABI 2. Events waiting for `on_event` at most: past it, events that can be
    /// lost (stats, congestion, viewers) are dropped and counted in `events_dropped`;
    /// chat outcomes never are. Negative for the default (256); 0 counts as 1.
    pub event_queue_capacity: i64,
    /// Since ABI 2. Watch: frames waiting for `on_frame` at most; past it frames are
    /// dropped and counted in `frames_dropped`. Negative for the default (512); 0 counts
    /// as 1.
    pub frame_queue_capacity: i64,
}

/// `sizeof(streamhub_session_config)` in ABI 1 (`ffi/abi/streamhub-abi1.h`).
const CONFIG_ABI1_SIZE: usize = 136;
const _: () = assert!(
    std::mem::offset_of!(streamhub_session_config, event_queue_capacity) == CONFIG_ABI1_SIZE
);

/// What a broadcast does when the link is slower than the stream.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum streamhub_congestion {
    /// A live source (camera, screen): `streamhub_session_send_*` never waits; video is
    /// dropped by priority when media waits too long, and a bitrate is recommended.
    STREAMHUB_CONGESTION_LIVE = 0,
    /// A file: nothing is dropped; `streamhub_session_send_*` waits while the queue is
    /// full, and the delay grows on a slow link.
    STREAMHUB_CONGESTION_BACK_PRESSURE = 1,
}

/// What a watch session does once the sender ended the stream.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum streamhub_on_stream_end {
    /// Stay in `STREAMHUB_STATE_STREAM_ENDED` and ask for the stream again now and then;
    /// Live again when it is back.
    STREAMHUB_ON_STREAM_END_WAIT = 0,
    /// End the session: `STREAMHUB_STATE_STREAM_ENDED`, then `STREAMHUB_STATE_ENDED`.
    STREAMHUB_ON_STREAM_END_END = 1,
}

/// How a video frame's NAL units are delimited.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum streamhub_video_format {
    /// Start codes before each NAL unit (Android MediaCodec, most hardware encoders).
    STREAMHUB_VIDEO_ANNEX_B = 0,
    /// 4-byte big-endian lengths before each NAL unit (MP4, FLV, VideoToolbox).
    STREAMHUB_VIDEO_AVCC = 1,
}

/// One encoded H.264 access unit to send. `data` is copied during the call.
#[repr(C)]
#[derive(Debug)]
pub struct streamhub_video_frame {
    /// The access unit.
    pub data: *const u8,
    /// Its length.
    pub len: usize,
    /// How `data` delimits its NAL units: a `streamhub_video_format` (an `int`, so
    /// that a wrong value is refused rather than undefined).
    pub format: i32,
    /// An IDR frame.
    pub keyframe: bool,
    /// Presentation time, microseconds.
    pub pts_us: i64,
    /// Decode time, microseconds (equal to `pts_us` without B-frames).
    pub dts_us: i64,
}

/// How an audio frame is framed.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum streamhub_audio_format {
    /// A raw AAC access unit (set the AudioSpecificConfig first).
    STREAMHUB_AUDIO_AAC_RAW = 0,
    /// One or more ADTS frames.
    STREAMHUB_AUDIO_AAC_ADTS = 1,
    /// One Opus packet (Enhanced RTMP).
    STREAMHUB_AUDIO_OPUS = 2,
}

/// One encoded audio frame to send. `data` is copied during the call.
#[repr(C)]
#[derive(Debug)]
pub struct streamhub_audio_frame {
    /// The encoded audio.
    pub data: *const u8,
    /// Its length.
    pub len: usize,
    /// How `data` is framed: a `streamhub_audio_format`.
    pub format: i32,
    /// Presentation time of the first sample, microseconds.
    pub pts_us: i64,
}

fn lookup(handle: *const streamhub_session) -> Result<Arc<Session>, CError> {
    if runtime::is_shut_down() {
        return Err(CError::new(
            STREAMHUB_SHUT_DOWN,
            "the library was shut down (streamhub_shutdown)",
        ));
    }
    SESSIONS.get(handle)
}

fn bad_format(what: &str, value: i32) -> CError {
    CError::new(
        STREAMHUB_INVALID_ARGUMENT,
        format!("{value} is not a streamhub_{what}_format"),
    )
}

fn duration_ms(value: i32) -> Option<Duration> {
    u64::try_from(value).ok().map(Duration::from_millis)
}

/// Reads `count` strings at `urls`.
///
/// # Safety
/// `urls` is NULL or points to `count` pointers, each NULL or NUL-terminated.
unsafe fn c_str_array(
    urls: *const *const c_char,
    count: usize,
    name: &str,
) -> Result<Vec<String>, CError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if urls.is_null() {
        return Err(CError::null(name));
    }
    // SAFETY: `count` readable pointers per the contract.
    let pointers = unsafe { std::slice::from_raw_parts(urls, count) };
    pointers
        .iter()
        .enumerate()
        // SAFETY: each is NULL (an error) or NUL-terminated per the contract.
        .map(|(i, &p)| unsafe { c_str(p, &format!("{name}[{i}]")) }.map(str::to_string))
        .collect()
}

fn congestion(config: &streamhub_session_config) -> Result<CongestionOptions, CError> {
    let back_pressure = match config.congestion {
        v if v < 0 || v == streamhub_congestion::STREAMHUB_CONGESTION_LIVE as i32 => false,
        v if v == streamhub_congestion::STREAMHUB_CONGESTION_BACK_PRESSURE as i32 => true,
        v => {
            return Err(CError::new(
                STREAMHUB_INVALID_ARGUMENT,
                format!("config.congestion {v} is not a streamhub_congestion"),
            ));
        }
    };
    Ok(CongestionOptions {
        back_pressure,
        drop_disposable_at: duration_ms(config.drop_disposable_ms),
        drop_until_keyframe_at: duration_ms(config.drop_until_keyframe_ms),
        drop_gops_at: duration_ms(config.drop_gops_ms),
    })
}

/// A C configuration read: the options, the two callbacks and their userdata.
type ReadConfig = (
    SessionOptions,
    streamhub_event_callback,
    streamhub_frame_callback,
    UserData,
);

/// Reads a C configuration.
///
/// # Safety
/// `config` is NULL or points to a valid `streamhub_session_config` whose strings are
/// NULL or NUL-terminated.
unsafe fn options(config: *const streamhub_session_config) -> Result<ReadConfig, CError> {
    if config.is_null() {
        return Err(CError::null("config"));
    }
    // SAFETY: non-NULL and valid for its `struct_size` per the contract.
    let config = &unsafe { read_in(config, config_defaults(), "config") }?;
    // SAFETY (all four): the strings are NULL or NUL-terminated per the contract.
    let url = unsafe { c_str(config.url, "config.url") }?;
    let token = unsafe { c_str_opt(config.token, "config.token") }?;
    let chat_url = unsafe { c_str_opt(config.chat_url, "config.chat_url") }?;
    let chat = match chat_url {
        None => None,
        Some(chat_url) => {
            // SAFETY: as above.
            let room = unsafe { c_str(config.chat_room, "config.chat_room") }?;
            let token = unsafe { c_str(config.chat_token, "config.chat_token") }?;
            Some((chat_url.to_string(), room.to_string(), token.to_string()))
        }
    };
    // SAFETY: the array and its strings are valid per the contract.
    let backup_urls = unsafe {
        c_str_array(
            config.backup_urls,
            config.backup_url_count,
            "config.backup_urls",
        )
    }?;
    let options = SessionOptions {
        event_capacity: usize::try_from(config.event_queue_capacity).ok(),
        frame_capacity: usize::try_from(config.frame_queue_capacity).ok(),
        backup_urls,
        attempts_per_ingest: u32::try_from(config.attempts_per_ingest).ok(),
        congestion: congestion(config)?,
        url: url.to_string(),
        token: token.map(str::to_string),
        chat,
        max_reconnect_attempts: u32::try_from(config.max_reconnect_attempts).ok(),
        stats_interval: duration_ms(config.stats_interval_ms),
        stall_timeout: duration_ms(config.stall_timeout_ms),
        end_when_stream_ends: match config.on_stream_end {
            v if v < 0 || v == streamhub_on_stream_end::STREAMHUB_ON_STREAM_END_WAIT as i32 => {
                false
            }
            v if v == streamhub_on_stream_end::STREAMHUB_ON_STREAM_END_END as i32 => true,
            v => {
                return Err(CError::new(
                    STREAMHUB_INVALID_ARGUMENT,
                    format!("config.on_stream_end {v} is not a streamhub_on_stream_end"),
                ));
            }
        },
    };
    Ok((
        options,
        config.on_event,
        config.on_frame,
        UserData(config.userdata),
    ))
}

/// Fills `config`, of `struct_size` bytes (pass `sizeof config`), with the defaults:
/// everything NULL, numbers negative (defaults), callbacks NULL, and `struct_size`.
/// It replaces `streamhub_session_config_init` of the first, unversioned layout, so that
/// a program built against that is refused by the loader rather than misread.
///
/// # Safety
/// `config` is NULL (an error) or valid for `struct_size` bytes of writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn streamhub_session_config_defaults(
    config: *mut streamhub_session_config,
    struct_size: usize,
) -> streamhub_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        unsafe { versioned::init(config, struct_size, config_defaults(), "config") }
    })
}

/// The configuration the defaults function writes.
fn config_defaults() -> streamhub_session_config {
    streamhub_session_config {
        struct_size: versioned::own_size::<streamhub_session_config>(),
        url: std::ptr::null(),
        token: std::ptr::null(),
        chat_url: std::ptr::null(),
        chat_room: std::ptr::null(),
        chat_token: std::ptr::null(),
        max_reconnect_attempts: -1,
        stats_interval_ms: -1,
        stall_timeout_ms: -1,
        on_event: None,
        on_frame: None,
        userdata: std::ptr::null_mut(),
        on_stream_end: -1,
        backup_urls: std::ptr::null(),
        backup_url_count: 0,
        attempts_per_ingest: -1,
        congestion: -1,
        drop_disposable_ms: -1,
        drop_until_keyframe_ms: -1,
        drop_gops_ms: -1,
        event_queue_capacity: -1,
        frame_queue_capacity: -1,
    }
}

// SAFETY: repr(C), starts with `struct_size: u32`; its other fields are integers,
// pointers and `Option`s of function pointers.
unsafe impl Versioned for streamhub_session_config {
    const OLDEST_SIZE: usize = CONFIG_ABI1_SIZE;
    const NAME: &'static str = "streamhub_session_config";
}

enum Kind {
    Broadcast,
    Watch,
}

/// # Safety
/// As the public constructors.
unsafe fn open(
    kind: Kind,
    config: *const streamhub_session_config,
    out: *mut *mut streamhub_session,
) -> streamhub_result {
    boundary(|| {
        if out.is_null() {
            return Err(CError::null("out"));
        }
        // SAFETY: forwarded contract.
        let (options, on_event, on_frame, userdata) = unsafe { options(config) }?;
        if runtime::is_shut_down() {
            return Err(CError::new(
                STREAMHUB_SHUT_DOWN,
                "the library was shut down",
            ));
        }
        let session = match kind {
            Kind::Broadcast => {
                if on_frame.is_some() {
                    return Err(CError::new(
                        STREAMHUB_INVALID_ARGUMENT,
                        "on_frame is for watch sessions",
                    ));
                }
                Session::broadcast(&options)?
            }
            Kind::Watch => Session::watch(&options)?,
        };
        let session = Arc::new(session);
        if let Some(callback) = on_event {
            session.subscribe(Arc::new(CEventSink { callback, userdata }))?;
        }
        if let Some(callback) = on_frame {
            session.deliver_frames(Arc::new(CFrameSink { callback, userdata }))?;
        }
        let handle = SESSIONS.insert(session);
        // SAFETY: checked non-NULL above; writable per the contract.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Starts going live to `config->url` (and joining the chat room) in the background;
/// the session is returned at once, connecting. Frames sent before it is Live are
/// dropped and counted; watch `STREAMHUB_EVENT_STATE_CHANGED` or call
/// `streamhub_session_wait_live`.
///
/// # Safety
/// `config` points to a valid configuration (see `streamhub_session_config`); `out`
/// is valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn streamhub_session_broadcast(
    config: *const streamhub_session_config,
    out: *mut *mut streamhub_session,
) -> streamhub_result {
    // SAFETY: forwarded contract.
    unsafe { open(Kind::Broadcast, config, out) }
}

/// Starts watching the WHEP endpoint `config->url` (and joining the chat room) in the
/// background; frames arrive at `config->on_frame`.
///
/// # Safety
/// As `streamhub_session_broadcast`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn streamhub_session_watch(
    config: *const streamhub_session_config,
    out: *mut *mut streamhub_session,
) -> streamhub_result {
    // SAFETY: forwarded contract.
    unsafe { open(Kind::Watch, config, out) }
}

/// Parses a codec configuration with `parse_and_apply` and hands it to the session.
///
/// # Safety
/// `ptr` points to `len` readable bytes.
unsafe fn set_config(
    session: *mut streamhub_session,
    ptr: *const u8,
    len: usize,
    name: &str,
    parse_and_apply: impl FnOnce(
        &streamhub::session::StreamSession,
        &[u8],
    ) -> Result<Result<(), SessionError>, MediaError>,
) -> streamhub_result {
    boundary(|| {
        let session = lookup(session)?;
        // SAFETY: forwarded contract.
        let bytes = unsafe { c_bytes(ptr, len, name) }?;
        parse_and_apply(session.core(), bytes)
            .map_err(|e| CError::new(STREAMHUB_INVALID_ARGUMENT, e.to_string()))??;
        Ok(())
    })
}

/// Sets the H.264 decoder configuration (an AVCDecoderConfigurationRecord, as in an FLV
/// sequence header or an MP4 `avcC` box) of a broadcast; kept for reconnects.
///
/// # Safety
/// `record` points to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn streamhub_session_set_video_config(
    session: *mut streamhub_session,
    record: *const u8,
    len: usize,
) -> streamhub_result {
    // SAFETY: forwarded contract.
    unsafe {
        set_config(session, record, len, "record", |core, bytes| {
            let config = AvcDecoderConfig::parse(bytes)?;
            Ok(core.set_video_config(config))
        })
    }
}

/// Sets the AAC AudioSpecificConfig (2+ bytes) of a broadcast; required before raw AAC
/// frames, kept for reconnects.
///
/// # Safety
/// `config` points to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn streamhub_session_set_audio_config(
    session: *mut streamhub_session,
    config: *const u8,
    len: usize,
) -> streamhub_result {
    // SAFETY: forwarded contract.
    unsafe {
        set_config(session, config, len, "config", |core, bytes| {
            let config = AudioSpecificConfig::parse(bytes)?;
            Ok(core.set_audio_config(config))
        })
    }
}

/// Tells a broadcast what its video encoder now runs at, bits per second (for example
/// after following `recommended_bps` of `STREAMHUB_EVENT_CONGESTION`): later
/// recommendations start from there. Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn streamhub_session_set_encoder_bitrate(
    session: *mut streamhub_session,
    bits_per_second: u64,
) -> streamhub_result {
    boundary(|| {
        let session = lookup(session)?;
        session.core().set_encoder_bitrate(bits_per_second)?;
        Ok(())
    })
}

/// Sends one H.264 access unit (broadcast), waiting while the send queue is full.
/// While not Live the frame is dropped, counted and `STREAMHUB_OK` returned. Blocks
/// the calling thread: do not call it on a thread that must not wait.
///
/// # Safety
/// `frame` points to a valid frame whose `data` has `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn streamhub_session_send_video(
    session: *mut streamhub_session,
    frame: *const streamhub_video_frame,
) -> streamhub_result {
    boundary(|| {
        let session = lookup(session)?;
        if frame.is_null() {
            return Err(CError::null("frame"));
        }
        // SAFETY: non-NULL and valid per the contract.
        let frame = unsafe { &*frame };
        // SAFETY: forwarded contract.
        let data = unsafe { c_bytes(frame.data, frame.len, "frame.data") }?;
        let format = match frame.format {
            f if f == streamhub_video_format::STREAMHUB_VIDEO_ANNEX_B as i32 => VideoFormat::AnnexB,
            f if f == streamhub_video_format::STREAMHUB_VIDEO_AVCC as i32 => VideoFormat::Avcc,
            other => return Err(bad_format("video", other)),
        };
        let video = VideoFrame::new(
            Bytes::copy_from_slice(data),
            format,
            frame.keyframe,
            frame.pts_us,
        )
        .with_dts(frame.dts_us);
        runtime::block_on(session.core().send_video(&video))??;
        Ok(())
    })
}

/// Sends one audio frame (broadcast); like `streamhub_session_send_video`.
///
/// # Safety
/// `frame` points to a valid frame whose `data` has `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn streamhub_session_send_audio(
    session: *mut streamhub_session,
    frame: *const streamhub_audio_frame,
) -> streamhub_result {
    boundary(|| {
        let session = lookup(session)?;
        if frame.is_null() {
            return Err(CError::null("frame"));
        }
        // SAFETY: non-NULL and valid per the contract.
        let frame = unsafe { &*frame };
        // SAFETY: forwarded contract.
        let data = unsafe { c_bytes(frame.data, frame.len, "frame.data") }?;
        let format = match frame.format {
            f if f == streamhub_audio_format::STREAMHUB_AUDIO_AAC_RAW as i32 => AudioFormat::AacRaw,
            f if f == streamhub_audio_format::STREAMHUB_AUDIO_AAC_ADTS as i32 => {
                AudioFormat::AacAdts
            }
            f if f == streamhub_audio_format::STREAMHUB_AUDIO_OPUS as i32 => AudioFormat::Opus,
            other => return Err(bad_format("audio", other)),
        };
        let audio = AudioFrame::new(Bytes::copy_from_slice(data), format, frame.pts_us);
        runtime::block_on(session.core().send_audio(&audio))??;
        Ok(())
    })
}

/// The size of a buffer that holds any `client_msg_id` with its NUL
/// (`streamhub_session_send_chat`).
pub const STREAMHUB_CLIENT_MSG_ID_SIZE: usize = 33;

const _: () = assert!(STREAMHUB_CLIENT_MSG_ID_SIZE == CLIENT_MSG_ID_LEN + 1);

/// Queues a chat message for the session's room. Its `client_msg_id` is copied to
/// `id_buf` (NUL-terminated; `STREAMHUB_CLIENT_MSG_ID_SIZE` bytes are enough) unless
/// `id_buf` is NULL. A shorter `id_buf` gives `STREAMHUB_BUFFER_TOO_SMALL` and queues
/// nothing, so a retry with a bigger buffer sends the message once. The outcome arrives
/// as `STREAMHUB_EVENT_CHAT_SENT` or `STREAMHUB_EVENT_CHAT_SEND_FAILED`, always (chat
/// outcomes are never dropped); the message survives chat reconnects. Before the chat's
/// first connection it waits for it (up to 10 s).
///
/// # Safety
/// `text` is NUL-terminated; `id_buf` is NULL or has `id_len` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn streamhub_session_send_chat(
    session: *mut streamhub_session,
    text: *const c_char,
    id_buf: *mut c_char,
    id_len: usize,
) -> streamhub_result {
    boundary(|| {
        let session = lookup(session)?;
        // SAFETY: forwarded contract.
        let text = unsafe { c_str(text, "text") }?;
        // Checked before queueing: an app that retries with a bigger buffer must not
        // send the message twice.
        if !id_buf.is_null() && id_len < STREAMHUB_CLIENT_MSG_ID_SIZE {
            return Err(CError::new(
                STREAMHUB_BUFFER_TOO_SMALL,
                format!(
                    "nothing was queued: the id needs {STREAMHUB_CLIENT_MSG_ID_SIZE} bytes, \
                     id_len is {id_len}"
                ),
            ));
        }
        let id = runtime::block_on(session.core().send_chat(text))??;
        if !id_buf.is_null() {
            if id_len <= id.len() {
                // Unreachable while ids are CLIENT_MSG_ID_LEN long; kept so that the copy
                // below can never overrun.
                return Err(CError::new(
                    STREAMHUB_BUFFER_TOO_SMALL,
                    format!(
                        "the message was queued; its id needs {} bytes",
                        id.len() + 1
                    ),
                ));
            }
            // SAFETY: `id_buf` has `id_len > id.len()` writable bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(id.as_ptr(), id_buf.cast::<u8>(), id.len());
                id_buf.add(id.len()).write(0);
            }
        }
        Ok(())
    })
}

/// The session's state now.
///
/// # Safety
/// `out` is valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn streamhub_session_state(
    session: *mut streamhub_session,
    out: *mut streamhub_state_info,
) -> streamhub_result {
    boundary(|| {
        let session = lookup(session)?;
        // SAFETY: forwarded contract.
        unsafe { versioned::write_out(out, state_info(&session.core().state()), "out") }
    })
}

/// Waits up to `timeout_ms` until the session is Live, Ended or Failed and writes the
/// state then (which may still be Connecting when the time ran out).
///
/// # Safety
/// `out` is NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn streamhub_session_wait_live(
    session: *mut streamhub_session,
    timeout_ms: u32,
    out: *mut streamhub_state_info,
) -> streamhub_result {
    boundary(|| {
        let session = lookup(session)?;
        if !out.is_null() {
            // SAFETY: non-NULL, readable per the contract; checked before the wait.
            unsafe { versioned::check_out(out, "out") }?;
        }
        let within = Duration::from_millis(timeout_ms.into());
        let state = runtime::block_on(session.wait_live(within))?;
        if !out.is_null() {
            // SAFETY: non-NULL, writable for its `struct_size` per the contract.
            unsafe { versioned::write_out(out, state_info(&state), "out") }?;
        }
        Ok(())
    })
}

/// A snapshot of the session's counters.
///
/// # Safety
/// `out` is valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn streamhub_session_stats(
    session: *mut streamhub_session,
    out: *mut streamhub_stats,
) -> streamhub_result {
    boundary(|| {
        let session = lookup(session)?;
        // SAFETY: forwarded contract.
        unsafe { versioned::write_out(out, c_stats(&session.core().stats()), "out") }
    })
}

/// Ends the session: a broadcast sends what is queued and unpublishes, a watch closes
/// its WHEP session, the chat waits up to 2 s for queued messages (bounded; at most
/// about a minute in the worst case). Returns once the event callback got every event
/// of the session (up to 5 s more for a slow callback; not waited for when called from
/// inside the callback). Writes the final stats unless `out` is NULL. The handle stays
/// valid until `streamhub_session_free`; idempotent.
///
/// # Safety
/// `out` is NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn streamhub_session_stop(
    session: *mut streamhub_session,
    out: *mut streamhub_stats,
) -> streamhub_result {
    boundary(|| {
        let session = lookup(session)?;
        let stats = session.stop_blocking()?;
        if !out.is_null() {
            // SAFETY: non-NULL, writable for its `struct_size` per the contract.
            unsafe { versioned::write_out(out, c_stats(&stats), "out") }?;
        }
        Ok(())
    })
}

/// Releases the handle and returns at once. When it returns no callback of the session
/// runs any more (called from inside one of the session's callbacks, the current
/// callback is the last; from another thread, it waits for the callback running at that
/// moment, if any). A session still running stops in the background, as
/// `streamhub_session_stop` would; `streamhub_shutdown` waits for those stops. Events
/// not yet delivered are not: call `streamhub_session_stop` first to get every one.
/// NULL, or a handle already freed, is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn streamhub_session_free(session: *mut streamhub_session) {
    boundary_void(|| {
        if let Some(session) = SESSIONS.remove(session) {
            session.close();
        }
    })
}

/// Closes every session still open (as `streamhub_session_free` would, without freeing
/// handles the app still holds: later calls with them return `STREAMHUB_SHUT_DOWN`),
/// then waits up to `within` for every closed session to finish stopping.
pub(crate) fn close_all(within: Duration) {
    for session in SESSIONS.drain() {
        session.close();
    }
    crate::session::wait_for_background_stops(within);
}

impl std::fmt::Debug for streamhub_session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("streamhub_session")
    }
}
