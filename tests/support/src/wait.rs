//! Waiting for a condition against a deadline: the one way every test waits. Nothing
//! sleeps a fixed time and hopes; a condition that never holds fails the test with what
//! it waited for.

use std::time::{Duration, Instant};

/// Polls `condition` every 20 ms until it holds; fails the test after `within`.
pub fn poll_until(what: &str, within: Duration, condition: impl FnMut() -> bool) {
    poll_every(what, within, Duration::from_millis(20), condition)
}

/// Polls `condition` every `every` until it holds; fails the test after `within`. For
/// conditions that cost a process start (`ss`, `curl`, `ip netns exec`) each time.
pub fn poll_every(
    what: &str,
    within: Duration,
    every: Duration,
    mut condition: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(every);
    }
}

/// [`poll_until`] for async tests: polls every 10 ms on the tokio clock, so the runtime
/// keeps running the tasks that make `condition` true.
pub async fn poll_until_async(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
