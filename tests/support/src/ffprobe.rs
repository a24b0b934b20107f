//! ffprobe's view of a media file: every packet with its timestamps, key flag, size and
//! payload MD5, for comparing what was sent with what a peer recorded. Shared by the
//! core and cli tests.

use std::path::Path;
use std::process::Command;

use crate::require;

/// One packet as ffprobe sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// `video` or `audio`.
    pub codec_type: String,
    /// Presentation time, in the stream's time base.
    pub pts: i64,
    /// Decoding time, in the stream's time base.
    pub dts: i64,
    /// A keyframe.
    pub key: bool,
    /// Payload bytes.
    pub size: u64,
    /// MD5 of the payload.
    pub hash: String,
}

/// Every packet of a media file, in file order, with the MD5 of its payload. Panics
/// when ffprobe cannot read the file.
pub fn packets(path: &Path) -> Vec<Packet> {
    read(path).unwrap_or_else(|e| panic!("ffprobe {}: {e}", path.display()))
}

/// As [`packets`], but empty while the file does not exist or cannot be read yet (a
/// recording being written), for polling.
pub fn packets_so_far(path: &Path) -> Vec<Packet> {
    read(path).unwrap_or_default()
}

/// Packets of one kind ("video" or "audio").
pub fn of_kind(packets: &[Packet], kind: &str) -> Vec<Packet> {
    packets
        .iter()
        .filter(|p| p.codec_type == kind)
        .cloned()
        .collect()
}

fn read(path: &Path) -> Result<Vec<Packet>, String> {
    require::ffmpeg();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_packets", "-show_data_hash", "MD5"])
        .args(["-of", "json"])
        .arg(path)
        .output()
        .map_err(|e| format!("running ffprobe: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("ffprobe JSON: {e}"))?;
    let num = |p: &serde_json::Value, k: &str| {
        p[k].as_i64()
            .ok_or_else(|| format!("packet without {k}: {p}"))
    };
    let Some(list) = json["packets"].as_array() else {
        return Ok(Vec::new());
    };
    list.iter()
        .map(|p| {
            Ok(Packet {
                codec_type: p["codec_type"].as_str().unwrap_or_default().to_string(),
                pts: num(p, "pts")?,
                dts: num(p, "dts")?,
                key: p["flags"].as_str().unwrap_or_default().starts_with('K'),
                size: p["size"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0),
                hash: p["data_hash"].as_str().unwrap_or_default().to_string(),
            })
        })
        .collect()
}
