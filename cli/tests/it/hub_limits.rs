//! The hub's limits against abuse, each at the limit and one past it: HTTP connections
//! per address and the header deadline (slowloris), chat WebSockets per address, WHEP
//! viewers per stream and per address, and the WHEP offer size.

use crate::common;
use crate::hub_harness;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Proc, STREAMHUB, poll_until, streamhub, tempdir};
use hub_harness::{Hub, baseline_clip, publish};

/// Reads until the hub closes (or 10 s pass); what it sent, and how long it took.
fn read_until_closed(socket: &mut TcpStream) -> (String, Duration, bool) {
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match socket.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
        closed,
    )
}

#[test]
fn http_connections_are_capped_per_address_and_slow_headers_are_cut() {
    let hub = Hub::start_with(
        "s",
        &[
            "--http-per-ip",
            "3",
            "--limit-loopback",
            "--http-header-timeout-ms",
            "1500",
        ],
    );
    // Three slowloris connections: headers started, never finished.
    let mut slow: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = TcpStream::connect(&hub.http_addr).expect("connect");
            s.write_all(b"GET /api/streams HTTP/1.1\r\nHost: x\r\n")
                .expect("partial headers");
            s
        })
        .collect();
    // The fourth is past the cap: closed without an answer.
    let mut fourth = TcpStream::connect(&hub.http_addr).expect("connect");
    let _ = fourth.write_all(b"GET /api/streams HTTP/1.1\r\nHost: x\r\n\r\n");
    let (answer, _, closed) = read_until_closed(&mut fourth);
    assert!(
        closed && answer.is_empty(),
        "served past the cap: {answer:?}"
    );
    // The slow ones are cut at the header deadline (hyper answers 408 or just closes).
    for s in &mut slow {
        let (answer, after, closed) = read_until_closed(s);
        assert!(closed, "a slow connection was not cut");
        assert!(
            after < Duration::from_secs(5),
            "cut only after {after:?}: {answer:?}"
        );
    }
    // Their places are free again.
    poll_until("served again", Duration::from_secs(5), || {
        std::panic::catch_unwind(|| hub.get("/api/streams").0 == 200).unwrap_or(false)
    });
}

fn upgrade(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET /chat HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: streamhub.chat.v1\r\n\r\n"
    )
    .expect("upgrade request");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).unwrap_or(0);
    let head = String::from_utf8_lossy(&buf[..n]).into_owned();
    // Keep the socket open for as long as the test runs.
    std::mem::forget(s);
    head.lines().next().unwrap_or_default().to_string()
}

#[test]
fn chat_connections_are_capped_per_address() {
    let hub = Hub::start_with("s", &["--chat-per-ip", "2", "--limit-loopback"]);
    assert!(upgrade(&hub.http_addr).contains(" 101 "));
    assert!(upgrade(&hub.http_addr).contains(" 101 "));
    let third = upgrade(&hub.http_addr);
    assert!(third.contains(" 429 "), "past the cap: {third:?}");
}

/// POSTs a (dummy) offer and returns the whole answer: the limits are checked before
/// the offer is read.
fn raw_offer(hub: &Hub, name: &str) -> String {
    let mut s = TcpStream::connect(&hub.http_addr).expect("connect");
    let body = "v=0\r\n";
    write!(
        s,
        "POST /whep/{name} HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("offer");
    read_until_closed(&mut s).0
}

#[test]
fn whep_viewers_are_capped_per_stream_and_per_address() {
    let dir = tempdir();
    let clip = dir.path().join("clip.flv");
    baseline_clip(&clip, 30);
    let hub = Hub::start_with(
        "s",
        &[
            "--whep-per-stream",
            "2",
            "--whep-per-ip",
            "3",
            "--limit-loopback",
        ],
    );
    let _one = publish(&hub, &clip, "one");
    let _two = publish(&hub, &clip, "two");
    for name in ["one", "two"] {
        poll_until("live", Duration::from_secs(10), || {
            hub.stream(name).is_some()
        });
    }
    let viewer = |name: &str| {
        Proc::spawn(
            "streamhub play",
            Command::new(STREAMHUB)
                .args(["play", &hub.whep_url(name), "--duration", "25"])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
    };
    let whep_viewers = |name: &str| {
        hub.stream(name)
            .and_then(|s| s["whep_viewers"].as_u64())
            .unwrap_or(0)
    };
    // Two viewers of `one`: at the per-stream limit.
    let _a = viewer("one");
    let _b = viewer("one");
    poll_until("two viewers of one", Duration::from_secs(10), || {
        whep_viewers("one") == 2
    });
    // A third viewer of `one` is refused with 503 and Retry-After.
    let (output, _) = streamhub(
        &["play", &hub.whep_url("one"), "--timeout", "5"],
        Duration::from_secs(20),
    );
    assert!(!output.status.success(), "a third viewer of one played");
    let answer = raw_offer(&hub, "one");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("limit of 2 viewers"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 10"),
        "{answer}"
    );
    // A third viewer from this address, of `two`, is at the per-address limit (3).
    let _c = viewer("two");
    poll_until("a viewer of two", Duration::from_secs(10), || {
        whep_viewers("two") == 1
    });
    // A fourth from this address is refused.
    let (output, _) = streamhub(
        &["play", &hub.whep_url("two"), "--timeout", "5"],
        Duration::from_secs(20),
    );
    assert!(
        !output.status.success(),
        "a fourth viewer from one address played"
    );
    let answer = raw_offer(&hub, "two");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("this address watches 3"), "{answer}");
    assert_eq!(whep_viewers("two"), 1);

    // An offer past the size limit: 413.
    let mut s = TcpStream::connect(&hub.http_addr).expect("connect");
    let body = "v=0\r\n".repeat(20_000);
    write!(
        s,
        "POST /whep/one HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("offer");
    let (answer, _, _) = read_until_closed(&mut s);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:.80}");
}
