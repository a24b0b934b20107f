//! An interceptor that counts every inbound RTP packet, retransmissions and the NACKs
//! that asked for them, and notes the SSRCs no track owns.
//!
//! webrtc-rs binds a packet's SSRC to a track before its interceptor chain runs, and
//! drops, silently, at the end of the chain the packets it could not bind. This
//! interceptor sits in the chain, so it sees those packets too. It tells the player two
//! things: which unknown SSRCs arrive with which payload types (the player then routes
//! them by payload type, see [`super::routing`]), and how much RTP arrived at all (for
//! the error of a player that is connected but gets no media).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use tokio::sync::Notify;

/// An SSRC no track owns, as seen on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownStream {
    /// Its SSRC.
    pub ssrc: u32,
    /// The payload type of its latest packet.
    pub payload_type: u8,
    /// Packets seen.
    pub packets: u64,
}

#[derive(Debug, Default)]
struct Seen {
    rtp_packets: u64,
    rtx_packets: u64,
    nacks_sent: u64,
    unknown: BTreeMap<u32, UnknownStream>,
    /// The RTP stream id (RFC 8852 `rtp-stream-id`) each SSRC carried first.
    rids: HashMap<u32, String>,
    /// The stream id each RTX SSRC repairs (`repaired-rtp-stream-id`).
    repaired_rids: HashMap<u32, String>,
}

/// The header extension ids of the RTP stream ids, as the answer maps them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StreamIdExtensions {
    /// `urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id`.
    pub rid: Option<u8>,
    /// `urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id`.
    pub repaired_rid: Option<u8>,
}

impl StreamIdExtensions {
    /// The ids `a=extmap` gives the two URIs in `sdp` (the first of each).
    pub fn from_sdp(sdp: &str) -> Self {
        let id = |uri: &str| {
            sdp.lines().find_map(|line| {
                let (id, rest) = line.trim_end().strip_prefix("a=extmap:")?.split_once(' ')?;
                let named = rest.split_whitespace().next()?;
                // An id may carry a direction: `a=extmap:2/recvonly URI`.
                let id = id.split('/').next()?;
                (named == uri).then(|| id.parse().ok()).flatten()
            })
        };
        StreamIdExtensions {
            rid: id("urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"),
            repaired_rid: id("urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"),
        }
    }
}

/// What the interceptor saw, shared with the player.
#[derive(Debug, Default)]
pub struct WireLog {
    seen: Mutex<Seen>,
    /// The payload types of retransmission (RTX) streams.
    rtx_payload_types: Vec<u8>,
    /// Where packets carry their stream ids, once the answer is in.
    stream_ids: Mutex<StreamIdExtensions>,
    /// Woken when a new unknown SSRC appears.
    pub new_unknown: Notify,
}

impl WireLog {
    /// A log counting packets of `rtx_payload_types` as retransmissions.
    pub fn new(rtx_payload_types: Vec<u8>) -> Self {
        WireLog {
            rtx_payload_types,
            ..WireLog::default()
        }
    }

    /// Retransmitted packets (RTX) received.
    pub fn rtx_packets(&self) -> u64 {
        self.seen.lock().map_or(0, |s| s.rtx_packets)
    }

    /// Generic NACKs (RFC 4585) sent: requests for retransmission.
    pub fn nacks_sent(&self) -> u64 {
        self.seen.lock().map_or(0, |s| s.nacks_sent)
    }

    /// RTP packets that reached the interceptor chain (decrypted, any SSRC).
    pub fn rtp_packets(&self) -> u64 {
        self.seen.lock().map_or(0, |s| s.rtp_packets)
    }

    /// Reads stream ids (RID, repaired RID) from packets from now on, at the ids `answer`
    /// maps them to.
    pub fn read_stream_ids(&self, answer: &str) {
        if let Ok(mut ids) = self.stream_ids.lock() {
            *ids = StreamIdExtensions::from_sdp(answer);
        }
    }

    /// The media SSRC that RTX SSRC `rtx` repairs, by its `repaired-rtp-stream-id` and the
    /// `rtp-stream-id` of the media streams seen (RFC 8852 §3.2): what tells the streams of
    /// one section apart when it has several (simulcast), where payload types cannot.
    pub fn repaired_by_rid(&self, rtx: u32) -> Option<u32> {
        let seen = self.seen.lock().ok()?;
        let rid = seen.repaired_rids.get(&rtx)?;
        seen.rids
            .iter()
            .filter(|&(&ssrc, r)| r == rid && ssrc != rtx)
            .map(|(&ssrc, _)| ssrc)
            .min()
    }

    /// The SSRCs seen that no track owned when they arrived, in SSRC order.
    pub fn unknown(&self) -> Vec<UnknownStream> {
        self.seen
            .lock()
            .map(|s| s.unknown.values().copied().collect())
            .unwrap_or_default()
    }

    fn packet(&self, header: &rtc::rtp::header::Header, bound: bool) {
        let (ssrc, payload_type) = (header.ssrc, header.payload_type);
        let ids = self.stream_ids.lock().map(|ids| *ids).unwrap_or_default();
        let Ok(mut guard) = self.seen.lock() else {
            return;
        };
        let seen = &mut *guard;
        for (id, by_ssrc) in [
            (ids.rid, &mut seen.rids),
            (ids.repaired_rid, &mut seen.repaired_rids),
        ] {
            if let Some(id) = id
                && !by_ssrc.contains_key(&ssrc)
                && let Some(value) = header.get_extension(id)
                && let Ok(value) = std::str::from_utf8(&value)
                && !value.is_empty()
            {
                by_ssrc.insert(ssrc, value.to_owned());
            }
        }
        seen.rtp_packets += 1;
        if self.rtx_payload_types.contains(&payload_type) {
            seen.rtx_packets += 1;
        }
        if bound {
            return;
        }
        let entry = seen.unknown.entry(ssrc).or_insert(UnknownStream {
            ssrc,
            payload_type,
            packets: 0,
        });
        entry.payload_type = payload_type;
        entry.packets += 1;
        let first = entry.packets == 1;
        drop(guard);
        if first {
            self.new_unknown.notify_one();
        }
    }

    fn bound(&self, ssrc: u32) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.unknown.remove(&ssrc);
        }
    }
}

/// The interceptor. Everything passes through, RTX packets unwrapped (see
/// [`super::rtx`]).
pub struct UnsignalledWatch {
    log: Arc<WireLog>,
    bound: HashSet<u32>,
    /// RTX SSRC to the SSRC it repairs.
    repairs: HashMap<u32, u32>,
    /// RTX payload type to the payload type it repairs (`apt`).
    apt: HashMap<u8, u8>,
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl UnsignalledWatch {
    /// A watch reporting to `log`; `apt` maps each RTX payload type to the one it
    /// repairs.
    pub fn new(log: Arc<WireLog>, apt: HashMap<u8, u8>) -> Self {
        UnsignalledWatch {
            log,
            bound: HashSet::new(),
            repairs: HashMap::new(),
            apt,
            read: VecDeque::new(),
            write: VecDeque::new(),
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for UnsignalledWatch {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtp(packet) = &mut msg.message.packet {
            let ssrc = packet.header.ssrc;
            let payload_type = packet.header.payload_type;
            self.log.packet(&packet.header, self.bound.contains(&ssrc));
            if let (Some(&primary), Some(&apt)) =
                (self.repairs.get(&ssrc), self.apt.get(&payload_type))
            {
                super::rtx::unwrap_rtx(packet, primary, apt);
            }
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &mut msg.message.packet {
            // webrtc-rs binds an RTX stream to its NACK generator as a stream of its own;
            // with its packets unwrapped here, the generator only sees padding-only
            // probes on it, and asks for the "gaps" between them. Those requests are
            // dropped: an RTX stream is never repaired (RFC 4588 §6.3).
            let repairs = &self.repairs;
            packets.retain(|p| {
                p.as_any()
                    .downcast_ref::<TransportLayerNack>()
                    .is_none_or(|nack| !repairs.contains_key(&nack.media_ssrc))
            });
            if packets.is_empty() {
                return Ok(());
            }
            let nacks = packets
                .iter()
                .filter(|p| p.as_any().is::<TransportLayerNack>())
                .count() as u64;
            if nacks > 0
                && let Ok(mut seen) = self.log.seen.lock()
            {
                seen.nacks_sent += nacks;
            }
        }
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write.pop_front()
    }
}

impl Interceptor for UnsignalledWatch {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}

    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        if let Some(rtx) = info.ssrc_rtx {
            self.repairs.insert(rtx, info.ssrc);
        }
        for ssrc in [Some(info.ssrc), info.ssrc_rtx, info.ssrc_fec]
            .into_iter()
            .flatten()
        {
            self.bound.insert(ssrc);
            self.log.bound(ssrc);
        }
    }

    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        if let Some(rtx) = info.ssrc_rtx {
            self.repairs.remove(&rtx);
        }
        for ssrc in [Some(info.ssrc), info.ssrc_rtx, info.ssrc_fec]
            .into_iter()
            .flatten()
        {
            self.bound.remove(&ssrc);
        }
    }
}

impl std::fmt::Debug for UnsignalledWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnsignalledWatch")
            .field("bound", &self.bound)
            .field("repairs", &self.repairs)
            .field("apt", &self.apt)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtp::header::{EXTENSION_PROFILE_ONE_BYTE, Header};

    fn header(ssrc: u32, payload_type: u8) -> Header {
        Header {
            ssrc,
            payload_type,
            ..Header::default()
        }
    }

    /// A packet header carrying `value` in extension `id` (one-byte form).
    fn with_extension(mut header: Header, id: u8, value: &'static str) -> Header {
        header.extension_profile = EXTENSION_PROFILE_ONE_BYTE;
        header
            .set_extension(id, bytes::Bytes::from_static(value.as_bytes()))
            .expect("an extension");
        header
    }

    #[test]
    fn unknown_ssrcs_are_noted_once_with_their_payload_type_until_bound() {
        let log = WireLog::default();
        log.packet(&header(7, 102), false);
        log.packet(&header(7, 102), false);
        log.packet(&header(9, 111), false);
        log.packet(&header(5, 96), true);
        assert_eq!(log.rtp_packets(), 4);
        assert_eq!(
            log.unknown(),
            vec![
                UnknownStream {
                    ssrc: 7,
                    payload_type: 102,
                    packets: 2
                },
                UnknownStream {
                    ssrc: 9,
                    payload_type: 111,
                    packets: 1
                },
            ]
        );
        log.bound(7);
        assert_eq!(log.unknown().len(), 1);
    }

    /// Two simulcast layers ("h", "l") in one section and an RTX stream: the RTX stream
    /// is told to repair the layer its repaired-rtp-stream-id names.
    #[test]
    fn an_rtx_stream_repairs_the_stream_its_repaired_rid_names() {
        let answer = "m=video 9 UDP/TLS/RTP/SAVPF 102 103\r\n\
                      a=extmap:4 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
                      a=extmap:2 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n\
                      a=extmap:3/sendonly urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n";
        assert_eq!(
            StreamIdExtensions::from_sdp(answer),
            StreamIdExtensions {
                rid: Some(2),
                repaired_rid: Some(3)
            }
        );
        let log = WireLog::new(vec![103]);
        // Before the answer is read, ids are not looked for.
        log.packet(&with_extension(header(10, 102), 2, "h"), false);
        log.read_stream_ids(answer);
        log.packet(&with_extension(header(10, 102), 2, "h"), false);
        log.packet(&with_extension(header(20, 102), 2, "l"), false);
        log.packet(&with_extension(header(30, 103), 3, "l"), false);
        log.packet(&with_extension(header(40, 103), 3, "x"), false);
        assert_eq!(log.repaired_by_rid(30), Some(20));
        assert_eq!(log.repaired_by_rid(40), None, "no stream has RID x");
        assert_eq!(log.repaired_by_rid(10), None, "10 is no RTX stream");
        assert_eq!(log.rtx_packets(), 2);
        assert_eq!(
            StreamIdExtensions::from_sdp("v=0\r\n"),
            StreamIdExtensions::default()
        );
    }
}
