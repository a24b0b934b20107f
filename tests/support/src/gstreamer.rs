//! The GStreamer webrtcbin WHEP sender of `tests/peers/` (an independent WebRTC stack
//! that signals no SSRCs and no MID extension) as a test peer, shared by the
//! integration tests of every crate.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::process::{Proc, free_port};
use crate::whep_peer;

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
        crate::require::INSTALL
    );
}

/// The webrtcbin WHEP server of `tests/peers/gst_whep_sender.py`.
pub struct GstWhep {
    /// The Python process.
    pub proc: Proc,
    /// Its HTTP port on 127.0.0.1.
    pub port: u16,
}

impl GstWhep {
    /// Starts it with `args` (`--codec`, `--mode`, `--answer-out`).
    pub fn start(args: &[&str]) -> GstWhep {
        require_gstreamer();
        let port = free_port();
        let proc = whep_peer::start(
            "GStreamer WHEP server",
            Path::new(SYSTEM_PYTHON),
            "gst_whep_sender.py",
            port,
            args,
        );
        GstWhep { proc, port }
    }

    /// Its WHEP endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/whep/test", self.port)
    }

    /// The server's counters (GET /stats).
    pub fn stats(&self) -> serde_json::Value {
        whep_peer::stats(self.port)
    }
}
