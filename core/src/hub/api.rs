//! The hub's JSON API: `GET /api/streams` (what is live) and `POST /api/token` (guest
//! chat tokens for the development page, on a loopback hub only; see `docs/auth.md`).

use std::net::IpAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::HubShared;
use super::stream::{AudioInfo, LiveStream, VideoInfo};
use crate::chat::server::{Claims, RoomSnapshot, valid_room_name};

/// One live stream, as `GET /api/streams` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StreamSummary {
    /// The stream's name: its WHEP path and chat room.
    pub name: String,
    /// The video track, once the publisher sent its configuration.
    pub video: Option<VideoInfo>,
    /// The audio track as viewers get it.
    pub audio: Option<AudioInfo>,
    /// Input bitrate over the last second, in kbit/s.
    pub bitrate_kbps: u64,
    /// The room's audience: distinct people among chat members and WHEP viewers who
    /// sent a chat token, plus anonymous WHEP viewers.
    pub viewers: u64,
    /// WHEP viewers now.
    pub whep_viewers: u64,
    /// Chat connections in the room now.
    pub chat_members: u64,
    /// Video frames received from the publisher.
    pub video_frames: u64,
    /// Milliseconds since the stream went live.
    pub live_for_ms: u64,
    /// The WHEP endpoint's path.
    pub whep: String,
    /// The chat room.
    pub room: String,
}

impl StreamSummary {
    pub(crate) fn of(stream: &LiveStream, room: Option<&RoomSnapshot>) -> Self {
        let (video, audio) = stream.info();
        let whep_viewers = stream.whep_viewers();
        let chat_members = room.map_or(0, |r| r.members as u64);
        StreamSummary {
            name: stream.name().to_string(),
            video,
            audio,
            bitrate_kbps: stream.bitrate_bps() / 1000,
            viewers: room.map_or(whep_viewers, |r| r.viewers),
            whep_viewers,
            chat_members,
            video_frames: stream.video_frames(),
            live_for_ms: stream.live_for().as_millis() as u64,
            whep: format!("/whep/{}", stream.name()),
            room: stream.name().to_string(),
        }
    }
}

/// The body of `GET /api/streams`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StreamList {
    /// Live streams, by name.
    pub streams: Vec<StreamSummary>,
}

/// `GET /api/streams`. Names only: a keyed stream's key never appears.
pub(crate) async fn streams(State(hub): State<Arc<HubShared>>) -> Response {
    Json(StreamList {
        streams: hub.summaries(),
    })
    .into_response()
}

/// The body of `POST /api/token`.
#[derive(Debug, Deserialize)]
pub struct TokenRequest {
    /// The name to chat as (1-32 of letters, digits, `_ - .`); the token's user is the
    /// guest `guest:NAME`, shown as `NAME (guest)`.
    pub user: String,
    /// The room the token is for: a live stream's or an existing chat room.
    #[serde(default)]
    pub room: Option<String>,
}

/// The answer to `POST /api/token`. Its `Debug` hides the token.
#[derive(Serialize, Deserialize)]
pub struct TokenResponse {
    /// A guest viewer token for the room, valid for an hour.
    pub token: String,
    /// The chat endpoint.
    pub chat: String,
    /// The guest's user id (`guest:NAME`).
    #[serde(default)]
    pub user_id: String,
    /// The guest's display name (`NAME (guest)`).
    #[serde(default)]
    pub name: String,
    /// The one room the token allows.
    #[serde(default)]
    pub room: String,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token", &crate::redact::Hidden(&self.token))
            .field("chat", &self.chat)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("room", &self.room)
            .finish()
    }
}

/// Whether `POST /api/token` answers, decided when the hub starts serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DevTokens {
    /// On: the HTTP listener is on loopback.
    On,
    /// Turned off in the configuration.
    Disabled,
    /// Asked for, but the HTTP listener is not on loopback.
    NotLoopback,
}

impl DevTokens {
    pub(crate) fn decide(wanted: bool, http_ip: IpAddr) -> Self {
        match (wanted, http_ip.is_loopback()) {
            (false, _) => DevTokens::Disabled,
            (true, true) => DevTokens::On,
            (true, false) => DevTokens::NotLoopback,
        }
    }
}

/// `OPTIONS /api/token`: CORS preflight, for pages of the origins `--cors-origin` allows.
pub async fn token_options() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        header::HeaderValue::from_static("POST, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        header::HeaderValue::from_static("Content-Type"),
    );
    response
}

/// True for a `Host` that names this machine: `localhost` or a loopback address (with a
/// port or not). A page of another site whose name was made to resolve to 127.0.0.1 (DNS
/// rebinding) sends its own name.
fn loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// True for a name a guest may take.
fn valid_guest_name(user: &str) -> bool {
    (1..=32).contains(&user.chars().count())
        && user
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `POST /api/token {"user": NAME, "room": ROOM}`: a guest viewer token for one room, so
/// that the development page can chat without a token service. Only on a hub whose HTTP
/// listener is on loopback (`403` otherwise, and with `dev_tokens: false`); the room must
/// exist (`404`), and the name must not be a real user's in any room here (`409`).
pub(crate) async fn token(
    State(hub): State<Arc<HubShared>>,
    headers: HeaderMap,
    Json(request): Json<TokenRequest>,
) -> Response {
    match hub.dev_tokens {
        DevTokens::On => {}
        DevTokens::Disabled => {
            return (StatusCode::FORBIDDEN, "dev tokens are disabled on this hub").into_response();
        }
        DevTokens::NotLoopback => {
            return (
                StatusCode::FORBIDDEN,
                "dev tokens are only given by a hub listening on loopback: tokens come from \
                 your auth service (docs/auth.md)",
            )
                .into_response();
        }
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| hub.http_addr.to_string());
    if !loopback_host(&host) {
        return (
            StatusCode::FORBIDDEN,
            "dev tokens are only given to localhost or a loopback address as Host",
        )
            .into_response();
    }
    let user = request.user.trim();
    if !valid_guest_name(user) {
        return (
            StatusCode::BAD_REQUEST,
            "user: 1-32 letters, digits, _ - or .",
        )
            .into_response();
    }
    let Some(room) = request.room.as_deref().map(str::trim) else {
        return (
            StatusCode::BAD_REQUEST,
            "room: name the stream or chat room the token is for",
        )
            .into_response();
    };
    let exists = valid_room_name(room)
        && (hub.registry.get(room).is_some() || hub.chat.room(room).is_some());
    if !exists {
        return (
            StatusCode::NOT_FOUND,
            format!("no live stream or chat room named {room:?}"),
        )
            .into_response();
    }
    if hub.chat.real_user_named(user) {
        return (
            StatusCode::CONFLICT,
            format!("{user} is the name of a user here: pick another"),
        )
            .into_response();
    }
    let claims = Claims::guest(user, room, 3600);
    let token = match hub.chat.keys().issue(&claims) {
        Ok(token) => token,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    };
    Json(TokenResponse {
        token,
        chat: format!("ws://{host}/chat"),
        user_id: claims.sub,
        name: claims.name,
        room: room.to_string(),
    })
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "127.0.0.1:8080",
            "localhost",
            "LOCALHOST:1",
            "[::1]:80",
            "127.1.2.3",
        ] {
            assert!(loopback_host(host), "{host}");
        }
        for host in [
            "evil.example:8080",
            "192.0.2.1",
            "[2001:db8::1]:80",
            "localhost.evil",
            "",
        ] {
            assert!(!loopback_host(host), "{host}");
        }
    }

    #[test]
    fn dev_tokens_need_loopback() {
        let v4 = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(DevTokens::decide(true, v4("127.0.0.1")), DevTokens::On);
        assert_eq!(DevTokens::decide(true, v4("::1")), DevTokens::On);
        assert_eq!(
            DevTokens::decide(true, v4("0.0.0.0")),
            DevTokens::NotLoopback
        );
        assert_eq!(
            DevTokens::decide(true, v4("192.0.2.1")),
            DevTokens::NotLoopback
        );
        assert_eq!(
            DevTokens::decide(false, v4("127.0.0.1")),
            DevTokens::Disabled
        );
    }

    #[test]
    fn guest_names() {
        assert!(valid_guest_name("viewer-1234"));
        assert!(valid_guest_name(&"a".repeat(32)));
        assert!(!valid_guest_name(&"a".repeat(33)));
        assert!(!valid_guest_name("a b"));
        assert!(!valid_guest_name("guest:ada"));
        assert!(!valid_guest_name(""));
    }
}
