//! Judging decoded video with ffmpeg: decode without a single decoder complaint, the MD5 of
//! every picture, and the check that what a viewer played is one identical, contiguous
//! run of the source.

use std::path::Path;
use std::process::Command;

/// Runs `ffmpeg -i path <output_args>` and returns its stdout, failing the test on any
/// decoder error or message.
pub fn decode_checked(path: &Path, output_args: &[&str]) -> Vec<u8> {
    crate::require::ffmpeg();
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(output_args)
        .output()
        .expect("running ffmpeg");
    assert!(out.status.success(), "ffmpeg failed on {}", path.display());
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(
        errors.trim().is_empty(),
        "decoder errors in {}: {errors}",
        path.display()
    );
    out.stdout
}

/// The MD5 of every decoded picture of a video file, in decode output order; fails on
/// any decoder error.
pub fn picture_hashes(path: &Path) -> Vec<String> {
    let out = decode_checked(
        path,
        &[
            "-map",
            "0:v:0",
            "-fps_mode",
            "passthrough",
            "-f",
            "framemd5",
            "-",
        ],
    );
    String::from_utf8_lossy(&out)
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit(',').next().map(|h| h.trim().to_string()))
        .collect()
}

/// Where `played` starts in `source`, checking that it is one contiguous, identical run.
pub fn assert_contiguous_run(source: &[String], played: &[String]) -> usize {
    assert!(!played.is_empty(), "nothing was played");
    let start = source
        .iter()
        .position(|h| *h == played[0])
        .expect("the first played picture is not in the source");
    assert!(
        start + played.len() <= source.len(),
        "played {} pictures from source picture {start}, but the source has {}",
        played.len(),
        source.len()
    );
    for (i, hash) in played.iter().enumerate() {
        assert_eq!(
            hash,
            &source[start + i],
            "played picture {i} differs from source picture {}",
            start + i
        );
    }
    start
}
