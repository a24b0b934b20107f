//! The README's main command on a machine with only the Rust toolchain and a C
//! compiler: the CLI builds in a fresh target directory with a PATH on which cmake and
//! pkg-config cannot be found, and `streamhub demo` is healthy. The build takes both
//! cores for minutes, so the test runs with nothing beside it.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use streamhub_test_support::{Proc, report, tempdir};

/// Programs a build of the CLI must not need.
const FORBIDDEN: &[&str] = &["cmake", "pkg-config", "pkgconf"];

/// A directory of links to every program on PATH except [`FORBIDDEN`] ones.
fn path_without_build_tools(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let path = std::env::var_os("PATH").expect("PATH");
    for entry in std::env::split_paths(&path).filter_map(|d| std::fs::read_dir(d).ok()) {
        for file in entry.flatten() {
            let name = file.file_name();
            let text = name.to_string_lossy();
            let forbidden = FORBIDDEN
                .iter()
                .any(|f| text == *f || text.ends_with(&format!("-{f}")));
            let link = bin.join(&name);
            if !forbidden && !link.exists() {
                let _ = symlink(file.path(), &link);
            }
        }
    }
    bin
}

#[test]
fn the_cli_builds_without_cmake_or_pkg_config_and_the_demo_is_healthy() {
    let _one = streamhub_test_support::machine::one_at_a_time();
    let dir = tempdir();
    let bin = path_without_build_tools(dir.path());
    for tool in FORBIDDEN {
        assert!(!bin.join(tool).exists(), "{tool} is still reachable");
    }
    let target = dir.path().join("target");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());

    let started = Instant::now();
    let mut build = Command::new(&cargo);
    build
        .args([
            "build",
            "--locked",
            "-p",
            "streamhub-cli",
            "--bin",
            "streamhub",
        ])
        .current_dir(&root)
        .env("PATH", &bin)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("PKG_CONFIG")
        .env_remove("CMAKE")
        .env_remove("RUSTC_WRAPPER")
        // Whatever linker or flags the test run chose (scripts/test.sh may pick a faster
        // linker): this build has only what a new user has.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS")
        .env_remove("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("build.log")).expect("build log"));
    let mut proc = Proc::spawn("cargo build (fresh target)", &mut build);
    let status = proc.wait_exit(Duration::from_secs(1500));
    let log = std::fs::read_to_string(dir.path().join("build.log")).unwrap_or_default();
    let built_in = started.elapsed();
    assert!(
        status.success(),
        "the CLI did not build without cmake/pkg-config:\n{}",
        log.lines().rev().take(40).collect::<Vec<_>>().join("\n")
    );
    assert!(!log.contains("is `cmake` not installed"), "{log}");

    let demo = target.join("debug/streamhub");
    let started = Instant::now();
    let mut run = Command::new(&demo);
    run.args(["demo", "--duration", "5", "--json"])
        .env("PATH", &bin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut proc = Proc::spawn("streamhub demo (fresh build)", &mut run);
    proc.wait_exit(Duration::from_secs(60));
    let child = std::mem::replace(
        &mut proc.child,
        Command::new("true").spawn().expect("spawning true"),
    );
    let output = child.wait_with_output().expect("demo output");
    let report = report(&output);
    assert_eq!(report["healthy"], true, "{report}");
    assert_eq!(report["viewer_end"], "the stream ended", "{report}");
    eprintln!(
        "fresh debug build of the CLI without cmake/pkg-config: {built_in:?}; demo --duration 5 \
         in {:?}: {report}",
        started.elapsed()
    );
}
