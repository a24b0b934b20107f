//! The throttle scenario as a benchmark (`benches/throttle.sh`): a 4 Mbit/s clip pushed
//! in real time over a link capped at 1.5 Mbit/s for 20 s, then 20 Mbit/s, to
//! `streamhub hub` in a network namespace, once by `streamhub publish --realtime` (live
//! congestion policy) and once by `ffmpeg -re -i clip -c copy -f flv`. A `streamhub play`
//! viewer beside the hub logs every frame's arrival. Prints the delay over time for both
//! and the publishers' CPU, and writes `throttle.json` and `throttle.png` (delay and
//! bitrate against time).
//!
//! Delay: for streamhub, each frame's capture-to-arrival time from its latency stamp; for
//! ffmpeg (which sends the file untouched and drops nothing), the i-th frame viewed is
//! the clip's i-th, and its delay is its arrival minus its send time (ffmpeg's start plus
//! its dts), ffmpeg's start taken from the first second.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use plotters::prelude::*;
use serde::Serialize;
use streamhub_test_support::json_lines;
use streamhub_test_support::netlab::NetLab;

use streamhub_benches::plot::{draw_legend, line_swatch, register_sans_font};

#[derive(Debug, Parser)]
struct Args {
    /// The clip to publish (FLV, H.264 + AAC); `benches/throttle.sh` makes one.
    #[arg(long)]
    clip: PathBuf,
    /// The streamhub binary.
    #[arg(long, default_value = "target/release/streamhub")]
    streamhub: PathBuf,
    /// Where throttle.json and throttle.png go.
    #[arg(long, default_value = "target/bench-results")]
    out: PathBuf,
    /// The cap, kbit/s.
    #[arg(long, default_value_t = 1500)]
    cap_kbit: u32,
    /// How long the cap lasts, seconds.
    #[arg(long, default_value_t = 20)]
    capped_seconds: u64,
}

/// One publisher's run.
#[derive(Debug, Serialize)]
struct Series {
    publisher: String,
    /// (seconds since the publisher started, delay ms) per video frame viewed:
    /// streamhub — capture to arrival, from the frames' latency stamps; ffmpeg —
    /// arrival minus the frame's send time (its start + dts).
    delay: Vec<(f64, f64)>,
    /// streamhub only: (seconds, recommended video bitrate bit/s, delivered bit/s).
    bitrate: Vec<(f64, u64, u64)>,
    video_frames_viewed: usize,
    publisher_cpu_s: f64,
    duration_s: f64,
}

/// utime + stime of `pid`, seconds (Linux /proc; 100 ticks a second).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

fn run(args: &Args, ffmpeg: bool, dir: &Path) -> Result<Series, String> {
    let mut lab = NetLab::new();
    let far = lab.far_ip.clone();
    let far_ns = lab.far.clone();
    let near_ns = lab.near.clone();
    let streamhub = std::fs::canonicalize(&args.streamhub)
        .map_err(|e| format!("{}: {e}", args.streamhub.display()))?;
    let streamhub = streamhub.to_string_lossy().to_string();
    lab.spawn(
        "hub",
        lab.command(&far_ns, &streamhub)
            .args([
                "hub",
                "--http",
                &format!("{far}:18080"),
                "--rtmp",
                &format!("{far}:19351"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    lab.wait_listen_far(19351);
    lab.wait_listen_far(18080);
    lab.shape(args.cap_kbit, 20, 300);
    let url = format!("rtmp://{far}:19351/live/bench");
    let stats = dir.join("stats.jsonl");
    let mut publish = if ffmpeg {
        let mut c = lab.command(&near_ns, "ffmpeg");
        c.args(["-nostdin", "-v", "error", "-re", "-i"])
            .arg(&args.clip)
            .args(["-c", "copy", "-f", "flv", &url]);
        c
    } else {
        let mut c = lab.command(&near_ns, &streamhub);
        c.arg("publish")
            .arg(&args.clip)
            .arg(&url)
            .args(["--realtime", "--latency-stamps", "--stats"])
            .arg(&stats);
        c
    };
    publish.stdout(Stdio::null()).stderr(Stdio::null());
    let started = Instant::now();
    let publisher = lab.spawn("publisher", &mut publish);
    // The viewer joins once the hub has the stream.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if lab
            .get_far(&format!("http://{far}:18080/api/streams"))
            .contains("\"name\":\"bench\"")
        {
            break;
        }
        if Instant::now() > deadline {
            return Err("the stream never reached the hub".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let joined = started.elapsed().as_secs_f64();
    let log = dir.join("latency.jsonl");
    let viewer = lab.spawn(
        "viewer",
        lab.command(&far_ns, &streamhub)
            .args([
                "play",
                &format!("http://{far}:18080/whep/bench"),
                "--latency",
            ])
            .arg(&log)
            .args(["--duration", "150"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let mut cpu = 0.0;
    let mut lifted = false;
    loop {
        if let Some(c) = cpu_seconds(publisher) {
            cpu = c;
        }
        if !lifted && started.elapsed() >= Duration::from_secs(args.capped_seconds) {
            lab.shape(20_000, 100, 300);
            lifted = true;
        }
        if lab.wait(publisher, Duration::from_millis(200)).is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(180) {
            return Err("the publisher did not finish within 180 s".into());
        }
    }
    let duration_s = started.elapsed().as_secs_f64();
    if lab.wait(viewer, Duration::from_secs(20)).is_none() {
        lab.kill(viewer);
    }
    let lines = json_lines(&log);
    // (arrival s since the publisher started, capture-to-arrival ms if stamped)
    let arrivals: Vec<(f64, Option<f64>)> = lines
        .iter()
        .filter_map(|l| {
            Some((
                l["t_ms"].as_f64()? / 1000.0 + joined,
                l["latency_ms"].as_f64(),
            ))
        })
        .collect();
    let delay: Vec<(f64, f64)> = if ffmpeg {
        // ffmpeg -re sends frame i at its start + dts_i and drops nothing, so the i-th
        // frame viewed is the clip's i-th (checked: same count): delay = arrival − dts,
        // less the smallest value of the first second (ffmpeg's own start-up).
        let dts = clip_video_dts(&args.clip)?;
        if dts.len() != arrivals.len() {
            return Err(format!(
                "the viewer saw {} of the clip's {} frames: cannot pair them",
                arrivals.len(),
                dts.len()
            ));
        }
        let raw: Vec<(f64, f64)> = arrivals
            .iter()
            .zip(&dts)
            .map(|(a, d)| (a.0, (a.0 - d) * 1000.0))
            .collect();
        let first = raw.first().map_or(0.0, |r| r.0);
        let base = raw
            .iter()
            .take_while(|r| r.0 < first + 1.0)
            .map(|r| r.1)
            .fold(f64::INFINITY, f64::min);
        raw.into_iter().map(|(t, d)| (t, d - base)).collect()
    } else {
        arrivals.iter().filter_map(|a| Some((a.0, a.1?))).collect()
    };
    Ok(Series {
        publisher: if ffmpeg {
            "ffmpeg -re -c copy"
        } else {
            "streamhub publish --realtime"
        }
        .into(),
        video_frames_viewed: arrivals.len(),
        delay,
        bitrate: json_lines(&stats)
            .iter()
            .filter_map(|s| {
                Some((
                    s["t_ms"].as_f64()? / 1000.0,
                    s["recommended_bps"].as_u64()?,
                    s["delivered_bps"].as_u64()?,
                ))
            })
            .collect(),
        publisher_cpu_s: cpu,
        duration_s,
    })
}

/// The clip's video decode times, seconds, in order.
fn clip_video_dts(clip: &Path) -> Result<Vec<f64>, String> {
    use streamhub::media::flv::{FlvPayload, FlvReader};
    let file = std::fs::File::open(clip).map_err(|e| format!("{}: {e}", clip.display()))?;
    let reader = FlvReader::new(std::io::BufReader::new(file)).map_err(|e| e.to_string())?;
    let mut dts = Vec::new();
    for tag in reader {
        if let FlvPayload::Video(frame) = tag.map_err(|e| e.to_string())?.payload {
            dts.push(frame.dts_us as f64 / 1e6);
        }
    }
    let first = dts.first().copied().unwrap_or(0.0);
    Ok(dts.into_iter().map(|d| d - first).collect())
}

fn per_second_max(points: &[(f64, f64)]) -> Vec<(u64, f64)> {
    let mut out: Vec<(u64, f64)> = Vec::new();
    for &(t, d) in points {
        let s = t as u64;
        match out.last_mut() {
            Some((sec, max)) if *sec == s => *max = max.max(d),
            _ => out.push((s, d)),
        }
    }
    out
}

fn plot(path: &Path, runs: &[Series], capped: u64) -> Result<(), Box<dyn std::error::Error>> {
    register_sans_font()?;
    let root = BitMapBackend::new(path, (1200, 800)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(480);
    let end = runs.iter().map(|r| r.duration_s).fold(0.0, f64::max).ceil();
    let max_delay = runs
        .iter()
        .flat_map(|r| r.delay.iter().map(|p| p.1))
        .fold(1000.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&top)
        .caption(
            format!("Delay on a link capped at 1.5 Mbit/s for {capped} s, then 20 Mbit/s"),
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..end, 0.0..max_delay / 1000.0)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("delay (s)")
        .draw()?;
    for (run, color) in runs.iter().zip([BLUE, RED]) {
        chart
            .draw_series(LineSeries::new(
                per_second_max(&run.delay)
                    .into_iter()
                    .map(|(t, d)| (t as f64, d / 1000.0)),
                color.stroke_width(2),
            ))?
            .label(run.publisher.clone())
            .legend(line_swatch(color));
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    let mut rates = ChartBuilder::on(&bottom)
        .caption(
            "streamhub: recommended video bitrate and delivered rate",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..end, 0.0..6.0)?;
    rates
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("Mbit/s")
        .draw()?;
    if let Some(run) = runs.first() {
        rates
            .draw_series(LineSeries::new(
                run.bitrate.iter().map(|b| (b.0, b.1 as f64 / 1e6)),
                GREEN.stroke_width(2),
            ))?
            .label("recommended")
            .legend(line_swatch(GREEN));
        rates
            .draw_series(LineSeries::new(
                run.bitrate.iter().map(|b| (b.0, b.2 as f64 / 1e6)),
                BLACK.stroke_width(1),
            ))?
            .label("delivered")
            .legend(line_swatch(BLACK));
        draw_legend(&mut rates, SeriesLabelPosition::UpperRight)?;
    }
    root.present()?;
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("{}: {e}", args.out.display());
        return ExitCode::FAILURE;
    }
    let mut runs = Vec::new();
    for ffmpeg in [false, true] {
        let dir = args.out.join(if ffmpeg {
            "throttle-ffmpeg"
        } else {
            "throttle-streamhub"
        });
        let _ = std::fs::create_dir_all(&dir);
        match run(&args, ffmpeg, &dir) {
            Ok(series) => {
                let seconds = per_second_max(&series.delay);
                println!(
                    "{}: {} video frames viewed in {:.1} s, publisher CPU {:.2} s",
                    series.publisher,
                    series.video_frames_viewed,
                    series.duration_s,
                    series.publisher_cpu_s
                );
                println!(
                    "  delay, max per second (s): {}",
                    seconds
                        .iter()
                        .map(|(t, d)| format!("{t}:{:.2}", d / 1000.0))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
                runs.push(series);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let [ours, ffmpeg] = &runs[..] {
        println!(
            "publisher CPU: streamhub {:.2} s, ffmpeg {:.2} s (ratio {:.2})",
            ours.publisher_cpu_s,
            ffmpeg.publisher_cpu_s,
            ours.publisher_cpu_s / ffmpeg.publisher_cpu_s.max(0.01)
        );
    }
    let json = args.out.join("throttle.json");
    if let Err(e) = serde_json::to_vec(&runs).map(|j| std::fs::write(&json, j)) {
        eprintln!("{}: {e}", json.display());
    }
    let png = args.out.join("throttle.png");
    match plot(&png, &runs, args.capped_seconds) {
        Ok(()) => println!("wrote {} and {}", json.display(), png.display()),
        Err(e) => {
            eprintln!("plotting: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
