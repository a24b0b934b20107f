//! The aiortc WHEP sender of `tests/peers/` (an independent WebRTC stack) as a test
//! peer, shared by the integration tests of every crate.

use std::path::{Path, PathBuf};

use crate::process::{Proc, free_port};
use crate::whep_peer;

/// The venv python with aiortc: `$CARGO_TARGET_DIR/peers-venv` when the tests run with
/// a target directory of their own, else the workspace's `target/peers-venv` (made by
/// `scripts/test.sh`; a test fails, naming it, when it is missing).
pub fn peers_python() -> PathBuf {
    let root = crate::workspace_root();
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let python = Path::new(&dir).join("peers-venv/bin/python");
        if python.exists() {
            return python;
        }
    }
    let python = root.join("target/peers-venv/bin/python");
    crate::require::file(&python, "the Python venv with aiortc");
    python
}

/// The aiortc WHEP server of `tests/peers/`.
pub struct AiortcWhep {
    /// The Python process.
    pub proc: Proc,
    /// Its HTTP port on 127.0.0.1.
    pub port: u16,
}

impl AiortcWhep {
    /// Starts the sender (extra `args` go to the script) and waits until it listens.
    pub fn start(args: &[&str]) -> AiortcWhep {
        AiortcWhep::start_on(free_port(), args)
    }

    /// On a given port (to come back where a killed sender was).
    pub fn start_on(port: u16, args: &[&str]) -> AiortcWhep {
        let proc = whep_peer::start(
            "aiortc WHEP server",
            &peers_python(),
            "aiortc_whep_sender.py",
            port,
            args,
        );
        AiortcWhep { proc, port }
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
