//! Watch: WebRTC playback through WHEP (work in progress).
//!
//! This module holds the parts of the player that need no network: RTP counter
//! unwrapping and the depacketizers that turn RTP payloads into whole frames.

pub mod depacketize;
pub mod unwrap;
