//! Watch: WebRTC playback through WHEP.
//!
//! [`Player::connect`] posts a receive-only offer to a WHEP endpoint and yields
//! [`MediaFrame`]s: H.264 as Annex-B with SPS/PPS before every IDR, whole VP8 frames,
//! Opus packets. The pure parts (no network: the reorder buffer, the depacketizers, the
//! WHEP header parsing) are private; the crate's own tests, benchmarks and fuzz targets
//! reach them through the hidden `_internal_test_exports`.

pub(crate) mod clock;
pub(crate) mod depacketize;
mod early_answer;
mod early_checks;
mod error;
mod frame;
pub(crate) mod frame_sink;
pub(crate) mod freeze;
pub(crate) mod http;
pub(crate) mod jitter;
pub(crate) mod mdns;
pub(crate) mod peer;
mod player;
pub(crate) mod repair_wait;
pub(crate) mod routing;
mod rtx;
pub(crate) mod sdpfrag;
mod sender_reports;
pub(crate) mod silence;
mod steps;
pub(crate) mod track_receiver;
pub(crate) mod unsignalled;
pub(crate) mod unwrap;

pub use error::WhepError;
pub use frame::{Codec, MediaFrame, MediaKind};
#[cfg(feature = "server")]
pub(crate) use player::media_engine;
pub use player::{PlayConfig, PlayStats, Player};
pub use steps::{ConnectSteps, Step, StepState};
