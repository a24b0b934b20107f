//! RTMP media as the hub reads a publisher's audio and video messages: FLV tag bodies,
//! Enhanced RTMP (Opus) headers, AVC sequence headers and AVCC frames cut into RTP
//! payloads, AAC sequence headers (`hub::ingest::feed::Feed`).
//!
//! The feed's Opus bitrate is 0, which the transcoder refuses: AAC frames are then
//! dropped, as in a hub built without it. The transcoder is the `transcode` target's
//! (its Opus encoder costs a millisecond per frame, a hundred times this target's input).
//!
//! Input: records (`streamhub_fuzz::records`): kind, timestamp, length, body.
#![no_main]

use std::sync::Arc;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use streamhub::_internal_test_exports::hub::ingest::feed::Feed;
use streamhub::_internal_test_exports::hub::stream::LiveStream;
use streamhub_fuzz::records;

fuzz_target!(|data: &[u8]| {
    let stream = Arc::new(LiveStream::new("fuzz"));
    let mut viewer = stream.subscribe();
    let mut feed = Feed::new(stream.clone(), 0);
    for record in records::parse(data) {
        let body = Bytes::copy_from_slice(record.body);
        // The connection logs a bad message and goes on with the next, as here.
        let _ = if record.video {
            feed.video(record.timestamp_ms, body)
        } else {
            feed.audio(record.timestamp_ms, body)
        };
        while viewer.live.try_recv().is_ok() {}
    }
    let _ = (stream.info(), stream.cached_frames(), stream.bitrate_bps());
});
