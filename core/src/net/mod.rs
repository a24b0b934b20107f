//! Networking pieces shared by the protocols and the servers: TLS client settings, the
//! byte stream under RTMP and the chat WebSocket with its TCP tuning, reconnect backoff,
//! per-address limits and (feature `server`) HTTP limits.

pub(crate) mod backoff;
#[cfg(feature = "server")]
pub(crate) mod http;
pub(crate) mod link;
pub(crate) mod per_ip;
mod stream;
mod tls;

pub use backoff::{Backoff, BackoffConfig};
pub use per_ip::{IpSlot, PerIp};
pub use stream::ByteStream;
pub use tls::{TlsConfigError, TlsOptions};
