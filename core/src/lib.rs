//! # StreamHub
//!
//! One small core for live streaming apps:
//!
//! - go live over RTMP/RTMPS with [`rtmp::Publisher`], pushing the encoded frames of
//!   [`media`] (H.264, AAC);
//! - watch over WebRTC with [`whep::Player`], receiving whole encoded frames (H.264, VP8,
//!   Opus) ready for the platform decoder;
//! - chat in the stream's room with [`chat::ChatClient`], which reconnects, recovers
//!   missed messages and deduplicates, so the app sees every message exactly once and
//!   in order; the server side is [`chat::server`] (feature `server`);
//! - or hold one [`StreamSession`] per stream: it composes the above behind one
//!   lifecycle (connecting, live, reconnecting, ended or failed), one event stream
//!   ([`SessionEvents`]) and one set of methods, and reconnects by itself.
//!
//! All network APIs are async on tokio, every network step has a timeout, and every
//! failure is a typed error ([`RtmpError`], [`WhepError`], [`ChatError`],
//! [`SessionError`]).

// Library code does not unwrap what the network, a file or a caller gives it; tests may.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_debug_implementations)]
// clippy::cast_possible_truncation was reviewed site by site (50 in the library with
// `server`) and is not denied: 21 are Duration millis/micros to u64 (584 million years),
// 9 float-to-int casts (saturating in Rust), the RTP clock's deliberate wrap, and the
// rest are bounded by a check just before them (AVC parameter-set counts <= 31/255, RTMP
// message length <= 16 MiB and chunk stream id ranges, history page sizes, masked
// bytes).

pub mod chat;
#[cfg(feature = "server")]
pub mod hub;
pub mod media;
pub mod net;
pub mod redact;
pub mod rtmp;
pub mod session;
mod sync;
#[cfg(feature = "whep")]
pub mod whep;

#[doc(hidden)]
pub mod _internal_test_exports;

pub use chat::ChatError;
#[cfg(feature = "chat")]
pub use chat::{ChatClient, ChatEvent};
pub use media::{AudioFormat, AudioFrame, MediaError, StreamMetadata, VideoFormat, VideoFrame};
pub use rtmp::{PublishConfig, PublishStats, Publisher, RtmpError, RtmpUrl};
#[cfg(feature = "whep")]
pub use session::WatchConfig;
pub use session::{
    BroadcastConfig, FailReason, ReconnectPolicy, SessionChat, SessionError, SessionEvent,
    SessionEvents, SessionState, SessionStats, StreamSession,
};
#[cfg(feature = "whep")]
pub use whep::{MediaFrame, PlayConfig, PlayStats, Player, WhepError};
