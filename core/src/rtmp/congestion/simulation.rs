//! The congestion machinery as a whole — the live send queue with its dropper, the
//! capacity filter and the bitrate estimator, wired as the publisher's driver and link
//! poller wire them — on a simulated link, under tokio's paused clock: a 4 Mbit/s
//! camera (30 fps, B-frames, GOP 2 s, AAC) over a capped, lifted and oscillating link.
//! The integration test `cli/tests/alone/throttle.rs` runs the same scenario over a real,
//! shaped TCP link.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::{BitrateEstimator, CapacityFilter, CongestionPolicy, EstimatorConfig, LinkSample};
use crate::rtmp::packetizer::{MediaMessage, MessageKind};
use crate::rtmp::queue::MediaQueue;

/// The simulation's clock step.
const TICK: Duration = Duration::from_millis(5);
/// The link poller's period (as `LINK_POLL` in the publisher).
const POLL: Duration = Duration::from_millis(100);
/// Bytes the socket may hold unsent, as `TCP_NOTSENT_LOWAT` in live mode.
const SOCKET_UNSENT: u64 = 16 * 1024;
/// Pending bytes above which the link counts as the bottleneck (as in the publisher).
const BACKLOG_BYTES: u64 = 16 * 1024;
const RTT: Duration = Duration::from_millis(40);

/// The camera: 30 fps, a keyframe every 60 frames, `I P B B P B B …` with the B-frames
/// disposable, sized for about 4 Mbit/s; AAC frames of 1024 samples at 48 kHz, 128
/// kbit/s. The body's first 4 bytes number the video frames.
struct Camera {
    next_video: u32,
    next_audio: u32,
}

impl Camera {
    fn video_due_ms(n: u32) -> u32 {
        n * 1000 / 30
    }

    /// Frame `n` is a B-frame nothing refers to.
    fn disposable(n: u32) -> bool {
        !n.is_multiple_of(60) && n % 3 != 1
    }

    fn audio_due_ms(n: u32) -> u32 {
        n * 1024 * 1000 / 48_000
    }

    /// The frames due by `now_ms`, in timestamp order.
    fn due(&mut self, now_ms: u32) -> Vec<MediaMessage> {
        let mut out = Vec::new();
        loop {
            let video = Self::video_due_ms(self.next_video);
            let audio = Self::audio_due_ms(self.next_audio);
            if video.min(audio) > now_ms {
                return out;
            }
            if video <= audio {
                let n = self.next_video;
                let (keyframe, disposable) = (n.is_multiple_of(60), Self::disposable(n));
                let size = if keyframe {
                    90_000
                } else if disposable {
                    11_000
                } else {
                    20_000
                };
                let mut body = vec![0u8; size];
                body[..4].copy_from_slice(&n.to_be_bytes());
                out.push(MediaMessage {
                    kind: MessageKind::Video,
                    timestamp: video,
                    header: Bytes::from_static(&[0; 5]),
                    body: Bytes::from(body),
                    is_frame: true,
                    keyframe,
                    disposable,
                });
                self.next_video += 1;
            } else {
                out.push(MediaMessage {
                    kind: MessageKind::Audio,
                    timestamp: audio,
                    header: Bytes::from_static(&[0xaf, 1]),
                    body: Bytes::from(vec![1u8; 341]),
                    is_frame: true,
                    keyframe: false,
                    disposable: false,
                });
                self.next_audio += 1;
            }
        }
    }
}

/// What one run saw.
#[derive(Debug, Default)]
struct Run {
    /// (seconds since the start, the recommendation) every poll.
    recommended: Vec<(f64, u64)>,
    /// (seconds, capture-to-delivery delay) of every video frame delivered.
    delays: Vec<(f64, Duration)>,
    audio_sent: u32,
    audio_delivered: u32,
    /// Video frame numbers delivered, in order, with their keyframe flag.
    video_delivered: Vec<(u32, bool)>,
}

impl Run {
    fn max_delay(&self, from: f64, to: f64) -> Duration {
        self.delays
            .iter()
            .filter(|(t, _)| (from..to).contains(t))
            .map(|(_, d)| *d)
            .max()
            .unwrap_or_default()
    }

    /// The first time in `from..` the recommendation satisfies `ok`.
    fn first_recommendation(&self, from: f64, ok: impl Fn(u64) -> bool) -> Option<f64> {
        self.recommended
            .iter()
            .find(|(t, bps)| *t >= from && ok(*bps))
            .map(|(t, _)| t - from)
    }

    /// Every run of video after a gap that lost a frame others refer to starts at a
    /// keyframe (a gap of disposable frames only harms no other picture).
    fn assert_runs_start_at_keyframes(&self) {
        for pair in self.video_delivered.windows(2) {
            let ((a, _), (b, key)) = (pair[0], pair[1]);
            assert!(b > a, "video delivered out of order: {a} then {b}");
            if (a + 1..b).any(|lost| !Camera::disposable(lost)) {
                assert!(
                    key,
                    "video resumed at frame {b} after {a}, not at a keyframe"
                );
            }
        }
    }
}

/// Runs the camera for `seconds` over a link of `rate(t)` bits per second, with the
/// live policy, as the publisher does: the driver writes while the socket has room,
/// the link delivers, acknowledgements come back an RTT later, and every 100 ms the
/// poller updates the queue, the capacity filter and the estimator.
async fn simulate(seconds: u32, rate: impl Fn(f64) -> u64) -> Run {
    let queue =
        MediaQueue::with_policy(Duration::from_secs(10), 64 << 20, CongestionPolicy::live());
    let mut estimator = BitrateEstimator::new(EstimatorConfig::new(4_000_000));
    let mut capacity = CapacityFilter::default();
    let mut camera = Camera {
        next_video: 0,
        next_audio: 0,
    };
    let start = Instant::now();
    let mut run = Run::default();
    // Written messages not yet delivered: (end offset, timestamp, kind, frame number,
    // keyframe).
    let mut on_wire: VecDeque<(u64, u32, MessageKind, u32, bool)> = VecDeque::new();
    let (mut written, mut delivered) = (0u64, 0.0f64);
    // (time, bytes delivered by then), for acknowledgements an RTT later.
    let mut acks: VecDeque<(Instant, u64)> = VecDeque::new();
    let mut acked = 0u64;
    let mut next_poll = start + POLL;
    let mut batch = Vec::new();
    while start.elapsed() < Duration::from_secs(seconds.into()) {
        tokio::time::sleep(TICK).await;
        let now = Instant::now();
        let t = now.duration_since(start).as_secs_f64();
        let now_ms = now.duration_since(start).as_millis() as u32;
        for frame in camera.due(now_ms) {
            if frame.kind == MessageKind::Audio {
                run.audio_sent += 1;
            }
            queue.push(vec![frame]).await.expect("queue open");
        }
        // The driver writes while the socket's unsent bytes stay under the limit (the
        // kernel also holds what is in flight: about a bandwidth-delay product).
        let in_flight_room = SOCKET_UNSENT + rate(t) / 8 * RTT.as_millis() as u64 / 1000;
        while written.saturating_sub(delivered as u64) < in_flight_room {
            queue.pop_batch(&mut batch, 4096);
            if batch.is_empty() {
                break;
            }
            for m in batch.drain(..) {
                written += m.len() as u64;
                queue.written(m.timestamp, m.len());
                let number = u32::from_be_bytes(m.body[..4].try_into().unwrap_or([0; 4]));
                on_wire.push_back((written, m.timestamp, m.kind, number, m.keyframe));
            }
        }
        // The link delivers.
        delivered = (delivered + rate(t) as f64 / 8.0 * TICK.as_secs_f64()).min(written as f64);
        while on_wire.front().is_some_and(|m| m.0 <= delivered as u64) {
            let Some((_, ts, kind, number, keyframe)) = on_wire.pop_front() else {
                break;
            };
            if kind == MessageKind::Audio {
                run.audio_delivered += 1;
            } else {
                let captured = start + Duration::from_millis(ts.into());
                run.delays.push((t, now.duration_since(captured)));
                run.video_delivered.push((number, keyframe));
            }
        }
        acks.push_back((now, delivered as u64));
        while acks
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) >= RTT)
        {
            if let Some((_, bytes)) = acks.pop_front() {
                acked = bytes;
            }
        }
        // The link poller.
        if now >= next_poll {
            next_poll += POLL;
            queue.delivered(acked);
            let backlogged = queue.pending_bytes() > BACKLOG_BYTES;
            capacity.sample(now.into_std(), acked, backlogged);
            let link_capacity = capacity.estimate();
            queue.set_link_capacity(link_capacity);
            let estimate = estimator.sample(LinkSample {
                at: now.into_std(),
                delivered_bytes: acked,
                rtt: Some(RTT),
                waiting: queue.waiting(),
                audio_bytes: queue.audio_bytes(),
                capacity_bps: link_capacity,
            });
            run.recommended.push((t, estimate.recommended_bps));
        }
    }
    // Let the link finish what was written (audio included).
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && !on_wire.is_empty() {
        tokio::time::sleep(TICK).await;
        delivered = (delivered + 20e6 / 8.0 * TICK.as_secs_f64()).min(written as f64);
        while on_wire.front().is_some_and(|m| m.0 <= delivered as u64) {
            if let Some((_, _, MessageKind::Audio, _, _)) = on_wire.pop_front() {
                run.audio_delivered += 1;
            }
        }
    }
    // What is still queued goes out at the end too.
    let mut rest = Vec::new();
    queue.pop_batch(&mut rest, usize::MAX);
    run.audio_delivered += rest.iter().filter(|m| m.kind == MessageKind::Audio).count() as u32;
    run
}

/// The acceptance scenario: 1.5 Mbit/s for 20 s, then 20 Mbit/s for 20 s.
#[tokio::test(start_paused = true)]
async fn a_capped_then_lifted_link_keeps_the_delay_bounded_and_the_advice_right() {
    let run = simulate(40, |t| if t < 20.0 { 1_500_000 } else { 20_000_000 }).await;
    let worst = run.max_delay(0.0, 40.0);
    assert!(
        worst <= Duration::from_millis(1500),
        "delay reached {worst:?}"
    );
    assert!(
        run.max_delay(25.0, 40.0) < Duration::from_millis(300),
        "still {:?} 5 s after the lift",
        run.max_delay(25.0, 40.0)
    );
    assert_eq!(
        run.audio_delivered, run.audio_sent,
        "audio is never dropped"
    );
    run.assert_runs_start_at_keyframes();
    let cut = run
        .first_recommendation(0.0, |bps| bps < 1_500_000)
        .expect("the advice fell under the cap");
    assert!(cut <= 5.0, "advice under the cap after {cut} s");
    let raised = run
        .first_recommendation(20.0, |bps| bps > 3_500_000)
        .expect("the advice rose after the lift");
    assert!(
        raised <= 15.0,
        "advice above 3.5 Mbit/s {raised} s after the lift"
    );
    eprintln!(
        "figures: worst delay {worst:?}, {:?} after the lift; advice under the cap after \
         {cut:.1} s, above 3.5 Mbit/s {raised:.1} s after the lift; {} of {} video frames",
        run.max_delay(25.0, 40.0),
        run.video_delivered.len(),
        40 * 30
    );
    let under_cap = run
        .recommended
        .iter()
        .filter(|(t, _)| (5.0..20.0).contains(t))
        .all(|(_, bps)| *bps < 1_500_000);
    assert!(under_cap, "the advice stays under the cap while it holds");
}

/// A link that swings between 1 and 6 Mbit/s every 2 s: the delay stays bounded,
/// audio is whole, and the advice does not chase the high phases.
#[tokio::test(start_paused = true)]
async fn an_oscillating_link_keeps_the_delay_bounded_and_the_advice_steady() {
    let rate = |t: f64| {
        if ((t / 2.0) as u64).is_multiple_of(2) {
            1_000_000
        } else {
            6_000_000
        }
    };
    let run = simulate(40, rate).await;
    let worst = run.max_delay(0.0, 40.0);
    assert!(
        worst <= Duration::from_millis(1500),
        "delay reached {worst:?}"
    );
    assert_eq!(
        run.audio_delivered, run.audio_sent,
        "audio is never dropped"
    );
    run.assert_runs_start_at_keyframes();
    // After the first cut, the advice stays near what the slow phases carry (about
    // 3.5 Mbit/s on average, 1 Mbit/s at worst): it never returns to the camera's 4.
    let settled: Vec<u64> = run
        .recommended
        .iter()
        .filter(|(t, _)| *t >= 10.0)
        .map(|(_, bps)| *bps)
        .collect();
    let high = settled.iter().copied().max().unwrap_or(0);
    assert!(high < 4_000_000, "the advice went back to {high} bit/s");
}

/// A clear link: nothing is dropped, the delay stays at the link's own, and the
/// advice stays at the encoder's rate.
#[tokio::test(start_paused = true)]
async fn a_clear_link_drops_nothing() {
    let run = simulate(10, |_| 20_000_000).await;
    assert_eq!(run.audio_delivered, run.audio_sent);
    let frames = run.video_delivered.len();
    assert!(frames >= 295, "{frames} video frames delivered in 10 s");
    assert!(run.video_delivered.windows(2).all(|p| p[1].0 == p[0].0 + 1));
    assert!(run.max_delay(0.0, 10.0) < Duration::from_millis(200));
    assert!(run.recommended.iter().all(|(_, bps)| *bps == 4_000_000));
}
