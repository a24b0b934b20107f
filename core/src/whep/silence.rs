//! What a player that gets no media saw, in one sentence for the error.
//!
//! "Connected, 0 frames" is the least helpful failure a player can report. This names
//! how far the connection got and what did arrive: no RTP at all (a sender that never
//! sends, or a firewall on the media path), RTP of SSRCs no track owns (the answer did
//! not signal them and they could not be routed), or tracks that got packets but
//! assembled no frame (a codec or packetization problem).

use std::fmt::Write;

use super::unsignalled::UnknownStream;

/// One track the player started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackSeen {
    /// `video` or `audio`.
    pub kind: &'static str,
    /// Its codec's name.
    pub codec: String,
    /// RTP packets it received.
    pub packets: u64,
    /// Frames it assembled.
    pub frames: u64,
}

/// The facts the sentence is made of.
#[derive(Debug, Clone, Default)]
pub struct Silence {
    /// ICE found a working pair.
    pub ice_up: bool,
    /// DTLS finished: SRTP keys ready.
    pub dtls_up: bool,
    /// Decrypted RTP packets of any SSRC.
    pub rtp_packets: u64,
    /// SSRCs no track owned, each with why (see [`super::routing::explain`]).
    pub unknown: Vec<(UnknownStream, String)>,
    /// Tracks started.
    pub tracks: Vec<TrackSeen>,
    /// What the answer said the sender sends: `(kind, payload types)` per section.
    pub promised: Vec<(String, Vec<u8>)>,
}

impl Silence {
    /// The diagnosis, e.g. "ICE and DTLS up; 0 RTP packets arrived; the answer
    /// promised video (payload types 102) and audio (111)".
    pub fn describe(&self) -> String {
        let mut out = match (self.ice_up, self.dtls_up) {
            (true, true) => String::from("ICE and DTLS up"),
            (true, false) => String::from("ICE up, DTLS not finished"),
            _ => String::from("ICE not connected"),
        };
        let _ = write!(out, "; {} RTP packets arrived", self.rtp_packets);
        if !self.unknown.is_empty() {
            let streams: Vec<String> = self
                .unknown
                .iter()
                .map(|(s, why)| {
                    format!(
                        "SSRC {} payload type {} ({} packets: {why})",
                        s.ssrc, s.payload_type, s.packets
                    )
                })
                .collect();
            let _ = write!(out, "; from SSRCs no track takes: {}", streams.join(", "));
        }
        if self.tracks.is_empty() {
            out.push_str("; no track started");
        }
        for track in &self.tracks {
            let _ = write!(
                out,
                "; {} track ({}): {} packets, {} frames",
                track.kind, track.codec, track.packets, track.frames
            );
        }
        if !self.promised.is_empty() {
            let promised: Vec<String> = self
                .promised
                .iter()
                .map(|(kind, pts)| {
                    let pts: Vec<String> = pts.iter().map(u8::to_string).collect();
                    format!("{kind} (payload types {})", pts.join(" "))
                })
                .collect();
            let _ = write!(out, "; the answer promised {}", promised.join(" and "));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_that_never_sends_is_told_apart_from_one_whose_packets_go_unrouted() {
        let nothing = Silence {
            ice_up: true,
            dtls_up: true,
            promised: vec![("audio".into(), vec![111]), ("video".into(), vec![102])],
            ..Silence::default()
        };
        assert_eq!(
            nothing.describe(),
            "ICE and DTLS up; 0 RTP packets arrived; no track started; the answer promised \
             audio (payload types 111) and video (payload types 102)"
        );
        let unrouted = Silence {
            ice_up: true,
            dtls_up: true,
            rtp_packets: 40,
            unknown: vec![(
                UnknownStream {
                    ssrc: 42,
                    payload_type: 99,
                    packets: 40,
                },
                "payload type 99 is in neither offer nor answer".into(),
            )],
            ..Silence::default()
        };
        assert!(
            unrouted
                .describe()
                .contains("SSRC 42 payload type 99 (40 packets: payload type 99 is in neither"),
            "{}",
            unrouted.describe()
        );
        let no_frames = Silence {
            ice_up: true,
            dtls_up: true,
            rtp_packets: 300,
            tracks: vec![TrackSeen {
                kind: "video",
                codec: "h264".into(),
                packets: 300,
                frames: 0,
            }],
            ..Silence::default()
        };
        assert!(
            no_frames
                .describe()
                .contains("video track (h264): 300 packets, 0 frames")
        );
        assert!(
            Silence::default()
                .describe()
                .starts_with("ICE not connected")
        );
    }
}
