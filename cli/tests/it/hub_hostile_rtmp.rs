//! A stranger on the hub's RTMP port, as an attacker would try it: every command the hub
//! knows with 0, 1 and 2 AMF0 values, before and after `connect`; truncated chunks, a
//! huge declared message length, chunk types with no previous header, a zero chunk
//! size, deeply nested AMF0, silence after the handshake, and too many connections from
//! one address. Each gets its exact answer (a refusal, a reply or a hang-up), nothing in
//! the hub's log says "panicked", and ffmpeg publishes right afterwards.

use crate::common;
use crate::hub_harness;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Proc, poll_until, tempdir};
use hub_harness::{Hub, baseline_clip};
use streamhub::_internal_test_exports::hub::ingest::session::KNOWN_COMMANDS;
use wire::*;

/// What the hub did with an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// `_error`, or `onStatus` at level `error`, then the hub hung up.
    Refused,
    /// A `_result` (the request was complete and served).
    Answered,
    /// The hub hung up without a refusal.
    HungUp,
}

/// The AMF0 and chunk helpers of this test, written against the library's own decoder
/// (the hub is what is tested, not the encoder).
mod wire {
    use streamhub::_internal_test_exports::rtmp::amf0;
    use streamhub::_internal_test_exports::rtmp::chunk_reader::{ChunkReader, ReaderLimits};

    pub fn string(s: &str) -> Vec<u8> {
        let mut out = vec![0x02];
        out.extend_from_slice(&(s.len() as u16).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
        out
    }

    pub fn number(n: f64) -> Vec<u8> {
        let mut out = vec![0x00];
        out.extend_from_slice(&n.to_be_bytes());
        out
    }

    pub fn object(props: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut out = vec![0x03];
        for (name, value) in props {
            out.extend_from_slice(&(name.len() as u16).to_be_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(value);
        }
        out.extend_from_slice(&[0, 0, 0x09]);
        out
    }

    /// One message in one type 0 chunk (bodies here are under 128 bytes) or more.
    pub fn message(csid: u8, type_id: u8, stream_id: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, piece) in body.chunks(128).enumerate() {
            if i == 0 {
                out.push(csid);
                out.extend_from_slice(&[0, 0, 0]);
                out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
                out.push(type_id);
                out.extend_from_slice(&stream_id.to_le_bytes());
            } else {
                out.push(0xc0 | csid);
            }
            out.extend_from_slice(piece);
        }
        if body.is_empty() {
            out.extend_from_slice(&[csid, 0, 0, 0, 0, 0, 0, type_id]);
            out.extend_from_slice(&stream_id.to_le_bytes());
        }
        out
    }

    pub fn command(values: &[Vec<u8>]) -> Vec<u8> {
        message(3, 20, 0, &values.concat())
    }

    pub fn connect() -> Vec<u8> {
        command(&[
            string("connect"),
            number(1.0),
            object(&[("app", string("live"))]),
        ])
    }

    /// Names of the commands in `bytes` (server to client, after the handshake) and
    /// whether any was a refusal.
    pub fn commands(bytes: &[u8]) -> Vec<(String, bool)> {
        let mut reader = ChunkReader::new(ReaderLimits::default());
        reader.push(bytes);
        let mut out = Vec::new();
        while let Ok(Some(message)) = reader.next_message() {
            if message.type_id == 1 && message.body.len() >= 4 {
                let size = u32::from_be_bytes([
                    message.body[0],
                    message.body[1],
                    message.body[2],
                    message.body[3],
                ]);
                let _ = reader.set_chunk_size(size);
            }
            if message.type_id != 20 {
                continue;
            }
            let Ok(command) = amf0::decode_command(&message.body) else {
                continue;
            };
            let refusal =
                command.name == "_error" || format!("{:?}", command.args).contains("\"error\"");
            out.push((command.name, refusal));
        }
        out
    }
}

/// The hub's RTMP address.
fn rtmp_addr(hub: &Hub) -> String {
    hub.rtmp
        .strip_prefix("rtmp://")
        .and_then(|rest| rest.split('/').next())
        .expect("rtmp address")
        .to_string()
}

/// Connects and does the plain RTMP handshake (C0, C1, then C2 = S1).
fn try_handshaken(addr: &str) -> std::io::Result<TcpStream> {
    let mut socket = TcpStream::connect(addr)?;
    socket.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut c0c1 = vec![3u8];
    c0c1.extend((0..1536).map(|i| {
        if (4..8).contains(&i) {
            0
        } else {
            (i * 13 % 251) as u8
        }
    }));
    socket.write_all(&c0c1)?;
    let mut s = vec![0u8; 1 + 1536 + 1536];
    socket.read_exact(&mut s)?;
    socket.write_all(&s[1..1537])?;
    Ok(socket)
}

fn handshaken(addr: &str) -> TcpStream {
    try_handshaken(addr).expect("the RTMP handshake")
}

/// Sends `after_handshake`, reads until the hub hangs up (within 10 s), and tells what
/// happened after the first `skip` commands (the answers to `connect`).
fn attempt(addr: &str, after_handshake: &[u8], skip: usize) -> Outcome {
    let mut socket = handshaken(addr);
    let _ = socket.write_all(after_handshake);
    let mut got = Vec::new();
    let started = Instant::now();
    let mut buf = [0u8; 8192];
    let eof = loop {
        match socket.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
        if started.elapsed() > Duration::from_secs(10) {
            break false;
        }
    };
    let commands: Vec<_> = commands(&got).into_iter().skip(skip).collect();
    if commands.iter().any(|(_, refusal)| *refusal) {
        assert!(eof, "refused but not hung up: {commands:?}");
        Outcome::Refused
    } else if commands.iter().any(|(name, _)| name == "_result") {
        Outcome::Answered
    } else {
        assert!(eof, "neither answered nor hung up: {commands:?}");
        Outcome::HungUp
    }
}

fn expected(name: &str, values: usize, after_connect: bool) -> Outcome {
    use Outcome::*;
    match (values, after_connect, name) {
        (0, _, _) => HungUp,
        (_, false, _) => Refused,
        (_, true, "connect" | "publish" | "play") => Refused,
        (_, true, "createStream") => Answered,
        (2, true, "releaseStream" | "FCPublish") => Answered,
        // Requests with nothing to answer: ignored, and the publish deadline ends them.
        _ => HungUp,
    }
}

#[test]
fn hostile_rtmp_gets_refusals_or_hang_ups_and_never_a_panic() {
    let mut hub = Hub::start_with("s", &["--publish-deadline-ms", "1500"]);
    let addr = rtmp_addr(&hub);

    let mut cases: Vec<(String, Vec<u8>, usize, Outcome)> = Vec::new();
    for name in KNOWN_COMMANDS {
        for values in 0..3 {
            let all = [string(name), number(2.0)];
            let body = command(&all[..values]);
            for after_connect in [false, true] {
                let (bytes, skip) = if after_connect {
                    ([connect(), body.clone()].concat(), 1)
                } else {
                    (body.clone(), 0)
                };
                let what = format!(
                    "{name} with {values} values {}",
                    if after_connect {
                        "after connect"
                    } else {
                        "first"
                    }
                );
                cases.push((what, bytes, skip, expected(name, values, after_connect)));
            }
        }
    }
    let hang = Outcome::HungUp;
    let nested: Vec<u8> = (0..20_000).flat_map(|_| [0x03u8, 0, 1, b'a']).collect();
    let raw: Vec<(&str, Vec<u8>)> = vec![
        ("a truncated chunk, then the end", {
            let mut m = message(3, 20, 0, &[0u8; 100]);
            m.truncate(40);
            m
        }),
        ("a declared length of 16 MiB - 1", {
            vec![3, 0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0]
        }),
        (
            "a type 1 chunk on a new chunk stream",
            vec![0x47, 0, 0, 0, 0, 0, 4, 20],
        ),
        ("a type 2 chunk on a new chunk stream", vec![0x87, 0, 0, 1]),
        ("a type 3 chunk on a new chunk stream", vec![0xc7, 1, 2, 3]),
        ("chunk size 0", message(2, 1, 0, &[0, 0, 0, 0])),
        ("a 3-byte Set Chunk Size", message(2, 1, 0, &[0, 0, 1])),
        (
            "20 000 nested AMF0 objects",
            message(3, 20, 0, &[string("connect"), number(1.0), nested].concat()),
        ),
        ("nothing at all (the publish deadline)", Vec::new()),
    ];
    for (what, bytes) in raw {
        cases.push((what.to_string(), bytes, 0, hang.clone()));
    }

    // All at once: the slow ones wait out the 1.5 s publish deadline together.
    let total = cases.len();
    let handles: Vec<_> = cases
        .into_iter()
        .map(|(what, bytes, skip, want)| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let got = attempt(&addr, &bytes, skip);
                (what, got, want)
            })
        })
        .collect();
    let mut wrong = Vec::new();
    for handle in handles {
        let (what, got, want) = handle.join().expect("attempt thread");
        if got != want {
            wrong.push(format!("{what}: {got:?}, expected {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    eprintln!("{total} hostile attempts, each answered as expected");

    let status = hub.proc.child.try_wait().expect("try_wait");
    assert!(status.is_none(), "the hub died: {status:?}\n{}", hub.log());
    let log = hub.log();
    assert!(!log.contains("panicked"), "the hub panicked:\n{log}");

    // ffmpeg, an independent publisher, goes live right afterwards.
    let dir = tempdir();
    let clip = dir.path().join("clip.flv");
    baseline_clip(&clip, 4);
    let _ffmpeg = Proc::spawn(
        "ffmpeg publish",
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
            .arg(&clip)
            .args(["-c", "copy", "-f", "flv"])
            .arg(hub.rtmp_url("after"))
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
    );
    poll_until("ffmpeg's stream is live", Duration::from_secs(10), || {
        hub.stream("after")
            .is_some_and(|s| s["video_frames"].as_u64() > Some(30))
    });
}

#[test]
fn connections_past_the_per_address_cap_are_closed_at_once() {
    let hub = Hub::start_with("s", &["--rtmp-per-ip", "2", "--limit-loopback"]);
    let addr = rtmp_addr(&hub);
    // Two connections at the cap, held open in the handshake.
    let first = handshaken(&addr);
    let second = handshaken(&addr);
    // The third is closed without a byte.
    let mut third = TcpStream::connect(&addr).expect("connect");
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let _ = third.write_all(&[3u8; 1537]);
    let mut buf = [0u8; 16];
    let read = third.read(&mut buf);
    assert!(
        matches!(read, Ok(0))
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the connection past the cap was served: {read:?}"
    );
    // One leaves: a new one is served (its handshake completes).
    drop(first);
    let mut served = false;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !served && Instant::now() < deadline {
        served = try_handshaken(&addr).is_ok();
    }
    assert!(served, "no connection was served after one left");
    drop(second);
    assert!(!hub.log().contains("panicked"));
}
