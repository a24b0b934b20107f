//! The aiortc WHEP sender of `tests/peers/` (an independent WebRTC stack) as a test
//! peer, shared by the integration tests of every crate (included with `#[path]`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::process::{Proc, free_port, wait_listen};

/// The venv python with aiortc: `$CARGO_TARGET_DIR/peers-venv` when the tests run with
/// a target directory of their own, else the workspace's `target/peers-venv` (made by
/// `scripts/test.sh`; a test fails, naming it, when it is missing).
pub fn peers_python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let python = Path::new(&dir).join("peers-venv/bin/python");
        if python.exists() {
            return python;
        }
    }
    let python = root.join("target/peers-venv/bin/python");
    super::require::file(&python, "the Python venv with aiortc");
    python
}

/// The aiortc WHEP server of `tests/peers/`.
pub struct AiortcWhep {
    pub proc: Proc,
    pub port: u16,
}

impl AiortcWhep {
    pub fn start(args: &[&str]) -> AiortcWhep {
        AiortcWhep::start_on(free_port(), args)
    }

    /// On a given port (to come back where a killed sender was).
    pub fn start_on(port: u16, args: &[&str]) -> AiortcWhep {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/peers/aiortc_whep_sender.py");
        let proc = Proc::spawn(
            "aiortc WHEP server",
            Command::new(peers_python())
                .arg(script)
                .args(["--port", &port.to_string()])
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        wait_listen(port);
        AiortcWhep { proc, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/whep/test", self.port)
    }

    /// The server's counters (GET /stats).
    pub fn stats(&self) -> serde_json::Value {
        use std::io::{Read, Write};
        let mut socket = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("stats");
        socket.set_read_timeout(Some(Duration::from_secs(5))).ok();
        socket
            .write_all(b"GET /stats HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .expect("stats request");
        let mut response = String::new();
        socket
            .read_to_string(&mut response)
            .expect("stats response");
        let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
        serde_json::from_str(body).unwrap_or_else(|e| panic!("stats {body:?}: {e}"))
    }
}
