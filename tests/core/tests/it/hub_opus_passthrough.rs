//! Opus from an Enhanced RTMP publisher reaches the hub's WHEP viewers untouched: our
//! publisher sends Opus packets, the hub passes them through, our player hands the
//! same bytes back.

use std::time::{Duration, Instant};

use streamhub::media::{AudioFormat, AudioFrame};
use streamhub::rtmp::{PublishConfig, Publisher};
use streamhub::whep::{Codec, MediaKind, PlayConfig, Player};

use streamhub_test_support::loopback_hub;
use streamhub_test_support::opus;

use opus::tone_packets as opus_packets;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opus_from_the_publisher_reaches_viewers_byte_for_byte() {
    let (loopback_hub::TestHub { hub, http, rtmp }, server) = loopback_hub::start_serving().await;
    let (http_addr, rtmp_addr) = (http, rtmp);

    let publisher = Publisher::connect(&format!("rtmp://{rtmp_addr}/live/voice"), {
        let mut config = PublishConfig::default();
        config.timestamp_origin_us = Some(0);
        config
    })
    .await
    .expect("publish");
    let packets = opus_packets(150);
    // The first packet makes the track known (its OpusHead comes first).
    publisher
        .send_audio(&AudioFrame::new(packets[0].clone(), AudioFormat::Opus, 0))
        .await
        .expect("send");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !hub
        .streams()
        .iter()
        .any(|s| s.name == "voice" && s.audio.is_some())
    {
        assert!(
            Instant::now() < deadline,
            "the stream never went live with audio"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let audio = hub.streams()[0].audio.clone().expect("audio");
    assert_eq!(
        (audio.codec.as_str(), audio.source.as_str(), audio.channels),
        ("opus", "opus", 2)
    );

    let mut player = Player::connect(
        &format!("http://{http_addr}/whep/voice"),
        PlayConfig::default(),
    )
    .await
    .expect("play");
    let sender = tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        for (i, packet) in packets.iter().enumerate().skip(1) {
            tokio::time::sleep_until(start + Duration::from_millis(20 * i as u64)).await;
            let frame = AudioFrame::new(packet.clone(), AudioFormat::Opus, 20_000 * i as i64);
            publisher.send_audio(&frame).await.expect("send");
        }
        publisher.finish().await.expect("finish");
        packets
    });
    let mut received = Vec::new();
    let collect = async {
        while let Some(frame) = player.next_frame().await {
            if frame.kind == MediaKind::Audio {
                assert_eq!(frame.codec, Codec::Opus);
                received.push(frame.data.to_vec());
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(15), collect)
        .await
        .expect("the player ends when the stream ends");
    let packets = sender.await.expect("sender");
    let _ = player.close().await;
    hub.shutdown(Duration::from_millis(100), Duration::from_secs(1))
        .await;
    let _ = server.await;

    // A contiguous, byte-identical run of what was sent, up to the last packet.
    assert!(
        received.len() >= 100,
        "only {} packets arrived",
        received.len()
    );
    let start = packets
        .iter()
        .position(|p| *p == received[0])
        .expect("the first packet received was sent");
    for (i, packet) in received.iter().enumerate() {
        assert_eq!(packet, &packets[start + i], "packet {} differs", start + i);
    }
    assert_eq!(
        start + received.len(),
        packets.len(),
        "nothing lost at the end"
    );
}
