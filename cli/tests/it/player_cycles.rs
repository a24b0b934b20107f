//! 100 connect/close cycles of the WHEP player leave threads, file descriptors and
//! memory flat: guards against webrtc-rs keeping closed connections alive.

use crate::common;

use std::time::Duration;

use common::*;
use streamhub::whep::{PlayConfig, Player};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

async fn cycle(url: &str) {
    let mut config = PlayConfig::default();
    config.timeout = Duration::from_secs(10);
    let mut player = Player::connect(url, config).await.expect("connect");
    let frame = tokio::time::timeout(Duration::from_secs(10), player.next_frame())
        .await
        .expect("a frame within 10 s");
    assert!(frame.is_some(), "the stream ended before a frame");
    player.close().await.expect("close");
}

/// Threads and file descriptors once the background tasks of closed connections have
/// finished: the first of two equal readings 100 ms apart (a closed connection's
/// tasks end within milliseconds; 10 s is the deadline, not a wait).
async fn settled() -> (usize, usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut last = (threads(), open_fds());
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = (threads(), open_fds());
        if now == last || std::time::Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

#[test]
fn hundred_connect_close_cycles_leave_threads_fds_and_memory_flat() {
    let server = AiortcWhep::start(&["--codec", "vp8"]);
    let url = server.url();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for _ in 0..10 {
            cycle(&url).await;
        }
        let (t0, f0) = settled().await;
        let m0 = rss_kib();
        for _ in 0..100 {
            cycle(&url).await;
        }
        let (t1, f1) = settled().await;
        let m1 = rss_kib();
        eprintln!(
            "after warm-up: {t0} threads, {f0} fds, {m0} KiB; after 100 more cycles: {t1} threads, {f1} fds, {m1} KiB"
        );
        assert!(t1 <= t0 + 2, "threads grew from {t0} to {t1}");
        assert!(f1 <= f0 + 2, "file descriptors grew from {f0} to {f1}");
        // Allocator noise aside, 100 leaked connections would be tens of MiB.
        assert!(m1 <= m0 + 8 * 1024, "RSS grew from {m0} KiB to {m1} KiB");
    });
    assert_eq!(server.stats()["deletes"], 110);
}
