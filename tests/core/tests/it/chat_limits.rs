//! The chat server's limits against abuse: rooms are capped and forgotten when idle,
//! and per-user state does not outlive its effect.

use crate::common;

use std::time::Duration;

use common::{Backend, Engine, connect, fast_config};
use streamhub::chat::protocol::{ErrorCode, Role};
use streamhub_test_support::poll_until_async;

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// One `"*"` token tries to open 10 000 rooms: the first `max_rooms` open, every one
/// past them is refused with `forbidden`, the server holds exactly `max_rooms` rooms,
/// and memory does not grow with the refusals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_token_opening_ten_thousand_rooms_is_refused_past_the_limit() {
    let backend = Backend::start(Engine::Memory);
    let mut config = fast_config();
    config.max_rooms = 100;
    let server = backend.server(config).await;
    let (client, _log) = connect(&server, "mallory", Role::Viewer).await;
    for i in 0..100 {
        client
            .join(&format!("room-{i}"))
            .await
            .unwrap_or_else(|e| panic!("room {i} is within the limit: {e}"));
    }
    assert_eq!(server.chat.rooms(), 100);
    // Warm up the refusal path, then measure.
    for i in 100..600 {
        assert!(client.join(&format!("room-{i}")).await.is_err());
    }
    let before = rss_kib();
    let mut refused = 0;
    for i in 600..10_000 {
        match client.join(&format!("room-{i}")).await {
            Err(e) => {
                let body = e.refusal().unwrap_or_else(|| panic!("room {i}: {e}"));
                assert_eq!(body.code, ErrorCode::Forbidden, "{}", body.message);
                refused += 1;
            }
            Ok(_) => panic!("room {i} past the limit was opened"),
        }
    }
    let after = rss_kib();
    assert_eq!(refused, 9_400);
    assert_eq!(
        server.chat.rooms(),
        100,
        "refused joins leave no room behind"
    );
    eprintln!(
        "RSS before 9400 refused joins: {before} KiB, after: {after} KiB ({:+} KiB)",
        after as i64 - before as i64
    );
    assert!(
        after <= before + 4096,
        "memory grew by {} KiB over 9400 refused joins",
        after - before
    );
}

async fn idle_empty_rooms_are_forgotten_and_make_space(engine: Engine) {
    let backend = Backend::start(engine);
    let mut config = fast_config();
    config.max_rooms = 3;
    config.room_idle = Duration::from_millis(300);
    let server = backend.server(config).await;
    let (client, _log) = connect(&server, "ann", Role::Viewer).await;
    for room in ["a", "b", "c"] {
        client.join(room).await.expect("within the limit");
    }
    let refused = client.join("d").await.expect_err("past the limit");
    assert_eq!(
        refused.refusal().map(|b| b.code),
        Some(ErrorCode::Forbidden)
    );
    // At the limit, a room that is empty but not yet idle does not make space.
    client.leave("a").await.expect("leave");
    assert!(client.join("d").await.is_err(), "a is not idle yet");
    // Once idle, the ticker forgets it.
    poll_until_async("a forgotten", Duration::from_secs(5), || {
        server.chat.rooms() == 2
    })
    .await;
    client.join("d").await.expect("space was made");
    // A forgotten room can be joined again (and followed again on Redis).
    client.leave("b").await.expect("leave");
    poll_until_async("b forgotten", Duration::from_secs(5), || {
        server.chat.rooms() == 2
    })
    .await;
    // A room with a member is never forgotten, however long it is quiet: c has been
    // quiet since it was joined, longer than `room_idle`, through the ticks that
    // forgot a and then b.
    assert!(server.chat.room("c").is_some() && server.chat.room("d").is_some());
    client.join("b").await.expect("b again");
    let sent = client.send("b", "hello again").await.expect("send");
    assert!(sent.seq >= 1);
}

/// Per-user rate, slow-mode and typing state of users who left is forgotten once it
/// can no longer change anything.
async fn per_user_state_of_users_who_left_is_pruned(engine: Engine) {
    let backend = Backend::start(engine);
    let mut config = fast_config();
    config.rate.messages = 5;
    config.rate.per_ms = 3000;
    config.typing_interval = Duration::from_secs(3);
    let server = backend.server(config).await;
    for i in 0..50 {
        let (client, _log) = connect(&server, &format!("user-{i}"), Role::Viewer).await;
        client.join("lobby").await.expect("join");
        client.send("lobby", "hi").await.expect("send");
        client.typing("lobby").await.expect("typing");
        client.close(Duration::from_secs(2)).await.expect("close");
    }
    let (_keeper, _log) = connect(&server, "keeper", Role::Viewer).await;
    _keeper.join("lobby").await.expect("join");
    let held = server.chat.per_user_entries();
    assert!(
        held >= 50,
        "state for the 50 users is held at first ({held})"
    );
    poll_until_async("per-user state pruned", Duration::from_secs(10), || {
        server.chat.per_user_entries() == 0
    })
    .await;
}

on_both_engines!(
    idle_empty_rooms_are_forgotten_and_make_space,
    per_user_state_of_users_who_left_is_pruned,
);
