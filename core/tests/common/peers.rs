//! Real peers for the session tests: nginx-rtmp and the aiortc WHEP sender on loopback,
//! each process killed by PID on drop, ffmpeg to make clips and ffprobe to read
//! recordings. Waits poll a condition against a deadline; the process helpers, nginx,
//! ffprobe and the aiortc peer are shared with `cli/tests/common` through
//! `tests/support/`.

use std::fs;
use std::path::Path;

use super::process;
pub use super::require;
#[allow(unused_imports)]
pub use process::{Proc, free_port, run_checked, tempdir, wait_listen, wait_until};
#[path = "../../../tests/support/aiortc.rs"]
mod aiortc;
#[path = "../../../tests/support/whep_peer.rs"]
mod whep_peer;
#[allow(unused_imports)]
pub use aiortc::{AiortcWhep, peers_python};
#[path = "../../../tests/support/clips.rs"]
mod clips;
use clips::Clip;
#[path = "../../../tests/support/ffprobe.rs"]
mod ffprobe;
#[allow(unused_imports)]
pub use ffprobe::{Packet, of_kind, packets, packets_so_far};
#[path = "../../../tests/support/nginx.rs"]
mod nginx;
#[allow(unused_imports)]
pub use nginx::{Nginx, NginxOptions};

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
