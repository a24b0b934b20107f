//! What the integration tests of every StreamHub crate share: real peers started on
//! loopback or in network namespaces of the test's own (nginx-rtmp, ffmpeg and ffprobe,
//! aiortc, GStreamer, redis-server, PostgreSQL), each owned by a guard that kills it by
//! PID on drop; media judged exactly (packets, timestamps, picture hashes); waits that
//! poll a condition against a deadline; and the hub and chat helpers the tests build on.
//!
//! A missing peer fails the test, never skips it, naming `scripts/test.sh`, which
//! installs every peer ([`require`]).
//!
//! It is a dev-dependency of `streamhub-cli`, `streamhub-ffi` and `streamhub-core-tests`
//! (the core crate's integration tests, kept in a package of their own so that this
//! crate's `streamhub` with feature `server` never joins the core's no-feature unit
//! test build), and a dependency of the benchmarks' network labs.

use std::path::PathBuf;

pub mod aiortc;
pub mod chat_log;
pub mod clips;
pub mod ffprobe;
pub mod gstreamer;
pub mod json;
pub mod jwt_keys;
pub mod loopback_hub;
pub mod machine;
pub mod netlab;
pub mod nginx;
pub mod opus;
pub mod pictures;
pub mod postgres;
pub mod process;
pub mod redis;
pub mod require;
pub mod wait;
pub mod whep_peer;

pub use clips::Clip;
pub use json::{json_lines, report};
pub use process::{Proc, free_port, run_checked, tempdir, wait_listen};
pub use wait::{poll_every, poll_until, poll_until_async};

/// The workspace's root folder (where `Cargo.toml`, `scripts/` and `tests/peers/` are).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}
