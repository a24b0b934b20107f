//! Test clips made by ffmpeg: its `testsrc2` picture and a 440 Hz tone, H.264 and AAC in
//! FLV, 30 fps. One recipe; each test names the size, profile, GOP and rates it needs.

use std::path::Path;
use std::process::Command;

use crate::process::run_checked;
use crate::require;

/// What a clip is made of.
#[derive(Debug, Clone)]
pub struct Clip {
    /// Picture size, `WxH`.
    pub size: &'static str,
    /// Length in seconds.
    pub seconds: u32,
    /// x264 profile (`baseline`, `main`, …).
    pub profile: &'static str,
    /// B-frames between references (0: none).
    pub b_frames: u32,
    /// Frames from one keyframe to the next.
    pub gop: u32,
    /// Video bitrate, as ffmpeg spells it (`500k`, `1M`).
    pub video_bitrate: &'static str,
    /// AAC bitrate.
    pub audio_bitrate: &'static str,
    /// More ffmpeg output options, before the output name.
    pub extra: Vec<String>,
}

impl Clip {
    /// Writes the clip to `path` (fails the test if ffmpeg does).
    pub fn write(&self, path: &Path) {
        require::ffmpeg();
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-nostdin", "-v", "error", "-y"])
            .args([
                "-f",
                "lavfi",
                "-i",
                &format!("testsrc2=size={}:rate=30", self.size),
            ])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
            .args(["-t", &self.seconds.to_string()])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-profile:v",
                self.profile,
            ])
            .args([
                "-bf",
                &self.b_frames.to_string(),
                "-g",
                &self.gop.to_string(),
            ])
            .args([
                "-b:v",
                self.video_bitrate,
                "-c:a",
                "aac",
                "-b:a",
                self.audio_bitrate,
            ])
            .args(&self.extra)
            .args(["-f", "flv"])
            .arg(path);
        run_checked("ffmpeg making a clip", &mut cmd);
    }
}
