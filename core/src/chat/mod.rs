//! Chat: the stream's room, in real time, with nothing lost or duplicated.
//!
//! - [`protocol`]: the wire format of `streamhub.chat.v1` (see `docs/chat-protocol.md`).
//! - [`client`]: [`ChatClient`], which reconnects, recovers and deduplicates by itself.
//! - `server` (feature `server`): rooms, sequencer, history, JWT auth, moderation.

#[cfg(feature = "chat")]
pub mod client;
mod error;
pub mod protocol;
#[cfg(feature = "server")]
pub mod server;

#[cfg(feature = "chat")]
pub use client::{
    ChatClient, ChatConfig, ChatEvent, ChatEvents, ChatStats, JoinInfo, JoinOutcome, TokenRequest,
    TokenSource,
};
pub use error::ChatError;
pub use protocol::{ChatMessage, ErrorBody, ErrorCode, Role, UserInfo};
