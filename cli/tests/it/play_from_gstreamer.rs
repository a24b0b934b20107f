//! `streamhub play` against GStreamer's webrtcbin, a WHEP sender whose answer signals no
//! SSRCs and whose packets carry no MID extension (audio and video BUNDLEd): the player
//! must route them by payload type (RFC 8843 §9.2). Judged by ffmpeg: the recording
//! decodes without an error and the frame counters stamped into the pictures are
//! contiguous.

use crate::common;

use std::time::Duration;

use common::*;

fn check_codec(codec: &str, file: &str) {
    let _one = one_at_a_time();
    let dir = tempdir();
    let answer = dir.path().join("answer.sdp");
    let server = GstWhep::start(&["--codec", codec, "--answer-out", answer.to_str().unwrap()]);
    let recording = dir.path().join(file);
    let (out, _) = streamhub(
        &[
            "play",
            &server.url(),
            "--json",
            "--duration",
            "6",
            "--record",
            recording.to_str().unwrap(),
        ],
        Duration::from_secs(40),
    );
    let report = report(&out);
    // The sender really is the case under test: nothing in its answer names an SSRC.
    let answer = std::fs::read_to_string(&answer).expect("the server's answer");
    assert!(!answer.contains("a=ssrc"), "{answer}");
    assert!(
        !answer.contains("urn:ietf:params:rtp-hdrext:sdes:mid"),
        "{answer}"
    );
    assert_eq!(report["video_codec"], codec, "{report}");
    assert_eq!(report["audio_codec"], "opus", "{report}");
    // 6 s of 20 ms Opus packets is 300; allow for the start.
    assert!(
        report["audio_frames"].as_u64().unwrap_or(0) >= 250,
        "{report}"
    );
    let counters = decoded_frame_counters(&recording, 320, 240);
    assert_eq!(
        Some(counters.len() as u64),
        report["frames_recorded"].as_u64()
    );
    eprintln!(
        "from GStreamer, {codec}: {} frames decoded, counters {}..{}, first frame {} ms, {} \
         keyframe requests, {} packets lost",
        counters.len(),
        counters.first().copied().unwrap_or(0),
        counters.last().copied().unwrap_or(0),
        report["first_frame_ms"],
        report["keyframe_requests"],
        report["packets_lost"],
    );
    assert_counters_complete(&counters);
    // 6 s at 30 fps: at least 95 % of the 180 frames of the window.
    assert!(
        counters.len() >= 171,
        "{} frames of 180: {report}",
        counters.len()
    );
    // Prompt, judged on the sender's clock (its counter starts at 0 with the session):
    // a player that missed the first keyframe and asked for none would start at the
    // encoder's next periodic one, frame 60 (key-int-max). Wall time is only a bound
    // against a hang: x265 starting on a loaded CI machine took 1087 ms once.
    let first = counters.first().copied().unwrap_or(u16::MAX);
    assert!(first < 60, "the first picture is frame {first}: {report}");
    assert!(
        report["first_frame_ms"].as_u64().unwrap() < 5000,
        "{report}"
    );
    assert_eq!(report["packets_lost"], 0, "{report}");
    assert_eq!(server.stats()["deletes"], 1);
}

#[test]
fn h264_from_gstreamer_without_signalled_ssrcs_decodes_cleanly_and_arrives_complete() {
    check_codec("h264", "video.h264");
}

/// H.265 (RFC 7798) from x265 through rtph265pay: aggregation packets with VPS, SPS
/// and PPS, fragmented IRAP pictures.
#[test]
fn h265_from_gstreamer_decodes_cleanly_and_arrives_complete() {
    check_codec("h265", "video.h265");
}

#[test]
fn vp8_from_gstreamer_without_signalled_ssrcs_decodes_cleanly_and_arrives_complete() {
    check_codec("vp8", "video.ivf");
}

/// Connected, but the sender's video never comes (or nothing at all): an error naming
/// what was seen, a non-zero exit, within the stall timeout.
#[test]
fn a_connected_but_silent_sender_is_an_error_naming_what_arrived() {
    let _one = one_at_a_time();
    for (mode, seen) in [
        ("silent-video", "audio track (opus)"),
        ("silent", "0 RTP packets arrived; no track started"),
    ] {
        let server = GstWhep::start(&["--mode", mode]);
        let (out, took) = streamhub(
            &["play", &server.url(), "--json", "--stall-timeout", "3"],
            Duration::from_secs(30),
        );
        let line = error_line(&out);
        assert!(line.contains("no video frame for 3s"), "{mode}: {line}");
        assert!(line.contains("ICE and DTLS up"), "{mode}: {line}");
        assert!(line.contains(seen), "{mode}: {line}");
        assert!(
            line.contains("the answer promised audio (payload types 111) and video"),
            "{mode}: {line}"
        );
        assert!(out.stdout.is_empty(), "no report on failure");
        // 3 s after connecting, plus the negotiation.
        assert!(took < Duration::from_secs(6), "{mode}: took {took:?}");
    }
    // --duration runs out first: still an error, not an empty success.
    let server = GstWhep::start(&["--mode", "silent"]);
    let (out, _) = streamhub(
        &["play", &server.url(), "--json", "--duration", "2"],
        Duration::from_secs(30),
    );
    let line = error_line(&out);
    assert!(line.contains("nothing played in the --duration"), "{line}");
    assert!(line.contains("0 RTP packets arrived"), "{line}");
    assert!(out.stdout.is_empty(), "no report on failure");
}
