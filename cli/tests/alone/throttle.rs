//! Going live over a throttled link, in a network lab (`streamhub_test_support::netlab`).
//!
//! `streamhub publish --realtime --latency-stamps` sends a 4 Mbit/s, 30 fps stream
//! (H.264 Main with B-frames, GOP 2 s, AAC) from the "near" namespace to nginx-rtmp in
//! the "far" one, over a link capped at 1.5 Mbit/s for 20 s, then 20 Mbit/s. nginx
//! records what it received and pushes it to `streamhub hub` beside it; a `streamhub
//! play` viewer there logs each frame's glass-to-glass delay from its latency stamp
//! (the frame's capture time). Live mode keeps the delay bounded by dropping video (never
//! audio) and recommends a bitrate under the cap; the same run with back-pressure lets
//! the delay grow past 10 s.

use streamhub_test_support::netlab;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use streamhub_test_support::ffprobe;
use streamhub_test_support::pictures::decode_checked;
use streamhub_test_support::{Clip, json_lines, poll_until, require, tempdir};

use crate::STREAMHUB;
use netlab::NetLab;
use serde_json::Value;

const CAP_KBIT: u32 = 1500;
const CAPPED_FOR: Duration = Duration::from_secs(20);
const CLIP_SECONDS: u32 = 40;

/// The 4 Mbit/s clip: 1280x720 30 fps CBR H.264 Main, 2 B-frames, a keyframe every 60
/// frames, AAC 128 kbit/s.
fn make_clip(path: &Path) {
    let cbr = [
        "-keyint_min",
        "60",
        "-sc_threshold",
        "0",
        "-minrate",
        "4M",
        "-maxrate",
        "4M",
        "-bufsize",
        "2M",
        "-x264-params",
        "nal-hrd=cbr",
    ];
    Clip {
        size: "1280x720",
        seconds: CLIP_SECONDS,
        profile: "main",
        b_frames: 2,
        gop: 60,
        video_bitrate: "4M",
        audio_bitrate: "128k",
        extra: cbr.iter().map(|s| s.to_string()).collect(),
    }
    .write(path);
}

/// What one run measured.
struct Run {
    /// (ms since the publisher started, glass-to-glass ms) per video frame viewed.
    latencies: Vec<(u64, f64)>,
    /// The publisher's `--stats` lines.
    stats: Vec<Value>,
    /// The publisher's `--json` report.
    report: Value,
    /// nginx's recording of what it received.
    recording: PathBuf,
    /// The viewer's `--json` report.
    viewer: Value,
}

/// Polls the hub's `/api/streams` in the far namespace until `name` is live with video.
fn wait_stream_on_hub(lab: &NetLab, http: &str, name: &str) {
    require::program("curl");
    poll_until("the stream on the hub", Duration::from_secs(20), || {
        netlab::lists_live_video(&lab.get_far(&format!("http://{http}/api/streams")), name)
    });
}

fn run(lab: &mut NetLab, clip: &Path, dir: &Path, back_pressure: bool) -> Run {
    require::nginx_rtmp();
    let far = lab.far_ip.clone();
    let (nginx_port, hub_rtmp, hub_http) = (19350, 19351, format!("{far}:18080"));
    let d = dir.display();
    let conf = format!(
        "load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;\ndaemon off;\nmaster_process off;\n\
         worker_processes 1;\nerror_log {d}/error.log info;\npid {d}/nginx.pid;\n\
         events {{ worker_connections 64; }}\n\
         rtmp {{ server {{ listen {far}:{nginx_port}; chunk_size 4096; \
         application live {{ live on; record all; record_path {d}; record_unique off; \
         push rtmp://{far}:{hub_rtmp}/live; }} }} }}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
    let nginx = lab.spawn(
        "nginx",
        lab.command(&lab.far.clone(), "nginx")
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-p")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let hub = lab.spawn(
        "hub",
        lab.command(&lab.far.clone(), STREAMHUB)
            .args([
                "hub",
                "--http",
                &hub_http,
                "--rtmp",
                &format!("{far}:{hub_rtmp}"),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("hub.log")).expect("hub.log")),
    );
    lab.wait_listen_far(nginx_port);
    lab.wait_listen_far(hub_rtmp);
    lab.wait_listen_far(18080);

    lab.shape(CAP_KBIT, 20, 300);
    let stats = dir.join("stats.jsonl");
    let report = dir.join("publish.json");
    let mut publish = lab.command(&lab.near.clone(), STREAMHUB);
    publish
        .arg("publish")
        .arg(clip)
        .arg(format!("rtmp://{far}:{nginx_port}/live/cam"))
        .args(["--realtime", "--latency-stamps", "--json", "--stats"])
        .arg(&stats)
        .stdout(std::fs::File::create(&report).expect("publish.json"))
        .stderr(std::fs::File::create(dir.join("publish.err")).expect("publish.err"));
    if back_pressure {
        publish.arg("--back-pressure");
    }
    let started = Instant::now();
    let publisher = lab.spawn("publisher", &mut publish);
    wait_stream_on_hub(lab, &hub_http, "cam");
    let latency = dir.join("latency.jsonl");
    let viewer_report = dir.join("play.json");
    let viewer_started = started.elapsed();
    let viewer = lab.spawn(
        "viewer",
        lab.command(&lab.far.clone(), STREAMHUB)
            .args([
                "play",
                &format!("http://{hub_http}/whep/cam"),
                "--json",
                "--latency",
            ])
            .arg(&latency)
            .args(["--duration", "150"])
            .stdout(std::fs::File::create(&viewer_report).expect("play.json"))
            .stderr(std::fs::File::create(dir.join("play.err")).expect("play.err")),
    );
    // The cap is lifted 20 s after the publisher started.
    std::thread::sleep(CAPPED_FOR.saturating_sub(started.elapsed()));
    lab.shape(20_000, 100, 300);
    let status = lab
        .wait(publisher, Duration::from_secs(150))
        .expect("the publisher to finish");
    assert!(
        status.success(),
        "publisher: {}",
        std::fs::read_to_string(dir.join("publish.err")).unwrap_or_default()
    );
    // The viewer ends when the hub says the stream ended.
    lab.wait(viewer, Duration::from_secs(30))
        .expect("the viewer to end with the stream");
    // nginx closes the recording when the publisher disconnects.
    poll_until(
        "nginx to close the recording",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(dir.join("error.log"))
                .map(|l| l.matches("disconnect").count() >= 1)
                .unwrap_or(false)
        },
    );
    lab.kill(hub);
    lab.kill(nginx);
    let offset_ms = viewer_started.as_millis() as u64;
    let latencies = json_lines(&latency)
        .iter()
        .filter_map(|l| Some((l["t_ms"].as_u64()? + offset_ms, l["latency_ms"].as_f64()?)))
        .collect();
    Run {
        latencies,
        stats: json_lines(&stats),
        report: serde_json::from_str(&std::fs::read_to_string(&report).unwrap_or_default())
            .unwrap_or(Value::Null),
        recording: dir.join("cam.flv"),
        viewer: serde_json::from_str(&std::fs::read_to_string(&viewer_report).unwrap_or_default())
            .unwrap_or(Value::Null),
    }
}

/// ffprobe's packets of one kind: (pts, keyframe, MD5 of the payload).
fn packets(path: &Path, kind: &str) -> Vec<(i64, bool, String)> {
    ffprobe::of_kind(&ffprobe::packets(path), kind)
        .into_iter()
        .map(|p| (p.pts, p.key, p.hash))
        .collect()
}

/// For each video frame of the clip, in decode order: whether other frames refer to it
/// (a slice with `nal_ref_idc` > 0). Read with the SDK's FLV reader.
fn reference_frames(clip: &Path) -> Vec<bool> {
    use streamhub::media::flv::{FlvPayload, FlvReader};
    let file = std::fs::File::open(clip).expect("clip");
    let mut reader = FlvReader::new(std::io::BufReader::new(file)).expect("FLV");
    let mut length_size = 4;
    let mut out = Vec::new();
    while let Some(tag) = reader.next_tag().expect("FLV tag") {
        match tag.payload {
            FlvPayload::VideoConfig(config) => length_size = config.nal_length_size(),
            FlvPayload::Video(frame) => {
                let units =
                    streamhub::media::avcc_nal_units(&frame.data, length_size).expect("AVCC");
                out.push(units.into_iter().any(|nal| {
                    nal.first()
                        .is_some_and(|h| (1..=5).contains(&(h & 0x1f)) && h & 0x60 != 0)
                }));
            }
            _ => {}
        }
    }
    out
}

/// Max glass-to-glass delay per second of the run.
fn per_second_max(latencies: &[(u64, f64)]) -> Vec<(u64, f64)> {
    let mut out: Vec<(u64, f64)> = Vec::new();
    for &(t, l) in latencies {
        let s = t / 1000;
        match out.last_mut() {
            Some((sec, max)) if *sec == s => *max = max.max(l),
            _ => out.push((s, l)),
        }
    }
    out
}

#[test]
fn a_throttled_link_keeps_the_delay_bounded_drops_only_video_and_recommends_a_bitrate() {
    let _one = streamhub_test_support::machine::one_at_a_time();
    let dir = tempdir();
    let clip = dir.path().join("clip.flv");
    make_clip(&clip);
    let mut lab = NetLab::new();

    let live_dir = dir.path().join("live");
    std::fs::create_dir_all(&live_dir).expect("dir");
    let live = run(&mut lab, &clip, &live_dir, false);
    let seconds = per_second_max(&live.latencies);
    eprintln!("live: glass-to-glass max per second {seconds:?}");
    eprintln!("live: publisher {}; viewer {}", live.report, live.viewer);
    let cap_end = CAPPED_FOR.as_millis() as u64;

    // Every frame within 1.5 s, and back under 300 ms within 5 s of the lift. (Before
    // the link's capacity was kept between backlogged windows, about one run in three
    // had a 1.9–2.3 s episode: see congestion/capacity.rs.)
    let worst = live.latencies.iter().map(|l| l.1).fold(0.0, f64::max);
    let mut sorted: Vec<f64> = live.latencies.iter().map(|l| l.1).collect();
    sorted.sort_by(f64::total_cmp);
    let p99 = sorted[(sorted.len() * 99 / 100).min(sorted.len() - 1)];
    assert!(
        worst <= 1500.0,
        "glass-to-glass reached {worst} ms: {seconds:?}"
    );
    let late_after_lift = live
        .latencies
        .iter()
        .filter(|(t, l)| *t >= cap_end + 5000 && *l >= 300.0)
        .count();
    assert_eq!(
        late_after_lift, 0,
        "over 300 ms after the lift: {seconds:?}"
    );
    assert!(
        live.latencies
            .iter()
            .filter(|(t, _)| *t > cap_end + 5000)
            .count()
            > 300,
        "frames after the lift"
    );

    // Only video was dropped; every audio frame arrived, byte for byte.
    let source_audio = packets(&clip, "audio");
    let recorded_audio = packets(&live.recording, "audio");
    assert_eq!(recorded_audio.len(), source_audio.len(), "audio frames");
    for (i, (a, b)) in source_audio.iter().zip(&recorded_audio).enumerate() {
        assert_eq!(a.2, b.2, "audio frame {i} differs");
    }
    assert_eq!(live.report["audio_dropped"], 0);
    let dropped = live.report["dropped_disposable"].as_u64().unwrap_or(0)
        + live.report["dropped_until_keyframe"].as_u64().unwrap_or(0)
        + live.report["dropped_gop"].as_u64().unwrap_or(0);
    assert!(
        dropped > 100,
        "video was dropped under the cap: {}",
        live.report
    );

    // After every gap that lost a reference frame the video restarts at a keyframe, and
    // the recording decodes without an error.
    let source_video = packets(&clip, "video");
    let recorded_video = packets(&live.recording, "video");
    assert_eq!(
        recorded_video.len() as u64 + dropped,
        source_video.len() as u64,
        "sent + dropped = the clip's frames"
    );
    let reference = reference_frames(&clip);
    assert_eq!(reference.len(), source_video.len());
    let origin = recorded_video[0].0 - source_video[0].0;
    let index_of = |pts: i64| source_video.iter().position(|s| s.0 == pts - origin);
    let mut previous: Option<usize> = None;
    let mut restarts = 0;
    for frame in &recorded_video {
        let i = index_of(frame.0).expect("a recorded frame is a source frame");
        if let Some(p) = previous
            && i > p + 1
            && reference[p + 1..i].iter().any(|r| *r)
        {
            assert!(
                frame.1,
                "source frames {}..{i} were dropped, some of them reference frames, and \
                 the video went on without a keyframe",
                p + 1
            );
            restarts += 1;
        }
        previous = Some(i);
    }
    assert!(
        restarts > 3,
        "video restarted at keyframes after drops ({restarts})"
    );
    decode_checked(&live.recording, &["-f", "null", "-"]);

    // The recommendation fell under the cap within 5 s and rose past 3.5 Mbit/s within
    // 15 s of the lift.
    let bps_at = |from: u64, to: u64| -> Vec<u64> {
        live.stats
            .iter()
            .filter(|s| (from..to).contains(&s["t_ms"].as_u64().unwrap_or(0)))
            .filter_map(|s| s["recommended_bps"].as_u64())
            .collect()
    };
    let early = bps_at(0, 5000);
    assert!(early.iter().any(|&b| b < 1_500_000), "{:?}", live.stats);
    let after = bps_at(cap_end, cap_end + 15_000);
    assert!(after.iter().any(|&b| b > 3_500_000), "{:?}", live.stats);

    // The same run with back-pressure: the delay grows past 10 s.
    let bp_dir = dir.path().join("back-pressure");
    std::fs::create_dir_all(&bp_dir).expect("dir");
    let bp = run(&mut lab, &clip, &bp_dir, true);
    let bp_worst = bp.latencies.iter().map(|l| l.1).fold(0.0, f64::max);
    eprintln!(
        "back-pressure: glass-to-glass max per second {:?}",
        per_second_max(&bp.latencies)
    );
    eprintln!(
        "figures: live p99 {p99:.0} ms, worst {worst:.0} ms, {dropped} video frames \
         dropped, 0 audio; back-pressure worst {bp_worst:.0} ms"
    );
    assert!(
        bp_worst > 10_000.0,
        "back-pressure delay only {bp_worst} ms"
    );
    assert!(worst * 5.0 < bp_worst);
}
