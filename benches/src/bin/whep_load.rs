//! `whep_load`: N WHEP viewers of one stream in one process, for the hub's per-viewer
//! cost, time to first frame and latency.
//!
//! Viewers join one after another (each waits for its first video frame, so the time to
//! first frame is measured for a viewer joining a running stream), all stay for
//! `--seconds`, then leave. When the publisher stamps its frames
//! (`streamhub publish --latency-stamps`), each viewer measures the latency of every
//! frame from the stamp (same machine, same clock). Prints one JSON object.
//!
//! ```text
//! target/release/whep_load --url http://127.0.0.1:8080/whep/bench --viewers 10 --seconds 20
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use serde::Serialize;
use streamhub::media::sei::find_latency_stamp;
use streamhub::whep::{MediaKind, PlayConfig, Player};
use tokio::sync::watch;

/// Command line.
#[derive(Debug, Parser)]
struct Args {
    /// The WHEP endpoint.
    #[arg(long)]
    url: String,
    /// Viewers to start.
    #[arg(long, default_value_t = 1)]
    viewers: usize,
    /// Seconds all viewers stay connected once the last one joined.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Print the moment every viewer joined and when the window starts/ends on stderr.
    #[arg(long)]
    verbose: bool,
}

/// What one viewer saw.
#[derive(Debug, Default)]
struct ViewerResult {
    first_frame: Option<Duration>,
    video_frames: u64,
    audio_frames: u64,
    packets_lost: u64,
    latencies_us: Vec<u64>,
}

/// The report.
#[derive(Debug, Serialize)]
struct Report {
    viewers: usize,
    connected: usize,
    window_s: f64,
    first_frame_ms_p50: f64,
    first_frame_ms_p95: f64,
    first_frame_ms_max: f64,
    video_fps_per_viewer_min: f64,
    video_fps_per_viewer_avg: f64,
    audio_frames_total: u64,
    packets_lost_total: u64,
    latency_ms_p50: f64,
    latency_ms_p95: f64,
    latency_ms_max: f64,
    latency_samples: usize,
}

fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn percentile_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

/// Plays until `stop`; counts frames in the measuring window only.
async fn view(
    mut player: Player,
    started: Instant,
    mut stop: watch::Receiver<bool>,
    window: watch::Receiver<bool>,
    first: tokio::sync::oneshot::Sender<()>,
    window_frames: Arc<AtomicU64>,
) -> ViewerResult {
    let mut result = ViewerResult::default();
    let mut first = Some(first);
    loop {
        tokio::select! {
            frame = player.next_frame() => {
                let Some(frame) = frame else { break };
                match frame.kind {
                    MediaKind::Video => {
                        if let Some(tx) = first.take() {
                            result.first_frame = Some(started.elapsed());
                            let _ = tx.send(());
                        }
                        if *window.borrow() {
                            result.video_frames += 1;
                            window_frames.fetch_add(1, Ordering::Relaxed);
                            if let Some(stamp) = find_latency_stamp(&frame.data) {
                                result.latencies_us.push(unix_us().saturating_sub(stamp));
                            }
                        }
                    }
                    MediaKind::Audio => result.audio_frames += 1,
                }
            }
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    if let Ok(stats) = player.close().await {
        result.packets_lost = stats.packets_lost;
    }
    result
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    let (stop_tx, stop) = watch::channel(false);
    let (window_tx, window) = watch::channel(false);
    let window_frames = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..args.viewers {
        let started = Instant::now();
        let player = match Player::connect(&args.url, PlayConfig::default()).await {
            Ok(player) => player,
            Err(e) => {
                eprintln!("viewer {i}: {e}");
                continue;
            }
        };
        let (first_tx, first_rx) = tokio::sync::oneshot::channel();
        tasks.push(tokio::spawn(view(
            player,
            started,
            stop.clone(),
            window.clone(),
            first_tx,
            window_frames.clone(),
        )));
        // The next viewer joins once this one has its first picture (bounded).
        let _ = tokio::time::timeout(Duration::from_secs(10), first_rx).await;
        if args.verbose {
            eprintln!("viewer {i} joined after {:?}", started.elapsed());
        }
    }
    if args.verbose {
        eprintln!("window starts");
    }
    window_tx.send_replace(true);
    let window_started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    window_tx.send_replace(false);
    let window_s = window_started.elapsed().as_secs_f64();
    if args.verbose {
        eprintln!("window ends");
    }
    stop_tx.send_replace(true);
    let mut results = Vec::new();
    for task in tasks {
        if let Ok(Ok(result)) = tokio::time::timeout(Duration::from_secs(10), task).await {
            results.push(result);
        }
    }
    let mut first_frames: Vec<u64> = results
        .iter()
        .filter_map(|r| r.first_frame.map(|d| d.as_micros() as u64))
        .collect();
    first_frames.sort_unstable();
    let mut latencies: Vec<u64> = results
        .iter()
        .flat_map(|r| r.latencies_us.clone())
        .collect();
    latencies.sort_unstable();
    let fps: Vec<f64> = results
        .iter()
        .map(|r| r.video_frames as f64 / window_s)
        .collect();
    let report = Report {
        viewers: args.viewers,
        connected: results.len(),
        window_s,
        first_frame_ms_p50: percentile_ms(&first_frames, 50.0),
        first_frame_ms_p95: percentile_ms(&first_frames, 95.0),
        first_frame_ms_max: percentile_ms(&first_frames, 100.0),
        video_fps_per_viewer_min: fps.iter().copied().fold(f64::INFINITY, f64::min),
        video_fps_per_viewer_avg: fps.iter().sum::<f64>() / fps.len().max(1) as f64,
        audio_frames_total: results.iter().map(|r| r.audio_frames).sum(),
        packets_lost_total: results.iter().map(|r| r.packets_lost).sum(),
        latency_ms_p50: percentile_ms(&latencies, 50.0),
        latency_ms_p95: percentile_ms(&latencies, 95.0),
        latency_ms_max: percentile_ms(&latencies, 100.0),
        latency_samples: latencies.len(),
    };
    match serde_json::to_string(&report) {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("report: {e}");
            return ExitCode::FAILURE;
        }
    }
    if results.len() == args.viewers {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
