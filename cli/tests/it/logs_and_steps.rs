//! Logs a user can turn on: `-v`/`-vv`, `STREAMHUB_LOG`/`RUST_LOG`, said in `--help`;
//! and `streamhub play -v` naming each step of a connection that failed.

use crate::common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{STREAMHUB, free_port, streamhub};

#[test]
fn help_tells_how_to_turn_logs_on() {
    for args in [&["--help"][..], &["play", "--help"], &["demo", "--help"]] {
        let (output, _) = streamhub(args, Duration::from_secs(10));
        assert!(output.status.success());
        let help = String::from_utf8_lossy(&output.stdout);
        for needle in ["-v, --verbose", "-vv", "STREAMHUB_LOG", "RUST_LOG"] {
            assert!(help.contains(needle), "{args:?}: no {needle:?} in\n{help}");
        }
    }
}

/// `streamhub play` of a WHEP URL where nobody listens; returns stderr.
fn play_nowhere(verbosity: &[&str], env: &[(&str, &str)]) -> String {
    let url = format!("http://127.0.0.1:{}/whep/nobody", free_port());
    let out = Command::new(STREAMHUB)
        .args(verbosity)
        .args(["play", &url, "--timeout", "5"])
        .env_remove("STREAMHUB_LOG")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("running streamhub play");
    assert!(!out.status.success(), "nobody listens, yet play succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn play_with_v_names_every_step_it_tried() {
    let stderr = play_nowhere(&["-v"], &[]);
    assert!(!stderr.contains("panicked"), "{stderr}");
    // One line per step: HTTP failed (nothing listens), ICE and DTLS never started.
    let step = |name: &str| -> Vec<&str> {
        stderr
            .lines()
            .filter(|l| l.contains(&format!("step {name}: ")))
            .collect()
    };
    let http = step("HTTP");
    assert_eq!(http.len(), 1, "{stderr}");
    assert!(http[0].contains("failed"), "{stderr}");
    assert!(http[0].contains("WHEP request failed"), "{stderr}");
    assert_eq!(step("ICE").len(), 1, "{stderr}");
    assert!(step("ICE")[0].ends_with("ICE: not started"), "{stderr}");
    assert_eq!(step("DTLS").len(), 1, "{stderr}");
    assert!(step("DTLS")[0].ends_with("DTLS: not started"), "{stderr}");
    // The attempt itself was logged as it happened.
    assert!(
        stderr.contains("HTTP: POST offer to http://127.0.0.1:"),
        "{stderr}"
    );
    // And the command still ends with its one error line.
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: "), "{stderr}");
}

#[test]
fn without_v_only_the_error_line_shows() {
    let stderr = play_nowhere(&[], &[]);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn environment_filters_work_and_debug_is_compiled_in() {
    for var in ["STREAMHUB_LOG", "RUST_LOG"] {
        let stderr = play_nowhere(&[], &[(var, "streamhub=debug")]);
        assert!(stderr.contains("step HTTP: failed"), "{var}: {stderr}");
        assert!(stderr.contains("DEBUG"), "{var}: no debug line in {stderr}");
        assert!(!stderr.contains("compiled out"), "{var}: {stderr}");
    }
    let stderr = play_nowhere(&["-vv"], &[]);
    assert!(stderr.contains("DEBUG"), "-vv: {stderr}");
    let stderr = play_nowhere(&[], &[("STREAMHUB_LOG", "streamhub=[")]);
    assert!(stderr.starts_with("error: log filter"), "{stderr}");
}
