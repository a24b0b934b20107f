//! A PostgreSQL server of the test's own: a cluster made by initdb in a temporary
//! directory, listening on a free loopback port (and a socket in that directory),
//! trust authentication, stopped by PID on drop. As root, the cluster belongs to the
//! `postgres` user (PostgreSQL refuses to run as root).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::{Proc, free_port, tempdir};
use crate::require;

/// A running PostgreSQL.
pub struct PostgresServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    proc: Option<Proc>,
}

/// Debian keeps the server programs out of PATH, in /usr/lib/postgresql/VERSION/bin.
fn program(name: &str) -> PathBuf {
    let found = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|version| version.path().join("bin").join(name))
        .find(|path| path.exists());
    let path = found.unwrap_or_else(|| PathBuf::from(name));
    require::program(&path.to_string_lossy());
    path
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}

/// `program` with `args`, as the `postgres` user when this is root.
fn as_owner(program: &PathBuf) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

impl PostgresServer {
    /// Makes a cluster and starts it; waits until it takes connections.
    pub fn start() -> PostgresServer {
        let dir = tempdir();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data directory");
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown to postgres");
        }
        let initdb = as_owner(&program("initdb"))
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .output()
            .expect("initdb");
        assert!(
            initdb.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let port = free_port();
        let proc = Proc::spawn(
            "postgres",
            as_owner(&program("postgres"))
                .arg("-D")
                .arg(&data)
                .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
                .arg("-c")
                .arg(format!("unix_socket_directories={}", dir.path().display()))
                .args(["-c", "fsync=off"])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let server = PostgresServer {
            port,
            dir,
            proc: Some(proc),
        };
        let ready = program("pg_isready");
        crate::poll_until(
            "PostgreSQL takes connections",
            Duration::from_secs(20),
            || {
                Command::new(&ready)
                    .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            },
        );
        server
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // The server itself, by the PID in its data directory (as root, the process this
        // test started is runuser): a fast shutdown (SIGINT), then SIGKILL if it is still
        // there after 5 s; then the wrapper.
        let pid_file = self.dir.path().join("data").join("postmaster.pid");
        let pid = std::fs::read_to_string(&pid_file).ok().and_then(|text| {
            text.lines()
                .next()
                .and_then(|l| l.trim().parse::<u32>().ok())
        });
        if let Some(pid) = pid {
            let _ = Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status();
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while pid_file.exists() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if pid_file.exists() {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
        if let Some(mut proc) = self.proc.take() {
            proc.kill();
        }
    }
}
