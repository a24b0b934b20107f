//! `chat_load`: a load generator for the StreamHub chat server.
//!
//! Starts `streamhub hub` as a child process on 127.0.0.1, opens N WebSocket receivers
//! in one room (`connect` + `join`, a bounded number at a time), then one sender
//! publishes at a fixed rate for a fixed time. Reports deliveries per second, the
//! send-to-receive latency (p50/p99/max), the hub's resident memory per connection
//! (`VmRSS` from `/proc/PID/status`, before and after the receivers connected) and how
//! long the receivers took to connect.
//!
//! Sender and receivers live in this process: the sender writes the nanoseconds since a
//! shared [`Instant`] into each message text, and each receiver subtracts that from the
//! instant it read the frame. The latency therefore includes this process's own
//! scheduling delay, on the same cores as the hub.
//!
//! ```text
//! cargo build --release -p streamhub-cli
//! cargo build --release -p streamhub-benches --bin chat_load
//! target/release/chat_load --receivers 1000 --rate 50 --seconds 20
//! ```
//!
//! Exit status: 0 when every receiver saw every message, 1 when the run finished but
//! something was lost or failed (the report is printed first), 2 on errors that stop
//! the run (the hub is stopped on every path).

use std::borrow::Cow;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use streamhub::chat::protocol::{Role, SUBPROTOCOL};
use streamhub::chat::server::{Claims, TokenKeys};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};

/// The room every connection joins.
const ROOM: &str = "bench";
/// Time allowed for each network step: TCP connect, upgrade, each reply, each send.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// File descriptors needed beyond one per receiver (sender, stdio, runtime, listener).
const SPARE_FDS: u64 = 64;
/// Pause after the hub starts and after the receivers joined, before reading `VmRSS`
/// (lets the once-a-second `viewers` pushes and allocator activity settle).
const SETTLE: Duration = Duration::from_secs(2);
/// Parts of the sending window whose median latency is reported apart (quarters).
const PARTS: usize = 4;
/// Read buffer of each generator connection. tungstenite zero-fills the free part of its
/// read buffer before every read (128 KiB by default), a cost per frame when frames come
/// one at a time; pushes are a few hundred bytes.
const CLIENT_READ_BUFFER: usize = 16 * 1024;
/// Time the hub gets to exit after SIGTERM before it is killed.
const HUB_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A client WebSocket over plain TCP.
type Ws = WebSocketStream<TcpStream>;

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(
    name = "chat_load",
    about = "Load generator for the StreamHub chat: one room, one sender, N receivers on 127.0.0.1"
)]
struct Args {
    /// The `streamhub` binary; it is run as `streamhub hub --http 127.0.0.1:0 …`.
    #[arg(long, value_name = "PATH", default_value = "target/release/streamhub")]
    hub: PathBuf,
    /// WebSocket receivers in the room.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    receivers: usize,
    /// Messages per second from the one sender.
    #[arg(long, value_name = "PER_SECOND", default_value_t = 50)]
    rate: u32,
    /// How long the sender sends, in seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Receivers connecting at the same time. Above the hub's listen backlog (128 with
    /// a default tokio listener), a burst can overflow it; those connects then wait for a
    /// SYN retransmission, 1 s later (the report counts the overflows).
    #[arg(long, value_name = "N", default_value_t = 200)]
    concurrency: usize,
    /// Longest wait, after the sending window, for every receiver to see every message.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    drain: u64,
    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Chat nodes (`streamhub hub` processes); receivers are spread over them in turn,
    /// the senders are on the first. More than one needs --chat-engine.
    #[arg(long, value_name = "N", default_value_t = 1)]
    nodes: usize,
    /// The multi-node mode: every node decides the room in this Redis
    /// (`redis://HOST:PORT`, `streamhub hub --chat-engine`).
    #[arg(long, value_name = "URL")]
    chat_engine: Option<String>,
    /// The Redis server's process id, to report its CPU and sends per Redis core.
    #[arg(long, value_name = "PID")]
    redis_pid: Option<u32>,
    /// Senders sharing the rate, each on its own connection (each connection's sends are
    /// decided one after the other).
    #[arg(long, value_name = "N", default_value_t = 1)]
    senders: usize,
}

/// Runs one measurement and prints its report; the exit status is described above.
fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("chat_load: starting the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    // Dropping `run` (on a signal) drops its hub guard, which stops the hub.
    let result = runtime.block_on(async {
        tokio::select! {
            result = run(&args) => result,
            signal = interrupted() => Err(format!("interrupted by {signal}; the hub was stopped")),
        }
    });
    match result {
        Ok(outcome) => {
            if args.json {
                match serde_json::to_string(&outcome.report) {
                    Ok(line) => println!("{line}"),
                    Err(e) => {
                        eprintln!("chat_load: writing the JSON report: {e}");
                        return ExitCode::from(2);
                    }
                }
            } else {
                print!("{}", outcome.report.to_text());
            }
            if outcome.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                for problem in &outcome.problems {
                    eprintln!("chat_load: problem: {problem}");
                }
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("chat_load: error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Resolves on SIGINT or SIGTERM, naming the signal.
async fn interrupted() -> &'static str {
    let sigint = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = sigint => "SIGINT",
            _ = term.recv() => "SIGTERM",
        },
        Err(_) => {
            sigint.await;
            "SIGINT"
        }
    }
}

/// A finished run: the report, and what went wrong in it (empty when all was delivered).
struct Outcome {
    /// The measured figures.
    report: Report,
    /// Lost deliveries, failed receivers, refused sends.
    problems: Vec<String>,
}

/// Runs one measurement; the hub child lives exactly as long as this future.
async fn run(args: &Args) -> Result<Outcome, String> {
    if args.receivers == 0
        || args.rate == 0
        || args.seconds == 0
        || args.concurrency == 0
        || args.nodes == 0
        || args.senders == 0
    {
        return Err(
            "--receivers, --rate, --seconds, --concurrency, --nodes and --senders must be at \
             least 1"
                .into(),
        );
    }
    if args.nodes > 1 && args.chat_engine.is_none() {
        return Err("several nodes share rooms only through --chat-engine redis://…".into());
    }
    let n = args.receivers;
    let limit = open_file_limit()?;
    let needed = n as u64 + SPARE_FDS;
    if limit < needed {
        return Err(format!(
            "the open-file limit is {limit}, but {n} receivers need about {needed} descriptors \
             here and in the hub (which inherits the limit): raise it with `ulimit -n {needed}`"
        ));
    }
    if !args.hub.is_file() {
        return Err(format!(
            "no hub binary at {}: build it with `cargo build --release -p streamhub-cli` \
             or pass --hub PATH",
            args.hub.display()
        ));
    }
    let ticks = clock_ticks();

    let secret = format!("{:032x}", rand::random::<u128>());
    let mut hubs = Vec::with_capacity(args.nodes);
    for node in 0..args.nodes {
        let hub = Hub::start(&args.hub, &secret, args.chat_engine.as_deref(), node)?;
        progress(args, &format!("hub pid {} serving {}", hub.pid(), hub.url));
        hubs.push(hub);
    }
    let pids: Vec<u32> = hubs.iter().map(Hub::pid).collect();
    tokio::time::sleep(SETTLE).await;
    let rss_idle = rss_kib_sum(&pids)?;

    let keys = TokenKeys::hs256(secret.as_bytes());
    let mut tokens = Vec::with_capacity(n);
    for i in 0..n {
        let claims = Claims::new(&format!("r{i}"), Role::Viewer, vec![ROOM.into()], 3600);
        tokens.push(
            keys.issue(&claims)
                .map_err(|e| format!("issuing a token: {e}"))?,
        );
    }
    let mut sender_tokens = Vec::with_capacity(args.senders);
    for s in 0..args.senders {
        let claims = Claims::new(
            &format!("sender{s}"),
            Role::Broadcaster,
            vec![ROOM.into()],
            3600,
        );
        sender_tokens.push(
            keys.issue(&claims)
                .map_err(|e| format!("issuing a sender's token: {e}"))?,
        );
    }

    let messages = u64::from(args.rate) * args.seconds;
    let shared = Arc::new(Shared {
        base: Instant::now(),
        delivered: (0..n).map(|_| Counter::default()).collect(),
        complete: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
    });
    let (phase_tx, phase_rx) = watch::channel(Phase::Sending);
    // Receivers stop reading when this guard goes, on every path out of `run`.
    let stop = StopOnDrop(&phase_tx);

    // Connect every receiver, `concurrency` at a time.
    progress(
        args,
        &format!("connecting {n} receivers, {} at a time", args.concurrency),
    );
    let permits = Arc::new(Semaphore::new(args.concurrency));
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let urls: Vec<Arc<str>> = hubs.iter().map(|hub| hub.url.as_str().into()).collect();
    let overflows_before = listen_overflows();
    let connect_started = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for (slot, token) in tokens.into_iter().enumerate() {
        let node = slot % hubs.len();
        tasks.push(tokio::spawn(receiver(Receiver {
            slot,
            addr: hubs[node].addr,
            url: urls[node].clone(),
            token,
            permits: permits.clone(),
            ready: ready_tx.clone(),
            phase: phase_rx.clone(),
            shared: shared.clone(),
            messages,
        })));
    }
    drop(ready_tx);
    let budget = Duration::from_secs(60) + Duration::from_millis(20) * n as u32;
    let deadline = tokio::time::Instant::now() + budget;
    let mut connect_us = Vec::with_capacity(n);
    let mut failures = Vec::new();
    while connect_us.len() + failures.len() < n {
        match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
            Ok(Some(Ok(took))) => connect_us.push(micros(took)),
            Ok(Some(Err(e))) => failures.push(e),
            Ok(None) => break,
            Err(_) => {
                return Err(format!(
                    "only {} of {n} receivers connected within {} s",
                    connect_us.len(),
                    budget.as_secs()
                ));
            }
        }
    }
    let connect_time = connect_started.elapsed();
    let overflows = listen_overflows()
        .zip(overflows_before)
        .map(|(after, before)| after.saturating_sub(before));
    if let Some(first) = failures.first() {
        return Err(format!(
            "{} of {n} receivers failed to connect; first error: {first}",
            failures.len()
        ));
    }
    if connect_us.len() < n {
        return Err(format!(
            "only {} of {n} receivers connected",
            connect_us.len()
        ));
    }
    progress(
        args,
        &format!(
            "{n} receivers joined in {:.2} s",
            connect_time.as_secs_f64()
        ),
    );
    tokio::time::sleep(SETTLE).await;
    let rss_connected = rss_kib_sum(&pids)?;

    // Send.
    progress(
        args,
        &format!(
            "sending {messages} messages at {}/s for {} s",
            args.rate, args.seconds
        ),
    );
    let redis_pid = args.redis_pid.map(|pid| pid.to_string());
    let cpu_before = (
        cpu_seconds("self", ticks)?,
        cpu_seconds_sum(&pids, ticks)?,
        redis_pid
            .as_deref()
            .map(|pid| cpu_seconds(pid, ticks))
            .transpose()?,
    );
    let cpu_started = Instant::now();
    let window_before = shared.delivered();
    let mut sends = Vec::with_capacity(args.senders);
    for (first, token) in sender_tokens.iter().enumerate() {
        sends.push(send_messages(
            SenderPlan {
                addr: hubs[0].addr,
                url: &urls[0],
                token,
                first: first as u64,
                step: args.senders as u64,
                count: messages,
                rate: f64::from(args.rate) / args.senders as f64,
            },
            shared.clone(),
            phase_rx.clone(),
        ));
    }
    let sendings = futures_util::future::join_all(sends)
        .await
        .into_iter()
        .collect::<Result<Vec<_>, String>>()?;
    let window_deliveries = shared.delivered() - window_before;
    let cpu_wall = cpu_started.elapsed().as_secs_f64();
    let generator_cpu = (cpu_seconds("self", ticks)? - cpu_before.0) / cpu_wall * 100.0;
    let hub_cpu_s = cpu_seconds_sum(&pids, ticks)? - cpu_before.1;
    let hub_cpu = hub_cpu_s / cpu_wall * 100.0;
    let redis_cpu_s = match (&redis_pid, cpu_before.2) {
        (Some(pid), Some(before)) => Some(cpu_seconds(pid, ticks)? - before),
        _ => None,
    };
    let sending = Sending::combine(sendings, window_deliveries);

    // Drain: wait until every receiver has seen every accepted message, or gave up.
    phase_tx.send_replace(Phase::Sent(sending.accepted));
    let drain_started = Instant::now();
    let drain_deadline = drain_started + Duration::from_secs(args.drain);
    let mut drained = false;
    while Instant::now() < drain_deadline {
        let finished =
            shared.complete.load(Ordering::Acquire) + shared.failed.load(Ordering::Acquire);
        if finished >= n {
            drained = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let drain_time = drain_started.elapsed();
    let rss_end = rss_kib_sum(&pids)?;

    // Stop everyone and collect.
    drop(stop);
    let collect_deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    let mut parts: [Vec<u32>; PARTS] = Default::default();
    let mut other_node = Vec::new();
    let mut deliveries = 0u64;
    let mut out_of_order = 0u64;
    let mut foreign = 0u64;
    let mut incomplete = 0usize;
    let mut receiver_errors = Vec::new();
    for (slot, task) in tasks.into_iter().enumerate() {
        match tokio::time::timeout_at(collect_deadline, task).await {
            Ok(Ok(mut stats)) => {
                deliveries += stats.received;
                out_of_order += stats.out_of_order;
                foreign += stats.foreign;
                if stats.received < sending.accepted {
                    incomplete += 1;
                }
                if let Some(e) = stats.error.take() {
                    receiver_errors.push(e);
                }
                for (all, mine) in parts.iter_mut().zip(&mut stats.latencies_us) {
                    if slot % hubs.len() != 0 {
                        other_node.extend_from_slice(mine);
                    }
                    all.append(mine);
                }
            }
            Ok(Err(e)) => receiver_errors.push(format!("receiver task failed: {e}")),
            Err(_) => return Err("receivers did not stop within 10 s".into()),
        }
    }
    let mut sender_error = None;
    for reader in sending.readers {
        let error = match tokio::time::timeout_at(collect_deadline, reader).await {
            Ok(Ok(error)) => error,
            Ok(Err(e)) => Some(format!("a sender's reader task failed: {e}")),
            Err(_) => Some("a sender's reader did not stop within 10 s".into()),
        };
        sender_error = sender_error.or(error);
    }
    let nodes = hubs.len();
    drop(hubs);
    other_node.sort_unstable();
    let mut acks_us = sending.acks_us;
    acks_us.sort_unstable();

    let mut latencies_us = parts.concat();
    latencies_us.sort_unstable();
    let p50_by_part = parts.map(|mut part| {
        part.sort_unstable();
        Spread::of(&part).p50
    });
    connect_us.sort_unstable();
    let expected = sending.sent * n as u64;
    let report = Report {
        nodes,
        senders: args.senders,
        receivers: n,
        rate_per_s: args.rate,
        seconds: args.seconds,
        messages_sent: sending.sent,
        messages_accepted: sending.accepted,
        expected_deliveries: expected,
        deliveries,
        delivery_ratio: ratio(deliveries, expected),
        window_s: sending.window.as_secs_f64(),
        deliveries_in_window: sending.deliveries_in_window,
        deliveries_per_s: sending.deliveries_in_window as f64 / sending.window.as_secs_f64(),
        drain_ms: if drained {
            Some(drain_time.as_secs_f64() * 1000.0)
        } else {
            None
        },
        latency_ms: Spread::of(&latencies_us),
        latency_other_node_ms: (nodes > 1).then(|| Spread::of(&other_node)),
        ack_ms: Spread::of(&acks_us),
        latency_p50_ms_by_quarter: p50_by_part,
        out_of_order,
        receivers_incomplete: incomplete,
        receivers_failed: receiver_errors.len(),
        first_receiver_error: receiver_errors.first().cloned(),
        connect_s: connect_time.as_secs_f64(),
        connect_ms: Spread::of(&connect_us),
        listen_overflows: overflows,
        server_rss_kib: Rss {
            idle: rss_idle,
            connected: rss_connected,
            end: rss_end,
        },
        server_rss_per_connection_kib: rss_connected.saturating_sub(rss_idle) as f64 / n as f64,
        hub_cpu_percent: hub_cpu,
        deliveries_per_hub_cpu_s: sending.deliveries_in_window as f64 / hub_cpu_s.max(1e-9),
        redis_cpu_percent: redis_cpu_s.map(|s| s / cpu_wall * 100.0),
        sends_per_redis_cpu_s: redis_cpu_s.map(|s| sending.accepted as f64 / s.max(1e-9)),
        generator_cpu_percent: generator_cpu,
    };

    let mut problems = Vec::new();
    if deliveries < expected {
        problems.push(format!(
            "{} of {expected} deliveries missing",
            expected - deliveries
        ));
    }
    if sending.accepted < sending.sent {
        problems.push(format!(
            "the hub accepted {} of {} sends; first refusal: {}",
            sending.accepted,
            sending.sent,
            sending
                .first_refusal
                .as_deref()
                .unwrap_or("none (replies missing)")
        ));
    }
    if let Some(e) = receiver_errors.first() {
        problems.push(format!(
            "{} receivers lost their connection; first: {e}",
            receiver_errors.len()
        ));
    }
    if let Some(e) = sender_error {
        problems.push(format!("sender: {e}"));
    }
    if out_of_order > 0 {
        problems.push(format!(
            "{out_of_order} message pushes arrived out of order"
        ));
    }
    if foreign > 0 {
        problems.push(format!(
            "{foreign} message pushes without a bench timestamp"
        ));
    }
    Ok(Outcome { report, problems })
}

/// Prints a progress line on stderr (not with `--json`, whose stdout is the report).
fn progress(args: &Args, line: &str) {
    if !args.json {
        eprintln!("chat_load: {line}");
    }
}

/// What the receivers are told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The sender has not finished yet.
    Sending,
    /// The sender finished; the hub accepted this many messages.
    Sent(u64),
    /// Stop reading and hand back the statistics.
    Stop,
}

/// Sends [`Phase::Stop`] when dropped, so receivers end on every path out of [`run`].
struct StopOnDrop<'a>(&'a watch::Sender<Phase>);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.send_replace(Phase::Stop);
    }
}

/// Counters shared by every task.
struct Shared {
    /// The zero of every timestamp carried in a message text.
    base: Instant,
    /// Bench message pushes received, one counter per receiver.
    delivered: Vec<Counter>,
    /// Receivers that have seen every accepted message.
    complete: AtomicUsize,
    /// Receivers whose connection ended before [`Phase::Stop`].
    failed: AtomicUsize,
}

impl Shared {
    /// Bench message pushes received so far, by all receivers.
    fn delivered(&self) -> u64 {
        self.delivered
            .iter()
            .map(|counter| counter.0.load(Ordering::Relaxed))
            .sum()
    }
}

/// A receiver's delivery count, alone on its cache line so that receivers running on
/// different threads do not contend.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Counter(AtomicU64);

/// One receiver's figures.
#[derive(Debug, Default)]
struct ReceiverStats {
    /// Send-to-receive latency of each bench message push, in microseconds, by the
    /// part of the sending window the message was sent in.
    latencies_us: [Vec<u32>; PARTS],
    /// Messages the sender will send (to find a message's part).
    messages: u64,
    /// Bench message pushes received.
    received: u64,
    /// Pushes whose index was not the one after the previous (gap, duplicate, reorder).
    out_of_order: u64,
    /// Message pushes without a bench timestamp.
    foreign: u64,
    /// Why the connection ended early, if it did.
    error: Option<String>,
}

/// Everything a receiver task needs.
struct Receiver {
    /// This receiver's delivery counter in [`Shared::delivered`].
    slot: usize,
    /// The hub's chat address.
    addr: SocketAddr,
    /// The chat URL.
    url: Arc<str>,
    /// This receiver's token.
    token: String,
    /// Limits how many receivers connect at once.
    permits: Arc<Semaphore>,
    /// Gets the connect+join time, or why connecting failed.
    ready: mpsc::UnboundedSender<Result<Duration, String>>,
    /// Tells when to stop.
    phase: watch::Receiver<Phase>,
    /// Counters.
    shared: Arc<Shared>,
    /// Messages the sender will send.
    messages: u64,
}

/// Connects and joins (holding a permit), then reads pushes until told to stop.
async fn receiver(mut me: Receiver) -> ReceiverStats {
    let mut stats = ReceiverStats {
        messages: me.messages,
        ..ReceiverStats::default()
    };
    let ws = {
        let Ok(_permit) = me.permits.acquire().await else {
            stats.error = Some("the connect limiter was closed".into());
            return stats;
        };
        let started = Instant::now();
        match open(me.addr, &me.url, &me.token).await {
            Ok(ws) => {
                let _ = me.ready.send(Ok(started.elapsed()));
                ws
            }
            Err(e) => {
                let _ = me.ready.send(Err(e.clone()));
                stats.error = Some(e);
                return stats;
            }
        }
    };
    let per_part = usize::try_from(me.messages).unwrap_or(0) / PARTS + 1;
    for part in &mut stats.latencies_us {
        part.reserve(per_part);
    }
    let Some(delivered) = me.shared.delivered.get(me.slot) else {
        stats.error = Some("no delivery counter for this receiver".into());
        return stats;
    };
    if let Err(e) = read_pushes(ws, &mut me.phase, &me.shared, &delivered.0, &mut stats).await {
        stats.error = Some(e);
        me.shared.failed.fetch_add(1, Ordering::AcqRel);
    }
    stats
}

/// Reads pushes until [`Phase::Stop`], counting them in `delivered` and `stats`; `Err`
/// when the connection ends first.
async fn read_pushes(
    mut ws: Ws,
    phase: &mut watch::Receiver<Phase>,
    shared: &Shared,
    delivered: &AtomicU64,
    stats: &mut ReceiverStats,
) -> Result<(), String> {
    let mut last_seq = None;
    let mut target = None;
    let mut complete = false;
    loop {
        match *phase.borrow_and_update() {
            Phase::Stop => return Ok(()),
            Phase::Sent(total) => target = Some(total),
            Phase::Sending => {}
        }
        // The phase changes twice per run: one wait per change, not one per frame.
        let changed = phase.changed();
        tokio::pin!(changed);
        loop {
            if !complete && target.is_some_and(|total| stats.received >= total) {
                complete = true;
                shared.complete.fetch_add(1, Ordering::AcqRel);
            }
            tokio::select! {
                result = &mut changed => {
                    if result.is_err() {
                        return Ok(());
                    }
                    break;
                }
                frame = ws.next() => {
                    let at = shared.base.elapsed();
                    match frame {
                        Some(Ok(Message::Text(text))) => {
                            on_push(text.as_str(), at, &mut last_seq, delivered, stats)?;
                        }
                        Some(Ok(Message::Close(frame))) => return Err(closed_by_hub(frame)),
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(format!("reading: {e}")),
                        None => return Err("the hub closed the connection".into()),
                    }
                }
            }
        }
    }
}

/// The fields of a push a receiver looks at; the rest is skipped.
#[derive(Debug, Deserialize)]
struct Push<'a> {
    /// `message`, `viewers`, `member`, `disconnect`, …
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    /// The message text (`message` pushes).
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    /// The room's sequence number (`message` pushes).
    #[serde(default)]
    seq: Option<u64>,
    /// The reason code (`disconnect` pushes).
    #[serde(default, borrow)]
    code: Option<Cow<'a, str>>,
}

/// Accounts one text frame received at `at` (since [`Shared::base`]); `delivered`
/// follows `stats.received` for the sender's window count.
fn on_push(
    text: &str,
    at: Duration,
    last_seq: &mut Option<u64>,
    delivered: &AtomicU64,
    stats: &mut ReceiverStats,
) -> Result<(), String> {
    let push: Push<'_> =
        serde_json::from_str(text).map_err(|e| format!("unreadable frame from the hub: {e}"))?;
    match push.kind.as_ref() {
        "message" => match push.text.as_deref().and_then(parse_stamp) {
            Some((index, sent_ns)) => {
                stats.received += 1;
                delivered.store(stats.received, Ordering::Relaxed);
                // The room's order (several senders interleave their indices).
                if let (Some(last), Some(seq)) = (*last_seq, push.seq)
                    && seq != last + 1
                {
                    stats.out_of_order += 1;
                }
                *last_seq = push.seq.or(*last_seq);
                let latency_us = u64::try_from(at.as_nanos())
                    .unwrap_or(u64::MAX)
                    .saturating_sub(sent_ns)
                    / 1000;
                let part =
                    usize::try_from(index.saturating_mul(PARTS as u64) / stats.messages.max(1))
                        .unwrap_or(PARTS)
                        .min(PARTS - 1);
                stats.latencies_us[part].push(u32::try_from(latency_us).unwrap_or(u32::MAX));
            }
            None => stats.foreign += 1,
        },
        "disconnect" => {
            return Err(format!(
                "the hub sent disconnect ({})",
                push.code.as_deref().unwrap_or("no code")
            ));
        }
        _ => {}
    }
    Ok(())
}

/// The message text the sender writes: its index and the send instant.
fn stamp(index: u64, sent_ns: u64) -> String {
    format!("{index} {sent_ns}")
}

/// Reads a [`stamp`] back: `(index, nanoseconds since Shared::base)`.
fn parse_stamp(text: &str) -> Option<(u64, u64)> {
    let (index, sent_ns) = text.split_once(' ')?;
    Some((index.parse().ok()?, sent_ns.parse().ok()?))
}

/// What the sender did.
struct Sending {
    /// Messages written.
    sent: u64,
    /// `ok` replies.
    accepted: u64,
    /// The first refused send, if any.
    first_refusal: Option<String>,
    /// First send to one period after the last send.
    window: Duration,
    /// Deliveries counted by all receivers within `window`.
    deliveries_in_window: u64,
    /// The tasks reading the senders' replies; each ends at [`Phase::Stop`] with its
    /// error.
    readers: Vec<JoinHandle<Option<String>>>,
    /// Send-to-reply time of each accepted send, in microseconds.
    acks_us: Vec<u32>,
}

impl Sending {
    /// The senders' figures as one, with the deliveries counted over their window.
    fn combine(sendings: Vec<Sending>, deliveries_in_window: u64) -> Sending {
        let mut all = Sending {
            sent: 0,
            accepted: 0,
            first_refusal: None,
            window: Duration::ZERO,
            deliveries_in_window,
            readers: Vec::new(),
            acks_us: Vec::new(),
        };
        for one in sendings {
            all.sent += one.sent;
            all.accepted += one.accepted;
            all.first_refusal = all.first_refusal.or(one.first_refusal);
            all.window = all.window.max(one.window);
            all.readers.extend(one.readers);
            all.acks_us.extend(one.acks_us);
        }
        all
    }
}

/// What one sender sends: messages `first`, `first + step`, … below `count`, at `rate`
/// per second, on the node at `addr`.
struct SenderPlan<'a> {
    addr: SocketAddr,
    url: &'a str,
    token: &'a str,
    first: u64,
    step: u64,
    count: u64,
    rate: f64,
}

/// Replies counted by the sender's reader.
#[derive(Debug, Default)]
struct Acks {
    /// `ok: true` replies.
    ok: AtomicU64,
    /// `ok: false` replies.
    refused: AtomicU64,
    /// The first refusal's error object.
    first_refusal: Mutex<Option<String>>,
    /// When each send was written (ns since [`Shared::base`]), by command id.
    written_ns: Mutex<std::collections::HashMap<u64, u64>>,
    /// Send-to-reply times of `ok` replies, in microseconds.
    acks_us: Mutex<Vec<u32>>,
}

/// Connects a sender and sends its share of the messages at its rate.
async fn send_messages(
    plan: SenderPlan<'_>,
    shared: Arc<Shared>,
    mut phase: watch::Receiver<Phase>,
) -> Result<Sending, String> {
    let ws = open(plan.addr, plan.url, plan.token)
        .await
        .map_err(|e| format!("connecting the sender: {e}"))?;
    let (mut sink, mut stream) = ws.split();
    let acks = Arc::new(Acks::default());
    let reader = tokio::spawn({
        let acks = acks.clone();
        let shared = shared.clone();
        async move {
            loop {
                tokio::select! {
                    changed = phase.changed() => {
                        if changed.is_err() || *phase.borrow() == Phase::Stop {
                            return None;
                        }
                    }
                    frame = stream.next() => match frame {
                        Some(Ok(Message::Text(text))) => {
                            let at = u64::try_from(shared.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
                            note_reply(text.as_str(), at, &acks);
                        }
                        Some(Ok(Message::Close(frame))) => return Some(closed_by_hub(frame)),
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Some(format!("reading replies: {e}")),
                        None => return Some("the hub closed the sender's connection".into()),
                    },
                }
            }
        }
    });

    let period = Duration::from_secs_f64(1.0 / plan.rate.max(1e-3));
    let indices: Vec<u64> = (plan.first..plan.count)
        .step_by(usize::try_from(plan.step.max(1)).unwrap_or(1))
        .collect();
    let count = indices.len() as u64;
    // Burst on missed ticks: a late tick is caught up, so `count` messages take
    // `count / rate` seconds whenever the sender can keep up at all.
    let mut ticker = tokio::time::interval(period);
    ticker.tick().await;
    let started = Instant::now();
    let before = shared.delivered();
    for (n, &index) in indices.iter().enumerate() {
        if n > 0 {
            ticker.tick().await;
        }
        let sent_ns = u64::try_from(shared.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if let Ok(mut written) = acks.written_ns.lock() {
            written.insert(index + 3, sent_ns);
        }
        let frame = format!(
            r#"{{"id":{},"type":"send","room":"{ROOM}","client_msg_id":"m{index}","text":"{}"}}"#,
            index + 3,
            stamp(index, sent_ns)
        );
        within("sending a message", sink.send(Message::text(frame)))
            .await?
            .map_err(|e| format!("sending message {index}: {e}"))?;
    }
    ticker.tick().await;
    let window = started.elapsed();
    let deliveries_in_window = shared.delivered() - before;

    // Every send gets a reply; wait for them (bounded) to know what was accepted.
    let deadline = Instant::now() + STEP_TIMEOUT;
    while acks.ok.load(Ordering::Acquire) + acks.refused.load(Ordering::Acquire) < count
        && Instant::now() < deadline
        && !reader.is_finished()
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let first_refusal = acks
        .first_refusal
        .lock()
        .map(|first| first.clone())
        .unwrap_or_else(|poisoned| poisoned.into_inner().clone());
    let acks_us = acks
        .acks_us
        .lock()
        .map(|acks| acks.clone())
        .unwrap_or_default();
    Ok(Sending {
        sent: count,
        accepted: acks.ok.load(Ordering::Acquire),
        first_refusal,
        window,
        deliveries_in_window,
        readers: vec![reader],
        acks_us,
    })
}

/// Counts a reply to a `send` read at `at_ns`; pushes (including the sender's own
/// messages) are ignored.
fn note_reply(text: &str, at_ns: u64, acks: &Acks) {
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return;
    };
    if frame["type"] != "reply" {
        return;
    }
    if frame["ok"] == true {
        acks.ok.fetch_add(1, Ordering::AcqRel);
        let written = frame["id"]
            .as_u64()
            .and_then(|id| acks.written_ns.lock().ok()?.remove(&id));
        if let (Some(written), Ok(mut times)) = (written, acks.acks_us.lock()) {
            times.push(u32::try_from(at_ns.saturating_sub(written) / 1000).unwrap_or(u32::MAX));
        }
    } else {
        acks.refused.fetch_add(1, Ordering::AcqRel);
        let mut first = acks
            .first_refusal
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        first.get_or_insert_with(|| frame["error"].to_string());
    }
}

/// Opens a chat WebSocket, then `connect`s with `token` and `join`s [`ROOM`].
async fn open(addr: SocketAddr, url: &str, token: &str) -> Result<Ws, String> {
    let tcp = within("TCP connect", TcpStream::connect(addr))
        .await?
        .map_err(|e| format!("TCP connect to {addr}: {e}"))?;
    tcp.set_nodelay(true)
        .map_err(|e| format!("setting TCP_NODELAY: {e}"))?;
    let mut request = url
        .into_client_request()
        .map_err(|e| format!("the chat URL {url}: {e}"))?;
    request.headers_mut().insert(
        SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let (mut ws, response) = within(
        "WebSocket upgrade",
        tokio_tungstenite::client_async_with_config(
            request,
            tcp,
            Some(WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER)),
        ),
    )
    .await?
    .map_err(|e| format!("WebSocket upgrade: {e}"))?;
    let selected = response
        .headers()
        .get(SEC_WEBSOCKET_PROTOCOL)
        .and_then(|value| value.to_str().ok());
    if selected != Some(SUBPROTOCOL) {
        return Err(format!(
            "the hub selected subprotocol {selected:?}, not {SUBPROTOCOL}"
        ));
    }
    let client = json!({"name": "chat_load", "version": env!("CARGO_PKG_VERSION")});
    command(
        &mut ws,
        json!({"id": 1, "type": "connect", "token": token, "client": client}),
    )
    .await?;
    command(&mut ws, json!({"id": 2, "type": "join", "room": ROOM})).await?;
    Ok(ws)
}

/// Sends one command and waits for its reply (skipping pushes); `Err` when refused.
async fn command(ws: &mut Ws, frame: Value) -> Result<Value, String> {
    let kind = frame["type"].as_str().unwrap_or("command").to_string();
    let id = frame["id"].clone();
    within(
        &format!("sending {kind}"),
        ws.send(Message::text(frame.to_string())),
    )
    .await?
    .map_err(|e| format!("sending {kind}: {e}"))?;
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| format!("no reply to {kind} within {} s", STEP_TIMEOUT.as_secs()))?;
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                return Err(format!("during {kind}: {}", closed_by_hub(frame)));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("reading the reply to {kind}: {e}")),
            None => return Err(format!("the hub closed the connection during {kind}")),
        };
        let reply: Value = serde_json::from_str(text.as_str())
            .map_err(|e| format!("unreadable frame during {kind}: {e}"))?;
        if reply["type"] == "disconnect" {
            return Err(format!("the hub sent disconnect during {kind}: {reply}"));
        }
        if reply["type"] == "reply" && reply["id"] == id {
            if reply["ok"] == true {
                return Ok(reply["result"].clone());
            }
            return Err(format!("{kind} refused: {}", reply["error"]));
        }
    }
}

/// Describes a close frame from the hub.
fn closed_by_hub(frame: Option<CloseFrame>) -> String {
    match frame {
        Some(frame) => format!(
            "the hub closed the connection ({} {})",
            u16::from(frame.code),
            frame.reason
        ),
        None => "the hub closed the connection".into(),
    }
}

/// Runs `future` with [`STEP_TIMEOUT`]; `Err` names `what` timed out.
async fn within<F: Future>(what: &str, future: F) -> Result<F::Output, String> {
    tokio::time::timeout(STEP_TIMEOUT, future)
        .await
        .map_err(|_| format!("{what}: no progress within {} s", STEP_TIMEOUT.as_secs()))
}

/// The `streamhub hub` child process and where it listens.
struct Hub {
    /// Stops the process when dropped.
    child: ChildGuard,
    /// The chat's address (always on 127.0.0.1).
    addr: SocketAddr,
    /// `ws://127.0.0.1:PORT/chat`.
    url: String,
}

impl Hub {
    /// Starts the hub on a free loopback port with `secret` and no practical rate
    /// limit, and reads the URL from its first stdout line (within 15 s).
    fn start(path: &Path, secret: &str, engine: Option<&str>, node: usize) -> Result<Hub, String> {
        let mut command = Command::new(path);
        command
            .args(["hub", "--http", "127.0.0.1:0", "--rtmp", "127.0.0.1:0"])
            .args(["--secret", secret])
            .args(["--rate-messages", "1000000000", "--rate-per-ms", "1000"]);
        if let Some(url) = engine {
            command
                .args(["--chat-engine", url])
                .args(["--node", &format!("bench{node}")]);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", path.display()))?;
        let stdout = child.stdout.take();
        // From here on, every return stops the child.
        let mut child = ChildGuard(child);
        let stdout = stdout.ok_or("the hub's stdout was not captured")?;
        let (line_tx, line_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = line_tx.send(lines.next());
            // Keep draining, so that the hub never blocks on a full pipe.
            for line in lines.map_while(Result::ok) {
                eprintln!("hub: {line}");
            }
        });
        let first = match line_rx.recv_timeout(Duration::from_secs(15)) {
            Ok(Some(Ok(line))) => line,
            Ok(Some(Err(e))) => return Err(format!("reading the hub's stdout: {e}")),
            Ok(None) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(format!(
                    "the hub printed nothing on stdout ({}); does `{} hub --help` work?",
                    child.status(),
                    path.display()
                ));
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                return Err("the hub printed no URL within 15 s".into());
            }
        };
        let url = first
            .strip_prefix("chat: ")
            .map(str::trim)
            .ok_or_else(|| format!("unexpected first line from the hub: {first:?}"))?
            .to_string();
        let addr: SocketAddr = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.strip_suffix("/chat"))
            .and_then(|authority| authority.parse().ok())
            .ok_or_else(|| format!("unexpected chat URL from the hub: {url:?}"))?;
        if !addr.ip().is_loopback() {
            return Err(format!("the hub listens on {addr}, not on loopback"));
        }
        Ok(Hub { child, addr, url })
    }

    /// The hub's process id.
    fn pid(&self) -> u32 {
        self.child.0.id()
    }
}

/// Owns a child process: on drop, SIGTERM, up to [`HUB_STOP_TIMEOUT`] to exit, then SIGKILL.
struct ChildGuard(Child);

impl ChildGuard {
    /// The exit status, or that it is still running.
    fn status(&mut self) -> String {
        match self.0.try_wait() {
            Ok(Some(status)) => status.to_string(),
            Ok(None) => "still running".into(),
            Err(e) => format!("status unknown: {e}"),
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + HUB_STOP_TIMEOUT;
        while Instant::now() < deadline {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `VmRSS` of process `pid`, in KiB.
fn rss_kib(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| format!("no VmRSS in {path}"))
}

/// User plus system CPU time of a process (`"self"` or a pid), in seconds.
/// The summed `VmRSS` of several processes, in KiB.
fn rss_kib_sum(pids: &[u32]) -> Result<u64, String> {
    pids.iter().map(|&pid| rss_kib(pid)).sum()
}

/// The summed CPU time of several processes, in seconds.
fn cpu_seconds_sum(pids: &[u32], ticks_per_s: f64) -> Result<f64, String> {
    pids.iter()
        .map(|pid| cpu_seconds(&pid.to_string(), ticks_per_s))
        .sum()
}

fn cpu_seconds(pid: &str, ticks_per_s: f64) -> Result<f64, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
    // Fields after the parenthesised command name: state is the 1st, utime the 12th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    match (field(11), field(12)) {
        (Some(user), Some(system)) => Ok((user + system) as f64 / ticks_per_s),
        _ => Err(format!("unexpected contents of {path}")),
    }
}

/// Clock ticks per second of `/proc/*/stat` (`getconf CLK_TCK`, 100 if unknown).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// `TcpExtListenOverflows` from `/proc/net/netstat`, if readable.
fn listen_overflows() -> Option<u64> {
    let netstat = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut tcp_ext = netstat.lines().filter(|line| line.starts_with("TcpExt:"));
    let (names, values) = (tcp_ext.next()?, tcp_ext.next()?);
    let at = names
        .split_whitespace()
        .position(|name| name == "ListenOverflows")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// The soft limit on open files of this process (the hub inherits it).
fn open_file_limit() -> Result<u64, String> {
    let limits = std::fs::read_to_string("/proc/self/limits")
        .map_err(|e| format!("reading /proc/self/limits: {e}"))?;
    let soft = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .ok_or("no \"Max open files\" in /proc/self/limits")?;
    if soft == "unlimited" {
        return Ok(u64::MAX);
    }
    soft.parse()
        .map_err(|_| format!("unexpected open-file limit {soft:?}"))
}

/// A duration in whole microseconds, saturating at `u32::MAX` (71 minutes).
fn micros(duration: Duration) -> u32 {
    u32::try_from(duration.as_micros()).unwrap_or(u32::MAX)
}

/// `part / whole`, 0 when `whole` is 0.
fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Percentiles of a sample, in milliseconds.
#[derive(Debug, Serialize)]
struct Spread {
    /// Values measured.
    samples: usize,
    /// Median.
    p50: f64,
    /// 99th percentile.
    p99: f64,
    /// Largest.
    max: f64,
}

impl Spread {
    /// The spread of `sorted` microsecond values (nearest-rank percentiles).
    fn of(sorted: &[u32]) -> Spread {
        let at = |p: f64| -> f64 {
            if sorted.is_empty() {
                return 0.0;
            }
            let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            f64::from(sorted[rank - 1]) / 1000.0
        };
        Spread {
            samples: sorted.len(),
            p50: at(0.50),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// The hub's `VmRSS` at three moments, in KiB.
#[derive(Debug, Serialize)]
struct Rss {
    /// Started, no connections.
    idle: u64,
    /// Every receiver joined (before the sender connected).
    connected: u64,
    /// After the sending and the drain.
    end: u64,
}

/// The measured figures of one run.
#[derive(Debug, Serialize)]
struct Report {
    /// Chat nodes (hub processes).
    nodes: usize,
    /// Sender connections.
    senders: usize,
    /// WebSocket receivers in the room.
    receivers: usize,
    /// Messages per second sent.
    rate_per_s: u32,
    /// Seconds of sending.
    seconds: u64,
    /// Messages the sender wrote.
    messages_sent: u64,
    /// Messages the hub accepted (`ok` replies).
    messages_accepted: u64,
    /// `messages_sent × receivers`.
    expected_deliveries: u64,
    /// Bench message pushes received by all receivers.
    deliveries: u64,
    /// `deliveries / expected_deliveries`.
    delivery_ratio: f64,
    /// The sending window: first send to one period after the last, in seconds.
    window_s: f64,
    /// Deliveries received within the sending window.
    deliveries_in_window: u64,
    /// `deliveries_in_window / window_s`.
    deliveries_per_s: f64,
    /// From the end of the window until every receiver had every message, in ms
    /// (`None` when the drain limit passed first).
    drain_ms: Option<f64>,
    /// Send-to-receive latency over all deliveries.
    latency_ms: Spread,
    /// Send-to-receive latency at receivers on another node than the senders'.
    latency_other_node_ms: Option<Spread>,
    /// Send-to-reply latency of accepted sends.
    ack_ms: Spread,
    /// Median latency of the messages sent in each quarter of the window, in ms
    /// (a rising series means a backlog building up).
    latency_p50_ms_by_quarter: [f64; PARTS],
    /// Pushes that did not follow the previous one (gap, duplicate, reorder).
    out_of_order: u64,
    /// Receivers that missed at least one accepted message.
    receivers_incomplete: usize,
    /// Receivers whose connection ended early.
    receivers_failed: usize,
    /// The first of those errors.
    first_receiver_error: Option<String>,
    /// Time to connect and join every receiver, in seconds.
    connect_s: f64,
    /// Connect+join time of each receiver.
    connect_ms: Spread,
    /// Connection attempts dropped because a listen queue was full while the receivers
    /// connected (`TcpExtListenOverflows`, for the whole network namespace); each costs
    /// the client a SYN retransmission, 1 s later.
    listen_overflows: Option<u64>,
    /// The hub's resident memory.
    server_rss_kib: Rss,
    /// `(connected - idle) / receivers`, in KiB.
    server_rss_per_connection_kib: f64,
    /// The hubs' CPU while sending, in percent of one core (summed over nodes).
    hub_cpu_percent: f64,
    /// Deliveries in the window per second of hub CPU (all nodes).
    deliveries_per_hub_cpu_s: f64,
    /// Redis's CPU while sending, in percent of one core (with --redis-pid).
    redis_cpu_percent: Option<f64>,
    /// Accepted sends per second of Redis CPU (with --redis-pid).
    sends_per_redis_cpu_s: Option<f64>,
    /// This generator's CPU while sending, in percent of one core.
    generator_cpu_percent: f64,
}

impl Report {
    /// The report as aligned text lines.
    fn to_text(&self) -> String {
        let drain = match self.drain_ms {
            Some(ms) => format!("all delivered {ms:.0} ms after the window"),
            None => "NOT all delivered within the drain limit".into(),
        };
        let mib = |kib: u64| kib as f64 / 1024.0;
        let lines = [
            format!(
                "chat load: {} receivers on {} node(s), {} sender(s) at {}/s in all for {} s, room \"{ROOM}\" on 127.0.0.1",
                self.receivers, self.nodes, self.senders, self.rate_per_s, self.seconds
            ),
            format!(
                "  messages sent / accepted   {} / {}",
                self.messages_sent, self.messages_accepted
            ),
            format!(
                "  deliveries                 {} of {} expected (ratio {:.6})",
                self.deliveries, self.expected_deliveries, self.delivery_ratio
            ),
            format!(
                "  deliveries/s               {:.0} ({} in the {:.2} s sending window); {drain}",
                self.deliveries_per_s, self.deliveries_in_window, self.window_s
            ),
            format!(
                "  latency send->receive      p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} samples)",
                self.latency_ms.p50,
                self.latency_ms.p99,
                self.latency_ms.max,
                self.latency_ms.samples
            ),
            match &self.latency_other_node_ms {
                Some(other) => format!(
                    "  latency on another node    p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} samples)",
                    other.p50, other.p99, other.max, other.samples
                ),
                None => "  latency on another node    (one node)".into(),
            },
            format!(
                "  send->ack                  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} samples)",
                self.ack_ms.p50, self.ack_ms.p99, self.ack_ms.max, self.ack_ms.samples
            ),
            format!(
                "  latency p50 by quarter     {} ms",
                self.latency_p50_ms_by_quarter
                    .map(|ms| format!("{ms:.2}"))
                    .join(" / ")
            ),
            format!(
                "  receivers failed/incompl.  {} / {}  (out of order: {}){}",
                self.receivers_failed,
                self.receivers_incomplete,
                self.out_of_order,
                self.first_receiver_error
                    .as_deref()
                    .map(|e| format!("; first error: {e}"))
                    .unwrap_or_default()
            ),
            format!(
                "  connect + join             {} receivers in {:.2} s  (each: p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms)",
                self.receivers,
                self.connect_s,
                self.connect_ms.p50,
                self.connect_ms.p99,
                self.connect_ms.max
            ),
            format!(
                "  listen queue overflows     {}  (each delays a connect by a 1 s SYN retransmission)",
                self.listen_overflows
                    .map_or_else(|| "unknown".into(), |n| n.to_string())
            ),
            format!(
                "  hub VmRSS                  idle {:.1} MiB, connected {:.1} MiB, end {:.1} MiB",
                mib(self.server_rss_kib.idle),
                mib(self.server_rss_kib.connected),
                mib(self.server_rss_kib.end)
            ),
            format!(
                "  hub memory per connection  {:.1} KiB",
                self.server_rss_per_connection_kib
            ),
            format!(
                "  CPU while sending          hub {:.0}%  generator {:.0}%  (100% = one core; 2 cores shared)",
                self.hub_cpu_percent, self.generator_cpu_percent
            ),
            format!(
                "  deliveries per hub core-s  {:.0}",
                self.deliveries_per_hub_cpu_s
            ),
            match (self.redis_cpu_percent, self.sends_per_redis_cpu_s) {
                (Some(cpu), Some(sends)) => format!(
                    "  Redis                      CPU {cpu:.0}%, {sends:.0} sends per Redis core-s"
                ),
                _ => "  Redis                      (not measured)".into(),
            },
        ];
        let mut text = lines.join("\n");
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip() {
        assert_eq!(parse_stamp(&stamp(7, 123_456_789)), Some((7, 123_456_789)));
        assert_eq!(parse_stamp("hello"), None);
        assert_eq!(parse_stamp("1 x"), None);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<u32> = (1..=100).map(|v| v * 1000).collect();
        let spread = Spread::of(&values);
        assert_eq!((spread.p50, spread.p99, spread.max), (50.0, 99.0, 100.0));
        assert_eq!(Spread::of(&[]).samples, 0);
    }

    #[test]
    fn pushes_are_counted_and_others_ignored() {
        let delivered = AtomicU64::new(0);
        let mut stats = ReceiverStats {
            messages: 8,
            ..ReceiverStats::default()
        };
        let mut last = None;
        let message = r#"{"type":"message","room":"bench","epoch":"e","seq":1,"id":"m","ts":1,
            "user":{"id":"sender","name":"sender","role":"broadcaster"},"text":"0 0","client_msg_id":"m0"}"#;
        on_push(
            message,
            Duration::from_millis(3),
            &mut last,
            &delivered,
            &mut stats,
        )
        .unwrap();
        on_push(
            r#"{"type":"viewers","room":"bench","count":3}"#,
            Duration::ZERO,
            &mut last,
            &delivered,
            &mut stats,
        )
        .unwrap();
        assert_eq!((stats.received, stats.out_of_order, last), (1, 0, Some(1)));
        assert_eq!(stats.latencies_us[0], vec![3000]);
        // Index 7 under seq 1 again: a repeat of the room's seq.
        let repeat = message.replace("\"0 0\"", "\"7 0\"");
        on_push(
            &repeat,
            Duration::from_millis(5),
            &mut last,
            &delivered,
            &mut stats,
        )
        .unwrap();
        assert_eq!(
            (stats.out_of_order, stats.latencies_us[3].clone()),
            (1, vec![5000])
        );
        assert_eq!(delivered.load(Ordering::Relaxed), 2);
        assert!(
            on_push(
                r#"{"type":"disconnect","code":"x"}"#,
                Duration::ZERO,
                &mut last,
                &delivered,
                &mut stats
            )
            .is_err()
        );
    }
}
