//! One RTMP publisher connection: drives an [`IngestSession`] over a byte stream (TCP,
//! or TLS for RTMPS), decides who may publish and feeds the media to the stream.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tracing::{info, warn};

use super::feed::Feed;
use super::session::{IngestEvent, IngestSession};
use crate::hub::{HubError, HubShared};

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

/// Serves one connection until it closes. The handshake, `connect` and `publish` must
/// be done within the hub's `publish_deadline` (against connections that open and say
/// nothing); after that, each read waits at most `idle_timeout`.
pub(crate) async fn run<S>(mut socket: S, hub: Arc<HubShared>) -> Result<(), HubError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let limits = hub.limits.clone();
    let mut session = IngestSession::new(limits.rtmp_reader());
    let mut publishing: Option<Publishing> = None;
    let deadline = Instant::now() + limits.publish_deadline;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        handle_events(&mut session, &hub, &mut publishing);
        if let Some(bytes) = session.take_output() {
            write(&mut socket, &bytes).await?;
        }
        if session.is_closing() {
            // The refusal has left; hang up (as nginx-rtmp does).
            let _ = tokio::time::timeout(Duration::from_secs(1), socket.shutdown()).await;
            return Ok(());
        }
        let read_until = if session.is_publishing() {
            Instant::now() + limits.idle_timeout
        } else {
            deadline
        };
        let n = match tokio::time::timeout_at(read_until, socket.read(&mut buf)).await {
            Err(_) if session.is_publishing() => {
                return Err(HubError::Rtmp(format!(
                    "publisher silent for {:?}",
                    limits.idle_timeout
                )));
            }
            Err(_) => {
                return Err(HubError::Rtmp(format!(
                    "no publish within {:?} of connecting",
                    limits.publish_deadline
                )));
            }
            Ok(Err(e)) => return Err(HubError::Rtmp(format!("reading: {e}"))),
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(n)) => n,
        };
        if let Err(e) = session.handle_input(&buf[..n]) {
            let _ = tokio::time::timeout(Duration::from_secs(1), socket.shutdown()).await;
            return Err(HubError::Rtmp(format!("bad RTMP from the publisher: {e}")));
        }
    }
}

async fn write<S: AsyncWrite + Unpin>(socket: &mut S, bytes: &[u8]) -> Result<(), HubError> {
    tokio::time::timeout(WRITE_TIMEOUT, socket.write_all(bytes))
        .await
        .map_err(|_| HubError::Rtmp("write timed out".into()))?
        .map_err(|e| HubError::Rtmp(format!("writing: {e}")))
}

fn handle_events(
    session: &mut IngestSession,
    hub: &Arc<HubShared>,
    publishing: &mut Option<Publishing>,
) {
    while let Some(event) = session.poll_event() {
        match event {
            IngestEvent::PublishRequested { key } => {
                let name = match hub.keys.resolve(key.expose()) {
                    Ok(name) => name,
                    Err(refusal) => {
                        warn!(%refusal, "publish refused");
                        session.refuse("NetStream.Publish.BadName", &refusal.to_string());
                        continue;
                    }
                };
                let Some(stream) = hub.registry.claim(&name) else {
                    warn!(stream = %name, "publish refused: already live");
                    session.refuse(
                        "NetStream.Publish.BadName",
                        &format!("stream {name} is already publishing"),
                    );
                    continue;
                };
                info!(stream = %name, "publisher live");
                *publishing = Some(Publishing {
                    feed: Feed::new(stream, hub.opus_bitrate),
                    hub: hub.clone(),
                    media_errors: 0,
                });
                session.accept_publish();
            }
            IngestEvent::PublishFinished => *publishing = None,
            IngestEvent::Video { timestamp, body } => {
                if let Some(p) = publishing {
                    let result = p.feed.video(timestamp, body);
                    note_media_error(p, result);
                }
            }
            IngestEvent::Audio { timestamp, body } => {
                if let Some(p) = publishing {
                    let result = p.feed.audio(timestamp, body);
                    note_media_error(p, result);
                }
            }
            IngestEvent::PlayRequested => session.refuse(
                "NetStream.Play.Failed",
                "this hub plays streams over WHEP at /whep/NAME",
            ),
            IngestEvent::Connected { .. } => {}
        }
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
