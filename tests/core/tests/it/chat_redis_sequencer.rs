//! The chat rooms' decide step on a real redis-server (issue 15): two sequencers stand
//! for two chat nodes sharing one Redis.

use streamhub_test_support::redis as redis_server;

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::StreamExt;
use redis_server::{Durability, RedisServer};
use streamhub::chat::protocol::{ErrorCode, Position, RateInfo, Role, UserInfo};
use streamhub::chat::server::redis_engine::{
    Claim, Numbered, RedisSequencer, SendOutcome, SendRequest, SequencerConfig, decode_publication,
};

/// The value of `$call` (a future of a `Result`) once Redis is back after a restart:
/// the connection manager reconnects by itself, and the first commands may meet the old
/// connection broken. Thirty tries, 100 ms apart.
macro_rules! once_back {
    ($what:expr, $call:expr) => {{
        let mut value = None;
        for _ in 0..30 {
            match $call.await {
                Ok(v) => {
                    value = Some(v);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        value.unwrap_or_else(|| panic!("{} failed after the restart", $what))
    }};
}

fn config(history: usize, rate: RateInfo) -> SequencerConfig {
    SequencerConfig {
        history,
        dedup_ttl: Duration::from_secs(600),
        rate,
        archived: false,
        lossless_redis: false,
    }
}

/// A rate no test here reaches.
const UNLIMITED: RateInfo = RateInfo {
    messages: 1_000_000,
    per_ms: 1000,
};

fn user(id: &str) -> UserInfo {
    UserInfo {
        id: id.into(),
        name: id.to_uppercase(),
        role: Role::Viewer,
    }
}

async fn node(redis: &RedisServer, config: SequencerConfig) -> RedisSequencer {
    tokio::time::timeout(
        Duration::from_secs(5),
        RedisSequencer::connect(&redis.url(), config),
    )
    .await
    .expect("connected within 5 s")
    .expect("connected")
}

async fn send(node: &RedisSequencer, room: &str, who: &UserInfo, cmid: &str) -> SendOutcome {
    let request = SendRequest {
        room,
        user: who,
        text: &format!("text of {cmid}"),
        client_msg_id: cmid,
        moderator: false,
    };
    tokio::time::timeout(Duration::from_secs(5), node.send(&request))
        .await
        .expect("decided within 5 s")
        .expect("decided")
}

fn sent(outcome: SendOutcome) -> Numbered {
    match outcome {
        SendOutcome::Sent(numbered) => numbered,
        other => panic!("not sent: {other:?}"),
    }
}

/// 1000 sends from two nodes at once: numbers 1..1000, each once, stored in order with
/// their own text, and published in that order.
#[tokio::test]
async fn two_nodes_number_one_room_without_gaps_or_repeats() {
    let redis = RedisServer::start(Durability::None);
    let a = node(&redis, config(2000, UNLIMITED)).await;
    let b = node(&redis, config(2000, UNLIMITED)).await;
    let client = redis::Client::open(redis.url()).expect("client");
    let mut pubsub = client.get_async_pubsub().await.expect("pubsub");
    pubsub
        .subscribe(streamhub::chat::server::redis_engine::RoomKeys::new("cam1").channel())
        .await
        .expect("subscribed");

    let (alice, bob) = (user("alice"), user("bob"));
    let from = |n: &RedisSequencer, who: &UserInfo, tag: &'static str| {
        let (n, who) = (n.clone(), who.clone());
        tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..500 {
                seqs.push(sent(send(&n, "cam1", &who, &format!("{tag}{i}")).await).seq);
            }
            seqs
        })
    };
    let (on_a, on_b) = (from(&a, &alice, "a"), from(&b, &bob, "b"));
    let (on_a, on_b) = (on_a.await.expect("node a"), on_b.await.expect("node b"));
    assert!(
        on_a.windows(2).all(|w| w[0] < w[1]),
        "a node's own sends in order"
    );
    let all: BTreeSet<u64> = on_a.iter().chain(&on_b).copied().collect();
    assert_eq!(all, (1..=1000).collect(), "every number once");

    let epoch = a
        .fence("cam1", Claim::Nothing)
        .await
        .expect("position")
        .top
        .epoch;
    let (top, stored) = a
        .after(
            "cam1",
            &Position {
                epoch: epoch.clone(),
                seq: 0,
            },
        )
        .await
        .expect("read")
        .expect("all held");
    assert_eq!(top, 1000);
    assert_eq!(
        stored.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=1000).collect::<Vec<_>>()
    );
    for m in &stored {
        let cmid = m.client_msg_id.as_deref().expect("client_msg_id");
        assert_eq!(m.text, format!("text of {cmid}"));
        assert_eq!(m.id, format!("{epoch}-{}", m.seq));
        assert_eq!(
            m.user.id,
            if cmid.starts_with('a') {
                "alice"
            } else {
                "bob"
            }
        );
    }

    let mut published = Vec::new();
    let mut messages = pubsub.on_message();
    while published.len() < 1000 {
        let msg = tokio::time::timeout(Duration::from_secs(5), messages.next())
            .await
            .expect("published within 5 s")
            .expect("subscription open");
        published.push(decode_publication("cam1", msg.get_payload_bytes()).expect("decodes"));
    }
    assert_eq!(published, stored, "published as stored, in order");
}

/// A resend of one `client_msg_id`, through the other node: the first reply, and
/// nothing numbered or stored again.
#[tokio::test]
async fn a_resend_through_another_node_gets_the_first_reply() {
    let redis = RedisServer::start(Durability::None);
    let a = node(&redis, config(100, UNLIMITED)).await;
    let b = node(&redis, config(100, UNLIMITED)).await;
    let alice = user("alice");
    let first = sent(send(&a, "r", &alice, "m1").await);
    assert_eq!(
        send(&b, "r", &alice, "m1").await,
        SendOutcome::Duplicate(first.clone())
    );
    // The same id from someone else is another message.
    let other = sent(send(&b, "r", &user("bob"), "m1").await);
    assert_eq!(other.seq, first.seq + 1);
    let top = a.fence("r", Claim::Nothing).await.expect("position").top;
    assert_eq!(top.seq, 2);
}

/// Bans, timeouts, slow mode and the rate limit, on Redis's clock, whichever node asks.
#[tokio::test]
async fn moderation_and_limits_hold_on_every_node() {
    let redis = RedisServer::start(Durability::None);
    let a = node(
        &redis,
        config(
            100,
            RateInfo {
                messages: 3,
                per_ms: 60_000,
            },
        ),
    )
    .await;
    let b = node(
        &redis,
        config(
            100,
            RateInfo {
                messages: 3,
                per_ms: 60_000,
            },
        ),
    )
    .await;
    let carol = user("carol");
    for i in 0..3 {
        let on = if i % 2 == 0 { &a } else { &b };
        sent(send(on, "r", &carol, &format!("c{i}")).await);
    }
    let SendOutcome::Refused(error) = send(&b, "r", &carol, "c3").await else {
        panic!("a fourth send in the window is refused");
    };
    assert_eq!(error.code, ErrorCode::RateLimited);
    assert!(
        error
            .retry_after_ms
            .is_some_and(|ms| ms > 0 && ms <= 20_000),
        "{error:?}"
    );

    let dave = user("dave");
    a.set_banned("r", "dave", true).await.expect("ban");
    let SendOutcome::Refused(error) = send(&b, "r", &dave, "d0").await else {
        panic!("banned");
    };
    assert_eq!(error.code, ErrorCode::Banned);
    a.set_banned("r", "dave", false).await.expect("unban");
    sent(send(&b, "r", &dave, "d1").await);

    let erin = user("erin");
    a.time_out("r", "erin", Duration::from_secs(30))
        .await
        .expect("timeout");
    let SendOutcome::Refused(error) = send(&b, "r", &erin, "e0").await else {
        panic!("timed out");
    };
    assert_eq!(error.code, ErrorCode::TimedOut);
    assert!(
        error.retry_after_ms.is_some_and(|ms| ms > 25_000),
        "{error:?}"
    );

    let frank = user("frank");
    b.set_slow_mode("r", Duration::from_secs(30))
        .await
        .expect("slow mode");
    sent(send(&a, "r", &frank, "f0").await);
    let SendOutcome::Refused(error) = send(&b, "r", &frank, "f1").await else {
        panic!("slow mode");
    };
    assert_eq!(error.code, ErrorCode::SlowMode);
    let moderator = SendRequest {
        room: "r",
        user: &frank,
        text: "a moderator is not slowed",
        client_msg_id: "f2",
        moderator: true,
    };
    assert!(matches!(
        a.send(&moderator).await.expect("decided"),
        SendOutcome::Sent(_)
    ));
}

/// Redis restarted without persistence loses the room: the next send starts a new
/// epoch, so (epoch, 1) is never the old epoch's number 1. A client that holds a
/// position past the top in the room's epoch (a lost tail) rotates the epoch, and so
/// does a node's reconnect; a position the room vouches for changes nothing.
#[tokio::test]
async fn positions_redis_cannot_vouch_for_rotate_the_epoch() {
    let mut redis = RedisServer::start(Durability::None);
    let a = node(&redis, config(100, UNLIMITED)).await;
    let alice = user("alice");
    let first = sent(send(&a, "r", &alice, "x1").await);
    sent(send(&a, "r", &alice, "x2").await);
    redis.restart();
    let request = SendRequest {
        room: "r",
        user: &alice,
        text: "after the restart",
        client_msg_id: "x3",
        moderator: false,
    };
    let after = sent(once_back!("a send", a.send(&request)));
    assert_ne!(
        after.epoch, first.epoch,
        "a new epoch after the data was lost"
    );
    assert_eq!(after.seq, 1);

    let holds = Position {
        epoch: after.epoch.clone(),
        seq: 1,
    };
    let same = a.fence("r", Claim::Holds(&holds)).await.expect("fence");
    assert!(!same.rotated);
    assert_eq!(same.top, holds);
    let ahead = Position {
        epoch: after.epoch.clone(),
        seq: 5,
    };
    let fenced = a.fence("r", Claim::Holds(&ahead)).await.expect("fence");
    assert!(fenced.rotated);
    assert_ne!(fenced.top.epoch, after.epoch);
    assert_eq!(fenced.top.seq, 0);
    let next = sent(send(&a, "r", &alice, "x4").await);
    assert_eq!(
        (next.epoch.as_str(), next.seq),
        (fenced.top.epoch.as_str(), 1)
    );
    // The old epoch's messages are not replayed as the new one's.
    assert_eq!(a.after("r", &holds).await.expect("read"), None);

    let reconnected = a.fence("r", Claim::Reconnected).await.expect("fence");
    assert!(reconnected.rotated);
    assert_ne!(reconnected.top.epoch, next.epoch);
}

/// With `appendfsync always`, a SIGKILLed Redis keeps every acknowledged send.
#[tokio::test]
async fn with_appendfsync_always_a_killed_redis_keeps_every_acknowledged_send() {
    let mut redis = RedisServer::start(Durability::Always);
    let a = node(&redis, config(1000, UNLIMITED)).await;
    let alice = user("alice");
    let mut last = None;
    for i in 0..200 {
        last = Some(sent(send(&a, "r", &alice, &format!("k{i}")).await));
    }
    let last = last.expect("sent");
    redis.restart();
    let since = Position {
        epoch: last.epoch.clone(),
        seq: 0,
    };
    let held = once_back!("a read", a.after("r", &since));
    let (top, messages) = held.expect("the room survived the kill");
    assert_eq!(top, 200);
    assert_eq!(messages.len(), 200);
    assert_eq!(messages[199].client_msg_id.as_deref(), Some("k199"));
}

/// The stream keeps about the history size (trimmed whole nodes at a time): a position
/// far older than it gets nothing (never a partial replay), a recent one gets exactly
/// what followed it.
#[tokio::test]
async fn a_position_older_than_the_history_gets_no_partial_replay() {
    let redis = RedisServer::start(Durability::None);
    let a = node(&redis, config(50, UNLIMITED)).await;
    let alice = user("alice");
    let mut epoch = String::new();
    for i in 0..300 {
        epoch = sent(send(&a, "r", &alice, &format!("h{i}")).await).epoch;
    }
    let old = Position {
        epoch: epoch.clone(),
        seq: 10,
    };
    assert_eq!(a.after("r", &old).await.expect("read"), None);
    let recent = Position {
        epoch: epoch.clone(),
        seq: 290,
    };
    let (top, messages) = a.after("r", &recent).await.expect("read").expect("held");
    assert_eq!(top, 300);
    assert_eq!(
        messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (291..=300).collect::<Vec<_>>()
    );
    let at_top = Position { epoch, seq: 300 };
    assert_eq!(
        a.after("r", &at_top).await.expect("read"),
        Some((300, Vec::new()))
    );
}

/// A follower that starts while two nodes send (subscribe, then locate, then merge):
/// from the position it started at, every later message once, in order, with no gap;
/// then Redis restarted without persistence: a discontinuity into the new epoch, and
/// the new epoch's messages from 1.
#[tokio::test]
async fn a_follower_joining_mid_burst_gets_every_later_message_once_in_order() {
    use streamhub::chat::server::redis_engine::Followed;

    let mut redis = RedisServer::start(Durability::None);
    let a = node(&redis, config(5000, UNLIMITED)).await;
    let b = node(&redis, config(5000, UNLIMITED)).await;
    let burst = |n: &RedisSequencer, tag: &'static str| {
        let n = n.clone();
        tokio::spawn(async move {
            let who = user(tag);
            for i in 0..600 {
                sent(send(&n, "live", &who, &format!("{tag}{i}")).await);
            }
        })
    };
    let (on_a, on_b) = (burst(&a, "a"), burst(&b, "b"));
    // Start following once the burst is under way (200 of its 1200 sent).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while a
        .fence("live", Claim::Nothing)
        .await
        .expect("position")
        .top
        .seq
        < 200
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the burst did not start"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel(4096);
    let follower = {
        let a = a.clone();
        tokio::spawn(async move { a.follow("live", tx).await })
    };
    on_a.await.expect("node a");
    on_b.await.expect("node b");
    let start = match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
        Ok(Some(Followed::Discontinuity(at))) => at.seq,
        other => panic!("the follower first says where it starts: {other:?}"),
    };
    let mut seqs = Vec::new();
    while seqs.last() != Some(&1200) {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(Followed::Message(m))) => seqs.push(m.seq),
            other => panic!("the follower stopped at {:?}: {other:?}", seqs.last()),
        }
    }
    let first = seqs[0];
    assert_eq!(
        first,
        start + 1,
        "delivery starts right after the start it gave"
    );
    assert!(first > 200 && first < 1200, "joined mid-burst: {first}");
    assert_eq!(
        seqs,
        (first..=1200).collect::<Vec<_>>(),
        "contiguous from {first}"
    );
    eprintln!("follower started at seq {first} of 1200");

    redis.restart();
    let alice = user("alice");
    let request = SendRequest {
        room: "live",
        user: &alice,
        text: "after the restart",
        client_msg_id: "n1",
        moderator: false,
    };
    let after = sent(once_back!("a send", b.send(&request)));
    sent(send(&b, "live", &alice, "n2").await);
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(item)) => seen.push(item),
            other => panic!("the follower stopped after the restart: {other:?} after {seen:?}"),
        }
    }
    assert!(
        matches!(&seen[0], Followed::Discontinuity(p) if p.epoch == after.epoch),
        "{seen:?}"
    );
    let seqs: Vec<u64> = seen[1..]
        .iter()
        .map(|f| match f {
            Followed::Message(m) => {
                assert_eq!(m.epoch, after.epoch);
                m.seq
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(seqs, vec![1, 2]);
    drop(rx);
    tokio::time::timeout(Duration::from_secs(5), follower)
        .await
        .expect("the follower ends when its receiver is gone")
        .expect("task")
        .expect("followed");
}

/// The case fencing is for: Redis crashed before its AOF reached the disk and came back
/// without the tail of the room (here 300 sends acknowledged, the AOF cut to 60 %).
/// Numbering on would hand out numbers clients hold; the scripts see another Redis
/// process and rotate the epoch first. A node that declares the Redis lossless does not.
#[tokio::test]
async fn a_redis_that_lost_its_tail_never_hands_out_a_number_twice() {
    let mut redis = RedisServer::start(Durability::Lossy);
    let a = node(&redis, config(1000, UNLIMITED)).await;
    let alice = user("alice");
    let mut last = None;
    for i in 0..300 {
        last = Some(sent(send(&a, "r", &alice, &format!("t{i}")).await));
    }
    let last = last.expect("sent");
    assert_eq!(last.seq, 300);
    redis.kill();
    redis.cut_aof(0.6);
    redis.start_again();

    // What Redis holds now, read without the check: the same epoch, behind what was
    // acknowledged.
    let mut trusting = config(1000, UNLIMITED);
    trusting.lossless_redis = true;
    let trusting = node(&redis, trusting).await;
    let held = trusting.fence("r", Claim::Nothing).await.expect("position");
    assert_eq!(held.top.epoch, last.epoch);
    assert!(held.top.seq < 300, "the tail was lost: {:?}", held.top);
    assert!(!held.rotated);

    // The checking node: a new epoch before any number.
    let request = SendRequest {
        room: "r",
        user: &alice,
        text: "after the crash",
        client_msg_id: "t-after",
        moderator: false,
    };
    let after = sent(once_back!("a send", a.send(&request)));
    assert_ne!(after.epoch, last.epoch, "{after:?}");
    assert_eq!(after.seq, 1);
    // A client holding (old epoch, 300) is not vouched for: its join sees the new epoch.
    let holds = Position {
        epoch: last.epoch.clone(),
        seq: 300,
    };
    let fenced = a.fence("r", Claim::Holds(&holds)).await.expect("fence");
    assert_eq!(
        fenced.top,
        Position {
            epoch: after.epoch.clone(),
            seq: 1
        }
    );
    assert_eq!(a.after("r", &holds).await.expect("read"), None);

    // Restarted again: once more a new epoch for the checking node...
    redis.restart();
    let again = once_back!("a fence", a.fence("r", Claim::Nothing));
    assert!(again.rotated);
    assert_ne!(again.top.epoch, after.epoch);
    // ...and none for a node that trusts a lossless Redis, on another room.
    once_back!("a fence", trusting.fence("lossless", Claim::Nothing));
    sent(send(&trusting, "lossless", &alice, "l1").await);
    let before = trusting
        .fence("lossless", Claim::Nothing)
        .await
        .expect("position");
    redis.restart();
    let kept = once_back!("a fence", trusting.fence("lossless", Claim::Nothing));
    assert!(!kept.rotated);
    assert_eq!(kept.top, before.top);
}

/// Each node reports its audience with a time to live: the room's total sums the
/// nodes, and a node that stops reporting (killed) drops out once its report expires.
#[tokio::test]
async fn the_audience_sums_the_nodes_and_forgets_a_silent_one() {
    let redis = RedisServer::start(Durability::None);
    let a = node(&redis, config(100, UNLIMITED)).await;
    let b = node(&redis, config(100, UNLIMITED)).await;
    let ttl = Duration::from_millis(600);
    assert_eq!(
        a.report_audience("r", "node-a", 100, ttl).await.expect("a"),
        100
    );
    assert_eq!(
        b.report_audience("r", "node-b", 20, ttl).await.expect("b"),
        120
    );
    assert_eq!(
        b.report_audience("r", "node-b", 25, ttl).await.expect("b"),
        125
    );
    // Node a goes silent; node b keeps reporting until a's report has expired.
    let started = tokio::time::Instant::now();
    loop {
        let total = b.report_audience("r", "node-b", 25, ttl).await.expect("b");
        if total == 25 {
            break;
        }
        assert_eq!(total, 125);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "node a was not forgotten"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        a.report_audience("other", "node-a", 7, ttl)
            .await
            .expect("a"),
        7
    );
}
