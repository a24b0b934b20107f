//! The hub's JSON API: `GET /api/streams` (what is live) and `POST /api/token` (chat
//! tokens for the development page).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::HubShared;
use super::stream::{AudioInfo, LiveStream, VideoInfo};
use crate::chat::protocol::Role;
use crate::chat::server::{Claims, RoomSnapshot};

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

/// `GET /api/streams`.
pub(crate) async fn streams(State(hub): State<Arc<HubShared>>) -> Response {
    let mut response = Json(StreamList {
        streams: hub.summaries(),
    })
    .into_response();
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::HeaderValue::from_static("*"),
    );
    response
}

/// The body of `POST /api/token`.
#[derive(Debug, Deserialize)]
pub struct TokenRequest {
    /// The user name to chat as (1-32 characters).
    pub user: String,
}

/// The answer to `POST /api/token`.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenResponse {
    /// A viewer token for every room, valid for an hour.
    pub token: String,
    /// The chat endpoint.
    pub chat: String,
}

/// `OPTIONS /api/token`: CORS preflight, so that a page served elsewhere can get tokens.
pub async fn token_options() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::HeaderValue::from_static("*"),
    );
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

/// `POST /api/token`: a viewer token, so that the development page can chat without a
/// token service. Disabled with `dev_tokens: false`.
pub(crate) async fn token(
    State(hub): State<Arc<HubShared>>,
    headers: HeaderMap,
    Json(request): Json<TokenRequest>,
) -> Response {
    if !hub.dev_tokens {
        return (StatusCode::FORBIDDEN, "dev tokens are disabled on this hub").into_response();
    }
    let user = request.user.trim();
    let valid = (1..=32).contains(&user.chars().count())
        && user
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid {
        return (
            StatusCode::BAD_REQUEST,
            "user: 1-32 letters, digits, _ - or .",
        )
            .into_response();
    }
    let claims = Claims::new(user, Role::Viewer, vec!["*".to_string()], 3600);
    let token = match hub.chat.keys().issue(&claims) {
        Ok(token) => token,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| hub.http_addr.to_string());
    let mut response = Json(TokenResponse {
        token,
        chat: format!("ws://{host}/chat"),
    })
    .into_response();
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::HeaderValue::from_static("*"),
    );
    response
}
