//! Where a chat client's task hands its events.
//!
//! An app that uses [`super::ChatClient`] alone reads them from [`super::ChatEvents`]
//! (a bounded channel). A stream session hands them straight to its own event queue
//! instead, so that a session's chat outcomes cross one queue, not two in series.

use std::future::Future;

use tokio::sync::mpsc;

use super::ChatEvent;

/// Takes a chat client's events, in order. Reading from the server waits while
/// `deliver` does, so an outlet that waits for room loses nothing.
pub(crate) trait EventOutlet: Send + 'static {
    /// Hands over one event.
    fn deliver(&mut self, event: ChatEvent) -> impl Future<Output = ()> + Send;
}

impl EventOutlet for mpsc::Sender<ChatEvent> {
    async fn deliver(&mut self, event: ChatEvent) {
        // An app that dropped its event stream still gets its sends and commands done.
        let _ = self.send(event).await;
    }
}
