//! Where `streamhub publish` sends its tags: one RTMP connection, or, with `--backup`,
//! a broadcast session that reconnects and moves to the next ingest when one fails.

use std::time::Duration;

use streamhub::media::{AudioFrame, AudioSpecificConfig, AvcDecoderConfig, VideoFrame};
use streamhub::rtmp::{CongestionReport, PublishConfig, Publisher};
use streamhub::session::{
    BroadcastConfig, SessionEvent, SessionEvents, SessionState, StreamSession,
};

use crate::progress::Notes;

/// The counters the progress line, `--stats` and `--json` show.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    /// Bytes written to the ingests, RTMP framing included.
    pub bytes: u64,
    /// Video frames written.
    pub video_frames: u64,
    /// Audio frames written.
    pub audio_frames: u64,
    /// The link of the current connection (drops: of every connection).
    pub congestion: CongestionReport,
    /// The live ingest: 0 for the URL, then the backups in order.
    pub ingest: usize,
    /// Connections lost and made again.
    pub reconnects: u32,
    /// Frames dropped while no ingest was live (with `--backup`).
    pub dropped_offline: u64,
}

/// One connection, or a session over the URL and its backups.
pub enum Sink {
    /// A single publish: any failure ends the command.
    Direct(Box<Publisher>),
    /// `--backup`: a broadcast session.
    Session(StreamSession),
}

impl Sink {
    /// Connects to `url` alone, or, with backups, starts a session and waits until one
    /// of the ingests is live (or all failed); events are shown as notes.
    pub async fn connect(
        url: &str,
        backups: &[String],
        publish: PublishConfig,
        notes: Notes,
    ) -> Result<Sink, String> {
        if backups.is_empty() {
            return Publisher::connect(url, publish)
                .await
                .map(|p| Sink::Direct(Box::new(p)))
                .map_err(|e| e.to_string());
        }
        let mut config = BroadcastConfig::new(url);
        config.backup_urls = backups.to_vec();
        // Each attempt is bounded by the publish config's own timeouts.
        let first_try = (publish.connect_timeout + publish.publish_timeout)
            * config.attempts_per_ingest
            * (backups.len() as u32 + 1);
        config.publish = publish;
        let (session, events) = StreamSession::broadcast(config).map_err(|e| e.to_string())?;
        tokio::spawn(show_events(events, notes));
        let state = session
            .wait_for_state(first_try + Duration::from_secs(5), |s| {
                *s == SessionState::Live || s.is_terminal()
            })
            .await;
        match state {
            SessionState::Live => Ok(Sink::Session(session)),
            SessionState::Failed { reason } => Err(reason.to_string()),
            other => {
                let _ = session.stop().await;
                Err(format!("no ingest went live ({other:?})"))
            }
        }
    }

    /// Sets the H.264 configuration (kept across reconnects with `--backup`).
    pub fn set_video_config(&self, config: AvcDecoderConfig) -> Result<(), String> {
        match self {
            Sink::Direct(p) => {
                p.set_video_config(config);
                Ok(())
            }
            Sink::Session(s) => s.set_video_config(config).map_err(|e| e.to_string()),
        }
    }

    /// Sets the AAC configuration.
    pub fn set_audio_config(&self, config: AudioSpecificConfig) -> Result<(), String> {
        match self {
            Sink::Direct(p) => {
                p.set_audio_config(config);
                Ok(())
            }
            Sink::Session(s) => s.set_audio_config(config).map_err(|e| e.to_string()),
        }
    }

    /// Sends one video frame.
    pub async fn send_video(&self, frame: &VideoFrame) -> Result<(), String> {
        match self {
            Sink::Direct(p) => p.send_video(frame).await.map_err(|e| e.to_string()),
            Sink::Session(s) => s.send_video(frame).await.map_err(|e| e.to_string()),
        }
    }

    /// Sends one audio frame.
    pub async fn send_audio(&self, frame: &AudioFrame) -> Result<(), String> {
        match self {
            Sink::Direct(p) => p.send_audio(frame).await.map_err(|e| e.to_string()),
            Sink::Session(s) => s.send_audio(frame).await.map_err(|e| e.to_string()),
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        match self {
            Sink::Direct(p) => {
                let stats = p.stats();
                Snapshot {
                    bytes: stats.bytes_sent,
                    video_frames: stats.video_frames,
                    audio_frames: stats.audio_frames,
                    congestion: stats.congestion,
                    ..Snapshot::default()
                }
            }
            Sink::Session(s) => of_session(&s.stats()),
        }
    }

    /// Ends the stream cleanly (what is queued is sent) and returns the last counters.
    pub async fn finish(self) -> Result<Snapshot, String> {
        match self {
            Sink::Direct(p) => {
                let stats = p.finish().await.map_err(|e| e.to_string())?;
                Ok(Snapshot {
                    bytes: stats.bytes_sent,
                    video_frames: stats.video_frames,
                    audio_frames: stats.audio_frames,
                    congestion: stats.congestion,
                    ..Snapshot::default()
                })
            }
            Sink::Session(s) => {
                let stats = s.stop().await;
                match &stats.state {
                    SessionState::Failed { reason } => Err(reason.to_string()),
                    _ => Ok(of_session(&stats)),
                }
            }
        }
    }
}

fn of_session(stats: &streamhub::session::SessionStats) -> Snapshot {
    let congestion = stats.congestion.unwrap_or_default();
    Snapshot {
        bytes: stats.bytes,
        video_frames: stats.video_frames,
        audio_frames: stats.audio_frames,
        dropped_offline: stats
            .frames_dropped
            .saturating_sub(congestion.dropped.total()),
        congestion,
        ingest: stats.ingest,
        reconnects: stats.reconnects,
    }
}

/// Shows which ingest is live and why a connection was lost, one line each.
async fn show_events(mut events: SessionEvents, notes: Notes) {
    while let Some(event) = events.next().await {
        match event {
            SessionEvent::IngestLive { index, url } => {
                let which = if index == 0 {
                    "the primary ingest".to_string()
                } else {
                    format!("backup {index}")
                };
                notes.show(&format!("live on {which}: {url}"));
            }
            SessionEvent::StateChanged(SessionState::Reconnecting {
                attempt, reason, ..
            }) => notes.show(&format!("reconnecting (attempt {attempt}): {reason}")),
            _ => {}
        }
    }
}
