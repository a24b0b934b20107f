//! [`Player`]: watches a WHEP stream and yields complete encoded frames.
//!
//! # Why webrtc-rs 0.21
//!
//! The 0.21 line is a rewrite on the sans-I/O `rtc` core, the same design as the rest of
//! StreamHub (state machines driven by a thin tokio layer); it is maintained, reports
//! packetsLost and jitter in inbound stats, and lets us bind exactly the sockets we want.
//! The 0.17 line is bug-fix only, leaks about 100 KiB per connection and lacks those
//! stats. Known 0.21 defects we guard against: its H.264 depacketizer ignores the FU-A
//! start bit (we depacketize ourselves, see [`super::depacketize`]), and an `Arc` cycle
//! can keep a closed connection alive (our event handler holds no reference to the peer
//! connection or the tracks, and `close` closes the connection explicitly).
//!
//! # Tasks
//!
//! `connect` negotiates on the caller's task. Each remote track then gets one tokio task
//! that reorders its packets ([`JitterBuffer`]), assembles frames, asks for keyframes
//! (PLI and FIR at the start, PLI again every 200 ms while one is missing), and hands
//! frames to a bounded channel that [`Player::next_frame`] reads. Timestamps go through
//! [`super::clock`]: the sender's RTCP sender reports put all tracks on one clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rtc::interceptor::{Registry, Slot};
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine,
};
use rtc::rtcp::goodbye::Goodbye;
use rtc::rtcp::payload_feedbacks::full_intra_request::{FirEntry, FullIntraRequest};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use url::Url;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceConnectionState, RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription,
    SettingEngineBuilder,
};

use super::WhepError;
use super::clock::{SenderClock, TrackClock};
use super::depacketize::{AssembledFrame, H264Depacketizer, RtpPayload, Vp8Depacketizer};
use super::frame::{Codec, MediaFrame, MediaKind};
use super::http;
use super::jitter::{JitterBuffer, JitterOutput};
use super::sender_reports::SenderReportForwarder;
use super::steps::{ConnectSteps, Step, StepState};

/// How long the other tracks may take to follow a track the sender ended.
const GOODBYE_GRACE: Duration = Duration::from_millis(500);
/// How often a keyframe is asked for again while the picture is waiting for one.
const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(200);

/// How to play.
#[derive(Debug, Clone)]
pub struct PlayConfig {
    /// Bearer token for the WHEP server.
    pub token: Option<String>,
    /// Limit for the whole negotiation (HTTP and ICE gathering).
    pub timeout: Duration,
    /// Longest a missing packet is waited for before it counts as lost.
    pub latency: Duration,
    /// Retries on 409/503 with Retry-After.
    pub max_retries: u32,
    /// Local UDP addresses to bind; `None` binds every interface, or only 127.0.0.1 when
    /// the server is on loopback.
    pub bind: Option<Vec<String>>,
}

impl Default for PlayConfig {
    fn default() -> Self {
        PlayConfig {
            token: None,
            timeout: Duration::from_secs(10),
            latency: Duration::from_millis(100),
            max_retries: 3,
            bind: None,
        }
    }
}

/// Counters of a playback.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlayStats {
    /// RTP packets received.
    pub packets_received: u64,
    /// RTP packets given up on as lost.
    pub packets_lost: u64,
    /// Payload bytes received.
    pub bytes_received: u64,
    /// Video frames delivered.
    pub video_frames: u64,
    /// Audio frames delivered.
    pub audio_frames: u64,
    /// Keyframes delivered.
    pub keyframes: u64,
    /// Keyframe requests (PLI) sent.
    pub pli_sent: u64,
    /// RTCP sender reports received (they align audio and video).
    pub sender_reports: u64,
    /// Frames dropped because the app did not read them in time.
    pub frames_dropped: u64,
    /// Time from the start of `connect` to the first video frame.
    pub first_frame: Option<Duration>,
    /// Video frames per second delivered since the first video frame.
    pub frame_rate: f64,
    /// Interarrival jitter of the video track (RFC 3550 §6.4.1).
    pub video_jitter: Duration,
    /// Interarrival jitter of the audio track.
    pub audio_jitter: Duration,
    /// Codec of the video track.
    pub video_codec: Option<Codec>,
    /// Codec of the audio track.
    pub audio_codec: Option<Codec>,
}

#[derive(Debug, Default)]
struct Counters {
    packets_received: AtomicU64,
    packets_lost: AtomicU64,
    bytes_received: AtomicU64,
    video_frames: AtomicU64,
    audio_frames: AtomicU64,
    keyframes: AtomicU64,
    pli_sent: AtomicU64,
    sender_reports: AtomicU64,
    frames_dropped: AtomicU64,
    first_frame_us: AtomicU64,
    has_first_frame: AtomicBool,
    video_jitter_us: AtomicU64,
    audio_jitter_us: AtomicU64,
    codecs: std::sync::Mutex<(Option<Codec>, Option<Codec>)>,
}

struct Shared {
    started: Instant,
    sender_clock: SenderClock,
    latency: Duration,
    counters: Counters,
    /// Tracks started and tracks the sender said goodbye to (RTCP BYE).
    tracks: AtomicU64,
    goodbyes: tokio::sync::watch::Sender<u64>,
    /// How far HTTP, ICE and DTLS got (logged as they change).
    steps: std::sync::Mutex<ConnectSteps>,
}

impl Shared {
    fn step(&self, step: Step, state: StepState) {
        if let Ok(mut steps) = self.steps.lock() {
            steps.set(step, state);
        }
    }

    fn steps(&self) -> ConnectSteps {
        self.steps.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The connection ended or failed before every step was done: blame the step that
    /// was under way and log one line per step.
    fn steps_failed(&self, why: &str) {
        if let Ok(mut steps) = self.steps.lock() {
            steps.fail_unfinished(why);
            steps.log_summary();
        }
    }
}

/// A WHEP playback.
pub struct Player {
    frames: mpsc::Receiver<MediaFrame>,
    pc: Box<dyn PeerConnection>,
    http: reqwest::Client,
    resource: Url,
    token: Option<String>,
    shared: Arc<Shared>,
    states: mpsc::UnboundedReceiver<RTCPeerConnectionState>,
    ended: bool,
    deleted: bool,
    /// When the stream counts as ended after a goodbye on some of its tracks.
    goodbye_deadline: Option<Instant>,
}

impl std::fmt::Debug for Player {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Player")
            .field("resource", &self.resource.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Handler {
    shared: Arc<Shared>,
    frames: mpsc::Sender<MediaFrame>,
    gathered: mpsc::UnboundedSender<()>,
    states: mpsc::UnboundedSender<RTCPeerConnectionState>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(());
        }
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        debug!(%state, "ICE connection state");
        match state {
            RTCIceConnectionState::Checking => self.shared.step(
                Step::Ice,
                StepState::Started("checking candidate pairs".into()),
            ),
            RTCIceConnectionState::Connected | RTCIceConnectionState::Completed => {
                self.shared
                    .step(Step::Ice, StepState::Done("a candidate pair works".into()));
                self.shared
                    .step(Step::Dtls, StepState::Started("handshake".into()));
            }
            RTCIceConnectionState::Failed => self.shared.step(
                Step::Ice,
                StepState::Failed("no candidate pair answered".into()),
            ),
            _ => {}
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        debug!(%state, "peer connection state");
        if state == RTCPeerConnectionState::Connected {
            self.shared
                .step(Step::Dtls, StepState::Done("SRTP keys ready".into()));
        }
        let _ = self.states.send(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let shared = self.shared.clone();
        let frames = self.frames.clone();
        tokio::spawn(track_loop(track, shared, frames));
    }
}

fn video_codecs() -> Vec<RTCRtpCodecParameters> {
    let feedback = || {
        [
            ("goog-remb", ""),
            ("ccm", "fir"),
            ("nack", ""),
            ("nack", "pli"),
            ("transport-cc", ""),
        ]
        .into_iter()
        .map(|(typ, parameter)| RTCPFeedback {
            typ: typ.into(),
            parameter: parameter.into(),
        })
        .collect::<Vec<_>>()
    };
    let h264 = |pt: u8, profile: &str| RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: MIME_TYPE_H264.into(),
            clock_rate: 90000,
            channels: 0,
            sdp_fmtp_line: format!(
                "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id={profile}"
            ),
            rtcp_feedback: feedback(),
        },
        payload_type: pt,
    };
    vec![
        h264(102, "42e01f"), // constrained baseline
        h264(104, "42001f"), // baseline
        h264(106, "4d001f"), // main
        h264(108, "64001f"), // high
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_VP8.into(),
                clock_rate: 90000,
                channels: 0,
                sdp_fmtp_line: String::new(),
                rtcp_feedback: feedback(),
            },
            payload_type: 96,
        },
    ]
}

/// The codecs StreamHub speaks over WebRTC: Opus, H.264 (four profiles), VP8. The hub
/// answers with the same table.
pub(crate) fn media_engine() -> Result<MediaEngine, WhepError> {
    let mut engine = MediaEngine::default();
    let opus = RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: MIME_TYPE_OPUS.into(),
            clock_rate: 48000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
            rtcp_feedback: vec![],
        },
        payload_type: 111,
    };
    engine
        .register_codec(opus, RtpCodecKind::Audio)
        .map_err(webrtc_error)?;
    for codec in video_codecs() {
        engine
            .register_codec(codec, RtpCodecKind::Video)
            .map_err(webrtc_error)?;
    }
    Ok(engine)
}

fn webrtc_error(e: impl std::fmt::Display) -> WhepError {
    WhepError::WebRtc(e.to_string())
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

impl Player {
    /// Negotiates a receive-only session with the WHEP endpoint at `url`.
    pub async fn connect(url: &str, config: PlayConfig) -> Result<Player, WhepError> {
        let url = Url::parse(url).map_err(|e| WhepError::InvalidUrl(format!("{url}: {e}")))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(WhepError::InvalidUrl(format!("{url}: not http or https")));
        }
        let timeout = config.timeout;
        let shared = Arc::new(Shared {
            started: Instant::now(),
            sender_clock: SenderClock::default(),
            latency: config.latency,
            counters: Counters::default(),
            tracks: AtomicU64::new(0),
            goodbyes: tokio::sync::watch::Sender::new(0),
            steps: std::sync::Mutex::new(ConnectSteps::default()),
        });
        let result = tokio::time::timeout(timeout, Self::negotiate(url, config, shared.clone()))
            .await
            .map_err(|_| WhepError::Timeout(format!("no session after {timeout:?}")))
            .and_then(|r| r);
        if let Err(error) = &result {
            shared.steps_failed(&error.to_string());
        }
        result
    }

    async fn negotiate(
        url: Url,
        config: PlayConfig,
        shared: Arc<Shared>,
    ) -> Result<Player, WhepError> {
        let mut engine = media_engine()?;
        // Application-most slot: every other interceptor has seen inbound RTCP first.
        let registry = register_default_interceptors(Registry::new(), &mut engine)
            .map_err(webrtc_error)?
            .with(Slot::from(14_000), SenderReportForwarder::default());
        let (frames_tx, frames) = mpsc::channel(512);
        let (gathered_tx, mut gathered) = mpsc::unbounded_channel();
        let (states_tx, states) = mpsc::unbounded_channel();
        let handler = Arc::new(Handler {
            shared: shared.clone(),
            frames: frames_tx,
            gathered: gathered_tx,
            states: states_tx,
        });
        let bind = config.bind.clone().unwrap_or_else(|| {
            if is_loopback(&url) {
                vec!["127.0.0.1:0".to_string()]
            } else {
                vec!["0.0.0.0:0".to_string()]
            }
        });
        // Connectivity checks every 50 ms (RFC 8445's pacing) instead of the stack's
        // 200 ms, for the same 1.4 s of attempts: the first picture comes ~150 ms sooner.
        let settings = SettingEngineBuilder::new()
            .with_ice_connection_attempts(Some(Duration::from_millis(50)), Some(28))
            .build();
        let pc = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_setting_engine(settings)
            .with_media_engine(engine)
            .with_interceptor_registry(registry)
            .with_handler(handler)
            .with_udp_addrs(bind)
            .build()
            .await
            .map_err(webrtc_error)?;
        let pc: Box<dyn PeerConnection> = Box::new(pc);
        for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
            pc.add_transceiver_from_kind(
                kind,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    ..Default::default()
                }),
            )
            .await
            .map_err(webrtc_error)?;
        }
        let offer = pc.create_offer(None).await.map_err(webrtc_error)?;
        pc.set_local_description(offer)
            .await
            .map_err(webrtc_error)?;
        // Host candidates gather at once; do not wait long for anything slower.
        let _ = tokio::time::timeout(Duration::from_secs(2), gathered.recv()).await;
        let offer = pc
            .local_description()
            .await
            .ok_or_else(|| WhepError::WebRtc("no local description".into()))?;

        debug!(
            offer_bytes = offer.sdp.len(),
            candidates = offer.sdp.matches("a=candidate").count(),
            "offer ready"
        );
        let client = http::client(config.timeout)?;
        let token = config.token.clone();
        shared.step(
            Step::Http,
            StepState::Started(format!("POST offer to {}", without_query(&url))),
        );
        let answer = http::post_offer(
            &client,
            &url,
            token.as_deref(),
            &offer.sdp,
            config.max_retries,
        )
        .await
        .inspect_err(|e| shared.step(Step::Http, StepState::Failed(e.to_string())))?;
        shared.step(
            Step::Http,
            StepState::Done(format!(
                "answer received, session {}",
                without_query(&answer.resource)
            )),
        );
        info!(resource = %without_query(&answer.resource), ice_servers = answer.ice_servers.len(), "WHEP session created");
        let remote = RTCSessionDescription::answer(answer.sdp.clone())
            .map_err(|e| WhepError::Protocol(format!("bad SDP answer: {e}")));
        let applied = match remote {
            Ok(remote) => pc
                .set_remote_description(remote)
                .await
                .map_err(|e| WhepError::Protocol(format!("bad SDP answer: {e}"))),
            Err(e) => Err(e),
        };
        if let Err(e) = applied {
            shared.step(Step::Http, StepState::Failed(e.to_string()));
            // Leave nothing behind on the server.
            let _ = http::delete(&client, &answer.resource, token.as_deref()).await;
            let _ = pc.close().await;
            return Err(e);
        }
        Ok(Player {
            frames,
            pc,
            http: client,
            resource: answer.resource,
            token,
            shared,
            states,
            ended: false,
            deleted: false,
            goodbye_deadline: None,
        })
    }

    /// The next complete frame; `None` when the stream ended or the connection failed.
    pub async fn next_frame(&mut self) -> Option<MediaFrame> {
        let mut goodbyes = self.shared.goodbyes.subscribe();
        while !self.ended {
            // A sender that leaves says goodbye (RTCP BYE) on each track. All of them: the
            // stream ended. Some of them (a BYE can be lost): the stream ends after a
            // short grace, in which frames still in flight are handed out.
            let tracks = self.shared.tracks.load(Ordering::Acquire);
            let byes = *goodbyes.borrow_and_update();
            if tracks > 0 && byes >= tracks {
                self.ended = true;
                break;
            }
            if byes > 0 && self.goodbye_deadline.is_none() {
                self.goodbye_deadline = Some(Instant::now() + GOODBYE_GRACE);
            }
            let grace = self.goodbye_deadline;
            tokio::select! {
                biased;
                frame = self.frames.recv() => return frame,
                _ = goodbyes.changed() => {}
                _ = async {
                    match grace {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                } => self.ended = true,
                state = self.states.recv() => {
                    if matches!(
                        state,
                        Some(RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed) | None
                    ) {
                        self.ended = true;
                        if !matches!(self.shared.steps().state(Step::Dtls), StepState::Done(_)) {
                            self.shared.steps_failed("the peer connection failed");
                        }
                    }
                }
            }
        }
        // The connection is gone: hand out what was already assembled, then end.
        self.frames.try_recv().ok()
    }

    /// True when the sender ended the stream (RTCP BYE) rather than the connection
    /// failing: the stream is over, not the network.
    pub fn ended_by_sender(&self) -> bool {
        *self.shared.goodbyes.borrow() > 0
    }

    /// How far the connection's steps (HTTP, ICE, DTLS) got.
    pub fn steps(&self) -> ConnectSteps {
        self.shared.steps()
    }

    /// The WHEP session resource on the server.
    pub fn resource(&self) -> &Url {
        &self.resource
    }

    /// Counters so far.
    pub fn stats(&self) -> PlayStats {
        let c = &self.shared.counters;
        let (video_codec, audio_codec) = c.codecs.lock().map(|g| g.clone()).unwrap_or_default();
        let first_frame = c
            .has_first_frame
            .load(Ordering::Relaxed)
            .then(|| Duration::from_micros(c.first_frame_us.load(Ordering::Relaxed)));
        let video_frames = c.video_frames.load(Ordering::Relaxed);
        let frame_rate = first_frame
            .map(|first| {
                self.shared
                    .started
                    .elapsed()
                    .saturating_sub(first)
                    .as_secs_f64()
            })
            .filter(|secs| *secs > 0.0)
            .map_or(0.0, |secs| video_frames.saturating_sub(1) as f64 / secs);
        PlayStats {
            packets_received: c.packets_received.load(Ordering::Relaxed),
            packets_lost: c.packets_lost.load(Ordering::Relaxed),
            bytes_received: c.bytes_received.load(Ordering::Relaxed),
            video_frames,
            audio_frames: c.audio_frames.load(Ordering::Relaxed),
            keyframes: c.keyframes.load(Ordering::Relaxed),
            pli_sent: c.pli_sent.load(Ordering::Relaxed),
            sender_reports: c.sender_reports.load(Ordering::Relaxed),
            frames_dropped: c.frames_dropped.load(Ordering::Relaxed),
            first_frame,
            frame_rate,
            video_jitter: Duration::from_micros(c.video_jitter_us.load(Ordering::Relaxed)),
            audio_jitter: Duration::from_micros(c.audio_jitter_us.load(Ordering::Relaxed)),
            video_codec,
            audio_codec,
        }
    }

    /// Ends the session: DELETE on the server, then the peer connection is closed.
    pub async fn close(mut self) -> Result<PlayStats, WhepError> {
        let deleted = self.delete().await;
        let _ = self.pc.close().await;
        let stats = self.stats();
        deleted.map(|_| stats)
    }

    async fn delete(&mut self) -> Result<(), WhepError> {
        if self.deleted {
            return Ok(());
        }
        self.deleted = true;
        http::delete(&self.http, &self.resource, self.token.as_deref()).await
    }
}

enum Assembler {
    H264(H264Depacketizer),
    Vp8(Vp8Depacketizer),
    Opus,
    Other,
}

impl Assembler {
    fn push(&mut self, packet: &RtpPayload) -> Option<AssembledFrame> {
        match self {
            Assembler::H264(d) => d.push(packet),
            Assembler::Vp8(d) => d.push(packet),
            Assembler::Opus => Some(AssembledFrame {
                data: packet.payload.clone(),
                timestamp: packet.timestamp,
                keyframe: true,
                discontinuity: false,
            }),
            Assembler::Other => None,
        }
    }

    fn lost(&mut self) {
        match self {
            Assembler::H264(d) => d.lost(),
            Assembler::Vp8(d) => d.lost(),
            Assembler::Opus | Assembler::Other => {}
        }
    }

    fn needs_keyframe(&self) -> bool {
        match self {
            Assembler::H264(d) => d.needs_keyframe(),
            Assembler::Vp8(d) => d.needs_keyframe(),
            Assembler::Opus | Assembler::Other => false,
        }
    }
}

async fn request_keyframe(track: &Arc<dyn TrackRemote>, media_ssrc: u32, fir_seq: Option<u8>) {
    let mut packets: Vec<Box<dyn rtc::rtcp::Packet>> = vec![Box::new(PictureLossIndication {
        sender_ssrc: 0,
        media_ssrc,
    })];
    if let Some(sequence_number) = fir_seq {
        packets.push(Box::new(FullIntraRequest {
            sender_ssrc: 0,
            media_ssrc,
            fir: vec![FirEntry {
                ssrc: media_ssrc,
                sequence_number,
            }],
        }));
    }
    if let Err(e) = track.write_rtcp(packets).await {
        debug!(error = %e, "keyframe request not sent");
    }
}

async fn track_loop(
    track: Arc<dyn TrackRemote>,
    shared: Arc<Shared>,
    frames: mpsc::Sender<MediaFrame>,
) {
    let kind = match track.kind().await {
        RtpCodecKind::Video => MediaKind::Video,
        _ => MediaKind::Audio,
    };
    let Some(&ssrc) = track.ssrcs().await.first() else {
        warn!("remote track without SSRC");
        return;
    };
    let (codec, clock_rate) = match track.codec(ssrc).await {
        Some(c) => (
            Codec::from_mime(&c.mime_type),
            u64::from(c.clock_rate.max(1)),
        ),
        None => (Codec::Other("unknown".into()), 90_000),
    };
    info!(?kind, codec = codec.name(), ssrc, "track started");
    shared.tracks.fetch_add(1, Ordering::AcqRel);
    let mut said_goodbye = false;
    if let Ok(mut codecs) = shared.counters.codecs.lock() {
        match kind {
            MediaKind::Video => codecs.0 = Some(codec.clone()),
            MediaKind::Audio => codecs.1 = Some(codec.clone()),
        }
    }
    let mut assembler = match codec {
        Codec::H264 => Assembler::H264(H264Depacketizer::new()),
        Codec::Vp8 => Assembler::Vp8(Vp8Depacketizer::new()),
        Codec::Opus => Assembler::Opus,
        Codec::Other(_) => Assembler::Other,
    };
    let counters = &shared.counters;
    let mut jitter = JitterBuffer::new(shared.latency, 2048);
    let mut clock = TrackClock::new(clock_rate as u32);
    let player_now_us = || shared.started.elapsed().as_micros() as i64;
    let mut next_keyframe_request = Instant::now();
    let mut fir_seq: u8 = 0;
    let mut pending_discontinuity = false;
    let mut jitter_meter = JitterMeter::default();
    let jitter_counter = match kind {
        MediaKind::Video => &counters.video_jitter_us,
        MediaKind::Audio => &counters.audio_jitter_us,
    };

    loop {
        if kind == MediaKind::Video
            && assembler.needs_keyframe()
            && Instant::now() >= next_keyframe_request
        {
            // FIR with the first request (some senders ignore PLI), PLI every time.
            let fir = (fir_seq == 0).then_some(fir_seq);
            fir_seq = fir_seq.wrapping_add(1);
            request_keyframe(&track, ssrc, fir).await;
            counters.pli_sent.fetch_add(1, Ordering::Relaxed);
            next_keyframe_request = Instant::now() + KEYFRAME_REQUEST_INTERVAL;
        }
        let mut wake = jitter.next_deadline();
        if kind == MediaKind::Video && assembler.needs_keyframe() {
            wake = Some(wake.map_or(next_keyframe_request, |w| w.min(next_keyframe_request)));
        }
        let sleep = tokio::time::sleep_until(
            wake.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
                .into(),
        );
        tokio::select! {
            event = track.poll() => match event {
                Some(TrackRemoteEvent::OnRtpPacket(packet)) => {
                    counters.packets_received.fetch_add(1, Ordering::Relaxed);
                    counters.bytes_received.fetch_add(packet.payload.len() as u64, Ordering::Relaxed);
                    let seq = packet.header.sequence_number;
                    let jitter_us = jitter_meter.update(
                        shared.started.elapsed(),
                        packet.header.timestamp,
                        clock_rate,
                    );
                    jitter_counter.store(jitter_us, Ordering::Relaxed);
                    jitter.push(seq, RtpPayload {
                        timestamp: packet.header.timestamp,
                        marker: packet.header.marker,
                        payload: packet.payload,
                    }, Instant::now());
                }
                Some(TrackRemoteEvent::OnRtcpPacket(packets)) => {
                    for report in packets.iter().filter_map(|p| p.as_any().downcast_ref::<SenderReport>()) {
                        if report.ssrc == ssrc {
                            counters.sender_reports.fetch_add(1, Ordering::Relaxed);
                            clock.on_sender_report(report.rtp_time, report.ntp_time, player_now_us(), &shared.sender_clock);
                        }
                    }
                    said_goodbye = packets
                        .iter()
                        .filter_map(|p| p.as_any().downcast_ref::<Goodbye>())
                        .any(|bye| bye.sources.contains(&ssrc));
                }
                Some(TrackRemoteEvent::OnEnded) | None => break,
                Some(_) => {}
            },
            _ = sleep => {}
        }
        // After a goodbye, packets still held for reordering are complete or never
        // coming: release them all, hand out what assembles, then end the track.
        let release_until = if said_goodbye {
            Instant::now() + shared.latency * 2
        } else {
            Instant::now()
        };
        while let Some(out) = jitter.pop(release_until) {
            let packet = match out {
                JitterOutput::Packet(packet) => packet,
                JitterOutput::Lost(n) => {
                    counters.packets_lost.fetch_add(n, Ordering::Relaxed);
                    assembler.lost();
                    if kind == MediaKind::Audio {
                        pending_discontinuity = true;
                    }
                    continue;
                }
            };
            let Some(frame) = assembler.push(&packet) else {
                continue;
            };
            let timestamp_us = clock.to_player_us(frame.timestamp, player_now_us());
            let media = MediaFrame {
                kind,
                codec: codec.clone(),
                data: frame.data,
                timestamp_us,
                keyframe: frame.keyframe,
                discontinuity: frame.discontinuity || std::mem::take(&mut pending_discontinuity),
            };
            deliver(&shared, &frames, media, &mut pending_discontinuity);
        }
        if said_goodbye {
            info!(?kind, ssrc, "the sender ended the track (RTCP BYE)");
            shared.goodbyes.send_modify(|n| *n += 1);
            break;
        }
    }
    debug!(?kind, "track ended");
}

/// RFC 3550 interarrival jitter: the smoothed difference between how far apart packets
/// arrived and how far apart they were sent.
#[derive(Debug, Default)]
struct JitterMeter {
    last: Option<(Duration, u32)>,
    jitter: f64,
}

impl JitterMeter {
    /// Updates with one packet; returns the jitter in microseconds.
    fn update(&mut self, arrival: Duration, rtp_timestamp: u32, clock_rate: u64) -> u64 {
        if let Some((last_arrival, last_ts)) = self.last {
            let arrival_diff =
                (arrival.as_secs_f64() - last_arrival.as_secs_f64()) * clock_rate as f64;
            let sent_diff = f64::from(rtp_timestamp.wrapping_sub(last_ts) as i32);
            let d = (arrival_diff - sent_diff).abs();
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last = Some((arrival, rtp_timestamp));
        (self.jitter / clock_rate as f64 * 1e6) as u64
    }
}

fn deliver(
    shared: &Shared,
    frames: &mpsc::Sender<MediaFrame>,
    frame: MediaFrame,
    pending_discontinuity: &mut bool,
) {
    let counters = &shared.counters;
    let (kind, keyframe) = (frame.kind, frame.keyframe);
    match frames.try_send(frame) {
        Ok(()) => match kind {
            MediaKind::Video => {
                if !counters.has_first_frame.swap(true, Ordering::Relaxed) {
                    let us = shared.started.elapsed().as_micros() as u64;
                    counters.first_frame_us.store(us, Ordering::Relaxed);
                }
                counters.video_frames.fetch_add(1, Ordering::Relaxed);
                if keyframe {
                    counters.keyframes.fetch_add(1, Ordering::Relaxed);
                }
            }
            MediaKind::Audio => {
                counters.audio_frames.fetch_add(1, Ordering::Relaxed);
            }
        },
        Err(_) => {
            // The app is not keeping up: drop rather than buffer without bound.
            counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
            *pending_discontinuity = true;
        }
    }
}

/// `url` without its query and fragment (they may carry credentials), for logs.
fn without_query(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_is_zero_for_evenly_paced_packets_and_grows_with_variation() {
        let mut meter = JitterMeter::default();
        for i in 0..50u32 {
            let j = meter.update(Duration::from_millis(u64::from(i) * 20), i * 960, 48_000);
            assert_eq!(j, 0);
        }
        let mut meter = JitterMeter::default();
        let mut last = 0;
        for i in 0..200u32 {
            let wobble = if i % 2 == 0 { 0 } else { 10 };
            last = meter.update(
                Duration::from_millis(u64::from(i) * 20 + wobble),
                i * 960,
                48_000,
            );
        }
        // Alternating 10 ms late: |D| is 10 ms for every pair, so J converges to 10 ms.
        assert!((9_000..=10_000).contains(&last), "{last} us");
    }
}
