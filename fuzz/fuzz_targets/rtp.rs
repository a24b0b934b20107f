//! RTP as the WHEP player receives it: a sequence of packets (reordered, lost,
//! duplicated, on a clock) through the reorder buffer (`whep::jitter`) into a
//! depacketizer (H.264, VP8, H.265, VP9 or AV1), as the player's track loop does.
//!
//! Input: `streamhub_fuzz::rtp` (a set-up, an SDP fragment, then packets).
#![no_main]

use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use streamhub::_internal_test_exports::whep::depacketize::{
    AssembledFrame, Av1Depacketizer, H264Depacketizer, H265Depacketizer, RtpPayload,
    Vp8Depacketizer, Vp9Depacketizer,
};
use streamhub::_internal_test_exports::whep::jitter::{JitterBuffer, JitterOutput};
use streamhub_fuzz::rtp;

enum Assembler {
    H264(H264Depacketizer),
    Vp8(Vp8Depacketizer),
    H265(H265Depacketizer),
    Vp9(Vp9Depacketizer),
    Av1(Av1Depacketizer),
}

impl Assembler {
    fn push(&mut self, packet: &RtpPayload) -> Option<AssembledFrame> {
        match self {
            Assembler::H264(d) => d.push(packet),
            Assembler::Vp8(d) => d.push(packet),
            Assembler::H265(d) => d.push(packet),
            Assembler::Vp9(d) => d.push(packet),
            Assembler::Av1(d) => d.push(packet),
        }
    }

    fn lost(&mut self) {
        match self {
            Assembler::H264(d) => d.lost(),
            Assembler::Vp8(d) => d.lost(),
            Assembler::H265(d) => d.lost(),
            Assembler::Vp9(d) => d.lost(),
            Assembler::Av1(d) => d.lost(),
        }
    }

    fn needs_keyframe(&self) -> bool {
        match self {
            Assembler::H264(d) => d.needs_keyframe(),
            Assembler::Vp8(d) => d.needs_keyframe(),
            Assembler::H265(d) => d.needs_keyframe(),
            Assembler::Vp9(d) => d.needs_keyframe(),
            Assembler::Av1(d) => d.needs_keyframe(),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let case = rtp::parse(data);
    let mut assembler = match rtp::CODECS[usize::from(case.setup.codec) % rtp::CODECS.len()] {
        "h264" => Assembler::H264(H264Depacketizer::with_sdp(&case.sdp)),
        "vp8" => Assembler::Vp8(Vp8Depacketizer::new()),
        "h265" => Assembler::H265(H265Depacketizer::with_sdp(&case.sdp)),
        "vp9" => Assembler::Vp9(Vp9Depacketizer::new()),
        _ => Assembler::Av1(Av1Depacketizer::new()),
    };
    let latency = Duration::from_millis(u64::from(case.setup.latency_ms));
    let mut jitter = JitterBuffer::new(latency, usize::from(case.setup.max_packets));
    jitter.set_retry_interval(Duration::from_millis(20));
    let mut now = Instant::now();
    let (mut seq, mut timestamp) = (0u16, 0u32);
    let mut out = |jitter: &mut JitterBuffer<RtpPayload>, now: Instant| {
        while let Some(output) = jitter.pop(now) {
            match output {
                JitterOutput::Packet(packet) => {
                    let _ = assembler.push(&packet);
                }
                JitterOutput::Lost(n) => {
                    assert!(n > 0, "a gap of no packets");
                    assembler.lost();
                }
            }
        }
        let _ = assembler.needs_keyframe();
    };
    for (packet, payload) in case.packets {
        now += Duration::from_millis(u64::from(packet.advance_ms));
        seq = seq.wrapping_add_signed(packet.seq_step);
        timestamp = timestamp.wrapping_add(packet.ts_step);
        let _ = jitter.push(
            seq,
            RtpPayload {
                timestamp,
                marker: packet.marker,
                payload: Bytes::copy_from_slice(payload),
            },
            now,
        );
        jitter.set_jitter(Duration::from_micros(u64::from(packet.advance_ms) * 100));
        out(&mut jitter, now);
        // The buffer's promise: never more than its capacity held.
        assert!(jitter.len() <= usize::from(case.setup.max_packets).max(1));
    }
    // The end of the stream: whatever waits is given up on or released.
    if let Some(deadline) = jitter.next_deadline() {
        out(&mut jitter, deadline);
    }
});
