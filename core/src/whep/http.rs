//! The WHEP HTTP exchange (draft-ietf-wish-whep, modelled on WHIP, RFC 9725): POST the
//! offer, read the answer, the resource `Location` and `Link` ICE servers; DELETE the
//! resource at the end. The header parsing is pure and unit-tested; the requests go
//! through reqwest with rustls (ring).

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, IF_MATCH, LINK, LOCATION, RETRY_AFTER,
};
use reqwest::{Client, StatusCode};
use url::Url;

use super::WhepError;

/// An ICE server announced by the WHEP server with `Link: <...>; rel="ice-server"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceServer {
    /// `stun:` or `turn:` URL.
    pub url: String,
    /// TURN user name.
    pub username: Option<String>,
    /// TURN credential.
    pub credential: Option<String>,
}

/// What a successful POST returned.
#[derive(Debug, Clone)]
pub struct WhepAnswer {
    /// The session resource, to PATCH and DELETE.
    pub resource: Url,
    /// The SDP answer.
    pub sdp: String,
    /// ICE servers offered by the server.
    pub ice_servers: Vec<IceServer>,
    /// The server accepts trickle ICE fragments by PATCH.
    pub accepts_trickle: bool,
}

/// Parses every `rel="ice-server"` link of the given `Link` header values.
pub fn parse_ice_server_links<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<IceServer> {
    let mut servers = Vec::new();
    for value in values {
        for link in split_outside_quotes(value, ',') {
            let link = link.trim();
            let Some(rest) = link.strip_prefix('<') else {
                continue;
            };
            let Some((url, params)) = rest.split_once('>') else {
                continue;
            };
            let mut rel = None;
            let mut username = None;
            let mut credential = None;
            for param in split_outside_quotes(params, ';') {
                let Some((key, value)) = param.trim().split_once('=') else {
                    continue;
                };
                let value = value.trim().trim_matches('"').to_string();
                match key.trim().to_ascii_lowercase().as_str() {
                    "rel" => rel = Some(value),
                    "username" => username = Some(value),
                    "credential" => credential = Some(value),
                    _ => {}
                }
            }
            if rel.as_deref() == Some("ice-server") {
                servers.push(IceServer {
                    url: url.to_string(),
                    username,
                    credential,
                });
            }
        }
    }
    servers
}

fn split_outside_quotes(s: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut angled) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => angled = true,
            '>' if !quoted => angled = false,
            c if c == separator && !quoted && !angled => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Resolves a `Location` (absolute or relative) against the URL that was posted to.
pub fn resolve_location(base: &Url, location: &str) -> Result<Url, WhepError> {
    base.join(location)
        .map_err(|e| WhepError::Protocol(format!("bad Location {location:?}: {e}")))
}

/// Reads `Retry-After` as a number of seconds (an HTTP date counts as one second).
pub fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    match value.parse::<u64>() {
        Ok(secs) => Some(Duration::from_secs(secs)),
        Err(_) if !value.is_empty() => Some(Duration::from_secs(1)),
        Err(_) => None,
    }
}

/// How long an idle HTTP connection may wait to be reused.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// An HTTP client for WHEP: rustls with the ring provider and the bundled Mozilla roots.
pub fn client(timeout: Duration) -> Result<Client, WhepError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WhepError::Http(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::limited(5))
        // The offer's connection sits idle for the whole playback. Servers close idle
        // keep-alive connections (Node after 5 s, Apache after 5 s), and a DELETE sent
        // on one as it closes meets a reset: a connection idle for 2 s is not reused.
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build()
        .map_err(|e| WhepError::Http(format!("HTTP client setup: {e}")))
}

/// POSTs the offer, following redirects and honouring `Retry-After` on 409/503 up to
/// `max_retries` times (each wait capped at 10 s).
pub async fn post_offer(
    client: &Client,
    url: &Url,
    token: Option<&str>,
    offer_sdp: &str,
    max_retries: u32,
) -> Result<WhepAnswer, WhepError> {
    let mut attempt = 0;
    loop {
        let mut request = client
            .post(url.clone())
            .header(CONTENT_TYPE, "application/sdp")
            .header(ACCEPT, "application/sdp")
            .body(offer_sdp.to_string());
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let response = request.send().await.map_err(request_error)?;
        let status = response.status();
        let final_url = response.url().clone();
        let headers = response.headers().clone();
        if (status == StatusCode::CONFLICT || status == StatusCode::SERVICE_UNAVAILABLE)
            && attempt < max_retries
            && let Some(wait) = parse_retry_after(&headers)
        {
            attempt += 1;
            tokio::time::sleep(wait.min(Duration::from_secs(10))).await;
            continue;
        }
        let body = response.text().await.map_err(request_error)?;
        if status != StatusCode::CREATED && status != StatusCode::OK {
            return Err(WhepError::Status {
                status: status.as_u16(),
                body: body.chars().take(500).collect(),
            });
        }
        let location = headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| WhepError::Protocol("201 without a Location header".into()))?;
        let resource = resolve_location(&final_url, location)?;
        let links: Vec<&str> = headers
            .get_all(LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let accepts_trickle = headers
            .get("accept-patch")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/trickle-ice-sdpfrag"));
        return Ok(WhepAnswer {
            resource,
            sdp: body,
            ice_servers: parse_ice_server_links(links),
            accepts_trickle,
        });
    }
}

/// DELETEs the session resource. DELETE is idempotent (RFC 9110 §9.2.2): when the
/// connection fails under it (a keep-alive connection the server closed as the request
/// went out), it is sent once more, on a new connection.
pub async fn delete(client: &Client, resource: &Url, token: Option<&str>) -> Result<(), WhepError> {
    let send = || {
        let mut request = client.delete(resource.clone());
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        request.send()
    };
    let response = match send().await {
        Err(e) if !e.is_timeout() && (e.is_request() || e.is_connect()) => {
            tracing::debug!("DELETE failed ({}), sent again", request_error(e));
            send().await.map_err(request_error)?
        }
        other => other.map_err(request_error)?,
    };
    let status = response.status();
    if status.is_success() || status == StatusCode::NOT_FOUND {
        Ok(())
    } else {
        Err(WhepError::Status {
            status: status.as_u16(),
            body: response
                .text()
                .await
                .unwrap_or_default()
                .chars()
                .take(500)
                .collect(),
        })
    }
}

/// PATCHes an ICE fragment (RFC 9725 §4.3) to the session resource: trickled
/// candidates (`204 No Content`, `None`) or an ICE restart (`If-Match: "*"`, answered by
/// `200 OK` with the server's new fragment, `Some(body)`).
pub async fn patch_fragment(
    client: &Client,
    resource: &Url,
    token: Option<&str>,
    body: String,
    restart: bool,
) -> Result<Option<String>, WhepError> {
    let mut request = client
        .patch(resource.clone())
        .header(CONTENT_TYPE, "application/trickle-ice-sdpfrag")
        .body(body);
    if restart {
        request = request.header(IF_MATCH, "*");
    }
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = request.send().await.map_err(request_error)?;
    let status = response.status();
    let text = response.text().await.map_err(request_error)?;
    match status {
        StatusCode::NO_CONTENT => Ok(None),
        StatusCode::OK => Ok(Some(text)),
        _ => Err(WhepError::Status {
            status: status.as_u16(),
            body: text.chars().take(500).collect(),
        }),
    }
}

fn request_error(e: reqwest::Error) -> WhepError {
    if e.is_timeout() {
        WhepError::Timeout("the WHEP server did not answer in time".into())
    } else {
        // The source chain carries the useful part (connection refused, TLS, ...).
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message = format!("{message}: {s}");
            source = s.source();
        }
        WhepError::Http(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn parses_ice_server_links_with_credentials() {
        let servers = parse_ice_server_links([
            r#"<stun:stun.example.net>; rel="ice-server""#,
            r#"<turn:turn.example.net?transport=udp>; rel="ice-server"; username="user"; credential="p;a,ss"; credential-type="password", <https://x/y>; rel="next""#,
        ]);
        assert_eq!(
            servers,
            vec![
                IceServer {
                    url: "stun:stun.example.net".into(),
                    username: None,
                    credential: None
                },
                IceServer {
                    url: "turn:turn.example.net?transport=udp".into(),
                    username: Some("user".into()),
                    credential: Some("p;a,ss".into())
                },
            ]
        );
        assert!(parse_ice_server_links(["garbage", "<unclosed; rel=ice-server"]).is_empty());
    }

    #[test]
    fn resolves_relative_and_absolute_locations() {
        let base = Url::parse("https://h.example/whep/stream1").unwrap();
        assert_eq!(
            resolve_location(&base, "/whep/resource/abc")
                .unwrap()
                .as_str(),
            "https://h.example/whep/resource/abc"
        );
        assert_eq!(
            resolve_location(&base, "resource/abc").unwrap().as_str(),
            "https://h.example/whep/resource/abc"
        );
        assert_eq!(
            resolve_location(&base, "https://other.example/r/1")
                .unwrap()
                .as_str(),
            "https://other.example/r/1"
        );
    }

    #[test]
    fn reads_retry_after() {
        let mut headers = HeaderMap::new();
        assert_eq!(parse_retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(parse_retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(parse_retry_after(&headers), Some(Duration::from_secs(1)));
    }

    /// Reads one HTTP request head from `stream`.
    async fn read_head(stream: &mut tokio::net::TcpStream) -> String {
        use tokio::io::AsyncReadExt;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut byte).await.unwrap();
            assert_eq!(n, 1, "the request ended early: {head:?}");
            head.push(byte[0]);
        }
        String::from_utf8(head).unwrap()
    }

    /// Closes `stream` with a reset (RST), not a FIN.
    fn reset(stream: tokio::net::TcpStream) {
        socket2::SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    }

    /// A server that resets the first connection under the DELETE, as a keep-alive
    /// connection closed by the server while the request goes out, then answers 200 on
    /// the next: the DELETE succeeds, sent twice.
    #[tokio::test]
    async fn delete_is_sent_again_when_the_connection_is_reset() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!(
            "http://{}/whep/resource/1",
            listener.local_addr().unwrap()
        ))
        .unwrap();
        let server = tokio::spawn(async move {
            let (mut first, _) = listener.accept().await.unwrap();
            let head = read_head(&mut first).await;
            assert!(head.starts_with("DELETE /whep/resource/1 "), "{head}");
            reset(first);
            let (mut second, _) = listener.accept().await.unwrap();
            let head = read_head(&mut second).await;
            assert!(head.starts_with("DELETE /whep/resource/1 "), "{head}");
            assert!(head.contains("authorization: Bearer t0ken"), "{head}");
            second
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            2
        });
        let client = client(Duration::from_secs(5)).unwrap();
        delete(&client, &url, Some("t0ken")).await.unwrap();
        let requests = tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("the server saw both requests within 5 s");
        assert_eq!(requests.unwrap(), 2);
    }

    /// A DELETE that fails twice is an error naming the cause.
    #[tokio::test]
    async fn delete_that_fails_again_is_an_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/r/1", listener.local_addr().unwrap())).unwrap();
        let server = tokio::spawn(async move {
            for _ in 0..2 {
                let (mut stream, _) = listener.accept().await.unwrap();
                read_head(&mut stream).await;
                reset(stream);
            }
        });
        let client = client(Duration::from_secs(5)).unwrap();
        let error = delete(&client, &url, None).await.unwrap_err();
        assert!(matches!(error, WhepError::Http(_)), "{error}");
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("the server saw both requests within 5 s")
            .unwrap();
    }
}
