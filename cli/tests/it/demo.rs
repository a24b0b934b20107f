//! `streamhub demo`: the README's main command, end to end.

use crate::common;

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
    // The viewer's session read Alice's goodbye as the end of the stream, not as a lost
    // connection.
    assert_eq!(report["viewer_end"], "the stream ended", "{report}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bob: the stream ended"), "{stderr}");
    assert_wording(&stderr);
    eprintln!("demo: {report} in {took:?}");
}

/// Nothing in a healthy demo's output speaks of time-outs or unreachable servers.
fn assert_wording(text: &str) {
    for word in ["timed out", "unreachable", "connection lost"] {
        assert!(
            !text.contains(word),
            "{word:?} in the demo's output:\n{text}"
        );
    }
}

#[test]
fn the_summary_ends_with_the_end_of_the_stream() {
    let (output, _) = streamhub(&["demo", "--duration", "4"], Duration::from_secs(60));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.ends_with("the stream ended"),
        "last line {last:?}:\n{stdout}"
    );
    assert_wording(&stdout);
    assert_wording(&stderr);
}

#[test]
fn a_bad_duration_is_refused_with_one_line() {
    let (output, _) = streamhub(&["demo", "--duration", "0"], Duration::from_secs(10));
    let line = common::error_line(&output);
    assert!(line.contains("--duration"), "{line}");
}
