//! Playing from a server on the same machine must never need a route to the internet:
//! on a host whose only network is loopback (a namespace of the test's own with `lo`
//! and no route), a hub on 127.0.0.1 plays, and the pictures are the published ones.

use crate::common;
use crate::hub_harness;
use streamhub_test_support::netlab;

use std::time::Duration;

use common::{STREAMHUB, free_port, tempdir};
use hub_harness::baseline_clip;
use netlab::LoopbackHost;
use streamhub_test_support::pictures::{assert_contiguous_run, picture_hashes};

#[test]
fn a_host_with_only_loopback_and_no_route_plays_from_a_local_hub() {
    let dir = tempdir();
    let clip = dir.path().join("clip.flv");
    baseline_clip(&clip, 10);
    let mut host = LoopbackHost::new();
    let routes = host
        .command("ip")
        .args(["route", "show"])
        .output()
        .expect("ip route");
    assert!(routes.stdout.is_empty(), "the host has a route: {routes:?}");

    let (http, rtmp) = (free_port(), free_port());
    host.start_hub_publishing(STREAMHUB, (http, rtmp), &clip, "cam");

    let play = host.start_play(
        STREAMHUB,
        &format!("http://127.0.0.1:{http}/whep/cam"),
        4,
        dir.path(),
        &[],
    );
    let report = host.finish_play(play, dir.path(), Duration::from_secs(30));
    let recording = dir.path().join("played.h264");

    let source = picture_hashes(&clip);
    let played = picture_hashes(&recording);
    assert!(played.len() >= 90, "{} pictures: {report}", played.len());
    let start = assert_contiguous_run(&source, &played);
    assert_eq!(start % 30, 0, "the first picture played is a keyframe");
    // Every picture recorded decodes; the player may have assembled more that were
    // still queued when `--duration` ended the recording, and no others.
    assert_eq!(
        report["frames_recorded"].as_u64(),
        Some(played.len() as u64)
    );
    let assembled = report["video_frames"].as_u64().unwrap_or(0);
    let waiting = report["frames_waiting"].as_u64().unwrap_or(0);
    let recorded = played.len() as u64;
    assert!(
        (recorded..=recorded + waiting).contains(&assembled),
        "{assembled} frames assembled, {recorded} recorded, {waiting} waiting: {report}"
    );
    assert_eq!(report["packets_lost"], 0, "{report}");
    assert_eq!(report["audio_codec"], "opus", "{report}");
    eprintln!(
        "loopback-only host: {} pictures bit-identical from picture {start}, first frame {} ms",
        played.len(),
        report["first_frame_ms"]
    );
}
