//! The congestion machinery as a whole — the live send queue with its dropper, the
//! capacity filter and the bitrate estimator, wired as the publisher's driver and link
//! poller wire them — on a simulated link, on a simulated clock (nothing sleeps: a run
//! of 40 s takes a few milliseconds, and the same inputs always give the same run).
//! The integration test `cli/tests/alone/throttle.rs` runs the first scenario over a real,
//! shaped TCP link.
//!
//! The link is a trace of segments (rate, round-trip time, bottleneck buffer); the
//! camera is a 30 fps H.264 source (keyframe interval, frame sizes, B-frames or not)
//! with 128 kbit/s AAC. Besides fixed scenarios, a property test runs thousands of
//! seeded random traces (caps, lifts, bursts, RTT changes, keyframe intervals from 0.5
//! to 10 s) and checks that once the link has carried the source with RTT under 100 ms
//! for 2 s, no new drop starts and every frame from the next keyframe on is delivered.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::FutureExt;

use super::{BitrateEstimator, CongestionPolicy, EstimatorConfig, LinkMonitor, LinkSample};
use crate::rtmp::packetizer::{MediaMessage, MessageKind};
use crate::rtmp::queue::MediaQueue;

/// The simulation's clock step, in milliseconds.
const TICK_MS: u64 = 5;
/// The link poller's period (as `LINK_POLL` in the publisher), in milliseconds.
const POLL_MS: u64 = 100;
/// Bytes the socket may hold unsent, as `TCP_NOTSENT_LOWAT` in live mode.
const SOCKET_UNSENT: u64 = 16 * 1024;
/// Frames per second of every simulated camera.
const FPS: u64 = 30;
/// Bodies are slices of this (the simulation only needs their sizes).
static ZEROS: [u8; 1 << 20] = [0; 1 << 20];

/// A 30 fps H.264 camera with AAC (1024 samples at 48 kHz, 128 kbit/s).
#[derive(Debug, Clone, Copy)]
struct Source {
    /// Frames from one keyframe to the next.
    gop: u64,
    key_bytes: usize,
    reference_bytes: usize,
    disposable_bytes: usize,
    /// `I P B B P B B …` with the B-frames disposable; otherwise every frame is a
    /// reference frame.
    b_frames: bool,
}

impl Source {
    /// The acceptance scenario's camera: about 4 Mbit/s, GOP 2 s, B-frames.
    fn camera_4m() -> Self {
        Source {
            gop: 60,
            key_bytes: 90_000,
            reference_bytes: 20_000,
            disposable_bytes: 11_000,
            b_frames: true,
        }
    }

    fn keyframe(&self, n: u64) -> bool {
        n.is_multiple_of(self.gop)
    }

    /// Frame `n` is a frame nothing refers to.
    fn disposable(&self, n: u64) -> bool {
        self.b_frames && !self.keyframe(n) && (n % self.gop) % 3 != 1
    }

    fn frame_bytes(&self, n: u64) -> usize {
        if self.keyframe(n) {
            self.key_bytes
        } else if self.disposable(n) {
            self.disposable_bytes
        } else {
            self.reference_bytes
        }
    }

    /// Bits per second, audio and video, averaged over a keyframe interval.
    fn bps(&self) -> u64 {
        let bytes: usize = (0..self.gop).map(|n| self.frame_bytes(n)).sum();
        bytes as u64 * 8 * FPS / self.gop + 128_000
    }

    fn gop_ms(&self) -> u64 {
        self.gop * 1000 / FPS
    }

    fn video_ms(n: u64) -> u64 {
        n * 1000 / FPS
    }

    fn audio_ms(n: u64) -> u64 {
        n * 1024 * 1000 / 48_000
    }
}

/// A stretch of the link: until `end_ms`, `rate_bps` with a round-trip time of
/// `rtt_ms` and a bottleneck buffer of `buffer_ms` at that rate (which TCP fills, as a
/// shaper's queue: it adds to the round-trip time).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    end_ms: u64,
    rate_bps: u64,
    rtt_ms: u64,
    buffer_ms: u64,
}

/// What became of one video frame.
#[derive(Debug, Clone, Copy, Default)]
struct Fate {
    keyframe: bool,
    disposable: bool,
    /// When it reached the server (ms since the start); `None`: dropped.
    delivered_ms: Option<u64>,
}

/// What one run saw.
#[derive(Debug, Default)]
struct Run {
    /// (seconds since the start, the recommendation) every poll.
    recommended: Vec<(f64, u64)>,
    /// Every video frame, by number.
    video: Vec<Fate>,
    audio_sent: u32,
    audio_delivered: u32,
}

impl Run {
    /// (delivery second, capture-to-delivery delay) of every video frame delivered.
    fn delays(&self) -> impl Iterator<Item = (f64, Duration)> + '_ {
        self.video.iter().enumerate().filter_map(|(n, fate)| {
            let at = fate.delivered_ms?;
            let delay = at - Source::video_ms(n as u64);
            Some((at as f64 / 1000.0, Duration::from_millis(delay)))
        })
    }

    fn max_delay(&self, from: f64, to: f64) -> Duration {
        self.delays()
            .filter(|(t, _)| (from..to).contains(t))
            .map(|(_, d)| d)
            .max()
            .unwrap_or_default()
    }

    fn delivered_frames(&self) -> usize {
        self.video
            .iter()
            .filter(|f| f.delivered_ms.is_some())
            .count()
    }

    /// Video frames captured in `from..to` seconds that were delivered.
    fn delivered_between(&self, from: f64, to: f64) -> usize {
        self.video
            .iter()
            .enumerate()
            .filter(|(n, f)| {
                let t = Source::video_ms(*n as u64) as f64 / 1000.0;
                f.delivered_ms.is_some() && (from..to).contains(&t)
            })
            .count()
    }

    /// The first time in `from..` the recommendation satisfies `ok`.
    fn first_recommendation(&self, from: f64, ok: impl Fn(u64) -> bool) -> Option<f64> {
        self.recommended
            .iter()
            .find(|(t, bps)| *t >= from && ok(*bps))
            .map(|(t, _)| t - from)
    }

    /// Every run of video after a gap that lost a frame others refer to starts at a
    /// keyframe (a gap of disposable frames only harms no other picture), and video
    /// arrives in order.
    fn assert_runs_start_at_keyframes(&self) {
        let delivered: Vec<(usize, &Fate)> = self
            .video
            .iter()
            .enumerate()
            .filter(|(_, f)| f.delivered_ms.is_some())
            .collect();
        for pair in delivered.windows(2) {
            let ((a, fa), (b, fb)) = (pair[0], pair[1]);
            assert!(
                fb.delivered_ms >= fa.delivered_ms,
                "video delivered out of order: {a} then {b}"
            );
            if self.video[a + 1..b].iter().any(|lost| !lost.disposable) {
                assert!(
                    fb.keyframe,
                    "video resumed at frame {b} after {a}, not at a keyframe"
                );
            }
        }
    }
}

/// Runs `source` for `seconds` over the link `trace` (its last segment lasts), with the
/// live policy, as the publisher does: the driver writes while the socket and the
/// network have room, the link delivers, acknowledgements come back a round trip later,
/// and every 100 ms the poller updates the queue, the capacity filter and the estimator.
fn simulate(source: Source, trace: &[Segment], seconds: u64) -> Run {
    let queue =
        MediaQueue::with_policy(Duration::from_secs(10), 64 << 20, CongestionPolicy::live());
    let mut estimator = BitrateEstimator::new(EstimatorConfig::new(4_000_000));
    let mut monitor = LinkMonitor::default();
    let start = Instant::now();
    let mut run = Run::default();
    let (mut next_video, mut next_audio) = (0u64, 0u64);
    // Written messages not yet delivered: (end offset, video frame number or audio).
    let mut on_wire: VecDeque<(u64, Option<usize>)> = VecDeque::new();
    let (mut written, mut delivered) = (0u64, 0.0f64);
    // (when, bytes delivered by then), for acknowledgements a round trip later.
    let mut acks: VecDeque<(u64, u64)> = VecDeque::new();
    let (mut acked, mut srtt) = (0u64, None::<f64>);
    let mut segment = 0;
    let mut batch = Vec::new();
    let end_ms = seconds * 1000;
    let mut t_ms = 0;
    while t_ms < end_ms {
        t_ms += TICK_MS;
        while segment + 1 < trace.len() && trace[segment].end_ms <= t_ms {
            segment += 1;
        }
        let link = trace[segment];
        let now = start + Duration::from_millis(t_ms);
        // The camera.
        loop {
            let (video, audio) = (Source::video_ms(next_video), Source::audio_ms(next_audio));
            if video.min(audio) > t_ms {
                break;
            }
            let message = if video <= audio {
                let n = next_video;
                next_video += 1;
                run.video.push(Fate {
                    keyframe: source.keyframe(n),
                    disposable: source.disposable(n),
                    delivered_ms: None,
                });
                MediaMessage {
                    kind: MessageKind::Video,
                    timestamp: video as u32,
                    header: Bytes::copy_from_slice(&[0; 5]),
                    body: Bytes::from_static(&ZEROS[..source.frame_bytes(n)]),
                    is_frame: true,
                    keyframe: source.keyframe(n),
                    disposable: source.disposable(n),
                }
            } else {
                next_audio += 1;
                run.audio_sent += 1;
                MediaMessage {
                    kind: MessageKind::Audio,
                    timestamp: audio as u32,
                    header: Bytes::from_static(&[0xaf, 1]),
                    body: Bytes::from_static(&ZEROS[..341]),
                    is_frame: true,
                    keyframe: false,
                    disposable: false,
                }
            };
            queue
                .push(vec![message])
                .now_or_never()
                .expect("a live queue never waits")
                .expect("queue open");
        }
        // The driver writes while the socket's unsent bytes stay under the limit; the
        // kernel also holds what is in flight: a bandwidth-delay product, and what
        // waits in the bottleneck's buffer.
        let network_room = link.rate_bps / 8 * (link.rtt_ms + link.buffer_ms) / 1000;
        while written.saturating_sub(delivered as u64) < SOCKET_UNSENT + network_room {
            queue.pop_batch(&mut batch, 4096);
            if batch.is_empty() {
                break;
            }
            for m in batch.drain(..) {
                written += m.len() as u64;
                queue.written(m.timestamp, m.len());
                let frame = (m.kind == MessageKind::Video)
                    .then(|| Source::frame_number(m.timestamp, next_video));
                on_wire.push_back((written, frame));
            }
        }
        // The link delivers.
        let carried = link.rate_bps as f64 / 8.0 * TICK_MS as f64 / 1000.0;
        delivered = (delivered + carried).min(written as f64);
        while on_wire.front().is_some_and(|m| m.0 <= delivered as u64) {
            match on_wire.pop_front() {
                Some((_, Some(n))) => run.video[n].delivered_ms = Some(t_ms),
                Some((_, None)) => run.audio_delivered += 1,
                None => break,
            }
        }
        acks.push_back((t_ms + link.rtt_ms, delivered as u64));
        let before = acked;
        while acks.front().is_some_and(|(at, _)| *at <= t_ms) {
            if let Some((_, bytes)) = acks.pop_front() {
                acked = acked.max(bytes);
            }
        }
        if acked > before {
            // The smoothed RTT moves with each acknowledgement: the path's own, plus what
            // waits in the bottleneck's buffer.
            let in_network = written.saturating_sub(delivered as u64 + SOCKET_UNSENT);
            let bdp = link.rate_bps / 8 * link.rtt_ms / 1000;
            let queued_ms =
                in_network.saturating_sub(bdp) as f64 * 8000.0 / link.rate_bps.max(1) as f64;
            let sample = link.rtt_ms as f64 + queued_ms.min(link.buffer_ms as f64);
            srtt = Some(srtt.map_or(sample, |s| s * 0.875 + sample * 0.125));
        }
        // The link poller.
        if t_ms.is_multiple_of(POLL_MS) {
            let rtt = srtt.map(|ms| Duration::from_micros((ms * 1000.0) as u64));
            let unsent = written.saturating_sub(delivered as u64 + network_room);
            let reading = monitor.poll(&queue, now, acked, unsent, rtt);
            let estimate = estimator.sample(LinkSample {
                at: now,
                delivered_bytes: acked,
                rtt,
                waiting: queue.waiting(),
                audio_bytes: queue.audio_bytes(),
                capacity_bps: reading.capacity_bps,
            });
            run.recommended
                .push((t_ms as f64 / 1000.0, estimate.recommended_bps));
        }
    }
    // Then the link delivers what was written, and what is still queued goes out too
    // (audio included): only what the queue dropped is missing.
    let mut rest = Vec::new();
    queue.pop_batch(&mut rest, usize::MAX);
    for (_, frame) in on_wire.drain(..) {
        match frame {
            Some(n) => run.video[n].delivered_ms = Some(end_ms),
            None => run.audio_delivered += 1,
        }
    }
    for m in rest {
        match m.kind {
            MessageKind::Video => {
                let n = Source::frame_number(m.timestamp, next_video);
                run.video[n].delivered_ms = Some(end_ms);
            }
            _ => run.audio_delivered += 1,
        }
    }
    run
}

impl Source {
    /// The number of the video frame with RTMP timestamp `ts` (timestamps are
    /// `n * 1000 / 30`, floored: distinct), among the first `count`.
    fn frame_number(ts: u32, count: u64) -> usize {
        let guess = u64::from(ts) * FPS / 1000;
        (guess.saturating_sub(1)..=guess + 1)
            .find(|n| *n < count && Self::video_ms(*n) == u64::from(ts))
            .unwrap_or(guess) as usize
    }
}

/// A link of one rate and 40 ms of round trip, without a standing queue.
fn steady(end_ms: u64, rate_bps: u64) -> Segment {
    Segment {
        end_ms,
        rate_bps,
        rtt_ms: 40,
        buffer_ms: 0,
    }
}

/// The acceptance scenario: 1.5 Mbit/s for 20 s, then 20 Mbit/s for 20 s.
#[test]
fn a_capped_then_lifted_link_keeps_the_delay_bounded_and_the_advice_right() {
    let trace = [steady(20_000, 1_500_000), steady(u64::MAX, 20_000_000)];
    let run = simulate(Source::camera_4m(), &trace, 40);
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
        run.delivered_frames(),
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
#[test]
fn an_oscillating_link_keeps_the_delay_bounded_and_the_advice_steady() {
    let trace: Vec<Segment> = (1..=20)
        .map(|i| steady(i * 2000, if i % 2 == 1 { 1_000_000 } else { 6_000_000 }))
        .collect();
    let run = simulate(Source::camera_4m(), &trace, 40);
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
#[test]
fn a_clear_link_drops_nothing() {
    let run = simulate(Source::camera_4m(), &[steady(u64::MAX, 20_000_000)], 10);
    assert_eq!(run.audio_delivered, run.audio_sent);
    assert_eq!(run.delivered_frames(), run.video.len(), "every frame");
    assert!(run.max_delay(0.0, 10.0) < Duration::from_millis(200));
    assert!(run.recommended.iter().all(|(_, bps)| *bps == 4_000_000));
}

/// The trap of issue 38, as `cli/tests/alone/throttle.rs` met it: a camera whose keyframes
/// are large (160 KB, as 720p at 4 Mbit/s), 1.5 Mbit/s for 20 s, then 20 Mbit/s.
#[test]
fn after_a_lift_large_keyframes_do_not_keep_the_video_at_one_frame_per_keyframe() {
    let source = Source {
        key_bytes: 160_000,
        reference_bytes: 18_000,
        disposable_bytes: 10_000,
        ..Source::camera_4m()
    };
    let trace = [steady(20_000, 1_500_000), steady(u64::MAX, 20_000_000)];
    let run = simulate(source, &trace, 40);
    let after = run.delivered_between(25.0, 39.0);
    eprintln!(
        "figures: {after} of 420 frames captured 25-39 s delivered; worst delay {:?}",
        run.max_delay(0.0, 40.0)
    );
    assert_eq!(after, 420, "frames after the lift");
}

/// A small deterministic generator (SplitMix64) for the random traces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// A random camera and link trace, from `seed`: 1 to 6 Mbit/s of video with a
/// keyframe every 0.5 to 10 s, keyframes 3 to 12 times a reference frame, B-frames or
/// not; then 20 to 40 s of link segments — caps under the source's rate (down to an
/// eighth of it), clear stretches (1.5 × the source's rate or more, RTT under 100 ms),
/// fast ones with a high RTT (100 to 300 ms), bursts (0.1 to 1 s very slow or very
/// fast), and rates near the source's — and last a clear stretch long enough to see
/// the video recover (2 s, a keyframe interval and 2 s). Returns the camera, the
/// trace and its length in seconds.
fn random_case(seed: u64) -> (Source, Vec<Segment>, u64) {
    let mut rng = Rng(seed);
    let video_bps = rng.range(1_000_000, 6_000_000);
    let gop = (rng.range(500, 10_000) * FPS / 1000).max(15);
    let b_frames = rng.next().is_multiple_of(2);
    let ratio = rng.range(3, 12);
    let sizing = Source {
        gop,
        key_bytes: 0,
        reference_bytes: 0,
        disposable_bytes: 0,
        b_frames,
    };
    let (references, disposables) = (1..gop).fold((0, 0), |(r, d), n| {
        if sizing.disposable(n) {
            (r, d + 1)
        } else {
            (r + 1, d)
        }
    });
    let gop_bytes = video_bps / 8 * gop / FPS;
    let reference_bytes = (gop_bytes * 2 / (2 * ratio + 2 * references + disposables)) as usize;
    let source = Source {
        key_bytes: (reference_bytes * ratio as usize).min(600_000),
        reference_bytes,
        disposable_bytes: reference_bytes / 2,
        ..sizing
    };
    let s = source.bps();
    let clear_rate = |rng: &mut Rng| rng.range(s * 3 / 2, 50_000_000.max(s * 2));
    let mut trace = Vec::new();
    let total = rng.range(20_000, 40_000);
    let mut t = 0;
    while t < total {
        let kind = rng.range(0, 99);
        let (len, rate_bps, rtt_ms) = match kind {
            0..=34 => (
                rng.range(2000, 12_000),
                rng.range((s / 8).max(400_000), s * 9 / 10),
                rng.range(10, 300),
            ),
            35..=64 => (
                rng.range(1000, 10_000),
                clear_rate(&mut rng),
                rng.range(10, 95),
            ),
            65..=74 => (
                rng.range(1000, 6000),
                clear_rate(&mut rng),
                rng.range(100, 300),
            ),
            75..=89 => {
                let rate = if rng.next().is_multiple_of(2) {
                    rng.range(100_000, 500_000)
                } else {
                    rng.range(s * 2, 100_000_000)
                };
                (rng.range(100, 1000), rate, rng.range(10, 300))
            }
            _ => (
                rng.range(1000, 6000),
                rng.range(s * 9 / 10, s * 3 / 2),
                rng.range(10, 150),
            ),
        };
        t += len;
        trace.push(Segment {
            end_ms: t,
            rate_bps,
            rtt_ms,
            buffer_ms: rng.range(0, 300),
        });
    }
    t += 2000 + source.gop_ms() + 2000;
    trace.push(Segment {
        end_ms: t,
        rate_bps: clear_rate(&mut rng),
        rtt_ms: rng.range(10, 95),
        buffer_ms: rng.range(0, 300),
    });
    (source, trace, t.div_ceil(1000))
}

/// What one random case measured.
#[derive(Debug, Default, Clone, Copy)]
struct CaseFigures {
    /// The longest time from the start of a clear stretch to the first frame from
    /// which every frame was delivered.
    worst_recovery_ms: u64,
    /// The longest time from the first keyframe captured 2 s into a clear stretch to
    /// the first frame from which every frame was delivered (0: the video recovered
    /// by that keyframe, as the property wants).
    latest_recovery_ms: u64,
    /// The longest capture-to-delivery delay of a video frame captured under a cap.
    worst_delay_capped: Duration,
    /// The same, for frames captured 1 s or more into a cap that sends a keyframe in
    /// 0.5 s or less (where the ladder, not a keyframe's own size, bounds the delay),
    /// counting only the time until the cap ends.
    worst_delay_capped_steady: Duration,
    /// The same, after the video recovered on a clear link.
    worst_delay_clear: Duration,
}

/// Checks one run of `random_case`: audio whole, video restarting at keyframes; on
/// every clear stretch of at least 2 s (rate at least 1.5 × the source's, RTT under
/// 100 ms), no drop starting 2 s in, and every frame delivered from the first keyframe
/// after that; under a cap that sends a keyframe in 0.5 s, frames captured 1 s in or
/// later wait at most 1.5 s and a round trip while it lasts. Returns the figures, and
/// the first violation if any.
fn check(source: Source, trace: &[Segment], run: &Run) -> (CaseFigures, Option<String>) {
    let mut error = None;
    if run.audio_delivered != run.audio_sent {
        error = Some(format!(
            "audio: {} of {} delivered",
            run.audio_delivered, run.audio_sent
        ));
    }
    let restarts = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run.assert_runs_start_at_keyframes()
    }));
    if restarts.is_err() {
        error.get_or_insert("video resumed without a keyframe".to_string());
    }
    let s = source.bps();
    let clear = |seg: &Segment| seg.rate_bps >= s * 3 / 2 && seg.rtt_ms < 100;
    let mut figures = CaseFigures::default();
    let capture = |n: usize| Source::video_ms(n as u64);
    let delay = |n: usize| {
        run.video[n]
            .delivered_ms
            .map(|at| Duration::from_millis(at - capture(n)))
    };
    // Capped: under the source's rate.
    let mut begin = 0;
    for seg in trace {
        if seg.rate_bps < s {
            let worst_from = |from: u64| {
                (0..run.video.len())
                    .filter(|&n| (from..seg.end_ms).contains(&capture(n)))
                    .filter_map(delay)
                    .max()
                    .unwrap_or_default()
            };
            figures.worst_delay_capped = figures.worst_delay_capped.max(worst_from(begin));
            if source.key_bytes as u64 * 8 * 2 <= seg.rate_bps {
                // The time spent waiting while this cap lasted (a later, lower cap
                // slows what is still in flight).
                let steady = (0..run.video.len())
                    .filter(|&n| (begin + 1000..seg.end_ms).contains(&capture(n)))
                    .filter_map(|n| {
                        let within = Duration::from_millis(seg.end_ms - capture(n));
                        Some(delay(n)?.min(within))
                    })
                    .max()
                    .unwrap_or_default();
                figures.worst_delay_capped_steady = figures.worst_delay_capped_steady.max(steady);
                // The ladder's 1 s and the keyframe after it, and what the link holds
                // before anything is acknowledged: a round trip.
                let bound = Duration::from_millis(1500 + seg.rtt_ms);
                if steady > bound {
                    error.get_or_insert(format!(
                        "a frame waited {steady:?} under the cap ending at {} ms (bound \
                         {bound:?})",
                        seg.end_ms
                    ));
                }
            }
        }
        begin = seg.end_ms;
    }
    // Clear stretches: runs of clear segments.
    let mut stretches: Vec<(u64, u64)> = Vec::new();
    let mut begin = 0;
    for seg in trace {
        if clear(seg) {
            match stretches.last_mut() {
                Some((_, end)) if *end == begin => *end = seg.end_ms,
                _ => stretches.push((begin, seg.end_ms)),
            }
        }
        begin = seg.end_ms;
    }
    for (from, to) in stretches {
        let settled = from + 2000;
        let limit = to.saturating_sub(500);
        if settled >= limit {
            continue;
        }
        let frames: Vec<usize> = (0..run.video.len())
            .filter(|&n| (from..limit).contains(&capture(n)))
            .collect();
        // After 2 s of a clear link, the dropped frames are only the end of a skip
        // that began before, up to the next keyframe.
        let mut skipping = true;
        for &n in frames.iter().filter(|&&n| capture(n) >= settled) {
            let fate = run.video[n];
            if fate.keyframe || fate.delivered_ms.is_some() {
                skipping = false;
            }
            if fate.delivered_ms.is_none() && !skipping {
                error.get_or_insert(format!(
                    "frame {n} (captured at {} ms, keyframe {}) dropped on a link clear \
                     since {from} ms",
                    capture(n),
                    fate.keyframe
                ));
                break;
            }
        }
        let last_dropped = frames
            .iter()
            .rev()
            .find(|&&n| run.video[n].delivered_ms.is_none());
        let recovered = match last_dropped {
            Some(&n) => capture(n + 1),
            None => from,
        };
        figures.worst_recovery_ms = figures.worst_recovery_ms.max(recovered - from);
        if let Some(&key) = frames
            .iter()
            .find(|&&n| capture(n) >= settled && run.video[n].keyframe)
        {
            let late = recovered.saturating_sub(capture(key));
            figures.latest_recovery_ms = figures.latest_recovery_ms.max(late);
        }
        let worst = frames
            .iter()
            .filter(|&&n| capture(n) >= recovered)
            .filter_map(|&n| delay(n))
            .max()
            .unwrap_or_default();
        figures.worst_delay_clear = figures.worst_delay_clear.max(worst);
    }
    (figures, error)
}

/// Seeds that failed while the probe was being built, kept whatever the random range:
/// a probe judged slow within its first round trip (0x5eed0021, 0x5eed0051); rates
/// proven by audio alone counted as measures, so an estimate below a keyframe's size
/// was never probed (0x5eed0462 and the other keyframes dropped at the first clear
/// stretch); a probe keyframe whose own burst raised the RTT judged slow (0x5eed06c0,
/// 0x5eed0137, 0x5eed0607); the capacity measured from in-flight bytes on a long fast
/// path, as the app's own rate (0x5eed0026). From a run of 12 000: a frame that
/// waited 1.6 s under a 0.41 Mbit/s cap the link fell to while idle, judged by the old
/// rate for a second (0x5eed1036, before the monitor watched backlogs after idle
/// polls), and one that waited 1.535 s under a 1 Mbit/s cap with a 216 ms round trip
/// and a 277 ms buffer (0x5eed1dfd, over 1.5 s: the bound now allows the round trip).
const FIXED_SEEDS: &[u64] = &[
    0x5eed0021, 0x5eed0026, 0x5eed0033, 0x5eed004b, 0x5eed0051, 0x5eed0088, 0x5eed00e6, 0x5eed0119,
    0x5eed0137, 0x5eed02b6, 0x5eed034b, 0x5eed040b, 0x5eed0462, 0x5eed0472, 0x5eed0497, 0x5eed0607,
    0x5eed0697, 0x5eed06aa, 0x5eed06c0, 0x5eed1036, 0x5eed1dfd,
];
/// Random traces per run of the property test.
const RANDOM_TRACES: u64 = 2000;

/// The property, over thousands of seeded random traces: see [`check`].
#[test]
fn random_links_never_trap_the_video() {
    let started = std::time::Instant::now();
    let seeds: Vec<u64> = FIXED_SEEDS
        .iter()
        .copied()
        .chain((0..RANDOM_TRACES).map(|i| 0x5eed_0000 + i))
        .filter({
            let mut seen = std::collections::HashSet::new();
            move |seed| seen.insert(*seed)
        })
        .collect();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    let results: Vec<(u64, (CaseFigures, Option<String>))> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let seeds = &seeds;
                scope.spawn(move || {
                    seeds
                        .iter()
                        .skip(w)
                        .step_by(workers)
                        .map(|&seed| {
                            let (source, trace, seconds) = random_case(seed);
                            let run = simulate(source, &trace, seconds);
                            (seed, check(source, &trace, &run))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a worker"))
            .collect()
    });
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(seed, (_, e))| e.as_ref().map(|e| format!("seed {seed:#x}: {e}")))
        .collect();
    let figures: Vec<(u64, CaseFigures)> = results.iter().map(|(seed, r)| (*seed, r.0)).collect();
    let worst = |key: fn(&CaseFigures) -> Duration| {
        figures
            .iter()
            .map(|(seed, f)| (key(f), *seed))
            .max()
            .unwrap_or_default()
    };
    let recovery = worst(|f| Duration::from_millis(f.worst_recovery_ms));
    let late = worst(|f| Duration::from_millis(f.latest_recovery_ms));
    let capped = worst(|f| f.worst_delay_capped);
    let steady = worst(|f| f.worst_delay_capped_steady);
    let clear = worst(|f| f.worst_delay_clear);
    eprintln!(
        "figures: {} traces ({} failed) in {:.1} s; worst recovery {:?} after the link \
         cleared (seed {:#x}), at most {:?} after the first keyframe 2 s in (seed {:#x}); \
         worst delay under the cap {:?} (seed {:#x}), {:?} 1 s into a cap that sends a \
         keyframe in 0.5 s (seed {:#x}), once recovered {:?} (seed {:#x})",
        results.len(),
        failed.len(),
        started.elapsed().as_secs_f64(),
        recovery.0,
        recovery.1,
        late.0,
        late.1,
        capped.0,
        capped.1,
        steady.0,
        steady.1,
        clear.0,
        clear.1,
    );
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// Replays one random case and prints it, second by second: `SEED=0x5eed0026 cargo
/// test -p streamhub --lib replay_a_seed -- --ignored --nocapture`.
#[test]
#[ignore = "a tool: replays the seed in $SEED"]
fn replay_a_seed() {
    let seed = std::env::var("SEED").expect("SEED");
    let seed = u64::from_str_radix(seed.trim_start_matches("0x"), 16).expect("a hex seed");
    let (source, trace, seconds) = random_case(seed);
    eprintln!("{source:?}, {} bit/s", source.bps());
    for seg in &trace {
        eprintln!("{seg:?}");
    }
    let run = simulate(source, &trace, seconds);
    for second in 0..seconds {
        let frames: Vec<(usize, &Fate)> = run
            .video
            .iter()
            .enumerate()
            .filter(|(n, _)| Source::video_ms(*n as u64) / 1000 == second)
            .collect();
        let line: String = frames
            .iter()
            .map(|(_, f)| match (f.keyframe, f.delivered_ms.is_some()) {
                (true, true) => 'K',
                (true, false) => 'k',
                (false, true) => '.',
                (false, false) => 'x',
            })
            .collect();
        let worst = frames
            .iter()
            .filter_map(|(n, f)| Some(f.delivered_ms? - Source::video_ms(*n as u64)))
            .max();
        let advice = run
            .recommended
            .iter()
            .find(|(t, _)| *t >= second as f64)
            .map_or(0, |(_, bps)| *bps);
        eprintln!("{second:3} s {line:<30} worst {worst:?} ms, advice {advice}");
    }
    eprintln!("{:?}", check(source, &trace, &run));
}
