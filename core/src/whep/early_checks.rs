//! Connectivity checks that arrive before the answer is applied.
//!
//! A WHEP sender that starts checking as soon as it has answered (libwebrtc does) gets
//! its first STUN Binding requests to the player before the player has read the answer.
//! webrtc-rs's ICE agent drops a request it cannot yet match to remote credentials, so
//! the sender's next check, 50-60 ms later by its pacing, is the one that connects
//! (seen against Chromium: three checks dropped while the answer was on its way). RFC
//! 8445 §7.3.1.3 would have the agent answer such early checks; webrtc-rs has no hook
//! for it, so this wraps the runtime's UDP sockets instead: until [`EarlyChecks::replay`]
//! (called once ICE is checking with the remote credentials), every Binding request
//! received is also kept (a few per socket), and replaying hands them to the agent again,
//! which answers and checks back at once.

use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, RecvMeta, Runtime,
    Transmit,
};

/// Binding requests kept per socket at most.
const KEPT_PER_SOCKET: usize = 8;

/// The switch shared by a peer connection's sockets.
#[derive(Clone, Default)]
pub struct EarlyChecks(Arc<Shared>);

#[derive(Default)]
struct Shared {
    /// Set once the answer is in: keep nothing more, hand back what was kept.
    replaying: AtomicBool,
    /// The sockets' receive tasks, woken to replay.
    wakers: Mutex<Vec<Waker>>,
}

impl fmt::Debug for EarlyChecks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EarlyChecks")
            .field("replaying", &self.0.replaying.load(Ordering::Relaxed))
            .finish()
    }
}

impl EarlyChecks {
    /// Hands the kept Binding requests to the ICE agent again (once).
    pub fn replay(&self) {
        if self.0.replaying.swap(true, Ordering::AcqRel) {
            return;
        }
        let wakers = std::mem::take(&mut *lock(&self.0.wakers));
        for waker in wakers {
            waker.wake();
        }
    }

    /// `runtime` with its UDP sockets wrapped to keep early checks.
    pub fn runtime(&self, runtime: Arc<dyn Runtime>) -> Arc<dyn Runtime> {
        Arc::new(KeepingRuntime {
            inner: runtime,
            checks: self.clone(),
        })
    }

    fn replaying(&self) -> bool {
        self.0.replaying.load(Ordering::Acquire)
    }

    fn wake_on_replay(&self, waker: &Waker) {
        let mut wakers = lock(&self.0.wakers);
        if !wakers.iter().any(|w| w.will_wake(waker)) {
            wakers.push(waker.clone());
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A STUN Binding request (RFC 8489 §5: type 0x0001, the magic cookie).
fn is_binding_request(datagram: &[u8]) -> bool {
    datagram.len() >= 20
        && datagram[..2] == [0x00, 0x01]
        && datagram[4..8] == [0x21, 0x12, 0xa4, 0x42]
}

/// The runtime, but for its UDP sockets.
#[derive(Debug)]
struct KeepingRuntime {
    inner: Arc<dyn Runtime>,
    checks: EarlyChecks,
}

impl Runtime for KeepingRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        self.inner.spawn(future)
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        self.inner.spawn_reactor(reactor_pool_size, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        Ok(Arc::new(KeepingSocket {
            inner: self.inner.wrap_udp_socket(socket)?,
            checks: self.checks.clone(),
            kept: Mutex::new(Vec::new()),
        }))
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.inner.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        self.inner.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        self.inner.resolve_host(host)
    }

    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.inner.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.inner.block_on(future)
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}

/// A UDP socket that keeps the Binding requests it receives before the answer.
struct KeepingSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    checks: EarlyChecks,
    /// Binding requests received before the answer, with where they came from.
    kept: Mutex<Vec<(Vec<u8>, RecvMeta)>>,
}

impl fmt::Debug for KeepingSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeepingSocket")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl AsyncUdpSocket for KeepingSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        self.inner.poll_send(cx, transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let replaying = self.checks.replaying();
        if replaying
            && let (Some(buf), Some(slot)) = (bufs.first_mut(), meta.first_mut())
            && let Some((datagram, from)) = lock(&self.kept).pop()
            && datagram.len() <= buf.len()
        {
            buf[..datagram.len()].copy_from_slice(&datagram);
            *slot = from;
            slot.len = datagram.len();
            slot.stride = datagram.len();
            return Poll::Ready(Ok(1));
        }
        if !replaying {
            self.checks.wake_on_replay(cx.waker());
        }
        let received = self.inner.poll_recv(cx, bufs, meta);
        if !replaying && let Poll::Ready(Ok(n)) = &received {
            let mut kept = lock(&self.kept);
            for (buf, m) in bufs.iter().zip(meta.iter()).take(*n) {
                let datagram = &buf[..m.len.min(buf.len())];
                if m.stride == m.len && kept.len() < KEPT_PER_SOCKET && is_binding_request(datagram)
                {
                    kept.push((datagram.to_vec(), *m));
                }
            }
        }
        received
    }

    fn max_gso_segments(&self) -> usize {
        self.inner.max_gso_segments()
    }

    fn max_gro_segments(&self) -> usize {
        self.inner.max_gro_segments()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_requests_are_told_from_other_datagrams() {
        let mut request = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        request.extend_from_slice(&[7; 12]);
        assert!(is_binding_request(&request));
        let mut response = request.clone();
        response[0] = 0x01; // Binding success response
        assert!(!is_binding_request(&response));
        assert!(!is_binding_request(&request[..19]));
        assert!(!is_binding_request(&[
            0x80, 0x60, 0, 1, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0
        ]));
    }
}
