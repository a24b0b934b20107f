//! Test harness: real peers (nginx-rtmp, ffmpeg, ffprobe, openssl) started on loopback,
//! each process owned by a guard that kills it by PID on drop. Every wait polls a
//! condition against a deadline; nothing sleeps and hopes.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `streamhub` binary under test.
pub const STREAMHUB: &str = env!("CARGO_BIN_EXE_streamhub");

#[path = "../../../tests/support/postgres.rs"]
pub mod postgres;
#[path = "../../../tests/support/process.rs"]
pub mod process;
#[path = "../../../tests/support/redis.rs"]
pub mod redis;
#[path = "../../../tests/support/require.rs"]
pub mod require;
#[allow(unused_imports)]
pub use process::{Proc, free_port, run_checked, tempdir, wait_listen, wait_until};
#[path = "../../../tests/support/aiortc.rs"]
mod aiortc;
#[path = "../../../tests/support/whep_peer.rs"]
mod whep_peer;
#[allow(unused_imports)]
pub use aiortc::{AiortcWhep, peers_python};
#[path = "../../../tests/support/gstreamer.rs"]
mod gstreamer;
#[allow(unused_imports)]
pub use gstreamer::GstWhep;
#[path = "../../../tests/support/pictures.rs"]
mod pictures;
#[allow(unused_imports)] // each test binary uses its own part of this module
pub use pictures::{assert_contiguous_run, decode_checked, picture_hashes};

/// Makes an FLV clip with ffmpeg: H.264 Main with B-frames (GOP 2 s), AAC, 640x360 30 fps.
/// `extra` goes before the output name (e.g. `-output_ts_offset`).
pub fn make_clip(path: &Path, seconds: u32, extra: &[&str]) {
    require::ffmpeg();
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-v", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-profile:v",
            "main",
            "-bf",
            "2",
        ])
        .args(["-g", "60", "-b:v", "1M", "-c:a", "aac", "-b:a", "96k"])
        .args(extra)
        .args(["-f", "flv"])
        .arg(path);
    run_checked("ffmpeg making a clip", &mut cmd);
}

/// One packet as ffprobe sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub codec_type: String,
    pub pts: i64,
    pub dts: i64,
    pub key: bool,
    pub size: u64,
    pub hash: String,
}

/// Every packet of a media file, in file order, with the MD5 of its payload.
pub fn packets(path: &Path) -> Vec<Packet> {
    require::ffmpeg();
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_packets",
            "-show_data_hash",
            "MD5",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("running ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    let num = |p: &serde_json::Value, k: &str| {
        p[k].as_i64()
            .unwrap_or_else(|| panic!("packet without {k}: {p}"))
    };
    json["packets"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|p| Packet {
                    codec_type: p["codec_type"].as_str().unwrap_or_default().to_string(),
                    pts: num(p, "pts"),
                    dts: num(p, "dts"),
                    key: p["flags"].as_str().unwrap_or_default().starts_with('K'),
                    size: p["size"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0),
                    hash: p["data_hash"].as_str().unwrap_or_default().to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Packets of one kind ("video" or "audio").
pub fn of_kind(packets: &[Packet], kind: &str) -> Vec<Packet> {
    packets
        .iter()
        .filter(|p| p.codec_type == kind)
        .cloned()
        .collect()
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

/// The `--json` report of a successful run.
pub fn report(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "streamhub failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON object on stdout")
}

/// Options for a private nginx-rtmp.
#[derive(Default)]
pub struct NginxOptions {
    /// Only this stream key may publish (checked by nginx's `on_publish`).
    pub only_key: Option<String>,
    /// Also listen for RTMPS through a TLS proxy (nginx stream module).
    pub tls: bool,
}

/// nginx with the RTMP module, in the foreground, on free loopback ports; application
/// `live` records every stream to `<dir>/<key>.flv`.
pub struct Nginx {
    pub proc: Proc,
    pub rtmp_port: u16,
    pub tls_port: u16,
    pub dir: PathBuf,
    /// CA certificate (PEM) that signed the TLS proxy's certificate.
    pub ca_pem: PathBuf,
}

impl Nginx {
    pub fn start(dir: &Path, options: NginxOptions) -> Nginx {
        require::nginx_rtmp();
        let rtmp_port = free_port();
        let http_port = free_port();
        let tls_port = free_port();
        let d = dir.display();
        let mut modules = "load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;\n".to_string();
        let mut extra = String::new();
        let ca_pem = dir.join("ca.pem");
        if options.tls {
            modules.push_str("load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n");
            make_certificates(dir);
            extra.push_str(&format!(
                "stream {{ server {{ listen 127.0.0.1:{tls_port} ssl; \
                 ssl_certificate {d}/server.pem; ssl_certificate_key {d}/server.key; \
                 proxy_pass 127.0.0.1:{rtmp_port}; }} }}\n"
            ));
        }
        let mut on_publish = String::new();
        if let Some(key) = &options.only_key {
            on_publish =
                format!("notify_method get; on_publish http://127.0.0.1:{http_port}/auth;");
            extra.push_str(&format!(
                "http {{ access_log off; client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; \
                 fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi; \
                 server {{ listen 127.0.0.1:{http_port}; location /auth {{ \
                 if ($arg_name = \"{key}\") {{ return 200; }} return 403; }} }} }}\n"
            ));
        }
        let conf = format!(
            "{modules}daemon off;\nmaster_process off;\nworker_processes 1;\n\
             error_log {d}/error.log info;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 64; }}\n{extra}\
             rtmp {{ server {{ listen 127.0.0.1:{rtmp_port}; chunk_size 4096; \
             application live {{ live on; record all; record_path {d}; record_unique off; \
             {on_publish} }} }} }}\n"
        );
        fs::write(dir.join("nginx.conf"), conf).expect("writing nginx.conf");
        let proc = Proc::spawn(
            "nginx",
            Command::new("nginx")
                .arg("-c")
                .arg(dir.join("nginx.conf"))
                .arg("-p")
                .arg(dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        wait_listen(rtmp_port);
        if options.tls {
            wait_listen(tls_port);
        }
        if options.only_key.is_some() {
            wait_listen(http_port);
        }
        Nginx {
            proc,
            rtmp_port,
            tls_port,
            dir: dir.to_path_buf(),
            ca_pem,
        }
    }

    pub fn url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{key}", self.rtmp_port)
    }

    /// Waits until nginx has closed the recording of `key` (it logs the disconnect
    /// of every publisher) and returns its path.
    pub fn recording(&self, key: &str, publishers: usize) -> PathBuf {
        let log = self.dir.join("error.log");
        wait_until(
            "nginx to finish the recording",
            Duration::from_secs(10),
            || {
                fs::read_to_string(&log)
                    .map(|l| l.matches("disconnect").count() >= publishers)
                    .unwrap_or(false)
            },
        );
        self.dir.join(format!("{key}.flv"))
    }
}

/// A throwaway CA and a server certificate for localhost / 127.0.0.1 signed by it:
/// `ca.pem`, `server.pem` and `server.key` in `dir`.
pub fn make_certificates(dir: &Path) {
    require::program("openssl");
    let ext = dir.join("san.ext");
    fs::write(&ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\n").expect("san.ext");
    let openssl = |args: &[&str]| {
        run_checked(
            "openssl",
            Command::new("openssl").current_dir(dir).args(args),
        )
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=StreamHub Test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    ]);
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

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds the test binary's one-at-a-time lock: WebRTC stacks on both sides of a test
/// (and Chromium) share 2 cores, so the tests of a binary that take it run one at a
/// time, and a first-frame deadline measures the protocol, not the scheduler.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}
