//! The peer-connection pieces the player and the hub's viewers share: the builder and
//! the event handler.
//!
//! webrtc-rs reports a connection's life through one `PeerConnectionEventHandler`.
//! Both ends want the same two things from it: when ICE gathering completed (the
//! candidates are in the local description, to send in an offer, an answer or an ICE
//! restart's PATCH) and every peer-connection state, in order. [`peer_handler`] makes the
//! handler and the [`PeerSignals`] its owner reads; what one end adds (the player's
//! connect steps, its early checks, its incoming tracks) comes through a
//! [`PeerObserver`].

use std::sync::Arc;
use std::time::Duration;

use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngine;
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceConnectionState, RTCIceGatheringState, RTCPeerConnectionState,
};
use webrtc::runtime::Runtime;

/// What sets one end's connection apart from the other's.
pub(crate) struct PeerParts {
    /// The codecs to offer or answer with.
    pub(crate) engine: MediaEngine,
    /// The interceptors (NACK, reports, TWCC).
    pub(crate) registry: Registry,
    /// ICE timings and the like.
    pub(crate) settings: SettingEngine,
    /// Where the UDP sockets are bound.
    pub(crate) udp_addrs: Vec<String>,
    /// A runtime of our own (the player's, which sees checks before the stack does);
    /// the stack's tokio runtime when `None`.
    pub(crate) runtime: Option<Arc<dyn Runtime>>,
}

/// A peer connection with no transceivers yet, reporting to `handler`.
pub(crate) async fn build_peer(
    parts: PeerParts,
    handler: Arc<dyn PeerConnectionEventHandler>,
) -> Result<Arc<dyn PeerConnection>, webrtc::error::Error> {
    let mut builder = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(parts.settings)
        .with_media_engine(parts.engine)
        .with_interceptor_registry(parts.registry)
        .with_handler(handler)
        .with_udp_addrs(parts.udp_addrs);
    if let Some(runtime) = parts.runtime {
        builder = builder.with_runtime(runtime);
    }
    Ok(Arc::new(builder.build().await?))
}

/// Longest wait for ICE gathering to complete: host candidates gather at once, and
/// nothing slower is worth holding an offer, an answer or a restart for.
pub(crate) const GATHER_TIMEOUT: Duration = Duration::from_secs(2);

/// What one end of a connection does on the events beyond gathering and states; every
/// method does nothing by default.
pub(crate) trait PeerObserver: Send + Sync + 'static {
    /// An ICE connection state, as it happens.
    fn ice_state(&self, _state: RTCIceConnectionState) {}
    /// A peer-connection state, before it reaches [`PeerStates`].
    fn connection_state(&self, _state: RTCPeerConnectionState) {}
    /// A track the remote side sends.
    fn track(&self, _track: Arc<dyn TrackRemote>) {}
}

/// An end that needs nothing but gathering and states (the hub's send-only viewers).
impl PeerObserver for () {}

/// The handler given to `PeerConnectionBuilder::with_handler`.
pub(crate) struct PeerHandler<O> {
    gathered: watch::Sender<u64>,
    states: mpsc::UnboundedSender<RTCPeerConnectionState>,
    observer: O,
}

/// What the owner of a connection reads from its handler.
#[derive(Debug)]
pub(crate) struct PeerSignals {
    /// ICE gathering completions.
    pub(crate) gathered: Gathering,
    /// Peer-connection states, in order.
    pub(crate) states: PeerStates,
}

/// A handler for a new connection, and the signals its owner reads.
pub(crate) fn peer_handler<O: PeerObserver>(observer: O) -> (Arc<PeerHandler<O>>, PeerSignals) {
    let (gathered_tx, gathered) = watch::channel(0u64);
    // Unbounded, and still small: a connection goes through a handful of states.
    let (states_tx, states) = mpsc::unbounded_channel();
    let handler = Arc::new(PeerHandler {
        gathered: gathered_tx,
        states: states_tx,
        observer,
    });
    let signals = PeerSignals {
        gathered: Gathering {
            completions: gathered,
        },
        states: PeerStates {
            rx: states,
            latest: RTCPeerConnectionState::New,
        },
    };
    (handler, signals)
}

#[async_trait::async_trait]
impl<O: PeerObserver> PeerConnectionEventHandler for PeerHandler<O> {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_modify(|n| *n += 1);
        }
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        self.observer.ice_state(state);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.observer.connection_state(state);
        // Nobody reading any more (the owner is gone) is fine.
        let _ = self.states.send(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        self.observer.track(track);
    }
}

/// ICE gathering completions of a connection (an ICE restart gathers again). Cheap to
/// clone: every clone sees every completion.
#[derive(Debug, Clone)]
pub(crate) struct Gathering {
    completions: watch::Receiver<u64>,
}

impl Gathering {
    /// The completions so far, to wait past with [`Gathering::wait_past`].
    pub(crate) fn mark(&mut self) -> u64 {
        *self.completions.borrow_and_update()
    }

    /// Waits up to `within` for a completion after `mark`; true when one came.
    pub(crate) async fn wait_past(&mut self, mark: u64, within: Duration) -> bool {
        tokio::time::timeout(within, self.completions.wait_for(|n| *n > mark))
            .await
            .is_ok_and(|seen| seen.is_ok())
    }

    /// Completions so far, without marking them seen.
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn count(&self) -> u64 {
        *self.completions.borrow()
    }
}

/// A connection's states, in the order they happened, and the latest one read.
#[derive(Debug)]
pub(crate) struct PeerStates {
    rx: mpsc::UnboundedReceiver<RTCPeerConnectionState>,
    latest: RTCPeerConnectionState,
}

impl PeerStates {
    /// The next state; `None` once the connection is gone and every state was read.
    /// Cancel-safe.
    pub(crate) async fn next(&mut self) -> Option<RTCPeerConnectionState> {
        let state = self.rx.recv().await?;
        self.latest = state;
        Some(state)
    }

    /// Waits until the connection is up (true), or failed, closed or gone (false).
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) async fn connected(&mut self) -> bool {
        loop {
            match self.latest {
                RTCPeerConnectionState::Connected => return true,
                RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => return false,
                _ => {}
            }
            if self.next().await.is_none() {
                return false;
            }
        }
    }
}

/// Whether a state ends the connection for good.
pub(crate) fn is_over(state: RTCPeerConnectionState) -> bool {
    matches!(
        state,
        RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn states_come_in_order_and_connected_waits_for_the_verdict() {
        let (handler, mut signals) = peer_handler(());
        for state in [
            RTCPeerConnectionState::Connecting,
            RTCPeerConnectionState::Connected,
            RTCPeerConnectionState::Disconnected,
        ] {
            handler.on_connection_state_change(state).await;
        }
        assert!(signals.states.connected().await);
        assert_eq!(
            signals.states.next().await,
            Some(RTCPeerConnectionState::Disconnected)
        );
        handler
            .on_connection_state_change(RTCPeerConnectionState::Failed)
            .await;
        drop(handler);
        assert!(!signals.states.connected().await);
        assert!(is_over(signals.states.latest));
        assert_eq!(signals.states.next().await, None);
    }

    #[tokio::test]
    async fn a_wait_past_a_mark_sees_only_later_completions() {
        let (handler, signals) = peer_handler(());
        let mut gathering = signals.gathered.clone();
        handler
            .on_ice_gathering_state_change(RTCIceGatheringState::Complete)
            .await;
        let mark = gathering.mark();
        assert_eq!(mark, 1);
        assert!(!gathering.wait_past(mark, Duration::from_millis(10)).await);
        handler
            .on_ice_gathering_state_change(RTCIceGatheringState::Gathering)
            .await;
        handler
            .on_ice_gathering_state_change(RTCIceGatheringState::Complete)
            .await;
        assert!(gathering.wait_past(mark, Duration::from_secs(1)).await);
        assert_eq!(signals.gathered.count(), 2);
    }
}
