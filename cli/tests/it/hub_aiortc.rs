//! The hub's WHEP egress seen by an independent WebRTC stack that decodes: a clip published
//! into the hub over RTMP (H.264 Constrained Baseline + AAC) is watched by aiortc
//! (`tests/peers/aiortc_whep_viewer.py`), which decodes the H.264 it passes through and
//! the Opus it transcodes from AAC.

use crate::common;
use crate::hub_harness;

use std::process::Command;
use std::time::Duration;

use common::{peers_python, poll_until, tempdir};
use hub_harness::{Hub, baseline_clip, publish, workspace_root};
use serde_json::Value;

const FPS: f64 = 30.0;
const WATCH_S: u32 = 8;

/// Runs the viewer for `WATCH_S` seconds against `url` and returns its JSON report.
fn watch(url: &str) -> Value {
    let script = workspace_root().join("tests/peers/aiortc_whep_viewer.py");
    let out = Command::new(peers_python())
        .arg(script)
        .arg(url)
        .args(["--duration", &WATCH_S.to_string()])
        .output()
        .expect("running the aiortc viewer");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "aiortc viewer failed: {stderr}{stdout}"
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("aiortc viewer output ({e}): {stdout}\n{stderr}"))
}

#[test]
fn aiortc_decodes_video_and_audio_of_a_published_stream() {
    let dir = tempdir();
    let clip = dir.path().join("clip.flv");
    baseline_clip(&clip, 60);
    let hub = Hub::start("aiortc test secret");
    let name = "cam1";
    let _publisher = publish(&hub, &clip, name);
    hub.wait_live(name, Duration::from_secs(15));
    let listed = hub.wait_audio(name, Duration::from_secs(3));
    assert_eq!(listed["video"]["codec"], "h264", "{listed}");
    assert_eq!(listed["audio"]["codec"], "opus", "{listed}");
    assert_eq!(listed["whep"], format!("/whep/{name}"));

    let report = watch(&hub.whep_url(name));
    eprintln!("aiortc viewer: {report}");
    let num = |key: &str| {
        report[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing: {report}"))
    };
    assert_eq!(report["video_codec"], "h264", "{report}");
    assert_eq!(report["audio_codec"], "opus", "{report}");
    assert_eq!((num("width"), num("height")), (640.0, 360.0));
    // The clip has a keyframe every second: the first picture may wait for one.
    let first_frame_ms = num("first_frame_ms");
    assert!(
        first_frame_ms < 3000.0,
        "first frame after {first_frame_ms} ms"
    );
    // Every frame published while we watched was decoded, give or take scheduling on 2 cores.
    let published = num("watched_ms") / 1000.0 * FPS;
    let decoded = num("video_frames");
    assert!(
        decoded >= 0.85 * published,
        "decoded {decoded} video frames of about {published:.0} published while watching"
    );
    assert!(
        decoded <= published + FPS,
        "{decoded} frames in {published:.0}: duplicates?"
    );
    // Opus: 20 ms frames, 50 per second, at 48 kHz.
    let audio = num("audio_frames");
    assert!(audio > 0.0, "no audio frame decoded: {report}");
    assert!(
        audio >= 0.8 * 50.0 * (f64::from(WATCH_S) - first_frame_ms / 1000.0),
        "{audio} audio frames in {WATCH_S} s"
    );
    assert_eq!(report["audio_sample_rate"], 48000);
    // DELETE ended the session, and the hub forgot the viewer at once.
    assert_eq!(
        report["delete_status"].as_u64().map(|s| s / 100),
        Some(2),
        "{report}"
    );
    poll_until("the hub to drop the viewer", Duration::from_secs(3), || {
        hub.stream(name)
            .is_some_and(|s| s["whep_viewers"].as_u64() == Some(0))
    });

    // A stream that is not live: 404 to a real offer.
    let out = Command::new(peers_python())
        .arg(workspace_root().join("tests/peers/aiortc_whep_viewer.py"))
        .arg(hub.whep_url("nobody"))
        .args(["--duration", "1"])
        .output()
        .expect("running the aiortc viewer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("answered 404"),
        "{stderr}"
    );
}
