//! 48 kHz interleaved f32 PCM → 20 ms Opus packets, with opus-pure.
//!
//! opus-pure is a pure-Rust port of libopus 1.6 (the same CELT/SILK encoder, checked
//! byte-exact against libopus by its authors). It replaced the `opus` crate, whose bundled
//! libopus needs cmake to build: with it, building the hub or `streamhub demo` needs only
//! the Rust toolchain. The tests still decode its packets with libopus itself.

use bytes::Bytes;
use opus_pure::{Application, MAX_PACKET_BYTES, OpusEncoder as Encoder};

use super::TranscodeError;

/// Samples per channel in one 20 ms Opus frame at 48 kHz.
pub(super) const FRAME_SAMPLES: usize = 960;

/// Opus's bitrate range (libopus's), in bits per second.
pub(super) const BITRATE_RANGE: std::ops::RangeInclusive<u32> = 6_000..=510_000;

/// Cuts PCM into 20 ms frames and encodes each one.
pub(super) struct OpusEncoder {
    inner: Encoder,
    channels: usize,
    /// Interleaved samples of the frame being filled (less than one frame between calls).
    pending: Vec<f32>,
    packet: Vec<u8>,
}

impl OpusEncoder {
    /// A music-mode encoder at `bitrate_bps` (checked against [`BITRATE_RANGE`] by the
    /// caller) for 1 or 2 channels.
    pub(super) fn new(channels: usize, bitrate_bps: u32) -> Result<Self, TranscodeError> {
        let channels = if channels == 1 { 1 } else { 2 };
        let mut inner = Encoder::new(48_000, channels, Application::Audio)
            .map_err(|err| TranscodeError::opus("setup", err))?;
        inner.bitrate_bps = i32::try_from(bitrate_bps)
            .map_err(|_| TranscodeError::InvalidBitrate { bitrate_bps })?;
        Ok(OpusEncoder {
            inner,
            channels,
            pending: Vec::with_capacity(FRAME_SAMPLES * channels),
            // The whole buffer is the encoder's byte budget: the largest packet Opus allows.
            packet: vec![0; MAX_PACKET_BYTES],
        })
    }

    /// Samples per channel waiting for the next frame.
    pub(super) fn buffered(&self) -> usize {
        self.pending.len() / self.channels
    }

    /// Adds interleaved samples and appends one encoded packet per completed frame to `out`.
    pub(super) fn push(
        &mut self,
        mut pcm: &[f32],
        out: &mut Vec<Bytes>,
    ) -> Result<(), TranscodeError> {
        let frame_len = FRAME_SAMPLES * self.channels;
        while !pcm.is_empty() {
            let take = (frame_len - self.pending.len()).min(pcm.len());
            let (head, rest) = pcm.split_at(take);
            self.pending.extend_from_slice(head);
            pcm = rest;
            if self.pending.len() == frame_len {
                out.push(self.encode_pending()?);
            }
        }
        Ok(())
    }

    /// Pads the partial frame, if any, with silence and encodes it.
    pub(super) fn flush(&mut self, out: &mut Vec<Bytes>) -> Result<(), TranscodeError> {
        if !self.pending.is_empty() {
            self.pending.resize(FRAME_SAMPLES * self.channels, 0.0);
            out.push(self.encode_pending()?);
        }
        Ok(())
    }

    fn encode_pending(&mut self) -> Result<Bytes, TranscodeError> {
        let result = self
            .inner
            .encode(&self.pending, FRAME_SAMPLES, &mut self.packet);
        // The frame is consumed even if the encoder refused it, so one bad frame cannot wedge
        // the stream.
        self.pending.clear();
        let len = result.map_err(|err| TranscodeError::opus("encoding", err))?;
        let data = self
            .packet
            .get(..len)
            .ok_or_else(|| TranscodeError::opus("encoding", "packet longer than its buffer"))?;
        Ok(Bytes::copy_from_slice(data))
    }
}
