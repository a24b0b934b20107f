//! The hub as a user meets it: `streamhub publish` into its RTMP ingest, `streamhub play`
//! out of its WHEP egress, pictures compared by ffmpeg; stream keys, second publishers
//! and streams that are not live.

use crate::common;
use crate::hub_harness;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Proc, STREAMHUB, poll_until, streamhub, tempdir};
use hub_harness::{Hub, baseline_clip, publish};
use streamhub_test_support::pictures::{assert_contiguous_run, picture_hashes};

#[test]
fn published_pictures_play_back_bit_identical_from_the_first_keyframe() {
    let dir = tempdir();
    let clip = dir.path().join("clip.flv");
    baseline_clip(&clip, 8);
    play_through_the_hub(&clip, "constrained baseline", 30);
}

/// Main profile with two B-frames between references and a 2 s GOP: pictures come out
/// in decode order, still bit-identical (RTP timestamps carry the presentation times).
#[test]
fn b_frames_play_back_bit_identical_too() {
    let dir = tempdir();
    let clip = dir.path().join("clip.flv");
    common::make_clip(&clip, 8, &[]);
    play_through_the_hub(&clip, "main", 60);
}

/// The same over the hub's RTMPS listener: `streamhub publish rtmps://… --ca-file`.
#[test]
fn publishing_over_rtmps_plays_back_bit_identical_too() {
    let dir = tempdir();
    let clip = dir.path().join("clip.flv");
    baseline_clip(&clip, 8);
    common::make_certificates(dir.path());
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server.key");
    let ca = dir.path().join("ca.pem");
    let hub = Hub::start_with(
        "s",
        &[
            "--rtmps",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().expect("utf-8 path"),
            "--tls-key",
            key.to_str().expect("utf-8 path"),
        ],
    );
    let rtmps = hub.rtmps.clone().expect("the hub printed its rtmps line");
    let url = format!("{rtmps}/demo");
    let publisher = Proc::spawn(
        "streamhub publish rtmps",
        Command::new(STREAMHUB)
            .arg("publish")
            .arg(&clip)
            .arg(&url)
            .arg("--realtime")
            .arg("--ca-file")
            .arg(&ca)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    play_from(&hub, publisher, &clip, "constrained baseline", 30);
}

fn play_through_the_hub(clip: &std::path::Path, profile: &str, gop: usize) {
    let hub = Hub::start("s");
    let publisher = publish(&hub, clip, "demo");
    play_from(&hub, publisher, clip, profile, gop);
}

/// Watches `demo` while `publisher` publishes `clip` into `hub`; checks every picture.
fn play_from(hub: &Hub, mut publisher: Proc, clip: &std::path::Path, profile: &str, gop: usize) {
    let dir = tempdir();
    poll_until("the stream is live", Duration::from_secs(10), || {
        hub.stream("demo")
            .is_some_and(|s| s["video_frames"].as_u64() > Some(45))
    });
    let live = hub.stream("demo").expect("live");
    assert_eq!(live["video"]["codec"], "h264");
    assert_eq!(live["video"]["profile"], profile);
    assert_eq!(live["video"]["width"], 640);
    assert_eq!(live["video"]["height"], 360);
    assert!(live["bitrate_kbps"].as_u64() > Some(100), "{live}");
    assert_eq!(live["whep"], "/whep/demo");
    assert_eq!(live["audio"]["codec"], "opus");
    assert_eq!(live["audio"]["source"], "aac");
    assert_eq!(live["audio"]["channels"], 1, "the clip's AAC is mono");

    // The viewer joins mid-stream and stays until the publisher finishes.
    let recording = dir.path().join("played.h264");
    let (output, _) = streamhub(
        &[
            "play",
            &hub.whep_url("demo"),
            "--record",
            recording.to_str().expect("utf-8 path"),
            "--json",
        ],
        Duration::from_secs(30),
    );
    let report = common::report(&output);
    publisher.wait_exit(Duration::from_secs(10));

    let source = picture_hashes(clip);
    let played = picture_hashes(&recording);
    let start = assert_contiguous_run(&source, &played);
    // The viewer started at a keyframe, and got everything to the end.
    assert_eq!(start % gop, 0, "the first picture played is a keyframe");
    assert_eq!(
        start + played.len(),
        source.len(),
        "the stream played to its end"
    );
    assert_eq!(report["video_frames"].as_u64(), Some(played.len() as u64));
    assert_eq!(report["packets_lost"], 0);
    // AAC from the publisher arrives as Opus: 50 packets of 20 ms per second watched.
    assert_eq!(report["audio_codec"], "opus");
    let audio = report["audio_frames"].as_u64().unwrap_or(0) as f64;
    // Audio flows from the join on; the pictures before it came from the cached group.
    let seconds = played.len().saturating_sub(gop) as f64 / 30.0;
    assert!(
        audio >= 0.8 * 50.0 * seconds,
        "{audio} Opus packets in {seconds} s"
    );
    eprintln!(
        "played {} of {} pictures (from picture {start}), first frame after {} ms",
        played.len(),
        source.len(),
        report["first_frame_ms"]
    );
}

#[test]
fn keys_second_publishers_and_streams_that_are_not_live() {
    let dir = tempdir();
    let clip = dir.path().join("clip.flv");
    baseline_clip(&clip, 6);
    let hub = Hub::start_with("s", &["--stream", "studio:k3y"]);

    // Not live: 404.
    let (output, _) = streamhub(
        &["play", &hub.whep_url("studio"), "--timeout", "5"],
        Duration::from_secs(20),
    );
    let line = common::error_line(&output);
    assert!(line.contains("404"), "{line}");

    // A keyed stream refuses its name as a key.
    let (output, _) = streamhub(
        &[
            "publish",
            clip.to_str().expect("utf-8 path"),
            &hub.rtmp_url("studio"),
        ],
        Duration::from_secs(20),
    );
    let line = common::error_line(&output);
    assert!(
        line.contains("refused") && line.contains("BadName"),
        "{line}"
    );
    assert!(hub.stream("studio").is_none());

    // The right key publishes it, under its name.
    let _first = publish(&hub, &clip, "k3y");
    poll_until("studio is live", Duration::from_secs(10), || {
        hub.stream("studio").is_some()
    });

    // A second publisher of a live stream is refused.
    let (output, _) = streamhub(
        &[
            "publish",
            clip.to_str().expect("utf-8 path"),
            &hub.rtmp_url("k3y"),
        ],
        Duration::from_secs(20),
    );
    let line = common::error_line(&output);
    assert!(line.contains("already publishing"), "{line}");
    // ... and the first one is untouched.
    let frames = hub.stream("studio").expect("still live")["video_frames"]
        .as_u64()
        .unwrap_or(0);
    poll_until("studio keeps going", Duration::from_secs(5), || {
        hub.stream("studio")
            .and_then(|s| s["video_frames"].as_u64())
            .is_some_and(|n| n > frames)
    });

    // A viewer of the live stream by its name gets pictures.
    let (output, _) = streamhub(
        &["play", &hub.whep_url("studio"), "--duration", "2", "--json"],
        Duration::from_secs(20),
    );
    let report = common::report(&output);
    assert!(report["video_frames"].as_u64() > Some(20), "{report}");
}

#[test]
fn a_viewer_that_vanishes_is_cleaned_up() {
    let dir = tempdir();
    let clip = dir.path().join("clip.flv");
    baseline_clip(&clip, 30);
    let hub = Hub::start("s");
    let _publisher = publish(&hub, &clip, "gone");
    poll_until("the stream is live", Duration::from_secs(10), || {
        hub.stream("gone").is_some()
    });
    let viewers = |hub: &Hub| {
        hub.stream("gone")
            .and_then(|s| s["whep_viewers"].as_u64())
            .unwrap_or(0)
    };
    let mut viewer = Proc::spawn(
        "play",
        Command::new(STREAMHUB)
            .args(["play", &hub.whep_url("gone")])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    poll_until("one viewer", Duration::from_secs(10), || viewers(&hub) == 1);
    // SIGKILL: no DELETE, no goodbye; only ICE consent stops.
    viewer.kill();
    let killed = std::time::Instant::now();
    poll_until("the viewer is gone", Duration::from_secs(20), || {
        viewers(&hub) == 0
    });
    eprintln!(
        "a killed viewer was cleaned up after {:?}",
        killed.elapsed()
    );
    // A viewer that leaves properly is gone at once.
    let (output, _) = streamhub(
        &["play", &hub.whep_url("gone"), "--duration", "1"],
        Duration::from_secs(20),
    );
    assert!(output.status.success());
    poll_until("the DELETEd viewer is gone", Duration::from_secs(2), || {
        viewers(&hub) == 0
    });
}

#[test]
fn garbage_on_the_rtmp_port_is_dropped_and_the_hub_keeps_serving() {
    use std::io::{Read, Write};
    let mut hub = Hub::start("s");
    let addr = hub
        .rtmp
        .strip_prefix("rtmp://")
        .and_then(|rest| rest.split('/').next())
        .expect("rtmp address")
        .to_string();
    // Each attempt must be hung up on by the hub, not hang and not take the hub down.
    let attempts: Vec<(&str, Vec<u8>)> = vec![
        (
            "HTTP on the RTMP port",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        ("a handshake, then chunk garbage", {
            let mut bytes = vec![3u8];
            bytes.extend((0..1536 + 1536).map(|i| (i * 7 % 251) as u8));
            bytes.extend((0..4096).map(|i| (i * 31 % 256) as u8));
            bytes
        }),
        ("a truncated handshake", vec![3u8; 700]),
    ];
    for (what, bytes) in attempts {
        let mut socket = std::net::TcpStream::connect(&addr).expect("connect");
        socket
            .set_read_timeout(Some(Duration::from_secs(25)))
            .expect("timeout");
        let _ = socket.write_all(&bytes);
        if what == "a truncated handshake" {
            // Nothing more comes: the hub's handshake deadline must end it.
            let _ = socket.shutdown(std::net::Shutdown::Write);
        }
        let mut sink = Vec::new();
        let closed = socket.read_to_end(&mut sink);
        assert!(
            closed.is_ok()
                || closed
                    .as_ref()
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "{what}: the hub did not hang up ({closed:?})"
        );
    }
    let status = hub.proc.child.try_wait().expect("try_wait");
    assert!(status.is_none(), "the hub died: {status:?}\n{}", hub.log());
    // ... and a real publisher still goes live.
    let dir = tempdir();
    let clip = dir.path().join("clip.flv");
    baseline_clip(&clip, 3);
    let _publisher = publish(&hub, &clip, "after");
    poll_until(
        "a stream after the garbage",
        Duration::from_secs(10),
        || hub.stream("after").is_some(),
    );
}

/// 20 viewers join a running stream one after another (`streamhub play`, from its start
/// to its first decodable frame, on loopback): the median within 120 ms. The viewer
/// sends checks every 20 ms, and so does the hub, which as the controlled agent and the
/// DTLS client waited for its next 200 ms tick before (206-222 ms). Now 43-53 ms on a
/// quiet 2-core machine (target 120 ms, printed). Judged with room for a loaded CI
/// machine (one ran another first-frame test 2.5 times slower): the median stays under
/// 180 ms, which a hub waiting out the 200 ms tick cannot reach.
#[test]
fn viewers_joining_a_running_stream_get_a_first_frame_without_waiting_for_a_tick() {
    let dir = tempdir();
    let clip = dir.path().join("clip.flv");
    baseline_clip(&clip, 30);
    let hub = Hub::start("s");
    let mut publisher = publish(&hub, &clip, "demo");
    poll_until("the stream is live", Duration::from_secs(10), || {
        hub.stream("demo")
            .is_some_and(|s| s["video_frames"].as_u64() > Some(45))
    });
    let mut firsts: Vec<u64> = (0..20)
        .map(|_| {
            let (output, _) = streamhub(
                &["play", &hub.whep_url("demo"), "--duration", "0.3", "--json"],
                Duration::from_secs(20),
            );
            let report = common::report(&output);
            report["first_frame_ms"]
                .as_u64()
                .unwrap_or_else(|| panic!("no first frame: {report}"))
        })
        .collect();
    firsts.sort_unstable();
    let (p50, p95) = (firsts[9], firsts[18]);
    eprintln!("20 joins: first frame p50 {p50} ms, p95 {p95} ms, all {firsts:?}");
    assert!(p50 < 180, "median first frame {p50} ms: {firsts:?}");
    publisher.kill();
}
