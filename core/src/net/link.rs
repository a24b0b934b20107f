//! What the publisher asks of, and reads from, its TCP connection.
//!
//! Tuning ([`tune`], with socket2): `TCP_NOTSENT_LOWAT` keeps the kernel's unsent bytes
//! small, so that media waits in our queue, where it can be dropped by priority,
//! instead of in the socket. A dead link is noticed by the publisher itself (pings when
//! idle, and no acknowledgement for too long, read from `TCP_INFO`: see
//! [`crate::rtmp::Publisher::closed`]); TCP keepalive (1 s idle, 1 s apart, 2 probes: Linux
//! counts them in whole seconds) and `TCP_USER_TIMEOUT` (3 × `dead_after`, at least
//! 6 s) are backstops where `TCP_INFO` is missing. A 2 s user timeout killed working
//! connections on a bufferbloated link (a retransmission backing off past it).
//!
//! Reading ([`read_tcp_info`]): bytes acknowledged, RTT and unsent bytes from Linux's
//! `TCP_INFO`. This is the one `unsafe` call of the core: socket2, nix and rustix have
//! no `TCP_INFO` getter, and the `tcp-info-sys` crate generates its bindings with
//! bindgen at build time (libclang on every build machine), which the SDK's
//! "Rust toolchain and a C compiler" rule excludes. `libc` has the struct; the call is
//! a plain `getsockopt` into it, length-checked. Elsewhere it returns `None`.
#![allow(unsafe_code)]

use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;

/// How the socket is tuned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkTuning {
    /// `TCP_NOTSENT_LOWAT`: unsent bytes the kernel may hold; `None` leaves the
    /// system's default (unbounded).
    pub unsent_limit: Option<u32>,
    /// A peer that acknowledges nothing (data or keepalive probes) for this long is
    /// dead; `None` leaves the system's defaults (minutes).
    pub dead_after: Option<Duration>,
}

/// Applies `tuning` to `stream`; failures are logged and ignored (the stream works
/// without them, only less well).
pub fn tune(stream: &TcpStream, tuning: LinkTuning) {
    let socket = SockRef::from(stream);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Some(limit) = tuning.unsent_limit
        && let Err(error) = socket.set_tcp_notsent_lowat(limit)
    {
        tracing::debug!(%error, "TCP_NOTSENT_LOWAT not set");
    }
    if let Some(dead_after) = tuning.dead_after {
        // Whole seconds: Linux refuses anything under one (EINVAL).
        let second = Duration::from_secs(1);
        let keepalive = TcpKeepalive::new().with_time(second);
        #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
        let keepalive = keepalive.with_interval(second).with_retries(2);
        if let Err(error) = socket.set_tcp_keepalive(&keepalive) {
            tracing::debug!(%error, "TCP keepalive not set");
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let backstop = (dead_after * 3).max(Duration::from_secs(6));
        if let Err(error) = socket.set_tcp_user_timeout(Some(backstop)) {
            tracing::debug!(%error, "TCP_USER_TIMEOUT not set");
        }
    }
}

/// One reading of `TCP_INFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpInfo {
    /// Bytes the peer acknowledged over the connection's life.
    pub bytes_acked: u64,
    /// Smoothed round-trip time.
    pub rtt: Duration,
    /// Bytes written but not sent yet.
    pub notsent_bytes: u32,
    /// Segments sent and not acknowledged yet.
    pub unacked: u32,
    /// Segments retransmitted over the connection's life.
    pub total_retrans: u32,
    /// The retransmission timeout now.
    pub rto: Duration,
}

/// A TCP socket's descriptor, for [`read_tcp_info_fd`] after the stream was split.
/// Whoever holds one must stop using it before the stream is dropped (the number could
/// then name another file).
#[derive(Debug, Clone, Copy)]
pub struct SocketFd(#[cfg(unix)] std::os::fd::RawFd);

impl SocketFd {
    /// The descriptor of `stream`.
    pub fn of(stream: &TcpStream) -> Self {
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            SocketFd(stream.as_raw_fd())
        }
        #[cfg(not(unix))]
        {
            let _ = stream;
            SocketFd()
        }
    }
}

#[cfg(test)]
/// Reads `TCP_INFO` of `stream` (Linux and Android; `None` elsewhere or on failure).
pub fn read_tcp_info(stream: &TcpStream) -> Option<TcpInfo> {
    read_tcp_info_fd(&SocketFd::of(stream))
}

/// [`read_tcp_info`] by descriptor.
pub fn read_tcp_info_fd(fd: &SocketFd) -> Option<TcpInfo> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        // SAFETY: `info` is a writable, zeroed `tcp_info` of `len` bytes; the kernel
        // writes at most `len` bytes and updates `len`. A descriptor that no longer names
        // a TCP socket makes the call fail (EBADF, ENOTSOCK, ENOPROTOOPT); it never
        // writes outside `info`.
        let rc = unsafe {
            libc::getsockopt(
                fd.0,
                libc::SOL_TCP,
                libc::TCP_INFO,
                info.as_mut_ptr().cast(),
                &mut len,
            )
        };
        // Older kernels fill a shorter struct: the fields we read must be there.
        let needed = std::mem::offset_of!(libc::tcp_info, tcpi_min_rtt);
        if rc != 0 || (len as usize) < needed {
            return None;
        }
        // SAFETY: zero-initialised, then (partly) written by the kernel: every bit
        // pattern is a valid `tcp_info` (plain integers).
        let info = unsafe { info.assume_init() };
        Some(TcpInfo {
            bytes_acked: info.tcpi_bytes_acked,
            rtt: Duration::from_micros(u64::from(info.tcpi_rtt)),
            notsent_bytes: info.tcpi_notsent_bytes,
            unacked: info.tcpi_unacked,
            total_retrans: info.tcpi_total_retrans,
            rto: Duration::from_micros(u64::from(info.tcpi_rto)),
        })
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = fd;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn tcp_info_counts_acknowledged_bytes_on_loopback() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 100_000];
            socket.read_exact(&mut buf).await.unwrap();
            socket.write_all(b"ok").await.unwrap();
        });
        let mut client = TcpStream::connect(addr).await.unwrap();
        tune(
            &client,
            LinkTuning {
                unsent_limit: Some(16 * 1024),
                dead_after: Some(Duration::from_secs(2)),
            },
        );
        client.write_all(&vec![7u8; 100_000]).await.unwrap();
        let mut ok = [0u8; 2];
        client.read_exact(&mut ok).await.unwrap();
        server.await.unwrap();
        let info = read_tcp_info(&client).expect("TCP_INFO on Linux");
        // The SYN counts as one acknowledged byte.
        assert_eq!(info.bytes_acked, 100_001, "{info:?}");
        assert_eq!(info.notsent_bytes, 0);
        assert!(info.rtt < Duration::from_millis(100), "{info:?}");
        assert_eq!(
            SockRef::from(&client).tcp_notsent_lowat().unwrap(),
            16 * 1024
        );
        assert_eq!(
            SockRef::from(&client).tcp_user_timeout().unwrap(),
            Some(Duration::from_secs(6))
        );
        assert!(SockRef::from(&client).keepalive().unwrap());
    }
}
