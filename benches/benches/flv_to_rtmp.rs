//! FLV tag to RTMP chunk serialization: read tags, packetize, chunk at 4096 bytes.
//!
//! Input: 10 s of synthetic 8 Mbit/s video (30 fps, a keyframe every 2 s) and 128 kbit/s
//! AAC, as an in-memory FLV file. Throughput is reported in bytes of FLV read.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use streamhub::_internal_test_exports::rtmp::chunk::{ChunkWriter, MessageHeader};
use streamhub::_internal_test_exports::rtmp::packetizer::{MessageKind, Packetizer};
use streamhub::media::flv::{FlvPayload, FlvReader};
use streamhub::rtmp::StreamMetadata;

const SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00,
    0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2d, 0x96,
];
const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

fn tag(out: &mut Vec<u8>, tag_type: u8, ts: u32, body: &[u8]) {
    out.push(tag_type);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    let t = ts.to_be_bytes();
    out.extend_from_slice(&[t[1], t[2], t[3], t[0], 0, 0, 0]);
    out.extend_from_slice(body);
    out.extend_from_slice(&((body.len() + 11) as u32).to_be_bytes());
}

fn synthetic_flv(seconds: u32) -> Vec<u8> {
    let mut out = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
    let mut record = vec![1, 0x64, 0, 0x1e, 0xff, 0xe1];
    record.extend_from_slice(&(SPS.len() as u16).to_be_bytes());
    record.extend_from_slice(SPS);
    record.push(1);
    record.extend_from_slice(&(PPS.len() as u16).to_be_bytes());
    record.extend_from_slice(PPS);
    tag(&mut out, 9, 0, &[&[0x17, 0, 0, 0, 0][..], &record].concat());
    tag(&mut out, 8, 0, &[0xaf, 0, 0x12, 0x10]);
    let mut audio_ts = 0.0f64;
    for frame in 0..seconds * 30 {
        let ts = frame * 1000 / 30;
        let key = frame % 60 == 0;
        let size: usize = if key { 120_000 } else { 31_000 };
        let mut body = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        body.extend_from_slice(&((size - 4) as u32).to_be_bytes());
        body.push(if key { 0x65 } else { 0x41 });
        body.resize(5 + size, (frame % 251) as u8);
        tag(&mut out, 9, ts, &body);
        while audio_ts <= f64::from(ts) {
            tag(
                &mut out,
                8,
                audio_ts as u32,
                &[&[0xaf, 1][..], &[7u8; 370]].concat(),
            );
            audio_ts += 1024.0 * 1000.0 / 44100.0;
        }
    }
    out
}

fn serialize(flv: &[u8], out: &mut BytesMut) -> usize {
    let mut reader = FlvReader::new(flv).expect("valid FLV");
    let mut packetizer = Packetizer::new(Some(0), StreamMetadata::default());
    let mut writer = ChunkWriter::new();
    writer.set_chunk_size(4096);
    let mut total = 0;
    while let Some(tag) = reader.next_tag().expect("valid tag") {
        let messages = match tag.payload {
            FlvPayload::VideoConfig(c) => {
                packetizer.set_video_config(c);
                continue;
            }
            FlvPayload::AudioConfig(c) => {
                packetizer.set_audio_config(c);
                continue;
            }
            FlvPayload::Video(frame) => packetizer.video(&frame).expect("frame"),
            FlvPayload::Audio(frame) => packetizer.audio(&frame).expect("frame"),
            _ => continue,
        };
        for m in messages {
            let (csid, type_id) = match m.kind {
                MessageKind::Video => (6, 9),
                MessageKind::Audio => (4, 8),
                MessageKind::Data => (5, 18),
            };
            let header = MessageHeader {
                csid,
                timestamp: m.timestamp,
                type_id,
                stream_id: 1,
            };
            writer
                .write(out, header, &[&m.header, &m.body])
                .expect("chunk");
        }
        // A socket write would drain the buffer here.
        total += out.len();
        out.clear();
    }
    total
}

fn bench(c: &mut Criterion) {
    let flv = synthetic_flv(10);
    let mut group = c.benchmark_group("flv_to_rtmp_chunks");
    group.throughput(Throughput::Bytes(flv.len() as u64));
    group.sample_size(20);
    let mut out = BytesMut::with_capacity(1 << 20);
    let written = serialize(&flv, &mut out);
    assert!(
        written >= flv.len() * 99 / 100,
        "{written} of {} bytes",
        flv.len()
    );
    group.bench_function("10s_8mbit_h264_aac", |b| {
        b.iter(|| black_box(serialize(black_box(&flv), &mut out)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
