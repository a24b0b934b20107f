//! A viewer whose network changes while it watches (Wi-Fi to cellular: its address is
//! gone, a new one comes): the player notices the dead path within ICE's 2 s
//! disconnected timeout, restarts ICE through the hub by PATCH (RFC 9725 §4.3.2) with
//! candidates gathered on sockets bound anew, and the picture comes back, all within
//! the same playback. The hub runs in a namespace of the test's own, the player in
//! another, joined by a veth pair; the player's side is renumbered mid-stream.

use crate::common;
use crate::hub_harness;
use streamhub_test_support::netlab;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{STREAMHUB, poll_until, tempdir};
use hub_harness::baseline_clip;
use netlab::NetLab;
use streamhub_test_support::pictures::picture_hashes;

/// `(t_ms, media_ms)` of each video frame `--latency` logged so far.
fn frames(log: &Path) -> Vec<(u64, u64)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|v| Some((v["t_ms"].as_u64()?, v["media_ms"].as_u64()?)))
        .collect()
}

#[test]
fn a_viewer_whose_address_changes_restarts_ice_and_plays_on() {
    let dir = tempdir();
    let clip = dir.path().join("clip.flv");
    baseline_clip(&clip, 40);
    let mut lab = NetLab::new();
    let far = lab.far.clone();
    let near = lab.near.clone();
    let far_ip = lab.far_ip.clone();
    lab.spawn(
        "streamhub hub",
        lab.command(&far, STREAMHUB)
            .args(["hub", "--secret", "s"])
            .args(["--http", &format!("{far_ip}:8080")])
            .args(["--rtmp", &format!("{far_ip}:1935")])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("hub.log")).expect("log")),
    );
    lab.wait_listen_far(8080);
    lab.wait_listen_far(1935);
    lab.spawn(
        "streamhub publish",
        lab.command(&far, STREAMHUB)
            .arg("publish")
            .arg(&clip)
            .arg(format!("rtmp://{far_ip}:1935/live/demo"))
            .arg("--realtime")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    poll_until("the stream is live", Duration::from_secs(10), || {
        lab.get_far(&format!("http://{far_ip}:8080/api/streams"))
            .contains("\"demo\"")
    });
    let log = dir.path().join("frames.jsonl");
    let recording = dir.path().join("played.h264");
    let play = lab.spawn(
        "streamhub play",
        lab.command(&near, STREAMHUB)
            .env("STREAMHUB_LOG", "streamhub=info")
            .arg("play")
            .arg(format!("http://{far_ip}:8080/whep/demo"))
            .args(["--duration", "14", "--json", "--latency"])
            .arg(&log)
            .arg("--record")
            .arg(&recording)
            .stdout(std::fs::File::create(dir.path().join("report.json")).expect("report"))
            .stderr(std::fs::File::create(dir.path().join("play.log")).expect("log")),
    );
    poll_until(
        "3 s of frames before the change",
        Duration::from_secs(15),
        || frames(&log).len() >= 90,
    );
    let before = frames(&log).len();
    let changed_at = Instant::now();
    let new_ip = lab.renumber_near();
    let status = lab
        .wait(play, Duration::from_secs(40))
        .expect("streamhub play ended within 40 s");
    let play_log = std::fs::read_to_string(dir.path().join("play.log")).unwrap_or_default();
    assert!(status.success(), "streamhub play failed: {play_log}");
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("report.json")).expect("report"),
    )
    .unwrap_or_else(|e| panic!("the report is not JSON ({e}); log: {play_log}"));
    let all = frames(&log);
    let (gap_ms, resumed_media_ms) = all
        .windows(2)
        .map(|w| (w[1].0 - w[0].0, w[1].1))
        .max()
        .unwrap_or((0, 0));
    let after = all.len() - before;
    eprintln!(
        "renumbered to {new_ip} after {before} frames ({:?} ago at the end): {} ICE \
         restart(s), longest gap {gap_ms} ms (resumed at media {resumed_media_ms} ms), {after} \
         frames after the change, {} frames in all, {} keyframe requests",
        changed_at.elapsed(),
        report["ice_restarts"],
        all.len(),
        report["keyframe_requests"],
    );
    assert!(
        report["ice_restarts"].as_u64() >= Some(1),
        "{report}\n{play_log}"
    );
    // The change costs the 2 s disconnected timeout, the restart and a keyframe (the
    // clip has one a second): well under the 5 s stall timeout.
    assert!(gap_ms < 5000, "{gap_ms} ms without a picture: {play_log}");
    assert!(
        after >= 150,
        "{after} frames after the change: {report}\n{play_log}"
    );
    // Every picture played decodes cleanly (ffmpeg with decoder errors fatal).
    assert_eq!(picture_hashes(&recording).len(), all.len());
}
