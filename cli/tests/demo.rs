//! `streamhub demo`: the README's main command, end to end.

mod common;

use std::time::Duration;

use common::streamhub;

#[test]
fn the_demo_is_healthy_and_reports_its_figures() {
    let (output, took) = streamhub(
        &["demo", "--duration", "10", "--json"],
        Duration::from_secs(60),
    );
    let report = common::report(&output);
    let published = report["published_video_frames"]
        .as_u64()
        .expect("published");
    let played = report["played_video_frames"].as_u64().expect("played");
    let sent = report["chat_sent"].as_u64().expect("chat_sent");
    let received = report["chat_received"].as_u64().expect("chat_received");
    // 10 s of a 30 fps clip.
    assert!((290..=301).contains(&published), "{report}");
    assert!(
        played * 10 >= published * 9,
        "played {played} of {published}"
    );
    assert!(sent >= 8, "{report}");
    assert_eq!(received, sent, "every chat message received");
    let p50 = report["latency_ms_p50"].as_f64().expect("p50");
    let p95 = report["latency_ms_p95"].as_f64().expect("p95");
    assert!(p50 > 0.0 && p50 <= p95, "{report}");
    assert!(report["latency_samples"].as_u64() > Some(200), "{report}");
    assert_eq!(report["healthy"], true);
    eprintln!("demo: {report} in {took:?}");
}

#[test]
fn a_bad_duration_is_refused_with_one_line() {
    let (output, _) = streamhub(&["demo", "--duration", "0"], Duration::from_secs(10));
    let line = common::error_line(&output);
    assert!(line.contains("--duration"), "{line}");
}
