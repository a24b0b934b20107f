//! For the fuzz targets (`fuzz/`), not part of the API: a server-side connection driven
//! frame by frame without a socket.

use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc;

use super::ChatServer;
use super::connection::Conn;

/// One client's connection to a [`ChatServer`], with no socket: text frames in, the
/// frames the server would write out.
pub struct DetachedConnection {
    conn: Conn,
    frames: mpsc::Receiver<Utf8Bytes>,
}

impl DetachedConnection {
    /// A new connection, not yet authenticated.
    pub fn new(server: &ChatServer) -> Self {
        let (conn, frames) = Conn::detached(server.shared.clone());
        DetachedConnection { conn, frames }
    }

    /// Handles one text frame from the client as the connection task does; true when
    /// the server ends the connection because of it.
    pub async fn text(&mut self, text: &str) -> bool {
        self.conn.text_frame(text).await
    }

    /// The frames queued for the client since the last call.
    pub fn take_frames(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(frame) = self.frames.try_recv() {
            out.push(frame.as_str().to_string());
        }
        out
    }
}

impl Drop for DetachedConnection {
    /// Leaves the rooms, as the connection task does when it ends.
    fn drop(&mut self) {
        self.conn.leave_all();
    }
}

impl std::fmt::Debug for DetachedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetachedConnection").finish_non_exhaustive()
    }
}
