//! Watch: WebRTC playback through WHEP (work in progress).
//!
//! Pure parts (no network): RTP counter unwrapping, the reorder buffer, the
//! depacketizers that turn RTP payloads into whole frames, and the WHEP header parsing.

pub mod depacketize;
mod error;
pub mod http;
pub mod jitter;
pub mod unwrap;

pub use error::WhepError;
