//! Counting what each IP address holds (connections, sessions), with a cap.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts holdings per IP address and refuses those past the cap. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PerIp {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cap: usize,
    limit_loopback: bool,
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// One holding of one address; released when dropped.
#[derive(Debug)]
pub struct IpSlot {
    inner: Arc<Inner>,
    ip: IpAddr,
}

impl PerIp {
    /// At most `cap` holdings per address; loopback addresses are not limited unless
    /// `limit_loopback` (they are a local proxy's or tests').
    pub fn new(cap: usize, limit_loopback: bool) -> Self {
        PerIp {
            inner: Arc::new(Inner {
                cap,
                limit_loopback,
                held: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// A slot for `ip`, or `None` when it holds `cap` already.
    pub fn try_acquire(&self, ip: IpAddr) -> Option<IpSlot> {
        let ip = canonical(ip);
        let mut held = crate::sync::lock(&self.inner.held);
        let count = held.entry(ip).or_insert(0);
        let exempt = ip.is_loopback() && !self.inner.limit_loopback;
        if *count >= self.inner.cap && !exempt {
            if *count == 0 {
                held.remove(&ip);
            }
            return None;
        }
        *count += 1;
        Some(IpSlot {
            inner: self.inner.clone(),
            ip,
        })
    }

    /// Holdings of `ip` now.
    pub fn held(&self, ip: IpAddr) -> usize {
        let held = crate::sync::lock(&self.inner.held);
        held.get(&canonical(ip)).copied().unwrap_or(0)
    }

    /// Addresses holding anything now.
    pub fn addresses(&self) -> usize {
        let held = crate::sync::lock(&self.inner.held);
        held.len()
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut held = crate::sync::lock(&self.inner.held);
        if let Some(count) = held.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

/// An IPv4 peer on a dual-stack socket counts as its IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_each_address_and_releases_on_drop() {
        let limits = PerIp::new(2, false);
        let a: IpAddr = "203.0.113.7".parse().expect("ip");
        let b: IpAddr = "::ffff:203.0.113.7".parse().expect("ip");
        let one = limits.try_acquire(a).expect("first");
        let two = limits.try_acquire(b).expect("second, the same address");
        assert!(limits.try_acquire(a).is_none(), "third is past the cap");
        assert!(
            limits
                .try_acquire("203.0.113.8".parse().expect("ip"))
                .is_some()
        );
        drop(one);
        assert_eq!(limits.held(a), 1);
        let _three = limits.try_acquire(a).expect("room again");
        drop(two);
        drop(_three);
        assert_eq!(limits.addresses(), 0, "nothing left behind");
    }

    #[test]
    fn loopback_is_exempt_unless_asked() {
        let local: IpAddr = "127.0.0.1".parse().expect("ip");
        let open = PerIp::new(1, false);
        let slots: Vec<_> = (0..5).filter_map(|_| open.try_acquire(local)).collect();
        assert_eq!(slots.len(), 5);
        let strict = PerIp::new(1, true);
        let _slot = strict.try_acquire(local).expect("first");
        assert!(strict.try_acquire(local).is_none());
    }
}
