//! Auth that is safe by default, against the real hub and chat server (docs/auth.md):
//! dev tokens only on a loopback bind, as guests of one existing room who cannot take a
//! real user's name; CORS for configured origins only; WHEP watch tokens; stream keys out
//! of `/api/streams`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use streamhub::chat::client::{ChatClient, ChatConfig, TokenSource};
use streamhub::chat::protocol::Role;
use streamhub::chat::server::Claims;
use streamhub::hub::{CorsOrigins, Hub, HubConfig, StreamKeys, WatchTokens};
use streamhub::media::{AudioFormat, AudioFrame};
use streamhub::rtmp::{PublishConfig, Publisher};
use streamhub::whep::{PlayConfig, Player, WhepError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use streamhub_test_support::opus;

const SECRET: &[u8] = b"test secret";

/// A hub serving HTTP on `http_ip` (port 0) and RTMP on loopback; its HTTP address as
/// reached from this machine (127.0.0.1 for an unspecified bind).
async fn start_hub(config: HubConfig, http_ip: &str) -> (Hub, SocketAddr, SocketAddr) {
    let hub = Hub::new(config);
    let http = TcpListener::bind((http_ip, 0)).await.expect("bind HTTP");
    let rtmp = TcpListener::bind("127.0.0.1:0").await.expect("bind RTMP");
    let mut http_addr = http.local_addr().expect("addr");
    if http_addr.ip().is_unspecified() {
        http_addr.set_ip([127, 0, 0, 1].into());
    }
    let rtmp_addr = rtmp.local_addr().expect("addr");
    let serving = hub.clone();
    tokio::spawn(async move { serving.serve(http, rtmp).await });
    (hub, http_addr, rtmp_addr)
}

/// One HTTP/1.1 exchange written by hand (so that `Host` and `Origin` are exactly ours):
/// status, lower-cased headers, body.
async fn http(addr: SocketAddr, request: &str) -> (u16, Vec<(String, String)>, String) {
    let exchange = async {
        let mut socket = TcpStream::connect(addr).await.expect("connect");
        socket.write_all(request.as_bytes()).await.expect("write");
        let mut response = Vec::new();
        socket.read_to_end(&mut response).await.expect("read");
        String::from_utf8_lossy(&response).to_string()
    };
    let response = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("an answer within 10 s");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad response: {response:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `POST /api/token` with this JSON body and `Host`.
async fn ask_token(addr: SocketAddr, host: &str, body: &str) -> (u16, String) {
    let request = format!(
        "POST /api/token HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, _, body) = http(addr, &request).await;
    (status, body)
}

fn client_config() -> ChatConfig {
    let mut config = ChatConfig::default();
    config.command_timeout = Duration::from_secs(5);
    config
}

/// A chat client of the hub with `token`, joined to `room`.
async fn chat_member(addr: SocketAddr, token: String, room: &str) -> ChatClient {
    let (client, _events) = ChatClient::connect(
        &format!("ws://{addr}/chat"),
        TokenSource::fixed(token),
        client_config(),
    )
    .await
    .expect("chat connects");
    client.join(room).await.expect("join");
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_tokens_are_refused_on_a_non_loopback_bind() {
    for (bind, expected) in [("0.0.0.0", 403), ("127.0.0.1", 200)] {
        let (hub, addr, _) = start_hub(HubConfig::with_secret(SECRET), bind).await;
        // The room exists (a member is in it): only the bind decides.
        let ada = hub
            .chat()
            .keys()
            .issue(&Claims::new("ada", Role::Viewer, vec!["*".into()], 600))
            .unwrap();
        let _member = chat_member(addr, ada, "lobby").await;
        let (status, body) = ask_token(
            addr,
            &addr.to_string(),
            r#"{"user": "bob", "room": "lobby"}"#,
        )
        .await;
        assert_eq!(status, expected, "bind {bind}: {body}");
        if expected == 403 {
            assert!(body.contains("loopback"), "{body}");
        }
    }
    // Turned off on loopback too.
    let mut config = HubConfig::with_secret(SECRET);
    config.dev_tokens = false;
    let (_hub, addr, _) = start_hub(config, "127.0.0.1").await;
    let (status, _) = ask_token(addr, "localhost", r#"{"user": "bob", "room": "x"}"#).await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_tokens_are_for_one_existing_room_and_never_a_real_users_name() {
    let (hub, addr, _) = start_hub(HubConfig::with_secret(SECRET), "127.0.0.1").await;
    let host = addr.to_string();
    let issue = |claims: Claims| hub.chat().keys().issue(&claims).unwrap();
    let _ada = chat_member(
        addr,
        issue(Claims::new("ada", Role::Viewer, vec!["*".into()], 600)),
        "lobby",
    )
    .await;
    let mut grace = Claims::new("u-1234", Role::Moderator, vec!["lobby".into()], 600);
    grace.name = "Grace".into();
    let _grace = chat_member(addr, issue(grace), "lobby").await;

    // A real user's id or display name, in any case: 409.
    for user in ["ada", "ADA", "grace", "u-1234"] {
        let (status, body) = ask_token(
            addr,
            &host,
            &format!(r#"{{"user": "{user}", "room": "lobby"}}"#),
        )
        .await;
        assert_eq!(status, 409, "{user}: {body}");
    }
    // No room, a room that does not exist, a bad name, a foreign Host: refused.
    let refusals = [
        (r#"{"user": "bob"}"#, host.as_str(), 400),
        (r#"{"user": "bob", "room": "*"}"#, host.as_str(), 404),
        (r#"{"user": "bob", "room": "nowhere"}"#, host.as_str(), 404),
        (
            r#"{"user": "guest:ada", "room": "lobby"}"#,
            host.as_str(),
            400,
        ),
        (
            r#"{"user": "bob", "room": "lobby"}"#,
            "evil.example:80",
            403,
        ),
    ];
    for (body, host, expected) in refusals {
        let (status, answer) = ask_token(addr, host, body).await;
        assert_eq!(status, expected, "{body} (Host {host}): {answer}");
    }

    // A free name: a guest viewer of that room only.
    let (status, body) = ask_token(addr, &host, r#"{"user": "bob", "room": "lobby"}"#).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    let token = answer["token"].as_str().expect("token").to_string();
    let claims = hub.chat().keys().verify(&token).expect("a valid token");
    assert_eq!(
        (claims.sub.as_str(), claims.name.as_str(), claims.role),
        ("guest:bob", "bob (guest)", Role::Viewer)
    );
    assert_eq!(claims.rooms, vec!["lobby".to_string()]);
    assert_eq!(answer["chat"], format!("ws://{addr}/chat"));
    let (bob, _events) = ChatClient::connect(
        &format!("ws://{addr}/chat"),
        TokenSource::fixed(token),
        client_config(),
    )
    .await
    .expect("the guest connects");
    bob.join("lobby").await.expect("the guest joins its room");
    assert!(
        bob.join("other").await.is_err(),
        "a guest token allows one room"
    );
    // A guest's name is no real user's: another guest may ask for it (the page asks
    // again on reload).
    let (status, _) = ask_token(addr, &host, r#"{"user": "bob", "room": "lobby"}"#).await;
    assert_eq!(status, 200);
}

async fn get_streams(addr: SocketAddr, origin: Option<&str>) -> (u16, Vec<(String, String)>) {
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    let (status, headers, _) = http(
        addr,
        &format!("GET /api/streams HTTP/1.1\r\nHost: {addr}\r\n{origin}Connection: close\r\n\r\n"),
    )
    .await;
    (status, headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_only_the_configured_origins() {
    // Default: no CORS header at all, whoever asks.
    let (_hub, addr, _) = start_hub(HubConfig::with_secret(SECRET), "127.0.0.1").await;
    let (status, headers) = get_streams(addr, Some("https://app.example")).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "access-control-allow-origin"), None);

    let mut config = HubConfig::with_secret(SECRET);
    config.cors_origins = CorsOrigins::parse(&["https://app.example"]).expect("origins");
    let (_hub, addr, _) = start_hub(config, "127.0.0.1").await;
    let (_, headers) = get_streams(addr, Some("https://app.example")).await;
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(header(&headers, "vary"), Some("Origin"));
    for origin in [Some("https://evil.example"), Some("null"), None] {
        let (_, headers) = get_streams(addr, origin).await;
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            None,
            "{origin:?}"
        );
    }
    // Preflights of WHEP and of /api/token, and WHEP answers, follow the same rule.
    for path in ["/whep/cam1", "/whep/cam1/abc", "/api/token"] {
        for (origin, allowed) in [
            ("https://app.example", true),
            ("https://evil.example", false),
        ] {
            let (status, headers, _) = http(
                addr,
                &format!(
                    "OPTIONS {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: {origin}\r\n\
                     Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n"
                ),
            )
            .await;
            assert_eq!(status, 204, "{path}");
            assert_eq!(
                header(&headers, "access-control-allow-origin").is_some(),
                allowed,
                "OPTIONS {path} from {origin}"
            );
        }
    }
    let (status, headers, _) = http(
        addr,
        &format!(
            "POST /whep/cam1 HTTP/1.1\r\nHost: {addr}\r\nOrigin: https://app.example\r\n\
             Content-Type: application/sdp\r\nContent-Length: 5\r\nConnection: close\r\n\r\nv=0\r\n"
        ),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        Some("https://app.example")
    );
}

/// Publishes an Opus tone with `key` for a minute (or until the hub hangs up): one second
/// of packets, encoded once (a debug build encodes slowly), sent over and over.
fn publish_tone(rtmp: SocketAddr, key: &str) {
    let url = format!("rtmp://{rtmp}/live/{key}");
    tokio::spawn(async move {
        let publisher = Publisher::connect(&url, PublishConfig::default())
            .await
            .expect("publish");
        let second = opus::tone_packets(50);
        let start = tokio::time::Instant::now();
        for (i, packet) in second.iter().cycle().take(3000).cloned().enumerate() {
            tokio::time::sleep_until(start + Duration::from_millis(20 * i as u64)).await;
            let frame = AudioFrame::new(packet, AudioFormat::Opus, 20_000 * i as i64);
            if publisher.send_audio(&frame).await.is_err() {
                return;
            }
        }
    });
}

async fn wait_live(hub: &Hub, name: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !hub
        .streams()
        .iter()
        .any(|s| s.name == name && s.audio.is_some())
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never went live"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn play(addr: SocketAddr, name: &str, token: Option<String>) -> Result<Player, WhepError> {
    Player::connect(&format!("http://{addr}/whep/{name}"), {
        let mut config = PlayConfig::default();
        config.token = token;
        config.timeout = Duration::from_secs(10);
        config
    })
    .await
}

fn status_of(result: Result<Player, WhepError>) -> u16 {
    match result {
        Ok(_) => 201,
        Err(WhepError::Status { status, .. }) => status,
        Err(other) => panic!("expected an HTTP status, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_watch_tokens_guard_the_streams_that_ask_for_them() {
    let mut config = HubConfig::with_secret(SECRET);
    config.watch_tokens = WatchTokens::Streams(BTreeSet::from(["private".to_string()]));
    let (hub, addr, rtmp) = start_hub(config, "127.0.0.1").await;
    publish_tone(rtmp, "private");
    publish_tone(rtmp, "open");
    wait_live(&hub, "private").await;
    wait_live(&hub, "open").await;
    let issue = |rooms: &[&str]| {
        hub.chat()
            .keys()
            .issue(&Claims::new(
                "ada",
                Role::Viewer,
                rooms.iter().map(|r| r.to_string()).collect(),
                600,
            ))
            .unwrap()
    };

    // No token: 401 with the Bearer challenge.
    let (status, headers, _) = http(
        addr,
        &format!(
            "POST /whep/private HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/sdp\r\n\
             Content-Length: 5\r\nConnection: close\r\n\r\nv=0\r\n"
        ),
    )
    .await;
    assert_eq!(status, 401);
    let challenge = header(&headers, "www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer"), "{challenge:?}");
    assert_eq!(status_of(play(addr, "private", None).await), 401);
    // A token for another stream: 403; a forged one: 401.
    assert_eq!(
        status_of(play(addr, "private", Some(issue(&["open"]))).await),
        403
    );
    let forged = streamhub::chat::server::TokenKeys::hs256(b"not the secret")
        .issue(&Claims::new("ada", Role::Viewer, vec!["*".into()], 600))
        .unwrap();
    assert_eq!(status_of(play(addr, "private", Some(forged)).await), 401);
    // A token for the stream (or every room): 201, and our player plays.
    for token in [issue(&["private"]), issue(&["*"])] {
        let mut player = play(addr, "private", Some(token)).await.expect("201");
        let frame = tokio::time::timeout(Duration::from_secs(5), player.next_frame())
            .await
            .expect("a frame within 5 s");
        assert!(frame.is_some());
        // The session's URL is unguessable: 128 random bits.
        let id = player
            .resource()
            .path_segments()
            .and_then(|mut s| s.nth(2))
            .expect("/whep/NAME/ID")
            .to_string();
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "session id {id:?}"
        );
        player.close().await.expect("close");
    }
    // A stream that does not ask for tokens plays without one.
    let player = play(addr, "open", None).await.expect("open stream");
    player.close().await.expect("close");

    // Every stream.
    let mut config = HubConfig::with_secret(SECRET);
    config.watch_tokens = WatchTokens::All;
    let (_hub, addr, _) = start_hub(config, "127.0.0.1").await;
    assert_eq!(status_of(play(addr, "anything", None).await), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_streams_never_shows_a_stream_key() {
    let key = format!("k{:032x}", rand::random::<u128>());
    let mut config = HubConfig::with_secret(SECRET);
    config.keys = StreamKeys::parse(&[format!("studio:{key}")]).expect("keys");
    assert!(!format!("{:?}", config.keys).contains(&key));
    let (hub, addr, rtmp) = start_hub(config, "127.0.0.1").await;
    publish_tone(rtmp, &key);
    wait_live(&hub, "studio").await;
    let (status, _, body) = http(
        addr,
        &format!("GET /api/streams HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("\"studio\""), "{body}");
    assert!(!body.contains(&key), "the key is in /api/streams: {body}");
    assert!(!format!("{:?}", hub.streams()).contains(&key));
}
