//! Opening the chat WebSocket: TCP (or TLS for `wss://`), the upgrade with the
//! `streamhub.chat.v1` subprotocol, each step under a timeout.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use url::Url;

use crate::chat::ChatError;
use crate::chat::protocol::SUBPROTOCOL;
use crate::net::{ByteStream, TlsOptions};

/// The chat socket.
pub type ChatSocket = WebSocketStream<Box<dyn ByteStream>>;

/// A checked `ws://` or `wss://` URL.
#[derive(Debug, Clone)]
pub struct ChatUrl {
    url: Url,
    host: String,
    port: u16,
    tls: bool,
}

impl ChatUrl {
    /// Parses a `ws://` or `wss://` URL.
    pub fn parse(input: &str) -> Result<Self, ChatError> {
        let url = Url::parse(input).map_err(|e| ChatError::InvalidUrl(format!("{input}: {e}")))?;
        let tls = match url.scheme() {
            "ws" => false,
            "wss" => true,
            other => {
                return Err(ChatError::InvalidUrl(format!(
                    "scheme {other:?} is not ws or wss"
                )));
            }
        };
        let host = match url.host() {
            Some(url::Host::Ipv6(addr)) => addr.to_string(),
            Some(host) => host.to_string(),
            None => return Err(ChatError::InvalidUrl(format!("{input}: no host"))),
        };
        let port = url
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        Ok(ChatUrl {
            url,
            host,
            port,
            tls,
        })
    }

    /// `host:port`, for messages.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Whether a failed connection attempt is worth retrying.
#[derive(Debug)]
pub struct OpenError {
    /// What went wrong.
    pub error: ChatError,
    /// False when retrying cannot help (404, wrong protocol).
    pub retry: bool,
    /// The server's `Retry-After`, if it sent one.
    pub retry_after: Option<Duration>,
}

fn retryable(error: ChatError) -> OpenError {
    OpenError {
        error,
        retry: true,
        retry_after: None,
    }
}

/// Connects and upgrades; the whole step is bounded by `timeout`.
pub async fn open(
    url: &ChatUrl,
    tls: &TlsOptions,
    max_frame_bytes: usize,
    timeout: Duration,
) -> Result<ChatSocket, OpenError> {
    let addr = url.addr();
    let connect_error = |reason: String| ChatError::Connect {
        addr: addr.clone(),
        reason,
    };
    let step = async {
        let tcp = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|e| retryable(connect_error(e.to_string())))?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn ByteStream> = if url.tls {
            let config = tls
                .client_config()
                .map_err(|e| retryable(connect_error(e.to_string())))?;
            let name = ServerName::try_from(url.host.clone())
                .map_err(|e| retryable(connect_error(format!("bad server name: {e}"))))?;
            let tls_stream = TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await
                .map_err(|e| retryable(connect_error(format!("TLS: {e}"))))?;
            Box::new(tls_stream)
        } else {
            Box::new(tcp)
        };
        let mut request = url
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| OpenError {
                error: ChatError::InvalidUrl(e.to_string()),
                retry: false,
                retry_after: None,
            })?;
        request.headers_mut().insert(
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(SUBPROTOCOL),
        );
        let config = WebSocketConfig::default()
            .max_message_size(Some(max_frame_bytes))
            .max_frame_size(Some(max_frame_bytes));
        let (socket, response) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(config))
                .await
                .map_err(|e| upgrade_error(&addr, e))?;
        let selected = response
            .headers()
            .get(SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok());
        if selected != Some(SUBPROTOCOL) {
            return Err(OpenError {
                error: ChatError::Incompatible(format!("it selected the subprotocol {selected:?}")),
                retry: false,
                retry_after: None,
            });
        }
        Ok(socket)
    };
    tokio::time::timeout(timeout, step)
        .await
        .map_err(|_| retryable(ChatError::Timeout(format!("connecting to {}", url.addr()))))?
}

fn upgrade_error(addr: &str, error: tokio_tungstenite::tungstenite::Error) -> OpenError {
    use tokio_tungstenite::tungstenite::Error;
    match error {
        Error::Http(response) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned())
                .unwrap_or_default();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            OpenError {
                error: ChatError::Connect {
                    addr: addr.to_string(),
                    reason: format!("the server answered {status}: {}", body.trim()),
                },
                // 5xx and 429 are passing; 4xx (wrong path, no subprotocol) are not.
                retry: status >= 500 || status == 429,
                retry_after,
            }
        }
        other => retryable(ChatError::Connect {
            addr: addr.to_string(),
            reason: other.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ws_urls() {
        let url = ChatUrl::parse("ws://127.0.0.1:9000/chat").unwrap();
        assert_eq!((url.addr(), url.tls), ("127.0.0.1:9000".to_string(), false));
        let url = ChatUrl::parse("wss://chat.example.com/chat").unwrap();
        assert_eq!(
            (url.addr(), url.tls),
            ("chat.example.com:443".to_string(), true)
        );
        let url = ChatUrl::parse("ws://[::1]/chat").unwrap();
        assert_eq!(url.addr(), "[::1]:80");
        assert!(matches!(
            ChatUrl::parse("http://x/chat"),
            Err(ChatError::InvalidUrl(_))
        ));
        assert!(matches!(
            ChatUrl::parse("not a url"),
            Err(ChatError::InvalidUrl(_))
        ));
    }
}
