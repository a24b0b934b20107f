//! A `streamhub hub` process on free loopback ports, and ways to judge what it played.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::{Proc, STREAMHUB};

/// A running hub and its endpoints.
pub struct HubProc {
    pub proc: Proc,
    /// `http://127.0.0.1:PORT`
    pub http: String,
    /// `rtmp://127.0.0.1:PORT/live`
    pub rtmp: String,
    /// `ws://127.0.0.1:PORT/chat`
    pub chat: String,
    /// Lines the hub printed on stderr (logs), collected in the background.
    pub stderr: mpsc::Receiver<String>,
}

impl HubProc {
    /// Starts `streamhub hub` on ports 0 with `extra` arguments and reads its endpoints.
    pub fn start(extra: &[&str]) -> HubProc {
        let mut child = Command::new(STREAMHUB)
            .args(["hub", "--http", "127.0.0.1:0", "--rtmp", "127.0.0.1:0"])
            .args(extra)
            .env("STREAMHUB_LOG", "streamhub=info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the hub");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let proc = Proc::adopt("hub", child);
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (err_tx, stderr_lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = err_tx.send(line);
            }
        });
        let get = |prefix: &str| -> String {
            let line = lines
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("the hub printed no `{prefix}` line"));
            line.strip_prefix(prefix)
                .unwrap_or_else(|| panic!("expected `{prefix}…`, got {line:?}"))
                .to_string()
        };
        let chat = get("chat: ");
        let rtmp = get("rtmp: ");
        let _whep = get("whep: ");
        let page = get("page: ");
        HubProc {
            proc,
            http: page.trim_end_matches('/').to_string(),
            rtmp,
            chat,
            stderr: stderr_lines,
        }
    }

    /// The WHEP endpoint of a stream.
    pub fn whep(&self, name: &str) -> String {
        format!("{}/whep/{name}", self.http)
    }

    /// `GET /api/streams`, parsed.
    pub fn streams(&self) -> serde_json::Value {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "5"])
            .arg(format!("{}/api/streams", self.http))
            .output()
            .expect("running curl");
        assert!(out.status.success(), "curl /api/streams failed");
        serde_json::from_slice(&out.stdout).expect("JSON from /api/streams")
    }

    /// The entry of a live stream in `/api/streams`.
    pub fn stream(&self, name: &str) -> Option<serde_json::Value> {
        self.streams()["streams"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
    }
}

/// The MD5 of every decoded picture of a video file, in decode output order; fails on
/// any decoder error.
pub fn picture_hashes(path: &Path) -> Vec<String> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args([
            "-map",
            "0:v:0",
            "-fps_mode",
            "passthrough",
            "-f",
            "framemd5",
            "-",
        ])
        .output()
        .expect("running ffmpeg");
    assert!(out.status.success(), "ffmpeg failed on {}", path.display());
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(
        errors.trim().is_empty(),
        "decoder errors in {}: {errors}",
        path.display()
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit(',').next().map(|h| h.trim().to_string()))
        .collect()
}

/// Where `played` starts in `source`, checking that it is one contiguous, identical run.
pub fn assert_contiguous_run(source: &[String], played: &[String]) -> usize {
    assert!(!played.is_empty(), "nothing was played");
    let start = source
        .iter()
        .position(|h| *h == played[0])
        .expect("the first played picture is not in the source");
    assert!(
        start + played.len() <= source.len(),
        "played {} pictures from source picture {start}, but the source has {}",
        played.len(),
        source.len()
    );
    for (i, hash) in played.iter().enumerate() {
        assert_eq!(
            hash,
            &source[start + i],
            "played picture {i} differs from source picture {}",
            start + i
        );
    }
    start
}
