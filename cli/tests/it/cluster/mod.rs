//! Several chat nodes (`streamhub hub --chat-engine redis://…`) on one redis-server,
//! behind nginx's stream module (round robin), each process of the test's own and
//! killed by PID on drop; chat clients (our `ChatClient`) whose events are collected.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use streamhub::chat::protocol::{ChatMessage, Role};
use streamhub::chat::server::TokenKeys;
use streamhub::chat::{ChatClient, TokenSource};
pub use streamhub_test_support::chat_log::Log;
use streamhub_test_support::chat_log::{client_config, token};
use streamhub_test_support::redis::{Durability, RedisServer};
use streamhub_test_support::{Proc, free_port, require, tempdir, wait_listen};

use crate::common::STREAMHUB;

/// The nodes' token secret.
pub const SECRET: &str = "cluster test secret";

/// One chat node: a `streamhub hub` process.
pub struct Node {
    pub name: String,
    pub port: u16,
    args: Vec<String>,
    log: PathBuf,
    proc: Option<Proc>,
}

impl Node {
    fn start(name: &str, redis_url: &str, dir: &std::path::Path, extra: &[String]) -> Node {
        let port = free_port();
        let mut args: Vec<String> = [
            "hub",
            "--http",
            &format!("127.0.0.1:{port}"),
            "--rtmp",
            "127.0.0.1:0",
            "--secret",
            SECRET,
            "--chat-engine",
            redis_url,
            "--node",
            name,
            "--rate-messages",
            "1000000",
            "--rate-per-ms",
            "1000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().cloned());
        let mut node = Node {
            name: name.to_string(),
            port,
            args,
            log: dir.join(format!("{name}.log")),
            proc: None,
        };
        node.run();
        node
    }

    fn run(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("node log");
        let proc = Proc::spawn(
            &self.name,
            Command::new(STREAMHUB)
                .args(&self.args)
                .env("RUST_LOG", "streamhub=info")
                .stdout(Stdio::null())
                .stderr(log),
        );
        self.proc = Some(proc);
        wait_listen(self.port);
    }

    /// SIGKILL: no goodbye to its clients, nothing flushed.
    pub fn kill(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.kill();
        }
    }

    /// Starts it again with the same name, port and arguments.
    pub fn start_again(&mut self) {
        assert!(self.proc.is_none(), "still running");
        self.run();
    }

    /// `ws://127.0.0.1:PORT/chat`, this node alone.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/chat", self.port)
    }
}

/// nginx with its stream module: TCP round robin over the nodes.
pub struct Balancer {
    pub port: u16,
    dir: PathBuf,
    upstreams: Vec<u16>,
    proc: Option<Proc>,
}

impl Balancer {
    fn start(dir: PathBuf, upstreams: Vec<u16>) -> Balancer {
        let mut balancer = Balancer {
            port: free_port(),
            dir,
            upstreams,
            proc: None,
        };
        balancer.run();
        balancer
    }

    fn run(&mut self) {
        require::program("nginx");
        let modules = "/usr/lib/nginx/modules/ngx_stream_module.so";
        assert!(
            std::path::Path::new(modules).exists(),
            "nginx's stream module is not installed: run scripts/test.sh"
        );
        let d = self.dir.display();
        let servers: String = self
            .upstreams
            .iter()
            .map(|port| format!("server 127.0.0.1:{port} max_fails=1 fail_timeout=30s; "))
            .collect();
        let conf = format!(
            "load_module {modules};\n\
             daemon off;\nmaster_process off;\nworker_processes 1;\n\
             worker_rlimit_nofile 16384;\n\
             error_log {d}/error.log notice;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 8192; }}\n\
             stream {{ upstream chat {{ {servers}}} \
             server {{ listen 127.0.0.1:{port} backlog=4096; proxy_pass chat; \
             proxy_connect_timeout 1s; proxy_timeout 1h; }} }}\n",
            port = self.port
        );
        std::fs::create_dir_all(&self.dir).expect("nginx dir");
        std::fs::write(self.dir.join("nginx.conf"), conf).expect("nginx.conf");
        let proc = Proc::spawn(
            "nginx",
            Command::new("nginx")
                .arg("-c")
                .arg(self.dir.join("nginx.conf"))
                .arg("-p")
                .arg(&self.dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        self.proc = Some(proc);
        wait_listen(self.port);
    }

    /// Kills it (every client connection through it is cut) and starts it again on
    /// the same port.
    pub fn restart(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.kill();
        }
        self.run();
    }

    /// `ws://127.0.0.1:PORT/chat` through the balancer.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/chat", self.port)
    }
}

/// Redis, the nodes and the balancer.
pub struct Cluster {
    pub balancer: Balancer,
    pub nodes: Vec<Node>,
    pub redis: RedisServer,
    /// The nodes' and the balancer's folder, removed when the cluster is dropped.
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// `nodes` nodes on a new Redis of `durability`, each given `extra` arguments.
    pub fn start(nodes: usize, durability: Durability, extra: &[&str]) -> Cluster {
        let redis = RedisServer::start(durability);
        Cluster::start_on(redis, nodes, extra)
    }

    /// `nodes` nodes on `redis`.
    pub fn start_on(redis: RedisServer, nodes: usize, extra: &[&str]) -> Cluster {
        let dir = tempdir();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let nodes: Vec<Node> = (1..=nodes)
            .map(|i| Node::start(&format!("n{i}"), &redis.url(), dir.path(), &extra))
            .collect();
        let balancer = Balancer::start(
            dir.path().join("nginx"),
            nodes.iter().map(|n| n.port).collect(),
        );
        Cluster {
            balancer,
            nodes,
            redis,
            _dir: dir,
        }
    }

    /// The room's epoch and top seq as Redis holds them.
    pub fn top(&self, room: &str) -> (String, u64) {
        let out = Command::new("redis-cli")
            .args(["-p", &self.redis.port.to_string(), "HMGET"])
            .arg(format!("{{r:{room}}}:meta"))
            .args(["epoch", "seq"])
            .output()
            .expect("redis-cli");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut lines = text.lines();
        let epoch = lines.next().unwrap_or_default().to_string();
        let seq = lines
            .next()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0);
        (epoch, seq)
    }

    /// Calls of each Redis command so far (scripts' own calls included), by name.
    pub fn redis_commands(&self) -> std::collections::BTreeMap<String, u64> {
        let out = Command::new("redis-cli")
            .args(["-p", &self.redis.port.to_string(), "INFO", "commandstats"])
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| {
                let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = rest
                    .strip_prefix("calls=")?
                    .split(',')
                    .next()?
                    .parse()
                    .ok()?;
                Some((name.to_string(), calls))
            })
            .collect()
    }
}

/// A viewer `user` at `url`.
pub async fn connect(url: &str, user: &str) -> (ChatClient, Log) {
    connect_as(url, user, Role::Viewer).await
}

/// A client of `user` with `role` at `url`.
pub async fn connect_as(url: &str, user: &str, role: Role) -> (ChatClient, Log) {
    let (client, events) = ChatClient::connect(
        url,
        TokenSource::fixed(token(
            &TokenKeys::hs256(SECRET.as_bytes()),
            user,
            role,
            3600,
        )),
        client_config(),
    )
    .await
    .unwrap_or_else(|e| panic!("{user} connects to {url}: {e}"));
    (client, Log::collect(events))
}

/// `(seq, text)` of messages.
pub fn seq_texts(messages: &[ChatMessage]) -> Vec<(u64, String)> {
    messages.iter().map(|m| (m.seq, m.text.clone())).collect()
}

/// Raises this process's open-file limit to its hard limit (thousands of clients).
#[allow(unsafe_code)]
pub fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
    limit.rlim_cur
}
