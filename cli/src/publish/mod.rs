//! `streamhub publish`: push an FLV file to an RTMP/RTMPS ingest, tag by tag.

mod sink;

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use streamhub::media::Pacer;
use streamhub::media::flv::{FlvPayload, FlvReader, FlvTag};
use streamhub::media::sei::{insert_before_first_slice, latency_stamp};
use streamhub::rtmp::{CongestionPolicy, PublishConfig, StreamMetadata, TlsOptions};

use crate::progress::PushProgress;
use sink::{Sink, Snapshot};

/// Arguments of `streamhub publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The FLV file to send (H.264 video, AAC audio).
    input: PathBuf,
    /// Ingest URL, e.g. rtmp://127.0.0.1/live/KEY or rtmps://host/app/KEY?token=T.
    url: String,
    /// A backup ingest (repeatable, tried in order). With it, a lost connection is made
    /// again: after 2 failed attempts on one ingest the next one is tried, and a line
    /// says which one is live. Frames sent while none is live are dropped and counted.
    #[arg(long, value_name = "URL")]
    backup: Vec<String>,
    /// Send at the media's own pace, as a live source: sending never waits for the
    /// link; when media waits too long, video is dropped by priority (audio never) and
    /// a bitrate is recommended. Without it, a file is sent as fast as the link allows,
    /// with nothing dropped.
    #[arg(long)]
    realtime: bool,
    /// With --realtime: keep back-pressure instead of dropping (nothing is dropped and
    /// the delay grows on a slow link), for comparison.
    #[arg(long, requires = "realtime")]
    back_pressure: bool,
    /// Write one JSON line per second to FILE: waiting media, bytes per second
    /// delivered, recommended video bitrate, RTT, frames dropped.
    #[arg(long, value_name = "FILE")]
    stats: Option<PathBuf>,
    /// Print one JSON object with the results on stdout at the end.
    #[arg(long)]
    json: bool,
    /// Also trust the CA certificates in this PEM file for rtmps://.
    #[arg(long, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// Seconds allowed for connecting and for the server to accept the stream.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    timeout: f64,
    /// Put a latency stamp (an SEI message with the send time) in every video frame, for
    /// viewers to measure latency with (`streamhub::media::sei`). Pictures are unchanged.
    #[arg(long)]
    latency_stamps: bool,
}

/// The `--json` report.
#[derive(Debug, Serialize)]
struct Report {
    video_frames: u64,
    audio_frames: u64,
    bytes: u64,
    duration_ms: u64,
    connect_ms: u64,
    /// Video frames dropped for congestion (`--realtime`), by reason; audio: always 0.
    dropped_disposable: u64,
    dropped_until_keyframe: u64,
    dropped_gop: u64,
    audio_dropped: u64,
    peak_waiting_ms: u64,
    recommended_bps: u64,
    /// The ingest live at the end: 0 for the URL, then the `--backup`s in order.
    ingest: usize,
    /// Connections lost and made again (`--backup`).
    reconnects: u32,
    /// Frames dropped while no ingest was live (`--backup`).
    dropped_offline: u64,
}

/// One line of `--stats`.
#[derive(Debug, Serialize)]
struct StatsLine {
    t_ms: u64,
    waiting_ms: u64,
    peak_waiting_ms: u64,
    delivered_bps: u64,
    recommended_bps: u64,
    rtt_ms: Option<f64>,
    video_frames: u64,
    audio_frames: u64,
    dropped: u64,
    ingest: usize,
}

impl PublishArgs {
    /// Whether the live congestion policy is on.
    fn live(&self) -> bool {
        self.realtime && !self.back_pressure
    }
}

/// Runs the command; `Err` is the one-line error to print.
pub fn run(args: PublishArgs) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    // The loop runs as a task, not as `block_on`'s own future: a timer that wakes the
    // `block_on` future also writes the runtime's wake-up eventfd (one more write and
    // one more epoll_wait per frame, a sixth of the paced publisher's system calls).
    runtime.block_on(async {
        tokio::spawn(publish(args))
            .await
            .unwrap_or_else(|e| Err(format!("the publish task failed: {e}")))
    })
}

fn config_for(args: &PublishArgs, metadata: StreamMetadata) -> Result<PublishConfig, String> {
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .map_err(|_| format!("invalid --timeout {}", args.timeout))?;
    let mut tls = TlsOptions::default();
    if let Some(path) = &args.ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        tls.add_roots_pem(&pem)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let mut config = PublishConfig::default();
    config.connect_timeout = timeout;
    config.publish_timeout = timeout;
    config.write_timeout = timeout;
    // FLV timestamps already are RTMP milliseconds: keep them as they are.
    config.timestamp_origin_us = Some(0);
    config.metadata = metadata;
    config.tls = tls;
    config.congestion = if args.live() {
        CongestionPolicy::live()
    } else {
        CongestionPolicy::back_pressure()
    };
    Ok(config)
}

async fn publish(args: PublishArgs) -> Result<ExitCode, String> {
    let file = File::open(&args.input).map_err(|e| format!("{}: {e}", args.input.display()))?;
    let input_name = args.input.display().to_string();
    let flv_error = |e| format!("{input_name}: {e}");
    let mut reader = FlvReader::new(BufReader::with_capacity(1 << 20, file)).map_err(flv_error)?;

    // Metadata comes before the first media tag; read up to that tag first.
    let mut metadata = StreamMetadata::default();
    let mut first_media: Option<FlvTag> = None;
    while let Some(tag) = reader.next_tag().map_err(flv_error)? {
        match tag.payload {
            FlvPayload::Metadata(meta) => metadata = meta,
            FlvPayload::OtherScript => {}
            _ => {
                first_media = Some(tag);
                break;
            }
        }
    }
    let config = config_for(&args, metadata)?;

    let started = Instant::now();
    let mut progress = PushProgress::new();
    let publisher = Sink::connect(&args.url, &args.backup, config, progress.notes()).await?;
    let connect_ms = started.elapsed().as_millis() as u64;

    let mut stats_file = args
        .stats
        .as_ref()
        .map(|path| {
            File::create(path)
                .map(std::io::BufWriter::new)
                .map_err(|e| format!("{}: {e}", path.display()))
        })
        .transpose()?;
    let mut next_stats = Instant::now();
    let mut pace = args.realtime.then(Pacer::from_first_timestamp);
    let pace_unix_us = unix_us();
    let mut pending = first_media;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let mut was_interrupted = false;
    let mut nal_length_size = 4;

    let outcome: Result<(), String> = async {
        loop {
            let tag = match pending.take() {
                Some(tag) => tag,
                None => match reader.next_tag().map_err(flv_error)? {
                    Some(tag) => tag,
                    None => return Ok(()),
                },
            };
            let ts_us = i64::from(tag.timestamp_ms) * 1000;
            if let Some(pacer) = pace.as_mut() {
                tokio::select! {
                    _ = pacer.wait(ts_us) => {}
                    _ = &mut interrupted => { was_interrupted = true; return Ok(()); }
                }
            }
            // The stamp is the frame's capture time: when it was due (realtime), else
            // now. A publisher that falls behind shows in the latency, as a camera's
            // frames would.
            let stamp_us = match pace.as_mut() {
                Some(pacer) => pace_unix_us + pacer.offset(ts_us).as_micros() as u64,
                None => unix_us(),
            };
            let sent = send_tag(
                &publisher,
                tag,
                args.latency_stamps
                    .then_some((&mut nal_length_size, stamp_us)),
            );
            tokio::select! {
                result = sent => result?,
                _ = &mut interrupted => { was_interrupted = true; return Ok(()); }
            }
            let stats = publisher.snapshot();
            progress.update(
                stats.bytes,
                stats.video_frames,
                stats.audio_frames,
                args.live().then_some(&stats.congestion),
            );
            if let Some(out) = stats_file.as_mut()
                && Instant::now() >= next_stats
            {
                next_stats += Duration::from_secs(1);
                write_stats_line(out, started, &stats).map_err(|e| format!("--stats: {e}"))?;
            }
        }
    }
    .await;
    progress.finish();

    // A failed send reports the publisher's own, more precise error when it has one.
    let finished = publisher.finish().await;
    let stats = match (outcome, finished) {
        (Ok(()), Ok(stats)) => stats,
        (Err(send_error), Ok(_)) => return Err(send_error),
        (_, Err(e)) => return Err(e),
    };
    if let Some(mut out) = stats_file {
        use std::io::Write;
        write_stats_line(&mut out, started, &stats)
            .and_then(|()| out.flush())
            .map_err(|e| format!("--stats: {e}"))?;
    }
    if args.json {
        let dropped = stats.congestion.dropped;
        let report = Report {
            video_frames: stats.video_frames,
            audio_frames: stats.audio_frames,
            bytes: stats.bytes,
            duration_ms: started.elapsed().as_millis() as u64,
            connect_ms,
            dropped_disposable: dropped.disposable,
            dropped_until_keyframe: dropped.until_keyframe,
            dropped_gop: dropped.gop,
            audio_dropped: 0,
            peak_waiting_ms: stats.congestion.peak_waiting.as_millis() as u64,
            recommended_bps: stats.congestion.recommended_bps,
            ingest: stats.ingest,
            reconnects: stats.reconnects,
            dropped_offline: stats.dropped_offline,
        };
        let json = serde_json::to_string(&report).map_err(|e| e.to_string())?;
        println!("{json}");
    }
    if was_interrupted {
        return Err("interrupted; the stream was ended cleanly".into());
    }
    Ok(ExitCode::SUCCESS)
}

fn write_stats_line(
    out: &mut impl std::io::Write,
    started: Instant,
    stats: &Snapshot,
) -> std::io::Result<()> {
    let c = &stats.congestion;
    let line = StatsLine {
        t_ms: started.elapsed().as_millis() as u64,
        waiting_ms: c.waiting.as_millis() as u64,
        peak_waiting_ms: c.peak_waiting.as_millis() as u64,
        delivered_bps: c.delivered_bps,
        recommended_bps: c.recommended_bps,
        rtt_ms: c.rtt.map(|d| d.as_secs_f64() * 1000.0),
        video_frames: stats.video_frames,
        audio_frames: stats.audio_frames,
        dropped: c.dropped.total(),
        ingest: stats.ingest,
    };
    let json = serde_json::to_string(&line).map_err(std::io::Error::other)?;
    writeln!(out, "{json}")
}

fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Sends one tag; with `stamp` (the stream's NAL length size, kept up to date, and the
/// frame's capture time), video frames get a latency stamp in front of their first
/// slice.
async fn send_tag(
    publisher: &Sink,
    tag: FlvTag,
    stamp: Option<(&mut usize, u64)>,
) -> Result<(), String> {
    match tag.payload {
        FlvPayload::VideoConfig(config) => {
            if let Some((size, _)) = stamp {
                *size = config.nal_length_size();
            }
            publisher.set_video_config(config)?
        }
        FlvPayload::AudioConfig(config) => publisher.set_audio_config(config)?,
        FlvPayload::Video(mut frame) => {
            if let Some((size, at_us)) = stamp {
                frame.data = insert_before_first_slice(&frame.data, *size, &latency_stamp(at_us))
                    .map_err(|e| e.to_string())?;
            }
            publisher.send_video(&frame).await?
        }
        FlvPayload::Audio(frame) => publisher.send_audio(&frame).await?,
        // End-of-sequence markers and script data carry no frames.
        FlvPayload::VideoEndOfSequence | FlvPayload::Metadata(_) | FlvPayload::OtherScript => {}
    }
    Ok(())
}
