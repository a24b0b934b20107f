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
use tracing::{Instrument, debug, info, info_span, warn};

use super::packetizer::{MediaMessage, Packetizer};
use super::queue::{MediaQueue, QueueClosed};
use super::session::{PublishSession, SessionConfig};
use super::transport::{self, ByteStream, TlsOptions};
use super::{RtmpError, RtmpUrl};
use crate::media::{AudioFrame, AudioSpecificConfig, AvcDecoderConfig, StreamMetadata, VideoFrame};

/// How to publish.
#[derive(Debug, Clone)]
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
        }
    }
}

/// Counters of a publish, readable at any time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
        let started = Instant::now();
        let stream = transport::open(&url, &config.tls, config.connect_timeout).await?;
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

        let queue = Arc::new(MediaQueue::new(
            config.max_queue_duration,
            config.max_queue_bytes,
        ));
        let counters = Arc::new(Counters::default());
        let driver = tokio::spawn(
            drive(
                stream,
                session,
                queue.clone(),
                counters.clone(),
                config.write_timeout,
                config.flush_timeout,
            )
            .instrument(tracing::Span::current()),
        );
        Ok(Publisher {
            packetizer: Mutex::new(Packetizer::new(config.timestamp_origin_us, config.metadata)),
            queue,
            counters,
            driver: Some(driver),
            connect_time,
            live_since: Instant::now(),
        })
    }

    fn packetize<T>(
        &self,
        f: impl FnOnce(&mut Packetizer) -> Result<T, crate::media::MediaError>,
    ) -> Result<T, RtmpError> {
        let mut packetizer = self.packetizer.lock().unwrap_or_else(|e| e.into_inner());
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
        let mut packetizer = self.packetizer.lock().unwrap_or_else(|e| e.into_inner());
        packetizer.set_video_config(config);
    }

    /// Sets the AAC configuration explicitly (required for raw AAC frames).
    pub fn set_audio_config(&self, config: AudioSpecificConfig) {
        let mut packetizer = self.packetizer.lock().unwrap_or_else(|e| e.into_inner());
        packetizer.set_audio_config(config);
    }

    /// Media time currently waiting in the send queue.
    pub fn queued_duration(&self) -> Duration {
        self.queue.queued_span()
    }

    /// Counters so far.
    pub fn stats(&self) -> PublishStats {
        PublishStats {
            video_frames: self.counters.video_frames.load(Ordering::Relaxed),
            audio_frames: self.counters.audio_frames.load(Ordering::Relaxed),
            bytes_sent: self.counters.bytes_sent.load(Ordering::Relaxed),
            connect_time: self.connect_time,
            live_time: self.live_since.elapsed(),
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

struct Driver {
    write: WriteHalf<Box<dyn ByteStream>>,
    session: PublishSession,
    counters: Arc<Counters>,
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
            self.session.write_media(&message)?;
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

async fn drive(
    stream: Box<dyn ByteStream>,
    session: PublishSession,
    queue: Arc<MediaQueue>,
    counters: Arc<Counters>,
    write_timeout: Duration,
    flush_timeout: Duration,
) -> Result<(), RtmpError> {
    let (read, write) = tokio::io::split(stream);
    let mut incoming = spawn_reader(read);
    let mut driver = Driver {
        write,
        session,
        counters,
        write_timeout,
    };
    let result = stream_media(&mut driver, &mut incoming, &queue, flush_timeout).await;
    if let Err(e) = &result {
        warn!(error = %e, "publish ended with an error");
        queue.close(QueueClosed::Failed(e.to_string()));
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
) -> Result<(), RtmpError> {
    let mut batch = Vec::with_capacity(64);
    let mut flush_deadline: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            biased;
            item = incoming.recv() => driver.on_incoming(item)?,
            _ = queue.ready() => {}
        }
        // Anything the server sent that is already buffered is handled first.
        while let Ok(item) = incoming.try_recv() {
            driver.on_incoming(Some(item))?;
        }
        queue.pop_batch(&mut batch, 256 * 1024);
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
