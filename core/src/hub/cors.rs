//! CORS for the hub's HTTP API and WHEP: which other origins' pages may read the answers.
//!
//! By default none: the hub sends no `Access-Control-Allow-Origin`, so only pages of its
//! own origin (the development page it serves) can read `/api/*` and WHEP answers. Each
//! configured origin (`--cors-origin https://app.example`) is echoed back to requests
//! that come from it, with `Vary: Origin`; `*` allows every origin.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use super::HubError;

/// The origins allowed to read the hub's answers from their pages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsOrigins {
    any: bool,
    origins: Vec<String>,
}

impl CorsOrigins {
    /// Only the hub's own origin (no CORS header).
    pub fn same_origin() -> Self {
        CorsOrigins::default()
    }

    /// These origins: `scheme://host[:port]` each (no path), or `*` for every origin.
    pub fn parse<S: AsRef<str>>(origins: &[S]) -> Result<Self, HubError> {
        let mut parsed = CorsOrigins::default();
        for origin in origins {
            let origin = origin.as_ref().trim();
            if origin == "*" {
                parsed.any = true;
                continue;
            }
            let normalized = normalize(origin).ok_or_else(|| {
                HubError::Config(format!(
                    "--cors-origin {origin:?}: expected * or scheme://host[:port], no path"
                ))
            })?;
            if !parsed.origins.contains(&normalized) {
                parsed.origins.push(normalized);
            }
        }
        Ok(parsed)
    }

    /// The `Access-Control-Allow-Origin` for a request from `origin`, if it may read.
    pub fn allow(&self, origin: Option<&str>) -> Option<HeaderValue> {
        if self.any {
            return Some(HeaderValue::from_static("*"));
        }
        let origin = origin?;
        let normalized = normalize(origin)?;
        if self.origins.contains(&normalized) {
            HeaderValue::from_str(origin).ok()
        } else {
            None
        }
    }
}

/// `scheme://host[:port]`, the scheme and host lower-cased; `None` for anything else.
fn normalize(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.split_once("://")?;
    let valid_scheme = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let valid_host = !rest.is_empty()
        && rest.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_')
        });
    (valid_scheme && valid_host).then(|| format!("{}://{}", scheme, rest).to_ascii_lowercase())
}

/// Adds `Access-Control-Allow-Origin` (and `Vary: Origin`) to the answers of the routes
/// it wraps, for allowed origins only.
pub(crate) async fn layer(
    State(cors): State<Arc<CorsOrigins>>,
    request: Request,
    next: Next,
) -> Response {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.remove(header::ACCESS_CONTROL_ALLOW_ORIGIN);
    if let Some(allowed) = cors.allow(origin.as_deref()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_origins_are_allowed() {
        let cors =
            CorsOrigins::parse(&["https://App.example", "http://localhost:3000/"]).expect("parse");
        assert_eq!(
            cors.allow(Some("https://app.example")),
            Some(HeaderValue::from_static("https://app.example"))
        );
        assert!(cors.allow(Some("http://localhost:3000")).is_some());
        assert_eq!(cors.allow(Some("https://evil.example")), None);
        assert_eq!(cors.allow(Some("https://app.example.evil")), None);
        assert_eq!(cors.allow(Some("http://app.example")), None);
        assert_eq!(cors.allow(Some("null")), None);
        assert_eq!(cors.allow(None), None);
        assert_eq!(
            CorsOrigins::same_origin().allow(Some("https://app.example")),
            None
        );
    }

    #[test]
    fn star_allows_all_and_bad_origins_are_refused() {
        let any = CorsOrigins::parse(&["*"]).expect("parse");
        assert_eq!(
            any.allow(Some("https://x.example")),
            Some(HeaderValue::from_static("*"))
        );
        assert!(CorsOrigins::parse(&["app.example"]).is_err());
        assert!(CorsOrigins::parse(&["https://app.example/path"]).is_err());
        assert!(CorsOrigins::parse(&["https://"]).is_err());
    }
}
