//! The chat archive (issue 15): rooms' streams on a real redis-server copied into a real
//! PostgreSQL by archiver tasks, which are killed and started again mid-burst.

use streamhub_test_support::postgres as postgres_server;
use streamhub_test_support::redis as redis_server;

use std::sync::Arc;
use std::time::Duration;

use postgres_server::PostgresServer;
use redis_server::{Durability, RedisServer};
use streamhub::chat::protocol::{Position, RateInfo, Role, UserInfo};
use streamhub::chat::server::redis_engine::archive::{Archive, PageCursor};
use streamhub::chat::server::redis_engine::{
    Claim, RedisSequencer, SendOutcome, SendRequest, SequencerConfig,
};

const SENT: u64 = 3000;

async fn connect(redis: &RedisServer) -> RedisSequencer {
    let config = SequencerConfig {
        history: 500,
        dedup_ttl: Duration::from_secs(600),
        rate: RateInfo {
            messages: 1_000_000,
            per_ms: 1000,
        },
        archived: true,
        lossless_redis: false,
    };
    tokio::time::timeout(
        Duration::from_secs(5),
        RedisSequencer::connect(&redis.url(), config),
    )
    .await
    .expect("connected within 5 s")
    .expect("connected")
}

fn archiver(
    node: &RedisSequencer,
    archive: &Arc<Archive>,
    consumer: &'static str,
) -> tokio::task::JoinHandle<()> {
    let (node, archive) = (node.clone(), archive.clone());
    tokio::spawn(async move {
        if let Err(e) = node.archive_room(&archive, "r", consumer).await {
            panic!("archiver {consumer}: {e}");
        }
    })
}

/// 3000 messages from two nodes while archivers are killed and started again, and for a
/// while none runs: the archive holds each exactly once, pages back through all of
/// them with no gap (the stream, once archived, keeps only the last 500), keeps a
/// deletion, and outlives Redis.
#[tokio::test]
async fn every_message_is_archived_once_and_outlives_the_stream_and_redis() {
    let mut redis = RedisServer::start(Durability::None);
    let postgres = PostgresServer::start();
    let a = connect(&redis).await;
    let b = connect(&redis).await;
    let archive = Arc::new(
        tokio::time::timeout(Duration::from_secs(10), Archive::connect(&postgres.url()))
            .await
            .expect("archive within 10 s")
            .expect("archive"),
    );
    let mut first = archiver(&a, &archive, "a");
    let second = archiver(&b, &archive, "b");

    let burst = |n: &RedisSequencer, tag: &'static str| {
        let n = n.clone();
        tokio::spawn(async move {
            let who = UserInfo {
                id: tag.into(),
                name: tag.into(),
                role: Role::Viewer,
            };
            for i in 0..SENT / 2 {
                let request = SendRequest {
                    room: "r",
                    user: &who,
                    text: &format!("{tag} says {i}"),
                    client_msg_id: &format!("{tag}{i}"),
                    moderator: false,
                };
                let outcome = n.send(&request).await.expect("decided");
                assert!(matches!(outcome, SendOutcome::Sent(_)), "{outcome:?}");
                if i % 100 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let (on_a, on_b) = (burst(&a, "a"), burst(&b, "b"));
    // Kill archiver "a" twice mid-burst and start it again: what it had read and not
    // acknowledged is read again from its pending entries.
    for _ in 0..2 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mark = archive.count("r").await.expect("count") + 300;
        while archive.count("r").await.expect("count") < mark.min(SENT - 1) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the archive stalled"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        first.abort();
        let _ = first.await;
        first = archiver(&a, &archive, "a");
    }
    // Every archiver stopped while 1000 more are sent: the stream keeps them (trimmed
    // past the history only as archivers acknowledge), so nothing is lost to the archive.
    first.abort();
    second.abort();
    let _ = first.await;
    let _ = second.await;
    on_a.await.expect("node a");
    on_b.await.expect("node b");
    let first = archiver(&a, &archive, "a");
    let second = archiver(&b, &archive, "b");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while archive.count("r").await.expect("count") < SENT {
        assert!(
            tokio::time::Instant::now() < deadline,
            "archived {} of {SENT}",
            archive.count("r").await.expect("count")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(archive.count("r").await.expect("count"), SENT, "each once");

    // The stream holds the last 500 only; the archive has them all.
    let top = a.fence("r", Claim::Nothing).await.expect("position").top;
    assert_eq!(top.seq, SENT);
    let from_start = Position {
        epoch: top.epoch.clone(),
        seq: 0,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while a.after("r", &from_start).await.expect("read").is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream was not trimmed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kept = a
        .after(
            "r",
            &Position {
                epoch: top.epoch.clone(),
                seq: SENT - 500,
            },
        )
        .await
        .expect("read")
        .expect("the history size is kept");
    assert_eq!(kept.1.len(), 500);
    let mut pages = Vec::new();
    let mut before: Option<PageCursor> = None;
    loop {
        let page = archive
            .page("r", before.as_ref(), 1000)
            .await
            .expect("page");
        let Some(oldest) = page.first() else { break };
        before = Some(PageCursor::from(oldest));
        pages.push(page);
    }
    let all: Vec<_> = pages.into_iter().rev().flatten().collect();
    assert_eq!(
        all.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=SENT).collect::<Vec<_>>(),
        "paged back with no gap and no repeat"
    );
    for m in &all {
        let cmid = m.client_msg_id.as_deref().expect("client_msg_id");
        let (tag, i) = cmid.split_at(1);
        assert_eq!(m.text, format!("{tag} says {i}"));
        assert_eq!(m.user.id, tag);
        assert_eq!(m.epoch, top.epoch);
    }

    assert!(
        archive
            .mark_deleted("r", &top.epoch, 10)
            .await
            .expect("delete")
    );
    let newest_first = archive
        .page("r", Some(&PageCursor::from(&all[10])), 1)
        .await
        .expect("page");
    assert_eq!(newest_first.len(), 1);
    assert_eq!(newest_first[0].seq, 10);
    assert!(newest_first[0].deleted);
    assert_eq!(newest_first[0].text, "");

    first.abort();
    second.abort();
    redis.kill();
    assert_eq!(
        archive.count("r").await.expect("count"),
        SENT,
        "outlives Redis"
    );
}
