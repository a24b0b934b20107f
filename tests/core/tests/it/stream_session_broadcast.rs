//! A [`BroadcastSession`] against real peers: nginx-rtmp (recording every publish,
//! judged by ffprobe) and an in-process chat server. The ingest is killed and restarted
//! on the same port mid-stream.

use crate::common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::peers::{self, Nginx, NginxOptions};
use common::{Server, client_config, connect, fast_config};
use streamhub::chat::client::BackoffConfig;
use streamhub::chat::protocol::Role;
use streamhub::media::Pacer;
use streamhub::media::flv::FlvPayload;
use streamhub::session::{
    BroadcastConfig, BroadcastSession, FailReason, ReconnectPolicy, SessionChat, SessionError,
    SessionEvent, SessionEvents, SessionState,
};
use streamhub_test_support::poll_until_async;
use tokio::time::Instant;

/// Every state change, chat message and error a session reported.
#[derive(Clone, Default)]
struct Events {
    states: Arc<Mutex<Vec<SessionState>>>,
    chat: Arc<Mutex<Vec<String>>>,
    errors: Arc<Mutex<Vec<String>>>,
    stats: Arc<AtomicU64>,
    joined: Arc<AtomicBool>,
}

impl Events {
    fn collect(mut events: SessionEvents) -> Events {
        let log = Events::default();
        let sink = log.clone();
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                match event {
                    SessionEvent::StateChanged(state) => sink.states.lock().unwrap().push(state),
                    SessionEvent::Chat(message) => sink.chat.lock().unwrap().push(message.text),
                    SessionEvent::Error(error) => {
                        sink.errors.lock().unwrap().push(error.to_string())
                    }
                    SessionEvent::Stats(_) => {
                        sink.stats.fetch_add(1, Ordering::Relaxed);
                    }
                    SessionEvent::ChatJoined { .. } => sink.joined.store(true, Ordering::Relaxed),
                    _ => {}
                }
            }
        });
        log
    }

    fn states(&self) -> Vec<SessionState> {
        self.states.lock().unwrap().clone()
    }
}

fn fast_reconnect() -> ReconnectPolicy {
    ReconnectPolicy::new(
        BackoffConfig::new(Duration::from_millis(100), Duration::from_millis(400))
            .with_reset_after(Duration::from_secs(30)),
        Some(100),
    )
}

/// Sends one tag; `shift_us` moves its timestamps (to loop a clip).
async fn send(session: &BroadcastSession, payload: &FlvPayload, shift_us: i64) {
    match payload {
        FlvPayload::VideoConfig(config) => session.set_video_config(config.clone()).unwrap(),
        FlvPayload::AudioConfig(config) => session.set_audio_config(config.clone()).unwrap(),
        FlvPayload::Video(frame) => {
            let mut frame = frame.clone();
            frame.pts_us += shift_us;
            frame.dts_us += shift_us;
            session.send_video(&frame).await.expect("send_video");
        }
        FlvPayload::Audio(frame) => {
            let mut frame = frame.clone();
            frame.pts_us += shift_us;
            session.send_audio(&frame).await.expect("send_audio");
        }
        _ => {}
    }
}

fn pts_us(payload: &FlvPayload) -> Option<i64> {
    match payload {
        FlvPayload::Video(frame) => Some(frame.dts_us),
        FlvPayload::Audio(frame) => Some(frame.pts_us),
        _ => None,
    }
}

/// Sends the clip over and over in real time until `running` is cleared.
fn feed_in_real_time(
    session: BroadcastSession,
    clip: Arc<Vec<FlvPayload>>,
    first_shift_us: i64,
    running: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let length_us = clip.iter().filter_map(pts_us).max().unwrap_or(0) + 33_333;
        let mut pacer = Pacer::new(Instant::now(), 0);
        let mut round = 0i64;
        let mut sent = 0u64;
        while running.load(Ordering::Relaxed) {
            for payload in clip.iter() {
                if !running.load(Ordering::Relaxed) {
                    break;
                }
                if let Some(ts) = pts_us(payload) {
                    pacer.wait(round * length_us + ts).await;
                    sent += 1;
                }
                send(&session, payload, first_shift_us + round * length_us).await;
            }
            round += 1;
        }
        sent
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_goes_live_chats_survives_an_ingest_restart_and_ends() {
    let dir = peers::tempdir();
    let clip_path = dir.path().join("clip.flv");
    tokio::task::block_in_place(|| peers::make_clip(&clip_path, 3));
    let clip = Arc::new(peers::read_clip(&clip_path));
    let source = peers::packets(&clip_path);
    let (source_video, source_audio) = (
        peers::of_kind(&source, "video"),
        peers::of_kind(&source, "audio"),
    );

    let first_dir = dir.path().join("nginx-1");
    let mut nginx =
        tokio::task::block_in_place(|| Nginx::start(&first_dir, NginxOptions::default()));
    let port = nginx.rtmp_port;
    let chat = Server::start(fast_config()).await;
    let (viewer, viewer_log) = connect(&chat, "viewer", Role::Viewer).await;
    viewer.join("cam1").await.unwrap();

    let mut config = BroadcastConfig::new(nginx.url("cam1"));
    // The clip goes out as fast as possible and must arrive whole (packet for packet):
    // back-pressure, not the live policy that would drop video to keep the delay down.
    config.publish.congestion = streamhub::rtmp::CongestionPolicy::back_pressure();
    config.reconnect = fast_reconnect();
    config.stats_interval = Duration::from_millis(200);
    config.chat = Some({
        let mut chat = SessionChat::new(
            chat.url(),
            "cam1",
            chat.token("caster", Role::Broadcaster, 3600),
        );
        chat.config = client_config();
        chat
    });
    let started = Instant::now();
    let (session, events) = BroadcastSession::start(config).unwrap();
    let log = Events::collect(events);

    // Connecting → Live.
    let state = session
        .wait_for_state(Duration::from_secs(10), |s| *s == SessionState::Live)
        .await;
    assert_eq!(state, SessionState::Live);
    let time_to_live = started.elapsed();

    // The whole clip, as fast as the send queue takes it; nginx records all of it.
    for payload in clip.iter() {
        send(&session, payload, 0).await;
    }
    let recording = nginx.recording_path("cam1");
    let mut received = Vec::new();
    poll_until_async(
        "nginx to record the whole clip",
        Duration::from_secs(20),
        || {
            received = peers::packets_so_far(&recording);
            peers::of_kind(&received, "video").len() >= source_video.len()
                && peers::of_kind(&received, "audio").len() >= source_audio.len()
        },
    )
    .await;
    for (kind, sent) in [("video", &source_video), ("audio", &source_audio)] {
        let got = peers::of_kind(&received, kind);
        assert_eq!(got.len(), sent.len(), "{kind} packet count");
        for (i, (a, b)) in sent.iter().zip(&got).enumerate() {
            assert_eq!(
                (&a.hash, a.size, a.key),
                (&b.hash, b.size, b.key),
                "{kind} packet {i}"
            );
        }
    }
    let stats = session.stats();
    assert_eq!(stats.video_frames, source_video.len() as u64, "{stats:?}");
    assert_eq!(stats.audio_frames, source_audio.len() as u64, "{stats:?}");

    // Chat, in parallel with the media.
    poll_until_async(
        "the session to join the room",
        Duration::from_secs(10),
        || log.joined.load(Ordering::Relaxed),
    )
    .await;
    session
        .send_chat("hello from the broadcaster")
        .await
        .unwrap();
    viewer.enqueue("cam1", "hello from a viewer").await.unwrap();
    poll_until_async(
        "the viewer to get the message",
        Duration::from_secs(10),
        || {
            viewer_log
                .seq_texts("cam1")
                .iter()
                .any(|(_, text)| text == "hello from the broadcaster")
        },
    )
    .await;
    poll_until_async(
        "the session to get the viewer's message",
        Duration::from_secs(10),
        || {
            log.chat
                .lock()
                .unwrap()
                .iter()
                .any(|t| t == "hello from a viewer")
        },
    )
    .await;

    // Kill the ingest while frames flow in real time: the session reconnects.
    let running = Arc::new(AtomicBool::new(true));
    let feeder = feed_in_real_time(session.clone(), clip.clone(), 3_100_000, running.clone());
    // Some real-time frames go out first (about half a second of them).
    let before_kill = session.stats().video_frames;
    poll_until_async(
        "real-time frames on the wire",
        Duration::from_secs(10),
        || session.stats().video_frames >= before_kill + 15,
    )
    .await;
    let killed = Instant::now();
    nginx.proc.kill();
    let state = session
        .wait_for_state(Duration::from_secs(10), |s| {
            matches!(s, SessionState::Reconnecting { .. })
        })
        .await;
    assert!(
        matches!(state, SessionState::Reconnecting { .. }),
        "{state:?}"
    );
    let noticed = killed.elapsed();

    let second_dir = dir.path().join("nginx-2");
    let nginx2 = tokio::task::block_in_place(|| {
        Nginx::start(
            &second_dir,
            NginxOptions {
                rtmp_port: Some(port),
                ..NginxOptions::default()
            },
        )
    });
    let restarted = Instant::now();
    let state = session
        .wait_for_state(Duration::from_secs(15), |s| *s == SessionState::Live)
        .await;
    assert_eq!(state, SessionState::Live);
    let back_after = restarted.elapsed();

    // Frames flow into the second publish.
    let second = nginx2.recording_path("cam1");
    poll_until_async(
        "frames in the second recording",
        Duration::from_secs(15),
        || peers::of_kind(&peers::packets_so_far(&second), "video").len() >= 30,
    )
    .await;
    running.store(false, Ordering::Relaxed);
    let fed = feeder.await.unwrap();

    let stats = session.stop().await;
    assert_eq!(stats.state, SessionState::Ended);
    assert_eq!(session.state(), SessionState::Ended);
    assert!(matches!(
        session
            .send_video(&streamhub::VideoFrame::new(
                vec![0, 0, 0, 1, 0x65],
                streamhub::VideoFormat::AnnexB,
                true,
                0
            ))
            .await,
        Err(SessionError::Ended)
    ));
    tokio::task::block_in_place(|| nginx2.wait_disconnects(1));
    let second_packets = peers::packets(&second);
    let second_video = peers::of_kind(&second_packets, "video");
    assert!(
        second_video.len() >= 30,
        "{} video packets",
        second_video.len()
    );
    assert!(
        second_video[0].key,
        "the second publish starts with a keyframe"
    );
    assert_eq!(stats.reconnects, 1, "{stats:?}");
    assert!(
        stats.frames_dropped > 0,
        "frames were dropped while reconnecting"
    );
    assert!(stats.time_reconnecting > Duration::ZERO);
    assert!(log.stats.load(Ordering::Relaxed) > 0, "periodic stats");

    // The lifecycle as the app saw it.
    poll_until_async("the Ended event", Duration::from_secs(5), || {
        log.states().last() == Some(&SessionState::Ended)
    })
    .await;
    let mut phases: Vec<&'static str> = log.states().iter().map(SessionState::name).collect();
    phases.dedup();
    assert_eq!(
        phases,
        ["connecting", "live", "reconnecting", "live", "ended"],
        "{:?}",
        log.states()
    );
    assert!(
        log.errors
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.contains("connection lost")),
        "{:?}",
        log.errors.lock().unwrap()
    );
    eprintln!(
        "figures: live after {time_to_live:?}; clip {} video + {} audio packets recorded identically; \
         loss noticed {noticed:?} after the kill; live again {back_after:?} after the restart; \
         {fed} frames fed in real time, {} dropped, {} video packets in the second recording; \
         final stats {stats:?}",
        source_video.len(),
        source_audio.len(),
        stats.frames_dropped,
        second_video.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_key_wrong_application_and_unreachable_ingest_fail_with_typed_reasons() {
    let dir = peers::tempdir();
    let nginx = tokio::task::block_in_place(|| {
        Nginx::start(
            dir.path(),
            NginxOptions {
                only_key: Some("good".into()),
                ..NginxOptions::default()
            },
        )
    });

    let failed = |session: BroadcastSession| async move {
        session
            .wait_for_state(Duration::from_secs(15), SessionState::is_terminal)
            .await
    };

    // A key nginx's on_publish refuses.
    let (session, _events) =
        BroadcastSession::start(BroadcastConfig::new(nginx.url("bad"))).unwrap();
    let state = failed(session.clone()).await;
    assert!(
        matches!(&state, SessionState::Failed { reason: FailReason::Rejected { detail } } if detail.contains("publish refused")),
        "{state:?}"
    );
    assert!(matches!(
        session
            .send_video(&streamhub::VideoFrame::new(
                vec![0, 0, 1, 0x65],
                streamhub::VideoFormat::AnnexB,
                true,
                0
            ))
            .await,
        Err(SessionError::Failed(FailReason::Rejected { .. }))
    ));

    // An application nginx does not have.
    let url = format!("rtmp://127.0.0.1:{}/nope/good", nginx.rtmp_port);
    let (session, _events) = BroadcastSession::start(BroadcastConfig::new(url)).unwrap();
    let state = failed(session).await;
    assert!(
        matches!(&state, SessionState::Failed { reason: FailReason::Rejected { detail } } if detail.contains("connect refused")),
        "{state:?}"
    );

    // Nobody listening: retried, then Unreachable with the attempt count.
    let mut config = BroadcastConfig::new(format!(
        "rtmp://127.0.0.1:{}/live/good",
        streamhub_test_support::free_port()
    ));
    config.reconnect = ReconnectPolicy::new(fast_reconnect().backoff, Some(2));
    let (session, _events) = BroadcastSession::start(config).unwrap();
    let state = failed(session).await;
    assert!(
        matches!(
            &state,
            SessionState::Failed {
                reason: FailReason::Unreachable { attempts: 3, .. }
            }
        ),
        "{state:?}"
    );

    // Not an RTMP URL: refused at creation.
    assert!(matches!(
        BroadcastSession::start(BroadcastConfig::new("http://127.0.0.1/live/key")),
        Err(SessionError::InvalidConfig(_))
    ));
    // The right key works.
    let (session, _events) =
        BroadcastSession::start(BroadcastConfig::new(nginx.url("good"))).unwrap();
    let state = session
        .wait_for_state(Duration::from_secs(10), |s| *s == SessionState::Live)
        .await;
    assert_eq!(state, SessionState::Live);
    assert_eq!(session.stop().await.state, SessionState::Ended);
}
