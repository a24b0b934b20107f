//! A redis-server of the test's own: on a free loopback port, its files in a temporary
//! directory, killed by PID on drop. It can be killed (SIGKILL) and started again on the
//! same port and files, to test what a restart loses.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::{Proc, free_port, tempdir};
use crate::require;

/// How the server keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// No persistence at all: a restart loses everything.
    None,
    /// AOF with `appendfsync always`: every acknowledged write survives a kill.
    Always,
    /// AOF never fsynced by Redis (`appendfsync no`): a kill keeps what the kernel has,
    /// a cut AOF ([`RedisServer::cut_aof`]) stands for what a power cut loses.
    Lossy,
}

/// A running redis-server.
pub struct RedisServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    durability: Durability,
    dir: tempfile::TempDir,
    proc: Option<Proc>,
}

impl RedisServer {
    /// Starts one and waits until it answers PING.
    pub fn start(durability: Durability) -> RedisServer {
        require::program("redis-server");
        require::program("redis-cli");
        let mut server = RedisServer {
            port: free_port(),
            durability,
            dir: tempdir(),
            proc: None,
        };
        server.run();
        server
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Where its files are.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn run(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--save", "", "--daemonize", "no", "--protected-mode", "yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match self.durability {
            Durability::None => command.args(["--appendonly", "no"]),
            Durability::Always => command.args(["--appendonly", "yes", "--appendfsync", "always"]),
            Durability::Lossy => command.args(["--appendonly", "yes", "--appendfsync", "no"]),
        };
        self.proc = Some(Proc::spawn("redis-server", &mut command));
        let port = self.port.to_string();
        crate::poll_until("redis-server answers PING", Duration::from_secs(10), || {
            Command::new("redis-cli")
                .args(["-p", &port, "PING"])
                .output()
                .is_ok_and(|out| out.stdout.starts_with(b"PONG"))
        });
    }

    /// SIGKILLs it (nothing flushed beyond what its durability already wrote).
    pub fn kill(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.kill();
        }
    }

    /// Kills it and starts it again on the same port and files.
    pub fn restart(&mut self) {
        self.kill();
        self.run();
    }

    /// Starts it again after [`Self::kill`].
    pub fn start_again(&mut self) {
        assert!(self.proc.is_none(), "still running");
        self.run();
    }

    /// While it is stopped: drops the newest part of its append-only file, keeping
    /// `keep` (0..1) of the writes since its last rewrite, as a crash before fsync
    /// would. Redis loads a cut file up to its last whole command.
    pub fn cut_aof(&self, keep: f64) {
        assert!(self.proc.is_none(), "stop it first");
        let dir = self.dir.path().join("appendonlydir");
        let incr = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
            .map(|entry| entry.path())
            .find(|path| path.to_string_lossy().ends_with(".incr.aof"))
            .expect("an incremental AOF file");
        let len = std::fs::metadata(&incr).expect("AOF size").len();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&incr)
            .expect("the AOF file");
        file.set_len((len as f64 * keep) as u64).expect("cut");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
