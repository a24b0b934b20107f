//! Stream properties as `onMetaData` announces them.

/// Stream properties announced in `onMetaData` (read from FLV files, sent by the RTMP
/// publisher). Unset fields are filled from the codec configuration where possible, or
/// left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamMetadata {
    /// Picture width in pixels.
    pub width: Option<u32>,
    /// Picture height in pixels.
    pub height: Option<u32>,
    /// Frames per second.
    pub frame_rate: Option<f64>,
    /// Video bitrate in kbit/s.
    pub video_bitrate_kbps: Option<f64>,
    /// Audio bitrate in kbit/s.
    pub audio_bitrate_kbps: Option<f64>,
    /// Audio sample rate in Hz.
    pub audio_sample_rate: Option<u32>,
    /// Whether audio is stereo.
    pub stereo: Option<bool>,
}
