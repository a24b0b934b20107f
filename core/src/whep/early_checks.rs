//! Connectivity checks that arrive before the answer is applied.
//!
//! A WHEP sender that starts checking as soon as it has our offer (libwebrtc does) gets
//! its first STUN Binding requests to the player before the player has read the answer.
//! webrtc-rs's ICE agent drops a request it cannot yet match to remote credentials
//! (seen against Chromium: three checks dropped while the answer was on its way). RFC
//! 8445 §7.3 has the offerer answer such early checks; webrtc-rs has no hook for it, so
//! this wraps the runtime's UDP sockets instead. Once the offer's credentials are known
//! ([`EarlyChecks::answer_as`]), every Binding request meant for them is answered at
//! once ([`super::early_answer`]). Until [`EarlyChecks::replay`] (called once ICE is
//! checking with the remote credentials) each is also kept (a few per socket), and
//! replaying hands them to the agent again, which learns the sender's address from them
//! and checks back at once.
//!
//! Answered early, the sender (the DTLS client when it answers `setup:active`, as
//! libwebrtc does) sends its ClientHello before the player's agent has a selected pair,
//! and webrtc-rs drops DTLS that comes before one: libwebrtc then resends it 50 ms later.
//! So DTLS records received before [`EarlyChecks::release_dtls`] (called once ICE is
//! connected) are kept too, and handed to the stack then.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use rtc::stun::crypto::RTCCryptoProvider;
use tracing::{debug, trace};
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, RecvMeta, Runtime,
    Transmit,
};

use super::early_answer::{LocalCredentials, answer};
use crate::sync::lock;

/// Binding requests, and DTLS datagrams, kept per socket at most.
const KEPT_PER_SOCKET: usize = 8;

/// The switch shared by a peer connection's sockets.
#[derive(Clone, Default)]
pub struct EarlyChecks(Arc<Shared>);

#[derive(Default)]
struct Shared {
    /// Set once the answer is in: keep no more checks, hand back what was kept.
    replaying: AtomicBool,
    /// Set once ICE is connected: keep no more DTLS, hand back what was kept.
    releasing_dtls: AtomicBool,
    /// The sockets' receive tasks, woken to replay or release.
    wakers: Mutex<Vec<Waker>>,
    /// Whom early checks are answered as, once the offer is made.
    answering: Mutex<Option<Answering>>,
}

/// What answering an early check takes.
#[derive(Clone)]
struct Answering {
    local: LocalCredentials,
    crypto: Arc<dyn RTCCryptoProvider>,
}

impl fmt::Debug for EarlyChecks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EarlyChecks")
            .field("replaying", &self.0.replaying.load(Ordering::Relaxed))
            .field(
                "releasing_dtls",
                &self.0.releasing_dtls.load(Ordering::Relaxed),
            )
            .finish()
    }
}

impl EarlyChecks {
    /// Answers the Binding requests meant for `local` from now on (until [`Self::replay`],
    /// when the agent answers them itself).
    pub fn answer_as(&self, local: LocalCredentials) {
        match rtc::stun::crypto::default_provider() {
            Ok(crypto) => *lock(&self.0.answering) = Some(Answering { local, crypto }),
            Err(e) => debug!("early checks are not answered: no crypto provider: {e}"),
        }
    }

    /// Hands the kept Binding requests to the ICE agent again (once).
    pub fn replay(&self) {
        if !self.0.replaying.swap(true, Ordering::AcqRel) {
            self.wake_sockets();
        }
    }

    /// Hands the kept DTLS datagrams to the stack (once), now that it takes them.
    pub fn release_dtls(&self) {
        if !self.0.releasing_dtls.swap(true, Ordering::AcqRel) {
            self.wake_sockets();
        }
    }

    fn wake_sockets(&self) {
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

    fn answering(&self) -> Option<Answering> {
        lock(&self.0.answering).clone()
    }

    fn replaying(&self) -> bool {
        self.0.replaying.load(Ordering::Acquire)
    }

    fn releasing_dtls(&self) -> bool {
        self.0.releasing_dtls.load(Ordering::Acquire)
    }

    fn wake_later(&self, waker: &Waker) {
        let mut wakers = lock(&self.0.wakers);
        if !wakers.iter().any(|w| w.will_wake(waker)) {
            wakers.push(waker.clone());
        }
    }
}

/// Keeps `datagram` in `kept` unless it is full.
fn keep(kept: &Mutex<VecDeque<Kept>>, datagram: &[u8], meta: &RecvMeta) {
    let mut kept = lock(kept);
    if kept.len() < KEPT_PER_SOCKET {
        kept.push_back((datagram.to_vec(), *meta));
    }
}

/// A DTLS record (RFC 7983 §7: first byte 20 to 63).
fn is_dtls(datagram: &[u8]) -> bool {
    datagram.first().is_some_and(|b| (20..=63).contains(b))
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
            kept: Mutex::new(VecDeque::new()),
            kept_dtls: Mutex::new(VecDeque::new()),
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

/// A datagram received, with where it came from.
type Kept = (Vec<u8>, RecvMeta);

/// A UDP socket that keeps the Binding requests it receives before the answer, and the
/// DTLS it receives before ICE is connected.
struct KeepingSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    checks: EarlyChecks,
    /// Binding requests received before the answer, oldest first.
    kept: Mutex<VecDeque<Kept>>,
    /// DTLS datagrams received before ICE was connected, oldest first.
    kept_dtls: Mutex<VecDeque<Kept>>,
}

impl fmt::Debug for KeepingSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeepingSocket")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl KeepingSocket {
    /// Sends the response to an early check, if it is one for us; a response that cannot
    /// go at once is left to the agent, which answers the kept request on replay.
    fn answer(
        &self,
        cx: &mut Context<'_>,
        answering: &Answering,
        request: &[u8],
        from: SocketAddr,
    ) {
        let Some(response) = answer(request, from, &answering.local, answering.crypto.crypto())
        else {
            return;
        };
        let transmit = Transmit {
            destination: from,
            ecn: None,
            contents: &response,
            segment_size: None,
            src_ip: None,
        };
        match self.inner.poll_send(cx, &transmit) {
            Poll::Ready(Ok(_)) => trace!(%from, "early connectivity check answered"),
            Poll::Ready(Err(e)) => debug!(%from, "early connectivity check not answered: {e}"),
            Poll::Pending => debug!(%from, "early connectivity check left to the agent"),
        }
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
        let releasing = self.checks.releasing_dtls();
        if let (Some(buf), Some(slot)) = (bufs.first_mut(), meta.first_mut()) {
            let next = if replaying {
                lock(&self.kept).pop_front()
            } else {
                None
            };
            let next = next.or_else(|| {
                releasing
                    .then(|| lock(&self.kept_dtls).pop_front())
                    .flatten()
            });
            if let Some((datagram, from)) = next
                && datagram.len() <= buf.len()
            {
                buf[..datagram.len()].copy_from_slice(&datagram);
                *slot = from;
                slot.len = datagram.len();
                slot.stride = datagram.len();
                return Poll::Ready(Ok(1));
            }
        }
        if !replaying || !releasing {
            self.checks.wake_later(cx.waker());
        }
        let received = self.inner.poll_recv(cx, bufs, meta);
        if (!replaying || !releasing)
            && let Poll::Ready(Ok(n)) = &received
        {
            for (buf, m) in bufs.iter().zip(meta.iter()).take(*n) {
                let datagram = &buf[..m.len.min(buf.len())];
                if m.stride != m.len {
                    continue;
                }
                if !replaying && is_binding_request(datagram) {
                    if let Some(answering) = self.checks.answering() {
                        self.answer(cx, &answering, datagram, m.addr);
                    }
                    keep(&self.kept, datagram, m);
                } else if !releasing && is_dtls(datagram) {
                    trace!(from = %m.addr, "DTLS before ICE is connected: kept");
                    keep(&self.kept_dtls, datagram, m);
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
        assert!(is_dtls(&[22, 0xfe, 0xfd]));
        assert!(!is_dtls(&request));
        assert!(!is_dtls(&[0x80, 0x60]));
        assert!(!is_dtls(&[]));
    }
}
