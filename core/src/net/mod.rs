//! Networking pieces shared by the servers.

#[cfg(feature = "server")]
pub mod http;
pub mod per_ip;

pub use per_ip::{IpSlot, PerIp};
