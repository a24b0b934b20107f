//! Chat test harness: a real server on a loopback port, tokens, event collection, and a
//! TCP proxy that can reset every connection through it (a real RST, SO_LINGER 0).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use streamhub::chat::client::BackoffConfig;
use streamhub::chat::protocol::Role;
use streamhub::chat::server::{ChatServer, ChatServerConfig, Claims};
use streamhub::chat::{ChatClient, ChatConfig, ChatEvent, ChatEvents, TokenSource};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A running server and its address.
pub struct Server {
    pub chat: ChatServer,
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    pub async fn start(config: ChatServerConfig) -> Server {
        Server::start_on("127.0.0.1:0".parse().unwrap(), config).await
    }

    pub async fn start_on(addr: SocketAddr, config: ChatServerConfig) -> Server {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let chat = ChatServer::new(config);
        let serving = chat.clone();
        let task = tokio::spawn(async move {
            serving.serve(listener).await.unwrap();
        });
        Server { chat, addr, task }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/chat", self.addr)
    }

    pub fn token(&self, user: &str, role: Role, ttl_secs: u64) -> String {
        self.chat
            .keys()
            .issue(&Claims::new(user, role, vec!["*".into()], ttl_secs))
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The protocol defaults, with a rate limit high enough for bursts.
pub fn fast_config() -> ChatServerConfig {
    let mut config = ChatServerConfig::with_secret(b"test secret");
    config.rate.messages = 1_000_000;
    config.rate.per_ms = 1000;
    config
}

/// Client settings for tests: quick reconnects.
pub fn client_config() -> ChatConfig {
    ChatConfig {
        backoff: BackoffConfig {
            base: Duration::from_millis(50),
            cap: Duration::from_millis(400),
            reset_after: Duration::from_secs(60),
        },
        command_timeout: Duration::from_secs(5),
        ..ChatConfig::default()
    }
}

/// Every event a client produced, collected by a task.
#[derive(Clone, Default)]
pub struct Log(pub Arc<Mutex<Vec<ChatEvent>>>);

impl Log {
    pub fn collect(mut events: ChatEvents) -> Log {
        let log = Log::default();
        let sink = log.clone();
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                sink.0.lock().unwrap().push(event);
            }
        });
        log
    }

    pub fn count(&self, pred: impl Fn(&ChatEvent) -> bool) -> usize {
        self.0.lock().unwrap().iter().filter(|e| pred(e)).count()
    }

    /// `(seq, text)` of every delivered message of `room`, in delivery order.
    pub fn messages(&self, room: &str) -> Vec<(u64, String)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                ChatEvent::Message(m) if m.room == room => Some((m.seq, m.text.clone())),
                _ => None,
            })
            .collect()
    }
}

pub async fn connect(server: &Server, user: &str, role: Role) -> (ChatClient, Log) {
    connect_via(
        &server.url(),
        TokenSource::fixed(server.token(user, role, 3600)),
    )
    .await
}

pub async fn connect_via(url: &str, tokens: TokenSource) -> (ChatClient, Log) {
    let (client, events) = ChatClient::connect(url, tokens, client_config())
        .await
        .unwrap();
    (client, Log::collect(events))
}

/// Polls `condition` every 10 ms until it holds or `within` passes.
pub async fn wait_for(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A TCP proxy on loopback whose connections can all be reset at once.
pub struct CutProxy {
    pub addr: SocketAddr,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
    pub cuts: usize,
}

impl CutProxy {
    pub async fn start(upstream: SocketAddr) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let registry = links.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let Ok(mut server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                // Dropping a socket with a zero linger sends RST: a real cut.
                set_zero_linger(&client);
                set_zero_linger(&server);
                client.set_nodelay(true).unwrap();
                server.set_nodelay(true).unwrap();
                let link = tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
                registry.lock().unwrap().push(link);
            }
        });
        CutProxy {
            addr,
            links,
            accept,
            cuts: 0,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/chat", self.addr)
    }

    /// Resets every connection through the proxy; returns how many there were.
    pub fn cut(&mut self) -> usize {
        let links: Vec<_> = self.links.lock().unwrap().drain(..).collect();
        let live = links.iter().filter(|l| !l.is_finished()).count();
        for link in links {
            link.abort();
        }
        self.cuts += live;
        live
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

#[allow(deprecated)]
fn set_zero_linger(stream: &TcpStream) {
    stream.set_linger(Some(Duration::ZERO)).unwrap();
}

pub mod peers;
