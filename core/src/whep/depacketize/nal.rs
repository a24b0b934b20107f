//! The assembly shared by the NAL-unit payload formats, H.264 (RFC 6184) and H.265
//! (RFC 7798): single NAL units, aggregation packets and fragmentation units, put
//! together into Annex-B access units with their parameter sets where decoders want
//! them.
//!
//! webrtc-rs's own H.264 depacketizer ignores the FU-A start bit, so a viewer that joins
//! in the middle of a fragmented IDR gets a corrupt frame. Here a fragment run is only
//! used when it began with a start fragment and every packet up to the end fragment
//! arrived; any loss drops the access unit and waits for the next keyframe.

use std::marker::PhantomData;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{BufMut, Bytes, BytesMut};

use super::gate::KeyframeGate;
use super::{AssembledFrame, RtpPayload};

const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// One RTP payload of a NAL-unit format, as its syntax reads it.
#[derive(Debug)]
pub enum NalPacket {
    /// The payload is one whole NAL unit.
    Single,
    /// An aggregation packet: what follows its header, NAL units each behind a 16-bit
    /// size.
    Aggregate(Bytes),
    /// A fragment of one NAL unit.
    Fragment {
        /// The first fragment.
        start: bool,
        /// The last fragment.
        end: bool,
        /// The NAL unit's header, rebuilt (`header_len` bytes used).
        header: [u8; 2],
        /// The fragment's bytes after the headers.
        data: Bytes,
    },
}

/// What tells one NAL-unit payload format from another.
pub trait NalSyntax: std::fmt::Debug {
    /// Bytes in a NAL unit header (1 for H.264, 2 for H.265).
    const HEADER_LEN: usize;
    /// The parameter set NAL types, in the order a keyframe carries them.
    const PARAMETER_SETS: &'static [u8];
    /// The fmtp parameters that carry parameter sets in the SDP, each a comma-separated
    /// list of base64 NAL units.
    const SPROP_KEYS: &'static [&'static str];
    /// The type of a NAL unit.
    fn nal_type(nal: &[u8]) -> Option<u8>;
    /// A coded slice (VCL NAL unit).
    fn is_slice(nal_type: u8) -> bool;
    /// A slice that starts a decodable picture (H.264 IDR, H.265 IRAP).
    fn is_keyframe(nal_type: u8) -> bool;
    /// Reads a payload; `Err` for one that breaks the format.
    fn packet(payload: &Bytes) -> Result<NalPacket, ()>;
}

/// Largest access unit assembled (8 MiB; a 4K keyframe is about 1 MiB): a sender that
/// never ends one (no marker, one timestamp) cannot grow the player's memory past it.
pub const MAX_ACCESS_UNIT_BYTES: usize = 8 << 20;

/// Assembles the access units of a NAL-unit payload format.
#[derive(Debug)]
pub struct NalDepacketizer<S> {
    /// Payload bytes of the access unit being assembled.
    au_bytes: usize,
    /// NAL units of the access unit being assembled.
    nals: Vec<Bytes>,
    timestamp: Option<u32>,
    /// The fragmented unit being reassembled; `None` when not inside one.
    fragment: Option<BytesMut>,
    /// The current access unit lost a packet: drop it.
    broken: bool,
    /// Frames were lost (or none came yet): deliver nothing until the next keyframe.
    gate: KeyframeGate,
    /// The last parameter set of each of `S::PARAMETER_SETS`.
    parameter_sets: Vec<Option<Bytes>>,
    syntax: PhantomData<S>,
}

impl<S: NalSyntax> Default for NalDepacketizer<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: NalSyntax> NalDepacketizer<S> {
    /// A depacketizer that waits for the first keyframe before delivering anything.
    pub fn new() -> Self {
        NalDepacketizer {
            au_bytes: 0,
            nals: Vec::new(),
            timestamp: None,
            fragment: None,
            broken: false,
            gate: KeyframeGate::default(),
            parameter_sets: vec![None; S::PARAMETER_SETS.len()],
            syntax: PhantomData,
        }
    }

    /// A depacketizer that knows the parameter sets the sender's SDP signals in its
    /// `a=fmtp` lines (`sprop-parameter-sets`, `sprop-vps`/`-sps`/`-pps`), for senders
    /// that signal them there and not before every keyframe. Values that are not base64
    /// NAL units of a parameter set type are ignored; in-band ones replace these as they
    /// come.
    pub fn with_sdp(sdp: &str) -> Self {
        let mut depacketizer = Self::new();
        let values = sdp
            .lines()
            .filter_map(|line| line.trim_end().strip_prefix("a=fmtp:"))
            .filter_map(|line| line.split_once(' ').map(|(_, params)| params))
            .flat_map(|params| params.split(';'))
            .filter_map(|param| param.split_once('='))
            .filter(|(key, _)| S::SPROP_KEYS.contains(&key.trim()))
            .flat_map(|(_, value)| value.trim().split(','));
        for value in values {
            let Ok(nal) = BASE64.decode(value.trim()) else {
                continue;
            };
            if let Some(slot) = depacketizer.parameter_set_slot(&nal) {
                depacketizer.parameter_sets[slot] = Some(Bytes::from(nal));
            }
        }
        depacketizer
    }

    /// Bytes held for the access unit being assembled.
    #[cfg(test)]
    pub(crate) fn held_bytes(&self) -> usize {
        self.nals.iter().map(|n| n.len()).sum::<usize>()
            + self.fragment.as_ref().map_or(0, |f| f.len())
    }

    /// Whether the depacketizer is waiting for a keyframe (the caller should ask for one).
    pub fn needs_keyframe(&self) -> bool {
        self.gate.awaiting_keyframe()
    }

    /// Tells the depacketizer that packets were lost just before the next one.
    pub fn lost(&mut self) {
        self.broken = true;
        self.fragment = None;
    }

    /// Feeds one packet; returns an access unit when its last packet arrived.
    pub fn push(&mut self, packet: &RtpPayload) -> Option<AssembledFrame> {
        let mut out = None;
        if self.timestamp.is_some_and(|ts| ts != packet.timestamp) {
            // A new access unit started without the previous one's marker: the end of
            // the previous one was lost.
            self.broken = true;
            out = self.finish();
        }
        self.timestamp = Some(packet.timestamp);
        self.au_bytes += packet.payload.len();
        if self.au_bytes > MAX_ACCESS_UNIT_BYTES {
            // Too large to be real: drop what was assembled and the rest of it.
            self.nals.clear();
            self.au_bytes = 0;
            self.broken = true;
            self.fragment = None;
        } else if self.parse(&packet.payload).is_err() {
            self.broken = true;
            self.fragment = None;
        }
        if packet.marker {
            out = self.finish().or(out);
        }
        out
    }

    fn parse(&mut self, payload: &Bytes) -> Result<(), ()> {
        match S::packet(payload)? {
            NalPacket::Single => self.nals.push(payload.clone()),
            NalPacket::Aggregate(mut rest) => {
                while rest.len() >= 2 {
                    let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                    if len == 0 || rest.len() < 2 + len {
                        return Err(());
                    }
                    self.nals.push(rest.slice(2..2 + len));
                    rest = rest.slice(2 + len..);
                }
                if !rest.is_empty() {
                    return Err(());
                }
            }
            NalPacket::Fragment {
                start,
                end,
                header,
                data,
            } => {
                if start {
                    let mut nal = BytesMut::with_capacity(payload.len() * 8);
                    nal.put_slice(&header[..S::HEADER_LEN]);
                    self.fragment = Some(nal);
                }
                // A middle or end fragment with no start before it: joined mid-NAL or
                // the start was lost. Nothing usable until the next start.
                let nal = self.fragment.as_mut().ok_or(())?;
                nal.put_slice(&data);
                if end && let Some(nal) = self.fragment.take() {
                    self.nals.push(nal.freeze());
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Option<AssembledFrame> {
        self.au_bytes = 0;
        let nals = std::mem::take(&mut self.nals);
        let timestamp = self.timestamp.take()?;
        let broken = std::mem::replace(&mut self.broken, false) || self.fragment.is_some();
        self.fragment = None;
        for nal in &nals {
            if let Some(slot) = self.parameter_set_slot(nal) {
                self.parameter_sets[slot] = Some(nal.clone());
            }
        }
        if broken {
            self.gate.frame_lost();
            return None;
        }
        let types = || nals.iter().filter_map(|n| S::nal_type(n));
        let keyframe = types().any(S::is_keyframe);
        if !types().any(S::is_slice) {
            return None; // parameter sets or SEI alone
        }
        if !self.gate.admits(keyframe) {
            return None;
        }
        // A keyframe whose parameter sets never arrived, in it, before it or in the SDP
        // (the packet carrying them was the viewer's first and was lost, so no gap
        // showed), cannot be decoded: wait for the next keyframe rather than hand the
        // decoder a picture it must refuse.
        if keyframe && self.parameter_sets.iter().any(Option::is_none) {
            self.gate.frame_lost();
            return None;
        }
        let data = self.annex_b(&nals, keyframe);
        self.gate.pass(data, timestamp, keyframe)
    }

    fn parameter_set_slot(&self, nal: &[u8]) -> Option<usize> {
        let kind = S::nal_type(nal)?;
        S::PARAMETER_SETS.iter().position(|&p| p == kind)
    }

    /// One access unit in Annex B, with its parameter sets where decoders want them:
    /// before its first slice, once each. Some senders repeat them before every slice
    /// of a keyframe (GStreamer's rtph264pay with config-interval=-1 on a multi-slice
    /// x264 picture); parameter sets between slices are not allowed in H.264 (7.4.1.2.3)
    /// and make decoders split the picture in two, so those are left out. A keyframe
    /// without its own gets the stream's last ones.
    fn annex_b(&self, nals: &[Bytes], keyframe: bool) -> Bytes {
        let mut data =
            BytesMut::with_capacity(nals.iter().map(|n| n.len() + 4).sum::<usize>() + 96);
        let first_slice = nals
            .iter()
            .position(|n| S::nal_type(n).is_some_and(S::is_slice))
            .unwrap_or(nals.len());
        let leading = &nals[..first_slice];
        let mut put = |nal: &Bytes| {
            data.put_slice(&START_CODE);
            data.put_slice(nal);
        };
        let mut written: Vec<&Bytes> = Vec::new();
        for nal in leading {
            if self.parameter_set_slot(nal).is_some() {
                if written.contains(&nal) {
                    continue;
                }
                written.push(nal);
            }
            put(nal);
        }
        if keyframe {
            for (slot, set) in self.parameter_sets.iter().enumerate() {
                if !leading
                    .iter()
                    .any(|n| self.parameter_set_slot(n) == Some(slot))
                    && let Some(set) = set
                {
                    put(set);
                }
            }
        }
        for nal in &nals[first_slice..] {
            if self.parameter_set_slot(nal).is_none() {
                put(nal);
            }
        }
        data.freeze()
    }
}
