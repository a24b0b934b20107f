//! A [`WatchSession`] against real peers: the aiortc WHEP sender of
//! `tests/peers/` (an independent WebRTC stack) and an in-process chat server. The sender
//! is killed and restarted on the same port mid-stream.

use crate::common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::peers::AiortcWhep;
use common::{Server, client_config, connect, fast_config};
use futures_util::StreamExt;
use streamhub::chat::client::BackoffConfig;
use streamhub::chat::protocol::Role;
use streamhub::session::{
    FailReason, ReconnectPolicy, SessionChat, SessionEvent, SessionState, WatchConfig, WatchSession,
};
use streamhub::whep::MediaKind;
use streamhub_test_support::poll_until_async;
use tokio::time::Instant;

#[derive(Default)]
struct Frames {
    video: AtomicU64,
    audio: AtomicU64,
    keyframes: AtomicU64,
    discontinuities_after_first: AtomicU64,
    ended: AtomicBool,
}

fn fast_reconnect() -> ReconnectPolicy {
    ReconnectPolicy::new(
        BackoffConfig::new(Duration::from_millis(100), Duration::from_millis(400))
            .with_reset_after(Duration::from_secs(30)),
        Some(100),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_goes_live_counts_frames_chats_and_survives_a_sender_restart() {
    let sender = tokio::task::block_in_place(|| AiortcWhep::start(&["--codec", "h264"]));
    let port = sender.port;
    let mut sender = Some(sender);
    let chat = Server::start(fast_config()).await;
    let (caster, caster_log) = connect(&chat, "caster", Role::Broadcaster).await;
    caster.join("cam1").await.unwrap();

    let mut config = WatchConfig::new(format!("http://127.0.0.1:{port}/whep/test"));
    config.reconnect = fast_reconnect();
    config.stall_timeout = Duration::from_secs(2);
    config.stats_interval = Duration::from_millis(200);
    config.chat = Some({
        let mut chat = SessionChat::new(
            chat.url(),
            "cam1",
            chat.token("watcher", Role::Viewer, 3600),
        );
        chat.config = client_config();
        chat
    });
    let started = Instant::now();
    let (session, mut events) = WatchSession::start(config).unwrap();

    let states: Arc<Mutex<Vec<SessionState>>> = Arc::default();
    let chat_texts: Arc<Mutex<Vec<String>>> = Arc::default();
    let viewers = Arc::new(AtomicU64::new(0));
    let joined = Arc::new(AtomicBool::new(false));
    {
        let (states, chat_texts, viewers, joined) = (
            states.clone(),
            chat_texts.clone(),
            viewers.clone(),
            joined.clone(),
        );
        // The events as a futures Stream (the inherent `next()` is the same read).
        tokio::spawn(async move {
            while let Some(event) = StreamExt::next(&mut events).await {
                match event {
                    SessionEvent::StateChanged(s) => states.lock().unwrap().push(s),
                    SessionEvent::Chat(m) => chat_texts.lock().unwrap().push(m.text),
                    SessionEvent::ChatJoined { viewers: n, .. } => {
                        viewers.store(n, Ordering::Relaxed);
                        joined.store(true, Ordering::Relaxed);
                    }
                    SessionEvent::Viewers(n) => viewers.store(n, Ordering::Relaxed),
                    _ => {}
                }
            }
        });
    }
    let frames = Arc::new(Frames::default());
    let reader = {
        let (session, frames) = (session.clone(), frames.clone());
        tokio::spawn(async move {
            let mut first = true;
            // The frames as a futures Stream: it ends when the session does.
            let mut stream = std::pin::pin!(session.frames());
            while let Some(frame) = stream.next().await {
                match frame.kind {
                    MediaKind::Video => frames.video.fetch_add(1, Ordering::Relaxed),
                    MediaKind::Audio => frames.audio.fetch_add(1, Ordering::Relaxed),
                };
                if frame.keyframe && frame.kind == MediaKind::Video {
                    frames.keyframes.fetch_add(1, Ordering::Relaxed);
                }
                if frame.discontinuity && !first {
                    frames
                        .discontinuities_after_first
                        .fetch_add(1, Ordering::Relaxed);
                }
                first = false;
            }
            frames.ended.store(true, Ordering::Relaxed);
        })
    };

    let state = session
        .wait_for_state(Duration::from_secs(15), |s| *s == SessionState::Live)
        .await;
    assert_eq!(state, SessionState::Live);
    let time_to_live = started.elapsed();
    poll_until_async("60 video frames", Duration::from_secs(15), || {
        frames.video.load(Ordering::Relaxed) >= 60
    })
    .await;
    let stats = session.stats();
    let play = stats.play.clone().expect("play stats");
    assert!(stats.video_frames >= 60, "{stats:?}");
    assert!(stats.audio_frames > 0, "{stats:?}");
    // A snapshot refreshed every 250 ms: it lags the live counters a little.
    assert!(play.video_frames >= 30 && play.keyframes >= 1, "{play:?}");
    assert!(frames.keyframes.load(Ordering::Relaxed) >= 1);

    // Chat in parallel with the media.
    poll_until_async(
        "the session to join the room",
        Duration::from_secs(10),
        || joined.load(Ordering::Relaxed),
    )
    .await;
    session.send_chat("hello from a watcher").await.unwrap();
    caster.enqueue("cam1", "welcome").await.unwrap();
    poll_until_async(
        "the broadcaster to get the message",
        Duration::from_secs(10),
        || {
            caster_log
                .seq_texts("cam1")
                .iter()
                .any(|(_, t)| t == "hello from a watcher")
        },
    )
    .await;
    poll_until_async(
        "the session to get the welcome",
        Duration::from_secs(10),
        || chat_texts.lock().unwrap().iter().any(|t| t == "welcome"),
    )
    .await;
    assert!(viewers.load(Ordering::Relaxed) >= 2, "two chat members");

    // Kill the sender: Reconnecting; a new sender on the same port: Live again.
    let killed = Instant::now();
    if let Some(mut gone) = sender.take() {
        gone.proc.kill();
    }
    let state = session
        .wait_for_state(Duration::from_secs(15), |s| {
            matches!(s, SessionState::Reconnecting { .. })
        })
        .await;
    assert!(
        matches!(state, SessionState::Reconnecting { .. }),
        "{state:?}"
    );
    let noticed = killed.elapsed();
    let before = frames.video.load(Ordering::Relaxed);
    let _sender = tokio::task::block_in_place(|| AiortcWhep::start_on(port, &["--codec", "h264"]));
    let restarted = Instant::now();
    let state = session
        .wait_for_state(Duration::from_secs(20), |s| *s == SessionState::Live)
        .await;
    assert_eq!(state, SessionState::Live);
    let back_after = restarted.elapsed();
    poll_until_async("30 more video frames", Duration::from_secs(15), || {
        frames.video.load(Ordering::Relaxed) >= before + 30
    })
    .await;
    assert!(
        frames.discontinuities_after_first.load(Ordering::Relaxed) >= 1,
        "the first frame after the reconnect is marked"
    );

    let stats = session.stop().await;
    assert_eq!(stats.state, SessionState::Ended);
    assert_eq!(stats.reconnects, 1, "{stats:?}");
    assert_eq!(
        stats.video_frames,
        frames.video.load(Ordering::Relaxed),
        "stats count what the app read"
    );
    poll_until_async("next_frame to end", Duration::from_secs(5), || {
        frames.ended.load(Ordering::Relaxed)
    })
    .await;
    reader.await.unwrap();
    poll_until_async("the Ended event", Duration::from_secs(5), || {
        states.lock().unwrap().last() == Some(&SessionState::Ended)
    })
    .await;
    let mut phases: Vec<&'static str> = states
        .lock()
        .unwrap()
        .iter()
        .map(SessionState::name)
        .collect();
    phases.dedup();
    assert_eq!(
        phases,
        ["connecting", "live", "reconnecting", "live", "ended"]
    );
    eprintln!(
        "figures: live after {time_to_live:?}; loss noticed {noticed:?} after the kill; \
         live again {back_after:?} after the restart; {} video / {} audio frames read, \
         {} keyframes; final stats {stats:?}",
        frames.video.load(Ordering::Relaxed),
        frames.audio.load(Ordering::Relaxed),
        frames.keyframes.load(Ordering::Relaxed),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthorized_watch_fails_with_a_typed_reason() {
    let sender = tokio::task::block_in_place(|| AiortcWhep::start(&["--mode", "401"]));
    let (session, _events) = WatchSession::start(WatchConfig::new(sender.url())).unwrap();
    let state = session
        .wait_for_state(Duration::from_secs(15), SessionState::is_terminal)
        .await;
    assert!(
        matches!(
            state,
            SessionState::Failed {
                reason: FailReason::Unauthorized { .. }
            }
        ),
        "{state:?}"
    );
    assert!(matches!(session.next_frame().await, Ok(None)));
}
