//! The frames an app pushes: encoded H.264 video and AAC or Opus audio with microsecond
//! timestamps.

use bytes::Bytes;

/// How the NAL units of an H.264 frame are delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoFormat {
    /// Start codes (`00 00 01` or `00 00 00 01`) before each NAL unit, as encoders on
    /// Android and most hardware produce. SPS, PPS and access unit delimiters are
    /// taken out of the frame: SPS/PPS travel in the sequence header instead.
    AnnexB,
    /// Each NAL unit prefixed by its 4-byte big-endian length, as in MP4, FLV and
    /// VideoToolbox output. The data is sent untouched.
    Avcc,
}

/// One encoded H.264 access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrame {
    /// The encoded access unit.
    pub data: Bytes,
    /// How `data` delimits its NAL units.
    pub format: VideoFormat,
    /// True for an IDR (random access) frame.
    pub keyframe: bool,
    /// Presentation time in microseconds.
    pub pts_us: i64,
    /// Decode time in microseconds; equal to `pts_us` when there are no B-frames.
    pub dts_us: i64,
}

impl VideoFrame {
    /// A frame in the given format; `dts_us` is `pts_us` (no B-frames).
    pub fn new(data: impl Into<Bytes>, format: VideoFormat, keyframe: bool, pts_us: i64) -> Self {
        VideoFrame {
            data: data.into(),
            format,
            keyframe,
            pts_us,
            dts_us: pts_us,
        }
    }

    /// Sets a decode time that differs from the presentation time (B-frames).
    pub fn with_dts(mut self, dts_us: i64) -> Self {
        self.dts_us = dts_us;
        self
    }
}

/// How an AAC frame is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    /// A raw AAC access unit; the AudioSpecificConfig must be known (set explicitly).
    AacRaw,
    /// One or more ADTS frames; the AudioSpecificConfig is derived from the headers.
    AacAdts,
    /// One Opus packet (RFC 6716), sent as Enhanced RTMP (FourCC `Opus`); its TOC byte
    /// says mono or stereo. For servers that take Opus over RTMP (recent SRS, MediaMTX,
    /// the StreamHub hub, which passes it to WebRTC viewers untouched).
    Opus,
}

/// One encoded AAC frame (or a run of ADTS frames).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame {
    /// The encoded audio.
    pub data: Bytes,
    /// How `data` is framed.
    pub format: AudioFormat,
    /// Presentation time of the first sample, in microseconds.
    pub pts_us: i64,
}

impl AudioFrame {
    /// An audio frame in the given format.
    pub fn new(data: impl Into<Bytes>, format: AudioFormat, pts_us: i64) -> Self {
        AudioFrame {
            data: data.into(),
            format,
            pts_us,
        }
    }
}
