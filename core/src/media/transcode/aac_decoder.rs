//! AAC-LC access unit → interleaved f32 PCM, with symphonia's pure-Rust decoder.

use std::panic::{AssertUnwindSafe, catch_unwind};

use symphonia_codec_aac::AacDecoder as SymphoniaAac;
use symphonia_core::codecs::audio::well_known::CODEC_ID_AAC;
use symphonia_core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia_core::packet::PacketRef;
use symphonia_core::units::{Duration, Timestamp};

use super::TranscodeError;
use crate::media::AudioSpecificConfig;

/// PCM frames (samples per channel) in one AAC-LC access unit. Configs with 960-sample
/// frames are refused by the decoder at setup.
pub(super) const AAC_FRAME_LEN: usize = 1024;

/// AAC-LC decoder for one stream (one AudioSpecificConfig).
pub(super) struct AacDecoder {
    params: AudioCodecParameters,
    inner: SymphoniaAac,
    channels: usize,
    scratch: Vec<f32>,
}

impl AacDecoder {
    /// A decoder for `config`, which the caller has checked is AAC-LC, mono or stereo.
    pub(super) fn new(config: &AudioSpecificConfig) -> Result<Self, TranscodeError> {
        let mut params = AudioCodecParameters::new();
        params.codec = CODEC_ID_AAC;
        params.with_extra_data(config.bytes().to_vec().into_boxed_slice());
        let inner = Self::open(&params)?;
        Ok(AacDecoder {
            params,
            inner,
            channels: usize::from(config.channels()),
            scratch: Vec::new(),
        })
    }

    fn open(params: &AudioCodecParameters) -> Result<SymphoniaAac, TranscodeError> {
        SymphoniaAac::try_new(params, &AudioDecoderOptions::default()).map_err(|err| {
            TranscodeError::DecoderSetup {
                reason: err.to_string(),
            }
        })
    }

    /// Decodes one raw access unit and appends its [`AAC_FRAME_LEN`] interleaved frames to
    /// `out`. On error nothing is appended and the error is the decoder's message.
    pub(super) fn decode(&mut self, access_unit: &[u8], out: &mut Vec<f32>) -> Result<(), String> {
        if access_unit.is_empty() {
            return Err("empty access unit".into());
        }
        let Err(first) = self.decode_once(access_unit, out) else {
            return Ok(());
        };
        // A bad unit can wedge symphonia's decoder without failing: e.g. a single channel
        // element in a stereo stream registers channel pair 0 as a single channel, and every
        // later (good) unit is then refused. So after an error, retry once on a fresh decoder:
        // a good unit decodes (losing only the overlap with the previous one), a bad one
        // fails again and leaves a fresh decoder for the next unit.
        self.rebuild();
        if self.decode_once(access_unit, out).is_ok() {
            tracing::debug!(reason = %first, "AAC access unit decoded after a decoder reset");
            return Ok(());
        }
        self.rebuild();
        Err(first)
    }

    fn rebuild(&mut self) {
        match Self::open(&self.params) {
            Ok(decoder) => self.inner = decoder,
            // It opened with the same parameters before: not expected, keep the old one.
            Err(err) => tracing::warn!(%err, "could not rebuild the AAC decoder"),
        }
    }

    fn decode_once(&mut self, access_unit: &[u8], out: &mut Vec<f32>) -> Result<(), String> {
        let packet = PacketRef::new(
            0,
            Timestamp::new(0),
            Duration::new(AAC_FRAME_LEN as u64),
            access_unit,
        );
        // symphonia is pure Rust but a decoder fed hostile bytes is the classic place for an
        // out-of-bounds panic: contain it (the caller then rebuilds the decoder).
        let inner = &mut self.inner;
        let pcm = &mut self.scratch;
        let channels = self.channels;
        let result = catch_unwind(AssertUnwindSafe(|| -> Result<(), String> {
            let buf = inner.decode_ref(&packet).map_err(|err| err.to_string())?;
            let got_channels = buf.spec().channels().count();
            if got_channels != channels || buf.frames() != AAC_FRAME_LEN {
                return Err(format!(
                    "decoded {} frames of {got_channels} channels, expected {AAC_FRAME_LEN} of {channels}",
                    buf.frames()
                ));
            }
            // Resizes `pcm` to the decoded length and overwrites it.
            buf.copy_to_vec_interleaved::<f32>(pcm);
            out.extend_from_slice(pcm);
            Ok(())
        }));
        match result {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!("AAC decoder panicked on an access unit");
                Err("decoder panicked".into())
            }
        }
    }
}
