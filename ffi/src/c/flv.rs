//! `streamhub_flv_reader_*`: an FLV file as samples to push (for apps and examples that
//! stream a recording).

use std::ffi::c_char;
use std::sync::{Arc, LazyLock, Mutex};

use super::handles::Table;
use super::result::*;
use crate::dispatch::lock;
use crate::flv::{Sample, SampleKind, SampleReader};

/// An open FLV file. Create with `streamhub_flv_reader_open`, release with
/// `streamhub_flv_reader_free`. One thread at a time.
pub struct streamhub_flv_reader {
    _private: [u8; 0],
}

struct Reader {
    reader: SampleReader,
    /// The last sample, whose bytes `streamhub_flv_sample::data` points into.
    current: Option<Sample>,
}

static READERS: LazyLock<Table<Mutex<Reader>, streamhub_flv_reader>> =
    LazyLock::new(|| Table::new("flv reader"));

/// What a sample is.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum streamhub_sample_kind {
    /// An AVCDecoderConfigurationRecord: `streamhub_session_set_video_config`.
    STREAMHUB_SAMPLE_VIDEO_CONFIG = 0,
    /// An H.264 access unit in AVCC form: `streamhub_session_send_video` with
    /// `STREAMHUB_VIDEO_AVCC`.
    STREAMHUB_SAMPLE_VIDEO = 1,
    /// An AAC AudioSpecificConfig: `streamhub_session_set_audio_config`.
    STREAMHUB_SAMPLE_AUDIO_CONFIG = 2,
    /// A raw AAC frame: `streamhub_session_send_audio` with `STREAMHUB_AUDIO_AAC_RAW`.
    STREAMHUB_SAMPLE_AUDIO = 3,
}

/// One sample; `data` stays valid until the next call on the reader or its free.
#[repr(C)]
#[derive(Debug)]
pub struct streamhub_flv_sample {
    /// What it is.
    pub kind: streamhub_sample_kind,
    /// Its bytes.
    pub data: *const u8,
    /// Their length.
    pub len: usize,
    /// An IDR frame (video).
    pub keyframe: bool,
    /// Presentation time, microseconds.
    pub pts_us: i64,
    /// Decode time, microseconds.
    pub dts_us: i64,
}

/// Opens an FLV file (H.264 + AAC).
///
/// # Safety
/// `path` is NUL-terminated; `out` is valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn streamhub_flv_reader_open(
    path: *const c_char,
    out: *mut *mut streamhub_flv_reader,
) -> streamhub_result {
    boundary(|| {
        if out.is_null() {
            return Err(CError::null("out"));
        }
        // SAFETY: forwarded contract.
        let path = unsafe { c_str(path, "path") }?;
        let reader = SampleReader::open(path.as_ref())
            .map_err(|e| CError::new(STREAMHUB_IO_ERROR, format!("{path}: {e}")))?;
        let handle = READERS.insert(Arc::new(Mutex::new(Reader {
            reader,
            current: None,
        })));
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Reads the next sample into `*out`; at the end of the file sets `*end` to true and
/// leaves `*out` alone. A truncated or corrupt file gives `STREAMHUB_IO_ERROR`.
///
/// # Safety
/// `out` and `end` are valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn streamhub_flv_reader_next(
    reader: *mut streamhub_flv_reader,
    out: *mut streamhub_flv_sample,
    end: *mut bool,
) -> streamhub_result {
    boundary(|| {
        let reader = READERS.get(reader)?;
        if out.is_null() {
            return Err(CError::null("out"));
        }
        if end.is_null() {
            return Err(CError::null("end"));
        }
        let mut reader = lock(&reader);
        let reader = &mut *reader;
        reader.current = reader
            .reader
            .next_sample()
            .map_err(|e| CError::new(STREAMHUB_IO_ERROR, e.to_string()))?;
        let Some(sample) = &reader.current else {
            // SAFETY: checked non-NULL; writable per the contract.
            unsafe { end.write(true) };
            return Ok(());
        };
        let kind = match sample.kind {
            SampleKind::VideoConfig => streamhub_sample_kind::STREAMHUB_SAMPLE_VIDEO_CONFIG,
            SampleKind::Video => streamhub_sample_kind::STREAMHUB_SAMPLE_VIDEO,
            SampleKind::AudioConfig => streamhub_sample_kind::STREAMHUB_SAMPLE_AUDIO_CONFIG,
            SampleKind::Audio => streamhub_sample_kind::STREAMHUB_SAMPLE_AUDIO,
        };
        // SAFETY: checked non-NULL; writable per the contract. `data` points into the
        // sample kept in the reader until the next call.
        unsafe {
            end.write(false);
            out.write(streamhub_flv_sample {
                kind,
                data: sample.data.as_ptr(),
                len: sample.data.len(),
                keyframe: sample.keyframe,
                pts_us: sample.pts_us,
                dts_us: sample.dts_us,
            });
        }
        Ok(())
    })
}

/// Closes the file. NULL, or a reader already freed, is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn streamhub_flv_reader_free(reader: *mut streamhub_flv_reader) {
    boundary_void(|| drop(READERS.remove(reader)))
}

impl std::fmt::Debug for streamhub_flv_reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("streamhub_flv_reader")
    }
}
