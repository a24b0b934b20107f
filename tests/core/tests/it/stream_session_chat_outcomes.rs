//! A session hands the app every chat outcome it is owed, however slowly the app reads:
//! a broadcast [`StreamSession`] on the real hub with a 4-event buffer, whose app reads
//! nothing while it sends five messages, a moderator deletes three of them and bans
//! it. Then every `ChatSent`, `ChatDeleted` and the `ChatKicked` arrive; only lossy
//! events (stats, states) may have been dropped.

use std::collections::BTreeSet;
use std::time::Duration;

use streamhub::chat::{ChatClient, ChatConfig, Role, TokenSource};
use streamhub::hub::Hub;
use streamhub::session::{BroadcastConfig, SessionChat, SessionEvent, StreamSession};
use tokio::time::Instant;

use streamhub_test_support::{chat_log, loopback_hub};

const ROOM: &str = "outcomes";

fn token(hub: &Hub, user: &str, role: Role) -> String {
    chat_log::token(hub.chat().keys(), user, role, 3600)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_app_still_gets_every_sent_deleted_and_kicked() {
    let loopback_hub::TestHub { hub, http, rtmp } = loopback_hub::start().await;
    let chat_url = format!("ws://{http}/chat");

    let mut config = BroadcastConfig::new(format!("rtmp://{rtmp}/live/{ROOM}"));
    config.chat = Some(SessionChat::new(
        &chat_url,
        ROOM,
        token(&hub, "ada", Role::Viewer),
    ));
    config.event_capacity = 4;
    config.stats_interval = Duration::from_millis(20);
    let (session, mut events) = StreamSession::broadcast(config).expect("a session");

    // The app reads no event while all this happens.
    let mut ids = BTreeSet::new();
    for i in 0..5 {
        ids.insert(session.send_chat(&format!("m{i}")).await.expect("queued"));
    }
    let (moderator, _moderator_events) = ChatClient::connect(
        &chat_url,
        TokenSource::fixed(token(&hub, "mo", Role::Moderator)),
        ChatConfig::default(),
    )
    .await
    .expect("the moderator connects");
    moderator.join(ROOM).await.expect("joined");
    let deadline = Instant::now() + Duration::from_secs(10);
    while hub.chat().room(ROOM).map_or(0, |room| room.last_seq) < 5 {
        assert!(Instant::now() < deadline, "the five messages never landed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for seq in [1, 3, 5] {
        moderator.delete(ROOM, seq).await.expect("deleted");
    }
    moderator.ban(ROOM, "ada").await.expect("banned");

    // Now the app reads.
    let (mut sent, mut deleted, mut kicked, mut messages) = (BTreeSet::new(), vec![], 0, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while sent.len() < 5 || deleted.len() < 3 || kicked < 1 {
        let event = tokio::time::timeout_at(deadline, events.next())
            .await
            .unwrap_or_else(|_| {
                panic!("missing outcomes: sent {sent:?}, deleted {deleted:?}, kicked {kicked}")
            })
            .expect("the session still runs");
        match event {
            SessionEvent::ChatSent { client_msg_id, .. } => {
                sent.insert(client_msg_id);
            }
            SessionEvent::ChatDeleted { room, seq } => {
                assert_eq!(room, ROOM);
                deleted.push(seq);
            }
            SessionEvent::ChatKicked { room, .. } => {
                assert_eq!(room, ROOM);
                kicked += 1;
            }
            SessionEvent::Chat(message) => {
                assert_eq!(message.text, format!("m{messages}"), "in order, once");
                messages += 1;
            }
            _ => {}
        }
    }
    assert_eq!(sent, ids, "a ChatSent for every message sent");
    assert_eq!(deleted, [1, 3, 5]);
    assert_eq!(messages, 5, "every message once");
    let stats = session.stats();
    println!(
        "sent {}, deleted {}, kicked {kicked}; lossy events dropped meanwhile: {}",
        sent.len(),
        deleted.len(),
        stats.events_dropped
    );
    assert!(
        stats.events_dropped > 0,
        "the buffer was full at some point (else this test proves nothing)"
    );
    session.stop().await;
}
