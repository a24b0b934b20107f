//! Input formats shared by the fuzz targets (`fuzz_targets/`) and the seed generator
//! (`examples/seeds.rs`), so that a seed always decodes the way its target reads it.

use arbitrary::{Arbitrary, Unstructured};

/// RTMP media messages as the hub's feed gets them (`rtmp_media`): each record is a
/// kind byte (even: video, odd: audio), a big-endian `u32` timestamp, a big-endian
/// `u16` body length and the body; a short last body takes what is left.
pub mod records {
    /// One media message.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Record<'a> {
        /// True for video (RTMP message type 9), false for audio (8).
        pub video: bool,
        /// The message timestamp in milliseconds.
        pub timestamp_ms: u32,
        /// The message body (an FLV tag body).
        pub body: &'a [u8],
    }

    /// Splits `data` into records.
    pub fn parse(mut data: &[u8]) -> Vec<Record<'_>> {
        let mut out = Vec::new();
        while data.len() >= 7 {
            let video = data[0] & 1 == 0;
            let timestamp_ms = u32::from_be_bytes([data[1], data[2], data[3], data[4]]);
            let len = usize::from(u16::from_be_bytes([data[5], data[6]]));
            let rest = &data[7..];
            let (body, rest) = rest.split_at(len.min(rest.len()));
            out.push(Record {
                video,
                timestamp_ms,
                body,
            });
            data = rest;
        }
        out
    }

    /// Appends one record to `out`; bodies longer than 65 535 bytes are cut.
    pub fn encode(out: &mut Vec<u8>, video: bool, timestamp_ms: u32, body: &[u8]) {
        let body = &body[..body.len().min(usize::from(u16::MAX))];
        out.push(if video { 0 } else { 1 });
        out.extend_from_slice(&timestamp_ms.to_be_bytes());
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
    }
}

/// A sequence of RTP packets for the reorder buffer and a depacketizer (`rtp`).
pub mod rtp {
    use super::{Arbitrary, Unstructured};

    /// The codecs, chosen by the first byte modulo their number.
    pub const CODECS: [&str; 5] = ["h264", "vp8", "h265", "vp9", "av1"];

    /// The set-up before the packets (`Arbitrary`: fields in order, integers little
    /// endian, a bool is the low bit of a byte).
    #[derive(Debug, Clone, Copy, Arbitrary)]
    pub struct Setup {
        /// Index into [`CODECS`] (modulo).
        pub codec: u8,
        /// The reorder buffer's initial wait, in milliseconds.
        pub latency_ms: u8,
        /// The reorder buffer's capacity, in packets (at least 1).
        pub max_packets: u8,
        /// Length of the SDP fragment that follows (H.264 and H.265 read
        /// `sprop-parameter-sets` / `sprop-vps|sps|pps` from it).
        pub sdp_len: u16,
    }

    /// One packet's header in the input; its payload follows.
    #[derive(Debug, Clone, Copy, Arbitrary)]
    pub struct Packet {
        /// Added to the previous sequence number (wrapping).
        pub seq_step: i16,
        /// Added to the previous RTP timestamp (wrapping).
        pub ts_step: u32,
        /// The RTP marker bit.
        pub marker: bool,
        /// Milliseconds between the previous packet's arrival and this one's.
        pub advance_ms: u8,
        /// Payload length (a short last payload takes what is left).
        pub len: u16,
    }

    /// A decoded input.
    #[derive(Debug, Clone)]
    pub struct Case<'a> {
        /// The set-up.
        pub setup: Setup,
        /// The SDP fragment (lossy UTF-8).
        pub sdp: String,
        /// The packets and their payloads.
        pub packets: Vec<(Packet, &'a [u8])>,
    }

    /// Decodes an input; never fails (missing bytes read as zeros).
    pub fn parse(data: &[u8]) -> Case<'_> {
        let mut u = Unstructured::new(data);
        let setup = Setup::arbitrary(&mut u).unwrap_or(Setup {
            codec: 0,
            latency_ms: 0,
            max_packets: 0,
            sdp_len: 0,
        });
        let sdp = take(&mut u, setup.sdp_len);
        let sdp = String::from_utf8_lossy(sdp).into_owned();
        let mut packets = Vec::new();
        while !u.is_empty() {
            let Ok(packet) = Packet::arbitrary(&mut u) else {
                break;
            };
            let payload = take(&mut u, packet.len);
            packets.push((packet, payload));
        }
        Case {
            setup,
            sdp,
            packets,
        }
    }

    fn take<'a>(u: &mut Unstructured<'a>, len: u16) -> &'a [u8] {
        let len = usize::from(len).min(u.len());
        u.bytes(len).unwrap_or_default()
    }

    /// Encodes the set-up and SDP fragment (the generator's inverse of [`parse`]).
    pub fn encode_setup(out: &mut Vec<u8>, codec: u8, latency_ms: u8, max_packets: u8, sdp: &str) {
        out.extend_from_slice(&[codec, latency_ms, max_packets]);
        out.extend_from_slice(&(sdp.len() as u16).to_le_bytes());
        out.extend_from_slice(sdp.as_bytes());
    }

    /// Encodes one packet.
    pub fn encode_packet(
        out: &mut Vec<u8>,
        seq_step: i16,
        ts_step: u32,
        marker: bool,
        advance_ms: u8,
        payload: &[u8],
    ) {
        out.extend_from_slice(&seq_step.to_le_bytes());
        out.extend_from_slice(&ts_step.to_le_bytes());
        out.push(u8::from(marker));
        out.push(advance_ms);
        out.extend_from_slice(&(payload.len() as u16).to_le_bytes());
        out.extend_from_slice(payload);
    }
}

/// The chat targets' tokens: frames may name them by placeholder, since a fuzzer cannot
/// sign a JWT. `$VIEWER`, `$MOD`, `$BROADCASTER` (rooms `a` and `b`), `$OTHER` (room
/// `c` only) and `$EXPIRED` become tokens signed with [`chat::SECRET`].
pub mod chat {
    use streamhub::chat::Role;
    use streamhub::chat::server::{Claims, TokenKeys};

    /// The secret the targets' servers and tokens share.
    pub const SECRET: &[u8] = b"streamhub fuzz secret";

    /// A far expiry (2100-01-01) for tokens in seeds.
    pub const FAR_EXPIRY: u64 = 4_102_444_800;

    /// The placeholders and the claims of their tokens: user, role, rooms, expired.
    const PLACEHOLDERS: &[(&str, &str, Role, &[&str], bool)] = &[
        ("$VIEWER", "ada", Role::Viewer, &["a", "b"], false),
        ("$MOD", "mo", Role::Moderator, &["a", "b"], false),
        ("$BROADCASTER", "bo", Role::Broadcaster, &["a", "b"], false),
        ("$OTHER", "cy", Role::Viewer, &["c"], false),
        ("$EXPIRED", "ada", Role::Viewer, &["a", "b"], true),
    ];

    /// The placeholders' tokens, signed once.
    #[derive(Debug)]
    pub struct Tokens(Vec<(&'static str, String)>);

    impl Tokens {
        /// Signs a token for each placeholder with [`SECRET`].
        pub fn new() -> Self {
            let keys = TokenKeys::hs256(SECRET);
            let tokens = PLACEHOLDERS
                .iter()
                .map(|&(placeholder, user, role, rooms, expired)| {
                    let rooms = rooms.iter().map(|r| r.to_string()).collect();
                    let mut claims = Claims::new(user, role, rooms, 3600);
                    if expired {
                        claims.exp -= 7200;
                    } else {
                        claims.exp = FAR_EXPIRY;
                    }
                    let token = keys.issue(&claims).expect("signing with an HMAC key");
                    (placeholder, token)
                })
                .collect();
            Tokens(tokens)
        }

        /// `text` with every placeholder replaced by its token.
        pub fn substitute(&self, text: &str) -> String {
            if !text.contains('$') {
                return text.to_string();
            }
            let mut text = text.to_string();
            for (placeholder, token) in &self.0 {
                text = text.replace(placeholder, token);
            }
            text
        }
    }

    impl Default for Tokens {
        fn default() -> Self {
            Tokens::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let mut data = Vec::new();
        records::encode(&mut data, true, 7, b"abc");
        records::encode(&mut data, false, 0x0102_0304, b"");
        let got = records::parse(&data);
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].video, got[0].timestamp_ms, got[0].body),
            (true, 7, &b"abc"[..])
        );
        assert_eq!((got[1].video, got[1].timestamp_ms), (false, 0x0102_0304));
    }

    #[test]
    fn rtp_round_trips() {
        let mut data = Vec::new();
        rtp::encode_setup(&mut data, 1, 50, 64, "a=fmtp");
        rtp::encode_packet(&mut data, 1, 3000, true, 5, b"xyz");
        rtp::encode_packet(&mut data, -2, 0, false, 0, b"");
        let case = rtp::parse(&data);
        assert_eq!(
            (
                case.setup.codec,
                case.setup.latency_ms,
                case.setup.max_packets
            ),
            (1, 50, 64)
        );
        assert_eq!(case.sdp, "a=fmtp");
        assert_eq!(case.packets.len(), 2);
        let (p, payload) = case.packets[0];
        assert_eq!(
            (p.seq_step, p.ts_step, p.marker, p.advance_ms, payload),
            (1, 3000, true, 5, &b"xyz"[..])
        );
        assert_eq!(case.packets[1].0.seq_step, -2);
    }
}
