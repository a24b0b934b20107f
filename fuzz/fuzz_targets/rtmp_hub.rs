//! RTMP as the hub reads a publisher: our chunk reader, AMF0 decoder and the ingest
//! session's commands, control messages and media, after a completed handshake.
//!
//! Input: one byte that sets how the rest is cut into reads (0: in one read, n: reads
//! of n bytes; its top bit refuses publishes instead of accepting them), then the
//! publisher's bytes after C2.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamhub::hub::ingest::session::{IngestEvent, IngestSession};
use streamhub::rtmp::chunk_reader::ReaderLimits;

/// C0 and C1 of the original (digest-less) handshake.
fn c0c1() -> Vec<u8> {
    let mut bytes = vec![0u8; 1 + 1536];
    bytes[0] = 3;
    bytes
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, publisher)) = data.split_first() else {
        return;
    };
    let refuse = first & 0x80 != 0;
    let step = usize::from(first & 0x7f);
    let step = if step == 0 {
        publisher.len().max(1)
    } else {
        step
    };
    // Small limits, so that the limits themselves are reached.
    let mut hub = IngestSession::new(ReaderLimits {
        max_message_len: 64 << 10,
        max_chunk_streams: 8,
        max_buffered: 128 << 10,
    });
    hub.handle_input(&c0c1()).expect("C0 and C1 are accepted");
    let s0s1s2 = hub.take_output().expect("S0, S1 and S2");
    // C2 echoes S1.
    hub.handle_input(&s0s1s2[1..1537])
        .expect("C2 completes the handshake");
    for read in publisher.chunks(step) {
        let result = hub.handle_input(read);
        while let Some(event) = hub.poll_event() {
            match event {
                IngestEvent::PublishRequested { key } => {
                    assert!(!format!("{key:?}").contains(key.expose()) || key.expose().is_empty());
                    if refuse {
                        hub.refuse("NetStream.Publish.BadName", "refused");
                    } else {
                        hub.accept_publish();
                    }
                }
                IngestEvent::PlayRequested => hub.refuse("NetStream.Play.Failed", "no"),
                _ => {}
            }
        }
        let _ = hub.take_output();
        if result.is_err() || hub.is_closing() {
            return;
        }
    }
});
