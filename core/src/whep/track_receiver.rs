//! One remote track's receiving logic, sans I/O: the reorder buffer, loss handling,
//! depacketizing, the track's clock, keyframe-request cadence and the goodbye (RTCP BYE)
//! grace. Fed packets and times, it says what to hand to the app and what to send back;
//! the player's task around it owns the socket, the sleeps and the app's queue.
//!
//! In: [`TrackReceiver::push_rtp`], [`TrackReceiver::push_rtcp`],
//! [`TrackReceiver::handle_timeout`], [`TrackReceiver::frame_dropped`].
//! Out: [`TrackReceiver::poll_output`], [`TrackReceiver::poll_timeout`],
//! [`TrackReceiver::stats`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::rtcp::goodbye::Goodbye;
use rtc::rtcp::sender_report::SenderReport;

use super::clock::{SenderClock, TrackClock};
use super::depacketize::{
    AssembledFrame, Av1Depacketizer, H264Depacketizer, H265Depacketizer, RtpPayload,
    Vp8Depacketizer, Vp9Depacketizer,
};
use super::frame::{Codec, MediaFrame, MediaKind};
use super::jitter::{Arrival, JitterBuffer, JitterOutput};

/// How often missing video packets are asked for again (generic NACK).
pub(crate) const NACK_INTERVAL: Duration = Duration::from_millis(20);
/// How often a keyframe is asked for again while the picture is waiting for one.
const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(200);
/// Packets the reorder buffer holds at most.
const MAX_HELD_PACKETS: usize = 2048;

/// What a track needs to know about itself.
#[derive(Debug, Clone)]
pub struct TrackParams {
    /// Audio or video.
    pub kind: MediaKind,
    /// The negotiated codec.
    pub codec: Codec,
    /// The sender's SSRC for this track.
    pub ssrc: u32,
    /// The RTP clock rate (Hz).
    pub clock_rate: u32,
    /// The longest wait for a missing packet until repairs have been timed.
    pub latency: Duration,
    /// When the player started: frame timestamps count from here.
    pub started: Instant,
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum TrackOutput {
    /// Hand this frame to the app (if its queue is full, drop it and call
    /// [`TrackReceiver::frame_dropped`]).
    Frame(MediaFrame),
    /// Send a keyframe request for `media_ssrc`: a PLI, and a FIR with this sequence
    /// number when `fir` is set (some senders ignore PLI).
    RequestKeyframe {
        /// The SSRC whose keyframe is wanted.
        media_ssrc: u32,
        /// The FIR sequence number, with the first request only.
        fir: Option<u8>,
    },
    /// The sender said goodbye (RTCP BYE) and every frame it had sent was handed out:
    /// the track is over.
    Ended,
}

/// A track's counters so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackStats {
    /// RTP packets received (repairs and duplicates included).
    pub packets: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Packets given up on.
    pub lost: u64,
    /// Packets that arrived late enough to fill a gap (retransmissions, reordering).
    pub recovered: u64,
    /// Sender reports of this track's SSRC.
    pub sender_reports: u64,
    /// Keyframe requests asked for.
    pub keyframe_requests: u64,
    /// RFC 3550 interarrival jitter (µs).
    pub jitter_us: u64,
    /// How long a missing packet is waited for now (µs).
    pub reorder_target_us: u64,
}

/// The receiving side of one remote track.
#[derive(Debug)]
pub struct TrackReceiver {
    params: TrackParams,
    sender_clock: Arc<SenderClock>,
    assembler: Assembler,
    jitter: JitterBuffer<RtpPayload>,
    clock: TrackClock,
    meter: JitterMeter,
    next_keyframe_request: Instant,
    fir_seq: u8,
    pending_discontinuity: bool,
    /// The sender said goodbye: held packets are released at once (their wait is over).
    goodbye: bool,
    /// The goodbye was handled and `Ended` queued: nothing more is taken.
    ended: bool,
    outputs: VecDeque<TrackOutput>,
    stats: TrackStats,
}

impl TrackReceiver {
    /// A receiver for a track that starts at `now`; `answer_sdp` is the answer (H.264
    /// and H.265 take parameter sets it signals). Video that needs a keyframe asks for
    /// one at once.
    pub fn new(
        params: TrackParams,
        answer_sdp: &str,
        sender_clock: Arc<SenderClock>,
        now: Instant,
    ) -> Self {
        let assembler = match params.codec {
            Codec::H264 => Assembler::H264(H264Depacketizer::with_sdp(answer_sdp)),
            Codec::H265 => Assembler::H265(H265Depacketizer::with_sdp(answer_sdp)),
            Codec::Vp8 => Assembler::Vp8(Vp8Depacketizer::new()),
            Codec::Vp9 => Assembler::Vp9(Vp9Depacketizer::new()),
            Codec::Av1 => Assembler::Av1(Av1Depacketizer::new()),
            Codec::Opus => Assembler::Opus,
            Codec::Other(_) => Assembler::Other,
        };
        let mut jitter = JitterBuffer::new(params.latency, MAX_HELD_PACKETS);
        if params.kind == MediaKind::Video {
            // Video is NACKed (audio is not: a late Opus packet is concealed instead).
            jitter.set_retry_interval(NACK_INTERVAL);
        }
        let clock = TrackClock::new(params.clock_rate);
        let mut receiver = TrackReceiver {
            params,
            sender_clock,
            assembler,
            jitter,
            clock,
            meter: JitterMeter::default(),
            next_keyframe_request: now,
            fir_seq: 0,
            pending_discontinuity: false,
            goodbye: false,
            ended: false,
            outputs: VecDeque::new(),
            stats: TrackStats::default(),
        };
        receiver.request_keyframe_if_due(now);
        receiver
    }

    /// An RTP packet of this track, received at `now`.
    pub fn push_rtp(&mut self, now: Instant, seq: u16, packet: RtpPayload) {
        if self.ended {
            return;
        }
        self.stats.packets += 1;
        self.stats.bytes += packet.payload.len() as u64;
        let timestamp = packet.timestamp;
        match self.jitter.push(seq, packet, now) {
            // Jitter (RFC 3550) is of packets as sent once: a repair arrives an RTT late
            // by design.
            Arrival::InOrder => {
                let since_start = now.saturating_duration_since(self.params.started);
                let jitter_us = self.meter.update(
                    since_start,
                    timestamp,
                    u64::from(self.params.clock_rate.max(1)),
                );
                self.stats.jitter_us = jitter_us;
                self.jitter.set_jitter(Duration::from_micros(jitter_us));
                self.stats.reorder_target_us = self.jitter.target().as_micros() as u64;
            }
            Arrival::Repaired => self.stats.recovered += 1,
            Arrival::Dropped => {}
        }
        self.advance(now);
    }

    /// RTCP packets received at `now`: sender reports of this track set its clock; a
    /// goodbye naming its SSRC ends it once the held packets are out.
    pub fn push_rtcp(&mut self, now: Instant, packets: &[Box<dyn rtc::rtcp::Packet>]) {
        if self.ended {
            return;
        }
        for packet in packets {
            let any = packet.as_any();
            if let Some(report) = any.downcast_ref::<SenderReport>()
                && report.ssrc == self.params.ssrc
            {
                self.stats.sender_reports += 1;
                let player_now_us = self.player_us(now);
                self.clock.on_sender_report(
                    report.rtp_time,
                    report.ntp_time,
                    player_now_us,
                    &self.sender_clock,
                );
            }
            if let Some(bye) = any.downcast_ref::<Goodbye>()
                && bye.sources.contains(&self.params.ssrc)
            {
                self.goodbye = true;
            }
        }
        self.advance(now);
    }

    /// The time from [`TrackReceiver::poll_timeout`] came (or any later time).
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.ended {
            self.advance(now);
        }
    }

    /// The app's queue was full and a frame was dropped: the next one says frames are
    /// missing before it.
    pub fn frame_dropped(&mut self) {
        self.pending_discontinuity = true;
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<TrackOutput> {
        self.outputs.pop_front()
    }

    /// When [`TrackReceiver::handle_timeout`] is due: a missing packet's wait or NACK
    /// retry, or the next keyframe request. `None` once the track ended.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.ended {
            return None;
        }
        let mut wake = self.jitter.next_deadline();
        if self.wants_keyframe() {
            wake = Some(wake.map_or(self.next_keyframe_request, |w| {
                w.min(self.next_keyframe_request)
            }));
        }
        wake
    }

    /// The counters so far.
    pub fn stats(&self) -> TrackStats {
        self.stats
    }

    /// Whether the track has ended (a goodbye, everything handed out).
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    fn player_us(&self, now: Instant) -> i64 {
        now.saturating_duration_since(self.params.started)
            .as_micros() as i64
    }

    fn wants_keyframe(&self) -> bool {
        self.params.kind == MediaKind::Video && self.assembler.needs_keyframe()
    }

    /// Hands out what is due at `now`, then asks for a keyframe if the picture waits.
    fn advance(&mut self, now: Instant) {
        // After a goodbye, packets still held for reordering are complete or never
        // coming: release them all, hand out what assembles, then end the track.
        let release_until = if self.goodbye {
            now + self.params.latency * 2
        } else {
            now
        };
        while let Some(out) = self.jitter.pop(release_until) {
            let packet = match out {
                JitterOutput::Packet(packet) => packet,
                JitterOutput::Lost(n) => {
                    tracing::debug!(
                        kind = ?self.params.kind,
                        packets = n,
                        wait = ?self.jitter.target(),
                        "missing packets given up"
                    );
                    self.stats.lost += n;
                    self.assembler.lost();
                    if self.params.kind == MediaKind::Audio {
                        self.pending_discontinuity = true;
                    }
                    continue;
                }
            };
            if let Some(frame) = self.assembler.push(&packet) {
                self.emit(now, frame);
            }
        }
        if self.goodbye {
            self.ended = true;
            self.outputs.push_back(TrackOutput::Ended);
            return;
        }
        self.request_keyframe_if_due(now);
    }

    fn emit(&mut self, now: Instant, frame: AssembledFrame) {
        tracing::trace!(
            ssrc = self.params.ssrc,
            ts = frame.timestamp,
            keyframe = frame.keyframe,
            "frame assembled"
        );
        let timestamp_us = self
            .clock
            .player_time_us(frame.timestamp, self.player_us(now));
        let discontinuity = frame.discontinuity || std::mem::take(&mut self.pending_discontinuity);
        self.outputs.push_back(TrackOutput::Frame(MediaFrame {
            kind: self.params.kind,
            codec: self.params.codec.clone(),
            data: frame.data,
            timestamp_us,
            keyframe: frame.keyframe,
            discontinuity,
        }));
    }

    fn request_keyframe_if_due(&mut self, now: Instant) {
        if !self.wants_keyframe() || now < self.next_keyframe_request {
            return;
        }
        // FIR with the first request (some senders ignore PLI), PLI every time.
        let fir = (self.fir_seq == 0).then_some(self.fir_seq);
        self.fir_seq = self.fir_seq.wrapping_add(1);
        self.stats.keyframe_requests += 1;
        self.next_keyframe_request = now + KEYFRAME_REQUEST_INTERVAL;
        self.outputs.push_back(TrackOutput::RequestKeyframe {
            media_ssrc: self.params.ssrc,
            fir,
        });
    }
}

/// The depacketizer of a track's codec.
#[derive(Debug)]
enum Assembler {
    H264(H264Depacketizer),
    H265(H265Depacketizer),
    Vp8(Vp8Depacketizer),
    Vp9(Vp9Depacketizer),
    Av1(Av1Depacketizer),
    Opus,
    Other,
}

impl Assembler {
    fn push(&mut self, packet: &RtpPayload) -> Option<AssembledFrame> {
        match self {
            Assembler::H264(d) => d.push(packet),
            Assembler::H265(d) => d.push(packet),
            Assembler::Vp8(d) => d.push(packet),
            Assembler::Vp9(d) => d.push(packet),
            Assembler::Av1(d) => d.push(packet),
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
            Assembler::H265(d) => d.lost(),
            Assembler::Vp8(d) => d.lost(),
            Assembler::Vp9(d) => d.lost(),
            Assembler::Av1(d) => d.lost(),
            Assembler::Opus | Assembler::Other => {}
        }
    }

    fn needs_keyframe(&self) -> bool {
        match self {
            Assembler::H264(d) => d.needs_keyframe(),
            Assembler::H265(d) => d.needs_keyframe(),
            Assembler::Vp8(d) => d.needs_keyframe(),
            Assembler::Vp9(d) => d.needs_keyframe(),
            Assembler::Av1(d) => d.needs_keyframe(),
            Assembler::Opus | Assembler::Other => false,
        }
    }
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

#[cfg(test)]
#[path = "track_receiver_tests.rs"]
mod tests;
