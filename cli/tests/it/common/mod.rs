//! Test harness: real peers (nginx-rtmp, ffmpeg, ffprobe, openssl) started on loopback,
//! each process owned by a guard that kills it by PID on drop. Every wait polls a
//! condition against a deadline; nothing sleeps and hopes.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `streamhub` binary under test.
pub const STREAMHUB: &str = env!("CARGO_BIN_EXE_streamhub");

pub use streamhub_test_support::aiortc::{AiortcWhep, peers_python};
pub use streamhub_test_support::ffprobe::{Packet, of_kind, packets};
pub use streamhub_test_support::gstreamer::GstWhep;
pub use streamhub_test_support::machine::one_at_a_time;
pub use streamhub_test_support::nginx::{Nginx, NginxOptions, make_certificates};
pub use streamhub_test_support::pictures::decode_checked;
pub use streamhub_test_support::{
    Clip, Proc, free_port, poll_until, postgres, redis, report, require, tempdir, wait_listen,
};

/// Makes an FLV clip with ffmpeg: H.264 Main with B-frames (GOP 2 s), AAC, 640x360 30 fps.
/// `extra` goes before the output name (e.g. `-output_ts_offset`).
pub fn make_clip(path: &Path, seconds: u32, extra: &[&str]) {
    Clip {
        size: "640x360",
        seconds,
        profile: "main",
        b_frames: 2,
        gop: 60,
        video_bitrate: "1M",
        audio_bitrate: "96k",
        extra: extra.iter().map(|s| s.to_string()).collect(),
    }
    .write(path);
}

/// Asserts that `received` holds exactly the packets of `sent`, per kind: same count,
/// payload hash, size, key flag, and timestamps (shifted by `offset_ms`, which a recorder
/// may apply to the whole stream; pass 0 to demand identical timestamps).
pub fn assert_same_packets(sent: &Path, received: &Path, offset_ms: i64) {
    let sent = packets(sent);
    let received = packets(received);
    assert!(!sent.is_empty(), "the source has no packets");
    for kind in ["video", "audio"] {
        let a = of_kind(&sent, kind);
        let b = of_kind(&received, kind);
        assert_eq!(
            a.len(),
            b.len(),
            "{kind}: {} packets sent, {} received",
            a.len(),
            b.len()
        );
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            let shifted = Packet {
                pts: y.pts - offset_ms,
                dts: y.dts - offset_ms,
                ..y.clone()
            };
            assert_eq!(x, &shifted, "{kind} packet {i} differs");
        }
    }
}

/// Runs `streamhub` with `args`, killing it if it runs longer than `limit`.
pub fn streamhub(args: &[&str], limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let child = Command::new(STREAMHUB)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting streamhub");
    let mut proc = Proc::adopt("streamhub", child);
    proc.wait_exit(limit);
    let child = std::mem::replace(
        &mut proc.child,
        Command::new("true").spawn().expect("spawning true"),
    );
    let output = child.wait_with_output().expect("streamhub output");
    (output, started.elapsed())
}

/// The single line streamhub printed on stderr, checked to be one `error: …` line with no panic.
pub fn error_line(output: &Output) -> String {
    assert!(!output.status.success(), "expected failure, got success");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!stderr.contains("panicked"), "streamhub panicked: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one stderr line, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    lines[0].to_string()
}

/// ffmpeg's own RTMP server: accepts one publisher on rtmp://127.0.0.1:PORT/live/KEY
/// and copies it to `out` as FLV.
pub struct FfmpegListener {
    pub proc: Proc,
    pub port: u16,
}

impl FfmpegListener {
    pub fn start(key: &str, out: &Path) -> FfmpegListener {
        require::ffmpeg();
        let port = free_port();
        let proc = Proc::spawn(
            "ffmpeg -listen",
            Command::new("ffmpeg")
                .args(["-nostdin", "-v", "error", "-listen", "1", "-i"])
                .arg(format!("rtmp://127.0.0.1:{port}/live/{key}"))
                .args(["-c", "copy", "-f", "flv", "-y"])
                .arg(out)
                .stdout(Stdio::null()),
        );
        wait_listen(port);
        FfmpegListener { proc, port }
    }

    pub fn url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{key}", self.port)
    }
}

/// Decodes a video file with ffmpeg (failing on any decoder error) and reads the 16-bit
/// frame counter the test senders stamp into the top row of each picture, as Gray
/// code: consecutive counters differ in one block, so a block an encoder is slow to
/// redraw (AV1 and VP9 at low bitrates under load) reads as the previous counter, a
/// repeat, never as an unrelated value.
pub fn decoded_frame_counters(path: &Path, width: usize, height: usize) -> Vec<u16> {
    let raw = decode_checked(
        path,
        // One picture per decoded frame (no rate conversion), timestamps kept in µs.
        &[
            "-fps_mode",
            "passthrough",
            "-enc_time_base",
            "1:1000000",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
            "-",
        ],
    );
    // Each block is judged by the mean of its central 8x8 pixels, not one pixel: at
    // low bitrates VP9 and AV1 blur the edges between blocks.
    let block = |frame: &[u8], bit: usize| -> bool {
        let sum: u32 = (4..12)
            .flat_map(|y| (4..12).map(move |x| (y, x)))
            .map(|(y, x)| u32::from(frame[y * width + bit * 16 + x]))
            .sum();
        sum / 64 > 128
    };
    raw.chunks_exact(width * height)
        .map(|frame| {
            let gray = (0..16).fold(0u16, |value, bit| {
                (value << 1) | u16::from(block(frame, bit))
            });
            from_gray(gray)
        })
        .collect()
}

/// The number whose Gray code (`n ^ n >> 1`) is `gray`.
fn from_gray(gray: u16) -> u16 {
    let mut n = gray;
    let mut shift = 1;
    while shift < 16 {
        n ^= n >> shift;
        shift <<= 1;
    }
    n
}

/// At least 95% of the frames in the counter range arrived, in order, without repeats.
pub fn assert_counters_complete(counters: &[u16]) {
    assert!(
        counters.len() >= 30,
        "only {} frames decoded",
        counters.len()
    );
    assert!(
        counters.windows(2).all(|w| w[1] > w[0]),
        "counters out of order: {counters:?}"
    );
    let span = usize::from(counters[counters.len() - 1] - counters[0]) + 1;
    assert!(
        counters.len() * 100 >= span * 95,
        "{} of {span} frames arrived",
        counters.len()
    );
}

/// One line of a lossy playback's figures: frames decoded of the counter span, NACKs,
/// retransmissions, repairs, losses, keyframe requests, freezes, first frame, reorder
/// wait (from `streamhub play --json`).
pub fn loss_summary(label: &str, report: &serde_json::Value, counters: &[u16]) -> String {
    let span = counters
        .last()
        .zip(counters.first())
        .map_or(0, |(last, first)| usize::from(last - first) + 1);
    format!(
        "{label}: {} of {span} frames, {} NACKs sent, {} retransmissions, {} packets \
         recovered, {} packets lost, {} keyframe requests, {} freezes ({} ms), first frame {} ms, \
         reorder wait {} ms",
        counters.len(),
        report["nacks_sent"],
        report["retransmissions"],
        report["packets_recovered"],
        report["packets_lost"],
        report["keyframe_requests"],
        report["freezes"],
        report["frozen_ms"],
        report["first_frame_ms"],
        report["reorder_wait_ms"],
    )
}

/// A chat token from `streamhub token` (the command an operator runs), for `user` as
/// `role` in every room, valid for 10 minutes.
pub fn streamhub_token(secret: &str, user: &str, role: &str) -> String {
    let out = Command::new(STREAMHUB)
        .args([
            "token", "--secret", secret, "--user", user, "--role", role, "--ttl", "600",
        ])
        .output()
        .expect("running streamhub token");
    assert!(
        out.status.success(),
        "streamhub token failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("a token is ASCII")
        .trim()
        .to_string()
}
