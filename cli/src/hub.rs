//! `streamhub hub`: the local development server: RTMP ingest, WHEP egress, chat, the
//! stream list API and the development page.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use std::sync::Arc;

use clap::Args;
use streamhub::chat::server::redis_engine::{RedisEngine, RedisEngineConfig, SequencerConfig};
use streamhub::hub::{Hub, HubConfig, HubListeners, StreamKeys};

/// Arguments of `streamhub hub`.
#[derive(Debug, Args)]
pub struct HubArgs {
    /// Address for HTTP: the page at /, WHEP at /whep/NAME, chat at /chat; port 0 picks
    /// a free one.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// Address for RTMP publishers (rtmp://ADDR/live/KEY); port 0 picks a free one.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:1935")]
    rtmp: SocketAddr,
    /// A stream only KEY may publish, played by NAME (repeatable). Other names are open:
    /// their key is their name.
    #[arg(long = "stream", value_name = "NAME:KEY")]
    streams: Vec<String>,
    /// IP address viewers' WebRTC media sockets bind to (default: the --http IP, or
    /// 127.0.0.1 when that is 0.0.0.0).
    #[arg(long, value_name = "IP")]
    webrtc_ip: Option<std::net::IpAddr>,
    /// Opus bitrate for audio transcoded from AAC, in bits per second.
    #[arg(long, default_value_t = 64_000)]
    opus_bitrate: u32,
    /// Do not hand out viewer tokens at POST /api/token (the page then needs ?token=).
    #[arg(long)]
    no_dev_tokens: bool,
    /// HS256 secret for chat tokens; without it the hub makes one and prints it.
    #[arg(long, env = "STREAMHUB_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Messages each user may send per room in each rate window.
    #[arg(long, default_value_t = 5)]
    rate_messages: u32,
    /// The rate window, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    rate_per_ms: u64,
    /// Messages kept per room for recovery and history.
    #[arg(long, default_value_t = 1000)]
    history: usize,
    /// Longest message text, in characters.
    #[arg(long, default_value_t = 500)]
    max_text_chars: usize,
    /// Decide chat rooms in this Redis (redis://HOST:PORT[/DB]), shared with every other
    /// hub given the same one: several processes then serve one set of rooms.
    #[arg(long, value_name = "URL")]
    chat_engine: Option<String>,
    /// Copy every chat message to this PostgreSQL (postgres://USER@HOST:PORT/DB);
    /// `history` pages past Redis from it. Needs --chat-engine.
    #[arg(long, value_name = "URL", requires = "chat_engine")]
    archive: Option<String>,
    /// This node's name among the hubs sharing the chat engine (its audience reports and
    /// archiver); keep it across restarts. Default: chat-PORT of --http.
    #[arg(long, value_name = "NAME", requires = "chat_engine")]
    node: Option<String>,
    /// Declare the chat engine's Redis lossless (appendfsync always, or WAITAOF): its
    /// restarts then keep the rooms' epochs. Without it a restarted Redis starts new
    /// epochs, since it may have lost acknowledged messages.
    #[arg(long, requires = "chat_engine")]
    lossless_redis: bool,
    /// How long a node's audience report counts, in ms: a dead node's viewers leave the
    /// counts after it.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    audience_ttl_ms: u64,
    #[command(flatten)]
    limits: crate::hub_limits::LimitArgs,
    #[command(flatten)]
    rtmps: crate::hub_limits::RtmpsArgs,
}

/// Runs the command; `Err` is the one-line error to print.
pub fn run(args: HubArgs) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    runtime.block_on(serve(args))
}

async fn serve(args: HubArgs) -> Result<ExitCode, String> {
    let (secret, made) = match args.secret {
        Some(secret) if !secret.is_empty() => (secret, false),
        Some(_) => return Err("--secret must not be empty".into()),
        None => (format!("{:032x}", rand::random::<u128>()), true),
    };
    let mut config = HubConfig::with_secret(secret.as_bytes());
    config.chat.rate.messages = args.rate_messages.max(1);
    config.chat.rate.per_ms = args.rate_per_ms;
    config.chat.history = args.history.max(1);
    config.chat.max_text_chars = args.max_text_chars.max(1);
    config.keys = StreamKeys::parse(&args.streams).map_err(|e| e.to_string())?;
    config.webrtc_ip = args.webrtc_ip;
    config.opus_bitrate = args.opus_bitrate.clamp(6_000, 510_000);
    config.dev_tokens = !args.no_dev_tokens;
    config.limits = args.limits.hub_limits();
    config.chat.max_rooms = args.limits.max_rooms();
    config.chat.room_idle = args.limits.room_idle();
    let tls = args.rtmps.tls()?;
    if let Some(url) = &args.chat_engine {
        let engine = RedisEngine::connect(RedisEngineConfig {
            redis_url: url.clone(),
            archive_url: args.archive.clone(),
            node: args
                .node
                .clone()
                .unwrap_or_else(|| format!("chat-{}", args.http.port())),
            sequencer: SequencerConfig {
                history: config.chat.history,
                dedup_ttl: config.chat.dedup_ttl,
                rate: config.chat.rate,
                archived: args.archive.is_some(),
                lossless_redis: args.lossless_redis,
            },
            audience_ttl: Duration::from_millis(args.audience_ttl_ms.max(100)),
        })
        .await
        .map_err(|e| format!("connecting the chat engine: {e}"))?;
        config.chat_engine = Some(Arc::new(engine));
    }
    let hub = Hub::new(config);
    let http = listen(args.http).map_err(|e| format!("listening on {}: {e}", args.http))?;
    let rtmp = listen(args.rtmp).map_err(|e| format!("listening on {}: {e}", args.rtmp))?;
    let http_addr = http
        .local_addr()
        .map_err(|e| format!("reading the bound address: {e}"))?;
    let rtmp_addr = rtmp
        .local_addr()
        .map_err(|e| format!("reading the bound address: {e}"))?;
    // The first stdout lines name the endpoints, for scripts and tests.
    // A closed stdout (the reader went away) must not take the hub down: no println!.
    let mut out = std::io::stdout();
    let _ = writeln!(out, "chat: ws://{http_addr}/chat");
    let _ = writeln!(out, "rtmp: rtmp://{rtmp_addr}/live");
    let _ = writeln!(out, "whep: http://{http_addr}/whep/{{name}}");
    let _ = writeln!(out, "page: http://{http_addr}/");
    let rtmps = match (args.rtmps.rtmps, tls) {
        (Some(addr), Some(tls)) => {
            let listener = listen(addr).map_err(|e| format!("listening on {addr}: {e}"))?;
            let bound = listener
                .local_addr()
                .map_err(|e| format!("reading the bound address: {e}"))?;
            let _ = writeln!(out, "rtmps: rtmps://{bound}/live");
            Some((listener, tls))
        }
        _ => None,
    };
    let _ = out.flush();
    if made {
        eprintln!("no --secret given: this run's secret is {secret}");
        eprintln!(
            "get a token with: streamhub token --secret {secret} --user NAME [--role moderator]"
        );
    }
    let serving = hub.clone();
    let listeners = HubListeners { http, rtmp, rtmps };
    let mut task = tokio::spawn(async move { serving.serve_all(listeners).await });
    tokio::select! {
        result = &mut task => {
            return match result {
                Ok(Ok(())) => Ok(ExitCode::SUCCESS),
                Ok(Err(e)) => Err(format!("serving: {e}")),
                Err(e) => Err(format!("the server task failed: {e}")),
            };
        }
        _ = stop_signal() => {}
    }
    eprintln!("stopping: telling chat clients to reconnect");
    hub.shutdown(Duration::from_secs(1), Duration::from_secs(5))
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    Ok(ExitCode::SUCCESS)
}

/// Pending connections the kernel may hold for us (capped by `net.core.somaxconn`):
/// thousands of viewers arriving at once must not wait out SYN retransmissions.
const LISTEN_BACKLOG: u32 = 4096;

fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Ctrl-C, or SIGTERM on Unix.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
