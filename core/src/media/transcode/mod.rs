//! AAC-LC → Opus transcoding for WebRTC egress (browsers cannot play AAC).
//!
//! [`AacToOpus`] decodes raw AAC-LC access units (symphonia, pure Rust), converts the PCM
//! to 48 kHz (rubato's FFT resampler; a pass-through for 48 kHz sources) and encodes 20 ms
//! Opus packets (opus-pure, a pure-Rust libopus port, music mode). Enabled by the `transcode` cargo feature.
//!
//! # Supported input
//!
//! AAC-LC (audio object type 2), mono or stereo, at any rate of the AAC sampling-frequency
//! table (7.35–96 kHz). Other object types (HE-AAC, HE-AACv2, ...), channel configuration 0
//! (layout in a program config element) and more than two channels are refused by
//! [`AacToOpus::new`] with a typed [`TranscodeError`]: the decoder cannot decode them, so
//! there is nothing to downmix. An HE-AAC stream signalled implicitly (its config says
//! AAC-LC) decodes as its AAC-LC core, without the SBR high band.
//!
//! # Timestamps
//!
//! Output pts are continuous within a *segment*: packet `n` of a segment is stamped
//! `start + n × 20 ms`, where `start` is the pts of the segment's first access unit. Every
//! Opus packet carries 960 samples (20 ms at 48 kHz).
//!
//! Each access unit's pts is compared with where the decoded audio says it should be:
//! `start + (input samples decoded in the segment) / input rate`. Jitter up to 100 ms
//! either way (e.g. the 1 ms rounding of FLV timestamps) is ignored. Beyond 100 ms (a
//! publisher restarting a loop, a gap, a clock jump) the transcoder *resynchronises*: it
//! encodes what it has buffered (the resampler's tail, the partial frame padded with
//! silence) with the old segment's timestamps, then starts a new segment at the access
//! unit's pts. After a backwards jump, pts therefore go back too.
//! [`AacToOpus::flush`] also ends the segment: the next access unit starts a new one.
//!
//! The output is not shifted for codec delays: the AAC decoder's and the Opus encoder's own
//! (about 6.5 ms lookahead) delays remain in the signal, the resampler's is removed.
//!
//! # Errors
//!
//! A corrupt, truncated or empty access unit makes [`AacToOpus::push`] return
//! [`TranscodeError::CorruptFrame`]; it is replaced by one AAC frame (1024 samples) of
//! silence so the timeline and the lip-sync of later audio are kept, and the next good
//! access unit decodes normally. Packets completed during a call that fails are not lost:
//! the next successful `push` or `flush` returns them.

mod aac_decoder;
mod error;
mod opus_encoder;
mod resampler;
mod timeline;

use bytes::Bytes;

pub use error::TranscodeError;

use self::aac_decoder::{AAC_FRAME_LEN, AacDecoder};
use self::opus_encoder::{BITRATE_RANGE, FRAME_SAMPLES, OpusEncoder};
use self::resampler::Resampler;
use self::timeline::{Placement, Timeline};
use super::AudioSpecificConfig;

/// One Opus packet: 20 ms = 960 samples at 48 kHz.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusPacket {
    /// The encoded Opus packet (one frame, RFC 6716).
    pub data: Bytes,
    /// Presentation time of its first sample, in µs (see the [module docs](self) for the
    /// rule).
    pub pts_us: i64,
    /// Samples per channel it decodes to, at 48 kHz (always 960).
    pub samples: u32,
}

/// Decodes AAC access units and re-encodes them as 20 ms Opus packets at 48 kHz.
///
/// One instance per audio stream; feed it the access units in decoding order. See the
/// [module docs](self) for the supported configs and the timestamp rule.
pub struct AacToOpus {
    decoder: AacDecoder,
    resampler: Resampler,
    encoder: OpusEncoder,
    timeline: Timeline,
    channels: u8,
    input_rate: u32,
    /// Decoded PCM at the input rate, then at 48 kHz (reused buffers).
    pcm_in: Vec<f32>,
    pcm_48k: Vec<f32>,
    encoded: Vec<Bytes>,
    /// Packets completed but not yet returned (kept across a failed call).
    ready: Vec<OpusPacket>,
}

impl std::fmt::Debug for AacToOpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AacToOpus")
            .field("channels", &self.channels)
            .field("input_rate", &self.input_rate)
            .field("timeline", &self.timeline)
            .field("ready", &self.ready.len())
            .finish_non_exhaustive()
    }
}

impl AacToOpus {
    /// A transcoder for a stream described by `config` (the RTMP audio sequence header).
    ///
    /// `bitrate_bps`: Opus target bitrate (e.g. 64_000 stereo), 6 000 to 510 000.
    /// Fails with a typed error for anything but AAC-LC mono or stereo at a standard rate.
    pub fn new(config: &AudioSpecificConfig, bitrate_bps: u32) -> Result<Self, TranscodeError> {
        if config.object_type() != 2 {
            return Err(TranscodeError::UnsupportedObjectType {
                object_type: config.object_type(),
            });
        }
        let channels = config.channels();
        if !(1..=2).contains(&channels) {
            return Err(TranscodeError::UnsupportedChannels { channels });
        }
        let input_rate = config.sample_rate();
        // `new` only accepts the rates of the AAC table (an explicit rate parses, but the
        // decoder's tables and the resampler's FFT sizes assume a standard one).
        if AudioSpecificConfig::new(2, input_rate, channels).is_err() {
            return Err(TranscodeError::UnsupportedSampleRate {
                sample_rate: input_rate,
            });
        }
        if !BITRATE_RANGE.contains(&bitrate_bps) {
            return Err(TranscodeError::InvalidBitrate { bitrate_bps });
        }
        let width = usize::from(channels);
        let transcoder = AacToOpus {
            decoder: AacDecoder::new(config)?,
            resampler: Resampler::new(input_rate, width)?,
            encoder: OpusEncoder::new(width, bitrate_bps)?,
            timeline: Timeline::new(input_rate),
            channels,
            input_rate,
            pcm_in: Vec::with_capacity(AAC_FRAME_LEN * width),
            pcm_48k: Vec::new(),
            encoded: Vec::new(),
            ready: Vec::new(),
        };
        tracing::debug!(
            input_rate,
            channels,
            bitrate_bps,
            "AAC-LC to Opus transcoder ready"
        );
        Ok(transcoder)
    }

    /// One raw AAC access unit (no ADTS header) with its presentation time in µs; returns
    /// the Opus packets completed so far (0, 1 or more).
    ///
    /// A unit that does not decode returns [`TranscodeError::CorruptFrame`] and counts as
    /// one frame of silence; the transcoder stays usable.
    pub fn push(&mut self, aac: &[u8], pts_us: i64) -> Result<Vec<OpusPacket>, TranscodeError> {
        match self.timeline.place(pts_us) {
            Placement::Start => self.timeline.start(pts_us),
            Placement::Continue => {}
            Placement::Jump { expected_us } => {
                tracing::info!(
                    expected_us,
                    pts_us,
                    "AAC timestamps jumped by more than 100 ms: resynchronising the Opus timeline"
                );
                self.finish_segment()?;
                self.timeline.start(pts_us);
            }
        }

        self.pcm_in.clear();
        let decode_error = match self.decoder.decode(aac, &mut self.pcm_in) {
            Ok(()) => None,
            Err(reason) => {
                tracing::debug!(pts_us, len = aac.len(), %reason, "AAC access unit not decoded");
                self.pcm_in.clear();
                self.pcm_in
                    .resize(AAC_FRAME_LEN * usize::from(self.channels), 0.0);
                Some(TranscodeError::CorruptFrame {
                    pts_us,
                    len: aac.len(),
                    reason,
                })
            }
        };
        self.timeline.advance_input(AAC_FRAME_LEN as u64);

        self.pcm_48k.clear();
        self.resampler.process(&self.pcm_in, &mut self.pcm_48k)?;
        self.encoder.push(&self.pcm_48k, &mut self.encoded)?;
        self.stamp_encoded();

        match decode_error {
            Some(err) => Err(err),
            None => Ok(std::mem::take(&mut self.ready)),
        }
    }

    /// Encodes what is buffered (padded with silence to a whole frame) and returns the
    /// remaining packets. The next [`push`](Self::push) starts a new timestamp segment.
    pub fn flush(&mut self) -> Result<Vec<OpusPacket>, TranscodeError> {
        self.finish_segment()?;
        self.timeline.end();
        Ok(std::mem::take(&mut self.ready))
    }

    /// Channels of the Opus output (1 or 2, same as the source, at most 2).
    pub fn channels(&self) -> u8 {
        self.channels
    }

    /// Drains the resampler and encodes the partial frame of the current segment.
    fn finish_segment(&mut self) -> Result<(), TranscodeError> {
        self.pcm_48k.clear();
        let drained = self.resampler.drain(&mut self.pcm_48k);
        let pushed = self.encoder.push(&self.pcm_48k, &mut self.encoded);
        let flushed = self.encoder.flush(&mut self.encoded);
        self.stamp_encoded();
        tracing::trace!(buffered = self.encoder.buffered(), "segment finished");
        drained.and(pushed).and(flushed)
    }

    /// Moves newly encoded packets to `ready`, with the timeline's pts.
    fn stamp_encoded(&mut self) {
        for data in self.encoded.drain(..) {
            self.ready.push(OpusPacket {
                data,
                pts_us: self.timeline.next_packet_pts(),
                samples: FRAME_SAMPLES as u32,
            });
        }
    }
}

#[cfg(test)]
mod tests;
