//! Chat test harness: a real server on a loopback port, tokens, event collection, and a
//! TCP proxy that can reset every connection through it (a real RST, SO_LINGER 0).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use streamhub::chat::protocol::Role;
use streamhub::chat::server::redis_engine::{RedisEngine, RedisEngineConfig, SequencerConfig};
use streamhub::chat::server::{ChatServer, ChatServerConfig};
use streamhub::chat::{ChatClient, TokenSource};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub use streamhub_test_support::chat_log::{Log, client_config};
use streamhub_test_support::redis;

/// Runs each named `async fn(Engine)` as two tests, `memory::NAME` and `redis::NAME`.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Engine::Memory).await
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Engine::Redis).await
                }
            )*
        }
    };
}

/// Where the server decides its rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// In the process (`MemoryEngine`).
    Memory,
    /// In a redis-server of the test's own (`RedisEngine`).
    Redis,
}

/// What outlives a server: the test's Redis, if the engine is Redis.
pub struct Backend {
    pub redis: Option<redis::RedisServer>,
}

impl Backend {
    pub fn start(engine: Engine) -> Backend {
        let redis =
            (engine == Engine::Redis).then(|| redis::RedisServer::start(redis::Durability::Always));
        Backend { redis }
    }

    pub async fn server(&self, config: ChatServerConfig) -> Server {
        self.server_on("127.0.0.1:0".parse().unwrap(), config).await
    }

    pub async fn server_on(&self, addr: SocketAddr, config: ChatServerConfig) -> Server {
        let chat = match &self.redis {
            None => ChatServer::new(config),
            Some(redis) => {
                let engine = RedisEngine::connect(RedisEngineConfig {
                    redis_url: redis.url(),
                    archive_url: None,
                    node: "test".into(),
                    sequencer: SequencerConfig {
                        history: config.history,
                        dedup_ttl: config.dedup_ttl,
                        rate: config.rate,
                        archived: false,
                        lossless_redis: true,
                    },
                    audience_ttl: Duration::from_secs(10),
                })
                .await
                .expect("the Redis engine connects");
                ChatServer::with_engine(config, Arc::new(engine))
            }
        };
        Server::serve(addr, chat).await
    }
}

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
        Server::serve(addr, ChatServer::new(config)).await
    }

    async fn serve(addr: SocketAddr, chat: ChatServer) -> Server {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
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
        streamhub_test_support::chat_log::token(self.chat.keys(), user, role, ttl_secs)
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
