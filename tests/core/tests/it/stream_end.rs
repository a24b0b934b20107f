//! A stream that its sender ends is not a lost connection: a watch session goes
//! `StreamEnded` (no error event), then waits for the stream to come back and goes Live
//! again, or ends, as `WatchConfig::on_stream_end` says. Against the real hub.

use std::time::{Duration, Instant};

use streamhub::media::{AudioFormat, AudioFrame};
use streamhub::rtmp::{PublishConfig, Publisher};
use streamhub::session::{OnStreamEnd, SessionEvent, SessionState, StreamSession, WatchConfig};

use streamhub_test_support::loopback_hub;
use streamhub_test_support::opus;

use loopback_hub::TestHub;

use opus::tone_packets as opus_packets;

/// Publishes `seconds` of Opus in real time to `name`, then ends the stream cleanly.
async fn publish(hub: &TestHub, name: &str, seconds: u64) {
    let publisher = Publisher::connect(
        &format!("rtmp://{}/live/{name}", hub.rtmp),
        PublishConfig::default(),
    )
    .await
    .expect("publish");
    let packets = opus_packets(seconds as usize * 50);
    let start = tokio::time::Instant::now();
    for (i, packet) in packets.into_iter().enumerate() {
        tokio::time::sleep_until(start + Duration::from_millis(20 * i as u64)).await;
        let frame = AudioFrame::new(packet, AudioFormat::Opus, 20_000 * i as i64);
        publisher.send_audio(&frame).await.expect("send");
    }
    publisher.finish().await.expect("finish");
}

/// [`publish`] of 2 s on a task of its own.
fn spawn_publish(hub: &TestHub, name: &'static str) -> tokio::task::JoinHandle<()> {
    let hub = hub.clone();
    tokio::spawn(async move { publish(&hub, name, 2).await })
}

async fn wait_live_on_hub(hub: &TestHub, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !hub
        .hub
        .streams()
        .iter()
        .any(|s| s.name == name && s.audio.is_some())
    {
        assert!(
            Instant::now() < deadline,
            "{name} never went live on the hub"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every state the session went through and every error event, until the events end.
fn record(
    mut events: streamhub::session::SessionEvents,
) -> tokio::task::JoinHandle<(Vec<SessionState>, Vec<String>)> {
    tokio::spawn(async move {
        let (mut states, mut errors) = (Vec::new(), Vec::new());
        while let Some(event) = events.next().await {
            match event {
                SessionEvent::StateChanged(state) => states.push(state),
                SessionEvent::Error(error) => errors.push(error.to_string()),
                _ => {}
            }
        }
        (states, errors)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_waits_for_an_ended_stream_and_plays_it_again() {
    let hub = loopback_hub::start().await;
    let first = spawn_publish(&hub, "show");
    wait_live_on_hub(&hub, "show").await;
    let mut config = WatchConfig::new(format!("http://{}/whep/show", hub.http));
    // Few attempts: "not found" answers while the stream is away must not use them up.
    config.reconnect.max_attempts = Some(2);
    config.reconnect.backoff.cap = Duration::from_millis(300);
    let (watcher, events) = StreamSession::watch(config).expect("watch");
    let recorded = record(events);
    let state = watcher
        .wait_for_state(Duration::from_secs(10), |s| *s == SessionState::Live)
        .await;
    assert_eq!(state, SessionState::Live);
    first.await.expect("first publish");
    let state = watcher
        .wait_for_state(Duration::from_secs(5), |s| *s != SessionState::Live)
        .await;
    assert_eq!(
        state,
        SessionState::StreamEnded,
        "the sender's goodbye ends the stream"
    );
    // Away for 3 s: about ten "not found" polls with a 300 ms cap, more than 2 attempts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(watcher.state(), SessionState::StreamEnded, "still waiting");
    let ended_at = watcher.stats().video_frames + watcher.stats().audio_frames;
    let second = spawn_publish(&hub, "show");
    let back = Instant::now();
    let state = watcher
        .wait_for_state(Duration::from_secs(10), |s| *s == SessionState::Live)
        .await;
    assert_eq!(
        state,
        SessionState::Live,
        "Live again once the stream is back"
    );
    let back_after = back.elapsed();
    second.await.expect("second publish");
    let state = watcher
        .wait_for_state(Duration::from_secs(5), |s| *s != SessionState::Live)
        .await;
    assert_eq!(
        state,
        SessionState::StreamEnded,
        "the second stream ends too"
    );
    let stats = watcher.stop().await;
    let (states, errors) = recorded.await.expect("events");
    assert!(
        stats.audio_frames > ended_at,
        "frames of the second stream arrived ({} then {})",
        ended_at,
        stats.audio_frames
    );
    assert!(errors.is_empty(), "no error events: {errors:?}");
    let mut phases: Vec<&SessionState> = states.iter().collect();
    phases.dedup();
    assert_eq!(
        phases,
        [
            &SessionState::Connecting { attempt: 0 },
            &SessionState::Live,
            &SessionState::StreamEnded,
            &SessionState::Live,
            &SessionState::StreamEnded,
            &SessionState::Ended,
        ],
        "{states:?}"
    );
    eprintln!("figures: live again {back_after:?} after the stream came back; {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_can_end_with_the_stream() {
    let hub = loopback_hub::start().await;
    let publishing = spawn_publish(&hub, "once");
    wait_live_on_hub(&hub, "once").await;
    let mut config = WatchConfig::new(format!("http://{}/whep/once", hub.http));
    config.on_stream_end = OnStreamEnd::End;
    let (watcher, events) = StreamSession::watch(config).expect("watch");
    let recorded = record(events);
    publishing.await.expect("publish");
    let state = watcher
        .wait_for_state(Duration::from_secs(10), SessionState::is_terminal)
        .await;
    assert_eq!(state, SessionState::Ended);
    let (states, errors) = recorded.await.expect("events");
    assert!(errors.is_empty(), "no error events: {errors:?}");
    assert_eq!(
        states,
        [
            SessionState::Connecting { attempt: 0 },
            SessionState::Live,
            SessionState::StreamEnded,
            SessionState::Ended,
        ]
    );
}
