//! JSON as the `streamhub` commands and the benchmarks write it: a `--json` report, and
//! JSON Lines (`streamhub publish --stats`, `streamhub play --frames`).

use std::path::Path;
use std::process::Output;

use serde_json::Value;

/// Every line of `path` that parses as JSON, in order; a missing file is empty (a
/// process that has not written yet). A line cut short by a process still writing is
/// left out.
pub fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// The `--json` report of a run that must have succeeded: one JSON object on stdout.
pub fn report(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "the command failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON object on stdout")
}
