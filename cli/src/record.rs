//! Writing received video to a file ffmpeg can read: raw Annex-B H.264 (`.h264`) or
//! H.265 (`.h265`), or IVF (`.ivf`) for VP8, VP9 and AV1.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use streamhub::whep::{Codec, MediaFrame, MediaKind};

/// The container chosen by the file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// Raw Annex-B H.264.
    H264,
    /// Raw Annex-B H.265.
    H265,
    Ivf,
}

/// Writes the video frames of one track.
pub struct Recorder {
    path: PathBuf,
    format: Format,
    out: BufWriter<File>,
    frames: u32,
    ivf_size: Option<(u16, u16)>,
    /// The IVF file's codec: the first frame's.
    ivf_codec: Option<Codec>,
}

impl Recorder {
    /// Creates the file; the extension picks the format.
    pub fn create(path: &Path) -> Result<Self, String> {
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some("h264") | Some("264") => Format::H264,
            Some("h265") | Some("265") | Some("hevc") => Format::H265,
            Some("ivf") => Format::Ivf,
            _ => {
                return Err(format!(
                    "{}: use .h264 (H.264), .h265 (H.265) or .ivf (VP8, VP9, AV1)",
                    path.display()
                ));
            }
        };
        let file = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut out = BufWriter::new(file);
        if format == Format::Ivf {
            out.write_all(&[0u8; 32])
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(Recorder {
            path: path.to_path_buf(),
            format,
            out,
            frames: 0,
            ivf_size: None,
            ivf_codec: None,
        })
    }

    /// Appends one frame; audio is skipped. A codec that does not fit the container is an error.
    pub fn write(&mut self, frame: &MediaFrame) -> Result<(), String> {
        if frame.kind != MediaKind::Video {
            return Ok(());
        }
        let err = |e: std::io::Error| format!("{}: {e}", self.path.display());
        match (self.format, &frame.codec) {
            (Format::H264, Codec::H264) | (Format::H265, Codec::H265) => {
                self.out.write_all(&frame.data).map_err(err)?
            }
            (Format::Ivf, Codec::Vp8 | Codec::Vp9 | Codec::Av1)
                if self.ivf_codec.get_or_insert_with(|| frame.codec.clone()) == &frame.codec =>
            {
                if self.ivf_size.is_none() && frame.keyframe && frame.codec == Codec::Vp8 {
                    self.ivf_size = vp8_dimensions(&frame.data);
                }
                let header_len = (frame.data.len() as u32).to_le_bytes();
                self.out.write_all(&header_len).map_err(err)?;
                self.out
                    .write_all(&(frame.timestamp_us as u64).to_le_bytes())
                    .map_err(err)?;
                self.out.write_all(&frame.data).map_err(err)?;
            }
            (_, codec) => {
                return Err(format!(
                    "{}: cannot record {} video in this format",
                    self.path.display(),
                    codec.name()
                ));
            }
        }
        self.frames += 1;
        Ok(())
    }

    /// Flushes the file and completes the IVF header.
    pub fn finish(mut self) -> Result<u32, String> {
        let err = |e: std::io::Error| format!("{}: {e}", self.path.display());
        if self.format == Format::Ivf {
            let (w, h) = self.ivf_size.unwrap_or((0, 0));
            let mut header = Vec::with_capacity(32);
            header.extend_from_slice(b"DKIF");
            header.extend_from_slice(&0u16.to_le_bytes()); // version
            header.extend_from_slice(&32u16.to_le_bytes()); // header size
            header.extend_from_slice(match self.ivf_codec {
                Some(Codec::Vp9) => b"VP90",
                Some(Codec::Av1) => b"AV01",
                _ => b"VP80",
            });
            header.extend_from_slice(&w.to_le_bytes());
            header.extend_from_slice(&h.to_le_bytes());
            header.extend_from_slice(&1_000_000u32.to_le_bytes()); // time base: microseconds
            header.extend_from_slice(&1u32.to_le_bytes());
            header.extend_from_slice(&self.frames.to_le_bytes());
            header.extend_from_slice(&0u32.to_le_bytes());
            self.out.seek(SeekFrom::Start(0)).map_err(err)?;
            self.out.write_all(&header).map_err(err)?;
        }
        self.out.flush().map_err(err)?;
        Ok(self.frames)
    }
}

/// Width and height from a VP8 keyframe header (RFC 6386 §9.1).
fn vp8_dimensions(frame: &[u8]) -> Option<(u16, u16)> {
    if frame.len() < 10 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let h = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    Some((w, h))
}
