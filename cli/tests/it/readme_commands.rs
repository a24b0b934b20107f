//! The README's two set-up commands are exactly what CI runs (`.ci/run`).

use std::path::Path;

#[test]
fn the_readme_commands_are_what_ci_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let ci = std::fs::read_to_string(root.join(".ci/run")).expect(".ci/run");
    let block = readme
        .split("## Set-up: the two commands")
        .nth(1)
        .and_then(|rest| rest.split("```sh").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("a sh block under 'Set-up: the two commands'");
    let commands: Vec<&str> = block
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(commands.len(), 2, "{commands:?}");
    let ci_lines: Vec<&str> = ci.lines().map(str::trim).collect();
    for command in &commands {
        assert!(
            ci_lines.contains(command),
            "{command:?} is not run by .ci/run"
        );
    }
}
