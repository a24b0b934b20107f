//! The thin task that drives a [`RoomMirror`]: the room's channel in, reads of the
//! stream and of the room's position as the mirror asks, messages out in order.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::mirror::{MirrorAction, RoomMirror};
use super::{
    Claim, EngineError, REDIS_TIMEOUT, RedisSequencer, RoomKeys, decode_deletion,
    decode_moderation, decode_publication,
};
use crate::chat::protocol::{ChatMessage, Position};
use crate::chat::server::room::Moderated;

/// Waits between attempts to subscribe again after the subscription was lost.
const RESUBSCRIBE_WAIT: Duration = Duration::from_millis(200);

/// What a follower hands on, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    /// The next message of the room.
    Message(ChatMessage),
    /// Where delivery starts (first), or continuity broke (see
    /// [`MirrorAction::Discontinuity`]): messages continue after this position.
    Discontinuity(Position),
    /// A message was hidden (by any node).
    Deleted(Position),
    /// A moderator's decision (on any node): bans, timeouts, slow mode.
    Moderated(Moderated),
}

impl RedisSequencer {
    /// Follows `room` until `out` is closed: every message published from now on, from
    /// every node, in seq order and once. The subscription comes before the first read,
    /// so nothing published meanwhile is missed; a lost subscription is made again and
    /// what was published meanwhile read from the stream. Fails only when Redis cannot
    /// be reached to start with.
    pub async fn follow(&self, room: &str, out: mpsc::Sender<Followed>) -> Result<(), EngineError> {
        let channel = RoomKeys::new(room).channel();
        let mut stream = self.subscribe(&channel).await?;
        let (mut mirror, first) = RoomMirror::new();
        let mut pending = vec![first];
        loop {
            while let Some(action) = pending.pop() {
                let next = match action {
                    MirrorAction::Deliver(message) => {
                        if out.send(Followed::Message(message)).await.is_err() {
                            return Ok(());
                        }
                        continue;
                    }
                    MirrorAction::Discontinuity(position) => {
                        if out.send(Followed::Discontinuity(position)).await.is_err() {
                            return Ok(());
                        }
                        continue;
                    }
                    MirrorAction::Read(since) => match self.after(room, &since).await {
                        Ok(read) => mirror.on_read(read.map(|(_, messages)| messages)),
                        Err(e) => {
                            debug!(room, "reading the stream failed, trying again: {e}");
                            tokio::time::sleep(RESUBSCRIBE_WAIT).await;
                            vec![MirrorAction::Read(since)]
                        }
                    },
                    MirrorAction::Locate => match self.fence(room, Claim::Nothing).await {
                        Ok(fenced) if mirror.position().is_none() => {
                            // The first position: where delivery starts.
                            let start = Followed::Discontinuity(fenced.top.clone());
                            if out.send(start).await.is_err() {
                                return Ok(());
                            }
                            mirror.on_position(fenced.top)
                        }
                        Ok(fenced) => mirror.on_position(fenced.top),
                        Err(e) => {
                            debug!(
                                room,
                                "reading the room's position failed, trying again: {e}"
                            );
                            tokio::time::sleep(RESUBSCRIBE_WAIT).await;
                            vec![MirrorAction::Locate]
                        }
                    },
                };
                // Actions run in the order the mirror gave them.
                pending.extend(next.into_iter().rev());
            }
            tokio::select! {
                () = out.closed() => return Ok(()),
                message = stream.next() => match message {
                    Some(message) => {
                        let payload = message.get_payload_bytes();
                        if let Some(message) = decode_publication(room, payload) {
                            pending.extend(mirror.on_published(message).into_iter().rev());
                        } else if let Some(deleted) = decode_deletion(payload) {
                            // Not numbered: handed on as it comes.
                            if out.send(Followed::Deleted(deleted)).await.is_err() {
                                return Ok(());
                            }
                        } else if let Some(moderated) = decode_moderation(payload) {
                            if out.send(Followed::Moderated(moderated)).await.is_err() {
                                return Ok(());
                            }
                        } else {
                            warn!(room, "a publication that is no chat message: ignored");
                        }
                    }
                    None => {
                        debug!(room, "the subscription was lost: subscribing again");
                        stream = loop {
                            if out.is_closed() {
                                return Ok(());
                            }
                            match self.subscribe(&channel).await {
                                Ok(stream) => break stream,
                                Err(e) => {
                                    debug!(room, "subscribing again failed: {e}");
                                    tokio::time::sleep(RESUBSCRIBE_WAIT).await;
                                }
                            }
                        };
                        pending.extend(mirror.on_resubscribed().into_iter().rev());
                    }
                },
            }
        }
    }

    async fn subscribe(&self, channel: &str) -> Result<redis::aio::PubSubStream, EngineError> {
        let subscribed = tokio::time::timeout(REDIS_TIMEOUT, async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            Ok::<_, redis::RedisError>(pubsub.into_on_message())
        })
        .await
        .map_err(|_| EngineError::Reply {
            what: "subscribe",
            detail: format!("no answer within {REDIS_TIMEOUT:?}"),
        })?;
        Ok(subscribed?)
    }
}
