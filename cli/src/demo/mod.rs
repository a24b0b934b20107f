//! `streamhub demo`: everything at once on one machine. A hub on free loopback ports,
//! the built-in clip published into it over RTMP, watched over WHEP, and two chat users
//! talking in the stream's room; a live view while it runs, a summary at the end.
//!
//! Latency is measured, not guessed: each published frame carries the wall-clock time it
//! was handed to the publisher in an SEI message ([`streamhub::media::sei`]); the viewer
//! reads it back from the frame it assembled. Both ends share this machine's clock.

mod clip;
mod view;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use streamhub::chat::client::{ChatConfig, TokenSource};
use streamhub::chat::protocol::Role;
use streamhub::chat::server::Claims;
use streamhub::hub::{Hub, HubConfig};
use streamhub::media::sei::find_latency_stamp;
use streamhub::rtmp::{PublishConfig, Publisher};
use streamhub::whep::{MediaKind, PlayConfig, Player};
use streamhub::{ChatClient, ChatEvent};
use tokio::net::TcpListener;

use clip::{Clip, unix_us};
use view::LiveView;

/// The stream (and chat room) the demo uses.
const STREAM: &str = "demo";

/// Arguments of `streamhub demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How long to stream, in seconds.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Print one JSON object with the results on stdout at the end (the live view
    /// still goes to stderr).
    #[arg(long)]
    json: bool,
}

/// What every part counted.
#[derive(Default)]
struct Counters {
    published: AtomicU64,
    played: AtomicU64,
    audio_played: AtomicU64,
    chat_sent: AtomicU64,
    chat_received: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
    chat_lines: Mutex<Vec<String>>,
    problems: Mutex<Vec<String>>,
}

impl Counters {
    fn problem(&self, what: String) {
        if let Ok(mut problems) = self.problems.lock() {
            problems.push(what);
        }
    }
}

/// The `--json` report and the summary's figures.
#[derive(Debug, Serialize)]
struct Report {
    duration_s: f64,
    published_video_frames: u64,
    played_video_frames: u64,
    played_audio_frames: u64,
    chat_sent: u64,
    chat_received: u64,
    latency_ms_p50: f64,
    latency_ms_p95: f64,
    latency_ms_max: f64,
    latency_samples: usize,
    first_frame_ms: Option<u64>,
    packets_lost: u64,
    hub_bitrate_kbps: u64,
    healthy: bool,
    problems: Vec<String>,
}

/// Runs the command; `Err` is the one-line error to print.
pub fn run(args: DemoArgs) -> Result<ExitCode, String> {
    if !(args.duration.is_finite() && (2.0..=86_400.0).contains(&args.duration)) {
        return Err("--duration must be between 2 and 86400 seconds".into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    runtime.block_on(demo(args))
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

async fn demo(args: DemoArgs) -> Result<ExitCode, String> {
    let duration = Duration::from_secs_f64(args.duration);
    let clip = Clip::load()?;
    let secret = format!("{:032x}", rand::random::<u128>());
    let hub = Hub::new(HubConfig::with_secret(secret.as_bytes()));
    let http = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("binding HTTP: {e}"))?;
    let rtmp = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("binding RTMP: {e}"))?;
    let http_addr = http.local_addr().map_err(|e| e.to_string())?;
    let rtmp_addr = rtmp.local_addr().map_err(|e| e.to_string())?;
    let serving = hub.clone();
    let hub_task = tokio::spawn(async move { serving.serve(http, rtmp).await });

    let mut view = LiveView::new();
    view.line(&format!(
        "hub: rtmp://{rtmp_addr}/live · page http://{http_addr}/ · chat ws://{http_addr}/chat"
    ));
    let counters = Arc::new(Counters::default());
    let started = Instant::now();

    // Go live.
    let publisher = Publisher::connect(
        &format!("rtmp://{rtmp_addr}/live/{STREAM}"),
        PublishConfig {
            timestamp_origin_us: Some(0),
            ..PublishConfig::default()
        },
    )
    .await
    .map_err(|e| format!("publishing to the hub: {e}"))?;
    let publish_counters = counters.clone();
    let publish_task = tokio::spawn(async move {
        let published = &publish_counters.published;
        let result = clip
            .publish(&publisher, duration, || {
                published.fetch_add(1, Ordering::Relaxed);
            })
            .await;
        if let Err(e) = result {
            publish_counters.problem(format!("publishing: {e}"));
        }
        if let Err(e) = publisher.finish().await {
            publish_counters.problem(format!("ending the publish: {e}"));
        }
    });

    // Watch, once the stream is live.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !hub
        .streams()
        .iter()
        .any(|s| s.name == STREAM && s.video.is_some())
    {
        if Instant::now() > deadline {
            return Err("the stream did not go live on the hub within 10 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let player = Player::connect(
        &format!("http://{http_addr}/whep/{STREAM}"),
        PlayConfig::default(),
    )
    .await
    .map_err(|e| format!("watching over WHEP: {e}"))?;
    let play_task = tokio::spawn(watch(player, counters.clone()));

    // Two people chat in the stream's room.
    let chat_url = format!("ws://{http_addr}/chat");
    let mut chatters = Vec::new();
    for (name, lines) in [("alice", ALICE), ("bob", BOB)] {
        let claims = Claims::new(name, Role::Viewer, vec![STREAM.to_string()], 3600);
        let token = hub.chat().keys().issue(&claims)?;
        chatters.push(tokio::spawn(chat(
            chat_url.clone(),
            token,
            name,
            lines,
            duration,
            counters.clone(),
        )));
    }

    // The live view, until the clip has been published for `duration`.
    let mut shown_lines = 0;
    let mut hub_bitrate_kbps = 0;
    while !publish_task.is_finished() {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Ok(lines) = counters.chat_lines.lock() {
            for line in &lines[shown_lines..] {
                view.line(line);
            }
            shown_lines = lines.len();
        }
        let latest = counters
            .latencies_us
            .lock()
            .map(|l| l.last().copied().unwrap_or(0))
            .unwrap_or(0);
        let bitrate = hub.streams().first().map_or(0, |s| s.bitrate_kbps);
        if bitrate > 0 {
            hub_bitrate_kbps = bitrate;
        }
        view.status(format!(
            "published {} · played {} frames · {bitrate} kbit/s · latency {:.1} ms · chat {}/{}",
            counters.published.load(Ordering::Relaxed),
            counters.played.load(Ordering::Relaxed),
            latest as f64 / 1000.0,
            counters.chat_received.load(Ordering::Relaxed),
            counters.chat_sent.load(Ordering::Relaxed),
        ));
    }
    let _ = publish_task.await;
    // The hub ends the viewer with an RTCP BYE when the publisher leaves.
    let play_stats = match tokio::time::timeout(Duration::from_secs(10), play_task).await {
        Ok(Ok(stats)) => stats,
        _ => {
            counters.problem("the viewer did not end after the stream".into());
            None
        }
    };
    for chatter in chatters {
        if tokio::time::timeout(Duration::from_secs(10), chatter)
            .await
            .is_err()
        {
            counters.problem("a chat user did not finish".into());
        }
    }
    if let Ok(lines) = counters.chat_lines.lock() {
        for line in &lines[shown_lines..] {
            view.line(line);
        }
    }
    view.finish();
    hub.shutdown(Duration::from_millis(200), Duration::from_secs(2))
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(3), hub_task).await;

    let mut latencies = counters
        .latencies_us
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    latencies.sort_unstable();
    let published = counters.published.load(Ordering::Relaxed);
    let played = counters.played.load(Ordering::Relaxed);
    let chat_sent = counters.chat_sent.load(Ordering::Relaxed);
    let chat_received = counters.chat_received.load(Ordering::Relaxed);
    let mut problems = counters
        .problems
        .lock()
        .map(|p| p.clone())
        .unwrap_or_default();
    if published == 0 || played * 10 < published * 9 {
        problems.push(format!(
            "played {played} of {published} published frames (under 90 %)"
        ));
    }
    if chat_sent == 0 || chat_received != chat_sent {
        problems.push(format!(
            "{chat_received} of {chat_sent} chat messages received"
        ));
    }
    if latencies.is_empty() {
        problems.push("no latency stamp came back".into());
    }
    let report = Report {
        duration_s: started.elapsed().as_secs_f64(),
        published_video_frames: published,
        played_video_frames: played,
        played_audio_frames: counters.audio_played.load(Ordering::Relaxed),
        chat_sent,
        chat_received,
        latency_ms_p50: percentile(&latencies, 50.0),
        latency_ms_p95: percentile(&latencies, 95.0),
        latency_ms_max: percentile(&latencies, 100.0),
        latency_samples: latencies.len(),
        first_frame_ms: play_stats
            .as_ref()
            .and_then(|s| s.first_frame)
            .map(|d| d.as_millis() as u64),
        packets_lost: play_stats.as_ref().map_or(0, |s| s.packets_lost),
        hub_bitrate_kbps,
        healthy: problems.is_empty(),
        problems,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| e.to_string())?
        );
    } else {
        print_summary(&report);
    }
    Ok(if report.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_summary(r: &Report) {
    println!("streamhub demo: {:.1} s", r.duration_s);
    println!(
        "  video    published {} frames, played {} ({:.1} %), {} audio frames played, {} packets lost",
        r.published_video_frames,
        r.played_video_frames,
        if r.published_video_frames > 0 {
            r.played_video_frames as f64 * 100.0 / r.published_video_frames as f64
        } else {
            0.0
        },
        r.played_audio_frames,
        r.packets_lost
    );
    println!(
        "  latency  publisher → hub → viewer: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms ({} frames); first frame after {} ms",
        r.latency_ms_p50,
        r.latency_ms_p95,
        r.latency_ms_max,
        r.latency_samples,
        r.first_frame_ms
            .map_or("-".to_string(), |ms| ms.to_string())
    );
    println!(
        "  chat     {} sent, {} received",
        r.chat_sent, r.chat_received
    );
    if r.healthy {
        println!("  healthy");
    } else {
        for problem in &r.problems {
            println!("  problem: {problem}");
        }
    }
}

/// The viewer: counts frames and reads the latency stamps.
async fn watch(mut player: Player, counters: Arc<Counters>) -> Option<streamhub::PlayStats> {
    while let Some(frame) = player.next_frame().await {
        match frame.kind {
            MediaKind::Video => {
                counters.played.fetch_add(1, Ordering::Relaxed);
                if let Some(stamp) = find_latency_stamp(&frame.data) {
                    let latency = unix_us().saturating_sub(stamp);
                    if let Ok(mut l) = counters.latencies_us.lock() {
                        l.push(latency);
                    }
                }
            }
            MediaKind::Audio => {
                counters.audio_played.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    match player.close().await {
        Ok(stats) => Some(stats),
        Err(e) => {
            counters.problem(format!("closing the viewer: {e}"));
            None
        }
    }
}

const ALICE: &[&str] = &[
    "hi bob, are you seeing this?",
    "the picture is sharp",
    "latency looks tiny",
    "the colours move smoothly",
    "nice beep too",
    "ok, one more lap",
];
const BOB: &[&str] = &[
    "hey alice! yes, live",
    "no stutter here",
    "sub-second for sure",
    "chat is instant",
    "🎉 it works",
    "see you at the end",
];

/// One chat user: joins, says a line about every 1.6 s, and counts what the other says.
async fn chat(
    url: String,
    token: String,
    name: &'static str,
    lines: &'static [&'static str],
    duration: Duration,
    counters: Arc<Counters>,
) {
    let (client, mut events) =
        match ChatClient::connect(&url, TokenSource::fixed(token), ChatConfig::default()).await {
            Ok(pair) => pair,
            Err(e) => {
                counters.problem(format!("{name}: connecting to chat: {e}"));
                return;
            }
        };
    if let Err(e) = client.join(STREAM).await {
        counters.problem(format!("{name}: joining the room: {e}"));
        return;
    }
    let listen_counters = counters.clone();
    let listener = tokio::spawn(async move {
        while let Some(event) = events.next().await {
            if let ChatEvent::Message(message) = event {
                if message.user.id != name {
                    listen_counters
                        .chat_received
                        .fetch_add(1, Ordering::Relaxed);
                }
                if message.user.id == "alice" || message.user.id == name {
                    // Each line is shown once, by its author's client.
                    if message.user.id == name
                        && let Ok(mut chat) = listen_counters.chat_lines.lock()
                    {
                        chat.push(format!("  💬 {}: {}", message.user.name, message.text));
                    }
                }
            }
        }
    });
    // Bob answers half a beat after Alice; both stop a second before the stream ends.
    let start = Instant::now();
    let offset = if name == "alice" { 300 } else { 1100 };
    let talk_until = duration.saturating_sub(Duration::from_secs(1));
    for (i, line) in lines.iter().cycle().enumerate() {
        let at = Duration::from_millis(offset + 1600 * i as u64);
        if at >= talk_until {
            break;
        }
        tokio::time::sleep_until((start + at).into()).await;
        match client.send(STREAM, line).await {
            Ok(_) => {
                counters.chat_sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => counters.problem(format!("{name}: sending: {e}")),
        }
    }
    // Stay until both have stopped talking, then wait (bounded) until everything sent
    // has arrived on the other side.
    tokio::time::sleep_until((start + talk_until).into()).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while counters.chat_received.load(Ordering::Relaxed)
        < counters.chat_sent.load(Ordering::Relaxed)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = client.close(Duration::from_secs(2)).await;
    listener.abort();
}
