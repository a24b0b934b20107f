//! Sample-rate conversion of interleaved f32 PCM to 48 kHz, with rubato's FFT resampler.
//!
//! The resampler's own delay is trimmed from the start of its output, so output frame `n`
//! lines up with input time `n / 48000` s (a pass-through when the input is already 48 kHz).

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _};

use super::TranscodeError;

/// The output rate: Opus's native rate.
pub(super) const OUTPUT_RATE: u32 = 48_000;

/// Input frames per resampler call (one AAC frame).
const CHUNK_FRAMES: usize = 1024;

/// Converts interleaved PCM at one input rate to 48 kHz.
pub(super) struct Resampler {
    /// `None` when the input is already 48 kHz.
    inner: Option<Fft<f32>>,
    channels: usize,
    input_rate: u32,
    /// Interleaved input not yet handed to rubato (fewer than a chunk after each call).
    pending: Vec<f32>,
    /// One call's interleaved output.
    scratch: Vec<f32>,
    /// Output frames still to drop: the resampler's delay.
    trim: usize,
    /// Input frames accepted and output frames emitted since the last reset.
    frames_in: u64,
    frames_out: u64,
}

impl Resampler {
    /// A converter from `input_rate` (any rate of the AAC table) for 1 or 2 channels.
    pub(super) fn new(input_rate: u32, channels: usize) -> Result<Self, TranscodeError> {
        let inner = if input_rate == OUTPUT_RATE {
            None
        } else {
            let fft = Fft::<f32>::new(
                input_rate as usize,
                OUTPUT_RATE as usize,
                CHUNK_FRAMES,
                channels,
                FixedSync::Input,
            )
            .map_err(|err| TranscodeError::resampler("setup", err))?;
            Some(fft)
        };
        let mut resampler = Resampler {
            inner,
            channels,
            input_rate: input_rate.max(1),
            pending: Vec::new(),
            scratch: Vec::new(),
            trim: 0,
            frames_in: 0,
            frames_out: 0,
        };
        resampler.reset();
        Ok(resampler)
    }

    /// Forgets all buffered input and the filter state.
    pub(super) fn reset(&mut self) {
        self.pending.clear();
        self.frames_in = 0;
        self.frames_out = 0;
        self.trim = match &mut self.inner {
            Some(fft) => {
                fft.reset();
                fft.output_delay()
            }
            None => 0,
        };
    }

    /// Resamples `input` (interleaved, whole frames) and appends what is ready to `out`.
    pub(super) fn process(
        &mut self,
        input: &[f32],
        out: &mut Vec<f32>,
    ) -> Result<(), TranscodeError> {
        let frames = input.len() / self.channels;
        self.frames_in += frames as u64;
        if self.inner.is_none() {
            out.extend_from_slice(&input[..frames * self.channels]);
            self.frames_out += frames as u64;
            return Ok(());
        }
        self.pending
            .extend_from_slice(&input[..frames * self.channels]);
        while self.pending.len() >= self.needed_frames() * self.channels {
            let consumed = self.run_pending(out, u64::MAX)?;
            if consumed == 0 {
                return Err(TranscodeError::resampler("processing", "no input consumed"));
            }
            self.consume(consumed);
        }
        Ok(())
    }

    /// Appends the rest of the signal to `out` (the buffered input and the filter's tail), so
    /// that the output holds exactly the input's duration at 48 kHz, then resets.
    pub(super) fn drain(&mut self, out: &mut Vec<f32>) -> Result<(), TranscodeError> {
        let target = self
            .frames_in
            .saturating_mul(u64::from(OUTPUT_RATE))
            .saturating_add(u64::from(self.input_rate) / 2)
            / u64::from(self.input_rate);
        if self.inner.is_some() {
            // Each call consumes a chunk of input (zero-padded) and emits about a chunk of
            // output; the bound only guards against a resampler that stops producing.
            let mut calls = 0;
            while self.frames_out < target && calls < 16 {
                let needed = self.needed_frames() * self.channels;
                self.pending.resize(needed.max(self.pending.len()), 0.0);
                let consumed = self.run_pending(out, target)?;
                self.consume(consumed);
                calls += 1;
            }
        }
        self.reset();
        Ok(())
    }

    /// Drops `frames` consumed frames from the front of `pending`.
    fn consume(&mut self, frames: usize) {
        let samples = frames.saturating_mul(self.channels).min(self.pending.len());
        self.pending.drain(..samples);
    }

    fn needed_frames(&self) -> usize {
        self.inner
            .as_ref()
            .map_or(CHUNK_FRAMES, |fft| fft.input_frames_next())
    }

    /// Runs rubato once on the front of `pending` and appends at most `limit - frames_out`
    /// output frames to `out`. Returns the input frames consumed.
    fn run_pending(&mut self, out: &mut Vec<f32>, limit: u64) -> Result<usize, TranscodeError> {
        let Some(fft) = self.inner.as_mut() else {
            return Ok(0);
        };
        let channels = self.channels;
        let in_frames = fft.input_frames_next();
        let out_frames = fft.output_frames_max();
        self.scratch.resize(out_frames * channels, 0.0);
        let pending = self.pending.get(..in_frames * channels).ok_or_else(|| {
            TranscodeError::resampler("input buffer", "fewer frames buffered than a chunk")
        })?;
        let input = InterleavedSlice::new(pending, channels, in_frames)
            .map_err(|err| TranscodeError::resampler("input buffer", err))?;
        let mut output = InterleavedSlice::new_mut(&mut self.scratch[..], channels, out_frames)
            .map_err(|err| TranscodeError::resampler("output buffer", err))?;
        let (consumed, produced) = fft
            .process_into_buffer(&input, &mut output, None)
            .map_err(|err| TranscodeError::resampler("processing", err))?;
        let skip = self.trim.min(produced);
        self.trim -= skip;
        let room = usize::try_from(limit.saturating_sub(self.frames_out)).unwrap_or(usize::MAX);
        let keep = (produced - skip).min(room);
        out.extend_from_slice(&self.scratch[skip * channels..(skip + keep) * channels]);
        self.frames_out += keep as u64;
        Ok(consumed)
    }
}
