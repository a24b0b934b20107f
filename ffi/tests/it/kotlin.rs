//! The Kotlin bindings on the JVM against a real hub: `bindings/kotlin/build.sh` compiles
//! the generated code, the `dev.streamhub` layer, its JUnit tests and the example with
//! kotlinc; the JUnit tests (StreamHubTest) run with JNA loading the library cargo built
//! for this run; then CallCost prints what one call into the library costs.
//!
//! Needs kotlinc (`bindings/kotlin/install-kotlinc.sh`), a JDK, and Debian's libjna-java
//! and junit4.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Finished, Logged, TestHub, demo_clip, library_dir, workspace};
use streamhub::chat::Role;
use streamhub_test_support::tempdir;

/// Exit code of build.sh when it finds no kotlinc (or no JNA/JUnit jars).
const MISSING_TOOL: i32 = 3;

/// A command run to the end under a deadline, its output in files under `logs`.
fn run(name: &str, logs: &Path, command: &mut Command, within: Duration) -> Finished {
    Logged::start(name, logs, command).finish(within)
}

/// `target/` of this build: the library lies in `target/<profile>/deps`.
fn target_dir() -> PathBuf {
    library_dir()
        .ancestors()
        .nth(2)
        .expect("target/<profile>/deps")
        .to_path_buf()
}

/// A JVM running `main_class` with the test classpath, the library and the hub's
/// addresses.
fn java(classpath: &str, main_class: &str, hub: &TestHub, tmp: &Path) -> Command {
    let mut command = Command::new("java");
    command
        .arg(format!("-Djna.library.path={}", library_dir().display()))
        .args(["-Xmx512m", "-cp", classpath, main_class])
        .env("STREAMHUB_RTMP_URL", hub.rtmp_url(""))
        .env("STREAMHUB_WHEP_URL", hub.whep_url(""))
        .env("STREAMHUB_CHAT_URL", hub.chat_url())
        .env(
            "STREAMHUB_TOKEN_ALICE",
            hub.token("alice", Role::Broadcaster),
        )
        .env("STREAMHUB_TOKEN_BOB", hub.token("bob", Role::Viewer))
        .env("STREAMHUB_DEMO_FLV", demo_clip())
        .env("STREAMHUB_TMP", tmp)
        // The panic test's message is enough; no backtraces on stderr.
        .env("RUST_BACKTRACE", "0");
    command
}

#[test]
fn kotlin_bindings_pass_their_junit_tests_against_a_real_hub() {
    let dir = tempdir();
    let target = target_dir();

    let started = Instant::now();
    let build = run(
        "build.sh",
        dir.path(),
        Command::new("bash")
            .arg(workspace().join("bindings/kotlin/build.sh"))
            .env("CARGO_TARGET_DIR", &target),
        Duration::from_secs(300),
    );
    if build.status.code() == Some(MISSING_TOOL) {
        panic!(
            "the Kotlin toolchain is missing: run scripts/test.sh (it installs kotlinc, \
             JNA and JUnit, then runs the tests)\n{}",
            build.stderr
        );
    }
    assert!(
        build.status.success(),
        "bindings/kotlin/build.sh failed ({}):\n{}{}",
        build.status,
        build.stdout,
        build.stderr
    );
    println!(
        "build.sh took {:.1} s:\n{}",
        started.elapsed().as_secs_f64(),
        build.stdout
    );
    let classpath = std::fs::read_to_string(target.join("kotlin/test.classpath"))
        .expect("build.sh writes target/kotlin/test.classpath");
    let classpath = classpath.trim();

    let hub = TestHub::start();
    let started = Instant::now();
    let junit = run(
        "junit",
        dir.path(),
        java(classpath, "org.junit.runner.JUnitCore", &hub, dir.path())
            .arg("dev.streamhub.StreamHubTest"),
        Duration::from_secs(300),
    );
    println!(
        "--- JUnit ({:.1} s) stdout\n{}--- JUnit stderr\n{}",
        started.elapsed().as_secs_f64(),
        junit.stdout,
        junit.stderr
    );
    assert!(
        junit.status.success(),
        "the JUnit run failed ({})",
        junit.status
    );
    let summary = junit
        .stdout
        .lines()
        .rev()
        .find(|line| line.starts_with("OK ("))
        .expect("a JUnit summary line");
    assert_eq!(summary, "OK (6 tests)", "every test ran");
    println!("JUnit: {summary}");

    let cost = run(
        "call-cost",
        dir.path(),
        &mut java(classpath, "dev.streamhub.CallCostKt", &hub, dir.path()),
        Duration::from_secs(120),
    );
    assert!(
        cost.status.success(),
        "CallCost failed ({}):\n{}{}",
        cost.status,
        cost.stdout,
        cost.stderr
    );
    for line in cost.stdout.lines().filter(|l| l.starts_with("call cost:")) {
        println!("kotlin {line}");
    }

    // The example (examples/kotlin/Broadcast.kt) does what it says.
    let example = run(
        "example",
        dir.path(),
        java(
            classpath,
            "dev.streamhub.examples.BroadcastKt",
            &hub,
            dir.path(),
        )
        .arg(demo_clip())
        .arg(hub.rtmp_url("kt-example"))
        .arg(hub.whep_url("kt-example"))
        .arg(hub.chat_url())
        .arg(hub.token("alice", Role::Broadcaster)),
        Duration::from_secs(60),
    );
    println!(
        "--- example stdout\n{}--- example stderr\n{}",
        example.stdout, example.stderr
    );
    assert!(
        example.status.success(),
        "the Kotlin example failed ({})",
        example.status
    );
    assert!(example.stdout.contains("state: Live"));
    let watched: u64 = example
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("sent 440 frames, watched "))
        .and_then(|n| n.trim().parse().ok())
        .expect("the example's summary line: sent 440 frames, watched N");
    assert!(watched > 0, "the example's watcher got no frames");
}
