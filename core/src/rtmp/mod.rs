//! Go live: publishing H.264/AAC to any RTMP or RTMPS ingest.
//!
//! ```no_run
//! use streamhub::rtmp::{PublishConfig, Publisher};
//! use streamhub::media::{VideoFrame, VideoFormat};
//!
//! # async fn run(annexb_keyframe: Vec<u8>) -> Result<(), streamhub::rtmp::RtmpError> {
//! let publisher = Publisher::connect("rtmp://127.0.0.1/live/key", PublishConfig::default()).await?;
//! publisher
//!     .send_video(&VideoFrame::new(annexb_keyframe, VideoFormat::AnnexB, true, 0))
//!     .await?;
//! let stats = publisher.finish().await?;
//! println!("{} video frames, {} bytes", stats.video_frames, stats.bytes_sent);
//! # Ok(())
//! # }
//! ```
//!
//! Layers, bottom up: [`chunk`] (outbound chunking), [`clock`] (timestamps),
//! [`packetizer`] (frames to messages), [`session`] (the protocol state machine, no I/O),
//! [`queue`] (time-bounded send queue) and [`publisher`] (the tokio driver).

pub(crate) mod ack;
pub(crate) mod amf0;
pub(crate) mod chunk;
pub(crate) mod chunk_reader;
pub(crate) mod clock;
pub(crate) mod congestion;
mod error;
pub(crate) mod handshake;
pub(crate) mod packetizer;
pub(crate) mod publisher;
pub(crate) mod queue;
pub(crate) mod session;
pub(crate) mod transport;
mod url;

pub use crate::media::StreamMetadata;
pub use crate::net::TlsOptions;
pub use congestion::{CongestionPolicy, CongestionReport, DropCounts};
pub use error::RtmpError;
pub use publisher::{PublishConfig, PublishStats, Publisher};
pub use url::{RtmpUrl, Scheme};
