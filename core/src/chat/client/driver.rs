//! The client's task: the I/O around a [`Connection`]. It opens one WebSocket at a
//! time, fetches tokens, writes what the connection transmits, feeds it what arrives and
//! the time, hands its events to the app, and waits out the backoff between links.
//! Every protocol decision is the connection's.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tracing::{debug, warn};

use super::connection::{Connection, End, Incoming, Outgoing, lost};
use super::outlet::EventOutlet;
use super::transport::{self, ChatSocket, ChatUrl};
use super::{ChatConfig, ChatEvent, Request, TokenRequest, TokenSource};
use crate::chat::ChatError;
use crate::net::Backoff;

/// How long a close frame may take to write.
const CLOSE_WRITE: Duration = Duration::from_secs(2);

pub(super) struct Driver<O> {
    url: ChatUrl,
    tokens: TokenSource,
    config: ChatConfig,
    events: O,
    requests: mpsc::Receiver<Request>,
    conn: Connection,
    backoff: Backoff,
    token: Option<String>,
}

/// How one link went: how it ended, and since when it was authenticated (if it was).
struct LinkOutcome {
    end: End,
    authenticated_at: Option<Instant>,
}

impl<O: EventOutlet> Driver<O> {
    pub(super) fn new(
        url: ChatUrl,
        tokens: TokenSource,
        config: ChatConfig,
        events: O,
        requests: mpsc::Receiver<Request>,
    ) -> Self {
        Driver {
            url,
            tokens,
            backoff: Backoff::new(config.backoff),
            conn: Connection::new(config.clone(), Instant::now()),
            config,
            events,
            requests,
            token: None,
        }
    }

    /// Hands the connection's events to the outlet, in order; waits while the outlet
    /// does (so reading from the server waits too).
    async fn emit_events(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            self.events.deliver(event).await;
        }
    }

    async fn fetch_token(&mut self, why: TokenRequest) -> Result<String, ChatError> {
        let token = timeout(self.config.token_timeout, self.tokens.get(why))
            .await
            .map_err(|_| ChatError::Token("the token callback did not answer in time".into()))?
            .map_err(ChatError::Token)?;
        self.token = Some(token.clone());
        Ok(token)
    }

    /// Runs the client until it stops. With `first`, the first connection's outcome goes
    /// there and its failure stops the client (the app retries); without, it is retried
    /// like any other.
    pub(super) async fn run(mut self, first: Option<oneshot::Sender<Result<(), ChatError>>>) {
        let mut first = first;
        let mut why = TokenRequest::Initial;
        let mut expired_in_a_row = 0u32;
        loop {
            let outcome = self.attempt(why, &mut first).await;
            if let Some(since) = outcome.authenticated_at {
                expired_in_a_row = 0;
                self.backoff.connection_ended(since.elapsed());
            }
            let (reason, retry_after) = match outcome.end {
                End::Closed => return self.finish(None).await,
                End::Fatal(error) => {
                    if let Some(first) = first.take() {
                        let _ = first.send(Err(error));
                        return self.finish(None).await;
                    }
                    return self.finish(Some(error)).await;
                }
                End::Reconnect {
                    reason,
                    retry_after,
                    expired,
                } => {
                    why = if expired {
                        expired_in_a_row += 1;
                        TokenRequest::Expired
                    } else {
                        TokenRequest::Initial
                    };
                    (reason, retry_after)
                }
            };
            let replace_token_now = why == TokenRequest::Expired && expired_in_a_row <= 1;
            if let Some(waiting) = first.take() {
                // The first connection is the app's to retry: it learns why it failed.
                // Only an expired token is replaced first.
                if !replace_token_now {
                    let _ = waiting.send(Err(ChatError::Connect {
                        addr: self.url.addr(),
                        reason,
                    }));
                    return self.finish(None).await;
                }
                first = Some(waiting);
            }
            // A token that expired is replaced at once; anything else waits.
            let delay = if replace_token_now {
                Duration::ZERO
            } else {
                self.backoff.next_delay(rand::random::<f64>(), retry_after)
            };
            debug!(?delay, %reason, "chat connection lost");
            self.events
                .deliver(ChatEvent::Disconnected {
                    reason,
                    retry_in: delay,
                })
                .await;
            if !self.wait_offline(Instant::now() + delay).await {
                return self.finish(None).await;
            }
        }
    }

    /// Opens a socket and runs one link on it, from `connect` to its end.
    async fn attempt(
        &mut self,
        why: TokenRequest,
        first: &mut Option<oneshot::Sender<Result<(), ChatError>>>,
    ) -> LinkOutcome {
        let not_up = |end| LinkOutcome {
            end,
            authenticated_at: None,
        };
        let token = match (&self.token, why) {
            (Some(token), TokenRequest::Initial) => token.clone(),
            _ => match self.fetch_token(why).await {
                Ok(token) => token,
                Err(error) => return not_up(lost(error.to_string())),
            },
        };
        let deadline = Instant::now() + self.config.connect_timeout;
        let socket = match transport::open(
            &self.url,
            &self.config.tls,
            self.config.max_frame_bytes,
            self.config.connect_timeout,
        )
        .await
        {
            Ok(socket) => socket,
            Err(e) if e.retry => {
                return not_up(End::Reconnect {
                    reason: e.error.to_string(),
                    retry_after: e.retry_after,
                    expired: false,
                });
            }
            Err(e) => return not_up(End::Fatal(e.error)),
        };
        self.conn.open_link(Instant::now(), token, deadline);
        self.link(socket, first).await
    }

    /// Pumps one link until the connection says it ended.
    async fn link(
        &mut self,
        socket: ChatSocket,
        first: &mut Option<oneshot::Sender<Result<(), ChatError>>>,
    ) -> LinkOutcome {
        let (mut sink, mut stream) = socket.split();
        let mut authenticated_at = None;
        let mut refresh: Option<oneshot::Receiver<Result<String, String>>> = None;
        let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        loop {
            while let Some(out) = self.conn.poll_transmit() {
                let (message, limit) = match out {
                    Outgoing::Text(text) => (Message::text(text), self.config.command_timeout),
                    Outgoing::Ping => (
                        Message::Ping(Default::default()),
                        self.config.command_timeout,
                    ),
                    Outgoing::Close => {
                        let frame = CloseFrame {
                            code: CloseCode::Normal,
                            reason: "client closing".into(),
                        };
                        (Message::Close(Some(frame)), CLOSE_WRITE)
                    }
                };
                match timeout(limit, sink.send(message)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => self.conn.link_lost(format!("writing failed: {e}")),
                    Err(_) => self.conn.link_lost("writing timed out".into()),
                }
            }
            if authenticated_at.is_none() && self.conn.is_ready() {
                authenticated_at = Some(Instant::now());
                if let Some(first) = first.take() {
                    let _ = first.send(Ok(()));
                }
            }
            self.emit_events().await;
            if let Some(end) = self.conn.poll_end() {
                return LinkOutcome {
                    end,
                    authenticated_at,
                };
            }
            if self.conn.poll_token_wanted() {
                let (tx, rx) = oneshot::channel();
                let source = self.tokens.clone();
                let limit = self.config.token_timeout;
                tokio::spawn(async move {
                    let token = timeout(limit, source.get(TokenRequest::Expiring))
                        .await
                        .unwrap_or_else(
                            |_| Err("the token callback did not answer in time".into()),
                        );
                    let _ = tx.send(token);
                });
                refresh = Some(rx);
            }
            let wake = self.conn.poll_timeout().unwrap_or(far);
            let ready = self.conn.is_ready();
            tokio::select! {
                frame = stream.next() => {
                    let now = Instant::now();
                    match frame {
                        Some(Ok(Message::Text(text))) => self.conn.handle_frame(now, Incoming::Text(text.as_str())),
                        Some(Ok(Message::Close(frame))) => {
                            let close = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                            self.conn.handle_frame(now, Incoming::Close(close));
                        }
                        Some(Ok(_)) => self.conn.handle_frame(now, Incoming::Other),
                        Some(Err(e)) => self.conn.link_lost(format!("connection lost: {e}")),
                        None => self.conn.link_lost("the server closed the connection".into()),
                    }
                }
                // While the link authenticates, requests wait (a command then goes out
                // on it instead of failing as offline).
                request = self.requests.recv(), if ready => match request {
                    None => return LinkOutcome { end: End::Closed, authenticated_at },
                    Some(request) => self.conn.request(Instant::now(), request),
                },
                token = async { match refresh.as_mut() { Some(rx) => rx.await, None => std::future::pending().await } }, if refresh.is_some() => {
                    refresh = None;
                    match token {
                        Ok(Ok(token)) => {
                            self.token = Some(token.clone());
                            self.conn.token_refreshed(Instant::now(), Ok(token));
                        }
                        Ok(Err(e)) => self.conn.token_refreshed(Instant::now(), Err(e)),
                        Err(_) => warn!("the token task ended without a token"),
                    }
                }
                _ = sleep_until(wake) => self.conn.handle_timeout(Instant::now()),
            }
        }
    }

    /// Serves requests while disconnected until `until`; false when the client is done.
    async fn wait_offline(&mut self, until: Instant) -> bool {
        // A close asked while the link was up may be complete already.
        self.conn.handle_timeout(Instant::now());
        loop {
            self.emit_events().await;
            if let Some(End::Closed) = self.conn.poll_end() {
                return false;
            }
            let wake = self.conn.poll_timeout().map_or(until, |t| t.min(until));
            tokio::select! {
                _ = sleep_until(wake) => {
                    let now = Instant::now();
                    self.conn.handle_timeout(now);
                    if let Some(End::Closed) = self.conn.poll_end() {
                        self.emit_events().await;
                        return false;
                    }
                    if now >= until {
                        self.emit_events().await;
                        return true;
                    }
                }
                request = self.requests.recv() => match request {
                    None => return false,
                    Some(request) => self.conn.request(Instant::now(), request),
                }
            }
        }
    }

    async fn finish(mut self, error: Option<ChatError>) {
        self.conn.finish(error);
        self.emit_events().await;
        // Anything asked after this point fails with Closed as the channel drops.
    }
}
