//! The GStreamer webrtcbin WHEP sender of `tests/peers/` (an independent WebRTC stack
//! that signals no SSRCs and no MID extension) as a test peer, shared by the
//! integration tests of every crate (included with `#[path]`).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::process::{Proc, free_port, wait_listen};

/// Debian's python3, which has GStreamer's introspection bindings (python3-gi).
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// Panics, naming the install command, unless webrtcbin and its Python bindings are here.
pub fn require_gstreamer() {
    let ok = Command::new(SYSTEM_PYTHON)
        .args([
            "-c",
            "import gi; gi.require_version('Gst','1.0'); gi.require_version('GstWebRTC','1.0'); \
             from gi.repository import Gst; Gst.init(None); \
             assert all(Gst.ElementFactory.find(e) for e in \
             ['webrtcbin','x264enc','x265enc','vp8enc','opusenc','nicesrc'])",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "GStreamer webrtcbin with python3-gi is not installed: run {} (it installs every \
         test peer, then runs the tests)",
        super::require::INSTALL
    );
}

/// The webrtcbin WHEP server of `tests/peers/gst_whep_sender.py`.
pub struct GstWhep {
    pub proc: Proc,
    pub port: u16,
}

impl GstWhep {
    /// Starts it with `args` (`--codec`, `--mode`, `--answer-out`).
    pub fn start(args: &[&str]) -> GstWhep {
        require_gstreamer();
        let port = free_port();
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/peers/gst_whep_sender.py");
        let proc = Proc::spawn(
            "GStreamer WHEP server",
            Command::new(SYSTEM_PYTHON)
                .arg(script)
                .args(["--port", &port.to_string()])
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        wait_listen(port);
        GstWhep { proc, port }
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
