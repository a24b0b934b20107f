//! `streamhub hub`'s auth flags, end to end (docs/auth.md): `--jwks` and
//! `--jwt-public-key` let `streamhub chat` in with RS256 and EdDSA tokens signed
//! elsewhere, `--cors-origin` allows one origin, `--watch-tokens-for` guards a stream; and
//! a keyed stream's key never shows in `/api/streams` nor in a trace-level log.

use crate::common;
use crate::hub_harness;

use std::io::{Read, Write};
use std::time::Duration;

use common::{poll_until, streamhub, tempdir};
use hub_harness::{Hub, baseline_clip, publish};
use streamhub::chat::protocol::Role;
use streamhub::chat::server::Claims;

use streamhub_test_support::jwt_keys;

use jwt_keys::{KeyPair, jwks_json};

/// One raw HTTP/1.1 exchange with the hub: status and lower-cased head.
fn http(hub: &Hub, request: &str) -> (u16, String) {
    let mut socket = std::net::TcpStream::connect(&hub.http_addr).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    socket.write_all(request.as_bytes()).expect("write");
    let mut response = String::new();
    socket.read_to_string(&mut response).expect("read");
    let head = response
        .split_once("\r\n\r\n")
        .map_or(response.as_str(), |(h, _)| h);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad response {response:?}"));
    (status, head.to_ascii_lowercase())
}

/// `streamhub chat` in room cam1 with `token` (stdin closed: connect, join, leave).
fn chat(hub: &Hub, token: &str) -> std::process::Output {
    streamhub(
        &["chat", &hub.chat, "--room", "cam1", "--token", token],
        Duration::from_secs(20),
    )
    .0
}

#[test]
fn auth_flags_of_the_hub() {
    let dir = tempdir();
    let rsa = KeyPair::rsa(dir.path(), "rsa");
    let ed = KeyPair::ed25519(dir.path(), "ed");
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, jwks_json(vec![rsa.jwk("rsa1")])).expect("write");
    let hub = Hub::start_with(
        "hub secret",
        &[
            "--jwks",
            jwks.to_str().expect("UTF-8"),
            "--jwt-public-key",
            ed.public_pem.to_str().expect("UTF-8"),
            "--cors-origin",
            "https://app.example",
            "--watch-tokens-for",
            "private",
        ],
    );
    let claims = Claims::new("ada", Role::Viewer, vec!["cam1".into()], 600);

    // RS256 from the JWK Set, EdDSA from the PEM key, HS256 from the secret: accepted.
    for (what, token) in [
        ("RS256", rsa.sign(Some("rsa1"), &claims)),
        ("EdDSA", ed.sign(None, &claims)),
        ("HS256", hub.token("ada")),
    ] {
        let out = chat(&hub, &token);
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Another key with the same kid: refused.
    let other = KeyPair::rsa(dir.path(), "other");
    let out = chat(&hub, &other.sign(Some("rsa1"), &claims));
    let line = common::error_line(&out);
    assert!(line.contains("unauthorized"), "{line}");

    // CORS: the configured origin only.
    let get = |origin: &str| {
        http(
            &hub,
            &format!(
                "GET /api/streams HTTP/1.1\r\nHost: {}\r\nOrigin: {origin}\r\nConnection: close\r\n\r\n",
                hub.http_addr
            ),
        )
    };
    let (status, head) = get("https://app.example");
    assert_eq!(status, 200);
    assert!(
        head.contains("access-control-allow-origin: https://app.example"),
        "{head}"
    );
    let (_, head) = get("https://evil.example");
    assert!(!head.contains("access-control-allow-origin"), "{head}");

    // Watch tokens: the guarded stream asks for one (even before it is live); others do not.
    let post = |name: &str| {
        http(
            &hub,
            &format!(
                "POST /whep/{name} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/sdp\r\n\
                 Content-Length: 5\r\nConnection: close\r\n\r\nv=0\r\n",
                hub.http_addr
            ),
        )
    };
    let (status, head) = post("private");
    assert_eq!(status, 401);
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    assert_eq!(post("open").0, 404);
    let out = streamhub(
        &["play", &hub.whep_url("private"), "--timeout", "5"],
        Duration::from_secs(20),
    )
    .0;
    let line = common::error_line(&out);
    assert!(line.contains("401"), "{line}");
}

#[test]
fn a_stream_key_is_never_logged_nor_listed() {
    let dir = tempdir();
    let clip = dir.path().join("clip.flv");
    baseline_clip(&clip, 4);
    let key = format!("k{:032x}", rand::random::<u128>());
    let hub = Hub::start_with_env(
        "s",
        &["--stream", &format!("studio:{key}")],
        &[("STREAMHUB_LOG", "trace")],
    );
    // A near miss of the key is refused (and not echoed), the key itself publishes.
    let near_miss = format!("{key}!");
    let out = streamhub(
        &[
            "publish",
            clip.to_str().expect("UTF-8"),
            &hub.rtmp_url(&near_miss),
        ],
        Duration::from_secs(20),
    )
    .0;
    let line = common::error_line(&out);
    assert!(line.contains("BadName") && !line.contains(&key), "{line}");
    let _publisher = publish(&hub, &clip, &key);
    hub.wait_live("studio", Duration::from_secs(15));
    let (status, body) = hub.get("/api/streams");
    assert_eq!(status, 200);
    assert!(
        body.contains("\"studio\"") && !body.contains(&key),
        "{body}"
    );
    poll_until(
        "video frames in the trace log",
        Duration::from_secs(10),
        || {
            hub.stream("studio")
                .and_then(|s| s["video_frames"].as_u64())
                > Some(30)
        },
    );

    let log = hub.log();
    // The filter let everything through: the RTMP connections' debug lines are there.
    assert!(
        log.contains("DEBUG") && log.contains("RTMP connection"),
        "the hub did not log at debug level:\n{log}"
    );
    assert!(log.contains("studio"), "the stream's name is logged");
    assert!(
        !log.contains(&key),
        "the stream key is in the hub's log:\n{}",
        log.lines()
            .filter(|l| l.contains(&key))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
}
