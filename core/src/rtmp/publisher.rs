//! [`Publisher`]: the tokio driver that connects a [`PublishSession`] to an ingest and
//! streams the app's frames to it.
//!
//! Threads and tasks: `connect` runs the handshake and the publish negotiation on the
//! caller's task. Once live, one spawned task owns the socket's write half and the
//! session; a second one reads the socket and hands bytes to the first. Frames are
//! packetized on the caller's thread (so a bad frame is refused at once) and pass
//! through a [`MediaQueue`] bounded in media time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info, info_span, trace, warn};

use super::congestion::{
    BitrateEstimator, CapacityFilter, CongestionPolicy, CongestionReport, EstimatorConfig,
    LinkSample,
};
use super::packetizer::{MediaMessage, Packetizer};
use super::queue::{MediaQueue, QueueClosed};
use super::session::{PublishSession, SessionConfig};
use super::transport::{self, ByteStream, TlsOptions};
use super::{RtmpError, RtmpUrl};
use crate::media::{AudioFrame, AudioSpecificConfig, AvcDecoderConfig, StreamMetadata, VideoFrame};
use crate::net::link::{self, LinkTuning};

/// How to publish.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PublishConfig {
    /// Limit for TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// Limit from the open socket to `NetStream.Publish.Start`.
    pub publish_timeout: Duration,
    /// Longest a write may make no progress before the connection is declared lost.
    pub write_timeout: Duration,
    /// Longest `finish` may spend sending what is still queued.
    pub flush_timeout: Duration,
    /// Media time the send queue may hold before `send_*` waits.
    pub max_queue_duration: Duration,
    /// Bytes the send queue may hold before `send_*` waits.
    pub max_queue_bytes: usize,
    /// Outgoing chunk size (at least 128; 4096 by default).
    pub chunk_size: u32,
    /// Microsecond time that maps to RTMP time 0; `None` takes the first frame's time.
    /// Use `Some(0)` to keep timestamps that already are on an RTMP timeline (FLV files).
    pub timestamp_origin_us: Option<i64>,
    /// Values for `onMetaData`.
    pub metadata: StreamMetadata,
    /// Trust settings for `rtmps://`.
    pub tls: TlsOptions,
    /// What to do when media waits too long: back-pressure (the default for a
    /// `Publisher`: files) or live dropping (the default of stream sessions).
    pub congestion: CongestionPolicy,
    /// A connection on which the server acknowledges nothing — data or TCP keepalive
    /// probes — for this long counts as lost even while nothing is sent (2 s); `None`
    /// keeps the system's TCP defaults (many minutes).
    pub dead_link_timeout: Option<Duration>,
    /// The highest video bitrate to recommend (the encoder's target), bits per second;
    /// `None` takes `metadata.video_bitrate_kbps`, else 6 Mbit/s.
    pub max_video_bitrate: Option<u64>,
}

impl Default for PublishConfig {
    fn default() -> Self {
        PublishConfig {
            connect_timeout: Duration::from_secs(10),
            publish_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            flush_timeout: Duration::from_secs(10),
            max_queue_duration: Duration::from_secs(2),
            max_queue_bytes: 32 << 20,
            chunk_size: 4096,
            timestamp_origin_us: None,
            metadata: StreamMetadata::default(),
            tls: TlsOptions::default(),
            congestion: CongestionPolicy::back_pressure(),
            dead_link_timeout: Some(Duration::from_secs(2)),
            max_video_bitrate: None,
        }
    }
}

/// Counters of a publish, readable at any time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishStats {
    /// Video frames written to the connection.
    pub video_frames: u64,
    /// Audio frames written to the connection.
    pub audio_frames: u64,
    /// Bytes written to the connection, RTMP framing included.
    pub bytes_sent: u64,
    /// Time from the start of `connect` to `NetStream.Publish.Start`.
    pub connect_time: Duration,
    /// Time since the stream went live.
    pub live_time: Duration,
    /// The link as last measured: waiting media, delivered rate, recommended bitrate,
    /// RTT, video frames dropped.
    pub congestion: CongestionReport,
}

#[derive(Debug, Default)]
struct Counters {
    video_frames: AtomicU64,
    audio_frames: AtomicU64,
    bytes_sent: AtomicU64,
}

/// A live RTMP publish.
#[derive(Debug)]
pub struct Publisher {
    packetizer: Mutex<Packetizer>,
    queue: Arc<MediaQueue>,
    counters: Arc<Counters>,
    link: Arc<Mutex<LinkState>>,
    closed: tokio::sync::watch::Receiver<Option<String>>,
    driver: Option<JoinHandle<Result<(), RtmpError>>>,
    connect_time: Duration,
    live_since: Instant,
}

impl Publisher {
    /// Connects to `url` and negotiates the publish; returns once the server has sent
    /// `NetStream.Publish.Start`, or with the server's refusal.
    pub async fn connect(url: &str, config: PublishConfig) -> Result<Self, RtmpError> {
        let url = RtmpUrl::parse(url)?;
        let span = info_span!("rtmp_publish", url = %url);
        Self::connect_url(url, config).instrument(span).await
    }

    /// [`Publisher::connect`] with an already parsed URL.
    pub async fn connect_url(url: RtmpUrl, config: PublishConfig) -> Result<Self, RtmpError> {
        config
            .congestion
            .check()
            .map_err(RtmpError::InvalidConfig)?;
        let started = Instant::now();
        let stream = transport::open(&url, &config.tls, config.connect_timeout).await?;
        stream.tune(LinkTuning {
            unsent_limit: config
                .congestion
                .live
                .then_some(config.congestion.socket_unsent_limit),
            dead_after: config.dead_link_timeout,
        });
        let session_config = SessionConfig {
            chunk_size: config.chunk_size.max(128),
            ..SessionConfig::default()
        };
        let session = PublishSession::new(url, session_config)?;
        let (stream, session) =
            tokio::time::timeout(config.publish_timeout, negotiate(stream, session))
                .await
                .map_err(|_| RtmpError::Timeout {
                    stage: "RTMP handshake and publish",
                    after: config.publish_timeout,
                })??;
        let connect_time = started.elapsed();
        info!(?connect_time, "stream is live");

        let queue = Arc::new(MediaQueue::with_policy(
            config.max_queue_duration,
            config.max_queue_bytes,
            config.congestion,
        ));
        let counters = Arc::new(Counters::default());
        let max_bps = config.max_video_bitrate.unwrap_or_else(|| {
            config
                .metadata
                .video_bitrate_kbps
                .map_or(6_000_000, |kbps| (kbps * 1000.0) as u64)
        });
        let link = Arc::new(Mutex::new(LinkState::new(max_bps)));
        let (closed_tx, closed) = tokio::sync::watch::channel(None);
        let liveness = config.dead_link_timeout.map(Liveness::for_timeout);
        let batch_bytes = if config.congestion.live {
            16 * 1024
        } else {
            256 * 1024
        };
        let driver = tokio::spawn(
            drive(
                stream,
                session,
                Shared {
                    queue: queue.clone(),
                    counters: counters.clone(),
                    link: link.clone(),
                    closed: closed_tx,
                },
                Timing {
                    write_timeout: config.write_timeout,
                    flush_timeout: config.flush_timeout,
                    batch_bytes,
                    liveness,
                },
            )
            .instrument(tracing::Span::current()),
        );
        Ok(Publisher {
            packetizer: Mutex::new(Packetizer::new(config.timestamp_origin_us, config.metadata)),
            queue,
            counters,
            link,
            closed,
            driver: Some(driver),
            connect_time,
            live_since: Instant::now(),
        })
    }

    fn packetize<T>(
        &self,
        f: impl FnOnce(&mut Packetizer) -> Result<T, crate::media::MediaError>,
    ) -> Result<T, RtmpError> {
        let mut packetizer = crate::sync::lock(&self.packetizer);
        Ok(f(&mut packetizer)?)
    }

    async fn enqueue(&self, messages: Vec<MediaMessage>) -> Result<(), RtmpError> {
        self.queue
            .push(messages)
            .await
            .map_err(|closed| match closed {
                QueueClosed::Finished => RtmpError::Closed,
                QueueClosed::Failed(reason) => RtmpError::ConnectionLost { reason },
            })
    }

    /// Sends one H.264 frame, waiting while the send queue is full. A frame the
    /// packetizer refuses returns [`RtmpError::Media`] and leaves the stream intact.
    pub async fn send_video(&self, frame: &VideoFrame) -> Result<(), RtmpError> {
        let messages = self.packetize(|p| p.video(frame))?;
        self.enqueue(messages).await
    }

    /// Sends one AAC frame (or a run of ADTS frames), waiting while the queue is full.
    pub async fn send_audio(&self, frame: &AudioFrame) -> Result<(), RtmpError> {
        let messages = self.packetize(|p| p.audio(frame))?;
        self.enqueue(messages).await
    }

    /// Sets the H.264 configuration explicitly (instead of in-band SPS/PPS).
    pub fn set_video_config(&self, config: AvcDecoderConfig) {
        let mut packetizer = crate::sync::lock(&self.packetizer);
        packetizer.set_video_config(config);
    }

    /// Sets the AAC configuration explicitly (required for raw AAC frames).
    pub fn set_audio_config(&self, config: AudioSpecificConfig) {
        let mut packetizer = crate::sync::lock(&self.packetizer);
        packetizer.set_audio_config(config);
    }

    /// Audio and video frames still in the send queue (not written to the socket).
    pub fn queued_frames(&self) -> u64 {
        self.queue.queued_frames()
    }

    /// Media time currently waiting in the send queue.
    pub fn queued_duration(&self) -> Duration {
        self.queue.queued_span()
    }

    /// Resolves when the connection is lost (the server closed it, a reset, or a dead
    /// link: nothing acknowledged for [`PublishConfig::dead_link_timeout`]), with why;
    /// also while the app sends nothing. Never resolves for a clean [`finish`](Self::finish).
    pub fn closed(&self) -> impl std::future::Future<Output = RtmpError> + Send + 'static {
        let closed = self.closed.clone();
        // The driver ended without a loss (finished): never resolves.
        async move {
            RtmpError::ConnectionLost {
                reason: reason_when_set(closed).await,
            }
        }
    }

    /// The app's encoder now runs at `bps` (for example after following
    /// [`CongestionReport::recommended_bps`]): later recommendations start from there.
    pub fn set_encoder_bitrate(&self, bps: u64) {
        crate::sync::lock(&self.link).estimator.encoder_bitrate(bps);
    }

    /// The link as last measured (every 100 ms while live).
    pub fn congestion(&self) -> CongestionReport {
        let mut report = crate::sync::lock(&self.link).report;
        report.waiting = self.queue.waiting();
        report.peak_waiting = self.queue.peak_waiting();
        report.dropped = self.queue.drops();
        report
    }

    /// Counters so far.
    pub fn stats(&self) -> PublishStats {
        PublishStats {
            video_frames: self.counters.video_frames.load(Ordering::Relaxed),
            audio_frames: self.counters.audio_frames.load(Ordering::Relaxed),
            bytes_sent: self.counters.bytes_sent.load(Ordering::Relaxed),
            connect_time: self.connect_time,
            live_time: self.live_since.elapsed(),
            congestion: self.congestion(),
        }
    }

    /// Sends everything still queued (bounded by the flush timeout), unpublishes and
    /// closes. Returns the final counters, or the error that ended the stream.
    pub async fn finish(mut self) -> Result<PublishStats, RtmpError> {
        self.queue.close(QueueClosed::Finished);
        let driver = self.driver.take().ok_or(RtmpError::Closed)?;
        match driver.await {
            Ok(result) => result?,
            Err(join) => {
                return Err(RtmpError::ConnectionLost {
                    reason: format!("publisher task failed: {join}"),
                });
            }
        }
        Ok(self.stats())
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        // Dropping without `finish` ends the stream in the background: what is queued is
        // still sent (bounded by the flush timeout), then the stream is unpublished.
        self.queue.close(QueueClosed::Finished);
    }
}

/// Handshake and publish negotiation on the unsplit stream.
async fn negotiate(
    mut stream: Box<dyn ByteStream>,
    mut session: PublishSession,
) -> Result<(Box<dyn ByteStream>, PublishSession), RtmpError> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if let Some(out) = session.take_output() {
            stream
                .write_all(&out)
                .await
                .map_err(|e| lost_during(&session, e))?;
        }
        if session.is_live() {
            return Ok((stream, session));
        }
        stream.quickack();
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| lost_during(&session, e))?;
        if n == 0 {
            return Err(session.closed_by_server());
        }
        session.handle_input(&buf[..n])?;
    }
}

/// A socket error before the stream is live: the server refusing by reset reads the
/// same as one that closes.
fn lost_during(session: &PublishSession, error: std::io::Error) -> RtmpError {
    debug!(%error, state = ?session.state(), "socket error during negotiation");
    session.closed_by_server()
}

enum Incoming {
    Data(Bytes),
    Eof,
    Error(std::io::Error),
}

fn spawn_reader(mut read: ReadHalf<Box<dyn ByteStream>>) -> mpsc::Receiver<Incoming> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let item = match read.read(&mut buf).await {
                Ok(0) => Incoming::Eof,
                Ok(n) => Incoming::Data(Bytes::copy_from_slice(&buf[..n])),
                Err(e) => Incoming::Error(e),
            };
            let last = !matches!(item, Incoming::Data(_));
            if tx.send(item).await.is_err() || last {
                return;
            }
        }
    });
    rx
}

/// What the estimator knows, shared between the link poller and the `Publisher`.
#[derive(Debug)]
struct LinkState {
    estimator: BitrateEstimator,
    report: CongestionReport,
}

impl LinkState {
    fn new(max_bps: u64) -> Self {
        let estimator = BitrateEstimator::new(EstimatorConfig::new(max_bps));
        let report = CongestionReport {
            recommended_bps: estimator.recommended_bps(),
            ..CongestionReport::default()
        };
        LinkState { estimator, report }
    }
}

/// What the driver shares with the `Publisher`.
struct Shared {
    queue: Arc<MediaQueue>,
    counters: Arc<Counters>,
    link: Arc<Mutex<LinkState>>,
    closed: tokio::sync::watch::Sender<Option<String>>,
}

/// What ends a connection whose server stopped acknowledging (set by the poller).
type DeadLink = tokio::sync::watch::Sender<Option<String>>;

/// The reason once one is set; never resolves if the sender goes away without one.
async fn reason_when_set(mut rx: tokio::sync::watch::Receiver<Option<String>>) -> String {
    let reason = rx
        .wait_for(Option::is_some)
        .await
        .ok()
        .and_then(|reason| reason.clone());
    match reason {
        Some(reason) => reason,
        None => std::future::pending().await,
    }
}

/// How often the link poller reads `TCP_INFO`.
const LINK_POLL: Duration = Duration::from_millis(100);

/// Pending bytes above which the link counts as the bottleneck.
const BACKLOG_BYTES: u64 = 16 * 1024;

/// Reads `TCP_INFO` every [`LINK_POLL`]: acknowledged bytes tell the queue what was
/// delivered and feed the bitrate estimator. Ends when aborted (before the socket is
/// dropped: it reads the socket's descriptor).
async fn poll_link(
    fd: link::SocketFd,
    queue: Arc<MediaQueue>,
    counters: Arc<Counters>,
    state: Arc<Mutex<LinkState>>,
    dead: DeadLink,
    stall_limit: Option<Duration>,
) {
    let Some(start) = link::read_tcp_info_fd(&fd) else {
        debug!("no TCP_INFO here: no delivery measurements");
        return;
    };
    // Everything written before the stream went live was acknowledged by then (the
    // server answered the publish): the acknowledged bytes from here on are ours.
    let base = start.bytes_acked;
    let mut capacity = CapacityFilter::default();
    // The last time the server was seen to keep up: an acknowledgement arrived, or
    // nothing was waiting for one.
    let mut last_progress = Instant::now();
    let mut last_acked = start.bytes_acked;
    let mut interval = tokio::time::interval(LINK_POLL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        interval.tick().await;
        let Some(info) = link::read_tcp_info_fd(&fd) else {
            continue;
        };
        let now = Instant::now();
        if info.bytes_acked > last_acked || (info.unacked == 0 && info.notsent_bytes == 0) {
            last_progress = now;
        }
        last_acked = info.bytes_acked;
        if let Some(limit) = stall_limit
            && now.duration_since(last_progress) >= limit
        {
            dead.send_replace(Some(format!(
                "the server acknowledged nothing for {:?}",
                now.duration_since(last_progress)
            )));
            return;
        }
        let acked = info.bytes_acked.saturating_sub(base);
        // Control messages (acknowledgements, pongs) are written too; take them off so
        // that the offsets match the media messages'.
        let control = counters
            .bytes_sent
            .load(Ordering::Relaxed)
            .saturating_sub(queue.written_bytes());
        queue.delivered(acked.saturating_sub(control));
        // A rate measured while the link had a backlog is what the link carries; one
        // measured while the app sent little says nothing about the link.
        let backlogged = queue.pending_bytes() > BACKLOG_BYTES;
        capacity.sample(now, acked, backlogged);
        let link_capacity = capacity.estimate();
        queue.set_link_capacity(link_capacity);
        let waiting = queue.waiting();
        trace!(
            acked,
            unacked_segments = info.unacked,
            notsent = info.notsent_bytes,
            rtt_ms = info.rtt.as_millis() as u64,
            rto_ms = info.rto.as_millis() as u64,
            retransmitted = info.total_retrans,
            pending = queue.pending_bytes(),
            capacity_bps = link_capacity,
            waiting_ms = waiting.as_millis() as u64,
            "link"
        );
        let mut state = crate::sync::lock(&state);
        let estimate = state.estimator.sample(LinkSample {
            at: Instant::now(),
            delivered_bytes: acked,
            rtt: Some(info.rtt),
            waiting,
            audio_bytes: queue.audio_bytes(),
            capacity_bps: link_capacity,
        });
        state.report.delivered_bps = estimate.delivered_bps;
        state.report.recommended_bps = estimate.recommended_bps;
        state.report.rtt = Some(info.rtt);
    }
}

struct Driver {
    write: WriteHalf<Box<dyn ByteStream>>,
    session: PublishSession,
    counters: Arc<Counters>,
    queue: Arc<MediaQueue>,
    write_timeout: Duration,
}

impl Driver {
    async fn flush(&mut self) -> Result<(), RtmpError> {
        while let Some(out) = self.session.take_output() {
            match tokio::time::timeout(self.write_timeout, self.write.write_all(&out)).await {
                Err(_) => {
                    return Err(RtmpError::ConnectionLost {
                        reason: format!("no write progress for {:?}", self.write_timeout),
                    });
                }
                Ok(Err(e)) => {
                    return Err(RtmpError::ConnectionLost {
                        reason: e.to_string(),
                    });
                }
                Ok(Ok(())) => {
                    self.counters
                        .bytes_sent
                        .fetch_add(out.len() as u64, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }

    fn on_incoming(&mut self, item: Option<Incoming>) -> Result<(), RtmpError> {
        match item {
            Some(Incoming::Data(data)) => self.session.handle_input(&data),
            Some(Incoming::Error(e)) => Err(RtmpError::ConnectionLost {
                reason: e.to_string(),
            }),
            Some(Incoming::Eof) | None => Err(self.session.closed_by_server()),
        }
    }

    fn write_batch(&mut self, batch: &mut Vec<MediaMessage>) -> Result<(), RtmpError> {
        for message in batch.drain(..) {
            let before = self.session.pending_output();
            self.session.write_media(&message)?;
            let wire = self.session.pending_output().saturating_sub(before);
            self.queue.written(message.timestamp, wire);
            if message.is_frame {
                let counter = match message.kind {
                    super::packetizer::MessageKind::Video => &self.counters.video_frames,
                    super::packetizer::MessageKind::Audio => &self.counters.audio_frames,
                    super::packetizer::MessageKind::Data => continue,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

/// How a dead link is noticed: a ping when nothing was written for `ping_after`, and
/// the link counts as dead when data waits `stall_limit` for an acknowledgement. For a
/// timeout T: pings after T/8 of silence, dead after T − T/8 − 200 ms (two polls) of no
/// acknowledgement, so that a link that died while idle is noticed within T.
#[derive(Debug, Clone, Copy)]
struct Liveness {
    ping_after: Duration,
    stall_limit: Duration,
}

impl Liveness {
    fn for_timeout(timeout: Duration) -> Self {
        let ping_after = timeout / 8;
        Liveness {
            ping_after,
            stall_limit: timeout
                .saturating_sub(ping_after + 2 * LINK_POLL)
                .max(LINK_POLL),
        }
    }
}

/// The driver's time limits.
struct Timing {
    write_timeout: Duration,
    flush_timeout: Duration,
    batch_bytes: usize,
    liveness: Option<Liveness>,
}

async fn drive(
    stream: Box<dyn ByteStream>,
    session: PublishSession,
    shared: Shared,
    timing: Timing,
) -> Result<(), RtmpError> {
    let Timing {
        write_timeout,
        flush_timeout,
        batch_bytes,
        liveness,
    } = timing;
    let (dead_tx, dead) = tokio::sync::watch::channel(None);
    let poller = stream.socket_fd().map(|fd| {
        tokio::spawn(poll_link(
            fd,
            shared.queue.clone(),
            shared.counters.clone(),
            shared.link.clone(),
            dead_tx,
            liveness.map(|l| l.stall_limit),
        ))
    });
    let (read, write) = tokio::io::split(stream);
    let mut incoming = spawn_reader(read);
    let queue = shared.queue.clone();
    let mut driver = Driver {
        write,
        session,
        counters: shared.counters.clone(),
        queue: queue.clone(),
        write_timeout,
    };
    let result = tokio::select! {
        result = stream_media(
            &mut driver,
            &mut incoming,
            &queue,
            flush_timeout,
            batch_bytes,
            liveness.map(|l| l.ping_after),
        ) => result,
        reason = reason_when_set(dead) => Err(RtmpError::ConnectionLost { reason }),
    };
    if let Some(poller) = poller {
        // Stopped before the socket (whose descriptor it reads) can be dropped.
        poller.abort();
        let _ = poller.await;
    }
    if let Err(e) = &result {
        warn!(error = %e, "publish ended with an error");
        queue.close(QueueClosed::Failed(e.to_string()));
        shared.closed.send_replace(Some(e.to_string()));
        return result;
    }
    // Unpublish, half-close, and wait (bounded) for the server to close its side, so
    // that everything we wrote has been read before we report success.
    driver.session.finish()?;
    driver.flush().await?;
    let _ = driver.write.shutdown().await;
    let deadline = tokio::time::sleep(Duration::from_secs(2));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            item = incoming.recv() => match item {
                Some(Incoming::Data(_)) => continue,
                _ => break,
            },
            _ = &mut deadline => {
                debug!("server did not close within 2 s after unpublish");
                break;
            }
        }
    }
    info!("publish finished");
    Ok(())
}

async fn stream_media(
    driver: &mut Driver,
    incoming: &mut mpsc::Receiver<Incoming>,
    queue: &MediaQueue,
    flush_timeout: Duration,
    batch_bytes: usize,
    ping_after: Option<Duration>,
) -> Result<(), RtmpError> {
    let mut batch = Vec::with_capacity(64);
    let mut flush_deadline: Option<tokio::time::Instant> = None;
    let started = tokio::time::Instant::now();
    let mut last_write = started;
    loop {
        let ping_at = ping_after.map(|after| last_write + after);
        tokio::select! {
            biased;
            item = incoming.recv() => driver.on_incoming(item)?,
            _ = queue.ready() => {}
            _ = async {
                match ping_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                let ms = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
                driver.session.ping(ms)?;
            }
        }
        if driver.session.pending_output() > 0 {
            last_write = tokio::time::Instant::now();
        }
        // Anything the server sent that is already buffered is handled first.
        while let Ok(item) = incoming.try_recv() {
            driver.on_incoming(Some(item))?;
        }
        queue.pop_batch(&mut batch, batch_bytes);
        driver.write_batch(&mut batch)?;
        if queue.is_drained() && flush_deadline.is_none() {
            flush_deadline = Some(tokio::time::Instant::now() + flush_timeout);
        }
        match flush_deadline {
            Some(deadline) => {
                let pending = driver.session.pending_output();
                tokio::time::timeout_at(deadline, driver.flush())
                    .await
                    .map_err(|_| RtmpError::Timeout {
                        stage: "flushing queued media",
                        after: flush_timeout,
                    })
                    .inspect_err(|_| warn!(pending, "flush deadline passed"))??;
                if queue.is_drained() {
                    return Ok(());
                }
            }
            None => driver.flush().await?,
        }
    }
}
