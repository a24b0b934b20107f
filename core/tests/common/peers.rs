//! Real peers for the session tests: nginx-rtmp and the aiortc WHEP sender on loopback,
//! each process killed by PID on drop, ffmpeg to make clips and ffprobe to read
//! recordings (an unreadable recording reads as empty, for polling). Waits poll a
//! condition against a deadline; the process helpers and the aiortc peer are shared
//! with `cli/tests/common` through `tests/support/`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

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

/// An FLV clip: H.264 constrained baseline (no B-frames), a keyframe every 30 frames,
/// AAC, 320x240 at 30 fps.
pub fn make_clip(path: &Path, seconds: u32) {
    require::ffmpeg();
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-v", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-profile:v",
            "baseline",
        ])
        .args(["-g", "30", "-b:v", "500k", "-c:a", "aac", "-b:a", "64k"])
        .args(["-f", "flv"])
        .arg(path);
    run_checked("ffmpeg making a clip", &mut cmd);
}

/// One packet as ffprobe sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub codec_type: String,
    pub pts: i64,
    pub key: bool,
    pub size: u64,
    pub hash: String,
}

/// Every packet of a media file, in file order, with the MD5 of its payload; empty when
/// the file does not exist or cannot be read yet.
pub fn packets(path: &Path) -> Vec<Packet> {
    require::ffmpeg();
    let Ok(out) = Command::new("ffprobe")
        .args(["-v", "error", "-show_packets", "-show_data_hash", "MD5"])
        .args(["-of", "json"])
        .arg(path)
        .output()
    else {
        return Vec::new();
    };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
        return Vec::new();
    };
    json["packets"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|p| Packet {
                    codec_type: p["codec_type"].as_str().unwrap_or_default().to_string(),
                    pts: p["pts"].as_i64().unwrap_or(i64::MIN),
                    key: p["flags"].as_str().unwrap_or_default().starts_with('K'),
                    size: p["size"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0),
                    hash: p["data_hash"].as_str().unwrap_or_default().to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Packets of one kind ("video" or "audio").
pub fn of_kind(packets: &[Packet], kind: &str) -> Vec<Packet> {
    packets
        .iter()
        .filter(|p| p.codec_type == kind)
        .cloned()
        .collect()
}

/// nginx with the RTMP module, in the foreground, on a loopback port; application
/// `live` records every stream to `<dir>/<key>.flv`. `only_key` makes `on_publish`
/// refuse every other key.
pub struct Nginx {
    pub proc: Proc,
    pub rtmp_port: u16,
    pub dir: PathBuf,
}

impl Nginx {
    pub fn start(dir: &Path, only_key: Option<&str>) -> Nginx {
        Nginx::start_on(dir, free_port(), only_key)
    }

    /// On a given port (to come back where a killed nginx was).
    pub fn start_on(dir: &Path, rtmp_port: u16, only_key: Option<&str>) -> Nginx {
        require::nginx_rtmp();
        let http_port = free_port();
        let d = dir.display();
        let mut extra = String::new();
        let mut on_publish = String::new();
        if let Some(key) = only_key {
            on_publish =
                format!("notify_method get; on_publish http://127.0.0.1:{http_port}/auth;");
            extra.push_str(&format!(
                "http {{ access_log off; client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; \
                 fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi; \
                 server {{ listen 127.0.0.1:{http_port}; location /auth {{ \
                 if ($arg_name = \"{key}\") {{ return 200; }} return 403; }} }} }}\n"
            ));
        }
        let conf = format!(
            "load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;\n\
             daemon off;\nmaster_process off;\nworker_processes 1;\n\
             error_log {d}/error.log info;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 64; }}\n{extra}\
             rtmp {{ server {{ listen 127.0.0.1:{rtmp_port}; chunk_size 4096; \
             application live {{ live on; record all; record_path {d}; record_unique off; \
             {on_publish} }} }} }}\n"
        );
        fs::create_dir_all(dir).expect("nginx dir");
        fs::write(dir.join("nginx.conf"), conf).expect("writing nginx.conf");
        let proc = Proc::spawn(
            "nginx",
            Command::new("nginx")
                .arg("-c")
                .arg(dir.join("nginx.conf"))
                .arg("-p")
                .arg(dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        wait_listen(rtmp_port);
        if only_key.is_some() {
            wait_listen(http_port);
        }
        Nginx {
            proc,
            rtmp_port,
            dir: dir.to_path_buf(),
        }
    }

    pub fn url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{key}", self.rtmp_port)
    }

    /// The recording of `key` (possibly still being written).
    pub fn recording_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.flv"))
    }

    /// Waits until nginx logged `publishers` disconnects (the recording is closed).
    pub fn wait_disconnects(&self, publishers: usize) {
        let log = self.dir.join("error.log");
        wait_until(
            "nginx to see the publisher leave",
            Duration::from_secs(15),
            || {
                fs::read_to_string(&log)
                    .map(|l| l.matches("disconnect").count() >= publishers)
                    .unwrap_or(false)
            },
        );
    }
}

/// Every tag payload of an FLV clip, in file order.
pub fn read_clip(path: &Path) -> Vec<streamhub::media::flv::FlvPayload> {
    let file = fs::File::open(path).expect("clip");
    streamhub::media::flv::FlvReader::new(std::io::BufReader::new(file))
        .expect("FLV header")
        .map(|tag| tag.expect("FLV tag").payload)
        .collect()
}
