//! A connected byte stream, plain TCP or TLS, with the TCP socket underneath reachable
//! for tuning and `TCP_INFO` (the RTMP publisher's congestion control, the chat client).

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A connected byte stream, plain or TLS.
pub trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Asks the kernel to acknowledge the next segments at once instead of delaying the
    /// ACK. Servers that write each negotiation message separately with Nagle on
    /// (nginx-rtmp) otherwise wait out our delayed ACK, adding ~40 ms per round trip to
    /// going live. Linux resets the mode by itself, so this is called before each read.
    fn quickack(&self) {}

    /// Tunes the TCP socket underneath (see [`super::link`]).
    fn tune(&self, _tuning: super::link::LinkTuning) {}

    /// The TCP socket's descriptor, for `TCP_INFO` after the stream is split.
    fn socket_fd(&self) -> Option<super::link::SocketFd> {
        None
    }
}

impl ByteStream for TcpStream {
    fn quickack(&self) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let _ = self.set_quickack(true);
    }

    fn tune(&self, tuning: super::link::LinkTuning) {
        super::link::tune(self, tuning);
    }

    fn socket_fd(&self) -> Option<super::link::SocketFd> {
        Some(super::link::SocketFd::of(self))
    }
}

impl ByteStream for tokio_rustls::client::TlsStream<TcpStream> {
    fn quickack(&self) {
        ByteStream::quickack(self.get_ref().0);
    }

    fn tune(&self, tuning: super::link::LinkTuning) {
        super::link::tune(self.get_ref().0, tuning);
    }

    /// TLS adds its record framing to what TCP acknowledges (under 0.5 % for full
    /// records): the delivered offsets run slightly ahead, which errs towards less
    /// waiting media.
    fn socket_fd(&self) -> Option<super::link::SocketFd> {
        Some(super::link::SocketFd::of(self.get_ref().0))
    }
}
