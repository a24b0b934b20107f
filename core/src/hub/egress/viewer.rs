//! One WHEP viewer: a send-only peer connection fed from the stream's fan-out.
//!
//! The offer is answered with every ICE candidate gathered; later candidates and ICE
//! restarts come by PATCH ([`super::ice`]). Once the
//! connection is up, the viewer gets the cached group of pictures at once (times
//! squeezed up to the newest frame, see [`super::rtp::burst_times`]) and then the live
//! feed. A viewer that falls behind the fan-out skips to the next keyframe.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS};
use rtc::rtcp::goodbye::Goodbye;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpRtxParameters,
    RtpCodecKind,
};
use tokio::sync::{broadcast, watch};
use tracing::{debug, info};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::peer_connection::{PeerConnection, RTCSessionDescription, SettingEngineBuilder};
use webrtc::rtp_transceiver::RtpSender;

use super::ice::IceHandle;
use super::rtp::{TrackNumbering, burst_times};
use crate::hub::HubError;
use crate::hub::stream::{LiveStream, MediaUnit, Subscription};
use crate::whep::peer::{
    GATHER_TIMEOUT, Gathering, PeerParts, PeerSignals, PeerStates, build_peer, is_over,
    peer_handler,
};

/// Pace of the cached group of pictures sent to a new viewer (32 Mbit/s: a 2 s group of
/// a 2 Mbit/s stream takes 125 ms).
const BURST_BYTES_PER_SECOND: f64 = 4_000_000.0;
/// Longest wait for the viewer to connect after the answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// What a viewer's task reports when it ends.
#[derive(Debug, Clone, Default)]
pub struct ViewerReport {
    /// Video frames sent.
    pub video_frames: u64,
    /// Audio packets sent.
    pub audio_packets: u64,
    /// Frames skipped because the viewer fell behind.
    pub skipped: u64,
}

/// A negotiated viewer, ready to run.
pub struct Viewer {
    pc: Arc<dyn PeerConnection>,
    gathered: Gathering,
    states: PeerStates,
    video: Option<(Arc<TrackLocalStaticRTP>, TrackNumbering)>,
    audio: Option<(Arc<TrackLocalStaticRTP>, TrackNumbering)>,
    /// The SDP answer.
    pub answer: String,
}

impl Viewer {
    /// What a PATCH needs to add candidates or restart ICE while the viewer runs.
    pub fn ice(&self) -> IceHandle {
        IceHandle::new(self.pc.clone(), self.gathered.clone())
    }
}

fn track(kind: RtpCodecKind, codec: RTCRtpCodec, ssrc: u32, stream: &str) -> TrackLocalStaticRTP {
    let id = match kind {
        RtpCodecKind::Audio => "audio",
        _ => "video",
    };
    TrackLocalStaticRTP::new(MediaStreamTrack::new(
        format!("streamhub-{stream}"),
        id.to_string(),
        id.to_string(),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                // Video is repaired over RTX (RFC 4588) when the viewer offers it (the
                // stack drops this otherwise and resends on the media SSRC): libwebrtc
                // counts a plain resend as a duplicate of the media stream, and RTX keeps
                // the media stream's own loss and jitter figures true.
                rtx: (kind == RtpCodecKind::Video).then(|| RTCRtpRtxParameters {
                    ssrc: rand::random(),
                }),
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    ))
}

fn webrtc_error(what: &str) -> impl Fn(webrtc::error::Error) -> HubError + '_ {
    move |e| HubError::WebRtc(format!("{what}: {e}"))
}

/// The payload type the answer gave a codec on this sender, preferring H.264 with
/// packetization mode 1 and the stream's own profile.
async fn negotiated_payload_type(
    sender: &Arc<dyn RtpSender>,
    mime: &str,
    profile_level_id: Option<&str>,
) -> Option<u8> {
    let params = sender.get_parameters().await.ok()?;
    let codecs: Vec<_> = params
        .rtp_parameters
        .codecs
        .iter()
        .filter(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
        .filter(|c| {
            mime != MIME_TYPE_H264 || c.rtp_codec.sdp_fmtp_line.contains("packetization-mode=1")
        })
        .collect();
    let same_profile = profile_level_id.and_then(|id| {
        let profile = id.get(..2)?;
        codecs.iter().find(|c| {
            c.rtp_codec
                .sdp_fmtp_line
                .to_ascii_lowercase()
                .contains(&format!("profile-level-id={profile}"))
        })
    });
    same_profile.or(codecs.first()).map(|c| c.payload_type)
}

fn offers(sdp: &str, kind: &str) -> bool {
    sdp.lines()
        .any(|line| line.starts_with(&format!("m={kind} ")))
}

impl Viewer {
    /// Answers a WHEP offer for `stream`, binding the viewer's UDP socket on `ip`.
    pub async fn answer(
        stream: &LiveStream,
        offer: String,
        ip: IpAddr,
    ) -> Result<Viewer, HubError> {
        let wants_video = offers(&offer, "video");
        let wants_audio = offers(&offer, "audio");
        if !wants_video && !wants_audio {
            return Err(HubError::BadOffer("the offer has no audio or video".into()));
        }
        let offer = RTCSessionDescription::offer(offer)
            .map_err(|e| HubError::BadOffer(format!("not an SDP offer: {e}")))?;
        let mut engine =
            crate::whep::media_engine().map_err(|e| HubError::WebRtc(e.to_string()))?;
        let registry = register_default_interceptors(Registry::new(), &mut engine)
            .map_err(webrtc_error("interceptors"))?;
        let (
            handler,
            PeerSignals {
                mut gathered,
                states,
            },
        ) = peer_handler(());
        // A viewer that vanishes without DELETE (a closed tab, a killed app) stops
        // answering ICE checks: after 4 s it is disconnected, after 10 s it has failed
        // and is cleaned up (the stack's defaults are 5 s and 25 s).
        //
        // Connectivity checks every 20 ms (the stack's default is 200 ms): the hub is the
        // controlled agent, which takes the pair the viewer nominates only once its own
        // check on that pair has succeeded, on its next tick; and as the DTLS client it
        // starts the handshake only then. At 200 ms that tick was 200 of the 220 ms a
        // viewer waited for its first frame.
        let settings = SettingEngineBuilder::new()
            .with_ice_timeouts(
                Some(Duration::from_secs(4)),
                Some(Duration::from_secs(10)),
                Some(Duration::from_secs(1)),
            )
            .with_ice_connection_attempts(Some(Duration::from_millis(20)), Some(70));
        let settings = crate::whep::mdns::off_where_unavailable(settings).build();
        let parts = PeerParts {
            engine,
            registry,
            settings,
            udp_addrs: vec![std::net::SocketAddr::new(ip, 0).to_string()],
            runtime: None,
        };
        let pc = build_peer(parts, handler)
            .await
            .map_err(webrtc_error("creating the peer connection"))?;
        let result =
            Self::negotiate(&*pc, stream, offer, wants_video, wants_audio, &mut gathered).await;
        match result {
            Ok((answer, video, audio)) => Ok(Viewer {
                pc,
                gathered,
                states,
                video,
                audio,
                answer,
            }),
            Err(e) => {
                let _ = pc.close().await;
                Err(e)
            }
        }
    }

    #[allow(clippy::type_complexity)]
    async fn negotiate(
        pc: &dyn PeerConnection,
        stream: &LiveStream,
        offer: RTCSessionDescription,
        wants_video: bool,
        wants_audio: bool,
        gathered: &mut Gathering,
    ) -> Result<
        (
            String,
            Option<(Arc<TrackLocalStaticRTP>, TrackNumbering)>,
            Option<(Arc<TrackLocalStaticRTP>, TrackNumbering)>,
        ),
        HubError,
    > {
        pc.set_remote_description(offer)
            .await
            .map_err(|e| HubError::BadOffer(format!("offer refused: {e}")))?;
        let (video_info, _) = stream.info();
        let profile = video_info.map(|v| v.profile_level_id);
        let mut senders = Vec::new();
        if wants_video {
            let codec = RTCRtpCodec {
                mime_type: MIME_TYPE_H264.into(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line: format!(
                    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id={}",
                    profile.as_deref().unwrap_or("42e01f")
                ),
                rtcp_feedback: vec![],
            };
            let ssrc = rand::random::<u32>();
            let t = Arc::new(track(RtpCodecKind::Video, codec, ssrc, stream.name()));
            let sender = pc
                .add_track(t.clone() as Arc<dyn TrackLocal>)
                .await
                .map_err(webrtc_error("adding the video track"))?;
            senders.push((RtpCodecKind::Video, t, sender, ssrc));
        }
        if wants_audio {
            let codec = RTCRtpCodec {
                mime_type: MIME_TYPE_OPUS.into(),
                clock_rate: 48_000,
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
                rtcp_feedback: vec![],
            };
            let ssrc = rand::random::<u32>();
            let t = Arc::new(track(RtpCodecKind::Audio, codec, ssrc, stream.name()));
            let sender = pc
                .add_track(t.clone() as Arc<dyn TrackLocal>)
                .await
                .map_err(webrtc_error("adding the audio track"))?;
            senders.push((RtpCodecKind::Audio, t, sender, ssrc));
        }
        let answer = pc
            .create_answer(None)
            .await
            .map_err(|e| HubError::BadOffer(format!("no answer to this offer: {e}")))?;
        let before = gathered.mark();
        pc.set_local_description(answer)
            .await
            .map_err(webrtc_error("applying the answer"))?;
        gathered.wait_past(before, GATHER_TIMEOUT).await;
        let answer = pc
            .local_description()
            .await
            .ok_or_else(|| HubError::WebRtc("no local description".into()))?
            .sdp;
        let mut video = None;
        let mut audio = None;
        for (kind, t, sender, ssrc) in senders {
            let (mime, want) = match kind {
                RtpCodecKind::Audio => (MIME_TYPE_OPUS, None),
                _ => (MIME_TYPE_H264, profile.as_deref()),
            };
            let Some(pt) = negotiated_payload_type(&sender, mime, want).await else {
                if kind == RtpCodecKind::Video {
                    return Err(HubError::BadOffer(
                        "the offer accepts no H.264 with packetization-mode=1".into(),
                    ));
                }
                continue;
            };
            let numbering = TrackNumbering::new(ssrc, pt, rand::random(), rand::random());
            match kind {
                RtpCodecKind::Audio => audio = Some((t, numbering)),
                _ => video = Some((t, numbering)),
            }
        }
        Ok((answer, video, audio))
    }

    /// Sends the stream until the viewer leaves, the stream ends or `stop` turns true.
    pub async fn run(
        mut self,
        stream: Arc<LiveStream>,
        mut stop: watch::Receiver<bool>,
    ) -> ViewerReport {
        let mut report = ViewerReport::default();
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, async {
            tokio::select! {
                connected = self.states.connected() => connected,
                _ = crate::hub::stopped(&mut stop) => false,
            }
        })
        .await
        .unwrap_or(false);
        if connected {
            info!(stream = stream.name(), "viewer connected");
            let sub = stream.subscribe();
            self.stream_to_viewer(sub, &mut stop, &mut report).await;
        } else {
            debug!(stream = stream.name(), "viewer never connected");
        }
        self.say_goodbye().await;
        let _ = self.pc.close().await;
        report
    }

    /// RTCP BYE on each track, so that the viewer ends at once instead of waiting for
    /// ICE to time out.
    async fn say_goodbye(&self) {
        // RTCP is not retransmitted: say it three times, 20 ms apart, and give the
        // driver a moment to put the last one on the wire before the close.
        for _ in 0..3 {
            for (track, numbering) in self.video.iter().chain(self.audio.iter()) {
                let bye = Goodbye {
                    sources: vec![numbering.ssrc()],
                    reason: bytes::Bytes::from_static(b"stream ended"),
                };
                let _ = tokio::time::timeout(
                    Duration::from_millis(200),
                    track.write_rtcp(vec![Box::new(bye)]),
                )
                .await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stream_to_viewer(
        &mut self,
        mut sub: Subscription,
        stop: &mut watch::Receiver<bool>,
        report: &mut ViewerReport,
    ) {
        // A viewer joining mid-group waits for a keyframe unless the cache has one.
        let mut need_keyframe = true;
        if let Some((track, numbering)) = &mut self.video
            && !sub.gop.is_empty()
        {
            let times: Vec<i64> = sub.gop.iter().map(|u| u.pts_90k).collect();
            let started = tokio::time::Instant::now();
            let mut sent = 0usize;
            for (unit, time) in sub.gop.iter().zip(burst_times(&times)) {
                for packet in numbering.frame(time, &unit.payloads) {
                    if track.write_rtp(packet).await.is_err() {
                        return;
                    }
                }
                report.video_frames += 1;
                // Paced: a whole group at once overflows a viewer's socket buffer
                // (208 KiB by default on Linux) and the start of the picture is lost.
                sent += unit.size;
                let due = started + Duration::from_secs_f64(sent as f64 / BURST_BYTES_PER_SECOND);
                tokio::time::sleep_until(due).await;
            }
            need_keyframe = false;
        }
        sub.gop.clear();
        // Once the publisher left, what it sent before is still queued: send that, then end.
        let mut ended = false;
        loop {
            let unit = if ended {
                match sub.live.try_recv() {
                    Ok(unit) => Ok(unit),
                    Err(broadcast::error::TryRecvError::Lagged(n)) => {
                        Err(broadcast::error::RecvError::Lagged(n))
                    }
                    Err(_) => return,
                }
            } else {
                tokio::select! {
                    biased;
                    unit = sub.live.recv() => unit,
                    _ = LiveStream::ended(&mut sub.ended) => {
                        ended = true;
                        continue;
                    }
                    state = self.states.next() => {
                        if state.is_none_or(is_over) {
                            return;
                        }
                        continue;
                    }
                    _ = crate::hub::stopped(stop) => return,
                }
            };
            match unit {
                Ok(MediaUnit::Video(unit)) => {
                    let Some((track, numbering)) = &mut self.video else {
                        continue;
                    };
                    if need_keyframe && !unit.keyframe {
                        report.skipped += 1;
                        continue;
                    }
                    need_keyframe = false;
                    for packet in numbering.frame(unit.pts_90k, &unit.payloads) {
                        if track.write_rtp(packet).await.is_err() {
                            return;
                        }
                    }
                    report.video_frames += 1;
                }
                Ok(MediaUnit::Audio(unit)) => {
                    let Some((track, numbering)) = &mut self.audio else {
                        continue;
                    };
                    let payload = [unit.payload.clone()];
                    for packet in numbering.frame(unit.pts_48k, &payload) {
                        if track.write_rtp(packet).await.is_err() {
                            return;
                        }
                    }
                    report.audio_packets += 1;
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    debug!(skipped = n, "viewer fell behind; waiting for a keyframe");
                    report.skipped += n;
                    need_keyframe = true;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

impl std::fmt::Debug for Viewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Viewer")
            .field("video", &self.video.is_some())
            .field("audio", &self.audio.is_some())
            .field("answer_bytes", &self.answer.len())
            .finish_non_exhaustive()
    }
}
