//! A `streamhub hub` with media (RTMP ingest, WHEP egress, the development page) for the
//! browser and aiortc viewer tests, and clips published into it in real time.
//! Built on `common` (process guards, deadlines, ffmpeg clips).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use streamhub_test_support::workspace_root;

use crate::common::{Proc, STREAMHUB, make_clip, poll_until, tempdir};

/// `target/test-artifacts`, under `CARGO_TARGET_DIR` when it is set; created.
pub fn artifacts_dir() -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    };
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// A running hub and the endpoints it printed.
pub struct Hub {
    pub proc: Proc,
    pub secret: String,
    /// `ws://ADDR/chat`
    pub chat: String,
    /// `rtmp://ADDR/live`
    pub rtmp: String,
    /// `http://ADDR/whep/{name}`
    pub whep: String,
    /// `http://ADDR/`
    pub page: String,
    /// `ADDR` of the HTTP listener.
    pub http_addr: String,
    /// `rtmps://ADDR/live`, when started with `--rtmps`.
    pub rtmps: Option<String>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Hub {
    /// Starts `streamhub hub --http 127.0.0.1:0 --rtmp 127.0.0.1:0 --secret S` and reads the
    /// four endpoint lines it prints first (chat, rtmp, whep, page, in that order).
    pub fn start(secret: &str) -> Hub {
        Hub::start_with(secret, &[])
    }

    /// [`Hub::start`] with more `streamhub hub` arguments (e.g. `--stream NAME:KEY`).
    pub fn start_with(secret: &str, extra: &[&str]) -> Hub {
        Hub::start_with_env(secret, extra, &[])
    }

    /// [`Hub::start_with`] with more environment variables (e.g. `STREAMHUB_LOG=trace`;
    /// the default is `info`).
    pub fn start_with_env(secret: &str, extra: &[&str], env: &[(&str, &str)]) -> Hub {
        let dir = tempdir();
        let log = dir.path().join("hub.log");
        let mut child = Command::new(STREAMHUB)
            .args(["hub", "--http", "127.0.0.1:0", "--rtmp", "127.0.0.1:0"])
            .args(["--secret", secret])
            .args(extra)
            .env("STREAMHUB_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("hub log"))
            .spawn()
            .expect("starting the hub");
        let stdout = child.stdout.take().unwrap();
        let proc = Proc::adopt("hub", child);
        // Read stdout on a thread for as long as the hub runs, so it never blocks on a full pipe.
        let (lines_tx, lines_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let endpoint = |prefix: &str| -> String {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let line = lines_rx.recv_timeout(remaining).unwrap_or_else(|_| {
                panic!(
                    "the hub printed no `{prefix}` line within 10 s; its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
            line.strip_prefix(prefix)
                .unwrap_or_else(|| panic!("expected a `{prefix}…` line, got {line:?}"))
                .trim()
                .to_string()
        };
        let chat = endpoint("chat: ");
        let rtmp = endpoint("rtmp: ");
        let whep = endpoint("whep: ");
        let page = endpoint("page: ");
        let rtmps = extra.contains(&"--rtmps").then(|| endpoint("rtmps: "));
        let http_addr = page
            .strip_prefix("http://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("page URL {page:?}"))
            .to_string();
        Hub {
            proc,
            secret: secret.to_string(),
            chat,
            rtmp,
            whep,
            page,
            http_addr,
            rtmps,
            log,
            _dir: dir,
        }
    }

    pub fn rtmp_url(&self, name: &str) -> String {
        format!("{}/{name}", self.rtmp)
    }

    pub fn whep_url(&self, name: &str) -> String {
        self.whep.replace("{name}", name)
    }

    /// What the hub wrote on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET path` over HTTP/1.0: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        let mut socket =
            std::net::TcpStream::connect(&self.http_addr).expect("connecting to the hub");
        socket.set_read_timeout(Some(Duration::from_secs(5))).ok();
        write!(
            socket,
            "GET {path} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.http_addr
        )
        .expect("request");
        let mut response = String::new();
        socket.read_to_string(&mut response).expect("response");
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad response to GET {path}: {head:?}"));
        (status, body.to_string())
    }

    /// The entry of `name` in `GET /api/streams`, if it is listed.
    pub fn stream(&self, name: &str) -> Option<Value> {
        let (status, body) = self.get("/api/streams");
        assert_eq!(status, 200, "GET /api/streams: {body}");
        let json: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET /api/streams is not JSON ({e}): {body}"));
        json["streams"]
            .as_array()
            .unwrap_or_else(|| panic!("GET /api/streams without a streams array: {body}"))
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
    }

    /// Waits until `name` is listed with video; returns its entry.
    pub fn wait_live(&self, name: &str, within: Duration) -> Value {
        let mut entry = None;
        poll_until(
            &format!("{name} live with video in /api/streams"),
            within,
            || {
                entry = self.stream(name);
                entry.as_ref().is_some_and(|s| s["video"].is_object())
            },
        );
        entry.unwrap()
    }

    /// Waits until `name` is listed with audio (Opus, transcoded from the clip's AAC).
    pub fn wait_audio(&self, name: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let entry = self.stream(name).expect("the stream is live");
            if entry["audio"].is_object() {
                return entry;
            }
            assert!(
                Instant::now() < deadline,
                "{name} has no audio in /api/streams after {within:?} although the clip has AAC \
                 (is the hub built with core's `transcode` feature?): {entry}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A chat token signed with the hub's secret.
    pub fn token(&self, user: &str) -> String {
        crate::common::streamhub_token(&self.secret, user, "viewer")
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- last hub log lines ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// A clip as the hub is tested with: H.264 Constrained Baseline (no B-frames), GOP 1 s,
/// AAC 44.1 kHz, 640x360 at 30 fps (`make_clip`'s later options override its defaults).
pub fn baseline_clip(path: &Path, seconds: u32) {
    make_clip(
        path,
        seconds,
        &["-profile:v", "baseline", "-bf", "0", "-g", "30"],
    );
}

/// `streamhub publish CLIP rtmp://…/live/NAME --realtime`, running until dropped.
pub fn publish(hub: &Hub, clip: &Path, name: &str) -> Proc {
    Proc::spawn(
        "streamhub publish",
        Command::new(STREAMHUB)
            .arg("publish")
            .arg(clip)
            .arg(hub.rtmp_url(name))
            .arg("--realtime")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}
