//! `streamhub hub`: the local development server. For now the chat server at
//! `ws://ADDR/chat`; the media relay (RTMP ingest, WHEP egress) joins it later.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use streamhub::chat::server::{ChatServer, ChatServerConfig};

/// Arguments of `streamhub hub`.
#[derive(Debug, Args)]
pub struct HubArgs {
    /// Address for HTTP and WebSocket (the chat is at /chat); port 0 picks a free one.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    http: SocketAddr,
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
    let mut config = ChatServerConfig::with_secret(secret.as_bytes());
    config.rate.messages = args.rate_messages.max(1);
    config.rate.per_ms = args.rate_per_ms;
    config.history = args.history.max(1);
    config.max_text_chars = args.max_text_chars.max(1);
    let server = ChatServer::new(config);
    let listener = listen(args.http).map_err(|e| format!("listening on {}: {e}", args.http))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("reading the bound address: {e}"))?;
    // The first stdout line names the endpoint, for scripts and tests.
    println!("chat: ws://{addr}/chat");
    let _ = std::io::stdout().flush();
    if made {
        eprintln!("no --secret given: this run's secret is {secret}");
        eprintln!(
            "get a token with: streamhub token --secret {secret} --user NAME [--role moderator]"
        );
    }
    let serving = server.clone();
    let mut task = tokio::spawn(async move { serving.serve(listener).await });
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
    server
        .shutdown(Duration::from_secs(1), Duration::from_secs(5))
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
