//! The chat archive in PostgreSQL (issue 15): every message of every room, keyed
//! `(room, epoch, seq)`, so that history outlives Redis's stream (trimmed to the
//! history size) and Redis itself.
//!
//! Written in batches by [`super::RedisSequencer::archive_room`] from a consumer group
//! on the room's stream; a batch written twice (a worker that died before its
//! acknowledgement) changes nothing, by the key.

use tokio_postgres::{Client, NoTls};
use tracing::debug;

use super::EngineError;
use crate::chat::protocol::{ChatMessage, UserInfo};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS chat_messages (
    room          text    NOT NULL,
    epoch         text    NOT NULL,
    seq           bigint  NOT NULL,
    ts            bigint  NOT NULL,
    author        text    NOT NULL,
    text          text    NOT NULL,
    client_msg_id text,
    deleted       boolean NOT NULL DEFAULT false,
    PRIMARY KEY (room, epoch, seq)
);
CREATE INDEX IF NOT EXISTS chat_messages_by_time ON chat_messages (room, ts, epoch, seq);
";

/// A connection to the archive.
pub struct Archive {
    client: Client,
    connection: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection string may hold a password: never shown.
        f.debug_struct("Archive").finish_non_exhaustive()
    }
}

/// Where a page of history ends: the oldest message of the page before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor {
    /// Its time.
    pub ts: u64,
    /// Its epoch.
    pub epoch: String,
    /// Its number.
    pub seq: u64,
}

impl From<&ChatMessage> for PageCursor {
    fn from(m: &ChatMessage) -> Self {
        PageCursor {
            ts: m.ts,
            epoch: m.epoch.clone(),
            seq: m.seq,
        }
    }
}

impl Archive {
    /// Connects (`postgres://user@host:port/db`; no TLS: the archive is meant to be on
    /// the node's own network) and creates the table if it is not there.
    pub async fn connect(url: &str) -> Result<Self, EngineError> {
        let (client, connection) =
            tokio::time::timeout(super::REDIS_TIMEOUT, tokio_postgres::connect(url, NoTls))
                .await
                .map_err(|_| EngineError::Reply {
                    what: "archive connect",
                    detail: format!("no answer within {:?}", super::REDIS_TIMEOUT),
                })??;
        let connection = tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!("archive connection ended: {e}");
            }
        });
        client.batch_execute(SCHEMA).await?;
        Ok(Archive { client, connection })
    }

    /// Writes `messages` (any rooms); those already there are left as they are.
    pub async fn write(&self, messages: &[ChatMessage]) -> Result<u64, EngineError> {
        if messages.is_empty() {
            return Ok(0);
        }
        let mut columns = Columns::default();
        for m in messages {
            let author = serde_json::to_string(&m.user).map_err(|e| EngineError::Reply {
                what: "archive write",
                detail: format!("the author does not serialize: {e}"),
            })?;
            columns.room.push(m.room.clone());
            columns.epoch.push(m.epoch.clone());
            columns.seq.push(i64::try_from(m.seq).unwrap_or(i64::MAX));
            columns.ts.push(i64::try_from(m.ts).unwrap_or(i64::MAX));
            columns.author.push(author);
            columns.text.push(m.text.clone());
            columns.client_msg_id.push(m.client_msg_id.clone());
            columns.deleted.push(m.deleted);
        }
        let written = self
            .client
            .execute(
                "INSERT INTO chat_messages
                     (room, epoch, seq, ts, author, text, client_msg_id, deleted)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[],
                                      $5::text[], $6::text[], $7::text[], $8::bool[])
                 ON CONFLICT (room, epoch, seq) DO NOTHING",
                &[
                    &columns.room,
                    &columns.epoch,
                    &columns.seq,
                    &columns.ts,
                    &columns.author,
                    &columns.text,
                    &columns.client_msg_id,
                    &columns.deleted,
                ],
            )
            .await?;
        Ok(written)
    }

    /// Records a deletion: the text is dropped, the number stays.
    pub async fn mark_deleted(
        &self,
        room: &str,
        epoch: &str,
        seq: u64,
    ) -> Result<bool, EngineError> {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        let n = self
            .client
            .execute(
                "UPDATE chat_messages SET deleted = true, text = ''
                 WHERE room = $1 AND epoch = $2 AND seq = $3",
                &[&room, &epoch, &seq],
            )
            .await?;
        Ok(n > 0)
    }

    /// Up to `limit` messages of `room` before `before` (or the newest), oldest first.
    pub async fn page(
        &self,
        room: &str,
        before: Option<&PageCursor>,
        limit: u32,
    ) -> Result<Vec<ChatMessage>, EngineError> {
        let limit = i64::from(limit);
        let rows = match before {
            Some(c) => {
                let (ts, seq) = (
                    i64::try_from(c.ts).unwrap_or(i64::MAX),
                    i64::try_from(c.seq).unwrap_or(i64::MAX),
                );
                self.client
                    .query(
                        "SELECT epoch, seq, ts, author, text, client_msg_id, deleted
                         FROM chat_messages
                         WHERE room = $1 AND (ts, epoch, seq) < ($2, $3, $4)
                         ORDER BY ts DESC, epoch DESC, seq DESC LIMIT $5",
                        &[&room, &ts, &c.epoch, &seq, &limit],
                    )
                    .await?
            }
            None => {
                self.client
                    .query(
                        "SELECT epoch, seq, ts, author, text, client_msg_id, deleted
                         FROM chat_messages WHERE room = $1
                         ORDER BY ts DESC, epoch DESC, seq DESC LIMIT $2",
                        &[&room, &limit],
                    )
                    .await?
            }
        };
        let mut messages = rows
            .iter()
            .map(|row| archived_message(room, row))
            .collect::<Result<Vec<_>, EngineError>>()?;
        messages.reverse();
        Ok(messages)
    }

    /// Up to `limit` messages of `room`'s `epoch` numbered below `before_seq`, oldest
    /// first.
    pub async fn page_in_epoch(
        &self,
        room: &str,
        epoch: &str,
        before_seq: u64,
        limit: u32,
    ) -> Result<Vec<ChatMessage>, EngineError> {
        let before = i64::try_from(before_seq).unwrap_or(i64::MAX);
        let rows = self
            .client
            .query(
                "SELECT epoch, seq, ts, author, text, client_msg_id, deleted
                 FROM chat_messages WHERE room = $1 AND epoch = $2 AND seq < $3
                 ORDER BY seq DESC LIMIT $4",
                &[&room, &epoch, &before, &i64::from(limit)],
            )
            .await?;
        let mut messages = rows
            .iter()
            .map(|row| archived_message(room, row))
            .collect::<Result<Vec<_>, EngineError>>()?;
        messages.reverse();
        Ok(messages)
    }

    /// Messages archived for `room`.
    pub async fn count(&self, room: &str) -> Result<u64, EngineError> {
        let row = self
            .client
            .query_one(
                "SELECT count(*) FROM chat_messages WHERE room = $1",
                &[&room],
            )
            .await?;
        Ok(u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0))
    }
}

impl Drop for Archive {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// A row of the archive (epoch, seq, ts, author, text, client_msg_id, deleted).
fn archived_message(room: &str, row: &tokio_postgres::Row) -> Result<ChatMessage, EngineError> {
    let author: String = row.try_get(3)?;
    let user: UserInfo = serde_json::from_str(&author).map_err(|e| EngineError::Reply {
        what: "archive page",
        detail: format!("a stored author does not parse: {e}"),
    })?;
    let epoch: String = row.try_get(0)?;
    let seq = u64::try_from(row.try_get::<_, i64>(1)?).unwrap_or(0);
    Ok(ChatMessage {
        room: room.to_string(),
        id: format!("{epoch}-{seq}"),
        epoch,
        seq,
        ts: u64::try_from(row.try_get::<_, i64>(2)?).unwrap_or(0),
        user,
        text: row.try_get(4)?,
        client_msg_id: row.try_get(5)?,
        deleted: row.try_get(6)?,
    })
}

/// One batch, column by column (for `UNNEST`).
#[derive(Default)]
struct Columns {
    room: Vec<String>,
    epoch: Vec<String>,
    seq: Vec<i64>,
    ts: Vec<i64>,
    author: Vec<String>,
    text: Vec<String>,
    client_msg_id: Vec<Option<String>>,
    deleted: Vec<bool>,
}
