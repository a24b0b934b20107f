//! Which media section an RTP stream the answer did not signal belongs to.
//!
//! A receiver finds a packet's track by its SSRC when the answer lists it (`a=ssrc`), or
//! by the MID header extension. Some senders do neither: GStreamer's webrtcbin answers
//! without `a=ssrc` lines and sends no `sdes:mid` extension, with audio and video
//! BUNDLEd on one transport. RFC 8843 §9.2 then tells the receiver to route by payload
//! type, which is unique across the BUNDLE group's sections. libwebrtc and aiortc do.
//!
//! webrtc-rs 0.21 only routes an unsignalled SSRC when the connection has a single
//! transceiver, so a BUNDLEd audio+video session from such a sender plays nothing. Its
//! router is not pluggable, so we route before it: once a packet of an unknown SSRC is
//! seen (by [`super::unsignalled`]), this module finds its section by payload type and
//! writes the SSRC into the answer, which the player applies again (a local
//! renegotiation the server never sees). From then on the stack's own SSRC routing,
//! NACK and reports work for that stream as for any signalled one.
//!
//! Everything here is text in, text out: no network, tested with captured answers.

/// One media section (`m=` line and its attributes) of an SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// `audio`, `video` or `application`.
    pub kind: String,
    /// Its `a=mid`, if any.
    pub mid: Option<String>,
    /// Payload types on its `m=` line.
    pub payload_types: Vec<u8>,
    /// Payload types of its `rtx` codecs, with the payload type each repairs (`apt`).
    pub rtx: Vec<(u8, u8)>,
    /// SSRCs it declares (`a=ssrc:`).
    pub ssrcs: Vec<u32>,
    /// Whether the answerer sends in this section (`sendonly` or `sendrecv`).
    pub sends: bool,
}

/// The media sections of an SDP answer, in order.
pub fn sections(sdp: &str) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    for line in sdp.lines().map(str::trim_end) {
        if let Some(media) = line.strip_prefix("m=") {
            let mut fields = media.split_whitespace();
            let kind = fields.next().unwrap_or_default().to_string();
            let payload_types = fields.skip(2).filter_map(|pt| pt.parse().ok()).collect();
            sections.push(Section {
                kind,
                mid: None,
                payload_types,
                rtx: Vec::new(),
                ssrcs: Vec::new(),
                // RFC 3264: a section without a direction attribute is sendrecv.
                sends: true,
            });
            continue;
        }
        let Some(section) = sections.last_mut() else {
            continue;
        };
        if let Some(mid) = line.strip_prefix("a=mid:") {
            section.mid = Some(mid.trim().to_string());
        } else if let Some(ssrc) = line.strip_prefix("a=ssrc:") {
            let id = ssrc.split_whitespace().next().and_then(|s| s.parse().ok());
            if let Some(id) = id
                && !section.ssrcs.contains(&id)
            {
                section.ssrcs.push(id);
            }
        } else if let Some(fmtp) = line.strip_prefix("a=fmtp:") {
            let (pt, parameters) = fmtp.split_once(' ').unwrap_or((fmtp, ""));
            let apt = parameters
                .split(';')
                .filter_map(|p| p.trim().strip_prefix("apt="))
                .find_map(|apt| apt.parse().ok());
            if let (Ok(pt), Some(apt)) = (pt.parse(), apt) {
                section.rtx.push((pt, apt));
            }
        } else if matches!(line, "a=recvonly" | "a=inactive") {
            section.sends = false;
        } else if matches!(line, "a=sendonly" | "a=sendrecv") {
            section.sends = true;
        }
    }
    sections
}

/// Where a stream of an unknown SSRC goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A media stream of section `section`.
    Media {
        /// Index of the section.
        section: usize,
    },
    /// A retransmission (RTX) stream of section `section`, repairing payload type `apt`.
    Repair {
        /// Index of the section.
        section: usize,
        /// The payload type it repairs.
        apt: u8,
    },
}

/// The section a packet of payload type `payload_type` belongs to (RFC 8843 §9.2): the
/// only sending section that lists it. `None` when none does, or when more than one
/// does (the answer is then ambiguous and the packet cannot be routed by type).
pub fn route_by_payload_type(sections: &[Section], payload_type: u8) -> Option<Route> {
    let mut matches = sections
        .iter()
        .enumerate()
        .filter(|(_, s)| s.sends && s.payload_types.contains(&payload_type));
    let (index, section) = matches.next()?;
    if matches.next().is_some() {
        return None;
    }
    Some(
        match section.rtx.iter().find(|(pt, _)| *pt == payload_type) {
            Some(&(_, apt)) => Route::Repair {
                section: index,
                apt,
            },
            None => Route::Media { section: index },
        },
    )
}

/// `sdp` with `ssrc` declared in section `section`, replacing any SSRC it declared
/// before (a sender that changed its SSRC). With `repairs`, the SSRC is declared as the
/// retransmission stream of that media SSRC (`a=ssrc-group:FID`). `None` if there is no
/// such section.
pub fn declare_ssrc(sdp: &str, section: usize, ssrc: u32, repairs: Option<u32>) -> Option<String> {
    let newline = if sdp.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out = String::with_capacity(sdp.len() + 128);
    let mut current: Option<usize> = None;
    let mut found = false;
    let mut cname = None;
    // Lines of the target section are held back so the new ones go at its end.
    // The stack names a track after its msid: each SSRC gets its own, or the streams of
    // two sections would be handed to one track.
    let flush = |out: &mut String, cname: &Option<String>| {
        let cname = cname.as_deref().unwrap_or("streamhub-unsignalled");
        let track = repairs.unwrap_or(ssrc);
        let declare = |out: &mut String, id: u32| {
            out.push_str(&format!("a=ssrc:{id} cname:{cname}{newline}"));
            out.push_str(&format!(
                "a=ssrc:{id} msid:streamhub-unsignalled track-{track}{newline}"
            ));
        };
        if let Some(media) = repairs {
            out.push_str(&format!("a=ssrc-group:FID {media} {ssrc}{newline}"));
            declare(out, media);
        }
        declare(out, ssrc);
    };
    for line in sdp.lines().map(str::trim_end) {
        if line.starts_with("m=") {
            if current == Some(section) {
                flush(&mut out, &cname);
            }
            current = Some(current.map_or(0, |c| c + 1));
            found |= current == Some(section);
        }
        if current == Some(section)
            && (line.starts_with("a=ssrc:") || line.starts_with("a=ssrc-group:"))
        {
            if cname.is_none() {
                cname = line
                    .split_once(" cname:")
                    .map(|(_, name)| name.trim().to_string());
            }
            continue;
        }
        if !line.is_empty() {
            out.push_str(line);
            out.push_str(newline);
        }
    }
    if current == Some(section) {
        flush(&mut out, &cname);
    }
    found.then_some(out)
}

/// What to do with a stream of an SSRC no track owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routing {
    /// Apply this answer (the SSRC declared, a codec adopted, or both).
    Apply(String),
    /// Nothing to change: the answer already declares the SSRC where it belongs.
    Nothing,
    /// No section takes it (its payload type is in no section, or in several).
    Unroutable,
}

/// Routes SSRC `ssrc`, seen with payload type `payload_type`, by the answer's payload
/// types (RFC 8843 §9.2): declares it in its section unless it is already there. An RTX
/// stream is grouped with the media SSRC `repairs` names (found by its
/// repaired-rtp-stream-id) when that SSRC is the section's, else with the section's
/// first media SSRC.
pub fn route(answer: &str, ssrc: u32, payload_type: u8, repairs: Option<u32>) -> Routing {
    let answered = sections(answer);
    let declared = match route_by_payload_type(&answered, payload_type) {
        None => return Routing::Unroutable,
        Some(Route::Media { section }) | Some(Route::Repair { section, .. })
            if answered[section].ssrcs.contains(&ssrc) =>
        {
            return Routing::Nothing;
        }
        Some(Route::Media { section }) => declare_ssrc(answer, section, ssrc, None),
        // Grouped with the section's media SSRC once that one is known.
        Some(Route::Repair { section, .. }) => {
            let ssrcs = &answered[section].ssrcs;
            repairs
                .filter(|media| ssrcs.contains(media))
                .or_else(|| ssrcs.first().copied())
                .and_then(|media| declare_ssrc(answer, section, ssrc, Some(media)))
        }
    };
    declared.map_or(Routing::Unroutable, Routing::Apply)
}

/// Why a stream of SSRC `ssrc` and payload type `payload_type` found no track, for the
/// no-media diagnosis. libwebrtc picks what it sends from the offer's order and has
/// been seen sending a codec its own answer left out (Chromium answering VP8 only, by
/// codec preferences, and sending H.264): the stack then has no codec for it.
pub fn explain(answer: &str, offer: &str, ssrc: u32, payload_type: u8) -> String {
    let answered = sections(answer);
    let offered_codec = offer
        .lines()
        .find_map(|l| {
            l.trim_end()
                .strip_prefix(&format!("a=rtpmap:{payload_type} "))
        })
        .map(|codec| codec.split('/').next().unwrap_or(codec).to_string());
    let in_answer = answered
        .iter()
        .any(|s| s.payload_types.contains(&payload_type));
    let signalled = answered.iter().any(|s| s.ssrcs.contains(&ssrc));
    match (in_answer, &offered_codec) {
        (false, Some(codec)) => format!(
            "payload type {payload_type} is {codec} in our offer but not in the answer: the \
             sender sends a codec it did not answer"
        ),
        (false, None) => format!("payload type {payload_type} is in neither offer nor answer"),
        (true, _) if signalled => format!("payload type {payload_type}, signalled, not bound"),
        (true, _) => format!(
            "not signalled, and payload type {payload_type} is in more than one section of \
             the answer"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GStreamer 1.22 webrtcbin's answer to our offer, captured here: BUNDLEd audio and
    /// video, no `a=ssrc`, no `a=extmap` (so no MID extension either).
    const GSTREAMER_ANSWER: &str = include_str!("testdata/gstreamer_answer.sdp");

    #[test]
    fn the_captured_gstreamer_answer_signals_neither_ssrc_nor_mid_extension() {
        assert!(!GSTREAMER_ANSWER.contains("a=ssrc"));
        assert!(!GSTREAMER_ANSWER.contains("a=extmap"));
        assert!(GSTREAMER_ANSWER.contains("a=group:BUNDLE 0 1"));
        let sections = sections(GSTREAMER_ANSWER);
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[0].kind, "audio");
        assert_eq!(sections[0].payload_types, vec![111]);
        assert_eq!(sections[1].kind, "video");
        assert_eq!(sections[1].payload_types, vec![102]);
        assert!(sections.iter().all(|s| s.sends && s.ssrcs.is_empty()));
    }

    #[test]
    fn unsignalled_streams_of_the_gstreamer_answer_route_by_payload_type() {
        let sections = sections(GSTREAMER_ANSWER);
        assert_eq!(
            route_by_payload_type(&sections, 111),
            Some(Route::Media { section: 0 })
        );
        assert_eq!(
            route_by_payload_type(&sections, 102),
            Some(Route::Media { section: 1 })
        );
        assert_eq!(route_by_payload_type(&sections, 96), None);
    }

    #[test]
    fn declaring_the_seen_ssrcs_makes_the_answer_signal_them_and_nothing_else_changes() {
        let video = declare_ssrc(GSTREAMER_ANSWER, 1, 3_631_131_710, None).expect("section");
        let both = declare_ssrc(&video, 0, 3_531_355_078, None).expect("section");
        let sections = sections(&both);
        assert_eq!(sections[0].ssrcs, vec![3_531_355_078]);
        assert_eq!(sections[1].ssrcs, vec![3_631_131_710]);
        // Every original line is still there, in order.
        let kept: Vec<&str> = both.lines().filter(|l| !l.starts_with("a=ssrc")).collect();
        let original: Vec<&str> = GSTREAMER_ANSWER.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(kept, original);
        // The SSRC lines close their own section, before the next m= line.
        let audio_ssrc = both.find("a=ssrc:3531355078").expect("audio ssrc");
        let video_m = both.find("m=video").expect("video section");
        assert!(audio_ssrc < video_m);
        assert_eq!(declare_ssrc(GSTREAMER_ANSWER, 2, 1, None), None);
    }

    #[test]
    fn a_new_ssrc_replaces_the_old_one_and_rtx_is_grouped_with_its_media() {
        let first = declare_ssrc(GSTREAMER_ANSWER, 1, 1111, None).expect("section");
        let changed = declare_ssrc(&first, 1, 2222, None).expect("section");
        assert_eq!(sections(&changed)[1].ssrcs, vec![2222]);
        let with_rtx = declare_ssrc(&changed, 1, 3333, Some(2222)).expect("section");
        assert!(with_rtx.contains("a=ssrc-group:FID 2222 3333"));
        assert_eq!(sections(&with_rtx)[1].ssrcs, vec![2222, 3333]);
    }

    #[test]
    fn rtx_payload_types_route_as_repairs_and_ambiguous_types_do_not_route() {
        let sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=mid:0\r\na=rtpmap:97 rtx/90000\r\n\
                   a=fmtp:97 apt=96\r\na=sendonly\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n\
                   a=sendonly\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:2\r\na=recvonly\r\n";
        let sections = sections(sdp);
        assert_eq!(
            route_by_payload_type(&sections, 97),
            Some(Route::Repair {
                section: 0,
                apt: 96
            })
        );
        assert_eq!(
            route_by_payload_type(&sections, 96),
            None,
            "two sections list 96"
        );
        assert_eq!(route_by_payload_type(&sections, 111), None, "not sending");
    }

    /// Chromium's answer to our offer with VP8 preferred: it names VP8 (96, RTX 97) and
    /// then sends H.264 (102, RTX 103), the offer's first codec.
    const CHROMIUM_VP8_ANSWER: &str = "v=0\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\na=rtpmap:111 opus/48000/2\r\n\
        a=ssrc:3951902687 cname:x\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=mid:1\r\na=sendonly\r\n\
        a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
        a=ssrc-group:FID 3989134079 3177089439\r\na=ssrc:3989134079 cname:x\r\n\
        a=ssrc:3177089439 cname:x\r\n";
    const OUR_OFFER: &str = "v=0\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
        a=recvonly\r\na=rtpmap:111 opus/48000/2\r\nm=video 9 UDP/TLS/RTP/SAVPF 102 103 96 97\r\n\
        a=mid:1\r\na=recvonly\r\na=rtpmap:102 H264/90000\r\na=rtcp-fb:102 nack\r\n\
        a=fmtp:102 packetization-mode=1;profile-level-id=42e01f\r\na=rtpmap:103 rtx/90000\r\n\
        a=fmtp:103 apt=102\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n";

    #[test]
    fn routing_declares_once_and_a_codec_the_answer_left_out_is_explained() {
        let Routing::Apply(answer) = route(GSTREAMER_ANSWER, 77, 102, None) else {
            panic!("routable");
        };
        assert_eq!(sections(&answer)[1].ssrcs, vec![77]);
        assert_eq!(route(&answer, 77, 102, None), Routing::Nothing);
        assert_eq!(
            route(CHROMIUM_VP8_ANSWER, 3989134079, 102, None),
            Routing::Unroutable
        );
        assert_eq!(
            explain(CHROMIUM_VP8_ANSWER, OUR_OFFER, 3989134079, 102),
            "payload type 102 is H264 in our offer but not in the answer: the sender sends a \
             codec it did not answer"
        );
        assert_eq!(
            explain(CHROMIUM_VP8_ANSWER, OUR_OFFER, 1, 120),
            "payload type 120 is in neither offer nor answer"
        );
    }

    /// A section with two media streams (simulcast layers, SSRCs 10 and 20): an RTX
    /// stream joins the one its repaired-rtp-stream-id names, else the first.
    #[test]
    fn an_rtx_stream_joins_the_media_stream_its_repaired_rid_names() {
        let answer = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=mid:0\r\n\
                      a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\na=sendonly\r\n\
                      a=ssrc:10 cname:x\r\na=ssrc:20 cname:x\r\n";
        let grouped = |repairs| match route(answer, 30, 97, repairs) {
            Routing::Apply(routed) => routed,
            other => panic!("routable: {other:?}"),
        };
        assert!(grouped(Some(20)).contains("a=ssrc-group:FID 20 30"));
        assert!(grouped(None).contains("a=ssrc-group:FID 10 30"));
        assert!(
            grouped(Some(99)).contains("a=ssrc-group:FID 10 30"),
            "99 is not this section's"
        );
    }
}
