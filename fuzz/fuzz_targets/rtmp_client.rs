//! RTMP as the publisher reads a server: chunk decoding (rml_rtmp's deserializer),
//! protocol control messages and AMF0/AMF3 commands, through the sans-I/O
//! `PublishSession` after a completed handshake.
//!
//! Input: one byte that sets how the rest is cut into reads (0: in one read, n: reads
//! of n bytes), then the server's bytes after S0, S1 and S2.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use streamhub::_internal_test_exports::rtmp::packetizer::{MediaMessage, MessageKind};
use streamhub::_internal_test_exports::rtmp::session::{PublishSession, SessionConfig};
use streamhub::rtmp::RtmpUrl;

/// S0 (version 3), S1 and S2 of 1536 zero bytes: the original (digest-less) handshake.
fn handshake() -> Vec<u8> {
    let mut bytes = vec![0u8; 1 + 2 * 1536];
    bytes[0] = 3;
    bytes
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, server)) = data.split_first() else {
        return;
    };
    let url = RtmpUrl::parse("rtmp://127.0.0.1/live/key").expect("a valid URL");
    let mut session = PublishSession::new(url, SessionConfig::default()).expect("a session starts");
    session
        .handle_input(&handshake())
        .expect("the handshake completes");
    let step = if step == 0 {
        server.len().max(1)
    } else {
        usize::from(step)
    };
    for read in server.chunks(step) {
        let result = session.handle_input(read);
        let _ = session.take_output();
        while session.poll_status().is_some() {}
        if result.is_err() {
            // The driver drops the connection on any error.
            let _ = session.closed_by_server();
            return;
        }
        if session.is_live() {
            let message = MediaMessage {
                kind: MessageKind::Video,
                timestamp: 0,
                header: Bytes::from_static(&[0x17, 1, 0, 0, 0]),
                body: Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88]),
                is_frame: true,
                keyframe: true,
                disposable: false,
            };
            session
                .write_media(&message)
                .expect("a live session writes media");
            session.ping(1).expect("a live session pings");
        }
    }
    let _ = session.bytes_received();
    let _ = session.closed_by_server();
    let _ = session.finish();
    let _ = session.take_output();
});
