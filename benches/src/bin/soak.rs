//! The hub under churn and abuse for a while (benches/soak.sh starts the hub and the
//! publisher): WHEP viewers and chat clients joining and leaving all the time, and a
//! client throwing garbage at the RTMP and HTTP ports. Samples the hub's RSS, open file
//! descriptors and threads every interval into a CSV and a PNG plot; with `--check`,
//! fails unless, once the load stops, descriptors and threads return to their counts
//! before the load and RSS to within 10 % of its level after a warm-up round.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use plotters::prelude::*;
use rand::RngExt;
use streamhub::chat::protocol::Role;
use streamhub::chat::server::{Claims, TokenKeys};
use streamhub::chat::{ChatClient, ChatConfig, TokenSource};
use streamhub::whep::{PlayConfig, Player};
use streamhub_benches::plot::{draw_legend, line_swatch, register_sans_font};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// The soak's settings.
#[derive(Debug, Parser)]
struct Args {
    /// The hub's PID (its /proc is sampled).
    #[arg(long)]
    hub_pid: u32,
    /// The hub's HTTP address (HOST:PORT).
    #[arg(long)]
    http: String,
    /// The hub's RTMP address (HOST:PORT).
    #[arg(long)]
    rtmp: String,
    /// The live stream viewers watch; its room is where they chat.
    #[arg(long, default_value = "soak")]
    stream: String,
    /// The hub's chat token secret.
    #[arg(long)]
    secret: String,
    /// Seconds of load after the warm-up.
    #[arg(long, default_value_t = 600)]
    seconds: u64,
    /// Seconds of the warm-up round (its end sets the RSS baseline).
    #[arg(long, default_value_t = 20)]
    warmup: u64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 10)]
    interval: u64,
    /// WHEP viewers at once.
    #[arg(long, default_value_t = 50)]
    viewers: usize,
    /// Chat clients at once.
    #[arg(long, default_value_t = 1000)]
    chat: usize,
    /// Where soak.csv and soak.png go.
    #[arg(long, default_value = "target/soak")]
    out: PathBuf,
    /// Fail unless descriptors, threads and RSS come back after the load.
    #[arg(long)]
    check: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    t: f64,
    rss_kib: u64,
    fds: u64,
    threads: u64,
}

fn sample(pid: u32, started: Instant) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
    Sample {
        t: started.elapsed().as_secs_f64(),
        rss_kib: field("VmRSS:"),
        fds,
        threads: field("Threads:"),
    }
}

/// Counters of what the load did.
#[derive(Debug, Default)]
struct Counts {
    views: AtomicU64,
    view_failures: AtomicU64,
    frames: AtomicU64,
    chat_sessions: AtomicU64,
    chat_failures: AtomicU64,
    messages: AtomicU64,
    garbage: AtomicU64,
}

fn pause(min_ms: u64, max_ms: u64) -> Duration {
    Duration::from_millis(rand::rng().random_range(min_ms..=max_ms))
}

async fn viewer_slot(url: String, stop: watch::Receiver<bool>, counts: Arc<Counts>) {
    while !*stop.borrow() {
        let watch_for = pause(3_000, 12_000);
        match Player::connect(&url, PlayConfig::default()).await {
            Ok(mut player) => {
                counts.views.fetch_add(1, Ordering::Relaxed);
                let until = tokio::time::Instant::now() + watch_for;
                let mut stop = stop.clone();
                loop {
                    tokio::select! {
                        frame = player.next_frame() => match frame {
                            Some(_) => { counts.frames.fetch_add(1, Ordering::Relaxed); }
                            None => break,
                        },
                        () = tokio::time::sleep_until(until) => break,
                        _ = stop.wait_for(|s| *s) => break,
                    }
                }
                let _ = tokio::time::timeout(Duration::from_secs(5), player.close()).await;
            }
            Err(_) => {
                counts.view_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(pause(100, 1_000)).await;
    }
}

async fn chat_slot(
    i: usize,
    url: String,
    room: String,
    keys: TokenKeys,
    stop: watch::Receiver<bool>,
    counts: Arc<Counts>,
) {
    let user = format!("soak-{i}");
    while !*stop.borrow() {
        let claims = Claims::new(&user, Role::Viewer, vec![room.clone()], 3600);
        let Ok(token) = keys.issue(&claims) else {
            return;
        };
        let session = async {
            let (client, _events) =
                ChatClient::connect(&url, TokenSource::fixed(token), ChatConfig::default())
                    .await
                    .ok()?;
            client.join(&room).await.ok()?;
            counts.chat_sessions.fetch_add(1, Ordering::Relaxed);
            if rand::rng().random_range(0..4) == 0 && client.send(&room, "soak").await.is_ok() {
                counts.messages.fetch_add(1, Ordering::Relaxed);
            }
            Some(client)
        };
        match tokio::time::timeout(Duration::from_secs(20), session).await {
            Ok(Some(client)) => {
                let mut stop = stop.clone();
                tokio::select! {
                    () = tokio::time::sleep(pause(5_000, 30_000)) => {}
                    _ = stop.wait_for(|s| *s) => {}
                }
                let _ = client.close(Duration::from_secs(2)).await;
            }
            _ => {
                counts.chat_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(pause(100, 2_000)).await;
    }
}

/// Random bytes, half-made requests and garbage after a WebSocket upgrade, at the RTMP
/// and HTTP ports, about 20 connections a second.
async fn garbage_slot(
    rtmp: String,
    http: String,
    stop: watch::Receiver<bool>,
    counts: Arc<Counts>,
) {
    while !*stop.borrow() {
        let (addr, bytes) = {
            let mut rng = rand::rng();
            let len = rng.random_range(1..4096);
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            let addr = match rng.random_range(0..4) {
                0 => rtmp.clone(),
                1 => {
                    // A handshake's C0 and C1, then garbage chunks.
                    let mut start = vec![3u8];
                    start.extend((0..1536).map(|_| rng.random::<u8>()));
                    start.append(&mut bytes);
                    bytes = start;
                    rtmp.clone()
                }
                2 => http.clone(),
                _ => {
                    let mut upgrade = format!(
                        "GET /chat HTTP/1.1\r\nHost: {http}\r\nUpgrade: websocket\r\n\
                         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: streamhub.chat.v1\r\n\r\n"
                    )
                    .into_bytes();
                    upgrade.append(&mut bytes);
                    bytes = upgrade;
                    http.clone()
                }
            };
            (addr, bytes)
        };
        let attempt = async {
            let mut socket = TcpStream::connect(&addr).await.ok()?;
            socket.write_all(&bytes).await.ok()?;
            let mut sink = [0u8; 4096];
            while socket.read(&mut sink).await.ok()? > 0 {}
            Some(())
        };
        let _ = tokio::time::timeout(Duration::from_secs(3), attempt).await;
        counts.garbage.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs the load for `seconds`, sampling; returns the samples taken.
async fn load_round(
    args: &Args,
    seconds: u64,
    started: Instant,
    counts: &Arc<Counts>,
) -> Vec<Sample> {
    let (stop_tx, stop) = watch::channel(false);
    let whep = format!("http://{}/whep/{}", args.http, args.stream);
    let chat = format!("ws://{}/chat", args.http);
    let keys = TokenKeys::hs256(args.secret.as_bytes());
    let mut tasks = Vec::new();
    for _ in 0..args.viewers {
        tasks.push(tokio::spawn(viewer_slot(
            whep.clone(),
            stop.clone(),
            counts.clone(),
        )));
    }
    for i in 0..args.chat {
        tasks.push(tokio::spawn(chat_slot(
            i,
            chat.clone(),
            args.stream.clone(),
            keys.clone(),
            stop.clone(),
            counts.clone(),
        )));
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for _ in 0..2 {
        tasks.push(tokio::spawn(garbage_slot(
            args.rtmp.clone(),
            args.http.clone(),
            stop.clone(),
            counts.clone(),
        )));
    }
    let mut samples = vec![sample(args.hub_pid, started)];
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        let left = end.saturating_duration_since(Instant::now());
        tokio::time::sleep(left.min(Duration::from_secs(args.interval))).await;
        let s = sample(args.hub_pid, started);
        eprintln!(
            "t={:6.1}s rss={} KiB fds={} threads={} views={} chat sessions={} garbage={}",
            s.t,
            s.rss_kib,
            s.fds,
            s.threads,
            counts.views.load(Ordering::Relaxed),
            counts.chat_sessions.load(Ordering::Relaxed),
            counts.garbage.load(Ordering::Relaxed),
        );
        samples.push(s);
    }
    stop_tx.send_replace(true);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    }
    samples
}

/// Samples until `settled` holds or `within` passes; the samples and whether it held.
async fn settle(
    pid: u32,
    started: Instant,
    within: Duration,
    settled: impl Fn(&Sample) -> bool,
) -> (Vec<Sample>, bool) {
    let end = Instant::now() + within;
    let mut samples = Vec::new();
    loop {
        let s = sample(pid, started);
        samples.push(s);
        if settled(&s) {
            return (samples, true);
        }
        if Instant::now() >= end {
            return (samples, false);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn write_csv(path: &Path, samples: &[(String, Sample)]) -> std::io::Result<()> {
    let mut out = std::fs::File::create(path)?;
    writeln!(out, "t_s,phase,rss_kib,fds,threads")?;
    for (phase, s) in samples {
        writeln!(
            out,
            "{:.1},{phase},{},{},{}",
            s.t, s.rss_kib, s.fds, s.threads
        )?;
    }
    Ok(())
}

fn plot(path: &Path, samples: &[(String, Sample)]) -> Result<(), Box<dyn std::error::Error>> {
    register_sans_font()?;
    let root = BitMapBackend::new(path, (1200, 800)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(400);
    let end = samples.iter().map(|(_, s)| s.t).fold(1.0, f64::max);
    let max_rss = samples.iter().map(|(_, s)| s.rss_kib).max().unwrap_or(1) as f64 / 1024.0 * 1.1;
    let mut rss = ChartBuilder::on(&top)
        .caption(
            "Hub resident memory under churn and garbage",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..end, 0.0..max_rss)?;
    rss.configure_mesh()
        .x_desc("seconds")
        .y_desc("RSS (MiB)")
        .draw()?;
    rss.draw_series(LineSeries::new(
        samples
            .iter()
            .map(|(_, s)| (s.t, s.rss_kib as f64 / 1024.0)),
        BLUE.stroke_width(2),
    ))?;
    let max_count = samples
        .iter()
        .map(|(_, s)| s.fds.max(s.threads))
        .max()
        .unwrap_or(1) as f64
        * 1.1;
    let mut counts = ChartBuilder::on(&bottom)
        .caption("Open file descriptors and threads", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..end, 0.0..max_count)?;
    counts
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("count")
        .draw()?;
    counts
        .draw_series(LineSeries::new(
            samples.iter().map(|(_, s)| (s.t, s.fds as f64)),
            RED.stroke_width(2),
        ))?
        .label("file descriptors")
        .legend(line_swatch(RED));
    counts
        .draw_series(LineSeries::new(
            samples.iter().map(|(_, s)| (s.t, s.threads as f64)),
            GREEN.stroke_width(2),
        ))?
        .label("threads")
        .legend(line_swatch(GREEN));
    draw_legend(&mut counts, SeriesLabelPosition::UpperRight)?;
    root.present()?;
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    let started = Instant::now();
    let counts = Arc::new(Counts::default());
    let mut all: Vec<(String, Sample)> = Vec::new();
    let before = sample(args.hub_pid, started);
    all.push(("before".into(), before));
    eprintln!("before the load: {before:?}");

    // Warm-up round: allocator arenas, caches and pools reach their working size.
    for s in load_round(&args, args.warmup, started, &counts).await {
        all.push(("warmup".into(), s));
    }
    let quiet = |s: &Sample| s.fds <= before.fds && s.threads <= before.threads;
    let (settled, _) = settle(args.hub_pid, started, Duration::from_secs(30), quiet).await;
    let baseline = settled.last().copied().unwrap_or(before);
    all.extend(settled.into_iter().map(|s| ("settle".to_string(), s)));
    eprintln!("after the warm-up: {baseline:?}");

    for s in load_round(&args, args.seconds, started, &counts).await {
        all.push(("load".into(), s));
    }
    let peak = all.iter().map(|(_, s)| s.rss_kib).max().unwrap_or(0);
    let back = |s: &Sample| quiet(s) && (s.rss_kib as f64) <= baseline.rss_kib as f64 * 1.10;
    let (settled, ok) = settle(args.hub_pid, started, Duration::from_secs(45), back).await;
    let after = settled.last().copied().unwrap_or_default();
    all.extend(settled.into_iter().map(|s| ("after".to_string(), s)));

    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("creating {}: {e}", args.out.display());
        return ExitCode::FAILURE;
    }
    let csv = args.out.join("soak.csv");
    let png = args.out.join("soak.png");
    if let Err(e) = write_csv(&csv, &all) {
        eprintln!("writing {}: {e}", csv.display());
    }
    if let Err(e) = plot(&png, &all) {
        eprintln!("plotting {}: {e}", png.display());
    }
    let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
    println!(
        "soak {} s (+{} s warm-up): {} views ({} failed, {} frames), {} chat sessions ({} failed, {} messages), {} garbage connections",
        args.seconds,
        args.warmup,
        c(&counts.views),
        c(&counts.view_failures),
        c(&counts.frames),
        c(&counts.chat_sessions),
        c(&counts.chat_failures),
        c(&counts.messages),
        c(&counts.garbage),
    );
    println!(
        "hub before: rss {} KiB, {} fds, {} threads; after warm-up: rss {} KiB; peak rss {} KiB; after: rss {} KiB, {} fds, {} threads",
        before.rss_kib,
        before.fds,
        before.threads,
        baseline.rss_kib,
        peak,
        after.rss_kib,
        after.fds,
        after.threads
    );
    println!("wrote {} and {}", csv.display(), png.display());
    let alive = std::path::Path::new(&format!("/proc/{}", args.hub_pid)).exists();
    if !alive {
        eprintln!("the hub died during the soak");
        return ExitCode::FAILURE;
    }
    let worked = c(&counts.views) > 0 && c(&counts.chat_sessions) > 0 && c(&counts.frames) > 0;
    if args.check && !(ok && worked) {
        eprintln!("check failed: settled={ok}, load worked={worked}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
