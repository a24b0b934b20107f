//! `streamhub demo`: everything at once on one machine, through the SDK's
//! [`StreamSession`]. A hub on free loopback ports; Alice broadcasts the built-in clip
//! over RTMP and chats; Bob watches over WHEP and chats back; a live view while it
//! runs, a summary at the end.
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
use streamhub::chat::protocol::Role;
use streamhub::chat::server::Claims;
use streamhub::hub::{Hub, HubConfig};
use streamhub::media::sei::find_latency_stamp;
use streamhub::session::{
    BroadcastConfig, OnStreamEnd, SessionChat, SessionEvent, SessionEvents, SessionState,
    StreamSession, WatchConfig,
};
use streamhub::whep::MediaKind;
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
    viewers: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
    /// How Bob's watching ended, in words ("the stream ended" when Alice's goodbye
    /// reached him).
    viewer_end: Mutex<Option<String>>,
    chat_lines: Mutex<Vec<String>>,
    problems: Mutex<Vec<String>>,
}

impl Counters {
    fn problem(&self, what: String) {
        if let Ok(mut problems) = self.problems.lock() {
            problems.push(what);
        }
    }

    fn line(&self, what: String) {
        if let Ok(mut lines) = self.chat_lines.lock() {
            lines.push(what);
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
    reconnects: u32,
    hub_bitrate_kbps: u64,
    /// How the viewer's session ended: "the stream ended" when it saw the broadcaster's
    /// goodbye.
    viewer_end: String,
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
    let chat_url = format!("ws://{http_addr}/chat");
    let token = |user: &str, role: Role| {
        hub.chat()
            .keys()
            .issue(&Claims::new(user, role, vec![STREAM.to_string()], 3600))
    };

    // Alice goes live and chats in her stream's room.
    let mut config = BroadcastConfig::new(format!("rtmp://{rtmp_addr}/live/{STREAM}"));
    config.publish.timestamp_origin_us = Some(0);
    config.chat = Some(SessionChat::new(
        &chat_url,
        STREAM,
        token("alice", Role::Broadcaster)?,
    ));
    let (alice, alice_events) = StreamSession::broadcast(config).map_err(|e| e.to_string())?;
    tokio::spawn(follow("alice", alice_events, counters.clone()));
    let state = alice
        .wait_for_state(Duration::from_secs(10), |s| {
            matches!(s, SessionState::Live | SessionState::Failed { .. })
        })
        .await;
    if state != SessionState::Live {
        return Err(format!("going live on the hub: {state:?}"));
    }
    let publish_counters = counters.clone();
    let publishing = alice.clone();
    let publish_task = tokio::spawn(async move {
        let published = &publish_counters.published;
        let result = clip
            .publish(&publishing, duration, || {
                published.fetch_add(1, Ordering::Relaxed);
            })
            .await;
        if let Err(e) = result {
            publish_counters.problem(format!("publishing: {e}"));
        }
    });

    // Bob watches, once the hub has the stream, and chats back.
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
    let mut config = WatchConfig::new(format!("http://{http_addr}/whep/{STREAM}"));
    let bob_token = token("bob", Role::Viewer)?;
    // The chat token also names Bob to the hub's WHEP endpoint, so that watching and
    // chatting count him once in the room.
    config.play.token = Some(bob_token.clone());
    config.chat = Some(SessionChat::new(&chat_url, STREAM, bob_token));
    // When Alice ends the stream, Bob's session ends too (instead of waiting for her).
    config.on_stream_end = OnStreamEnd::End;
    let (bob, bob_events) = StreamSession::watch(config).map_err(|e| e.to_string())?;
    tokio::spawn(follow("bob", bob_events, counters.clone()));
    let watch_task = tokio::spawn(watch(bob.clone(), counters.clone()));
    let talkers = [
        tokio::spawn(talk(alice.clone(), ALICE, 300, duration, counters.clone())),
        tokio::spawn(talk(bob.clone(), BOB, 1100, duration, counters.clone())),
    ];

    // The live view, until the clip has been published for `duration`.
    let mut shown_lines = 0;
    let mut hub_bitrate_kbps = 0;
    let show_lines = |view: &LiveView, shown: &mut usize| {
        if let Ok(lines) = counters.chat_lines.lock() {
            for line in &lines[*shown..] {
                view.line(line);
            }
            *shown = lines.len();
        }
    };
    while !publish_task.is_finished() {
        tokio::time::sleep(Duration::from_millis(250)).await;
        show_lines(&view, &mut shown_lines);
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
            "published {} · played {} frames · {bitrate} kbit/s · latency {:.1} ms · {} in the room · chat {}/{}",
            counters.published.load(Ordering::Relaxed),
            counters.played.load(Ordering::Relaxed),
            latest as f64 / 1000.0,
            counters.viewers.load(Ordering::Relaxed),
            counters.chat_received.load(Ordering::Relaxed),
            counters.chat_sent.load(Ordering::Relaxed),
        ));
    }
    let _ = publish_task.await;
    for talker in talkers {
        let _ = talker.await;
    }
    // Every message sent should reach the other side; wait for it, bounded.
    let deadline = Instant::now() + Duration::from_secs(5);
    while counters.chat_received.load(Ordering::Relaxed)
        < counters.chat_sent.load(Ordering::Relaxed)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Alice ends the stream; the hub says goodbye to Bob's player, and Bob's session
    // reads that as the stream's end and ends.
    let alice_stats = alice.stop().await;
    let _ = bob
        .wait_for_state(Duration::from_secs(5), SessionState::is_terminal)
        .await;
    let bob_stats = bob.stop().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), watch_task).await;
    show_lines(&view, &mut shown_lines);
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
    let viewer_end = counters
        .viewer_end
        .lock()
        .ok()
        .and_then(|end| end.clone())
        .unwrap_or_else(|| "the viewer never saw the stream end".into());
    if viewer_end != STREAM_ENDED {
        problems.push(format!("bob's session: {viewer_end}"));
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
        first_frame_ms: bob_stats
            .play
            .as_ref()
            .and_then(|p| p.first_frame)
            .map(|d| d.as_millis() as u64),
        packets_lost: bob_stats.play.as_ref().map_or(0, |p| p.packets_lost),
        reconnects: alice_stats.reconnects + bob_stats.reconnects,
        hub_bitrate_kbps,
        viewer_end,
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
    println!(
        "  end      alice stopped broadcasting; bob: {}",
        r.viewer_end
    );
}

/// Bob's frames: counts them and reads the latency stamps.
async fn watch(session: StreamSession, counters: Arc<Counters>) {
    while let Ok(Some(frame)) = session.next_frame().await {
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
}

/// What a viewer's session says when the broadcaster ended the stream.
const STREAM_ENDED: &str = "the stream ended";

/// One session's events: chat lines, acknowledgements, the audience, state changes.
async fn follow(name: &'static str, mut events: SessionEvents, counters: Arc<Counters>) {
    let mut last = SessionState::Idle;
    while let Some(event) = events.next().await {
        match event {
            SessionEvent::Chat(message) if message.user.id == name => {
                counters.line(format!("  💬 {}: {}", message.user.name, message.text));
            }
            SessionEvent::Chat(_) => {
                counters.chat_received.fetch_add(1, Ordering::Relaxed);
            }
            SessionEvent::ChatSent { .. } => {
                counters.chat_sent.fetch_add(1, Ordering::Relaxed);
            }
            SessionEvent::Viewers(n) => counters.viewers.store(n, Ordering::Relaxed),
            SessionEvent::StateChanged(state) => {
                // After the stream's end, the session's own end says nothing new.
                if !(state == SessionState::Ended && last == SessionState::StreamEnded) {
                    counters.line(format!("  {name}: {}", describe(&state)));
                }
                let end = match &state {
                    SessionState::StreamEnded => Some(STREAM_ENDED.to_string()),
                    SessionState::Failed { reason } => Some(format!("failed: {reason}")),
                    SessionState::Ended if last != SessionState::StreamEnded => {
                        Some(format!("stopped while {}", describe(&last)))
                    }
                    _ => None,
                };
                if let (Some(end), "bob") = (end, name)
                    && let Ok(mut slot) = counters.viewer_end.lock()
                {
                    slot.get_or_insert(end);
                }
                last = state;
            }
            SessionEvent::Error(e) => counters.line(format!("  {name}: {e}")),
            SessionEvent::ChatSendFailed { error, .. } => {
                counters.line(format!("  {name}: chat message not sent: {error}"))
            }
            _ => {}
        }
    }
}

fn describe(state: &SessionState) -> String {
    match state {
        SessionState::Live => "live".into(),
        SessionState::Reconnecting { reason, .. } => format!("reconnecting ({reason})"),
        SessionState::StreamEnded => STREAM_ENDED.into(),
        other => format!("{other:?}").to_lowercase(),
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

/// Says a line every 1.6 s from `offset_ms`, stopping a second before the stream ends.
async fn talk(
    session: StreamSession,
    lines: &'static [&'static str],
    offset_ms: u64,
    duration: Duration,
    counters: Arc<Counters>,
) {
    let start = Instant::now();
    let talk_until = duration.saturating_sub(Duration::from_secs(1));
    for (i, line) in lines.iter().cycle().enumerate() {
        let at = Duration::from_millis(offset_ms + 1600 * i as u64);
        if at >= talk_until {
            break;
        }
        tokio::time::sleep_until((start + at).into()).await;
        if let Err(e) = session.send_chat(line).await {
            counters.problem(format!("sending a chat message: {e}"));
        }
    }
}
