//! One clock for all tracks of a playback.
//!
//! Each track's RTP timestamps are unwrapped and mapped to microseconds on the player's
//! clock (zero at `connect`). Until the sender's first RTCP sender report for a track,
//! the track's first packet is pinned to its arrival time. Once sender reports arrive,
//! RTP time goes through the sender's NTP clock, which audio and video share, so lip
//! sync follows the sender; the NTP-to-player offset is fixed once, by the first report
//! of any track. Output strictly increases within a track: when the first report moves a
//! track's mapping backwards (the sender's capture-to-send delay), the difference is held
//! as a correction and slewed away by at most 1 ms per frame, instead of stamping several
//! frames with the same time.

use std::sync::Mutex;

use super::unwrap::TimestampUnwrapper;

/// The offset from the sender's NTP clock to the player's clock, shared by all tracks.
#[derive(Debug, Default)]
pub struct SenderClock {
    offset_us: Mutex<Option<i64>>,
}

impl SenderClock {
    /// The offset, fixing it to `player_now_us - sender_now_us` if not yet set.
    fn offset(&self, player_now_us: i64, sender_now_us: i64) -> i64 {
        let mut offset = crate::sync::lock(&self.offset_us);
        *offset.get_or_insert(player_now_us - sender_now_us)
    }
}

/// Converts a 64-bit NTP timestamp (RFC 3550 §4) to microseconds.
pub fn ntp_to_us(ntp: u64) -> i64 {
    let seconds = (ntp >> 32) as i64;
    let fraction = (ntp & 0xffff_ffff) as i64;
    seconds * 1_000_000 + ((fraction * 1_000_000) >> 32)
}

/// Largest correction removed per frame.
const MAX_SLEW_US: i64 = 1_000;

/// The clock of one track.
#[derive(Debug)]
pub struct TrackClock {
    clock_rate: i64,
    unwrapper: TimestampUnwrapper,
    first: Option<(i64, i64)>,
    report: Option<(i64, i64, i64)>,
    last_out: Option<i64>,
    correction_us: i64,
}

impl TrackClock {
    /// A clock for RTP timestamps at `clock_rate` Hz.
    pub fn new(clock_rate: u32) -> Self {
        TrackClock {
            clock_rate: i64::from(clock_rate.max(1)),
            unwrapper: TimestampUnwrapper::default(),
            first: None,
            report: None,
            last_out: None,
            correction_us: 0,
        }
    }

    fn ticks_to_us(&self, ticks: i64) -> i64 {
        ticks * 1_000_000 / self.clock_rate
    }

    /// Takes a sender report (its RTP and NTP timestamps) received at `player_now_us`.
    pub fn on_sender_report(
        &mut self,
        rtp: u32,
        ntp: u64,
        player_now_us: i64,
        shared: &SenderClock,
    ) {
        let rtp = self.unwrapper.unwrap(u64::from(rtp));
        let ntp_us = ntp_to_us(ntp);
        let offset = shared.offset(player_now_us, ntp_us);
        self.report = Some((rtp, ntp_us, offset));
    }

    /// The player time of an RTP timestamp seen at `player_now_us`.
    pub fn player_time_us(&mut self, rtp: u32, player_now_us: i64) -> i64 {
        let ext = self.unwrapper.unwrap(u64::from(rtp));
        let mapped = match self.report {
            Some((report_rtp, report_ntp_us, offset)) => {
                report_ntp_us + self.ticks_to_us(ext - report_rtp) + offset
            }
            None => {
                let (first_rtp, first_us) = *self.first.get_or_insert((ext, player_now_us));
                first_us + self.ticks_to_us(ext - first_rtp)
            }
        };
        let mut out = mapped + self.correction_us;
        if let Some(last) = self.last_out
            && out <= last
        {
            self.correction_us += last + 1 - out;
            out = last + 1;
        }
        self.last_out = Some(out);
        // Slew the correction away, slower than any frame interval so output keeps rising.
        self.correction_us -= self.correction_us.clamp(0, MAX_SLEW_US);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NTP_EPOCH_S: u64 = 3_900_000_000;

    fn ntp(us: u64) -> u64 {
        let secs = NTP_EPOCH_S + us / 1_000_000;
        let frac = ((us % 1_000_000) << 32) / 1_000_000;
        (secs << 32) | frac
    }

    #[test]
    fn ntp_conversion() {
        assert_eq!(ntp_to_us((5u64 << 32) | 0x8000_0000), 5_500_000);
    }

    #[test]
    fn first_packet_is_pinned_to_arrival_until_a_report() {
        let mut clock = TrackClock::new(90_000);
        assert_eq!(clock.player_time_us(1_000, 250_000), 250_000);
        assert_eq!(clock.player_time_us(4_000, 260_000), 250_000 + 33_333);
        assert_eq!(
            clock.player_time_us(0xffff_ffff, 300_000),
            250_000 + 33_334,
            "a reordered timestamp never goes back"
        );
    }

    #[test]
    fn a_report_that_moves_the_mapping_back_is_slewed_not_repeated() {
        let shared = SenderClock::default();
        let mut clock = TrackClock::new(90_000);
        let mut outputs = Vec::new();
        // Frames pinned to arrival: 1 000 000 µs + n × 33 333.
        for n in 0..10u32 {
            outputs.push(clock.player_time_us(n * 3000, 1_000_000 + i64::from(n) * 33_333));
        }
        // The report says frame 9 was captured 50 ms before it arrived.
        clock.on_sender_report(9 * 3000, ntp(5_000_000), 1_300_000 - 50_000, &shared);
        for n in 10..200u32 {
            outputs.push(clock.player_time_us(n * 3000, 0));
        }
        assert!(
            outputs.windows(2).all(|w| w[1] > w[0]),
            "not strictly increasing"
        );
        // After the slew, frames sit exactly on the sender-report mapping.
        let last = *outputs.last().unwrap();
        assert_eq!(last, 1_250_000 + (199 - 9) * 1_000_000 / 30);
    }

    #[test]
    fn sender_reports_put_audio_and_video_on_one_clock() {
        let shared = SenderClock::default();
        // The sender's clocks: video RTP 90 kHz with a random base, audio 48 kHz.
        // At sender time T (µs), video RTP = 5000 + T*0.09, audio RTP = 77 + T*0.048.
        let mut video = TrackClock::new(90_000);
        let mut audio = TrackClock::new(48_000);
        let t_report = 10_000_000u64;
        video.on_sender_report(5_000 + 900_000, ntp(t_report), 2_000_000, &shared);
        audio.on_sender_report(
            77 + 480_000 + 2_400,
            ntp(t_report + 50_000),
            2_050_000,
            &shared,
        );
        // Frames captured at the same sender instant map to the same player time.
        let t = t_report + 500_000;
        let v = video.player_time_us((5_000 + t * 9 / 100) as u32, 2_600_000);
        let a = audio.player_time_us((77 + t * 48 / 1000) as u32, 2_600_000);
        assert!((v - a).abs() <= 1, "video {v} audio {a}");
        assert_eq!(v, 2_500_000);
    }
}
