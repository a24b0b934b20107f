//! The task that copies a room's stream into the [`Archive`], through a consumer group
//! (`archive`): several nodes may run it for one room, each entry goes to one of them,
//! and an entry is acknowledged only once it is written. A worker that dies before its
//! acknowledgement leaves the entry pending for itself (the same consumer name reads
//! its pending entries first when it starts again); writing it twice changes nothing.
//! After each batch the stream is trimmed to the history size, never past an entry the
//! group has not acknowledged (`trim.lua`): a stopped archiver makes the stream grow
//! (up to [`super::ARCHIVE_SLACK`] histories), not the archive lose messages.

use std::time::Duration;

use redis::{AsyncConnectionConfig, Value};
use tracing::debug;

use super::archive::Archive;
use super::{EngineError, REDIS_TIMEOUT, RedisSequencer, RoomKeys, stream_entry, text};

/// The consumer group of archivers.
const GROUP: &str = "archive";
/// Entries read at a time.
const BATCH: usize = 500;
/// How long a read waits for new entries.
const BLOCK: Duration = Duration::from_millis(500);

impl RedisSequencer {
    /// Archives `room` as consumer `consumer` until the task is dropped or Redis or the
    /// archive fail (the caller restarts it; nothing is lost, see the module).
    pub async fn archive_room(
        &self,
        archive: &Archive,
        room: &str,
        consumer: &str,
    ) -> Result<(), EngineError> {
        let stream = RoomKeys::new(room).stream();
        // A connection of its own: a blocking read would hold up the shared one.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT + BLOCK));
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let created: Result<Value, _> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&stream)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        if let Err(e) = created
            && e.code() != Some("BUSYGROUP")
        {
            return Err(e.into());
        }
        // Its own pending entries first, then new ones.
        let mut from = "0";
        loop {
            let mut read = redis::cmd("XREADGROUP");
            read.arg("GROUP")
                .arg(GROUP)
                .arg(consumer)
                .arg("COUNT")
                .arg(BATCH);
            if from == ">" {
                read.arg("BLOCK").arg(BLOCK.as_millis() as u64);
            }
            let reply: Value = read
                .arg("STREAMS")
                .arg(&stream)
                .arg(from)
                .query_async(&mut conn)
                .await?;
            let entries = stream_entries(&reply);
            if entries.is_empty() {
                from = ">";
                continue;
            }
            let mut ids = Vec::with_capacity(entries.len());
            let mut messages = Vec::with_capacity(entries.len());
            for entry in entries {
                let Value::Array(parts) = entry else { continue };
                let Some(id) = parts.first().and_then(text) else {
                    continue;
                };
                match stream_entry(room, entry) {
                    Some(message) => messages.push(message),
                    // A pending entry trimmed since (its fields are gone), or one that is
                    // no message: acknowledged, nothing to write.
                    None => debug!(room, %id, "a stream entry with no message: acknowledged"),
                }
                ids.push(id);
            }
            archive.write(&messages).await?;
            let _: i64 = redis::cmd("XACK")
                .arg(&stream)
                .arg(GROUP)
                .arg(&ids)
                .query_async(&mut conn)
                .await?;
            // Now that they are written, the stream may let them go (down to the history).
            let _: i64 = self
                .trim
                .key(&stream)
                .arg(GROUP)
                .arg(self.config.history.max(1))
                .invoke_async(&mut conn)
                .await?;
        }
    }
}

/// The entries of an `XREADGROUP` reply for one stream (`[[key, [entry, …]]]`).
fn stream_entries(reply: &Value) -> &[Value] {
    let Value::Array(streams) = reply else {
        return &[];
    };
    let Some(Value::Array(stream)) = streams.first() else {
        return &[];
    };
    match stream.get(1) {
        Some(Value::Array(entries)) => entries,
        _ => &[],
    }
}
