//! Opus test packets: 20 ms stereo packets of a 440 Hz tone, from the encoder the hub's
//! transcoder uses (tests that need them only pass them through).

/// `count` consecutive 20 ms stereo packets of a 440 Hz tone at a quarter of full scale.
pub fn tone_packets(count: usize) -> Vec<Vec<u8>> {
    let mut encoder =
        opus_pure::OpusEncoder::new(48_000, 2, opus_pure::Application::Audio).expect("encoder");
    let mut packet = vec![0u8; opus_pure::MAX_PACKET_BYTES];
    (0..count)
        .map(|n| {
            let pcm: Vec<f32> = (0..960)
                .flat_map(|i| {
                    let t = (n * 960 + i) as f32 / 48_000.0;
                    let v = (t * 440.0 * std::f32::consts::TAU).sin() * 0.25;
                    [v, v]
                })
                .collect();
            let len = encoder.encode(&pcm, 960, &mut packet).expect("encode");
            packet[..len].to_vec()
        })
        .collect()
}
