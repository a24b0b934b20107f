//! The client's [`Connection`] against the real server's rooms, in memory: its frames go
//! to a [`DetachedConnection`] of an in-process [`ChatServer`] and the server's frames
//! come back, with no socket. The client's clock is ours: each test moves `now` by hand.
//! One test per rule of `docs/chat-protocol.md` §10, and the §9 close codes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, oneshot};
use tokio::time::Instant;

use super::*;
use crate::chat::client::outbox::OutgoingMessage;
use crate::chat::client::{ChatConfig, ChatEvent, JoinInfo, Request, Responder};
use crate::chat::protocol::{Role, SendResult};
use crate::chat::server::fuzzing::DetachedConnection;
use crate::chat::server::token::Claims;
use crate::chat::server::{ChatServer, ChatServerConfig};

const SECRET: &[u8] = b"connection-tests-secret";

/// What a test expects of how a link ended.
type EndCheck = fn(&End) -> bool;

/// A client connection wired to a server, and what came out of it.
struct Wire {
    server: ChatServer,
    conn: Connection,
    peer: Option<DetachedConnection>,
    now: Instant,
    events: Vec<ChatEvent>,
    ends: Vec<End>,
    user: String,
}

impl Wire {
    fn new(server: &ChatServer, user: &str) -> Self {
        let now = Instant::now();
        Wire {
            server: server.clone(),
            conn: Connection::new(ChatConfig::default(), now),
            peer: None,
            now,
            events: Vec::new(),
            ends: Vec::new(),
            user: user.into(),
        }
    }

    fn token(&self) -> String {
        let claims = Claims::new(&self.user, Role::Viewer, vec!["*".into()], 3600);
        self.server.keys().issue(&claims).expect("a token")
    }

    /// A new link: the server gets a new connection, the client authenticates on it.
    async fn open(&mut self) {
        self.peer = Some(DetachedConnection::new(&self.server));
        let token = self.token();
        self.conn
            .open_link(self.now, token, self.now + Duration::from_secs(10));
        self.flush().await;
    }

    /// Moves frames both ways until nothing moves.
    async fn flush(&mut self) {
        loop {
            let mut moved = false;
            while let Some(out) = self.conn.poll_transmit() {
                moved = true;
                if let (Outgoing::Text(text), Some(peer)) = (out, self.peer.as_mut()) {
                    peer.text(&text).await;
                }
            }
            let frames = self
                .peer
                .as_mut()
                .map(|p| p.take_frames())
                .unwrap_or_default();
            for frame in frames {
                moved = true;
                self.conn.handle_frame(self.now, Incoming::Text(&frame));
            }
            self.collect();
            if !moved {
                return;
            }
        }
    }

    /// Takes the events and the end, if any (dropping the server's side then).
    fn collect(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            self.events.push(event);
        }
        if let Some(end) = self.conn.poll_end() {
            self.ends.push(end);
            self.peer = None;
        }
    }

    /// The client's frames reach the server, whose replies are lost with the link.
    async fn cut_after_the_server_read(&mut self) {
        while let Some(out) = self.conn.poll_transmit() {
            if let (Outgoing::Text(text), Some(peer)) = (out, self.peer.as_mut()) {
                peer.text(&text).await;
            }
        }
        self.cut();
    }

    /// The link drops: neither side hears from the other any more.
    fn cut(&mut self) {
        self.peer = None;
        self.conn.link_lost("cut".into());
        self.collect();
    }

    async fn request(&mut self, request: Request) {
        self.conn.request(self.now, request);
        self.flush().await;
    }

    async fn advance(&mut self, by: Duration) {
        self.now += by;
        self.conn.handle_timeout(self.now);
        self.flush().await;
    }

    async fn join(&mut self, room: &str) -> oneshot::Receiver<Result<JoinInfo, ChatError>> {
        let (reply, rx) = oneshot::channel();
        self.request(Request::Join {
            room: room.into(),
            reply,
        })
        .await;
        rx
    }

    async fn send(
        &mut self,
        room: &str,
        id: &str,
        text: &str,
    ) -> oneshot::Receiver<Result<SendResult, ChatError>> {
        let (reply, rx) = oneshot::channel();
        let permits = Arc::new(Semaphore::new(1));
        let permit = permits.try_acquire_owned().expect("a permit");
        self.request(Request::Enqueue {
            message: OutgoingMessage {
                room: room.into(),
                client_msg_id: id.into(),
                text: text.into(),
            },
            responder: Responder {
                reply: Some(reply),
                _permit: permit,
            },
        })
        .await;
        rx
    }

    fn messages(&self) -> Vec<(u64, String)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ChatEvent::Message(m) => Some((m.seq, m.text.clone())),
                _ => None,
            })
            .collect()
    }

    fn sent(&self) -> Vec<(String, u64)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ChatEvent::Sent {
                    client_msg_id,
                    result,
                    ..
                } => Some((client_msg_id.clone(), result.seq)),
                _ => None,
            })
            .collect()
    }

    /// The text frames the client has queued (taken: they never reach the server).
    fn take_written(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(frame) = self.conn.poll_transmit() {
            if let Outgoing::Text(text) = frame {
                out.push(text);
            }
        }
        out
    }
}

fn server() -> ChatServer {
    ChatServer::new(ChatServerConfig::with_secret(SECRET))
}

#[tokio::test]
async fn connects_joins_and_gets_its_own_message_once_with_its_ack() {
    let server = server();
    let mut alice = Wire::new(&server, "alice");
    alice.open().await;
    assert!(alice.conn.is_ready());
    assert!(matches!(
        alice.events.first(),
        Some(ChatEvent::Connected {
            reconnect: false,
            ..
        })
    ));
    let joined = alice.join("r").await;
    assert!(joined.await.expect("answered").is_ok());
    let ack = alice.send("r", "m1", "hello").await;
    let ack = ack.await.expect("answered").expect("published");
    assert_eq!(ack.seq, 1);
    assert_eq!(alice.messages(), vec![(1, "hello".into())]);
    assert_eq!(alice.sent(), vec![("m1".into(), 1)]);
    assert!(alice.ends.is_empty());
}

/// Rules 1, 3 and 4: the last position is kept per room, the re-join asks from it, and
/// what the server replays is delivered once, in order.
#[tokio::test]
async fn a_rejoin_asks_from_the_last_position_and_nothing_is_delivered_twice() {
    let server = server();
    let mut alice = Wire::new(&server, "alice");
    let mut bob = Wire::new(&server, "bob");
    for wire in [&mut alice, &mut bob] {
        wire.open().await;
        let _joined = wire.join("r").await;
    }
    for i in 0..3 {
        let _acked = alice
            .send("r", &format!("a{i}"), &format!("before {i}"))
            .await;
        bob.flush().await;
    }
    assert_eq!(bob.messages().len(), 3);
    bob.cut();
    assert!(matches!(bob.ends.as_slice(), [End::Reconnect { .. }]));
    for i in 3..5 {
        let _acked = alice
            .send("r", &format!("a{i}"), &format!("away {i}"))
            .await;
    }
    bob.open().await;
    let rejoin = bob
        .events
        .iter()
        .rev()
        .find_map(|e| match e {
            ChatEvent::Joined { outcome, .. } => Some(outcome.clone()),
            _ => None,
        })
        .expect("re-joined");
    assert!(matches!(rejoin, JoinOutcome::Recovered), "{rejoin:?}");
    // A push the server repeats (as after a node's failover) is dropped.
    let repeat = serde_json::json!({
        "type": "message", "room": "r", "id": "x", "seq": 4, "epoch": server.room("r").unwrap().epoch,
        "ts": 1, "user": {"id": "alice", "name": "alice", "role": "viewer"}, "text": "away 3"
    });
    bob.conn
        .handle_frame(bob.now, Incoming::Text(&repeat.to_string()));
    bob.collect();
    let seqs: Vec<u64> = bob.messages().iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    assert_eq!(bob.conn.stats.duplicates_dropped, 1);
}

/// Rule 5, the cut between a send and its reply: the server published the message and
/// its ack was lost with the link. After the re-join the client sends it again with the
/// same `client_msg_id`; the server answers from its dedup, and the room holds it once.
#[tokio::test]
async fn a_cut_between_a_send_and_its_reply_publishes_once() {
    let server = server();
    let mut alice = Wire::new(&server, "alice");
    alice.open().await;
    let _joined = alice.join("r").await;
    let (reply, mut ack) = oneshot::channel();
    let permits = Arc::new(Semaphore::new(1));
    alice.conn.request(
        alice.now,
        Request::Enqueue {
            message: OutgoingMessage {
                room: "r".into(),
                client_msg_id: "once".into(),
                text: "exactly once".into(),
            },
            responder: Responder {
                reply: Some(reply),
                _permit: permits.try_acquire_owned().expect("a permit"),
            },
        },
    );
    alice.cut_after_the_server_read().await;
    assert_eq!(server.room("r").map(|r| r.last_seq), Some(1), "published");
    assert!(ack.try_recv().is_err(), "no ack yet");
    alice.open().await;
    let ack = ack.await.expect("answered").expect("acknowledged");
    assert_eq!(ack.seq, 1, "the first publication's seq");
    assert_eq!(server.room("r").map(|r| r.last_seq), Some(1), "not twice");
    assert_eq!(alice.sent(), vec![("once".into(), 1)]);
    assert_eq!(alice.conn.stats.resends, 1);
    // The message was pushed on the first link; the re-join's replay does not repeat it.
    assert_eq!(alice.messages(), vec![(1, "exactly once".into())]);
}

/// Rule 5, the other cut: the send never reached the server. It goes out again after
/// the re-join and is published then.
#[tokio::test]
async fn a_send_lost_before_the_server_read_it_is_published_after_the_rejoin() {
    let server = server();
    let mut alice = Wire::new(&server, "alice");
    alice.open().await;
    let _joined = alice.join("r").await;
    alice
        .conn
        .request(alice.now, enqueue("r", "lost", "in flight"));
    let written = alice.take_written();
    assert!(
        written.iter().any(|f| f.contains("\"lost\"")),
        "{written:?}"
    );
    alice.cut();
    assert_eq!(server.room("r").map(|r| r.last_seq), Some(0));
    alice.open().await;
    assert_eq!(server.room("r").map(|r| r.last_seq), Some(1));
    assert_eq!(alice.sent(), vec![("lost".into(), 1)]);
}

/// Rule 6: one send on the wire at a time; a temporary refusal holds the head for its
/// `retry_after_ms`, then the same message goes again, ahead of the next one.
#[tokio::test]
async fn a_rate_limited_send_holds_the_queue_in_order() {
    let server = server();
    let mut alice = Wire::new(&server, "alice");
    alice.open().await;
    let _joined = alice.join("r").await;
    // The server allows 5 per 5 s: the sixth is refused for a while.
    for i in 0..7 {
        alice
            .conn
            .request(alice.now, enqueue("r", &format!("m{i}"), "x"));
    }
    alice.flush().await;
    assert_eq!(alice.sent().len(), 5);
    assert_eq!(alice.conn.stats.waits, 1);
    // Held: nothing goes out before the hold ends.
    alice.advance(Duration::from_millis(200)).await;
    assert!(alice.take_written().is_empty());
    let held = alice.conn.outbox.held_until().expect("held");
    // At the end of the hold the same message, m5, goes again (and m6 waits behind it).
    alice.now = held;
    alice.conn.handle_timeout(alice.now);
    let written = alice.take_written();
    assert_eq!(written.len(), 1, "{written:?}");
    assert!(written[0].contains("\"m5\""), "{written:?}");
}

/// Rule 6: a final refusal drops only that message and tells the app.
#[tokio::test]
async fn a_final_refusal_fails_only_that_message() {
    let mut config = ChatServerConfig::with_secret(SECRET);
    config.max_text_chars = 10;
    let server = ChatServer::new(config);
    let mut alice = Wire::new(&server, "alice");
    alice.open().await;
    let _joined = alice.join("r").await;
    alice
        .conn
        .request(alice.now, enqueue("r", "long", "far too long a message"));
    alice.conn.request(alice.now, enqueue("r", "short", "ok"));
    alice.flush().await;
    let failed: Vec<_> = alice
        .events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::SendFailed { client_msg_id, .. } => Some(client_msg_id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(failed, vec!["long".to_string()]);
    assert_eq!(alice.sent(), vec![("short".into(), 1)]);
}

/// Rule 7: a command without a reply for `command_timeout` means a dead link.
#[tokio::test]
async fn a_command_without_a_reply_ends_the_link() {
    let server = server();
    let mut alice = Wire::new(&server, "alice");
    alice.open().await;
    alice.conn.request(alice.now, join_request("r"));
    assert_eq!(
        alice.take_written().len(),
        1,
        "the join, which goes unanswered"
    );
    alice.advance(Duration::from_secs(9)).await;
    assert!(alice.ends.is_empty());
    alice.advance(Duration::from_secs(1)).await;
    assert!(
        matches!(&alice.ends[..], [End::Reconnect { reason, .. }] if reason.contains("no reply")),
        "{:?}",
        alice.ends
    );
}

/// Rule 7: 40 s with nothing received means a dead link, pings going out meanwhile.
#[tokio::test]
async fn silence_ends_the_link_after_pings() {
    let server = server();
    let mut alice = Wire::new(&server, "alice");
    alice.open().await;
    let mut pings = 0;
    for _ in 0..39 {
        alice.now += Duration::from_secs(1);
        alice.conn.handle_timeout(alice.now);
        while let Some(out) = alice.conn.poll_transmit() {
            pings += usize::from(out == Outgoing::Ping);
        }
        alice.collect();
    }
    assert_eq!(pings, 2, "every 15 s");
    assert!(alice.ends.is_empty());
    alice.advance(Duration::from_secs(1)).await;
    assert!(
        matches!(&alice.ends[..], [End::Reconnect { reason, .. }] if reason.contains("nothing received")),
        "{:?}",
        alice.ends
    );
    assert_eq!(
        alice.conn.poll_timeout(),
        None,
        "no link, nothing to wake for"
    );
}

/// Rule 2 and §9: the server's goodbye says whether and when to come back.
#[tokio::test]
async fn the_servers_goodbye_decides_the_reconnect() {
    let server = server();
    let cases: [(&str, EndCheck); 4] = [
        (
            r#"{"type":"disconnect","code":"shutdown","message":"restart","reconnect":true,"retry_after_ms":1500}"#,
            |end| matches!(end, End::Reconnect { retry_after: Some(d), expired: false, .. } if *d == Duration::from_millis(1500)),
        ),
        (
            r#"{"type":"disconnect","code":"token_expired","message":"expired","reconnect":true}"#,
            |end| matches!(end, End::Reconnect { expired: true, .. }),
        ),
        (
            r#"{"type":"disconnect","code":"unauthorized","message":"no","reconnect":false}"#,
            |end| matches!(end, End::Fatal(ChatError::Unauthorized(_))),
        ),
        (
            r#"{"type":"disconnect","code":"banned","message":"bye","reconnect":false}"#,
            |end| matches!(end, End::Fatal(ChatError::Protocol(_))),
        ),
    ];
    for (frame, expected) in cases {
        let mut alice = Wire::new(&server, "alice");
        alice.open().await;
        alice.conn.handle_frame(alice.now, Incoming::Text(frame));
        alice.collect();
        assert!(
            alice.ends.len() == 1 && expected(&alice.ends[0]),
            "{frame}: {:?}",
            alice.ends
        );
    }
    let closes: [(u16, EndCheck); 3] = [
        (4002, |end| {
            matches!(end, End::Reconnect { expired: true, .. })
        }),
        (4001, |end| {
            matches!(end, End::Fatal(ChatError::Unauthorized(_)))
        }),
        (4005, |end| {
            matches!(end, End::Reconnect { expired: false, .. })
        }),
    ];
    for (code, expected) in closes {
        let mut alice = Wire::new(&server, "alice");
        alice.open().await;
        alice
            .conn
            .handle_frame(alice.now, Incoming::Close(Some((code, "bye".into()))));
        alice.collect();
        assert!(
            alice.ends.len() == 1 && expected(&alice.ends[0]),
            "{code}: {:?}",
            alice.ends
        );
    }
}

/// A refused token at `connect` is final; no reply at all by the deadline is a lost
/// link.
#[tokio::test]
async fn the_handshake_ends_on_a_refusal_or_its_deadline() {
    let server = server();
    let mut alice = Wire::new(&server, "alice");
    alice.peer = Some(DetachedConnection::new(&server));
    alice.conn.open_link(
        alice.now,
        "not-a-token".into(),
        alice.now + Duration::from_secs(10),
    );
    alice.flush().await;
    assert!(
        matches!(&alice.ends[..], [End::Fatal(ChatError::Unauthorized(_))]),
        "{:?}",
        alice.ends
    );
    let mut bob = Wire::new(&server, "bob");
    let token = bob.token();
    bob.conn
        .open_link(bob.now, token, bob.now + Duration::from_secs(10));
    assert_eq!(bob.take_written().len(), 1, "the connect, unanswered");
    assert_eq!(
        bob.conn.poll_timeout(),
        Some(bob.now + Duration::from_secs(10))
    );
    bob.advance(Duration::from_secs(10)).await;
    assert!(
        matches!(&bob.ends[..], [End::Reconnect { .. }]),
        "{:?}",
        bob.ends
    );
}

/// A close asked with messages queued waits for them (up to its limit), then writes a
/// close frame and ends; the app gets the final counters.
#[tokio::test]
async fn a_close_waits_for_the_outbox_then_closes() {
    let server = server();
    let mut alice = Wire::new(&server, "alice");
    alice.open().await;
    let _joined = alice.join("r").await;
    alice
        .conn
        .request(alice.now, enqueue("r", "last", "goodbye"));
    let (reply, stats) = oneshot::channel();
    alice.conn.request(
        alice.now,
        Request::Close {
            within: Duration::from_secs(2),
            reply,
        },
    );
    let mut wrote_close = false;
    loop {
        while let Some(out) = alice.conn.poll_transmit() {
            match out {
                Outgoing::Text(text) => {
                    if let Some(peer) = alice.peer.as_mut() {
                        peer.text(&text).await;
                    }
                }
                Outgoing::Close => wrote_close = true,
                Outgoing::Ping => {}
            }
        }
        let frames = alice
            .peer
            .as_mut()
            .map(|p| p.take_frames())
            .unwrap_or_default();
        if frames.is_empty() {
            break;
        }
        for frame in frames {
            alice.conn.handle_frame(alice.now, Incoming::Text(&frame));
        }
    }
    alice.collect();
    assert!(wrote_close);
    assert!(matches!(&alice.ends[..], [End::Closed]), "{:?}", alice.ends);
    assert_eq!(alice.sent(), vec![("last".into(), 1)]);
    alice.conn.finish(None);
    assert_eq!(stats.await.expect("the counters").sent, 1);
}

/// Kicked from a room: the app learns it, and what was queued for the room fails.
#[tokio::test]
async fn a_kick_forgets_the_room_and_fails_its_queue() {
    let server = server();
    let mut alice = Wire::new(&server, "alice");
    alice.open().await;
    let _joined = alice.join("r").await;
    let _ = alice.take_written();
    alice
        .conn
        .request(alice.now, enqueue("r", "queued", "never"));
    let _ = alice.take_written();
    let kick = r#"{"type":"kicked","room":"r","code":"banned","message":"spam"}"#;
    alice.conn.handle_frame(alice.now, Incoming::Text(kick));
    alice.collect();
    assert!(
        alice
            .events
            .iter()
            .any(|e| matches!(e, ChatEvent::Kicked { room, .. } if room == "r"))
    );
    assert!(alice.events.iter().any(
        |e| matches!(e, ChatEvent::SendFailed { client_msg_id, .. } if client_msg_id == "queued")
    ));
    assert!(alice.ends.is_empty(), "the link stays");
}

fn enqueue(room: &str, id: &str, text: &str) -> Request {
    let permits = Arc::new(Semaphore::new(1));
    Request::Enqueue {
        message: OutgoingMessage {
            room: room.into(),
            client_msg_id: id.into(),
            text: text.into(),
        },
        responder: Responder {
            reply: None,
            _permit: permits.try_acquire_owned().expect("a permit"),
        },
    }
}

fn join_request(room: &str) -> Request {
    let (reply, _) = oneshot::channel();
    Request::Join {
        room: room.into(),
        reply,
    }
}
