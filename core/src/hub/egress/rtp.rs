//! Per-viewer RTP numbering: each viewer gets its own SSRC, sequence numbers and
//! timestamp offset over the stream's shared payloads.

use bytes::Bytes;
use rtc::rtp::{Header, Packet};

/// Numbers the packets of one track for one viewer.
#[derive(Debug, Clone)]
pub struct TrackNumbering {
    ssrc: u32,
    payload_type: u8,
    sequence: u16,
    offset: u32,
}

impl TrackNumbering {
    /// Starts at a random-looking sequence number and timestamp offset (RFC 3550 §5.1).
    pub fn new(ssrc: u32, payload_type: u8, first_sequence: u16, offset: u32) -> Self {
        TrackNumbering {
            ssrc,
            payload_type,
            sequence: first_sequence,
            offset,
        }
    }

    /// The track's SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The RTP packets of one frame at `time` (in the track's clock units); the marker
    /// is set on the last one (end of a video frame; harmless for audio).
    pub fn frame(&mut self, time: i64, payloads: &[Bytes]) -> Vec<Packet> {
        let timestamp = self.offset.wrapping_add(time as u32);
        let last = payloads.len().saturating_sub(1);
        payloads
            .iter()
            .enumerate()
            .map(|(i, payload)| {
                let sequence_number = self.sequence;
                self.sequence = self.sequence.wrapping_add(1);
                Packet {
                    header: Header {
                        version: 2,
                        marker: i == last,
                        payload_type: self.payload_type,
                        sequence_number,
                        timestamp,
                        ssrc: self.ssrc,
                        ..Default::default()
                    },
                    payload: payload.clone(),
                }
            })
            .collect()
    }
}

/// Times for a cached group of pictures sent to a new viewer all at once: the newest
/// frame keeps its time and each older one sits one clock tick before the next, so the
/// viewer decodes the whole group at once and shows the newest picture now instead of
/// replaying the group at its original pace (which would put it seconds behind live).
pub fn burst_times(times: &[i64]) -> Vec<i64> {
    let Some(&newest) = times.last() else {
        return Vec::new();
    };
    let n = times.len() as i64;
    (0..n).map(|i| newest - (n - 1 - i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_run_on_and_wrap_and_the_last_packet_is_marked() {
        let mut track = TrackNumbering::new(7, 102, u16::MAX - 1, 1000);
        let payloads = [Bytes::from_static(b"a"), Bytes::from_static(b"b")];
        let first = track.frame(90, &payloads);
        let second = track.frame(3090, &payloads[..1]);
        let seqs: Vec<u16> = first
            .iter()
            .chain(&second)
            .map(|p| p.header.sequence_number)
            .collect();
        assert_eq!(seqs, vec![u16::MAX - 1, u16::MAX, 0]);
        assert_eq!(
            first.iter().map(|p| p.header.marker).collect::<Vec<_>>(),
            [false, true]
        );
        assert!(second[0].header.marker);
        assert_eq!(first[0].header.timestamp, 1090);
        assert_eq!(second[0].header.timestamp, 4090);
        assert!(
            first
                .iter()
                .all(|p| p.header.ssrc == 7 && p.header.payload_type == 102)
        );
    }

    #[test]
    fn timestamps_wrap_like_rtp() {
        let mut track = TrackNumbering::new(1, 96, 0, u32::MAX);
        let packets = track.frame(2, &[Bytes::from_static(b"x")]);
        assert_eq!(packets[0].header.timestamp, 1);
    }

    #[test]
    fn a_cached_group_is_squeezed_up_to_its_newest_frame() {
        assert_eq!(
            burst_times(&[0, 3000, 6000, 9000]),
            vec![8997, 8998, 8999, 9000]
        );
        assert_eq!(burst_times(&[500]), vec![500]);
        assert!(burst_times(&[]).is_empty());
    }
}
