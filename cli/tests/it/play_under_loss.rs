//! Playing over a lossy link: an aiortc WHEP sender and `streamhub play` on a host of
//! the test's own (a namespace with only loopback) that drops a share of every UDP
//! packet it receives (nftables `numgen`), media and RTCP alike. Retransmission
//! (NACK, answered over RTX) must repair the losses: the recording decodes without an
//! error and the frame counters are contiguous.

use crate::common;
use streamhub_test_support::netlab;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{
    assert_counters_complete, decoded_frame_counters, free_port, loss_summary, peers_python,
    poll_until, tempdir,
};
use netlab::LoopbackHost;

/// A loopback-only host, with `lossy` applied, and an aiortc WHEP sender (H.264) on
/// `port`.
fn host_with_sender(lossy: impl FnOnce(&LoopbackHost)) -> (LoopbackHost, u16) {
    let mut host = LoopbackHost::new();
    lossy(&host);
    let port = free_port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/peers/aiortc_whep_sender.py");
    host.spawn(
        "aiortc WHEP server",
        host.command(peers_python().to_str().expect("utf-8 path"))
            .arg(script)
            .args(["--port", &port.to_string(), "--codec", "h264"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    host.wait_listen(port);
    (host, port)
}

/// Starts `streamhub play` for `seconds` on `host`, recording to `dir/played.h264` and
/// logging each video frame's arrival to `dir/frames.jsonl`; its PID.
fn start_play(host: &mut LoopbackHost, port: u16, seconds: u32, dir: &Path) -> u32 {
    let frames = dir.join("frames.jsonl");
    host.start_play(
        common::STREAMHUB,
        &format!("http://127.0.0.1:{port}/whep/test"),
        seconds,
        dir,
        &["--latency".as_ref(), frames.as_os_str()],
    )
}

/// Waits for `play` to end; its `--json` report and the decoded frame counters (ffmpeg
/// with every decoder message fatal: a corrupt picture fails here).
fn finish_play(host: &mut LoopbackHost, play: u32, dir: &Path) -> (serde_json::Value, Vec<u16>) {
    let report = host.finish_play(play, dir, Duration::from_secs(40));
    let counters = decoded_frame_counters(&dir.join("played.h264"), 320, 240);
    (report, counters)
}

/// Plays 10 s of H.264 from aiortc on a host made lossy by `lossy`. The handshakes
/// suffer too: each lost DTLS flight costs the sender's retransmission timer (1 s,
/// then 2 s, 4 s), which the player waits out within its negotiation timeout (10 s)
/// instead of calling it a stall.
fn play_with_loss(lossy: impl FnOnce(&LoopbackHost)) -> (serde_json::Value, Vec<u16>) {
    let dir = tempdir();
    let (mut host, port) = host_with_sender(lossy);
    let play = start_play(&mut host, port, 10, dir.path());
    finish_play(&mut host, play, dir.path())
}

/// Video frames logged by `--latency` so far.
fn frames_logged(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("frames.jsonl"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// 2 % loss, one packet in 50 (spread evenly, so that video packets are certain to be
/// lost and the repairs are certain to be exercised).
#[test]
fn two_percent_loss_is_repaired_by_retransmission() {
    let (report, counters) = play_with_loss(|host| host.drop_every_udp(50));
    eprintln!("{}", loss_summary("2 % loss", &report, &counters));
    assert_counters_complete(&counters);
    let span = usize::from(counters[counters.len() - 1] - counters[0]) + 1;
    assert!(
        counters.len() * 100 >= span * 99,
        "{} of {span} frames: {report}",
        counters.len()
    );
    assert!(report["nacks_sent"].as_u64() > Some(0), "{report}");
    assert!(report["retransmissions"].as_u64() > Some(0), "{report}");
    assert!(report["packets_recovered"].as_u64() > Some(0), "{report}");
}

/// 5 % loss: still no decoder error, and a frame retransmission could not save is a
/// gap in the counters that a keyframe ends within 1 s (30 frames).
#[test]
fn five_percent_loss_never_corrupts_and_what_is_lost_ends_at_a_keyframe_within_1_s() {
    let (report, counters) = play_with_loss(|host| host.drop_udp(5));
    eprintln!("{}", loss_summary("5 % loss", &report, &counters));
    assert!(counters.len() >= 90, "{report}");
    assert!(
        counters.windows(2).all(|w| w[1] > w[0]),
        "counters out of order: {counters:?}"
    );
    for pair in counters.windows(2) {
        assert!(
            pair[1] - pair[0] <= 30,
            "frames {}..{} lost: more than 1 s without a picture: {report}",
            pair[0],
            pair[1]
        );
    }
    assert!(report["retransmissions"].as_u64() > Some(0), "{report}");
    assert!(report["freezes"].is_u64(), "freezes are counted: {report}");
}

/// Everything dropped for 2 s mid-stream: a decodable picture again within 1 s of the
/// end of the burst, and a clean decode of the whole recording.
#[test]
fn a_two_second_blackout_recovers_to_a_decodable_picture_within_1_s() {
    let dir = tempdir();
    let (mut host, port) = host_with_sender(|_| ());
    let play = start_play(&mut host, port, 9, dir.path());
    poll_until(
        "30 frames before the blackout",
        Duration::from_secs(15),
        || frames_logged(dir.path()) >= 30,
    );
    host.drop_udp(100);
    std::thread::sleep(Duration::from_secs(2)); // the blackout itself, not a wait for a condition
    let during = frames_logged(dir.path());
    host.drop_udp(0);
    let restored = Instant::now();
    poll_until("a frame after the blackout", Duration::from_secs(5), || {
        frames_logged(dir.path()) > during
    });
    let recovered = restored.elapsed();
    let (report, counters) = finish_play(&mut host, play, dir.path());
    eprintln!(
        "blackout: first frame {recovered:?} after the link came back; {}",
        loss_summary("2 s blackout", &report, &counters)
    );
    assert!(
        recovered <= Duration::from_secs(1),
        "{recovered:?}: {report}"
    );
    assert!(
        counters.windows(2).all(|w| w[1] > w[0]),
        "counters out of order: {counters:?}"
    );
    assert!(
        report["freezes"].as_u64() >= Some(1),
        "the blackout is a freeze: {report}"
    );
    assert!(report["frozen_ms"].as_u64() >= Some(1500), "{report}");
}
