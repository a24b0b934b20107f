//! RTMP as the hub reads a publisher: our chunk reader, AMF0 decoder and the ingest
//! session's commands, control messages and media, after a completed handshake (the
//! handshake itself is rml_rtmp's, and its digests would take most of each run).
//!
//! Input: one byte that sets how the rest is cut into reads (0: in one read, n: reads
//! of n bytes; its top bit refuses publishes instead of accepting them), then the
//! publisher's bytes after C2.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamhub::_internal_test_exports::hub::ingest::session::{IngestEvent, IngestSession};
use streamhub::_internal_test_exports::rtmp::chunk_reader::ReaderLimits;

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
    let mut hub = IngestSession::past_handshake(ReaderLimits {
        max_message_len: 64 << 10,
        max_chunk_streams: 8,
        max_buffered: 128 << 10,
    });
    for read in publisher.chunks(step) {
        let result = hub.handle_input(read);
        while let Some(event) = hub.poll_event() {
            match event {
                IngestEvent::PublishRequested { key } => {
                    // Exactly the redacted form: a short key (`1`, `by`) may well be part
                    // of it, so "does not contain the key" would be the wrong check.
                    assert_eq!(
                        format!("{key:?}"),
                        format!("StreamKey({} bytes, hidden)", key.expose().len())
                    );
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
