//! One RTMP publisher connection: handshake, session, publish decision, media.

use std::sync::Arc;
use std::time::Duration;

use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{info, warn};

use super::feed::Feed;
use crate::hub::{HubError, HubShared};

/// Time allowed for the handshake and for each read while connected (publishers send
/// media continuously; a silent one is gone).
const READ_TIMEOUT: Duration = Duration::from_secs(20);
/// Time allowed for each write.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Releases the stream however the connection ends (error, panic in a parser, EOF).
struct Publishing {
    feed: Feed,
    hub: Arc<HubShared>,
    media_errors: u64,
}

impl Drop for Publishing {
    fn drop(&mut self) {
        let stream = self.feed.stream().clone();
        info!(stream = stream.name(), "publisher left");
        self.hub.registry.release(&stream);
        self.hub.viewers_changed(&stream);
    }
}

/// Serves one connection until it closes.
pub(crate) async fn run(mut socket: TcpStream, hub: Arc<HubShared>) -> Result<(), HubError> {
    let _ = socket.set_nodelay(true);
    let remaining = handshake(&mut socket).await?;
    let (mut session, initial) = ServerSession::new(ServerSessionConfig::new())
        .map_err(|e| HubError::Rtmp(format!("starting the session: {e:?}")))?;
    let mut publishing: Option<Publishing> = None;
    let mut pending = initial;
    if !remaining.is_empty() {
        pending.extend(
            session
                .handle_input(&remaining)
                .map_err(|e| HubError::Rtmp(format!("{e:?}")))?,
        );
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let close =
            handle_results(&mut socket, &mut session, &hub, &mut publishing, pending).await?;
        if close {
            // Give the refusal a moment to leave, then hang up (as nginx-rtmp does).
            let _ = tokio::time::timeout(Duration::from_secs(1), socket.shutdown()).await;
            return Ok(());
        }
        let n = match tokio::time::timeout(READ_TIMEOUT, socket.read(&mut buf)).await {
            Err(_) => return Err(HubError::Rtmp("publisher silent for 20 s".into())),
            Ok(Err(e)) => return Err(HubError::Rtmp(format!("reading: {e}"))),
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(n)) => n,
        };
        pending = session
            .handle_input(&buf[..n])
            .map_err(|e| HubError::Rtmp(format!("bad RTMP from the publisher: {e:?}")))?;
    }
}

async fn handshake(socket: &mut TcpStream) -> Result<Vec<u8>, HubError> {
    let mut handshake = Handshake::new(PeerType::Server);
    let mut buf = vec![0u8; 4096];
    let work = async {
        loop {
            let n = socket
                .read(&mut buf)
                .await
                .map_err(|e| HubError::Rtmp(format!("handshake: {e}")))?;
            if n == 0 {
                return Err(HubError::Rtmp("closed during the handshake".into()));
            }
            let result = handshake
                .process_bytes(&buf[..n])
                .map_err(|e| HubError::Rtmp(format!("handshake: {e:?}")))?;
            match result {
                HandshakeProcessResult::InProgress { response_bytes } => {
                    write(socket, &response_bytes).await?;
                }
                HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                } => {
                    write(socket, &response_bytes).await?;
                    return Ok(remaining_bytes);
                }
            }
        }
    };
    tokio::time::timeout(READ_TIMEOUT, work)
        .await
        .map_err(|_| HubError::Rtmp("handshake timed out".into()))?
}

async fn write(socket: &mut TcpStream, bytes: &[u8]) -> Result<(), HubError> {
    if bytes.is_empty() {
        return Ok(());
    }
    tokio::time::timeout(WRITE_TIMEOUT, socket.write_all(bytes))
        .await
        .map_err(|_| HubError::Rtmp("write timed out".into()))?
        .map_err(|e| HubError::Rtmp(format!("writing: {e}")))
}

/// Acts on the session's results; `Ok(true)` when the connection should close.
async fn handle_results(
    socket: &mut TcpStream,
    session: &mut ServerSession,
    hub: &Arc<HubShared>,
    publishing: &mut Option<Publishing>,
    results: Vec<ServerSessionResult>,
) -> Result<bool, HubError> {
    let mut queue = std::collections::VecDeque::from(results);
    let mut close = false;
    while let Some(result) = queue.pop_front() {
        match result {
            ServerSessionResult::OutboundResponse(packet) => write(socket, &packet.bytes).await?,
            ServerSessionResult::RaisedEvent(event) => {
                let more = handle_event(session, hub, publishing, event, &mut close)?;
                queue.extend(more);
            }
            ServerSessionResult::UnhandleableMessageReceived(_) => {}
        }
    }
    Ok(close)
}

fn session_error(e: impl std::fmt::Debug) -> HubError {
    HubError::Rtmp(format!("{e:?}"))
}

fn handle_event(
    session: &mut ServerSession,
    hub: &Arc<HubShared>,
    publishing: &mut Option<Publishing>,
    event: ServerSessionEvent,
    close: &mut bool,
) -> Result<Vec<ServerSessionResult>, HubError> {
    match event {
        ServerSessionEvent::ConnectionRequested { request_id, .. } => {
            session.accept_request(request_id).map_err(session_error)
        }
        ServerSessionEvent::PublishStreamRequested {
            request_id,
            stream_key,
            ..
        } => {
            if publishing.is_some() {
                *close = true;
                return session
                    .reject_request(
                        request_id,
                        "NetStream.Publish.BadName",
                        "this connection already publishes",
                    )
                    .map_err(session_error);
            }
            let name = match hub.keys.resolve(&stream_key) {
                Ok(name) => name,
                Err(refusal) => {
                    warn!(%refusal, "publish refused");
                    *close = true;
                    return session
                        .reject_request(
                            request_id,
                            "NetStream.Publish.BadName",
                            &refusal.to_string(),
                        )
                        .map_err(session_error);
                }
            };
            let Some(stream) = hub.registry.claim(&name) else {
                warn!(stream = %name, "publish refused: already live");
                *close = true;
                return session
                    .reject_request(
                        request_id,
                        "NetStream.Publish.BadName",
                        &format!("stream {name} is already publishing"),
                    )
                    .map_err(session_error);
            };
            info!(stream = %name, "publisher live");
            *publishing = Some(Publishing {
                feed: Feed::new(stream, hub.opus_bitrate),
                hub: hub.clone(),
                media_errors: 0,
            });
            session.accept_request(request_id).map_err(session_error)
        }
        ServerSessionEvent::PublishStreamFinished { .. } => {
            *publishing = None;
            Ok(Vec::new())
        }
        ServerSessionEvent::VideoDataReceived {
            data, timestamp, ..
        } => {
            if let Some(p) = publishing {
                let result = p.feed.video(timestamp.value, data);
                note_media_error(p, result);
            }
            Ok(Vec::new())
        }
        ServerSessionEvent::AudioDataReceived {
            data, timestamp, ..
        } => {
            if let Some(p) = publishing {
                let result = p.feed.audio(timestamp.value, data);
                note_media_error(p, result);
            }
            Ok(Vec::new())
        }
        ServerSessionEvent::PlayStreamRequested { request_id, .. } => {
            *close = true;
            session
                .reject_request(
                    request_id,
                    "NetStream.Play.Failed",
                    "this hub plays streams over WHEP at /whep/NAME",
                )
                .map_err(session_error)
        }
        _ => Ok(Vec::new()),
    }
}

/// A malformed media message is skipped and logged (the first few), not fatal.
fn note_media_error(p: &mut Publishing, result: Result<(), crate::media::MediaError>) {
    if let Err(e) = result {
        p.media_errors += 1;
        if p.media_errors <= 5 {
            warn!(stream = p.feed.stream().name(), error = %e, "media message skipped");
        }
    }
}
