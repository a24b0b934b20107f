//! # StreamHub
//!
//! One small core for live streaming apps: go live over RTMP/RTMPS ([`rtmp`]), with
//! encoded media described in [`media`]. Watching over WHEP and chat come next.
//!
//! All network APIs are async on tokio, every network step has a timeout, and every
//! failure is a typed error.

pub mod media;
pub mod rtmp;
pub mod whep;

pub use media::{AudioFormat, AudioFrame, MediaError, VideoFormat, VideoFrame};
pub use rtmp::{PublishConfig, PublishStats, Publisher, RtmpError, RtmpUrl};
