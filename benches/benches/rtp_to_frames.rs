//! RTP to frame assembly: the reorder buffer plus the H.264 and VP8 depacketizers.
//!
//! Input: 300 frames (10 s at 30 fps) of synthetic 4 Mbit/s video, an IDR every 2 s,
//! cut into 1200-byte RTP payloads the way senders do (FU-A for H.264, partitions
//! with the payload descriptor for VP8). Throughput is in payload bytes; divide 300 by
//! the time for frames per second.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use streamhub::_internal_test_exports::whep::depacketize::{
    H264Depacketizer, RtpPayload, Vp8Depacketizer,
};
use streamhub::_internal_test_exports::whep::jitter::{JitterBuffer, JitterOutput};

const MTU: usize = 1200;
const FRAMES: u32 = 300;

fn frame_size(i: u32) -> usize {
    if i.is_multiple_of(60) { 60_000 } else { 15_000 }
}

fn h264_packets() -> Vec<(u16, RtpPayload)> {
    let mut out = Vec::new();
    let mut seq = 0u16;
    for i in 0..FRAMES {
        let ts = i * 3000;
        let nal_type: u8 = if i.is_multiple_of(60) { 5 } else { 1 };
        if nal_type == 5 {
            let stap = vec![
                0x78, 0, 4, 0x67, 0x42, 0xe0, 0x1f, 0, 4, 0x68, 0xce, 0x3c, 0x80,
            ];
            out.push((
                seq,
                RtpPayload {
                    timestamp: ts,
                    marker: false,
                    payload: Bytes::from(stap),
                },
            ));
            seq = seq.wrapping_add(1);
        }
        let body = vec![(i % 251) as u8; frame_size(i)];
        let chunks: Vec<&[u8]> = body.chunks(MTU - 2).collect();
        for (n, chunk) in chunks.iter().enumerate() {
            let start = n == 0;
            let end = n == chunks.len() - 1;
            let mut payload = vec![
                0x60 | 28,
                (u8::from(start) << 7) | (u8::from(end) << 6) | nal_type,
            ];
            payload.extend_from_slice(chunk);
            out.push((
                seq,
                RtpPayload {
                    timestamp: ts,
                    marker: end,
                    payload: Bytes::from(payload),
                },
            ));
            seq = seq.wrapping_add(1);
        }
    }
    out
}

fn vp8_packets() -> Vec<(u16, RtpPayload)> {
    let mut out = Vec::new();
    let mut seq = 0u16;
    for i in 0..FRAMES {
        let ts = i * 3000;
        let mut body = vec![(i % 251) as u8; frame_size(i)];
        body[0] = if i.is_multiple_of(60) { 0x10 } else { 0x11 }; // P bit clear on keyframes
        let chunks: Vec<&[u8]> = body.chunks(MTU - 4).collect();
        for (n, chunk) in chunks.iter().enumerate() {
            let mut payload = vec![
                0x80 | if n == 0 { 0x10 } else { 0 },
                0x80,
                0x80 | (i >> 8) as u8,
                i as u8,
            ];
            payload.extend_from_slice(chunk);
            out.push((
                seq,
                RtpPayload {
                    timestamp: ts,
                    marker: n == chunks.len() - 1,
                    payload: Bytes::from(payload),
                },
            ));
            seq = seq.wrapping_add(1);
        }
    }
    out
}

fn assemble(packets: &[(u16, RtpPayload)], mut push: impl FnMut(&RtpPayload) -> bool) -> u32 {
    let now = Instant::now();
    let mut jitter = JitterBuffer::new(Duration::from_millis(100), 2048);
    let mut frames = 0;
    for (seq, packet) in packets {
        jitter.push(*seq, packet.clone(), now);
        while let Some(out) = jitter.pop(now) {
            if let JitterOutput::Packet(p) = out
                && push(&p)
            {
                frames += 1;
            }
        }
    }
    frames
}

fn bench(c: &mut Criterion) {
    let h264 = h264_packets();
    let vp8 = vp8_packets();
    let bytes =
        |p: &[(u16, RtpPayload)]| p.iter().map(|(_, p)| p.payload.len() as u64).sum::<u64>();

    let mut group = c.benchmark_group("rtp_to_frames");
    group.sample_size(30);
    group.throughput(Throughput::Bytes(bytes(&h264)));
    group.bench_function("h264_300_frames_4mbit", |b| {
        b.iter(|| {
            let mut d = H264Depacketizer::new();
            let n = assemble(black_box(&h264), |p| d.push(p).is_some());
            assert_eq!(n, FRAMES);
        })
    });
    group.throughput(Throughput::Bytes(bytes(&vp8)));
    group.bench_function("vp8_300_frames_4mbit", |b| {
        b.iter(|| {
            let mut d = Vp8Depacketizer::new();
            let n = assemble(black_box(&vp8), |p| d.push(p).is_some());
            assert_eq!(n, FRAMES);
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
