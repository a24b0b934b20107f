//! Processes for tests: a child process owned by a guard that kills it by PID on drop,
//! a wait for a listening port, free loopback ports, temporary directories.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed and reaped when dropped.
pub struct Proc {
    /// The process.
    pub child: Child,
    name: String,
}

impl Proc {
    /// Starts `command` (no standard input); `name` names it in failures.
    pub fn spawn(name: &str, command: &mut Command) -> Proc {
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {}", explain(command, &e)));
        Proc {
            child,
            name: name.to_string(),
        }
    }

    /// Takes ownership of a child started elsewhere (e.g. with piped stdio).
    pub fn adopt(name: &str, child: Child) -> Proc {
        Proc {
            child,
            name: name.to_string(),
        }
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process now (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {within:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A spawn error in words; a program that is not installed names the command that
/// installs every test peer.
pub fn explain(command: &Command, error: &std::io::Error) -> String {
    if error.kind() == std::io::ErrorKind::NotFound {
        format!(
            "{} is not installed: run scripts/test.sh (it installs every test peer, then \
             runs the tests)",
            command.get_program().to_string_lossy()
        )
    } else {
        error.to_string()
    }
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral port")
}

/// Waits until a socket listens on 127.0.0.1:port, asking `ss` (never connecting:
/// ffmpeg's listener accepts exactly one connection).
pub fn wait_listen(port: u16) {
    crate::poll_until(
        &format!("a listener on 127.0.0.1:{port}"),
        Duration::from_secs(15),
        || {
            let out = Command::new("ss")
                .args(["-Hltn", &format!("sport = :{port}")])
                .output()
                .expect("running ss");
            String::from_utf8_lossy(&out.stdout).contains(&format!("127.0.0.1:{port}"))
        },
    );
}

/// A test's own directory, removed when dropped unless `STREAMHUB_KEEP_TEST_DIRS` is
/// set (to read a run's logs and recordings afterwards).
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("streamhub-test-")
        .disable_cleanup(std::env::var_os("STREAMHUB_KEEP_TEST_DIRS").is_some())
        .tempdir()
        .expect("tempdir")
}

/// Runs `command` (no standard input) and fails the test unless it exits with success;
/// `what` names it in the failure.
pub fn run_checked(what: &str, command: &mut Command) {
    let out = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {}", explain(command, &e)));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
