//! `redis_sends`: how fast the chat rooms' decide step runs on Redis (issue 15): sends
//! through [`RedisSequencer::send`] (one Lua script each) from C concurrent senders
//! over R rooms, for a number of sends. Reports sends/s and the send-to-reply latency
//! (p50/p99/max), as JSON. `benches/redis_sends.sh` starts a Redis of its own and adds
//! the Redis CPU time the run cost (from `INFO cpu`), hence sends per Redis core.
//!
//! ```text
//! target/release/redis_sends --url redis://127.0.0.1:6390 --senders 64 --sends 200000
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;
use streamhub::chat::protocol::{RateInfo, Role, UserInfo};
use streamhub::chat::server::redis_engine::{
    RedisSequencer, SendOutcome, SendRequest, SequencerConfig,
};

#[derive(Parser)]
struct Args {
    /// The Redis to use (its rooms `bench-*` are written).
    #[arg(long)]
    url: String,
    /// Concurrent senders (each waits for its reply before sending again).
    #[arg(long, default_value_t = 64)]
    senders: u64,
    /// Sends in all.
    #[arg(long, default_value_t = 200_000)]
    sends: u64,
    /// Rooms the senders spread over.
    #[arg(long, default_value_t = 16)]
    rooms: u64,
    /// Sequencers (connections to Redis), standing for chat nodes.
    #[arg(long, default_value_t = 2)]
    nodes: u64,
}

fn percentile_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let config = SequencerConfig {
        history: 1000,
        dedup_ttl: Duration::from_secs(600),
        rate: RateInfo {
            messages: u32::MAX,
            per_ms: 1000,
        },
        archived: false,
        lossless_redis: false,
    };
    let mut nodes = Vec::new();
    for _ in 0..args.nodes.max(1) {
        nodes.push(RedisSequencer::connect(&args.url, config.clone()).await?);
    }
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..args.senders {
        let node = nodes[(s % args.nodes.max(1)) as usize].clone();
        let next = next.clone();
        let (sends, rooms) = (args.sends, args.rooms.max(1));
        tasks.push(tokio::spawn(async move {
            let user = UserInfo {
                id: format!("sender{s}"),
                name: format!("Sender {s}"),
                role: Role::Viewer,
            };
            let mut latencies = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= sends {
                    return Ok::<_, String>(latencies);
                }
                let room = format!("bench-{}", n % rooms);
                let cmid = format!("m{n}");
                let request = SendRequest {
                    room: &room,
                    user: &user,
                    text: "a chat message of a typical length, about sixty bytes long",
                    client_msg_id: &cmid,
                    moderator: false,
                };
                let sent = Instant::now();
                match node.send(&request).await {
                    Ok(SendOutcome::Sent(_)) => latencies.push(sent.elapsed().as_micros() as u64),
                    Ok(other) => return Err(format!("send {n}: {other:?}")),
                    Err(e) => return Err(format!("send {n}: {e}")),
                }
            }
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let report = json!({
        "sends": latencies.len(),
        "seconds": elapsed,
        "sends_per_s": latencies.len() as f64 / elapsed,
        "ack_p50_ms": percentile_ms(&latencies, 0.50),
        "ack_p99_ms": percentile_ms(&latencies, 0.99),
        "ack_max_ms": percentile_ms(&latencies, 1.0),
        "senders": args.senders,
        "rooms": args.rooms,
        "nodes": args.nodes,
    });
    println!("{report}");
    Ok(())
}
