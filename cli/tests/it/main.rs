//! The `streamhub` command as a user meets it, against real peers the tests start
//! themselves (nginx-rtmp, ffmpeg, aiortc, GStreamer, Chromium, redis-server, PostgreSQL,
//! network namespaces). One test binary, one module per area: `scripts/test.sh` runs it
//! with cargo-nextest, each test in a process of its own.

mod cluster;
mod common;
mod hub_harness;

mod chat_cli;
mod chat_cluster;
mod demo;
mod hub_aiortc;
mod hub_auth;
mod hub_browser;
mod hub_end_to_end;
mod hub_hostile_rtmp;
mod hub_limits;
mod hub_under_loss;
mod logs_and_steps;
mod play_across_a_network_change;
mod play_from_aiortc;
mod play_from_chromium;
mod play_from_gstreamer;
mod play_under_loss;
mod play_without_a_route;
mod player_cycles;
mod publish_to_real_ingests;
mod readme_commands;
