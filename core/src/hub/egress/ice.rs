//! PATCH on a WHEP session (RFC 9725 §4.3): candidates the viewer trickles after its
//! offer, and ICE restarts, for a viewer whose network changed (Wi-Fi to cellular, a new
//! address). A fragment with the credentials in force adds its candidates; one with new
//! credentials restarts ICE: the session's offer, rewritten with them, is applied again
//! (the stack then restarts its agent and gathers anew), and the hub's new credentials
//! and candidates are the reply.

use std::sync::Arc;

use tokio::sync::Mutex;
use tracing::info;
use webrtc::peer_connection::{PeerConnection, RTCIceCandidateInit, RTCSessionDescription};

use crate::hub::HubError;
use crate::whep::peer::{GATHER_TIMEOUT, Gathering};
use crate::whep::sdpfrag::IceFragment;

/// A running viewer's ICE, for its PATCH requests.
#[derive(Clone)]
pub struct IceHandle {
    pc: Arc<dyn PeerConnection>,
    /// Gathering completions so far.
    gathered: Gathering,
    /// One PATCH at a time per session.
    busy: Arc<Mutex<()>>,
}

/// What a PATCH did.
#[derive(Debug, PartialEq, Eq)]
pub enum Patched {
    /// Candidates added to the generation in force (`204 No Content`).
    Candidates(usize),
    /// ICE restarted: the hub's new fragment (`200 OK`).
    Restarted(String),
}

impl IceHandle {
    pub(super) fn new(pc: Arc<dyn PeerConnection>, gathered: Gathering) -> Self {
        IceHandle {
            pc,
            gathered,
            busy: Arc::new(Mutex::new(())),
        }
    }

    /// Applies a viewer's fragment: its candidates, or an ICE restart.
    pub async fn patch(&self, fragment: IceFragment) -> Result<Patched, HubError> {
        let _busy = self.busy.lock().await;
        let remote = self
            .pc
            .remote_description()
            .await
            .ok_or_else(|| HubError::WebRtc("the session has no remote description".into()))?;
        let current = IceFragment::from_description(&remote.sdp);
        if fragment.ufrag.is_none() || fragment.ufrag == current.ufrag {
            let mid = fragment.mid.clone().or(current.mid);
            for candidate in &fragment.candidates {
                self.pc
                    .add_ice_candidate(RTCIceCandidateInit {
                        candidate: format!("candidate:{candidate}"),
                        sdp_mid: mid.clone(),
                        sdp_mline_index: Some(0),
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| HubError::BadOffer(format!("candidate refused: {e}")))?;
            }
            return Ok(Patched::Candidates(fragment.candidates.len()));
        }
        let offer = RTCSessionDescription::offer(fragment.apply_to(&remote.sdp))
            .map_err(|e| HubError::BadOffer(format!("restart offer: {e}")))?;
        let mut gathered = self.gathered.clone();
        let before = gathered.mark();
        self.pc
            .set_remote_description(offer)
            .await
            .map_err(|e| HubError::BadOffer(format!("restart offer refused: {e}")))?;
        let answer = self
            .pc
            .create_answer(None)
            .await
            .map_err(|e| HubError::WebRtc(format!("restart answer: {e}")))?;
        self.pc
            .set_local_description(answer)
            .await
            .map_err(|e| HubError::WebRtc(format!("restart answer: {e}")))?;
        gathered.wait_past(before, GATHER_TIMEOUT).await;
        let local = self
            .pc
            .local_description()
            .await
            .ok_or_else(|| HubError::WebRtc("no local description after a restart".into()))?;
        let mut ours = IceFragment::from_description(&local.sdp);
        ours.end_of_candidates = true;
        info!(
            candidates = ours.candidates.len(),
            theirs = fragment.candidates.len(),
            "WHEP viewer restarted ICE"
        );
        Ok(Patched::Restarted(ours.to_body()))
    }
}

impl std::fmt::Debug for IceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceHandle")
            .field("gathered", &self.gathered.count())
            .finish_non_exhaustive()
    }
}
