//! The loss sweep of issue 14: an aiortc WHEP sender (H.264, a frame counter, 30 fps)
//! on a host of our own with only loopback, nftables dropping 0, 1, 2, 5 and 10 % of
//! every UDP packet (media and RTCP, both ways). At each rate `streamhub play` and
//! aiortc's own receiver watch at the same time for the same seconds. Prints a table,
//! writes `loss_sweep.json` and `loss_sweep.png` (frames delivered and freezes per rate).
//! Needs root (network namespaces); run by `benches/loss_sweep.sh`.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use plotters::prelude::*;
use serde::Serialize;
use serde_json::Value;
use streamhub_benches::plot::{draw_legend, line_swatch, register_sans_font};
use streamhub_test_support::free_port;
use streamhub_test_support::netlab::LoopbackHost;

#[derive(Parser)]
struct Args {
    /// The `streamhub` binary.
    #[arg(long)]
    streamhub: PathBuf,
    /// The venv python with aiortc.
    #[arg(long)]
    python: PathBuf,
    /// Seconds watched at each rate.
    #[arg(long, default_value_t = 20)]
    seconds: u32,
    /// Where the JSON and the PNG go.
    #[arg(long)]
    out: PathBuf,
}

/// One viewer at one loss rate.
#[derive(Debug, Serialize)]
struct Viewer {
    video_frames: u64,
    freezes: u64,
    frozen_ms: u64,
    first_frame_ms: Option<u64>,
    /// streamhub only: RTX packets, NACKs, packets recovered and given up.
    retransmissions: Option<u64>,
    nacks_sent: Option<u64>,
    packets_recovered: Option<u64>,
    packets_lost: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Row {
    loss_percent: u32,
    frames_sent: u64,
    streamhub: Viewer,
    aiortc: Viewer,
}

fn viewer(report: &Value) -> Viewer {
    let n = |k: &str| report[k].as_u64();
    Viewer {
        video_frames: n("video_frames").unwrap_or(0),
        freezes: n("freezes").unwrap_or(0),
        frozen_ms: n("frozen_ms").unwrap_or(0),
        first_frame_ms: n("first_frame_ms"),
        retransmissions: n("retransmissions"),
        nacks_sent: n("nacks_sent"),
        packets_recovered: n("packets_recovered"),
        packets_lost: n("packets_lost"),
    }
}

fn run_rate(args: &Args, loss: u32, root: &Path) -> Result<Row, String> {
    let mut host = LoopbackHost::new();
    host.drop_udp(loss);
    let port = free_port();
    host.spawn(
        "aiortc WHEP server",
        host.command(args.python.to_str().ok_or("python path")?)
            .arg(root.join("tests/peers/aiortc_whep_sender.py"))
            .args(["--port", &port.to_string(), "--codec", "h264"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    host.wait_listen(port);
    let url = format!("http://127.0.0.1:{port}/whep/sweep");
    let seconds = args.seconds.to_string();
    let dir = args.out.join(format!("loss-{loss}"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let file = |name: &str| std::fs::File::create(dir.join(name)).map_err(|e| e.to_string());
    let ours = host.spawn(
        "streamhub play",
        host.command(args.streamhub.to_str().ok_or("streamhub path")?)
            .args(["play", &url, "--json", "--duration", &seconds])
            .stdout(file("streamhub.json")?)
            .stderr(file("streamhub.log")?),
    );
    let theirs = host.spawn(
        "aiortc receiver",
        host.command(args.python.to_str().ok_or("python path")?)
            .arg(root.join("tests/peers/aiortc_whep_receiver.py"))
            .args([&url, "--duration", &seconds])
            .stdout(file("aiortc.json")?)
            .stderr(file("aiortc.log")?),
    );
    let limit = Duration::from_secs(u64::from(args.seconds) + 60);
    for (pid, what) in [(ours, "streamhub play"), (theirs, "the aiortc receiver")] {
        host.wait(pid, limit)
            .ok_or_else(|| format!("{what} did not end at {loss} % loss"))?;
    }
    let read = |name: &str| -> Result<Value, String> {
        let text = std::fs::read_to_string(dir.join(name)).map_err(|e| e.to_string())?;
        serde_json::from_str(text.lines().last().unwrap_or_default())
            .map_err(|e| format!("{name} at {loss} %: {e}: {text}"))
    };
    let (ours, theirs) = (read("streamhub.json")?, read("aiortc.json")?);
    Ok(Row {
        loss_percent: loss,
        frames_sent: u64::from(args.seconds) * 30,
        streamhub: viewer(&ours),
        aiortc: viewer(&theirs),
    })
}

/// Which viewer of a row a series plots.
type ViewerOf = fn(&Row) -> &Viewer;

fn plot(path: &Path, rows: &[Row]) -> Result<(), Box<dyn std::error::Error>> {
    register_sans_font()?;
    let root = BitMapBackend::new(path, (1000, 800)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(400);
    let max_loss = rows.iter().map(|r| r.loss_percent).max().unwrap_or(10) as f64;
    let mut frames = ChartBuilder::on(&top)
        .caption("Video frames delivered (% of sent)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_loss, 0.0..105.0)?;
    frames
        .configure_mesh()
        .x_desc("UDP loss (%)")
        .y_desc("%")
        .draw()?;
    let mut freezes = ChartBuilder::on(&bottom)
        .caption("Freezes", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(
            0.0..max_loss,
            0.0..rows
                .iter()
                .flat_map(|r| [r.streamhub.freezes, r.aiortc.freezes])
                .max()
                .unwrap_or(1)
                .max(1) as f64
                * 1.2,
        )?;
    freezes
        .configure_mesh()
        .x_desc("UDP loss (%)")
        .y_desc("count")
        .draw()?;
    let pick: [(&str, RGBColor, ViewerOf); 2] = [
        ("streamhub play", BLUE, |r| &r.streamhub),
        ("aiortc receiver", RED, |r| &r.aiortc),
    ];
    for (name, color, of) in pick {
        frames
            .draw_series(LineSeries::new(
                rows.iter().map(|r| {
                    let share = of(r).video_frames as f64 * 100.0 / r.frames_sent.max(1) as f64;
                    (r.loss_percent as f64, share.min(105.0))
                }),
                color.stroke_width(2),
            ))?
            .label(name)
            .legend(line_swatch(color));
        freezes.draw_series(LineSeries::new(
            rows.iter()
                .map(|r| (r.loss_percent as f64, of(r).freezes as f64)),
            color.stroke_width(2),
        ))?;
    }
    draw_legend(&mut frames, SeriesLabelPosition::LowerLeft)?;
    root.present()?;
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let started = Instant::now();
    let mut rows = Vec::new();
    for loss in [0, 1, 2, 5, 10] {
        match run_rate(&args, loss, &root) {
            Ok(row) => rows.push(row),
            Err(e) => {
                eprintln!("loss_sweep: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "loss | frames sent | streamhub frames (freezes, frozen ms, NACKs, RTX, recovered, lost) | aiortc frames (freezes, frozen ms)"
    );
    for r in &rows {
        let s = &r.streamhub;
        println!(
            "{:>3} % | {:>5} | {:>5} ({}, {}, {}, {}, {}, {}) | {:>5} ({}, {})",
            r.loss_percent,
            r.frames_sent,
            s.video_frames,
            s.freezes,
            s.frozen_ms,
            s.nacks_sent.unwrap_or(0),
            s.retransmissions.unwrap_or(0),
            s.packets_recovered.unwrap_or(0),
            s.packets_lost.unwrap_or(0),
            r.aiortc.video_frames,
            r.aiortc.freezes,
            r.aiortc.frozen_ms,
        );
    }
    let json = args.out.join("loss_sweep.json");
    let png = args.out.join("loss_sweep.png");
    let written = serde_json::to_string_pretty(&rows)
        .map_err(|e| e.to_string())
        .and_then(|text| std::fs::write(&json, text).map_err(|e| e.to_string()))
        .and_then(|_| plot(&png, &rows).map_err(|e| e.to_string()));
    if let Err(e) = written {
        eprintln!("loss_sweep: writing the results: {e}");
        return ExitCode::FAILURE;
    }
    println!(
        "wrote {} and {} in {:.0} s",
        json.display(),
        png.display(),
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
