//! Encoded media as an app hands it to StreamHub: frames, codec configurations,
//! and the FLV container used by files and by RTMP message bodies.
//!
//! Nothing here touches the network; every parser returns a typed [`MediaError`]
//! instead of panicking on malformed input.

mod aac;
mod avc;
mod error;
pub mod flv;
mod frame;
mod metadata;
mod pacer;
pub mod sei;
#[cfg(feature = "transcode")]
pub mod transcode;

pub use aac::{AdtsFrame, AudioSpecificConfig, split_adts};
pub use avc::{
    AvcDecoderConfig, NAL_AUD, NAL_IDR, NAL_PPS, NAL_SPS, NalUnits, annexb_nal_units,
    avcc_nal_units, nal_type,
};
pub use error::MediaError;
pub use frame::{AudioFormat, AudioFrame, VideoFormat, VideoFrame};
pub use metadata::StreamMetadata;
pub use pacer::Pacer;
