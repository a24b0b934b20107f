//! One step of the RTMP handshake (C0-C2/S0-S2), shared by the publisher's session and
//! the hub's ingest session. rml_rtmp's `Handshake` does the digest work; this only
//! collects its answer and what follows it.

use bytes::BytesMut;
use rml_rtmp::handshake::{Handshake, HandshakeError, HandshakeProcessResult};

/// Feeds `data` to `handshake`, appending its answer to `out`. `None` while the
/// handshake goes on; once it completes, the bytes that came after it (chunks).
pub(crate) fn feed_handshake(
    handshake: &mut Handshake,
    data: &[u8],
    out: &mut BytesMut,
) -> Result<Option<Vec<u8>>, HandshakeError> {
    match handshake.process_bytes(data)? {
        HandshakeProcessResult::InProgress { response_bytes } => {
            out.extend_from_slice(&response_bytes);
            Ok(None)
        }
        HandshakeProcessResult::Completed {
            response_bytes,
            remaining_bytes,
        } => {
            out.extend_from_slice(&response_bytes);
            Ok(Some(remaining_bytes))
        }
    }
}
