//! A one-line progress display for long pushes, drawn only when stderr is a terminal.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Shows bytes, bitrate and frame counts, refreshed a few times per second.
pub struct PushProgress {
    bar: ProgressBar,
    started: Instant,
    last_draw: Instant,
}

impl PushProgress {
    /// A progress line on stderr if it is a terminal; a silent one otherwise.
    pub fn new() -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr_with_hz(4)
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        let now = Instant::now();
        PushProgress {
            bar,
            started: now,
            last_draw: now - Duration::from_secs(1),
        }
    }

    /// Updates the line (at most every 250 ms); `link` adds the live publisher's drops,
    /// waiting media and recommended bitrate.
    pub fn update(
        &mut self,
        bytes: u64,
        video_frames: u64,
        audio_frames: u64,
        link: Option<&streamhub::rtmp::CongestionReport>,
    ) {
        if self.bar.is_hidden() || self.last_draw.elapsed() < Duration::from_millis(250) {
            return;
        }
        self.last_draw = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let mbit = bytes as f64 * 8.0 / secs / 1e6;
        let mut line = format!(
            "{:.1} MB sent, {mbit:.2} Mbit/s, {video_frames} video / {audio_frames} audio frames",
            bytes as f64 / 1e6
        );
        if let Some(link) = link {
            line.push_str(&format!(
                ", waiting {} ms, {} video dropped, recommended {:.2} Mbit/s",
                link.waiting.as_millis(),
                link.dropped.total(),
                link.recommended_bps as f64 / 1e6
            ));
        }
        self.bar.set_message(line);
        self.bar.tick();
    }

    /// A handle that shows one-line notes above the progress line (or on stderr when
    /// there is no progress line), from any task.
    pub fn notes(&self) -> Notes {
        Notes(self.bar.clone())
    }

    /// Removes the line.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Shows one-line notes (which ingest is live, a lost connection) without breaking the
/// progress line.
#[derive(Clone)]
pub struct Notes(ProgressBar);

impl Notes {
    /// Shows `line`.
    pub fn show(&self, line: &str) {
        if self.0.is_hidden() {
            eprintln!("{line}");
        } else {
            self.0.println(line);
        }
    }
}
