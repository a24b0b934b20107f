//! The C examples (`examples/c`), built with `-Wall -Werror` and AddressSanitizer
//! (leak detection on), run against a real hub: `broadcast` streams the demo clip twice
//! in real time and chats, `watch` counts frames, writes the H.264 it got and chats.
//! ffmpeg decodes what the watcher wrote: every picture must be identical to the
//! source's and contiguous.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Finished, Logged, TestHub, demo_clip, library_dir, workspace};
use streamhub::chat::Role;
use streamhub_test_support::pictures::{assert_contiguous_run, picture_hashes};
use streamhub_test_support::tempdir;

const ASAN_FLAGS: &str = "-O1 -g -fsanitize=address -fno-omit-frame-pointer";

/// Builds examples/c into `build` with ASan, against the header in `include`.
fn build_examples(build: &Path, include: &Path) {
    streamhub_test_support::require::program("make");
    let out = Command::new("make")
        .arg("-C")
        .arg(workspace().join("examples/c"))
        .arg(format!("BUILD={}", build.display()))
        .arg(format!("INCLUDE={}", include.display()))
        .arg(format!("LIB_DIR={}", library_dir().display()))
        .arg(format!("CFLAGS={ASAN_FLAGS}"))
        .arg("LDFLAGS=-fsanitize=address")
        .output()
        .expect("running make");
    assert!(
        out.status.success(),
        "make failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A C program run under ASan, its output going to files in `logs`: leaks and errors
/// make it exit 23 with a report on stderr.
fn start_under_asan(name: &str, logs: &Path, command: &mut Command) -> Logged {
    command
        // cargo's LD_LIBRARY_PATH lists target/<profile>, where an older build of the
        // library may lie; it would win over the programs' rpath.
        .env("LD_LIBRARY_PATH", library_dir())
        .env(
            "ASAN_OPTIONS",
            "detect_leaks=1:exitcode=23:abort_on_error=0",
        );
    Logged::start(name, logs, command)
}

/// Waits for a program started by [`start_under_asan`]; asserts success and no
/// sanitizer report.
fn finish_clean(run: Logged, name: &str, within: Duration) -> Finished {
    let out = run.finish(within);
    println!(
        "--- {name} stdout\n{}--- {name} stderr\n{}",
        out.stdout, out.stderr
    );
    assert!(
        !out.stderr.contains("AddressSanitizer") && !out.stderr.contains("LeakSanitizer"),
        "{name}: sanitizer report"
    );
    assert!(out.status.success(), "{name} exited with {}", out.status);
    out
}

fn field(output: &Finished, name: &str) -> u64 {
    output
        .stdout
        .split_whitespace()
        .find_map(|word| word.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name}= in the output"))
}

#[test]
fn c_examples_broadcast_and_watch_under_asan() {
    let dir = tempdir();
    let build = dir.path().join("build");
    build_examples(&build, &workspace().join("ffi/include"));
    broadcast_and_watch(dir.path(), &build);
}

/// The examples built against the header of ABI 1 (`ffi/abi/streamhub-abi1.h`, kept as
/// it was: smaller `streamhub_session_config` and `streamhub_stats`) run against this
/// library exactly as the current ones do: the library reads the older config and
/// writes the older stats. A program built against the first, unversioned layout
/// cannot load: the function it must call first is gone from the library.
#[test]
fn c_examples_built_against_the_previous_abi_still_work() {
    let dir = tempdir();
    let include = dir.path().join("abi1");
    std::fs::create_dir_all(&include).expect("a header folder");
    std::fs::copy(
        workspace().join("ffi/abi/streamhub-abi1.h"),
        include.join("streamhub.h"),
    )
    .expect("the ABI 1 header");
    let build = dir.path().join("build");
    build_examples(&build, &include);
    broadcast_and_watch(dir.path(), &build);

    streamhub_test_support::require::program("nm");
    let symbols = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(library_dir().join("libstreamhub_ffi.so"))
        .output()
        .expect("nm");
    let symbols = String::from_utf8_lossy(&symbols.stdout);
    assert!(symbols.contains(" streamhub_session_config_defaults\n"));
    assert!(
        !symbols.contains(" streamhub_session_config_init\n"),
        "the unversioned layout's first call is still exported"
    );
}

/// Runs the examples built in `build` against a hub: a broadcast of the demo clip
/// twice and a watcher, chatting both ways; checks what each saw, and that the watcher's
/// pictures are the source's.
fn broadcast_and_watch(dir: &Path, build: &Path) {
    let hub = TestHub::start();
    let chat = hub.chat_url();
    let recording = dir.join("watched.h264");

    let watch = start_under_asan(
        "watch",
        dir,
        Command::new(build.join("watch"))
            .args([
                "-c",
                &chat,
                "-r",
                "c-demo",
                "-t",
                &hub.token("bob", Role::Viewer),
            ])
            .args(["-m", "hello from the C watcher", "-n", "240", "-s", "40"])
            .arg("-o")
            .arg(&recording)
            .arg(hub.whep_url("c-demo")),
    );
    let broadcast = start_under_asan(
        "broadcast",
        dir,
        Command::new(build.join("broadcast"))
            .args(["-c", &chat, "-r", "c-demo"])
            .args(["-t", &hub.token("alice", Role::Broadcaster)])
            .args(["-m", "hello from the C broadcaster", "-l", "2"])
            .arg(demo_clip())
            .arg(hub.rtmp_url("c-demo")),
    );

    let sent = finish_clean(broadcast, "broadcast", Duration::from_secs(60));
    let watched = finish_clean(watch, "watch", Duration::from_secs(60));

    // Everything sent: two passes of the 180-frame clip, nothing dropped.
    assert_eq!(field(&sent, "video_frames"), 360);
    assert_eq!(field(&sent, "dropped"), 0);
    assert_eq!(field(&watched, "video_frames"), 240);
    assert!(field(&watched, "audio_frames") > 200, "Opus audio arrived");
    assert_eq!(field(&watched, "packets_lost"), 0);
    // Chat both ways: each printed the other's message.
    assert!(sent.stdout.contains("chat: bob: hello from the C watcher"));
    assert!(
        watched
            .stdout
            .contains("chat: alice: hello from the C broadcaster")
    );

    // ffmpeg judges the pictures: identical to the source's, one contiguous run.
    let mut source = picture_hashes(&demo_clip());
    assert_eq!(source.len(), 180);
    source.extend(source.clone());
    let played = picture_hashes(&recording);
    assert_eq!(
        played.len(),
        240,
        "every received frame decodes to a picture"
    );
    let start = assert_contiguous_run(&source, &played);
    println!(
        "watched 240 pictures, identical to source pictures {start}..{}",
        start + 240
    );
}

#[test]
fn bad_input_through_the_c_abi_returns_documented_codes_under_asan() {
    let dir = tempdir();
    let program = dir.path().join("abi_errors");
    let out = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
        .args(ASAN_FLAGS.split(' '))
        .arg("-I")
        .arg(workspace().join("ffi/include"))
        .arg("-o")
        .arg(&program)
        .arg(workspace().join("ffi/tests/c/abi_errors.c"))
        .arg(format!("-L{}", library_dir().display()))
        .arg(format!("-Wl,-rpath,{}", library_dir().display()))
        .args(["-lstreamhub_ffi", "-lpthread", "-ldl", "-lm"])
        .output()
        .expect("running cc");
    assert!(
        out.status.success(),
        "cc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A truncated and a non-FLV file for the reader.
    let clip = std::fs::read(demo_clip()).expect("demo clip");
    let truncated = dir.path().join("truncated.flv");
    std::fs::write(&truncated, &clip[..clip.len() / 3]).expect("write");
    let not_flv = dir.path().join("not.flv");
    std::fs::write(&not_flv, b"this is not a video").expect("write");

    let run = start_under_asan(
        "abi_errors",
        dir.path(),
        Command::new(&program).arg(&truncated).arg(&not_flv),
    );
    let out = finish_clean(run, "abi_errors", Duration::from_secs(60));
    assert!(out.stdout.contains("all checks passed"), "{}", out.stdout);
}
