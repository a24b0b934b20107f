//! The demo's live view: a status line redrawn a few times a second with chat lines
//! scrolling above it on a terminal; plain lines every two seconds otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where the live view goes (stderr).
pub struct LiveView {
    bar: Option<ProgressBar>,
    last_plain: Instant,
}

impl LiveView {
    /// A view on stderr.
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(8));
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(125));
            bar
        });
        LiveView {
            bar,
            last_plain: Instant::now(),
        }
    }

    /// Shows a line that stays (a chat message, an event).
    pub fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// Updates the status line.
    pub fn status(&mut self, text: String) {
        match &self.bar {
            Some(bar) => bar.set_message(text),
            None => {
                if self.last_plain.elapsed() >= Duration::from_secs(2) {
                    self.last_plain = Instant::now();
                    eprintln!("{text}");
                }
            }
        }
    }

    /// Removes the status line.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
