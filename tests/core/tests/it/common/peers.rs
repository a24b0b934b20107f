//! Real peers for the session tests: nginx-rtmp and the aiortc WHEP sender on loopback
//! (from `streamhub-test-support`), and the clips they send.

use std::fs;
use std::path::Path;

pub use streamhub_test_support::aiortc::AiortcWhep;
pub use streamhub_test_support::ffprobe::{of_kind, packets, packets_so_far};
pub use streamhub_test_support::nginx::{Nginx, NginxOptions};
pub use streamhub_test_support::{Clip, tempdir};

/// An FLV clip: H.264 constrained baseline (no B-frames), a keyframe every 30 frames,
/// AAC, 320x240 at 30 fps.
pub fn make_clip(path: &Path, seconds: u32) {
    Clip {
        size: "320x240",
        seconds,
        profile: "baseline",
        b_frames: 0,
        gop: 30,
        video_bitrate: "500k",
        audio_bitrate: "64k",
        extra: Vec::new(),
    }
    .write(path);
}

/// Every tag payload of an FLV clip, in file order.
pub fn read_clip(path: &Path) -> Vec<streamhub::media::flv::FlvPayload> {
    let file = fs::File::open(path).expect("clip");
    streamhub::media::flv::FlvReader::new(std::io::BufReader::new(file))
        .expect("FLV header")
        .map(|tag| tag.expect("FLV tag").payload)
        .collect()
}
