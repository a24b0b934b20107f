//! `streamhub play` against Chromium's libwebrtc as the sender: a page in Debian's
//! chromium sends a canvas (a frame counter drawn as blocks) and a WebAudio tone,
//! behind a small WHEP relay (`tests/peers/chromium_whep_sender.mjs`). Most tests run
//! both on a host of the test's own whose only network is loopback, where Chromium
//! gathers no candidate at all: its answer carries none and the pair is found
//! peer-reflexively. The first-frame test puts them on a network of two namespaces,
//! where the answer carries Chromium's host candidate. Judged by ffmpeg: a clean decode
//! and contiguous counters.

use crate::common;
use streamhub_test_support::netlab;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{assert_counters_complete, decoded_frame_counters, free_port, one_at_a_time, tempdir};
use netlab::{LoopbackHost, NetLab};

/// A loopback-only host running the Chromium WHEP sender with `args`; its port.
fn chromium_sender(host: &mut LoopbackHost, tmp: &Path, args: &[&str]) -> u16 {
    let port = free_port();
    let mut node = host.command("node");
    host.spawn(
        "Chromium WHEP sender",
        sender_command(&mut node, tmp, port, args),
    );
    host.wait_listen(port);
    port
}

/// `node` (a command in some namespace) made to run the Chromium WHEP sender on `port`
/// with `args`.
fn sender_command<'a>(
    node: &'a mut Command,
    tmp: &Path,
    port: u16,
    args: &[&str],
) -> &'a mut Command {
    common::require::program("node");
    common::require::file(Path::new("/usr/bin/chromium"), "Debian's chromium");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/peers/chromium_whep_sender.mjs");
    // Its profile and playwright's files go to the test's own folder, removed with it
    // even when the sender is killed.
    node.env("TMPDIR", tmp)
        .arg(script)
        .args(["--port", &port.to_string()])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
}

/// Plays `seconds` from the sender on `port`, recording to `dir/file`; the `--json`
/// report, or the stderr of a failed run.
fn play(
    host: &mut LoopbackHost,
    port: u16,
    seconds: u32,
    dir: &Path,
    file: &str,
) -> Result<serde_json::Value, String> {
    let play = host.spawn(
        "streamhub play",
        host.command(common::STREAMHUB)
            .arg("play")
            .arg(format!("http://127.0.0.1:{port}/whep/test"))
            .args(["--duration", &seconds.to_string(), "--json", "--record"])
            .arg(dir.join(file))
            .stdout(std::fs::File::create(dir.join("report.json")).expect("report"))
            .stderr(std::fs::File::create(dir.join("play.log")).expect("log")),
    );
    let status = host
        .wait(play, Duration::from_secs(40))
        .expect("streamhub play ended within 40 s");
    let log = std::fs::read_to_string(dir.join("play.log")).unwrap_or_default();
    if !status.success() {
        return Err(log);
    }
    let report = std::fs::read_to_string(dir.join("report.json")).expect("report");
    Ok(serde_json::from_str(&report)
        .unwrap_or_else(|e| panic!("the report is not JSON ({e}): {report}; log: {log}")))
}

fn check_codec(codec: &str, file: &str) {
    let _one = one_at_a_time();
    let dir = tempdir();
    let mut host = LoopbackHost::new();
    let port = chromium_sender(&mut host, dir.path(), &["--codec", codec]);
    let report = play(&mut host, port, 6, dir.path(), file).unwrap_or_else(|log| panic!("{log}"));
    let counters = decoded_frame_counters(&dir.path().join(file), 320, 240);
    eprintln!(
        "from Chromium, {codec}: {} frames decoded, counters {}..{}, first frame {} ms, {} \
         keyframe requests, {} NACKs, {} retransmissions, {} lost",
        counters.len(),
        counters.first().copied().unwrap_or(0),
        counters.last().copied().unwrap_or(0),
        report["first_frame_ms"],
        report["keyframe_requests"],
        report["nacks_sent"],
        report["retransmissions"],
        report["packets_lost"],
    );
    assert_eq!(report["video_codec"], codec, "{report}");
    assert_eq!(report["audio_codec"], "opus", "{report}");
    assert!(report["audio_frames"].as_u64() >= Some(250), "{report}");
    assert_eq!(
        Some(counters.len() as u64),
        report["frames_recorded"].as_u64()
    );
    if matches!(codec, "vp9" | "av1") {
        assert_counters_complete_allowing_repeats(&counters);
    } else {
        assert_counters_complete(&first_picture_once(counters.clone()));
    }
    assert!(
        counters.len() >= 171,
        "{} of 180 frames: {report}",
        counters.len()
    );
    // Only a bound against a hang: that the player adds no wait of its own is judged
    // causally by the network test below (every join answers Chromium's checks early).
    assert!(
        report["first_frame_ms"].as_u64() < Some(5000),
        "within 5 s of watch(): {report}"
    );
}

/// `counters` with the first picture once: Chromium may encode the captured canvas
/// again as the keyframe the player asks for at the start (seen: 11, 11, 12, ...).
/// After it, every counter must be new and none missing.
fn first_picture_once(mut counters: Vec<u16>) -> Vec<u16> {
    while counters.len() > 1 && counters[1] == counters[0] {
        counters.remove(0);
    }
    counters
}

/// As [`assert_counters_complete`], but a picture may repeat the one before: Chromium's
/// VP9 and AV1 encoders now and then show the previous picture again instead of a new
/// one (seen here: 29, 29, 31 with every block a clean 0 or 255), which the decoder
/// outputs as a repeat; under load they are also slow to redraw a block of the counter
/// (seen in CI, before the counter was Gray code: 39, 36, 37, 38, 43 — bits 2 and 3
/// still as in 39), which now reads as the previous counter. Every frame the player
/// received decoded; the repeats are the sender's. One picture whose counter reads out
/// of place between two neighbours in order is taken as a misread of a blurred block,
/// not a frame out of order (seen in CI from AV1 at its start-up bitrate: 19, 22, 21,
/// 22, where 20 was due: two bits of the Gray code misread): it is left out, at most one
/// per run.
fn assert_counters_complete_allowing_repeats(counters: &[u16]) {
    // In one pass, so that the picture after a misread is judged against the one
    // before the misread (19, 22, 21, 22: only the first 22 is out of place).
    let mut misreads = Vec::new();
    let mut kept: Vec<u16> = Vec::with_capacity(counters.len());
    for (i, &now) in counters.iter().enumerate() {
        let before = kept.last().copied();
        let after = counters.get(i + 1).copied();
        if let (Some(before), Some(after)) = (before, after)
            && before <= after
            && !(before..=after).contains(&now)
        {
            misreads.push(i);
            continue;
        }
        kept.push(now);
    }
    assert!(
        misreads.len() <= 1,
        "{} pictures out of place at {misreads:?}: {counters:?}",
        misreads.len()
    );
    if let Some(&i) = misreads.first() {
        eprintln!("picture {i} misread as {} (left out)", counters[i]);
    }
    let counters = kept;
    assert!(
        counters.windows(2).all(|w| w[1] >= w[0]),
        "counters out of order: {counters:?}"
    );
    let mut distinct = counters.to_vec();
    distinct.dedup();
    let span = usize::from(counters[counters.len() - 1] - counters[0]) + 1;
    assert!(
        distinct.len() * 100 >= span * 95,
        "{} distinct of {span} frames: {counters:?}",
        distinct.len()
    );
}

#[test]
fn h264_from_chromium_decodes_cleanly_and_arrives_complete() {
    check_codec("h264", "video.h264");
}

#[test]
fn vp8_from_chromium_decodes_cleanly_and_arrives_complete() {
    check_codec("vp8", "video.ivf");
}

/// libwebrtc sends the first of the offer's codecs that its answer lists, which need not
/// be the answer's first: the player follows the payload type that arrives.
#[test]
fn a_sender_that_sends_another_listed_codec_than_the_answers_first_is_played() {
    let _one = one_at_a_time();
    let dir = tempdir();
    let mut host = LoopbackHost::new();
    let port = chromium_sender(
        &mut host,
        dir.path(),
        &["--codec", "h264", "--send-codec", "vp8"],
    );
    let report =
        play(&mut host, port, 4, dir.path(), "video.ivf").unwrap_or_else(|log| panic!("{log}"));
    assert_eq!(report["video_codec"], "vp8", "{report}");
    let counters = decoded_frame_counters(&dir.path().join("video.ivf"), 320, 240);
    assert_counters_complete(&first_picture_once(counters));
}

/// Handed our offer as it is (H.264 first) with VP8 preferred, Chromium answers VP8
/// only and sends H.264: a codec it did not answer. No track can take it: a non-zero
/// exit within the stall timeout, with an error that says so.
#[test]
fn a_sender_that_sends_a_codec_it_did_not_answer_is_a_clear_error() {
    let _one = one_at_a_time();
    let dir = tempdir();
    let mut host = LoopbackHost::new();
    let port = chromium_sender(
        &mut host,
        dir.path(),
        &["--codec", "vp8", "--keep-offer-order"],
    );
    let log =
        play(&mut host, port, 10, dir.path(), "video.ivf").expect_err("no video can be played");
    assert!(
        log.contains("no video frame for 5s")
            && log.contains("is H264 in our offer but not in the answer"),
        "{log}"
    );
}

/// On a network (the player and Chromium in namespaces of their own, joined by a veth
/// pair) Chromium gathers a host candidate, and the relay answers once its gathering is
/// complete: the answer carries the candidate. libwebrtc ends its gathering only when a
/// check of its own is answered, so the player answers the checks that come before the
/// answer (RFC 8445 §7.3) and keeps the ClientHello that comes before its own pair is
/// chosen (`core/src/whep/early_checks.rs`): 261-321 ms before, for a first frame.
/// The first join of a just-launched Chromium is its warm-up (its first
/// setRemoteDescription and createAnswer alone take 90 ms): reported, not judged.
///
/// What is judged is the mechanism, which does not depend on how fast this machine is:
/// in every join the player answered Chromium's checks before it had the answer (its
/// trace log says so), and the first frame came within 1 s. The time itself (median
/// 59-65 ms on a quiet 2-core machine, debug build; target 150 ms) is printed and
/// measured in release by `benches/play_cpu_vs_aiortc.sh`: asserted here, it failed a
/// CI run whose machine was loaded (median 162 ms, where the same commit gives 62 ms).
#[test]
fn the_first_frame_from_chromium_on_a_network_waits_for_no_timer() {
    let _one = one_at_a_time();
    let dir = tempdir();
    let mut lab = NetLab::new();
    let port = free_port();
    let mut node = lab.command(&lab.far, "node");
    let far_ip = lab.far_ip.clone();
    lab.spawn(
        "Chromium WHEP sender",
        sender_command(
            &mut node,
            dir.path(),
            port,
            &["--host", &far_ip, "--codec", "h264"],
        ),
    );
    lab.wait_listen_far(port);
    let url = format!("http://{far_ip}:{port}/whep/test");
    let mut firsts = Vec::new();
    let mut early_answers = Vec::new();
    let mut kept_dtls = Vec::new();
    for _ in 0..7 {
        let pid = lab.spawn(
            "streamhub play",
            lab.command(&lab.near, common::STREAMHUB)
                .arg("play")
                .arg(&url)
                .args(["--duration", "1", "--json"])
                .env("STREAMHUB_LOG", "warn,streamhub::whep::early_checks=trace")
                .stdout(std::fs::File::create(dir.path().join("report.json")).expect("report"))
                .stderr(std::fs::File::create(dir.path().join("play.log")).expect("log")),
        );
        let status = lab
            .wait(pid, Duration::from_secs(20))
            .expect("streamhub play ended within 20 s");
        let log = std::fs::read_to_string(dir.path().join("play.log")).unwrap_or_default();
        assert!(status.success(), "streamhub play failed: {log}");
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("report.json")).expect("report"),
        )
        .unwrap_or_else(|e| panic!("the report is not JSON ({e}); log: {log}"));
        firsts.push(report["first_frame_ms"].as_u64().expect("a first frame"));
        early_answers.push(log.matches("early connectivity check answered").count());
        kept_dtls.push(log.matches("DTLS before ICE is connected: kept").count());
    }
    let stats = lab.get_far(&format!("http://{far_ip}:{port}/stats"));
    let stats: serde_json::Value =
        serde_json::from_str(&stats).unwrap_or_else(|e| panic!("relay stats ({e}): {stats}"));
    let warm_up = firsts.remove(0);
    firsts.sort_unstable();
    let median = firsts[firsts.len() / 2];
    eprintln!(
        "from Chromium on a network: first frames {firsts:?} ms (median {median}, worst {}), \
         warm-up join {warm_up} ms, {} candidates in the answer, early checks answered per \
         join {early_answers:?}, DTLS datagrams kept until ICE connected {kept_dtls:?}",
        firsts[firsts.len() - 1],
        stats["answer_candidates"],
    );
    assert!(
        stats["answer_candidates"].as_u64() >= Some(1),
        "the answer carried no candidate: {stats}"
    );
    assert!(
        early_answers.iter().all(|&n| n >= 1),
        "a join whose checks the player did not answer before the answer (Chromium then \
         ends its gathering on a timer): {early_answers:?}"
    );
    // The early answers above are the judgment; wall time is only a bound against a
    // hang (a loaded CI machine stretches both sides: median 162 ms there, 62 ms here).
    assert!(
        firsts[firsts.len() - 1] <= 5000,
        "within 5 s of watch(): {firsts:?} ms"
    );
}

/// The relay answers at once, without waiting for Chromium's candidates (there are none
/// on this host): the pair is found from Chromium's checks (peer-reflexive). Before the
/// player took such a pair at once, this took 1.8 s; now 77-163 ms on a quiet 2-core
/// machine in a debug build (target 300 ms, printed, not judged: a loaded machine is
/// no proof of a slow player). Judged: the median of three joins within 1 s, which the
/// old way (1.8 s every time) missed; one slow join on a loaded machine is tolerated.
#[test]
fn an_answer_without_candidates_plays_its_first_frame_at_once() {
    let _one = one_at_a_time();
    let dir = tempdir();
    let mut host = LoopbackHost::new();
    let port = chromium_sender(
        &mut host,
        dir.path(),
        &["--codec", "h264", "--no-candidates"],
    );
    let mut firsts = Vec::new();
    for _ in 0..3 {
        let report = play(&mut host, port, 2, dir.path(), "video.h264")
            .unwrap_or_else(|log| panic!("{log}"));
        firsts.push(report["first_frame_ms"].as_u64().expect("a first frame"));
    }
    firsts.sort_unstable();
    eprintln!("from Chromium, no candidates: first frames {firsts:?} ms");
    assert!(
        firsts[firsts.len() / 2] <= 1000,
        "a median first frame later than 1 s: {firsts:?} ms"
    );
}

/// 2 % of every UDP packet dropped on the host, one in 50 (media, RTCP and handshakes,
/// both ways; evenly, as at random a 10 s call may lose no video packet at all):
/// libwebrtc retransmits over RTX what the player NACKs, so at least 99 % of the
/// frames are delivered intact, the counters are contiguous and nothing fails to decode.
#[test]
fn two_percent_loss_from_chromium_is_repaired_by_retransmission() {
    let _one = one_at_a_time();
    let dir = tempdir();
    let mut host = LoopbackHost::new();
    let port = chromium_sender(&mut host, dir.path(), &["--codec", "h264"]);
    host.drop_every_udp(50);
    let report =
        play(&mut host, port, 10, dir.path(), "video.h264").unwrap_or_else(|log| panic!("{log}"));
    let counters = first_picture_once(decoded_frame_counters(
        &dir.path().join("video.h264"),
        320,
        240,
    ));
    let span = counters
        .last()
        .zip(counters.first())
        .map_or(0, |(last, first)| usize::from(last - first) + 1);
    eprintln!(
        "{}",
        common::loss_summary("from Chromium at 2 % loss", &report, &counters)
    );
    assert_counters_complete(&counters);
    assert!(span >= 200, "{span} frames in 10 s: {report}");
    assert!(
        counters.len() * 100 >= span * 99,
        "{} of {span} frames: {report}",
        counters.len()
    );
    assert!(report["retransmissions"].as_u64() > Some(0), "{report}");
    assert!(report["packets_recovered"].as_u64() > Some(0), "{report}");
}

#[test]
fn vp9_from_chromium_decodes_cleanly_and_arrives_complete() {
    check_codec("vp9", "video.ivf");
}

#[test]
fn av1_from_chromium_decodes_cleanly_and_arrives_complete() {
    check_codec("av1", "video.ivf");
}
