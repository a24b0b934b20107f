//! The `streamhub` command's tests that need the machine whole: a link throttled in a
//! network lab, where the delay a viewer sees and the frames the publisher keeps are
//! the measurement, and a build of the CLI from nothing, which takes both cores for
//! minutes (beside the other tests, even at nice 19, it ran past 10 minutes). cargo-nextest runs this binary's tests with no other test beside
//! them (`.config/nextest.toml`, `scripts/test.sh`); `cargo test` runs it as a binary of
//! its own, one test at a time (each holds the one-at-a-time lock).

/// The `streamhub` binary under test.
const STREAMHUB: &str = env!("CARGO_BIN_EXE_streamhub");

mod fresh_build;
mod throttle;
