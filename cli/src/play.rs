//! `streamhub play`: watch a WHEP stream, optionally recording its video.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use streamhub::whep::{PlayConfig, Player};

use crate::record::Recorder;

/// Arguments of `streamhub play`.
#[derive(Debug, Args)]
pub struct PlayArgs {
    /// The WHEP endpoint, e.g. http://127.0.0.1:8889/whep/cam1.
    url: String,
    /// Bearer token for the WHEP server.
    #[arg(long)]
    token: Option<String>,
    /// Stop after this many seconds (default: until the stream ends or Ctrl-C); an error
    /// (non-zero exit) if not a single frame played by then.
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Write the received video: .h264 (Annex-B H.264) or .ivf (VP8).
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Print one JSON object with the results on stdout at the end.
    #[arg(long)]
    json: bool,
    /// Write one JSON line per video frame to FILE: `{"t_ms":…,"media_ms":…,
    /// "latency_ms":…}` — its arrival (ms since the start), its media time, and, for a
    /// frame with a latency stamp (`streamhub publish --latency-stamps`), the time from
    /// its capture to its arrival (same-machine clocks; null without a stamp).
    #[arg(long, value_name = "FILE")]
    latency: Option<PathBuf>,
    /// Seconds allowed for the WHEP exchange and ICE.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    timeout: f64,
    /// Once connected, seconds without any frame (or, at the start, without a video
    /// frame the answer promised) before giving up with an error that names what did
    /// arrive; the exit status is then non-zero.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    stall_timeout: f64,
}

/// The `--json` report.
#[derive(Debug, Serialize)]
struct Report {
    video_codec: Option<String>,
    audio_codec: Option<String>,
    /// Video frames the player had assembled when playback stopped, including any
    /// still queued (so it can exceed `frames_recorded`, by at most `frames_waiting`).
    video_frames: u64,
    /// Frames (audio or video) assembled and not read when playback stopped.
    frames_waiting: u64,
    audio_frames: u64,
    keyframes: u64,
    first_frame_ms: Option<u64>,
    packets_lost: u64,
    packets_received: u64,
    frame_rate: f64,
    video_jitter_ms: f64,
    sender_reports: u64,
    keyframe_requests: u64,
    freezes: u64,
    frozen_ms: u64,
    nacks_sent: u64,
    retransmissions: u64,
    packets_recovered: u64,
    reorder_wait_ms: f64,
    ice_restarts: u32,
    /// Video frames written to `--record`, if given.
    frames_recorded: Option<u32>,
}

/// Runs the command; `Err` is the one-line error to print.
pub fn run(args: PlayArgs) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    runtime.block_on(play(args))
}

fn seconds(value: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value).map_err(|_| format!("invalid {what} {value}"))
}

async fn play(args: PlayArgs) -> Result<ExitCode, String> {
    let mut recorder = args.record.as_deref().map(Recorder::create).transpose()?;
    let mut config = PlayConfig::default();
    config.token = args.token.clone();
    config.timeout = seconds(args.timeout, "--timeout")?;
    config.stall_timeout = seconds(args.stall_timeout, "--stall-timeout")?;
    let mut player = Player::connect(&args.url, config)
        .await
        .map_err(|e| e.to_string())?;
    let deadline = args
        .duration
        .map(|d| seconds(d, "--duration"))
        .transpose()?
        .map(|d| tokio::time::Instant::now() + d);
    let stop = async move {
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stop);
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let mut failure = None;
    let mut timed_out = false;
    let started = std::time::Instant::now();
    let mut latency_log = args
        .latency
        .as_ref()
        .map(|path| {
            std::fs::File::create(path)
                .map(std::io::BufWriter::new)
                .map_err(|e| format!("{}: {e}", path.display()))
        })
        .transpose()?;
    loop {
        tokio::select! {
            frame = player.next_frame() => match frame {
                Some(frame) => {
                    if let Some(log) = latency_log.as_mut()
                        && frame.kind == streamhub::whep::MediaKind::Video
                        && let Err(e) = log_latency(log, started, &frame)
                    {
                        failure = Some(format!("--latency: {e}"));
                        break;
                    }
                    if let Some(recorder) = recorder.as_mut()
                        && let Err(e) = recorder.write(&frame)
                    {
                        failure = Some(e);
                        break;
                    }
                }
                None => break,
            },
            _ = &mut stop => {
                timed_out = true;
                break;
            }
            _ = &mut interrupted => break,
        }
    }
    if let Some(mut log) = latency_log {
        use std::io::Write;
        log.flush().map_err(|e| format!("--latency: {e}"))?;
    }
    // `--duration` ran out before a single frame (a handshake still retrying, a sender
    // sending nothing): that is no success either, whichever timer fired first.
    let played = player.stats();
    let nothing_played = (timed_out && played.video_frames + played.audio_frames == 0).then(|| {
        format!(
            "nothing played in the --duration: {}",
            player.silence().describe()
        )
    });
    let no_media = player.failure().map(|e| e.to_string()).or(nothing_played);
    let stats = player.close().await.map_err(|e| e.to_string())?;
    let frames_recorded = recorder.map(Recorder::finish).transpose()?;
    if let Some(e) = failure.or(no_media) {
        return Err(e);
    }
    if args.json {
        let report = Report {
            video_codec: stats.video_codec.as_ref().map(|c| c.name().to_string()),
            audio_codec: stats.audio_codec.as_ref().map(|c| c.name().to_string()),
            video_frames: played.video_frames,
            frames_waiting: played.frames_waiting,
            audio_frames: stats.audio_frames,
            keyframes: stats.keyframes,
            first_frame_ms: stats.first_frame.map(|d| d.as_millis() as u64),
            packets_lost: stats.packets_lost,
            packets_received: stats.packets_received,
            frame_rate: (stats.frame_rate * 100.0).round() / 100.0,
            video_jitter_ms: stats.video_jitter.as_secs_f64() * 1000.0,
            sender_reports: stats.sender_reports,
            keyframe_requests: stats.pli_sent,
            freezes: stats.freezes,
            frozen_ms: stats.frozen.as_millis() as u64,
            nacks_sent: stats.nacks_sent,
            retransmissions: stats.retransmissions,
            packets_recovered: stats.packets_recovered,
            reorder_wait_ms: stats.reorder_target.as_secs_f64() * 1000.0,
            ice_restarts: stats.ice_restarts,
            frames_recorded,
        };
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| e.to_string())?
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One `--latency` line for a video frame.
fn log_latency(
    log: &mut impl std::io::Write,
    started: std::time::Instant,
    frame: &streamhub::whep::MediaFrame,
) -> std::io::Result<()> {
    let latency = streamhub::media::sei::find_latency_stamp(&frame.data).map(|stamp| {
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        format!("{:.1}", now_us.saturating_sub(stamp) as f64 / 1000.0)
    });
    writeln!(
        log,
        "{{\"t_ms\":{},\"media_ms\":{},\"latency_ms\":{}}}",
        started.elapsed().as_millis(),
        frame.timestamp_us / 1000,
        latency.as_deref().unwrap_or("null")
    )?;
    // Line by line, so that the file can be followed while it is written.
    log.flush()
}
