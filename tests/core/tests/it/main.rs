//! The `streamhub` crate against real, independently written peers it starts itself
//! (nginx-rtmp, aiortc, rml_rtmp, redis-server, PostgreSQL, network namespaces), and
//! against the real hub and chat server in the same process. One test binary, one module
//! per area: `scripts/test.sh` runs it with cargo-nextest, each test in a process of its own.

#[macro_use]
mod common;

mod broadcast_network;
mod chat_archive;
mod chat_end_to_end;
mod chat_errors;
mod chat_limits;
mod chat_public_keys;
mod chat_redis_sequencer;
mod dtls_lost_flight;
mod hub_auth;
mod hub_ice_patch;
mod hub_opus_passthrough;
mod session_against_rml_server;
mod stream_end;
mod stream_session_broadcast;
mod stream_session_chat_outcomes;
mod stream_session_watch;
