//! What the Python WHEP senders of `tests/peers/` have in common as test peers: how one
//! is started, and its counters.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::{Proc, wait_listen};

/// Starts `python tests/peers/SCRIPT --port PORT ARGS…` (output discarded) and waits
/// until it listens on 127.0.0.1:`port`.
pub fn start(what: &str, python: &Path, script: &str, port: u16, args: &[&str]) -> Proc {
    let script = crate::workspace_root().join("tests/peers").join(script);
    let proc = Proc::spawn(
        what,
        Command::new(python)
            .arg(script)
            .args(["--port", &port.to_string()])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_listen(port);
    proc
}

/// The counters of the peer on 127.0.0.1:`port` (its GET /stats).
pub fn stats(port: u16) -> serde_json::Value {
    use std::io::{Read, Write};
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", port)).expect("stats");
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
