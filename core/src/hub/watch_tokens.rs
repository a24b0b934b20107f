//! Watch tokens: who may play a stream over WHEP.
//!
//! Off by default: anyone who knows a live stream's name may watch it. With watch tokens
//! on for a stream (every stream, or the ones named), `POST /whep/NAME` needs
//! `Authorization: Bearer TOKEN`, a chat token ([`Claims`]) whose `rooms` allow the room
//! NAME (or `"*"`), checked with the chat keys (HS256 secret, public keys). No token or a
//! bad one: `401` with `WWW-Authenticate: Bearer`; a valid token for other rooms: `403`.
//!
//! A token sent to a stream that needs none still names the viewer in the room's
//! audience, and must be valid.

use std::collections::BTreeSet;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::chat::server::{Claims, TokenKeys};

/// The streams that need a watch token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchTokens {
    /// None: watching is open (the default).
    #[default]
    Off,
    /// Every stream.
    All,
    /// These streams.
    Streams(BTreeSet<String>),
}

impl WatchTokens {
    /// Whether watching `name` needs a token.
    pub fn required_for(&self, name: &str) -> bool {
        match self {
            WatchTokens::Off => false,
            WatchTokens::All => true,
            WatchTokens::Streams(names) => names.contains(name),
        }
    }
}

/// Why a viewer was turned away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WatchRefusal {
    /// The stream needs a token and none was sent.
    Missing,
    /// The token is expired, forged or malformed.
    Invalid(String),
    /// The token is valid, but not for this stream.
    OtherStream,
}

impl WatchRefusal {
    /// `401` or `403` with the `WWW-Authenticate` challenge of RFC 6750.
    pub(crate) fn response(&self, name: &str) -> Response {
        let (status, challenge, body) = match self {
            WatchRefusal::Missing => (
                StatusCode::UNAUTHORIZED,
                "Bearer realm=\"streamhub\"".to_string(),
                format!("stream {name} needs a watch token (Authorization: Bearer)"),
            ),
            WatchRefusal::Invalid(reason) => (
                StatusCode::UNAUTHORIZED,
                "Bearer realm=\"streamhub\", error=\"invalid_token\"".to_string(),
                reason.clone(),
            ),
            WatchRefusal::OtherStream => (
                StatusCode::FORBIDDEN,
                "Bearer realm=\"streamhub\", error=\"insufficient_scope\"".to_string(),
                format!("the token does not allow stream {name}"),
            ),
        };
        let mut response = (status, body).into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// The token of an `Authorization: Bearer TOKEN` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// Decides whether a viewer may watch `name`: `Ok(Some(claims))` for a viewer with a valid
/// token, `Ok(None)` for an anonymous one where watching is open.
pub(crate) async fn authorize(
    keys: &TokenKeys,
    watch: &WatchTokens,
    headers: &HeaderMap,
    name: &str,
) -> Result<Option<Claims>, WatchRefusal> {
    let required = watch.required_for(name);
    let Some(token) = bearer(headers) else {
        return if required {
            Err(WatchRefusal::Missing)
        } else {
            Ok(None)
        };
    };
    let claims = keys
        .verify_or_refresh(token)
        .await
        .map_err(|e| WatchRefusal::Invalid(e.message))?;
    if required && !claims.allows_room(name) {
        return Err(WatchRefusal::OtherStream);
    }
    Ok(Some(claims))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::protocol::Role;

    fn with_token(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        headers
    }

    #[test]
    fn bearer_tokens_are_read() {
        assert_eq!(bearer(&with_token("abc")), Some("abc"));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  x "),
        );
        assert_eq!(bearer(&headers), Some("x"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic eDp5"),
        );
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&headers), None);
    }

    #[tokio::test]
    async fn protected_streams_need_a_token_for_them() {
        let keys = TokenKeys::hs256(b"secret");
        let cam1 = keys
            .issue(&Claims::new("ada", Role::Viewer, vec!["cam1".into()], 60))
            .unwrap();
        let forged = TokenKeys::hs256(b"other")
            .issue(&Claims::new("ada", Role::Viewer, vec!["*".into()], 60))
            .unwrap();
        let watch = WatchTokens::Streams(BTreeSet::from(["cam1".into(), "cam2".into()]));
        let none = HeaderMap::new();
        assert_eq!(
            authorize(&keys, &watch, &none, "cam1").await,
            Err(WatchRefusal::Missing)
        );
        assert_eq!(authorize(&keys, &watch, &none, "open").await, Ok(None));
        let ok = authorize(&keys, &watch, &with_token(&cam1), "cam1").await;
        assert_eq!(ok.map(|c| c.map(|c| c.sub)), Ok(Some("ada".to_string())));
        assert_eq!(
            authorize(&keys, &watch, &with_token(&cam1), "cam2").await,
            Err(WatchRefusal::OtherStream)
        );
        assert!(matches!(
            authorize(&keys, &watch, &with_token(&forged), "cam1").await,
            Err(WatchRefusal::Invalid(_))
        ));
        // A bad token is refused even where none is needed.
        assert!(matches!(
            authorize(&keys, &watch, &with_token(&forged), "open").await,
            Err(WatchRefusal::Invalid(_))
        ));
        assert_eq!(
            WatchRefusal::Missing.response("cam1").status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            WatchRefusal::OtherStream.response("cam1").status(),
            StatusCode::FORBIDDEN
        );
    }
}
