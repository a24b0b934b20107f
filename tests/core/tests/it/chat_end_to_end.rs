//! Chat clients against a real chat server on loopback: bursts, connection cuts (real
//! TCP resets), token refresh, rate limits and moderation.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{Backend, CutProxy, Engine, Log, connect, connect_via, fast_config};
use streamhub::chat::protocol::{ErrorCode, Role};
use streamhub::chat::server::{ChatServerConfig, Claims};
use streamhub::chat::{ChatError, ChatEvent, JoinOutcome, TokenRequest, TokenSource};
use streamhub_test_support::poll_until_async;
use tokio::time::Instant;

const ROOM: &str = "cam1";

/// Every user's own messages appear in the order they were sent, and the whole room's
/// sequence is 1..=n with no gap or repeat.
fn assert_room_sequence(log: &Log, n: usize) {
    let messages = log.seq_texts(ROOM);
    let seqs: Vec<u64> = messages.iter().map(|m| m.0).collect();
    assert_eq!(
        seqs,
        (1..=n as u64).collect::<Vec<_>>(),
        "seq 1..={n} exactly once"
    );
}

async fn two_clients_exchange_1000_messages_once_and_in_order(engine: Engine) {
    let backend = Backend::start(engine);
    let server = backend.server(fast_config()).await;
    let (ada, ada_log) = connect(&server, "ada", Role::Viewer).await;
    let (bob, bob_log) = connect(&server, "bob", Role::Viewer).await;
    ada.join(ROOM).await.unwrap();
    bob.join(ROOM).await.unwrap();

    let sender = |client: streamhub::ChatClient, name: &'static str| {
        tokio::spawn(async move {
            for i in 0..500 {
                client.enqueue(ROOM, &format!("{name} {i}")).await.unwrap();
            }
        })
    };
    let a = sender(ada.clone(), "ada");
    let b = sender(bob.clone(), "bob");
    a.await.unwrap();
    b.await.unwrap();
    poll_until_async(
        "1000 messages at both clients",
        Duration::from_secs(30),
        || ada_log.seq_texts(ROOM).len() >= 1000 && bob_log.seq_texts(ROOM).len() >= 1000,
    )
    .await;
    for log in [&ada_log, &bob_log] {
        assert_room_sequence(log, 1000);
        for name in ["ada", "bob"] {
            let own: Vec<String> = log
                .seq_texts(ROOM)
                .into_iter()
                .map(|m| m.1)
                .filter(|t| t.starts_with(name))
                .collect();
            let expected: Vec<String> = (0..500).map(|i| format!("{name} {i}")).collect();
            assert_eq!(own, expected, "{name}'s messages in the order sent");
        }
    }
    // Both logs are the same sequence.
    assert_eq!(ada_log.seq_texts(ROOM), bob_log.seq_texts(ROOM));
    assert_eq!(server.chat.room(ROOM).unwrap().last_seq, 1000);
    let stats = ada.close(Duration::from_secs(5)).await.unwrap();
    assert_eq!((stats.sent, stats.delivered), (500, 1000));
    bob.close(Duration::from_secs(5)).await.unwrap();
}

async fn cuts_during_a_burst_lose_and_duplicate_nothing(engine: Engine) {
    let backend = Backend::start(engine);
    let server = backend.server(fast_config()).await;
    let mut sender_proxy = CutProxy::start(server.addr).await;
    let mut receiver_proxy = CutProxy::start(server.addr).await;
    let token = |user: &str| TokenSource::fixed(server.token(user, Role::Viewer, 3600));
    let (sender, sender_log) = connect_via(&sender_proxy.url(), token("sender")).await;
    let (receiver, receiver_log) = connect_via(&receiver_proxy.url(), token("receiver")).await;
    sender.join(ROOM).await.unwrap();
    receiver.join(ROOM).await.unwrap();

    const N: usize = 1000;
    let burst = {
        let sender = sender.clone();
        tokio::spawn(async move {
            for i in 0..N {
                sender.enqueue(ROOM, &format!("m{i}")).await.unwrap();
            }
        })
    };
    // Cut the receiver and the sender, alternately, three times each, at points of
    // progress (not at times): while messages are on the wire in both directions.
    for round in 1..=3u64 {
        let at = round as usize * 200;
        poll_until_async("receiver progress", Duration::from_secs(30), || {
            receiver_log.seq_texts(ROOM).len() >= at
        })
        .await;
        assert!(receiver_proxy.cut() > 0, "the receiver was connected");
        let sent_before = sender_log.count(|e| matches!(e, ChatEvent::Sent { .. }));
        poll_until_async("sender progress", Duration::from_secs(30), || {
            sender_log.count(|e| matches!(e, ChatEvent::Sent { .. })) >= sent_before + 50
        })
        .await;
        assert!(sender_proxy.cut() > 0, "the sender was connected");
    }
    burst.await.unwrap();
    poll_until_async(
        "every message at the receiver",
        Duration::from_secs(60),
        || receiver_log.seq_texts(ROOM).len() >= N,
    )
    .await;

    let texts: Vec<String> = receiver_log
        .seq_texts(ROOM)
        .into_iter()
        .map(|m| m.1)
        .collect();
    let expected: Vec<String> = (0..N).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, expected, "every message exactly once, in order");
    assert_room_sequence(&receiver_log, N);
    assert_eq!(
        server.chat.room(ROOM).unwrap().last_seq,
        N as u64,
        "nothing was published twice"
    );
    let sent = sender.close(Duration::from_secs(10)).await.unwrap();
    let received = receiver.close(Duration::from_secs(10)).await.unwrap();
    assert_eq!(sent.sent, N as u64);
    assert_eq!(sent.connections, 4, "three reconnects of the sender");
    assert_eq!(received.connections, 4, "three reconnects of the receiver");
    assert_eq!(received.delivered, N as u64);
    eprintln!(
        "cuts: sender {} receiver {}; sender resends {}, receiver duplicates dropped {}",
        sender_proxy.cuts, receiver_proxy.cuts, sent.resends, received.duplicates_dropped
    );
}

async fn an_expiring_token_is_refreshed_in_band_and_an_expired_one_replaced(engine: Engine) {
    let backend = Backend::start(engine);
    let server = backend.server(fast_config()).await;
    let keys = server.chat.keys().clone();
    let asked: Arc<std::sync::Mutex<Vec<TokenRequest>>> = Arc::default();
    let calls = asked.clone();
    let issued = Arc::new(AtomicU32::new(0));
    let tokens = TokenSource::from_fn(move |why| {
        calls.lock().unwrap().push(why);
        let n = issued.fetch_add(1, Ordering::SeqCst);
        let mut claims = Claims::new("ada", Role::Viewer, vec!["*".into()], 2);
        if n == 0 {
            claims.exp -= 60; // the app's cached token is already stale
        }
        let token = keys.issue(&claims);
        async move { token }
    });
    let (client, log) = connect_via(&server.url(), tokens).await;
    client.join(ROOM).await.unwrap();
    // The first token was refused as expired and replaced before connecting; each new
    // token lives 2 s, less than the 30 s warning, so the server asks at once and
    // again after every refresh until the test ends.
    poll_until_async("two in-band refreshes", Duration::from_secs(15), || {
        log.count(|e| matches!(e, ChatEvent::TokenRefreshed)) >= 2
    })
    .await;
    // Past the first token's expiry, on the same connection.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    client.send(ROOM, "still here").await.unwrap();
    let stats = client.close(Duration::from_secs(5)).await.unwrap();
    let asked = asked.lock().unwrap().clone();
    assert_eq!(&asked[..2], [TokenRequest::Initial, TokenRequest::Expired]);
    assert!(
        asked[2..].iter().all(|w| *w == TokenRequest::Expiring),
        "{asked:?}"
    );
    assert!(stats.refreshes >= 2);
    assert_eq!(stats.connections, 1, "refreshed without reconnecting");
}

async fn a_rate_limited_queue_waits_for_retry_after(engine: Engine) {
    let mut config = ChatServerConfig::with_secret(b"test secret");
    config.rate.messages = 2;
    config.rate.per_ms = 1000;
    let backend = Backend::start(engine);
    let server = backend.server(config).await;
    let (client, log) = connect(&server, "ada", Role::Viewer).await;
    client.join(ROOM).await.unwrap();
    let start = Instant::now();
    for i in 0..6 {
        client.enqueue(ROOM, &format!("r{i}")).await.unwrap();
    }
    poll_until_async("six acknowledgements", Duration::from_secs(20), || {
        log.count(|e| matches!(e, ChatEvent::Sent { .. })) == 6
    })
    .await;
    let elapsed = start.elapsed();
    // The acknowledgement comes from the node that stored the message; the echo comes
    // back through the engine's fan-out (Redis pub/sub), so it may land a little later.
    poll_until_async("six echoes", Duration::from_secs(5), || {
        log.seq_texts(ROOM).len() >= 6
    })
    .await;
    // Two go at once, then one every 500 ms: the last cannot be acknowledged before
    // 2 s however fast the machine is.
    assert!(elapsed >= Duration::from_millis(1990), "{elapsed:?}");
    let texts: Vec<String> = log.seq_texts(ROOM).into_iter().map(|m| m.1).collect();
    assert_eq!(texts, ["r0", "r1", "r2", "r3", "r4", "r5"]);
    assert_eq!(log.count(|e| matches!(e, ChatEvent::SendFailed { .. })), 0);
    let stats = client.close(Duration::from_secs(5)).await.unwrap();
    assert!(stats.waits >= 4, "each refused send waited: {stats:?}");
    assert_eq!(stats.sent, 6);
}

async fn moderation_needs_the_role(engine: Engine) {
    let backend = Backend::start(engine);
    let server = backend.server(fast_config()).await;
    let (viewer, viewer_log) = connect(&server, "eve", Role::Viewer).await;
    let (moderator, _) = connect(&server, "mo", Role::Moderator).await;
    viewer.join(ROOM).await.unwrap();
    moderator.join(ROOM).await.unwrap();
    let sent = viewer.send(ROOM, "spam").await.unwrap();

    let refused = viewer.ban(ROOM, "mo").await.unwrap_err();
    assert_eq!(
        refused.refusal().map(|e| e.code),
        Some(ErrorCode::Forbidden)
    );
    let refused = viewer
        .slow_mode(ROOM, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(
        refused.refusal().map(|e| e.code),
        Some(ErrorCode::Forbidden)
    );

    moderator.delete(ROOM, sent.seq).await.unwrap();
    let history = moderator.history(ROOM, None, 10).await.unwrap();
    assert!(history.messages[0].deleted && history.messages[0].text.is_empty());
    moderator.ban(ROOM, "eve").await.unwrap();
    poll_until_async("eve kicked", Duration::from_secs(5), || {
        viewer_log.count(|e| matches!(e, ChatEvent::Kicked { .. })) == 1
    })
    .await;
    let refused = viewer.send(ROOM, "again").await.unwrap_err();
    assert!(matches!(refused, ChatError::NotJoined(_)), "{refused}");
    let refused = viewer.join(ROOM).await.unwrap_err();
    assert_eq!(refused.refusal().map(|e| e.code), Some(ErrorCode::Banned));
}

async fn oversize_and_invalid_texts_fail_alone(engine: Engine) {
    let backend = Backend::start(engine);
    let server = backend.server(fast_config()).await;
    let (client, log) = connect(&server, "ada", Role::Viewer).await;
    client.join(ROOM).await.unwrap();
    let long = "x".repeat(501);
    let refused = client.send(ROOM, &long).await.unwrap_err();
    assert_eq!(
        refused.refusal().map(|e| e.code),
        Some(ErrorCode::MessageTooLong)
    );
    let refused = client.send(ROOM, "   ").await.unwrap_err();
    assert_eq!(
        refused.refusal().map(|e| e.code),
        Some(ErrorCode::InvalidText)
    );
    // The queue moves on and the connection stays usable.
    let ok = client.send(ROOM, &"é".repeat(500)).await.unwrap();
    assert_eq!(ok.seq, 1);
    // The refusals reach the event log on the client's own task: wait for both.
    poll_until_async("two SendFailed events", Duration::from_secs(5), || {
        log.count(|e| matches!(e, ChatEvent::SendFailed { .. })) == 2
    })
    .await;
    let stats = client.close(Duration::from_secs(5)).await.unwrap();
    assert_eq!((stats.connections, stats.send_failures), (1, 2));
}

/// With the memory engine a restarted server is a new epoch; with Redis the rooms live
/// on in Redis and the clients recover.
async fn shutdown_asks_to_reconnect_and_a_restarted_server_is_a_new_epoch(engine: Engine) {
    let backend = Backend::start(engine);
    let server = backend.server(fast_config()).await;
    let (ada, ada_log) = connect(&server, "ada", Role::Viewer).await;
    let (bob, bob_log) = connect(&server, "bob", Role::Viewer).await;
    ada.join(ROOM).await.unwrap();
    bob.join(ROOM).await.unwrap();
    ada.send(ROOM, "before").await.unwrap();
    poll_until_async("bob got it", Duration::from_secs(5), || {
        bob_log.seq_texts(ROOM).len() == 1
    })
    .await;

    // Shutdown: every client is told to reconnect after retry_after_ms.
    server
        .chat
        .shutdown(Duration::from_millis(300), Duration::from_secs(5))
        .await;
    assert_eq!(server.chat.connections(), 0);
    poll_until_async("both told to come back", Duration::from_secs(5), || {
        [&ada_log, &bob_log].iter().all(|log| {
            log.count(|e| {
                matches!(e, ChatEvent::Disconnected { reason, retry_in }
                if reason.contains("shutting_down") && *retry_in >= Duration::from_millis(300))
            }) == 1
        })
    })
    .await;
    // The same address, a new process's worth of state: in memory, history is gone.
    let addr = server.addr;
    drop(server);
    let restarted = backend.server_on(addr, fast_config()).await;
    let expected = match engine {
        Engine::Memory => JoinOutcome::EpochChanged,
        Engine::Redis => JoinOutcome::Recovered,
    };
    poll_until_async("both re-joined", Duration::from_secs(15), || {
        [&ada_log, &bob_log].iter().all(|log| {
            log.count(|e| matches!(e, ChatEvent::Joined { outcome, .. } if *outcome == expected))
                == 1
        })
    })
    .await;
    ada.send(ROOM, "after").await.unwrap();
    poll_until_async(
        "bob got the new epoch's first message",
        Duration::from_secs(5),
        || bob_log.seq_texts(ROOM).len() == 2,
    )
    .await;
    let after_seq = match engine {
        Engine::Memory => 1,
        Engine::Redis => 2,
    };
    assert_eq!(
        bob_log.seq_texts(ROOM),
        [(1, "before".to_string()), (after_seq, "after".to_string())]
    );
    assert_eq!(restarted.chat.room(ROOM).unwrap().last_seq, after_seq);
}

on_both_engines!(
    two_clients_exchange_1000_messages_once_and_in_order,
    cuts_during_a_burst_lose_and_duplicate_nothing,
    an_expiring_token_is_refreshed_in_band_and_an_expired_one_replaced,
    a_rate_limited_queue_waits_for_retry_after,
    moderation_needs_the_role,
    oversize_and_invalid_texts_fail_alone,
    shutdown_asks_to_reconnect_and_a_restarted_server_is_a_new_epoch,
);
