//! Chat frames on the client: a server's text frames fed to the client's own protocol
//! state machine (`streamhub::_internal_test_exports::chat_client_fuzzing::DetachedClient`, the sans-I/O
//! `Connection` the client's task drives), with 50 ms between frames: the connect
//! reply, join results into the rooms' cursors, send acknowledgements and refusals into
//! the outbox, pushed messages through the cursors (duplicates, gaps), kicks,
//! disconnects with the backoff and the re-joins after them. Nothing here copies the
//! client's routing: what runs is the client's.
//!
//! Input: lines, one server frame each. The client joined rooms `a` and `b` (commands 2
//! and 3) and queued messages for `a`, `b` and `z`; a send gets the next command id
//! (the first is 4) when its room is joined and nothing is in flight.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use streamhub::_internal_test_exports::chat_client_fuzzing::DetachedClient;

fuzz_target!(|data: &[u8]| {
    let mut client = DetachedClient::new();
    for line in data.split(|&b| b == b'\n') {
        let Ok(text) = std::str::from_utf8(line) else {
            continue;
        };
        if !client.frame(text, Duration::from_millis(50)) {
            return;
        }
    }
});
