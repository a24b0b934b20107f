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

use rtc::interceptor::NackGeneratorBuilder;
use rtc::interceptor::{Registry, Slot};
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_simulcast_extension_headers, configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_AV1, MIME_TYPE_H264, MIME_TYPE_HEVC, MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8,
    MIME_TYPE_VP9, MediaEngine,
};
use rtc::rtcp::payload_feedbacks::full_intra_request::{FirEntry, FullIntraRequest};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::mpsc;
use tracing::{debug, info, trace, warn};
use url::Url;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, RTCIceConnectionState, RTCPeerConnectionState, RTCSessionDescription,
    SettingEngineBuilder,
};

use super::WhepError;
use super::clock::SenderClock;
use super::depacketize::RtpPayload;
use super::early_answer::LocalCredentials;
use super::early_checks::EarlyChecks;
use super::frame::{Codec, MediaFrame, MediaKind};
use super::frame_sink::FrameSink;
use super::freeze::FreezeMeter;
use super::http;
use super::peer::{
    GATHER_TIMEOUT, Gathering, PeerObserver, PeerParts, PeerSignals, PeerStates, build_peer,
    is_over, peer_handler,
};
use super::routing::{self, Routing};
use super::sdpfrag::IceFragment;
use super::sender_reports::SenderReportForwarder;
use super::silence::{Silence, TrackSeen};
use super::steps::{ConnectSteps, Step, StepState};
use super::track_receiver::{NACK_INTERVAL, TrackOutput, TrackParams, TrackReceiver, TrackStats};
use super::unsignalled::{UnsignalledWatch, WireLog};

/// How long the other tracks may take to follow a track the sender ended.
const GOODBYE_GRACE: Duration = Duration::from_millis(500);

/// How to play. Its `Debug` hides the token.
#[derive(Clone)]
#[non_exhaustive]
pub struct PlayConfig {
    /// Bearer token for the WHEP server.
    pub token: Option<String>,
    /// Limit for the whole negotiation: HTTP and ICE gathering, then ICE and DTLS
    /// once the answer is applied ([`WhepError::Timeout`] naming what was seen).
    pub timeout: Duration,
    /// Longest a missing packet is waited for before it counts as lost.
    pub latency: Duration,
    /// Retries on 409/503 with Retry-After.
    pub max_retries: u32,
    /// Local UDP addresses to bind; `None` binds every interface, or only 127.0.0.1 when
    /// the server is on loopback.
    pub bind: Option<Vec<String>>,
    /// How long the player waits for media once connected (ICE and DTLS up): no frame
    /// at all for this long, or no video frame this long after connecting when the
    /// answer promised video, ends the playback with [`WhepError::NoMedia`] naming what
    /// was seen.
    pub stall_timeout: Duration,
}

impl std::fmt::Debug for PlayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlayConfig")
            .field("token", &crate::redact::HiddenOption(self.token.as_deref()))
            .field("timeout", &self.timeout)
            .field("latency", &self.latency)
            .field("max_retries", &self.max_retries)
            .field("bind", &self.bind)
            .field("stall_timeout", &self.stall_timeout)
            .finish()
    }
}

impl Default for PlayConfig {
    fn default() -> Self {
        PlayConfig {
            token: None,
            timeout: Duration::from_secs(10),
            latency: Duration::from_millis(100),
            max_retries: 3,
            bind: None,
            stall_timeout: Duration::from_secs(5),
        }
    }
}

/// Counters of a playback.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct PlayStats {
    /// RTP packets received.
    pub packets_received: u64,
    /// RTP packets given up on as lost.
    pub packets_lost: u64,
    /// Packets that came after later ones, in time to fill their gap: repaired by
    /// retransmission (or reordered on the way).
    pub packets_recovered: u64,
    /// Payload bytes received.
    pub bytes_received: u64,
    /// Video frames delivered to the frame queue that [`Player::next_frame`] reads
    /// (counted as they are queued, so a frame not yet read is included).
    pub video_frames: u64,
    /// Audio frames delivered.
    pub audio_frames: u64,
    /// Keyframes delivered.
    pub keyframes: u64,
    /// Keyframe requests (PLI) sent.
    pub pli_sent: u64,
    /// Video freezes (W3C definition, see [`super::freeze`]) and their total length.
    pub freezes: u64,
    /// Total length of the freezes.
    pub frozen: Duration,
    /// Retransmission requests (generic NACK packets) sent.
    pub nacks_sent: u64,
    /// RTX packets received: repairs, and the copies libwebrtc sends as bandwidth
    /// probes.
    pub retransmissions: u64,
    /// RTCP sender reports received (they align audio and video).
    pub sender_reports: u64,
    /// Frames dropped because the app did not read them in time.
    pub frames_dropped: u64,
    /// Frames assembled and counted above that wait in the queue [`Player::next_frame`]
    /// reads (read after the counters: the frames counted and not yet read are at most
    /// these). 0 when the frames go to a session's queue.
    pub frames_waiting: u64,
    /// Time from the start of `connect` to the first video frame.
    pub first_frame: Option<Duration>,
    /// Video frames per second delivered since the first video frame.
    pub frame_rate: f64,
    /// How long the video's reorder buffer waits for a missing packet now, learned
    /// from how long repairs take (see [`super::repair_wait`]).
    pub reorder_target: Duration,
    /// ICE restarts made (after a network change, see [`Player::restart_ice`]).
    pub ice_restarts: u32,
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
    recovered: AtomicU64,
    reorder_target_us: AtomicU64,
    bytes_received: AtomicU64,
    video_frames: AtomicU64,
    audio_frames: AtomicU64,
    video_packets: AtomicU64,
    audio_packets: AtomicU64,
    keyframes: AtomicU64,
    pli_sent: AtomicU64,
    sender_reports: AtomicU64,
    frames_dropped: AtomicU64,
    first_frame_us: AtomicU64,
    has_first_frame: AtomicBool,
    video_jitter_us: AtomicU64,
    audio_jitter_us: AtomicU64,
    codecs: std::sync::Mutex<(Option<Codec>, Option<Codec>)>,
    freezes: std::sync::Mutex<FreezeMeter>,
}

struct Shared {
    started: Instant,
    sender_clock: Arc<SenderClock>,
    latency: Duration,
    counters: Counters,
    /// Tracks started and tracks the sender said goodbye to (RTCP BYE).
    tracks: AtomicU64,
    goodbyes: tokio::sync::watch::Sender<u64>,
    /// Frames the sink took, to tell the player that media flows.
    delivered: tokio::sync::watch::Sender<u64>,
    /// How far HTTP, ICE and DTLS got (logged as they change).
    steps: std::sync::Mutex<ConnectSteps>,
    /// Every RTP packet that arrived, and the SSRCs no track owned.
    wire: Arc<WireLog>,
    /// The answer, set when it arrives (before any track starts), for the parameter
    /// sets it signals (`sprop-…` fmtp parameters).
    answer_sdp: std::sync::OnceLock<String>,
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
    /// The player's own frame queue; `None` when its frames go to a sink of the caller's.
    frames: Option<mpsc::Receiver<MediaFrame>>,
    /// Frames handed over so far (to a sink or the queue).
    delivered: tokio::sync::watch::Receiver<u64>,
    pc: Arc<dyn PeerConnection>,
    /// Routes streams the answer did not signal (ended with the player).
    router: tokio::task::JoinHandle<()>,
    http: reqwest::Client,
    resource: Url,
    token: Option<String>,
    shared: Arc<Shared>,
    states: PeerStates,
    ended: bool,
    deleted: bool,
    /// When the stream counts as ended after a goodbye on some of its tracks.
    goodbye_deadline: Option<Instant>,
    /// Why the playback ended, when it was not the sender or the app.
    failure: Option<WhepError>,
    stall_timeout: Duration,
    /// The sections of the answer the sender sends in: `(kind, payload types)`.
    promised: Vec<(String, Vec<u8>)>,
    /// The offer and the answer as first applied, to explain streams no track takes.
    offer: String,
    answer: String,
    /// Limit for ICE and DTLS to come up once the answer is applied.
    negotiation_timeout: Duration,
    /// The server takes ICE fragments by PATCH (`Accept-Patch`), so ICE can restart.
    accepts_patch: bool,
    /// ICE gathering completions, to know when a restart's candidates are all there.
    gathered: Gathering,
    /// ICE restarts so far, and when the last one was made.
    restarts: u32,
    last_restart: Option<Instant>,
    /// When the answer was applied; when ICE and DTLS came up (the stall clock starts
    /// there: a peer whose DTLS retransmission timer backs off from 1 s can take
    /// seconds on a lossy link, which is not a stall); when the last frame came.
    answered_at: Instant,
    connected_at: Option<Instant>,
    last_frame: Instant,
}

/// Media that came while the player watched its connection.
enum Arrival {
    /// From the player's own queue (`None`: the queue closed).
    Frame(Option<MediaFrame>),
    /// A frame went to the caller's sink.
    Delivered,
}

/// The next frame of the player's own queue, or (frames going to a sink) the next one
/// handed over.
async fn arrival(
    frames: Option<&mut mpsc::Receiver<MediaFrame>>,
    delivered: &mut tokio::sync::watch::Receiver<u64>,
) -> Arrival {
    match frames {
        Some(frames) => Arrival::Frame(frames.recv().await),
        None => match delivered.changed().await {
            Ok(()) => Arrival::Delivered,
            // The sender lives in the player's shared state, as long as the player.
            Err(_) => std::future::pending().await,
        },
    }
}

/// What a playback is waiting for when its deadline passes.
#[derive(Debug, Clone, Copy)]
enum Awaited {
    /// ICE and DTLS, within the negotiation timeout.
    Connection,
    /// Media within the stall timeout: any `"frame"` after the last one (or after
    /// connecting), or the `"video frame"` the answer promised.
    Media(&'static str),
}

impl std::fmt::Debug for Player {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Player")
            .field("resource", &self.resource.as_str())
            .finish_non_exhaustive()
    }
}

/// The player's part in its connection's events: the connect steps, the early checks,
/// and a receive loop for each track.
struct PlayerObserver {
    shared: Arc<Shared>,
    frames: Arc<dyn FrameSink>,
    /// Checks that came before the answer, replayed once ICE can take them, and DTLS
    /// that came before ICE was connected.
    early: EarlyChecks,
}

impl PeerObserver for PlayerObserver {
    fn ice_state(&self, state: RTCIceConnectionState) {
        debug!(%state, "ICE connection state");
        match state {
            RTCIceConnectionState::Checking => {
                self.early.replay();
                self.shared.step(
                    Step::Ice,
                    StepState::Started("checking candidate pairs".into()),
                )
            }
            RTCIceConnectionState::Connected | RTCIceConnectionState::Completed => {
                self.early.release_dtls();
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

    fn connection_state(&self, state: RTCPeerConnectionState) {
        debug!(%state, "peer connection state");
        if state == RTCPeerConnectionState::Connected {
            self.shared
                .step(Step::Dtls, StepState::Done("SRTP keys ready".into()));
        }
    }

    fn track(&self, track: Arc<dyn TrackRemote>) {
        tokio::spawn(track_loop(track, self.shared.clone(), self.frames.clone()));
    }
}

/// The video codecs of the player's offer (`player`: VP9, AV1 and H.265 too) or of the
/// hub's answers (H.264 four ways and VP8), each with its RTX payload type.
fn video_codecs(player: bool) -> Vec<RTCRtpCodecParameters> {
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
    // RFC 4588 retransmission, one RTX payload type per codec (apt=): libwebrtc only
    // answers NACKs over RTX, so without it a lost packet is never repaired.
    let rtx = |pt: u8, apt: u8| RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: MIME_TYPE_RTX.into(),
            clock_rate: 90000,
            channels: 0,
            sdp_fmtp_line: format!("apt={apt}"),
            rtcp_feedback: vec![],
        },
        payload_type: pt,
    };
    let mut codecs = vec![
        h264(102, "42e01f"), // constrained baseline
        rtx(103, 102),
        h264(104, "42001f"), // baseline
        rtx(105, 104),
        h264(106, "4d001f"), // main
        rtx(107, 106),
        h264(108, "64001f"), // high
        rtx(109, 108),
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
        rtx(97, 96),
    ];
    if !player {
        // The hub sends only what it ingests (H.264), and repairs it over RTX.
        return codecs;
    }
    let other = |mime: &str, fmtp: &str, pt: u8| RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: mime.into(),
            clock_rate: 90000,
            channels: 0,
            sdp_fmtp_line: fmtp.into(),
            rtcp_feedback: feedback(),
        },
        payload_type: pt,
    };
    codecs.extend([
        other(MIME_TYPE_VP9, "profile-id=0", 98),
        rtx(99, 98),
        other(MIME_TYPE_AV1, "", 100),
        rtx(101, 100),
        // H.265 (RFC 7798) when a sender has it (GStreamer, Safari, hardware
        // encoders): no fmtp, so that any profile and level the sender names matches.
        other(MIME_TYPE_HEVC, "", 116),
        rtx(117, 116),
    ]);
    codecs
}

/// The RTX payload types of the player's table, each with the payload type it repairs.
fn rtx_apt() -> std::collections::HashMap<u8, u8> {
    video_codecs(true)
        .iter()
        .filter(|c| c.rtp_codec.mime_type == MIME_TYPE_RTX)
        .filter_map(|c| {
            let apt = c
                .rtp_codec
                .sdp_fmtp_line
                .strip_prefix("apt=")?
                .parse()
                .ok()?;
            Some((c.payload_type, apt))
        })
        .collect()
}

/// ICE restarts a playback makes by itself at most, and at least this far apart.
const MAX_ICE_RESTARTS: u32 = 5;
const ICE_RESTART_SPACING: Duration = Duration::from_secs(3);

/// How often the player's ICE agent sends connectivity checks (Ta).
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(20);

/// The hub's codec table: Opus, H.264 (four profiles), VP8, without RTX (it does not
/// retransmit yet).
#[cfg(feature = "server")]
pub(crate) fn media_engine() -> Result<MediaEngine, WhepError> {
    media_engine_for(false)
}

/// The table of the hub (`player` false) or of the player: also VP9, AV1 and H.265, and an RTX
/// payload type for every video codec.
fn media_engine_for(player: bool) -> Result<MediaEngine, WhepError> {
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
    for codec in video_codecs(player) {
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
        Self::connect_with(url, config, None).await
    }

    /// [`Player::connect`] handing the frames to `sink` as they are assembled, instead of
    /// keeping them for [`Player::next_frame`]; [`Player::played`] then waits for the
    /// playback's end.
    pub(crate) async fn connect_into(
        url: &str,
        config: PlayConfig,
        sink: Arc<dyn FrameSink>,
    ) -> Result<Player, WhepError> {
        Self::connect_with(url, config, Some(sink)).await
    }

    async fn connect_with(
        url: &str,
        config: PlayConfig,
        sink: Option<Arc<dyn FrameSink>>,
    ) -> Result<Player, WhepError> {
        let url = Url::parse(url).map_err(|e| WhepError::InvalidUrl(format!("{url}: {e}")))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(WhepError::InvalidUrl(format!("{url}: not http or https")));
        }
        let timeout = config.timeout;
        let shared = Arc::new(Shared {
            started: Instant::now(),
            sender_clock: Arc::default(),
            latency: config.latency,
            counters: Counters::default(),
            tracks: AtomicU64::new(0),
            goodbyes: tokio::sync::watch::Sender::new(0),
            delivered: tokio::sync::watch::Sender::new(0),
            steps: std::sync::Mutex::new(ConnectSteps::default()),
            wire: Arc::new(WireLog::new(rtx_apt().into_keys().collect())),
            answer_sdp: std::sync::OnceLock::new(),
        });
        let result =
            tokio::time::timeout(timeout, Self::negotiate(url, config, shared.clone(), sink))
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
        sink: Option<Arc<dyn FrameSink>>,
    ) -> Result<Player, WhepError> {
        let mut engine = media_engine_for(true)?;
        // The defaults (webrtc-rs's register_default_interceptors) but the NACK generator:
        // a receive-only player needs no responder, and a repair must beat the reorder
        // buffer's wait (40 ms on a LAN), so losses are asked for every 20 ms, at most
        // 10 times each, instead of every 100 ms without end.
        configure_simulcast_extension_headers(&mut engine).map_err(webrtc_error)?;
        let registry = Registry::new().with(
            Slot::NackGenerator,
            NackGeneratorBuilder::new()
                .with_interval(NACK_INTERVAL)
                .with_max_nacks_per_packet(10)
                .build(),
        );
        let registry = configure_twcc_receiver_only(registry, &mut engine).map_err(webrtc_error)?;
        let registry = configure_rtcp_reports(registry)
            // Wire-most: it sees every inbound packet first (RTX still encapsulated) and
            // every NACK the generator (slot 7_000) sends.
            .with(
                Slot::from(500),
                UnsignalledWatch::new(shared.wire.clone(), rtx_apt()),
            )
            // Application-most: every other interceptor has seen inbound RTCP first.
            .with(Slot::from(14_000), SenderReportForwarder::default());
        let (sink, frames) = match sink {
            Some(sink) => (sink, None),
            None => {
                let (tx, rx) = mpsc::channel(512);
                (Arc::new(tx) as Arc<dyn FrameSink>, Some(rx))
            }
        };
        let early = EarlyChecks::default();
        let runtime = webrtc::runtime::default_runtime()
            .ok_or_else(|| WhepError::WebRtc("no async runtime".into()))?;
        let (
            handler,
            PeerSignals {
                mut gathered,
                states,
            },
        ) = peer_handler(PlayerObserver {
            shared: shared.clone(),
            frames: sink,
            early: early.clone(),
        });
        let bind = config.bind.clone().unwrap_or_else(|| {
            if is_loopback(&url) {
                vec!["127.0.0.1:0".to_string()]
            } else {
                vec!["0.0.0.0:0".to_string()]
            }
        });
        // Connectivity checks every 20 ms instead of the stack's 200 ms, for the same
        // 1.4 s of attempts. The stack's controlling agent spends one tick finding a
        // working pair and the next nominating it, so two ticks are the floor of every
        // connection: at 50 ms (RFC 8445's default Ta) they were 100 of Chromium's
        // ~155 ms to a first frame. RFC 8445 14.2 lets Ta be set from the data to send;
        // a receive-only player has a pair or three (host candidates), a few hundred
        // bytes of checks in all.
        // A receive-only player takes the first pair that works: the stack's defaults
        // (pion's) hold a peer-reflexive pair back 1 s and a server-reflexive one 0.5 s
        // in case a better one comes, which is the whole first-frame delay against a
        // sender that answers without candidates (Chromium on a host with only
        // loopback: 1.8 s before, see cli/tests/it/play_from_chromium.rs).
        let settings = SettingEngineBuilder::new()
            .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), Some(70))
            .with_host_acceptance_min_wait(Some(Duration::ZERO))
            .with_srflx_acceptance_min_wait(Some(Duration::ZERO))
            .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
            // A path that stays silent 2 s is lost (media comes every 20 ms; consent
            // checks every 500 ms keep a paused stream alive): the player restarts ICE
            // then, with sockets bound anew so that a new address is gathered.
            .with_ice_timeouts(
                Some(Duration::from_secs(2)),
                Some(Duration::from_secs(12)),
                Some(Duration::from_millis(500)),
            )
            .with_discard_local_candidates_during_ice_restart(true);
        let settings = super::mdns::off_where_unavailable(settings).build();
        let parts = PeerParts {
            engine,
            registry,
            settings,
            udp_addrs: bind,
            runtime: Some(early.runtime(runtime)),
        };
        let pc = build_peer(parts, handler).await.map_err(webrtc_error)?;
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
        match LocalCredentials::from_sdp(&offer.sdp) {
            Some(local) => early.answer_as(local),
            None => debug!("the offer has no ICE credentials: early checks wait for the agent"),
        }
        // Host candidates gather at once; do not wait long for anything slower.
        let before = gathered.mark();
        pc.set_local_description(offer)
            .await
            .map_err(webrtc_error)?;
        gathered.wait_past(before, GATHER_TIMEOUT).await;
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
        trace!(sdp = %answer.sdp, "answer");
        shared.wire.read_stream_ids(&answer.sdp);
        shared.step(
            Step::Http,
            StepState::Done(format!(
                "answer received, session {}",
                without_query(&answer.resource)
            )),
        );
        info!(resource = %without_query(&answer.resource), ice_servers = answer.ice_servers.len(), "WHEP session created");
        let _ = shared.answer_sdp.set(answer.sdp.clone());
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
        let promised = routing::sections(&answer.sdp)
            .into_iter()
            .filter(|s| s.sends && s.kind != "application")
            .map(|s| (s.kind, s.payload_types))
            .collect();
        let router = tokio::spawn(route_unsignalled(
            Arc::downgrade(&pc),
            offer.sdp.clone(),
            answer.sdp.clone(),
            shared.wire.clone(),
        ));
        Ok(Player {
            frames,
            delivered: shared.delivered.subscribe(),
            pc,
            router,
            http: client,
            resource: answer.resource,
            token,
            shared,
            states,
            ended: false,
            deleted: false,
            goodbye_deadline: None,
            failure: None,
            stall_timeout: config.stall_timeout,
            promised,
            offer: offer.sdp,
            answer: answer.sdp.clone(),
            negotiation_timeout: config.timeout,
            accepts_patch: answer.accepts_trickle,
            gathered,
            restarts: 0,
            last_restart: None,
            answered_at: Instant::now(),
            connected_at: None,
            last_frame: Instant::now(),
        })
    }

    /// The next complete frame; `None` when the stream ended or the connection failed.
    pub async fn next_frame(&mut self) -> Option<MediaFrame> {
        self.advance().await
    }

    /// For a player made by [`Player::connect_into`]: returns when the playback is over
    /// (the stream ended, or the connection failed or stalled). Cancel-safe as
    /// [`Player::next_frame`] is.
    pub(crate) async fn played(&mut self) {
        while self.advance().await.is_some() {}
    }

    /// Watches the connection until a frame is there to return (own queue) or the
    /// playback is over.
    async fn advance(&mut self) -> Option<MediaFrame> {
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
            let (stall_at, awaited) = self.stall_deadline();
            tokio::select! {
                biased;
                arrival = arrival(self.frames.as_mut(), &mut self.delivered) => {
                    self.last_frame = Instant::now();
                    // Media is proof of a connection, whether or not its state change
                    // was read yet.
                    self.connected_at.get_or_insert(self.last_frame);
                    match arrival {
                        Arrival::Frame(frame) => return frame,
                        Arrival::Delivered => {}
                    }
                }
                _ = tokio::time::sleep_until(stall_at.into()) => {
                    let seen = self.silence().describe();
                    let failure = match awaited {
                        Awaited::Connection => WhepError::Timeout(format!(
                            "ICE and DTLS not up {:?} after the answer: {seen}",
                            self.negotiation_timeout
                        )),
                        Awaited::Media(missing) => WhepError::NoMedia(format!(
                            "no {missing} for {:?}: {seen}",
                            self.stall_timeout
                        )),
                    };
                    warn!(%failure, "playback stalled");
                    self.failure = Some(failure);
                    self.ended = true;
                }
                _ = goodbyes.changed() => {}
                _ = async {
                    match grace {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                } => self.ended = true,
                state = self.states.next() => {
                    if state == Some(RTCPeerConnectionState::Connected)
                        && self.connected_at.is_none()
                    {
                        let now = Instant::now();
                        self.connected_at = Some(now);
                        self.last_frame = self.last_frame.max(now);
                    }
                    // The path died. After a network change (an address of ours is
                    // gone: Wi-Fi to cellular, a new lease) at once; otherwise (a fade,
                    // a blackout that may end) only once ICE gave up.
                    let lost = match state {
                        Some(RTCPeerConnectionState::Disconnected) => {
                            self.network_changed().await
                        }
                        Some(RTCPeerConnectionState::Failed) => true,
                        _ => false,
                    };
                    if lost && self.connected_at.is_some() && self.may_restart() {
                        match self.restart_ice().await {
                            Ok(()) => continue,
                            Err(e) => warn!(error = %e, "ICE restart failed"),
                        }
                    }
                    if state.is_none_or(is_over) {
                        self.ended = true;
                        if !matches!(self.shared.steps().state(Step::Dtls), StepState::Done(_)) {
                            self.shared.steps_failed("the peer connection failed");
                        }
                    }
                }
            }
        }
        // The connection is gone: hand out what was already assembled, then end.
        self.frames
            .as_mut()
            .and_then(|frames| frames.try_recv().ok())
    }

    /// Whether an ICE restart may be tried now: the server takes PATCH, fewer than
    /// [`MAX_ICE_RESTARTS`] were made, and none in the last [`ICE_RESTART_SPACING`].
    fn may_restart(&self) -> bool {
        self.accepts_patch
            && self.restarts < MAX_ICE_RESTARTS
            && self
                .last_restart
                .is_none_or(|at| at.elapsed() >= ICE_RESTART_SPACING)
    }

    /// Restarts ICE through the WHEP server (RFC 9725 §4.3.2): new credentials and
    /// candidates gathered afresh (on sockets bound anew, so a new address is used),
    /// sent by PATCH with `If-Match: "*"`; the server's fragment becomes the remote
    /// description. The player does this by itself when the connection is lost while
    /// playing (ICE disconnected or failed); an app that knows the network changed can
    /// call it at once.
    pub async fn restart_ice(&mut self) -> Result<(), WhepError> {
        if !self.accepts_patch {
            return Err(WhepError::Protocol(
                "the server takes no ICE restart (no Accept-Patch: \
                 application/trickle-ice-sdpfrag)"
                    .into(),
            ));
        }
        self.restarts += 1;
        self.last_restart = Some(Instant::now());
        info!(restart = self.restarts, "ICE: restarting");
        // The new credentials go to the server before they are ours: a server that
        // cannot restart leaves the connection as it was, to recover by itself.
        self.pc.restart_ice().await.map_err(webrtc_error)?;
        let offer = self.pc.create_offer(None).await.map_err(webrtc_error)?;
        let mut ours = IceFragment::from_description(&offer.sdp);
        ours.candidates.clear();
        ours.end_of_candidates = false;
        // A new client: the pooled connection of the POST may be bound to the address
        // that just went away, where a request would wait out its whole timeout.
        self.http = http::client(self.negotiation_timeout)?;
        let theirs = http::patch_fragment(
            &self.http,
            &self.resource,
            self.token.as_deref(),
            ours.to_body(),
            true,
        )
        .await?
        .map(|body| IceFragment::parse(&body))
        .transpose()
        .map_err(|e| WhepError::Protocol(e.to_string()))?;
        let Some(theirs) = theirs.filter(|f| f.ufrag.is_some()) else {
            self.accepts_patch = false;
            return Err(WhepError::Protocol(
                "the server took the PATCH but did not restart ICE (no new credentials)".into(),
            ));
        };
        let before = self.gathered.mark();
        self.pc
            .set_local_description(offer)
            .await
            .map_err(webrtc_error)?;
        // The description in force, with the SSRCs routed since (see route_unsignalled).
        let current = self
            .pc
            .remote_description()
            .await
            .ok_or_else(|| WhepError::WebRtc("no remote description".into()))?;
        let answer = RTCSessionDescription::answer(theirs.apply_to(&current.sdp))
            .map_err(|e| WhepError::Protocol(format!("bad restart answer: {e}")))?;
        self.pc
            .set_remote_description(answer)
            .await
            .map_err(|e| WhepError::Protocol(format!("bad restart answer: {e}")))?;
        // Our new candidates, trickled (the server also learns them from our checks).
        self.gathered.wait_past(before, GATHER_TIMEOUT).await;
        if let Some(local) = self.pc.local_description().await {
            let mut candidates = IceFragment::from_description(&local.sdp);
            candidates.end_of_candidates = true;
            if let Err(e) = http::patch_fragment(
                &self.http,
                &self.resource,
                self.token.as_deref(),
                candidates.to_body(),
                false,
            )
            .await
            {
                debug!(error = %e, "trickling the restart's candidates");
            }
        }
        info!(
            candidates = theirs.candidates.len(),
            "ICE: restart negotiated, checking the new candidates"
        );
        Ok(())
    }

    /// Whether an address this player gathered a host candidate on is gone (it can no
    /// longer be bound): the network changed under the connection.
    async fn network_changed(&self) -> bool {
        let Some(local) = self.pc.local_description().await else {
            return false;
        };
        IceFragment::from_description(&local.sdp)
            .candidates
            .iter()
            .filter(|c| c.split_whitespace().nth(7) == Some("host"))
            .filter_map(|c| {
                c.split_whitespace()
                    .nth(4)?
                    .parse::<std::net::IpAddr>()
                    .ok()
            })
            .any(|ip| {
                std::net::UdpSocket::bind((ip, 0))
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::AddrNotAvailable)
            })
    }

    /// When the playback counts as stalled, and what it waits for then: ICE and DTLS
    /// within the negotiation timeout of the answer; then any frame within the stall
    /// timeout of the last (or of connecting), and while none has come, video the
    /// answer promised.
    fn stall_deadline(&self) -> (Instant, Awaited) {
        let Some(connected_at) = self.connected_at else {
            return (
                self.answered_at + self.negotiation_timeout,
                Awaited::Connection,
            );
        };
        let any = (
            self.last_frame + self.stall_timeout,
            Awaited::Media("frame"),
        );
        let promised_video = self.promised.iter().any(|(kind, _)| kind == "video");
        if promised_video && self.shared.counters.video_frames.load(Ordering::Relaxed) == 0 {
            let video = connected_at + self.stall_timeout;
            if video <= any.0 {
                return (video, Awaited::Media("video frame"));
            }
        }
        any
    }

    /// What the player has seen so far, for a diagnosis of missing media.
    pub fn silence(&self) -> Silence {
        let c = &self.shared.counters;
        let (video, audio) = c.codecs.lock().map(|g| g.clone()).unwrap_or_default();
        let steps = self.shared.steps();
        let mut tracks = Vec::new();
        for (kind, codec, packets, frames) in [
            ("video", video, &c.video_packets, &c.video_frames),
            ("audio", audio, &c.audio_packets, &c.audio_frames),
        ] {
            if let Some(codec) = codec {
                tracks.push(TrackSeen {
                    kind,
                    codec: codec.name().to_string(),
                    packets: packets.load(Ordering::Relaxed),
                    frames: frames.load(Ordering::Relaxed),
                });
            }
        }
        Silence {
            ice_up: matches!(steps.state(Step::Ice), StepState::Done(_)),
            dtls_up: matches!(steps.state(Step::Dtls), StepState::Done(_)),
            rtp_packets: self.shared.wire.rtp_packets(),
            unknown: self
                .shared
                .wire
                .unknown()
                .into_iter()
                .map(|s| {
                    let why = routing::explain(&self.answer, &self.offer, s.ssrc, s.payload_type);
                    (s, why)
                })
                .collect(),
            tracks,
            promised: self.promised.clone(),
        }
    }

    /// Why the playback ended, when neither the sender nor the app ended it: no media
    /// ([`WhepError::NoMedia`]). `None` after a normal end or a lost connection.
    pub fn failure(&self) -> Option<&WhepError> {
        self.failure.as_ref()
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
        let (freezes, frozen) = c
            .freezes
            .lock()
            .map(|m| (m.freezes(), m.frozen()))
            .unwrap_or_default();
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
            packets_recovered: c.recovered.load(Ordering::Relaxed),
            bytes_received: c.bytes_received.load(Ordering::Relaxed),
            video_frames,
            audio_frames: c.audio_frames.load(Ordering::Relaxed),
            keyframes: c.keyframes.load(Ordering::Relaxed),
            pli_sent: c.pli_sent.load(Ordering::Relaxed),
            freezes,
            frozen,
            nacks_sent: self.shared.wire.nacks_sent(),
            retransmissions: self.shared.wire.rtx_packets(),
            sender_reports: c.sender_reports.load(Ordering::Relaxed),
            frames_dropped: c.frames_dropped.load(Ordering::Relaxed),
            // After every counter: a frame queued since is counted in neither or here.
            frames_waiting: self.frames.as_ref().map_or(0, |f| f.len() as u64),
            first_frame,
            frame_rate,
            reorder_target: Duration::from_micros(c.reorder_target_us.load(Ordering::Relaxed)),
            ice_restarts: self.restarts,
            video_jitter: Duration::from_micros(c.video_jitter_us.load(Ordering::Relaxed)),
            audio_jitter: Duration::from_micros(c.audio_jitter_us.load(Ordering::Relaxed)),
            video_codec,
            audio_codec,
        }
    }

    /// Ends the session: DELETE on the server, then the peer connection is closed.
    pub async fn close(mut self) -> Result<PlayStats, WhepError> {
        self.router.abort();
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

impl Drop for Player {
    fn drop(&mut self) {
        self.router.abort();
    }
}

/// Routes the streams the answer did not signal by payload type (see
/// [`super::routing`]): each new unknown SSRC is written into the answer, which is
/// applied again after a new local offer. The server is not involved: the offer only
/// re-states the first one, and the answer is the server's plus the SSRCs it sends.
async fn route_unsignalled(
    pc: std::sync::Weak<dyn PeerConnection>,
    offer: String,
    mut answer: String,
    wire: Arc<WireLog>,
) {
    let mut routed = std::collections::HashSet::new();
    loop {
        wire.new_unknown.notified().await;
        let mut changed = false;
        for stream in wire.unknown() {
            if !routed.insert(stream.ssrc) {
                continue;
            }
            let repairs = wire.repaired_by_rid(stream.ssrc);
            match routing::route(&answer, stream.ssrc, stream.payload_type, repairs) {
                Routing::Apply(routed_answer) => {
                    info!(
                        ssrc = stream.ssrc,
                        payload_type = stream.payload_type,
                        "routing an SSRC the answer did not account for by its payload type (RFC 8843 9.2)"
                    );
                    answer = routed_answer;
                    changed = true;
                }
                Routing::Nothing => {}
                Routing::Unroutable => warn!(
                    ssrc = stream.ssrc,
                    payload_type = stream.payload_type,
                    why = %routing::explain(&answer, &offer, stream.ssrc, stream.payload_type),
                    "RTP that no track takes: not played"
                ),
            }
        }
        if !changed {
            continue;
        }
        let Some(pc) = pc.upgrade() else {
            return;
        };
        // With the ICE credentials and candidates in force: an ICE restart may have
        // replaced the first answer's.
        if let Some(current) = pc.remote_description().await {
            answer = IceFragment::from_description(&current.sdp).apply_to(&answer);
        }
        // Not the SDP itself: it holds the session's ICE password.
        debug!("applying the answer again with the routed SSRCs");
        if let Err(error) = apply_answer_again(pc.as_ref(), &answer).await {
            warn!(%error, "could not route the unsignalled SSRCs");
        }
    }
}

/// A local renegotiation: a new offer (the same sections, ICE and DTLS as before) and
/// `answer` as its answer.
async fn apply_answer_again(pc: &dyn PeerConnection, answer: &str) -> Result<(), WhepError> {
    let offer = pc.create_offer(None).await.map_err(webrtc_error)?;
    pc.set_local_description(offer)
        .await
        .map_err(webrtc_error)?;
    let answer = RTCSessionDescription::answer(answer.to_string()).map_err(webrtc_error)?;
    pc.set_remote_description(answer)
        .await
        .map_err(webrtc_error)
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

/// The I/O around one track's [`TrackReceiver`]: reads the track, sleeps until its
/// timeout, sends its keyframe requests and hands its frames to the app's queue.
async fn track_loop(track: Arc<dyn TrackRemote>, shared: Arc<Shared>, frames: Arc<dyn FrameSink>) {
    let kind = match track.kind().await {
        RtpCodecKind::Video => MediaKind::Video,
        _ => MediaKind::Audio,
    };
    let Some(&ssrc) = track.ssrcs().await.first() else {
        warn!("remote track without SSRC");
        return;
    };
    let (codec, clock_rate) = match track.codec(ssrc).await {
        Some(c) => (Codec::from_mime(&c.mime_type), c.clock_rate.max(1)),
        None => (Codec::Other("unknown".into()), 90_000),
    };
    info!(?kind, codec = codec.name(), ssrc, "track started");
    shared.tracks.fetch_add(1, Ordering::AcqRel);
    if let Ok(mut codecs) = shared.counters.codecs.lock() {
        match kind {
            MediaKind::Video => codecs.0 = Some(codec.clone()),
            MediaKind::Audio => codecs.1 = Some(codec.clone()),
        }
    }
    let params = TrackParams {
        kind,
        codec,
        ssrc,
        clock_rate,
        latency: shared.latency,
        started: shared.started,
    };
    let answer_sdp = shared.answer_sdp.get().map_or("", String::as_str);
    let mut receiver = TrackReceiver::new(
        params,
        answer_sdp,
        Arc::clone(&shared.sender_clock),
        Instant::now(),
    );
    let mut published = TrackStats::default();
    loop {
        while let Some(output) = receiver.poll_output() {
            match output {
                TrackOutput::Frame(frame) => {
                    if !deliver(&shared, &*frames, frame) {
                        receiver.frame_dropped();
                    }
                }
                TrackOutput::RequestKeyframe { media_ssrc, fir } => {
                    debug!(ssrc, fir = fir.is_some(), "keyframe request");
                    request_keyframe(&track, media_ssrc, fir).await;
                }
                TrackOutput::Ended => {
                    info!(?kind, ssrc, "the sender ended the track (RTCP BYE)");
                    shared.goodbyes.send_modify(|n| *n += 1);
                }
            }
        }
        publish_track_stats(&shared.counters, kind, receiver.stats(), &mut published);
        if receiver.is_ended() {
            break;
        }
        let wake = receiver
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            event = track.poll() => match event {
                Some(TrackRemoteEvent::OnRtpPacket(packet)) => {
                    let payload = RtpPayload {
                        timestamp: packet.header.timestamp,
                        marker: packet.header.marker,
                        payload: packet.payload,
                    };
                    receiver.push_rtp(Instant::now(), packet.header.sequence_number, payload);
                }
                Some(TrackRemoteEvent::OnRtcpPacket(packets)) => {
                    receiver.push_rtcp(Instant::now(), &packets);
                }
                Some(TrackRemoteEvent::OnEnded) | None => break,
                Some(_) => {}
            },
            _ = tokio::time::sleep_until(wake.into()) => receiver.handle_timeout(Instant::now()),
        }
    }
    debug!(?kind, ssrc, packets = published.packets, "track ended");
}

/// Adds what a track counted since `published` to the player's counters.
fn publish_track_stats(
    counters: &Counters,
    kind: MediaKind,
    now: TrackStats,
    published: &mut TrackStats,
) {
    let add = |counter: &AtomicU64, now: u64, before: u64| {
        if now > before {
            counter.fetch_add(now - before, Ordering::Relaxed);
        }
    };
    let kind_packets = match kind {
        MediaKind::Video => &counters.video_packets,
        MediaKind::Audio => &counters.audio_packets,
    };
    add(&counters.packets_received, now.packets, published.packets);
    add(kind_packets, now.packets, published.packets);
    add(&counters.bytes_received, now.bytes, published.bytes);
    add(&counters.packets_lost, now.lost, published.lost);
    add(&counters.recovered, now.recovered, published.recovered);
    add(
        &counters.sender_reports,
        now.sender_reports,
        published.sender_reports,
    );
    add(
        &counters.pli_sent,
        now.keyframe_requests,
        published.keyframe_requests,
    );
    match kind {
        MediaKind::Video => {
            counters
                .video_jitter_us
                .store(now.jitter_us, Ordering::Relaxed);
            counters
                .reorder_target_us
                .store(now.reorder_target_us, Ordering::Relaxed);
        }
        MediaKind::Audio => counters
            .audio_jitter_us
            .store(now.jitter_us, Ordering::Relaxed),
    }
    *published = now;
}

/// Hands a frame to the app's queue and counts it; false if the queue was full and the
/// frame was dropped.
fn deliver(shared: &Shared, frames: &dyn FrameSink, frame: MediaFrame) -> bool {
    let counters = &shared.counters;
    let (kind, keyframe) = (frame.kind, frame.keyframe);
    if !frames.offer(frame) {
        // The app is not keeping up: drop rather than buffer without bound.
        counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    match kind {
        MediaKind::Video => {
            if !counters.has_first_frame.swap(true, Ordering::Relaxed) {
                let us = shared.started.elapsed().as_micros() as u64;
                counters.first_frame_us.store(us, Ordering::Relaxed);
            }
            counters.video_frames.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut freezes) = counters.freezes.lock() {
                freezes.frame(shared.started.elapsed());
            }
            if keyframe {
                counters.keyframes.fetch_add(1, Ordering::Relaxed);
            }
        }
        MediaKind::Audio => {
            counters.audio_frames.fetch_add(1, Ordering::Relaxed);
        }
    }
    shared.delivered.send_modify(|n| *n += 1);
    true
}

/// `url` without its query and fragment (they may carry credentials), for logs.
fn without_query(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}
