//! The hub as a sender on a lossy link: `streamhub hub` and `streamhub play` on a host
//! of the test's own whose only network is loopback, with 2 % of every UDP packet
//! dropped (one in 50, nftables `numgen inc`: media, RTCP and handshakes, both ways;
//! the RTMP ingest is TCP and untouched). The player NACKs what is missing and the hub answers
//! from its send history: every picture played is bit-identical to the source and none
//! is missing.

use crate::common;
use crate::hub_harness;
use streamhub_test_support::netlab;

use std::time::Duration;

use common::{STREAMHUB, free_port, tempdir};
use hub_harness::baseline_clip;
use netlab::LoopbackHost;
use streamhub_test_support::pictures::{assert_contiguous_run, picture_hashes};

#[test]
fn two_percent_loss_from_the_hub_is_repaired_bit_exact() {
    let dir = tempdir();
    let clip = dir.path().join("clip.flv");
    baseline_clip(&clip, 20);
    let mut host = LoopbackHost::new();
    let (http, rtmp) = (free_port(), free_port());
    host.start_hub_publishing(STREAMHUB, (http, rtmp), &clip, "demo");
    host.drop_every_udp(50);
    let play = host.start_play(
        STREAMHUB,
        &format!("http://127.0.0.1:{http}/whep/demo"),
        10,
        dir.path(),
        &[],
    );
    let report = host.finish_play(play, dir.path(), Duration::from_secs(40));
    let recording = dir.path().join("played.h264");
    let source = picture_hashes(&clip);
    let played = picture_hashes(&recording);
    let start = assert_contiguous_run(&source, &played);
    eprintln!(
        "from the hub at 2 % loss: {} pictures bit-identical from source picture {start}; \
         {} NACKs sent, {} retransmissions (RTX), {} packets recovered, {} lost, {} keyframe \
         requests, {} freezes",
        played.len(),
        report["nacks_sent"],
        report["retransmissions"],
        report["packets_recovered"],
        report["packets_lost"],
        report["keyframe_requests"],
        report["freezes"],
    );
    // A lost handshake flight costs 1 s (the DTLS timer), a lost first packet of the
    // keyframe the next keyframe (1 s): the first picture may come 3 s in, and from then
    // on every one of the 30 a second must be there.
    let first_ms = report["first_frame_ms"].as_u64().expect("a first frame");
    assert!(
        first_ms <= 3000,
        "first picture after {first_ms} ms: {report}"
    );
    let expected = (10_000 - first_ms) * 30 / 1000;
    assert!(
        played.len() as u64 * 100 >= expected * 97,
        "{} pictures in the {expected} frame times after the first: {report}",
        played.len()
    );
    assert!(report["nacks_sent"].as_u64() > Some(0), "{report}");
    assert!(report["packets_recovered"].as_u64() > Some(0), "{report}");
    // The player offers RTX, so the hub repairs over it: every retransmission the
    // player counts came on the RTX stream.
    assert!(report["retransmissions"].as_u64() > Some(0), "{report}");
}
