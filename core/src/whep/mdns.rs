//! mDNS, only where the host can use it.
//!
//! webrtc-rs's mDNS socket joins 224.0.0.251 on the default interface. A host without a
//! route for it (only loopback, no default route: an offline device, an isolated LAN, a
//! container) refuses with ENODEV, and the whole peer connection fails with "No such
//! device" before any offer. mDNS only resolves `.local` candidates; a server on this
//! machine or the LAN gives IP candidates, so it is turned off there instead.

use std::net::{Ipv4Addr, UdpSocket};

use rtc::ice::mdns::MulticastDnsMode;
use tracing::info;
use webrtc::peer_connection::SettingEngineBuilder;

/// Whether this host can join the mDNS multicast group on its default interface, as
/// the stack's mDNS socket does.
pub fn available() -> bool {
    UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|socket| {
            socket.join_multicast_v4(&Ipv4Addr::new(224, 0, 0, 251), &Ipv4Addr::UNSPECIFIED)
        })
        .is_ok()
}

/// `settings` with mDNS off when this host cannot use it.
pub(crate) fn off_where_unavailable(settings: SettingEngineBuilder) -> SettingEngineBuilder {
    if available() {
        return settings;
    }
    info!("no multicast route: mDNS off (.local candidates cannot be resolved)");
    settings.with_multicast_dns_mode(MulticastDnsMode::Disabled)
}
