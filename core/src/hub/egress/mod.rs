//! WHEP egress (draft-ietf-wish-whep): `POST /whep/{name}` with an SDP offer creates a
//! viewer and answers `201 Created` with the SDP answer and the session's `Location`;
//! `DELETE` on that location ends it; `PATCH` on it takes ICE fragments (trickled
//! candidates, ICE restarts, see [`ice`]). A stream that is not live answers `404`.
//!
//! Watching needs no token unless the hub asks for watch tokens ([`super::watch_tokens`]). A
//! viewer may send its chat token as `Authorization: Bearer` so that the room counts it
//! once (as the chat member it also is); a token that is sent must be valid (`401`
//! otherwise: a wrong token is a bug worth seeing, not anonymity).
//!
//! A session's URL holds a random 128-bit id: knowing it is what allows `PATCH` and
//! `DELETE` on the session.

pub(crate) mod ice;
pub(crate) mod rtp;
pub(crate) mod viewer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;
use tracing::{info, warn};

use super::HubShared;
use super::keys::valid_stream_name;
use super::watch_tokens::authorize;
use crate::sync::lock;
use crate::whep::sdpfrag::{IceFragment, MAX_FRAGMENT_BYTES};
use ice::{IceHandle, Patched};
use viewer::Viewer;

/// The media type of ICE fragments (RFC 8840).
const SDPFRAG: &str = "application/trickle-ice-sdpfrag";

/// The live WHEP sessions, by id.
#[derive(Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

struct Session {
    stream: String,
    stop: watch::Sender<bool>,
    ice: IceHandle,
}

impl Sessions {
    fn insert(&self, stream: &str, ice: IceHandle) -> (String, watch::Receiver<bool>) {
        let (stop, stopped) = watch::channel(false);
        let mut by_id = lock(&self.by_id);
        let id = loop {
            let id = session_id();
            if !by_id.contains_key(&id) {
                break id;
            }
        };
        by_id.insert(
            id.clone(),
            Session {
                stream: stream.to_string(),
                stop,
                ice,
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

    fn ice(&self, stream: &str, id: &str) -> Option<IceHandle> {
        let by_id = lock(&self.by_id);
        by_id
            .get(id)
            .filter(|session| session.stream == stream)
            .map(|session| session.ice.clone())
    }

    /// Sessions of `stream` now.
    fn count_of(&self, stream: &str) -> usize {
        lock(&self.by_id)
            .values()
            .filter(|s| s.stream == stream)
            .count()
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
}

/// A session id: 128 random bits (the thread-local CSPRNG), in hex. Whoever knows it may
/// end the session or patch its ICE, so it must not be guessable.
fn session_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The headers a page of another origin may read (when CORS lets it read at all, see
/// [`super::cors`]).
fn cors(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, Accept-Patch, WWW-Authenticate"),
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
        HeaderValue::from_static("POST, PATCH, DELETE, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type, Authorization, If-Match"),
    );
    response
}

/// `POST /whep/{name}`: a new viewer.
pub(crate) async fn post(
    State(hub): State<Arc<HubShared>>,
    Path(name): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
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
    if body.len() > hub.limits.sdp_max_bytes {
        return problem(StatusCode::PAYLOAD_TOO_LARGE, "offer too large");
    }
    if !valid_stream_name(&name) {
        return problem(StatusCode::NOT_FOUND, format!("no stream {name:?}"));
    }
    // A chat token names the viewer, so that someone who watches and chats counts once
    // in the room's audience. Watching needs no token unless the hub asks for watch
    // tokens; a bad one is refused.
    let user = match authorize(hub.chat.keys(), &hub.watch_tokens, &headers, &name).await {
        Ok(claims) => claims.map(|claims| claims.user().id),
        Err(refusal) => {
            let mut response = refusal.response(&name);
            cors(&mut response);
            return response;
        }
    };
    let Some(stream) = hub.registry.get(&name) else {
        return problem(StatusCode::NOT_FOUND, format!("stream {name} is not live"));
    };
    if hub.sessions.count_of(&name) >= hub.limits.whep_per_stream {
        return busy(format!(
            "stream {name} has its limit of {} viewers",
            hub.limits.whep_per_stream
        ));
    }
    let Some(ip_slot) = hub.whep_per_ip.try_acquire(peer.ip()) else {
        return busy(format!(
            "this address watches {} streams already",
            hub.limits.whep_per_ip
        ));
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
    let (id, stopped) = hub.sessions.insert(&name, viewer.ice());
    stream.viewer_joined(user.as_deref());
    hub.viewers_changed(&stream);
    info!(stream = %name, session = %id, "WHEP viewer");
    let task_hub = hub.clone();
    let task_id = id.clone();
    tokio::spawn(async move {
        let _ip_slot = ip_slot;
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
    headers.insert("Accept-Patch", HeaderValue::from_static(SDPFRAG));
    response
}

/// 503 with Retry-After: a limit is reached, and may not be later.
fn busy(detail: String) -> Response {
    let mut response = problem(StatusCode::SERVICE_UNAVAILABLE, detail);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
    response
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

/// `PATCH /whep/{name}/{id}` with an `application/trickle-ice-sdpfrag` body (RFC 9725
/// §4.3): candidates for the ICE generation in force (`204`), or new credentials, an ICE
/// restart (`200` with the hub's new fragment).
pub(crate) async fn patch(
    State(hub): State<Arc<HubShared>>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_fragment = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().starts_with(SDPFRAG));
    if !is_fragment {
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("send ICE fragments as {SDPFRAG}"),
        );
    }
    if body.len() > MAX_FRAGMENT_BYTES {
        return problem(StatusCode::PAYLOAD_TOO_LARGE, "fragment too large");
    }
    let Some(ice) = hub.sessions.ice(&name, &id) else {
        return problem(StatusCode::NOT_FOUND, "no such session");
    };
    let fragment = match std::str::from_utf8(&body)
        .map_err(|_| "the fragment is not UTF-8".to_string())
        .and_then(|text| IceFragment::parse(text).map_err(|e| e.to_string()))
    {
        Ok(fragment) => fragment,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e),
    };
    match ice.patch(fragment).await {
        Ok(Patched::Candidates(_)) => problem(StatusCode::NO_CONTENT, ""),
        Ok(Patched::Restarted(answer)) => {
            info!(stream = %name, session = %id, "WHEP viewer ICE restart");
            let mut response = (StatusCode::OK, answer).into_response();
            cors(&mut response);
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(SDPFRAG));
            response
        }
        Err(e) => {
            warn!(stream = %name, session = %id, error = %e, "WHEP PATCH refused");
            let status = match e {
                super::HubError::BadOffer(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            problem(status, e.to_string())
        }
    }
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("live", &lock(&self.by_id).len())
            .finish()
    }
}
