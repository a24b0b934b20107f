//! Networking pieces shared by the servers.

pub mod per_ip;

pub use per_ip::{IpSlot, PerIp};
