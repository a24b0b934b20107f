//! `streamhub hub`, `streamhub token` and `streamhub chat` as separate processes.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Proc, STREAMHUB, poll_until, streamhub_token};
use serde_json::Value;

/// A running hub and its chat URL.
fn start_hub(secret: &str, extra: &[&str]) -> (Proc, String) {
    let mut child = Command::new(STREAMHUB)
        .args(["hub", "--http", "127.0.0.1:0", "--rtmp", "127.0.0.1:0"])
        .args(["--secret", secret])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the hub");
    let stdout = child.stdout.take().unwrap();
    let hub = Proc::adopt("hub", child);
    let mut stdout = BufReader::new(stdout);
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    // Keep reading, so the hub never writes into a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let url = first
        .trim()
        .strip_prefix("chat: ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    (hub, url)
}

/// A `chat --json --follow` process whose JSON lines are collected.
struct Listener {
    proc: Proc,
    lines: Arc<Mutex<Vec<Value>>>,
}

impl Listener {
    fn start(url: &str, token: &str) -> Listener {
        let mut child = Command::new(STREAMHUB)
            .args([
                "chat", url, "--room", "cam1", "--token", token, "--json", "--follow",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines: Arc<Mutex<Vec<Value>>> = Arc::default();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock()
                    .unwrap()
                    .push(serde_json::from_str(&line).unwrap());
            }
        });
        Listener {
            proc: Proc::adopt("chat listener", child),
            lines,
        }
    }

    fn of_type(&self, kind: &str) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v["type"] == kind)
            .cloned()
            .collect()
    }
}

/// Sends stdin lines through `streamhub chat` and returns (success, stderr).
fn send_lines(url: &str, token: &str, lines: &[String]) -> (bool, String) {
    let mut child = Command::new(STREAMHUB)
        .args([
            "chat",
            url,
            "--room",
            "cam1",
            "--token",
            token,
            "--timeout",
            "5",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    let mut proc = Proc::adopt("chat sender", child);
    let status = proc.wait_exit(Duration::from_secs(20));
    let mut stderr = String::new();
    std::io::Read::read_to_string(proc.child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    (status.success(), stderr)
}

#[test]
fn lines_typed_into_one_chat_are_printed_by_another() {
    let secret = "cli test secret";
    let (mut hub, url) = start_hub(
        secret,
        &["--rate-messages", "1000", "--rate-per-ms", "1000"],
    );
    let listener = Listener::start(&url, &streamhub_token(secret, "bob", "viewer"));
    poll_until("the listener joined", Duration::from_secs(10), || {
        !listener.of_type("joined").is_empty()
    });
    let lines: Vec<String> = (0..50).map(|i| format!("line {i} ✓")).collect();
    let (ok, stderr) = send_lines(&url, &streamhub_token(secret, "ada", "viewer"), &lines);
    assert!(ok, "{stderr}");
    poll_until("50 messages printed", Duration::from_secs(10), || {
        listener.of_type("message").len() >= 50
    });
    let messages = listener.of_type("message");
    let texts: Vec<&str> = messages
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, lines.iter().map(String::as_str).collect::<Vec<_>>());
    for (i, m) in messages.iter().enumerate() {
        assert_eq!(
            (m["room"].as_str(), m["user"].as_str()),
            (Some("cam1"), Some("ada"))
        );
        assert_eq!(m["seq"].as_u64(), Some(i as u64 + 1));
    }

    // An oversize line is refused with the documented code; the command says so.
    let (ok, stderr) = send_lines(
        &url,
        &streamhub_token(secret, "ada", "viewer"),
        &["y".repeat(501)],
    );
    assert!(!ok);
    assert!(stderr.contains("message_too_long"), "{stderr}");

    // Stopping the hub tells the listener to reconnect.
    let status = Command::new("kill")
        .args(["-TERM", &hub.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(hub.wait_exit(Duration::from_secs(10)).success());
    poll_until("the listener was told", Duration::from_secs(10), || {
        listener
            .of_type("disconnected")
            .iter()
            .any(|d| d["reason"].as_str().unwrap_or("").contains("shutting_down"))
    });
    drop(listener.proc);
}

#[test]
fn a_token_from_another_secret_is_refused() {
    let (_hub, url) = start_hub("right", &[]);
    let (ok, stderr) = send_lines(
        &url,
        &streamhub_token("wrong", "ada", "viewer"),
        &["hi".into()],
    );
    assert!(!ok);
    assert!(stderr.starts_with("error: unauthorized"), "{stderr}");
}
