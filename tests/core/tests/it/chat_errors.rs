//! The server's documented errors, driven by hand-written JSON frames over a plain
//! WebSocket (tokio-tungstenite, not our client), as `docs/chat-protocol.md` gives them.

use crate::common;

use std::time::Duration;

use common::{Backend, Engine, Server, fast_config};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use streamhub::chat::protocol::{Role, SUBPROTOCOL};
use streamhub::chat::server::Claims;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

type Ws = WebSocketStream<TcpStream>;

async fn open(server: &Server) -> Ws {
    let mut request = server.url().into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (ws, response) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], SUBPROTOCOL);
    ws
}

async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
}

/// The next text frame as JSON, within 5 s.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
            .expect("the connection is open")
            .expect("a readable frame");
        if let Message::Text(text) = frame {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

/// The reply to command `id`, skipping pushes.
async fn reply(ws: &mut Ws, id: u64) -> Value {
    loop {
        let frame = next(ws).await;
        if frame["type"] == "reply" && frame["id"] == id {
            return frame;
        }
    }
}

/// The close code the server ends with, within 5 s.
async fn close_code(ws: &mut Ws) -> u16 {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

async fn connected(server: &Server, user: &str, role: Role) -> Ws {
    let mut ws = open(server).await;
    let token = server.token(user, role, 3600);
    send(
        &mut ws,
        &json!({"id": 1, "type": "connect", "token": token}).to_string(),
    )
    .await;
    let r = reply(&mut ws, 1).await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["result"]["user"]["id"], user);
    assert_eq!(r["result"]["limits"]["max_text_chars"], 500);
    ws
}

fn code(reply: &Value) -> &str {
    reply["error"]["code"].as_str().unwrap_or("<none>")
}

async fn bad_frames_get_documented_errors_and_the_connection_stays_usable(engine: Engine) {
    let backend = Backend::start(engine);
    let server = backend.server(fast_config()).await;
    let mut ws = open(&server).await;

    send(&mut ws, r#"{"id": 1, "type": "join", "room": "cam1"}"#).await;
    assert_eq!(code(&reply(&mut ws, 1).await), "not_connected");

    let token = server.token("ada", Role::Viewer, 3600);
    send(
        &mut ws,
        &json!({"id": 2, "type": "connect", "token": token}).to_string(),
    )
    .await;
    assert_eq!(reply(&mut ws, 2).await["ok"], true);
    send(
        &mut ws,
        &json!({"id": 3, "type": "connect", "token": token}).to_string(),
    )
    .await;
    assert_eq!(code(&reply(&mut ws, 3).await), "already_connected");

    // Not JSON: an error push without an id.
    send(&mut ws, "{not json").await;
    let error = next(&mut ws).await;
    assert_eq!(
        (error["type"].as_str(), code(&error)),
        (Some("error"), "invalid_frame")
    );
    assert_eq!(error["error"]["temporary"], false);
    // JSON but not a command.
    send(&mut ws, "[1, 2]").await;
    assert_eq!(code(&next(&mut ws).await), "invalid_frame");
    // Binary frames are not part of the protocol.
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(code(&next(&mut ws).await), "invalid_frame");
    // A known command with a wrong field type.
    send(&mut ws, r#"{"id": 4, "type": "join", "room": 7}"#).await;
    assert_eq!(code(&reply(&mut ws, 4).await), "invalid_frame");
    // An unknown command.
    send(&mut ws, r#"{"id": 5, "type": "launch_rockets"}"#).await;
    assert_eq!(code(&reply(&mut ws, 5).await), "unknown_command");

    send(
        &mut ws,
        r#"{"id": 6, "type": "send", "room": "cam1", "client_msg_id": "a", "text": "hi"}"#,
    )
    .await;
    assert_eq!(code(&reply(&mut ws, 6).await), "not_joined");
    send(
        &mut ws,
        r#"{"id": 7, "type": "join", "room": "no spaces allowed"}"#,
    )
    .await;
    assert_eq!(code(&reply(&mut ws, 7).await), "invalid_argument");

    send(&mut ws, r#"{"id": 8, "type": "join", "room": "cam1"}"#).await;
    let joined = reply(&mut ws, 8).await;
    assert_eq!(joined["result"]["recovered"], false);
    assert_eq!(joined["result"]["seq"], 0);
    let long = "x".repeat(501);
    send(
        &mut ws,
        &json!({"id": 9, "type": "send", "room": "cam1", "client_msg_id": "a", "text": long})
            .to_string(),
    )
    .await;
    let refused = reply(&mut ws, 9).await;
    assert_eq!(code(&refused), "message_too_long");
    assert_eq!(refused["error"]["temporary"], false);
    send(
        &mut ws,
        r#"{"id": 10, "type": "history", "room": "cam1", "limit": 500}"#,
    )
    .await;
    assert_eq!(code(&reply(&mut ws, 10).await), "invalid_argument");

    // Still usable: a message goes through, with the client_msg_id echoed.
    send(
        &mut ws,
        r#"{"id": 11, "type": "send", "room": "cam1", "client_msg_id": "a", "text": "hi"}"#,
    )
    .await;
    let ack = reply(&mut ws, 11).await;
    assert_eq!(ack["result"]["seq"], 1);
    let echo = next(&mut ws).await;
    assert_eq!(
        (echo["type"].as_str(), echo["client_msg_id"].as_str()),
        (Some("message"), Some("a"))
    );
    // A retry of the same client_msg_id gets the same reply and is not published again.
    send(
        &mut ws,
        r#"{"id": 12, "type": "send", "room": "cam1", "client_msg_id": "a", "text": "hi"}"#,
    )
    .await;
    assert_eq!(reply(&mut ws, 12).await["result"], ack["result"]);
    assert_eq!(server.chat.room("cam1").unwrap().last_seq, 1);
}

async fn a_frame_over_16_kib_closes_with_4004(engine: Engine) {
    let backend = Backend::start(engine);
    let server = backend.server(fast_config()).await;
    let mut ws = connected(&server, "ada", Role::Viewer).await;
    let huge = json!({"id": 2, "type": "send", "room": "cam1", "client_msg_id": "a", "text": "x".repeat(17 * 1024)});
    send(&mut ws, &huge.to_string()).await;
    let error = next(&mut ws).await;
    assert_eq!(code(&error), "frame_too_large");
    let goodbye = next(&mut ws).await;
    assert_eq!(
        (goodbye["type"].as_str(), goodbye["reconnect"].as_bool()),
        (Some("disconnect"), Some(false))
    );
    assert_eq!(close_code(&mut ws).await, 4004);
}

async fn bad_tokens_close_with_4001_and_expired_ones_may_retry(engine: Engine) {
    let backend = Backend::start(engine);
    let server = backend.server(fast_config()).await;
    let mut ws = open(&server).await;
    let forged = streamhub::chat::server::TokenKeys::hs256(b"not the secret")
        .issue(&Claims::new("ada", Role::Moderator, vec!["*".into()], 60))
        .unwrap();
    send(
        &mut ws,
        &json!({"id": 1, "type": "connect", "token": forged}).to_string(),
    )
    .await;
    let refused = reply(&mut ws, 1).await;
    assert_eq!(
        (code(&refused), refused["error"]["temporary"].as_bool()),
        ("unauthorized", Some(false))
    );
    assert_eq!(next(&mut ws).await["reconnect"], false);
    assert_eq!(close_code(&mut ws).await, 4001);

    let mut ws = open(&server).await;
    let mut claims = Claims::new("ada", Role::Viewer, vec!["*".into()], 60);
    claims.exp -= 120;
    let expired = server.chat.keys().issue(&claims).unwrap();
    send(
        &mut ws,
        &json!({"id": 1, "type": "connect", "token": expired}).to_string(),
    )
    .await;
    let refused = reply(&mut ws, 1).await;
    assert_eq!(
        (code(&refused), refused["error"]["temporary"].as_bool()),
        ("token_expired", Some(true))
    );
    let fresh = server.token("ada", Role::Viewer, 60);
    send(
        &mut ws,
        &json!({"id": 2, "type": "connect", "token": fresh}).to_string(),
    )
    .await;
    assert_eq!(reply(&mut ws, 2).await["ok"], true);
    // A token for another user cannot be swapped in.
    let other = server.token("mallory", Role::Moderator, 60);
    send(
        &mut ws,
        &json!({"id": 3, "type": "refresh", "token": other}).to_string(),
    )
    .await;
    assert_eq!(code(&reply(&mut ws, 3).await), "unauthorized");
}

async fn a_token_limited_to_rooms_is_forbidden_elsewhere(engine: Engine) {
    let backend = Backend::start(engine);
    let server = backend.server(fast_config()).await;
    let mut ws = open(&server).await;
    let token = server
        .chat
        .keys()
        .issue(&Claims::new(
            "ada",
            Role::Broadcaster,
            vec!["mine".into()],
            60,
        ))
        .unwrap();
    send(
        &mut ws,
        &json!({"id": 1, "type": "connect", "token": token}).to_string(),
    )
    .await;
    assert_eq!(reply(&mut ws, 1).await["ok"], true);
    send(&mut ws, r#"{"id": 2, "type": "join", "room": "theirs"}"#).await;
    assert_eq!(code(&reply(&mut ws, 2).await), "forbidden");
    // The broadcaster moderates their own room.
    send(
        &mut ws,
        r#"{"id": 3, "type": "slow_mode", "room": "mine", "interval_ms": 2000}"#,
    )
    .await;
    assert_eq!(reply(&mut ws, 3).await["ok"], true);
}

async fn rate_limits_say_when_to_retry(engine: Engine) {
    let mut config = fast_config();
    config.rate.messages = 5;
    config.rate.per_ms = 5000;
    let backend = Backend::start(engine);
    let server = backend.server(config).await;
    let mut ws = connected(&server, "ada", Role::Viewer).await;
    send(&mut ws, r#"{"id": 2, "type": "join", "room": "cam1"}"#).await;
    reply(&mut ws, 2).await;
    for id in 3..8u64 {
        send(&mut ws, &json!({"id": id, "type": "send", "room": "cam1", "client_msg_id": format!("c{id}"), "text": "t"}).to_string()).await;
        assert_eq!(reply(&mut ws, id).await["ok"], true);
    }
    send(
        &mut ws,
        r#"{"id": 8, "type": "send", "room": "cam1", "client_msg_id": "c8", "text": "t"}"#,
    )
    .await;
    let limited = reply(&mut ws, 8).await;
    assert_eq!(code(&limited), "rate_limited");
    assert_eq!(limited["error"]["temporary"], true);
    let wait = limited["error"]["retry_after_ms"].as_u64().unwrap();
    assert!((1..=1000).contains(&wait), "{wait}");
}

async fn a_missing_subprotocol_is_refused(engine: Engine) {
    let backend = Backend::start(engine);
    let server = backend.server(fast_config()).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let err = tokio_tungstenite::client_async(server.url(), tcp)
        .await
        .unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            assert_eq!(response.status(), 400)
        }
        other => panic!("expected HTTP 400, got {other}"),
    }
}

async fn a_recovering_join_replays_exactly_what_was_missed(engine: Engine) {
    let backend = Backend::start(engine);
    let server = backend.server(fast_config()).await;
    let mut ada = connected(&server, "ada", Role::Viewer).await;
    send(&mut ada, r#"{"id": 2, "type": "join", "room": "cam1"}"#).await;
    let epoch = reply(&mut ada, 2).await["result"]["epoch"]
        .as_str()
        .unwrap()
        .to_string();
    for id in 3..13u64 {
        send(&mut ada, &json!({"id": id, "type": "send", "room": "cam1", "client_msg_id": format!("c{id}"), "text": format!("t{id}")}).to_string()).await;
        reply(&mut ada, id).await;
    }
    let mut bob = connected(&server, "bob", Role::Viewer).await;
    send(
        &mut bob,
        &json!({"id": 2, "type": "join", "room": "cam1", "since": {"epoch": epoch, "seq": 7}})
            .to_string(),
    )
    .await;
    let joined = reply(&mut bob, 2).await;
    assert_eq!(
        (
            joined["result"]["recovered"].as_bool(),
            joined["result"]["seq"].as_u64()
        ),
        (Some(true), Some(10))
    );
    let mut replayed = Vec::new();
    for _ in 0..3 {
        let m = next(&mut bob).await;
        assert_eq!(m["type"], "message");
        replayed.push(m["seq"].as_u64().unwrap());
    }
    assert_eq!(replayed, [8, 9, 10]);
    send(
        &mut bob,
        &json!({"id": 3, "type": "history", "room": "cam1", "before_seq": 4, "limit": 2})
            .to_string(),
    )
    .await;
    let page = reply(&mut bob, 3).await;
    let seqs: Vec<u64> = page["result"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        (seqs, page["result"]["has_more"].as_bool()),
        (vec![2, 3], Some(true))
    );
}

on_both_engines!(
    bad_frames_get_documented_errors_and_the_connection_stays_usable,
    a_frame_over_16_kib_closes_with_4004,
    bad_tokens_close_with_4001_and_expired_ones_may_retry,
    a_token_limited_to_rooms_is_forbidden_elsewhere,
    rate_limits_say_when_to_retry,
    a_missing_subprotocol_is_refused,
    a_recovering_join_replays_exactly_what_was_missed,
);
