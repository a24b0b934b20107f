//! Tests that must not share the machine's two cores with one another, whatever the test
//! runner: a lock held across processes (cargo test runs a binary's tests on threads,
//! cargo-nextest runs each test in a process of its own).

use std::fs::File;

/// Held while a test runs that two WebRTC stacks (or Chromium) share the cores for:
/// such tests run one at a time, so a first-frame deadline measures the protocol, not
/// the scheduler. Released on drop.
pub struct OneAtATime(#[allow(dead_code)] File);

/// Waits until no other test holds the lock, then holds it (an exclusive `flock` on a
/// file in the temporary folder, released by the kernel even if the test dies).
pub fn one_at_a_time() -> OneAtATime {
    let path = std::env::temp_dir().join("streamhub-tests-one-at-a-time.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    file.lock()
        .unwrap_or_else(|e| panic!("locking {}: {e}", path.display()));
    OneAtATime(file)
}
