//! AAC-LC to Opus transcoding (WebRTC egress): decode, resample 44.1 → 48 kHz, encode
//! 20 ms Opus packets at 64 kbit/s.
//!
//! Input: 10 s of stereo 44.1 kHz AAC-LC (128 kbit/s, 1000 Hz left, 1500 Hz right): the
//! 1 s ffmpeg fixture of the core's transcoder tests, looped, with continuous timestamps.
//! One iteration transcodes the whole 10 s with a new transcoder; 10 s divided by the time
//! per iteration is the real-time factor on one core.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use streamhub::media::transcode::AacToOpus;
use streamhub::media::{AudioSpecificConfig, split_adts};

const FIXTURE: &[u8] =
    include_bytes!("../../core/src/media/transcode/testdata/sine_1k_1k5_stereo_44100.aac");

/// AAC frames in 10 s at 44.1 kHz.
const FRAMES: usize = 10 * 44_100 / 1024 + 1;

fn ten_seconds() -> (AudioSpecificConfig, Vec<(Bytes, i64)>) {
    let frames = split_adts(&Bytes::from_static(FIXTURE)).expect("valid ADTS fixture");
    let config = frames[0].config.clone();
    let units = (0..FRAMES)
        .map(|index| {
            let pts_us = (index as i64 * 1024 * 1_000_000) / 44_100;
            (frames[index % frames.len()].payload.clone(), pts_us)
        })
        .collect();
    (config, units)
}

fn transcode(config: &AudioSpecificConfig, units: &[(Bytes, i64)]) -> usize {
    let mut transcoder = AacToOpus::new(config, 64_000).expect("AAC-LC config");
    let mut bytes = 0;
    for (unit, pts_us) in units {
        for packet in transcoder.push(unit, *pts_us).expect("decodes") {
            bytes += packet.data.len();
        }
    }
    for packet in transcoder.flush().expect("flushes") {
        bytes += packet.data.len();
    }
    bytes
}

fn bench(c: &mut Criterion) {
    let (config, units) = ten_seconds();
    let mut group = c.benchmark_group("aac_to_opus");
    // One element = one AAC access unit (1024 samples, ~23.2 ms).
    group.throughput(Throughput::Elements(units.len() as u64));
    group.sample_size(10);
    let opus_bytes = transcode(&config, &units);
    // 64 kbit/s for ~10 s is ~80 kB; a broken pipeline would be far off.
    assert!(
        (60_000..100_000).contains(&opus_bytes),
        "{opus_bytes} bytes of Opus"
    );
    group.bench_function("10s_stereo_44100_to_opus_64k", |b| {
        b.iter(|| black_box(transcode(black_box(&config), black_box(&units))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
