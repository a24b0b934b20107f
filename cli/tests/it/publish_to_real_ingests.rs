//! `streamhub publish` against real ingests (nginx-rtmp, ffmpeg's RTMP listener, an nginx
//! TLS proxy), judged by ffprobe: every packet must arrive with the same payload hash,
//! size, key flag, pts and dts, and in the same number.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

const LIMIT: Duration = Duration::from_secs(60);

fn publish(clip: &Path, url: &str, extra: &[&str]) -> std::process::Output {
    let clip = clip.to_str().expect("utf-8 path");
    let mut args = vec!["publish", clip, url, "--json"];
    args.extend_from_slice(extra);
    streamhub(&args, LIMIT).0
}

fn check_counts(report: &serde_json::Value, clip: &Path) {
    let sent = packets(clip);
    assert_eq!(
        report["video_frames"].as_u64(),
        Some(of_kind(&sent, "video").len() as u64)
    );
    assert_eq!(
        report["audio_frames"].as_u64(),
        Some(of_kind(&sent, "audio").len() as u64)
    );
    assert!(report["bytes"].as_u64().unwrap_or(0) > 0);
    assert!(report["connect_ms"].is_u64() && report["duration_ms"].is_u64());
}

#[test]
fn nginx_records_exactly_what_was_published() {
    let dir = tempdir();
    let clip = dir.path().join("clip.flv");
    make_clip(&clip, 6, &[]);
    let nginx = Nginx::start(dir.path(), NginxOptions::default());
    let out = publish(&clip, &nginx.url("cam1"), &[]);
    check_counts(&report(&out), &clip);
    assert_same_packets(&clip, &nginx.recording("cam1", 1), 0);
}

#[test]
fn ffmpeg_listener_receives_exactly_what_was_published() {
    let dir = tempdir();
    let clip = dir.path().join("clip.flv");
    let received = dir.path().join("received.flv");
    make_clip(&clip, 6, &[]);
    let mut listener = FfmpegListener::start("cam1", &received);
    let out = publish(&clip, &listener.url("cam1"), &[]);
    check_counts(&report(&out), &clip);
    let status = listener.proc.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "ffmpeg listener failed: {status}");
    assert_same_packets(&clip, &received, 0);
}

#[test]
fn rtmps_through_a_tls_proxy_verifies_the_certificate() {
    let dir = tempdir();
    let clip = dir.path().join("clip.flv");
    make_clip(&clip, 3, &[]);
    let nginx = Nginx::start(
        dir.path(),
        NginxOptions {
            tls: true,
            ..NginxOptions::default()
        },
    );
    let url = format!("rtmps://localhost:{}/live/secure", nginx.tls_port);
    // Without our CA the certificate is not trusted.
    let (out, _) = streamhub(&["publish", clip.to_str().unwrap(), &url], LIMIT);
    let line = error_line(&out);
    assert!(
        line.contains("TLS") && line.contains("certificate"),
        "{line}"
    );
    // With it, the stream goes through and arrives intact.
    let ca = nginx.ca_pem.to_str().unwrap().to_string();
    let out = publish(&clip, &url, &["--ca-file", &ca]);
    check_counts(&report(&out), &clip);
    assert_same_packets(&clip, &nginx.recording("secure", 2), 0);
}

#[test]
fn realtime_sends_at_the_medias_pace() {
    let dir = tempdir();
    let clip = dir.path().join("clip.flv");
    make_clip(&clip, 3, &[]);
    let nginx = Nginx::start(dir.path(), NginxOptions::default());
    let started = Instant::now();
    let out = publish(&clip, &nginx.url("paced"), &["--realtime"]);
    let elapsed = started.elapsed();
    report(&out);
    // The last frame is stamped about 2.97 s after the first.
    assert!(
        elapsed >= Duration::from_millis(2900),
        "took only {elapsed:?}"
    );
    assert_same_packets(&clip, &nginx.recording("paced", 1), 0);
}

/// Timestamps that start just below 2^24 ms and cross it: the extended-timestamp
/// boundary where streams classically die after 4 h 40 min. Both ingests must see every
/// packet with unchanged spacing.
#[test]
fn timestamps_crossing_2_24_ms_arrive_intact() {
    let dir = tempdir();
    let clip = dir.path().join("source.flv");
    // 16 775 s = 2^24 ms - 2.2 s, so the 4 s clip crosses 2^24 ms in the middle.
    make_clip(&clip, 4, &["-output_ts_offset", "16775"]);
    let sent = packets(&clip);
    let first = sent.iter().map(|p| p.dts).min().unwrap();
    let last = sent.iter().map(|p| p.dts).max().unwrap();
    assert!(
        first < 1 << 24 && last > 1 << 24,
        "clip spans {first}..{last} ms"
    );

    let nginx = Nginx::start(dir.path(), NginxOptions::default());
    report(&publish(&clip, &nginx.url("late"), &[]));
    let recorded = nginx.recording("late", 1);
    let offset = packets(&recorded)[0].dts - sent[0].dts;
    assert_same_packets(&clip, &recorded, offset);

    let received = dir.path().join("late-ffmpeg.flv");
    let mut listener = FfmpegListener::start("late", &received);
    report(&publish(&clip, &listener.url("late"), &[]));
    assert!(listener.proc.wait_exit(Duration::from_secs(10)).success());
    let offset = packets(&received)[0].dts - sent[0].dts;
    assert_same_packets(&clip, &received, offset);
}

#[test]
fn key_refused_by_on_publish_is_a_publish_refusal() {
    let dir = tempdir();
    let clip = dir.path().join("clip.flv");
    make_clip(&clip, 1, &[]);
    let nginx = Nginx::start(
        dir.path(),
        NginxOptions {
            only_key: Some("good".into()),
            ..NginxOptions::default()
        },
    );
    let (out, elapsed) = streamhub(
        &["publish", clip.to_str().unwrap(), &nginx.url("bad")],
        LIMIT,
    );
    let line = error_line(&out);
    assert!(line.contains("publish refused"), "{line}");
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    // The right key is accepted by the same server.
    report(&publish(&clip, &nginx.url("good"), &[]));
}

#[test]
fn wrong_application_is_a_connect_refusal() {
    let dir = tempdir();
    let clip = dir.path().join("clip.flv");
    make_clip(&clip, 1, &[]);
    let nginx = Nginx::start(dir.path(), NginxOptions::default());
    let url = format!("rtmp://127.0.0.1:{}/nosuchapp/key", nginx.rtmp_port);
    let (out, elapsed) = streamhub(&["publish", clip.to_str().unwrap(), &url], LIMIT);
    let line = error_line(&out);
    assert!(
        line.contains("connect refused") && line.contains("nosuchapp"),
        "{line}"
    );
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[test]
fn closed_port_fails_at_once() {
    let dir = tempdir();
    let clip = dir.path().join("clip.flv");
    make_clip(&clip, 1, &[]);
    let port = free_port();
    let url = format!("rtmp://127.0.0.1:{port}/live/key");
    let (out, elapsed) = streamhub(&["publish", clip.to_str().unwrap(), &url], LIMIT);
    let line = error_line(&out);
    assert!(
        line.contains(&format!("could not connect to 127.0.0.1:{port}")),
        "{line}"
    );
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}

#[test]
fn second_publisher_on_a_live_key_gets_bad_name() {
    let dir = tempdir();
    let long = dir.path().join("long.flv");
    let short = dir.path().join("short.flv");
    make_clip(&long, 20, &[]);
    make_clip(&short, 1, &[]);
    let nginx = Nginx::start(dir.path(), NginxOptions::default());
    let mut first = Proc::spawn(
        "first publisher",
        std::process::Command::new(STREAMHUB)
            .args([
                "publish",
                long.to_str().unwrap(),
                &nginx.url("busy"),
                "--realtime",
            ])
            .stdout(std::process::Stdio::null()),
    );
    let log = dir.path().join("error.log");
    poll_until(
        "the first publisher to be live",
        Duration::from_secs(10),
        || std::fs::read_to_string(&log).is_ok_and(|l| l.contains("publish: name='busy'")),
    );
    let (out, _) = streamhub(
        &["publish", short.to_str().unwrap(), &nginx.url("busy")],
        LIMIT,
    );
    let line = error_line(&out);
    assert!(line.contains("NetStream.Publish.BadName"), "{line}");
    first.kill();
}

#[test]
fn server_dying_mid_stream_ends_the_publish_within_2_s() {
    let dir = tempdir();
    let clip = dir.path().join("long.flv");
    make_clip(&clip, 30, &[]);
    let mut nginx = Nginx::start(dir.path(), NginxOptions::default());
    let mut publisher = Proc::spawn(
        "publisher",
        std::process::Command::new(STREAMHUB)
            .args([
                "publish",
                clip.to_str().unwrap(),
                &nginx.url("doomed"),
                "--realtime",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped()),
    );
    let log = dir.path().join("error.log");
    poll_until("the stream to be live", Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("publish: name='doomed'"))
    });
    let killed = Instant::now();
    nginx.proc.kill();
    let status = publisher.wait_exit(Duration::from_secs(5));
    let after = killed.elapsed();
    assert!(!status.success());
    assert!(
        after < Duration::from_secs(2),
        "exited {after:?} after the kill"
    );
    let mut stderr = String::new();
    if let Some(mut pipe) = publisher.child.stderr.take() {
        pipe.read_to_string(&mut stderr).expect("stderr");
    }
    assert!(stderr.contains("connection lost"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `--backup`: the primary nginx dies mid-stream; the publish goes on to the backup
/// nginx, says so, and every frame of the file is accounted for (written to an ingest or
/// counted as dropped).
#[test]
fn a_dead_primary_moves_the_publish_to_the_backup() {
    let dir = tempdir();
    let clip = dir.path().join("clip.flv");
    make_clip(&clip, 8, &[]);
    let (primary_dir, backup_dir) = (dir.path().join("primary"), dir.path().join("backup"));
    std::fs::create_dir_all(&primary_dir).expect("dir");
    std::fs::create_dir_all(&backup_dir).expect("dir");
    let mut primary = Nginx::start(&primary_dir, NginxOptions::default());
    let backup = Nginx::start(&backup_dir, NginxOptions::default());
    let stats = dir.path().join("stats.jsonl");
    let mut publisher = Proc::spawn(
        "publisher",
        std::process::Command::new(STREAMHUB)
            .args([
                "publish",
                clip.to_str().unwrap(),
                &primary.url("show"),
                "--backup",
                &backup.url("show"),
                "--realtime",
                "--json",
                "--stats",
                stats.to_str().unwrap(),
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    );
    let log = primary_dir.join("error.log");
    poll_until("the stream to be live", Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("publish: name='show'"))
    });
    // Let it run on the primary for a while, then kill it.
    let recording = primary_dir.join("show.flv");
    poll_until(
        "3 s of media on the primary",
        Duration::from_secs(10),
        || std::fs::metadata(&recording).is_ok_and(|m| m.len() > 200_000),
    );
    primary.proc.kill();
    let status = publisher.wait_exit(Duration::from_secs(30));
    let (mut stdout, mut stderr) = (String::new(), String::new());
    if let Some(mut pipe) = publisher.child.stdout.take() {
        pipe.read_to_string(&mut stdout).expect("stdout");
    }
    if let Some(mut pipe) = publisher.child.stderr.take() {
        pipe.read_to_string(&mut stderr).expect("stderr");
    }
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines[0].starts_with("live on the primary ingest: rtmp://127.0.0.1:"),
        "{stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("reconnecting (attempt 1)")),
        "{stderr}"
    );
    assert!(
        lines
            .last()
            .is_some_and(|l| l.starts_with("live on backup 1: ")),
        "{stderr}"
    );
    // Stream keys are masked in what is shown.
    assert!(!stderr.contains("/show"), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("--json");
    assert_eq!(report["ingest"], 1, "{report}");
    assert!(report["reconnects"].as_u64() >= Some(1), "{report}");
    let sent = packets(&clip);
    let counted = ["video_frames", "audio_frames", "dropped_offline"]
        .iter()
        .chain(&[
            "dropped_disposable",
            "dropped_until_keyframe",
            "dropped_gop",
        ])
        .map(|k| report[k].as_u64().expect(k))
        .sum::<u64>();
    assert_eq!(counted, sent.len() as u64, "{report}");
    // The backup recorded the rest, starting at a keyframe, and it decodes.
    let on_backup = packets(&backup.recording("show", 1));
    let video = of_kind(&on_backup, "video");
    assert!(
        video.len() > 60,
        "{} video frames on the backup",
        video.len()
    );
    assert!(video[0].key, "the backup's recording starts at a keyframe");
    let stats_lines = std::fs::read_to_string(&stats).expect("--stats");
    assert!(
        stats_lines.lines().any(|l| l.contains("\"ingest\":1")),
        "{stats_lines}"
    );
    eprintln!(
        "figures: {} of {} frames on the backup; report {report}",
        on_backup.len(),
        sent.len()
    );
}

#[test]
fn truncated_and_garbage_files_are_errors() {
    let dir = tempdir();
    let clip = dir.path().join("clip.flv");
    make_clip(&clip, 2, &[]);
    let nginx = Nginx::start(dir.path(), NginxOptions::default());
    let bytes = std::fs::read(&clip).unwrap();
    let truncated = dir.path().join("truncated.flv");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let (out, _) = streamhub(
        &["publish", truncated.to_str().unwrap(), &nginx.url("t")],
        LIMIT,
    );
    let line = error_line(&out);
    assert!(line.contains("truncated FLV"), "{line}");

    let garbage = dir.path().join("garbage.flv");
    std::fs::write(&garbage, b"this is not a video file at all").unwrap();
    let (out, _) = streamhub(
        &["publish", garbage.to_str().unwrap(), &nginx.url("g")],
        LIMIT,
    );
    let line = error_line(&out);
    assert!(line.contains("not an FLV file"), "{line}");

    let missing = dir.path().join("missing.flv");
    let (out, _) = streamhub(
        &["publish", missing.to_str().unwrap(), &nginx.url("m")],
        LIMIT,
    );
    error_line(&out);
}

/// A "server" in the test that answers with garbage, or never answers at all.
fn fake_server(reply: Option<Vec<u8>>) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        if let Ok((mut socket, _)) = listener.accept() {
            socket.set_read_timeout(Some(Duration::from_secs(10))).ok();
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf);
            if let Some(reply) = reply {
                let _ = socket.write_all(&reply);
            }
            // Hold the connection until the client gives up.
            while matches!(socket.read(&mut buf), Ok(n) if n > 0) {}
        }
    });
    (port, handle)
}

#[test]
fn garbage_or_silent_server_is_an_error_within_the_timeout() {
    let dir = tempdir();
    let clip = dir.path().join("clip.flv");
    make_clip(&clip, 1, &[]);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..20_000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    // A valid-looking S0 (version 3) followed by noise gets past the first byte check.
    let mut s0_then_noise = vec![3u8];
    s0_then_noise.extend_from_slice(&noise);
    for (name, reply) in [
        ("noise", Some(noise.clone())),
        ("s0 then noise", Some(s0_then_noise)),
        ("silence", None),
    ] {
        let (port, server) = fake_server(reply);
        let url = format!("rtmp://127.0.0.1:{port}/live/key");
        let (out, elapsed) = streamhub(
            &["publish", clip.to_str().unwrap(), &url, "--timeout", "2"],
            Duration::from_secs(10),
        );
        let line = error_line(&out);
        assert!(elapsed < Duration::from_secs(4), "{name}: took {elapsed:?}");
        eprintln!("{name}: {line}");
        server.join().unwrap();
    }
}
