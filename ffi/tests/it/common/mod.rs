//! What the ffi integration tests share: an in-process hub (the real one, RTMP ingest,
//! WHEP egress, chat) on loopback, the built library, and the process helpers.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use streamhub::chat::Role;
use streamhub::chat::server::RoomSnapshot;
use streamhub::hub::{Hub, HubConfig, StreamSummary};

use streamhub_test_support::Proc;

/// A hub serving on free loopback ports until dropped.
pub struct TestHub {
    hub: Hub,
    http: SocketAddr,
    rtmp: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TestHub {
    /// Starts a hub on its own runtime (not the library's).
    pub fn start() -> TestHub {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("test runtime");
        let hub = Hub::new(HubConfig::with_secret(b"ffi test secret"));
        let (http, rtmp) = runtime.block_on(async {
            let http = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind http");
            let rtmp = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind rtmp");
            let addrs = (
                http.local_addr().expect("addr"),
                rtmp.local_addr().expect("addr"),
            );
            let serving = hub.clone();
            tokio::spawn(async move { serving.serve(http, rtmp).await });
            addrs
        });
        TestHub {
            hub,
            http,
            rtmp,
            runtime: Some(runtime),
        }
    }

    /// `rtmp://127.0.0.1:PORT/live/{name}`.
    pub fn rtmp_url(&self, name: &str) -> String {
        format!("rtmp://{}/live/{name}", self.rtmp)
    }

    /// `http://127.0.0.1:PORT/whep/{name}`.
    pub fn whep_url(&self, name: &str) -> String {
        format!("http://{}/whep/{name}", self.http)
    }

    /// `ws://127.0.0.1:PORT/chat`.
    pub fn chat_url(&self) -> String {
        format!("ws://{}/chat", self.http)
    }

    /// A chat token for `user` in every room, valid for an hour.
    pub fn token(&self, user: &str, role: Role) -> String {
        streamhub_test_support::chat_log::token(self.hub.chat().keys(), user, role, 3600)
    }

    /// The streams live now.
    pub fn streams(&self) -> Vec<StreamSummary> {
        self.hub.streams()
    }

    /// A chat room as the hub has it now.
    pub fn room(&self, name: &str) -> Option<RoomSnapshot> {
        self.hub.chat().room(name)
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    streamhub_test_support::workspace_root()
        .canonicalize()
        .expect("workspace root")
}

/// The directory holding the `libstreamhub_ffi.so` cargo built for this test run:
/// `target/<profile>/deps`, beside the test executable. (`cargo test` rebuilds the
/// cdylib there but does not copy it up to `target/<profile>`, where it may be stale.)
pub fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe.parent().expect("target/<profile>/deps").to_path_buf();
    assert!(
        dir.join("libstreamhub_ffi.so").exists(),
        "{} has no libstreamhub_ffi.so",
        dir.display()
    );
    dir
}

/// The built-in demo clip (6 s 640x360 H.264 Constrained Baseline + AAC, 180 frames).
pub fn demo_clip() -> PathBuf {
    workspace().join("assets/demo.flv")
}

/// A process whose stdout and stderr go to files in a log directory (no pipe to fill
/// up), killed by PID if it is still running when dropped.
pub struct Logged {
    proc: Proc,
    name: String,
    stdout: PathBuf,
    stderr: PathBuf,
}

/// What a logged process did.
pub struct Finished {
    /// How it exited.
    pub status: ExitStatus,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
}

impl Logged {
    /// Starts `command`, its output going to `logs/{name}.out` and `.err`.
    pub fn start(name: &str, logs: &Path, command: &mut Command) -> Logged {
        let stdout = logs.join(format!("{name}.out"));
        let stderr = logs.join(format!("{name}.err"));
        command
            .stdout(File::create(&stdout).expect("stdout file"))
            .stderr(File::create(&stderr).expect("stderr file"));
        Logged {
            proc: Proc::spawn(name, command),
            name: name.to_string(),
            stdout,
            stderr,
        }
    }

    /// Waits up to `within` for the exit. On timeout the process is killed and the test
    /// fails, after printing what it wrote.
    pub fn finish(mut self, within: Duration) -> Finished {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.proc.child.try_wait().expect("try_wait") {
                break Some(status);
            }
            if Instant::now() > deadline {
                self.proc.kill();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = std::fs::read_to_string(&self.stdout).unwrap_or_default();
        let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let Some(status) = status else {
            let name = &self.name;
            panic!(
                "{name} did not exit within {within:?}\n--- stdout\n{stdout}--- stderr\n{stderr}"
            );
        };
        Finished {
            status,
            stdout,
            stderr,
        }
    }
}
