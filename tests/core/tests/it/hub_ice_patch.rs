//! PATCH on the hub's WHEP sessions (RFC 9725 §4.3), against the real hub and player:
//! an ICE restart the player asks for keeps the media coming; trickled candidates are
//! taken (204); fragments of the wrong type, malformed, oversized or for no session are
//! refused with the right status, and the session plays on.

use std::time::Duration;

use streamhub::hub::Hub;
use streamhub::media::{AudioFormat, AudioFrame};
use streamhub::rtmp::{PublishConfig, Publisher};
use streamhub::whep::{MediaKind, PlayConfig, Player};

use streamhub_test_support::loopback_hub;
use streamhub_test_support::opus;

/// A hub on loopback with `name` published (Opus, in real time, for a minute).
async fn hub_with_stream(name: &'static str) -> (Hub, std::net::SocketAddr) {
    let loopback_hub::TestHub { hub, http, rtmp } = loopback_hub::start().await;
    tokio::spawn(async move {
        let publisher = Publisher::connect(
            &format!("rtmp://{rtmp}/live/{name}"),
            PublishConfig::default(),
        )
        .await
        .expect("publish");
        let start = tokio::time::Instant::now();
        for (i, packet) in opus::tone_packets(3000).into_iter().enumerate() {
            tokio::time::sleep_until(start + Duration::from_millis(20 * i as u64)).await;
            let frame = AudioFrame::new(packet, AudioFormat::Opus, 20_000 * i as i64);
            if publisher.send_audio(&frame).await.is_err() {
                return;
            }
        }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !hub
        .streams()
        .iter()
        .any(|s| s.name == name && s.audio.is_some())
    {
        assert!(tokio::time::Instant::now() < deadline, "never live");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (hub, http)
}

/// Audio frames received in the next `within`.
async fn frames_for(player: &mut Player, within: Duration) -> usize {
    let mut count = 0;
    let _ = tokio::time::timeout(within, async {
        while let Some(frame) = player.next_frame().await {
            if frame.kind == MediaKind::Audio {
                count += 1;
            }
        }
    })
    .await;
    count
}

async fn patch(url: &str, content_type: &str, body: impl Into<reqwest::Body>) -> u16 {
    streamhub::_internal_test_exports::whep::http::client(Duration::from_secs(5))
        .expect("client")
        .patch(url)
        .header("Content-Type", content_type)
        .body(body)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("PATCH")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ice_restart_keeps_the_media_coming_and_bad_fragments_are_refused() {
    let (_hub, http) = hub_with_stream("patched").await;
    let mut player = Player::connect(
        &format!("http://{http}/whep/patched"),
        PlayConfig::default(),
    )
    .await
    .expect("connect");
    assert!(frames_for(&mut player, Duration::from_secs(1)).await >= 25);
    let resource = player.resource().to_string();
    const FRAG: &str = "application/trickle-ice-sdpfrag";

    // Trickled candidates of the generation in force.
    let candidate = "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n\
        a=candidate:9 1 udp 2130706431 127.0.0.1 9 typ host\r\na=end-of-candidates\r\n";
    assert_eq!(patch(&resource, FRAG, candidate).await, 204);
    // Refused: another media type, a malformed fragment, not UTF-8, too large, no such
    // session.
    assert_eq!(patch(&resource, "application/sdp", candidate).await, 415);
    assert_eq!(patch(&resource, FRAG, "a=ice-ufrag:only\r\n").await, 400);
    assert_eq!(patch(&resource, FRAG, vec![0xff, 0xfe, 0x00]).await, 400);
    assert_eq!(patch(&resource, FRAG, "a=x\r\n".repeat(10_000)).await, 413);
    let stranger = format!("http://{http}/whep/patched/0000");
    assert_eq!(patch(&stranger, FRAG, candidate).await, 404);

    // An ICE restart: new credentials both ways, and the audio goes on.
    player.restart_ice().await.expect("ICE restart");
    let after = frames_for(&mut player, Duration::from_secs(2)).await;
    assert!(after >= 60, "{after} frames in 2 s after the restart");
    let stats = player.stats();
    assert_eq!(stats.ice_restarts, 1);
    assert_eq!(player.failure().map(ToString::to_string), None);
    player.close().await.expect("close");
}
