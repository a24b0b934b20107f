//! WHEP egress (draft-ietf-wish-whep): `POST /whep/{name}` with an SDP offer creates a
//! viewer and answers `201 Created` with the SDP answer and the session's `Location`;
//! `DELETE` on that location ends it. A stream that is not live answers `404`.
//!
//! Watching needs no token. A viewer may send its chat token as `Authorization: Bearer`
//! so that the room counts it once (as the chat member it also is); a token that is sent
//! must be valid (`401` otherwise: a wrong token is a bug worth seeing, not anonymity).

pub mod rtp;
pub mod viewer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;
use tracing::{info, warn};

use super::HubShared;
use super::keys::valid_stream_name;
use viewer::Viewer;

/// Largest offer accepted.
pub const MAX_OFFER_BYTES: usize = 64 * 1024;

/// The live WHEP sessions, by id.
#[derive(Default)]
pub struct Sessions {
    next: AtomicU64,
    by_id: Mutex<HashMap<String, Session>>,
}

struct Session {
    stream: String,
    stop: watch::Sender<bool>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Sessions {
    fn insert(&self, stream: &str) -> (String, watch::Receiver<bool>) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = format!("{n:x}{:08x}", rand::random::<u32>());
        let (stop, stopped) = watch::channel(false);
        lock(&self.by_id).insert(
            id.clone(),
            Session {
                stream: stream.to_string(),
                stop,
            },
        );
        (id, stopped)
    }

    fn stop(&self, stream: &str, id: &str) -> bool {
        let by_id = lock(&self.by_id);
        match by_id.get(id) {
            Some(session) if session.stream == stream => {
                session.stop.send_replace(true);
                true
            }
            _ => false,
        }
    }

    fn remove(&self, id: &str) {
        lock(&self.by_id).remove(id);
    }

    /// Stops every session (hub shutdown).
    pub fn stop_all(&self) {
        for session in lock(&self.by_id).values() {
            session.stop.send_replace(true);
        }
    }

    /// Sessions open now.
    pub fn len(&self) -> usize {
        lock(&self.by_id).len()
    }

    /// True when no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn cors(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location"),
    );
}

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    let mut response = (status, message.into()).into_response();
    cors(&mut response);
    response
}

/// `OPTIONS /whep/{name}`: CORS preflight and the accepted content type.
pub async fn options() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    cors(&mut response);
    let headers = response.headers_mut();
    headers.insert("Accept-Post", HeaderValue::from_static("application/sdp"));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, DELETE, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type, Authorization"),
    );
    response
}

/// `POST /whep/{name}`: a new viewer.
pub(crate) async fn post(
    State(hub): State<Arc<HubShared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_sdp = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().starts_with("application/sdp"));
    if !is_sdp {
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the offer as application/sdp",
        );
    }
    if body.len() > MAX_OFFER_BYTES {
        return problem(StatusCode::PAYLOAD_TOO_LARGE, "offer too large");
    }
    if !valid_stream_name(&name) {
        return problem(StatusCode::NOT_FOUND, format!("no stream {name:?}"));
    }
    let Some(stream) = hub.registry.get(&name) else {
        return problem(StatusCode::NOT_FOUND, format!("stream {name} is not live"));
    };
    // A chat token names the viewer, so that someone who watches and chats counts once
    // in the room's audience. Watching needs no token; a bad one is refused.
    let user = match bearer(&headers) {
        None => None,
        Some(token) => match hub.chat.keys().verify(token) {
            Ok(claims) => Some(claims.user().id),
            Err(e) => return problem(StatusCode::UNAUTHORIZED, e.message),
        },
    };
    let Ok(offer) = String::from_utf8(body.to_vec()) else {
        return problem(StatusCode::BAD_REQUEST, "the offer is not UTF-8");
    };
    let viewer = match Viewer::answer(&stream, offer, hub.webrtc_ip).await {
        Ok(viewer) => viewer,
        Err(e) => {
            warn!(stream = %name, error = %e, "WHEP offer refused");
            let status = match e {
                super::HubError::BadOffer(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            return problem(status, e.to_string());
        }
    };
    let answer = viewer.answer.clone();
    let (id, stopped) = hub.sessions.insert(&name);
    stream.viewer_joined(user.as_deref());
    hub.viewers_changed(&stream);
    info!(stream = %name, session = %id, "WHEP viewer");
    let task_hub = hub.clone();
    let task_id = id.clone();
    tokio::spawn(async move {
        let report = viewer.run(stream.clone(), stopped).await;
        info!(
            stream = stream.name(),
            session = %task_id,
            video_frames = report.video_frames,
            audio_packets = report.audio_packets,
            skipped = report.skipped,
            "WHEP viewer left"
        );
        task_hub.sessions.remove(&task_id);
        stream.viewer_left(user.as_deref());
        task_hub.viewers_changed(&stream);
    });
    let location = format!("/whep/{name}/{id}");
    let mut response = (StatusCode::CREATED, answer).into_response();
    cors(&mut response);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, value);
    }
    response
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// `DELETE /whep/{name}/{id}`: the viewer leaves.
pub(crate) async fn delete(
    State(hub): State<Arc<HubShared>>,
    Path((name, id)): Path<(String, String)>,
) -> Response {
    if hub.sessions.stop(&name, &id) {
        problem(StatusCode::OK, "")
    } else {
        problem(StatusCode::NOT_FOUND, "no such session")
    }
}

/// `PATCH /whep/{name}/{id}`: trickle ICE and ICE restarts are not supported; offers
/// must carry their candidates.
pub async fn patch() -> Response {
    problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "trickle ICE is not supported: send a complete offer",
    )
}
