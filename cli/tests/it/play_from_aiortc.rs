//! `streamhub play` against a WHEP server on an independent WebRTC stack (aiortc),
//! judged by ffmpeg: the recording must decode without a single error, and the frame
//! counters stamped into the pictures tell how many frames arrived.

use crate::common;

use std::time::{Duration, Instant};

use common::*;

fn play(server: &AiortcWhep, extra: &[&str], limit: Duration) -> (std::process::Output, Duration) {
    let url = server.url();
    let mut args = vec!["play", url.as_str(), "--json"];
    args.extend_from_slice(extra);
    streamhub(&args, limit)
}

fn check_codec(codec: &str, file: &str) {
    let _one = one_at_a_time();
    let server = AiortcWhep::start(&["--codec", codec]);
    let dir = tempdir();
    let recording = dir.path().join(file);
    let (out, _) = play(
        &server,
        &["--duration", "4", "--record", recording.to_str().unwrap()],
        Duration::from_secs(30),
    );
    let report = report(&out);
    assert_eq!(report["video_codec"], codec);
    assert_eq!(report["audio_codec"], "opus");
    assert!(
        report["audio_frames"].as_u64().unwrap_or(0) >= 100,
        "{report}"
    );
    let counters = decoded_frame_counters(&recording, 320, 240);
    assert_eq!(
        Some(counters.len() as u64),
        report["frames_recorded"].as_u64()
    );
    assert_counters_complete(&counters);
    // Prompt, judged on the sender's clock (its counter starts at 0 when the track
    // starts): the first picture is one of the sender's first second. Wall time is only
    // a bound against a hang, as a loaded CI machine slows both sides.
    let first = counters.first().copied().unwrap_or(u16::MAX);
    assert!(first < 30, "the first picture is frame {first}: {report}");
    assert!(
        report["first_frame_ms"].as_u64().unwrap() < 5000,
        "{report}"
    );
    // DELETE reached the server when the duration ended.
    assert_eq!(server.stats()["deletes"], 1);
}

#[test]
fn h264_from_aiortc_decodes_cleanly_and_arrives_complete() {
    check_codec("h264", "video.h264");
}

#[test]
fn vp8_from_aiortc_decodes_cleanly_and_arrives_complete() {
    check_codec("vp8", "video.ivf");
}

/// The server withholds its encoder's first frames (the initial IDR), so the viewer starts
/// mid-GOP as when joining a running stream. The encoders' next natural keyframe is 8 s
/// (x264, keyint 250 at 30 fps) or 100 s (libvpx, 3000 frames) away, so a first frame
/// before the sender's frame 90 (3 s of its clock) can only come from a keyframe request
/// (PLI/FIR). Judged on the decoded counters, which leave out the set-up (ICE, DTLS, the
/// sender's start) that a loaded machine stretches; the wall time is printed. Usually
/// the first picture is frame 3 to 6.
#[test]
fn keyframe_requests_get_a_first_frame_long_before_the_next_natural_keyframe() {
    let _one = one_at_a_time();
    for (codec, file) in [("h264", "video.h264"), ("vp8", "video.ivf")] {
        let server = AiortcWhep::start(&["--codec", codec, "--drop-first-frames", "3"]);
        let dir = tempdir();
        let recording = dir.path().join(file);
        let (out, _) = play(
            &server,
            &["--duration", "2", "--record", recording.to_str().unwrap()],
            Duration::from_secs(30),
        );
        let report = report(&out);
        let first_ms = report["first_frame_ms"].as_u64().expect("a first frame");
        let requests = server.stats()["keyframe_requests"].as_u64().unwrap();
        let counters = decoded_frame_counters(&recording, 320, 240);
        let first = counters.first().copied().unwrap_or(u16::MAX);
        eprintln!(
            "{codec}: first picture is frame {first}, after {first_ms} ms, {requests} keyframe \
             requests"
        );
        assert!(
            (3..90).contains(&first),
            "{codec}: the first picture is frame {first} (3 withheld; the next natural \
             keyframe is frame 250 or 3000)"
        );
        assert!(first_ms < 5000, "{codec}: first frame after {first_ms} ms");
        assert!(requests >= 1);
    }
}

#[test]
fn refusals_and_broken_servers_are_typed_errors_within_the_timeout() {
    let _one = one_at_a_time();
    for (mode, expected) in [
        ("401", "answered 401"),
        ("404", "answered 404"),
        ("500", "answered 500"),
        ("bad-sdp", "bad SDP answer"),
        ("hang", "timed out"),
    ] {
        let server = AiortcWhep::start(&["--mode", mode]);
        let (out, elapsed) = play(&server, &["--timeout", "2"], Duration::from_secs(20));
        let line = error_line(&out);
        assert!(line.contains(expected), "{mode}: {line}");
        assert!(elapsed < Duration::from_secs(5), "{mode}: took {elapsed:?}");
    }
    // A wrong token is refused; the right one plays.
    let server = AiortcWhep::start(&["--token", "sesame"]);
    let (out, _) = play(
        &server,
        &["--token", "wrong", "--timeout", "2"],
        Duration::from_secs(20),
    );
    assert!(error_line(&out).contains("401"));
    let (out, _) = play(
        &server,
        &["--token", "sesame", "--duration", "1"],
        Duration::from_secs(20),
    );
    report(&out);
    // Nobody listening.
    let url = format!("http://127.0.0.1:{}/whep/x", free_port());
    let (out, elapsed) = streamhub(&["play", &url, "--timeout", "2"], Duration::from_secs(20));
    assert!(error_line(&out).contains("Connection refused"));
    assert!(elapsed < Duration::from_secs(3));
}

#[test]
fn ctrl_c_sends_delete_and_exits_cleanly() {
    let _one = one_at_a_time();
    let server = AiortcWhep::start(&["--codec", "h264"]);
    let mut player = Proc::spawn(
        "streamhub play",
        std::process::Command::new(STREAMHUB)
            .args(["play", &server.url(), "--json"])
            .stdout(std::process::Stdio::piped()),
    );
    poll_until("the session to exist", Duration::from_secs(10), || {
        server.stats()["connections"] == 1
    });
    // Let media flow for a moment, then interrupt like a terminal would.
    let started = Instant::now();
    poll_until("a second of playback", Duration::from_secs(5), || {
        started.elapsed() >= Duration::from_secs(1)
    });
    let status = std::process::Command::new("kill")
        .args(["-INT", &player.pid().to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let exit = player.wait_exit(Duration::from_secs(10));
    assert!(exit.success(), "{exit}");
    assert_eq!(server.stats()["deletes"], 1);
}

#[test]
fn follows_307_and_honours_retry_after() {
    let _one = one_at_a_time();
    // 307 to another path: the offer is posted again there, Location resolves against it.
    let server = AiortcWhep::start(&["--mode", "redirect"]);
    let (out, _) = play(&server, &["--duration", "1"], Duration::from_secs(30));
    assert!(report(&out)["video_frames"].as_u64().unwrap() > 0);
    let stats = server.stats();
    assert_eq!(
        (stats["posts"].as_u64(), stats["deletes"].as_u64()),
        (Some(2), Some(1))
    );
    // 503 with Retry-After: 1 on the first POST: the player waits and tries again.
    let server = AiortcWhep::start(&["--mode", "busy-once"]);
    let started = Instant::now();
    let (out, _) = play(&server, &["--duration", "1"], Duration::from_secs(30));
    assert!(report(&out)["video_frames"].as_u64().unwrap() > 0);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "did not wait out Retry-After"
    );
    assert_eq!(server.stats()["posts"], 2);
}

/// A sender whose encoder restarts mid-stream takes new SSRCs (media and RTX) that its
/// answer never named, and starts again at a keyframe. The player follows the new
/// stream: the recording decodes cleanly, and at most half a second is lost at the
/// change (measured: frames 60 and 61 of 150, for H.264 and VP8).
#[test]
fn a_sender_that_changes_its_ssrc_mid_stream_plays_on() {
    let _one = one_at_a_time();
    for (codec, file) in [("h264", "video.h264"), ("vp8", "video.ivf")] {
        let server = AiortcWhep::start(&["--codec", codec, "--change-ssrc-after", "60"]);
        let dir = tempdir();
        let recording = dir.path().join(file);
        let (out, _) = play(
            &server,
            &["--duration", "5", "--record", recording.to_str().unwrap()],
            Duration::from_secs(30),
        );
        let report = report(&out);
        let stats = server.stats();
        let changed_at = stats["ssrc_changed_at"]
            .as_u64()
            .expect("the sender changed its SSRC") as u16;
        let counters = decoded_frame_counters(&recording, 320, 240);
        let after: Vec<u16> = counters
            .iter()
            .copied()
            .filter(|&c| c >= changed_at)
            .collect();
        eprintln!(
            "{codec}: SSRC changed at frame {changed_at}; {} frames decoded, {} after the \
             change ({:?}..{:?}); {report}",
            counters.len(),
            after.len(),
            after.first(),
            after.last()
        );
        // In order and ≥ 95 % complete through the change; the new stream's first
        // packets, which no track owned yet, cost at most half a second (the player
        // routes the new SSRC and asks it for a keyframe).
        assert_counters_complete(&counters);
        let resumed = after.first().copied().unwrap_or(u16::MAX);
        assert!(
            resumed <= changed_at + 15,
            "{codec}: the new SSRC's first picture is frame {resumed}, changed at {changed_at}"
        );
        assert!(
            after.len() >= 45,
            "{codec}: only {} frames after the SSRC change",
            after.len()
        );
    }
}
