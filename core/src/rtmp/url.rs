//! Ingest URLs: `rtmp://host[:port]/app[/instance]/key[?query]` and the `rtmps://` form.

use std::fmt;

use url::Url;

use super::RtmpError;

/// Transport security of an ingest URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain TCP, default port 1935.
    Rtmp,
    /// TLS over TCP, default port 443.
    Rtmps,
}

/// A parsed ingest URL.
///
/// The last path segment is the stream key; everything between the host and the key is
/// the application (with its instance, if any). A query string stays on the stream key,
/// where nginx-rtmp, SRS, Wowza and most CDNs read publish tokens from.
#[derive(Clone, PartialEq, Eq)]
pub struct RtmpUrl {
    scheme: Scheme,
    host: String,
    port: u16,
    explicit_port: bool,
    app: String,
    stream_key: String,
}

impl RtmpUrl {
    /// Parses an `rtmp://` or `rtmps://` URL that ends with a stream key.
    pub fn parse(input: &str) -> Result<Self, RtmpError> {
        let bad = |reason: &str| RtmpError::InvalidUrl {
            reason: reason.to_string(),
        };
        let url = Url::parse(input).map_err(|e| bad(&e.to_string()))?;
        let scheme = match url.scheme() {
            "rtmp" => Scheme::Rtmp,
            "rtmps" => Scheme::Rtmps,
            other => return Err(bad(&format!("scheme {other:?} is not rtmp or rtmps"))),
        };
        let host = match url.host() {
            Some(url::Host::Ipv6(addr)) => addr.to_string(),
            Some(host) => host.to_string(),
            None => return Err(bad("no host")),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "credentials in the URL are not supported; put them in the query",
            ));
        }
        let default_port = match scheme {
            Scheme::Rtmp => 1935,
            Scheme::Rtmps => 443,
        };
        let path = url.path().trim_start_matches('/');
        let (app, key) = path
            .rsplit_once('/')
            .ok_or_else(|| bad("expected /app/stream-key after the host"))?;
        if app.is_empty() {
            return Err(bad("empty application name"));
        }
        if key.is_empty() {
            return Err(bad("empty stream key"));
        }
        let app = percent_decode(app);
        let mut stream_key = percent_decode(key);
        if let Some(query) = url.query() {
            stream_key.push('?');
            stream_key.push_str(query);
        }
        Ok(RtmpUrl {
            scheme,
            host,
            port: url.port().unwrap_or(default_port),
            explicit_port: url.port().is_some(),
            app,
            stream_key,
        })
    }

    /// `rtmp` or `rtmps`.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host name or IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port, defaulted from the scheme.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The application, including its instance (`live` or `live/instance`).
    pub fn app(&self) -> &str {
        &self.app
    }

    /// The stream key, with the URL's query string if it had one.
    pub fn stream_key(&self) -> &str {
        &self.stream_key
    }

    /// The `tcUrl` sent in `connect`: scheme, host, port if given, and application.
    pub fn tc_url(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Rtmp => "rtmp",
            Scheme::Rtmps => "rtmps",
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.explicit_port {
            format!("{scheme}://{host}:{}/{}", self.port, self.app)
        } else {
            format!("{scheme}://{host}/{}", self.app)
        }
    }
}

/// Shows the URL with the stream key masked, so logs never leak it.
impl fmt::Debug for RtmpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/<key>", self.tc_url())
    }
}

impl fmt::Display for RtmpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_url_with_default_port() {
        let url = RtmpUrl::parse("rtmp://live.example.com/live/abc123").unwrap();
        assert_eq!(url.scheme(), Scheme::Rtmp);
        assert_eq!(url.host(), "live.example.com");
        assert_eq!(url.port(), 1935);
        assert_eq!(url.app(), "live");
        assert_eq!(url.stream_key(), "abc123");
        assert_eq!(url.tc_url(), "rtmp://live.example.com/live");
    }

    #[test]
    fn rtmps_defaults_to_443_and_keeps_explicit_port_in_tc_url() {
        let url = RtmpUrl::parse("rtmps://ingest.example.com/app/key").unwrap();
        assert_eq!(url.port(), 443);
        let url = RtmpUrl::parse("rtmps://127.0.0.1:8443/app/key").unwrap();
        assert_eq!(url.port(), 8443);
        assert_eq!(url.tc_url(), "rtmps://127.0.0.1:8443/app");
    }

    #[test]
    fn keeps_instance_in_app_and_query_on_key() {
        let url = RtmpUrl::parse("rtmp://h:1936/live/inst/key?token=a%2Fb&x=1").unwrap();
        assert_eq!(url.app(), "live/inst");
        assert_eq!(url.stream_key(), "key?token=a%2Fb&x=1");
        assert_eq!(url.tc_url(), "rtmp://h:1936/live/inst");
    }

    #[test]
    fn decodes_percent_escapes_in_path() {
        let url = RtmpUrl::parse("rtmp://h/my%20app/k%2By").unwrap();
        assert_eq!(url.app(), "my app");
        assert_eq!(url.stream_key(), "k+y");
    }

    #[test]
    fn ipv6_host() {
        let url = RtmpUrl::parse("rtmp://[::1]:1935/live/k").unwrap();
        assert_eq!(url.host(), "::1");
        assert_eq!(url.tc_url(), "rtmp://[::1]:1935/live");
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in [
            "http://h/live/k",
            "rtmp://h/live/",
            "rtmp://h/key",
            "rtmp://h//k",
            "rtmp:///live/k",
            "rtmp://u:p@h/live/k",
            "not a url",
        ] {
            assert!(RtmpUrl::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn debug_masks_the_key() {
        let url = RtmpUrl::parse("rtmp://h/live/secret").unwrap();
        assert!(!format!("{url:?}").contains("secret"));
    }
}
