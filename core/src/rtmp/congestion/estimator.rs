//! The bitrate the app's video encoder should use, from what the link delivers.
//!
//! Fed a [`LinkSample`] every few hundred milliseconds (bytes the peer acknowledged,
//! RTT, media waiting), it keeps the delivery rate over the last second and moves a
//! recommendation, the way OBS's dynamic bitrate and HaishinKit's stream bitrate
//! strategy do (cut hard and early on congestion, probe up slowly), but from what the
//! socket *delivered* (TCP ACKs) rather than from what was written:
//!
//! - **Congested** — media waited longer than `congested_delay` (300 ms) and the wait
//!   grew since the last sample, or it passed `severe_delay` (700 ms): the
//!   recommendation drops at once to `cut_factor` (0.85) × what the link carries (its
//!   measured capacity while backlogged, else the last second's delivery), minus audio,
//!   at most once per `cut_interval` (500 ms) so that a cut is seen before the next one.
//! - **Clear** — the wait is under `clear_delay` (100 ms): once a second the
//!   recommendation grows by `increase_factor` (8 %), or jumps to what the link has
//!   just proven it carries (0.9 × delivered − audio) if that is more, up to `max_bps`.
//! - In between nothing moves.
//!
//! The delivered rate counts every byte the peer acknowledged (audio, video, RTMP
//! framing); the recommendation is for video, so the measured audio rate is taken off.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One reading of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkSample {
    /// When it was taken.
    pub at: Instant,
    /// Bytes the peer acknowledged since the stream went live.
    pub delivered_bytes: u64,
    /// Smoothed round-trip time, if the platform tells it.
    pub rtt: Option<Duration>,
    /// Media waiting to be delivered (queued, in the socket, or in flight).
    pub waiting: Duration,
    /// Audio bytes handed to the publisher since the stream went live.
    pub audio_bytes: u64,
    /// What the link carries when it has a backlog (bits per second), if measured: cuts
    /// aim under it rather than under the last second's delivery, which sinks while the
    /// publisher drops video and has little to send.
    pub capacity_bps: Option<u64>,
}

/// The estimator's constants (documented in the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EstimatorConfig {
    /// Lowest recommendation, bits per second.
    pub min_bps: u64,
    /// Highest recommendation (the encoder's target).
    pub max_bps: u64,
    /// Waiting above this, and growing, is congestion.
    pub congested_delay: Duration,
    /// Waiting above this is congestion whether it grows or not.
    pub severe_delay: Duration,
    /// Waiting under this is a clear link.
    pub clear_delay: Duration,
    /// On congestion: recommendation = this × delivered rate − audio.
    pub cut_factor: f64,
    /// Shortest time between two cuts.
    pub cut_interval: Duration,
    /// On a clear link, once per `increase_interval`: × (1 + this).
    pub increase_factor: f64,
    /// Time between two increases.
    pub increase_interval: Duration,
    /// Window of the delivered rate.
    pub window: Duration,
}

impl EstimatorConfig {
    /// The defaults for an encoder target of `max_bps`.
    pub fn new(max_bps: u64) -> Self {
        EstimatorConfig {
            min_bps: 150_000,
            max_bps: max_bps.max(150_000),
            congested_delay: Duration::from_millis(300),
            severe_delay: Duration::from_millis(700),
            clear_delay: Duration::from_millis(100),
            cut_factor: 0.85,
            cut_interval: Duration::from_millis(500),
            increase_factor: 0.08,
            increase_interval: Duration::from_secs(1),
            window: Duration::from_secs(1),
        }
    }
}

/// The estimator's state.
#[derive(Debug, Clone)]
pub struct BitrateEstimator {
    config: EstimatorConfig,
    samples: VecDeque<LinkSample>,
    recommended_bps: u64,
    last_cut: Option<Instant>,
    last_increase: Option<Instant>,
    last_waiting: Duration,
}

/// What the estimator knows after a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Bits per second the peer acknowledged over the window (all media and framing).
    pub delivered_bps: u64,
    /// Audio bits per second over the window.
    pub audio_bps: u64,
    /// The video bitrate the app's encoder should use.
    pub recommended_bps: u64,
}

impl BitrateEstimator {
    /// Starts recommending `config.max_bps`.
    pub fn new(config: EstimatorConfig) -> Self {
        BitrateEstimator {
            recommended_bps: config.max_bps,
            config,
            samples: VecDeque::new(),
            last_cut: None,
            last_increase: None,
            last_waiting: Duration::ZERO,
        }
    }

    /// The current recommendation.
    pub fn recommended_bps(&self) -> u64 {
        self.recommended_bps
    }

    /// The app says its encoder now runs at `bps` (it may differ from the
    /// recommendation): later increases start from there.
    pub fn encoder_bitrate(&mut self, bps: u64) {
        self.recommended_bps = bps.clamp(self.config.min_bps, self.config.max_bps);
    }

    fn rates(&self) -> (u64, u64) {
        let (Some(first), Some(last)) = (self.samples.front(), self.samples.back()) else {
            return (0, 0);
        };
        let span = last.at.saturating_duration_since(first.at).as_secs_f64();
        if span <= 0.0 {
            return (0, 0);
        }
        let rate = |bytes: u64| (bytes as f64 * 8.0 / span) as u64;
        (
            rate(last.delivered_bytes.saturating_sub(first.delivered_bytes)),
            rate(last.audio_bytes.saturating_sub(first.audio_bytes)),
        )
    }

    /// Takes a sample and updates the recommendation.
    pub fn sample(&mut self, sample: LinkSample) -> Estimate {
        self.samples.push_back(sample);
        while self.samples.len() > 2
            && self.samples.front().is_some_and(|first| {
                sample.at.saturating_duration_since(first.at) > self.config.window
            })
        {
            self.samples.pop_front();
        }
        let (delivered_bps, audio_bps) = self.rates();
        let c = self.config;
        let full_window = self
            .samples
            .front()
            .is_some_and(|f| sample.at.saturating_duration_since(f.at) >= c.window / 2);
        let growing = sample.waiting > self.last_waiting;
        let congested =
            sample.waiting >= c.severe_delay || (sample.waiting >= c.congested_delay && growing);
        let can_cut = self
            .last_cut
            .is_none_or(|at| sample.at.saturating_duration_since(at) >= c.cut_interval);
        if congested && can_cut && full_window {
            let carried = sample.capacity_bps.unwrap_or(delivered_bps);
            let target = (carried as f64 * c.cut_factor) as u64;
            let target = target.saturating_sub(audio_bps).max(c.min_bps);
            if target < self.recommended_bps {
                self.recommended_bps = target;
                self.last_cut = Some(sample.at);
                self.last_increase = Some(sample.at);
            }
        } else if sample.waiting < c.clear_delay
            && full_window
            && self
                .last_increase
                .is_none_or(|at| sample.at.saturating_duration_since(at) >= c.increase_interval)
        {
            let probed = (self.recommended_bps as f64 * (1.0 + c.increase_factor)) as u64;
            let proven = ((delivered_bps as f64 * 0.9) as u64).saturating_sub(audio_bps);
            self.recommended_bps = probed.max(proven).clamp(c.min_bps, c.max_bps);
            self.last_increase = Some(sample.at);
        }
        self.last_waiting = sample.waiting;
        Estimate {
            delivered_bps,
            audio_bps,
            recommended_bps: self.recommended_bps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link that carries `link_bps` while the app sends `send_bps` (128 kbit/s of it
    /// audio); the waiting media grows while the app sends more than the link carries.
    struct Sim {
        at: Instant,
        delivered: f64,
        audio: f64,
        backlog_bits: f64,
    }

    impl Sim {
        fn new() -> Self {
            Sim {
                at: Instant::now(),
                delivered: 0.0,
                audio: 0.0,
                backlog_bits: 0.0,
            }
        }

        /// 100 ms of sending at `send_bps` over a link of `link_bps`.
        fn step(&mut self, send_bps: f64, link_bps: f64) -> LinkSample {
            let dt = 0.1;
            self.at += Duration::from_millis(100);
            self.backlog_bits += send_bps * dt;
            let carried = self.backlog_bits.min(link_bps * dt);
            self.backlog_bits -= carried;
            self.delivered += carried / 8.0;
            self.audio += 128_000.0 * dt / 8.0;
            LinkSample {
                at: self.at,
                delivered_bytes: self.delivered as u64,
                rtt: Some(Duration::from_millis(40)),
                waiting: Duration::from_secs_f64(self.backlog_bits / send_bps.max(1.0)),
                audio_bytes: self.audio as u64,
                capacity_bps: None,
            }
        }
    }

    /// Runs `seconds` with the app following the recommendation; returns each second's.
    fn run(est: &mut BitrateEstimator, sim: &mut Sim, seconds: usize, link_bps: f64) -> Vec<u64> {
        let mut per_second = Vec::new();
        for step in 0..seconds * 10 {
            let send = est.recommended_bps() as f64 + 128_000.0;
            est.sample(sim.step(send, link_bps));
            if step % 10 == 9 {
                per_second.push(est.recommended_bps());
            }
        }
        per_second
    }

    #[test]
    fn a_cap_cuts_the_recommendation_fast_and_a_lift_raises_it_slowly() {
        let mut est = BitrateEstimator::new(EstimatorConfig::new(4_000_000));
        let mut sim = Sim::new();
        let clear = run(&mut est, &mut sim, 5, 20_000_000.0);
        assert!(clear.iter().all(|&b| b == 4_000_000), "{clear:?}");
        let capped = run(&mut est, &mut sim, 20, 1_500_000.0);
        let under = capped.iter().position(|&b| b < 1_500_000).expect("cut");
        assert!(under < 5, "under 1.5 Mbit/s after {under} s: {capped:?}");
        // It then stays near what the link carries for video (1.5 Mbit/s less audio and
        // headroom), probing up by 8 % a second and cut back each time the wait grows.
        assert!(
            capped[under..]
                .iter()
                .all(|&b| (900_000..1_600_000).contains(&b)),
            "{capped:?}"
        );
        let mean = capped[under..].iter().sum::<u64>() / (capped.len() - under) as u64;
        assert!(mean < 1_450_000, "mean {mean}: {capped:?}");
        let lifted = run(&mut est, &mut sim, 20, 20_000_000.0);
        let back = lifted.iter().position(|&b| b > 3_500_000).expect("raised");
        assert!(back < 15, "above 3.5 Mbit/s after {back} s: {lifted:?}");
        // Slowly: never more than +8 % per second (or what was proven).
        for pair in lifted.windows(2) {
            assert!(
                pair[1] as f64 <= pair[0] as f64 * 1.09 + 1.0 || pair[1] <= 3_700_000,
                "{lifted:?}"
            );
        }
    }

    #[test]
    fn an_oscillating_link_keeps_the_recommendation_under_the_low_phase_rate() {
        let mut est = BitrateEstimator::new(EstimatorConfig::new(4_000_000));
        let mut sim = Sim::new();
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.extend(run(&mut est, &mut sim, 5, 1_000_000.0));
            seen.extend(run(&mut est, &mut sim, 5, 6_000_000.0));
        }
        // In each low phase the recommendation ends under the link's rate.
        for (phase, chunk) in seen.chunks(5).enumerate().filter(|(i, _)| i % 2 == 0) {
            assert!(
                *chunk.last().unwrap() < 1_000_000,
                "phase {phase}: {seen:?}"
            );
        }
        assert!(seen.iter().all(|&b| (150_000..=4_000_000).contains(&b)));
    }

    #[test]
    fn the_encoder_bitrate_is_where_increases_start() {
        let mut est = BitrateEstimator::new(EstimatorConfig::new(4_000_000));
        est.encoder_bitrate(1_000_000);
        assert_eq!(est.recommended_bps(), 1_000_000);
        est.encoder_bitrate(50);
        assert_eq!(est.recommended_bps(), 150_000, "clamped to the minimum");
    }
}
