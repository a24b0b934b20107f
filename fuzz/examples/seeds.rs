//! Writes the seed corpus of every fuzz target into `fuzz/seeds/<target>/`, from real
//! data (`assets/demo.flv`, the hub's own RTP packetizer, rml_rtmp's chunk writer, the
//! chat protocol's types). Run from the repository root:
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example seeds
//! ```
//!
//! A crash's input is added by hand (`fuzz/seeds/<target>/crash-<what>`), not here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use rml_rtmp::chunk_io::ChunkSerializer;
use rml_rtmp::messages::{PeerBandwidthLimitType, RtmpMessage, UserControlEventType};
use rml_rtmp::time::RtmpTimestamp;
use serde_json::json;
use streamhub::_internal_test_exports::hub::ingest::feed::Feed;
use streamhub::_internal_test_exports::hub::stream::{LiveStream, MediaUnit};
use streamhub::chat::protocol::{
    ChatMessage, CommandFrame, ConnectResult, Disconnect, ErrorBody, ErrorCode, JoinResult, Limits,
    MemberEvent, RateInfo, Reply, Role, RoomState, SendResult, ServerFrame, UserInfo,
};
use streamhub::chat::server::{Claims, TokenKeys};
use streamhub::media::sei::latency_stamp;
use streamhub::media::{AdtsFrame, AudioSpecificConfig, AvcDecoderConfig};
use streamhub_fuzz::chat::{FAR_EXPIRY, SECRET};
use streamhub_fuzz::{records, rtp};

type Error = Box<dyn std::error::Error>;

/// One raw tag of the demo file: its bytes (header, body, previous tag size), type,
/// timestamp and body.
struct RawTag {
    bytes: Vec<u8>,
    kind: u8,
    timestamp_ms: u32,
    body: Vec<u8>,
}

fn demo_tags(flv: &[u8]) -> Result<(Vec<u8>, Vec<RawTag>), Error> {
    let header = flv.get(..13).ok_or("demo.flv: no header")?.to_vec();
    let mut tags = Vec::new();
    let mut at = 13;
    while at + 11 <= flv.len() {
        let h = &flv[at..at + 11];
        let size = usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]);
        let end = at + 11 + size + 4;
        let Some(bytes) = flv.get(at..end) else {
            break;
        };
        tags.push(RawTag {
            bytes: bytes.to_vec(),
            kind: h[0] & 0x1f,
            timestamp_ms: u32::from_be_bytes([h[7], h[4], h[5], h[6]]),
            body: flv[at + 11..at + 11 + size].to_vec(),
        });
        at = end;
    }
    Ok((header, tags))
}

struct Seeds {
    root: PathBuf,
    written: usize,
}

impl Seeds {
    fn put(&mut self, target: &str, name: &str, data: impl AsRef<[u8]>) -> Result<(), Error> {
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), data.as_ref())?;
        self.written += 1;
        Ok(())
    }
}

/// The demo's parts the seeds are made of.
struct Demo {
    header: Vec<u8>,
    tags: Vec<RawTag>,
}

impl Demo {
    fn first(&self, kind: u8, pred: impl Fn(&RawTag) -> bool) -> Result<&RawTag, Error> {
        self.tags
            .iter()
            .find(|t| t.kind == kind && pred(t))
            .ok_or_else(|| format!("demo.flv has no such tag of type {kind}").into())
    }
    fn video_config(&self) -> Result<&RawTag, Error> {
        self.first(9, |t| t.body.get(1) == Some(&0))
    }
    fn audio_config(&self) -> Result<&RawTag, Error> {
        self.first(8, |t| t.body.get(1) == Some(&0))
    }
    /// The smallest inter frames, in file order.
    fn small_frames(&self, count: usize, max: usize) -> Vec<&RawTag> {
        self.tags
            .iter()
            .filter(|t| t.kind == 9 && t.body.first() == Some(&0x27) && t.body.len() <= max)
            .take(count)
            .collect()
    }
    fn audio_frames(&self, count: usize) -> Vec<&RawTag> {
        self.tags
            .iter()
            .filter(|t| t.kind == 8 && t.body.get(1) == Some(&1))
            .take(count)
            .collect()
    }
    fn avc_config(&self) -> Result<AvcDecoderConfig, Error> {
        Ok(AvcDecoderConfig::parse(&self.video_config()?.body[5..])?)
    }
}

fn flv(seeds: &mut Seeds, demo: &Demo) -> Result<(), Error> {
    let mut file = demo.header.clone();
    let script = demo.first(18, |_| true)?;
    file.extend_from_slice(&script.bytes);
    file.extend_from_slice(&demo.video_config()?.bytes);
    file.extend_from_slice(&demo.audio_config()?.bytes);
    for tag in demo.audio_frames(3) {
        file.extend_from_slice(&tag.bytes);
    }
    for tag in demo.small_frames(2, 600) {
        file.extend_from_slice(&tag.bytes);
    }
    seeds.put("flv", "demo_head", &file)?;
    seeds.put("flv", "demo_truncated", &file[..file.len() - 40])?;
    // A tag past 2^24 ms (the extended timestamp byte) and an end of sequence.
    let mut extended = demo.header.clone();
    let mut eos = vec![9, 0, 0, 5, 0x12, 0x34, 0x56, 0x01, 0, 0, 0];
    eos.extend_from_slice(&[0x17, 2, 0, 0, 0]);
    eos.extend_from_slice(&16u32.to_be_bytes());
    extended.extend_from_slice(&demo.video_config()?.bytes);
    extended.extend_from_slice(&eos);
    seeds.put("flv", "extended_timestamp", &extended)
}

/// An AMF0 value, objects with their keys in order (rml_rtmp's use a `HashMap`, which
/// would make the seeds differ at every run).
enum Amf {
    Str(&'static str),
    Num(f64),
    Null,
    Undefined,
    Obj(Vec<(&'static str, Amf)>),
}

fn amf0(values: &[Amf], out: &mut Vec<u8>) {
    fn string(s: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(&(s.len() as u16).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    for value in values {
        match value {
            Amf::Num(n) => {
                out.push(0);
                out.extend_from_slice(&n.to_be_bytes());
            }
            Amf::Str(s) => {
                out.push(2);
                string(s, out);
            }
            Amf::Obj(props) => {
                out.push(3);
                for (key, value) in props {
                    string(key, out);
                    amf0(std::slice::from_ref(value), out);
                }
                out.extend_from_slice(&[0, 0, 9]);
            }
            Amf::Null => out.push(5),
            Amf::Undefined => out.push(6),
        }
    }
}

fn status(level: &'static str, code: &'static str, description: &'static str) -> Amf {
    Amf::Obj(vec![
        ("level", Amf::Str(level)),
        ("code", Amf::Str(code)),
        ("description", Amf::Str(description)),
    ])
}

/// Server messages in RTMP chunks, as a server writes them.
struct ServerWriter {
    chunks: ChunkSerializer,
    out: Vec<u8>,
}

impl ServerWriter {
    fn new() -> Self {
        ServerWriter {
            chunks: ChunkSerializer::new(),
            out: Vec::new(),
        }
    }
    fn message(&mut self, message: RtmpMessage, stream_id: u32) -> Result<(), Error> {
        let payload = message.into_message_payload(RtmpTimestamp::new(0), stream_id)?;
        let packet = self.chunks.serialize(&payload, false, false)?;
        self.out.extend_from_slice(&packet.bytes);
        Ok(())
    }
    /// A command message (type 20, or 17 for AMF3, whose body starts with a 0 byte)
    /// holding `values`: a name, a transaction id, a command object, arguments, or
    /// fewer (which rml_rtmp 0.8 panicked on).
    fn command(&mut self, type_id: u8, stream_id: u32, values: &[Amf]) -> Result<(), Error> {
        let mut data = if type_id == 17 { vec![0] } else { Vec::new() };
        amf0(values, &mut data);
        self.message(
            RtmpMessage::Unknown {
                type_id,
                data: Bytes::from(data),
            },
            stream_id,
        )
    }
}

/// What our own publisher sends the hub after C2, for a publish of the demo's first
/// seconds, as one read and as 7-byte reads; and the same cut short. Not byte-for-byte
/// repeatable: our publisher's `connect` object goes through rml_rtmp's AMF0 writer,
/// whose objects are `HashMap`s, so its key order changes from run to run (servers
/// accept any order); regenerated files differ only there.
fn rtmp_hub(seeds: &mut Seeds, demo: &Demo) -> Result<(), Error> {
    use streamhub::_internal_test_exports::hub::ingest::session::{IngestEvent, IngestSession};
    use streamhub::_internal_test_exports::rtmp::chunk_reader::ReaderLimits;
    use streamhub::_internal_test_exports::rtmp::packetizer::{MediaMessage, MessageKind};
    use streamhub::_internal_test_exports::rtmp::session::{PublishSession, SessionConfig};
    use streamhub::rtmp::RtmpUrl;

    let url = RtmpUrl::parse("rtmp://127.0.0.1/live/key")?;
    let mut client = PublishSession::new(url, SessionConfig::default())?;
    let mut hub = IngestSession::new(ReaderLimits::default());
    let mut sent = Vec::new();
    let mut outputs = 0;
    let mut pump = |client: &mut PublishSession,
                    hub: &mut IngestSession,
                    sent: &mut Vec<u8>|
     -> Result<(), Error> {
        for _ in 0..50 {
            let mut moved = false;
            if let Some(bytes) = client.take_output() {
                outputs += 1;
                // The first output is C0 and C1; the second starts with C2.
                match outputs {
                    1 => {}
                    2 => sent.extend_from_slice(bytes.get(1536..).unwrap_or_default()),
                    _ => sent.extend_from_slice(&bytes),
                }
                hub.handle_input(&bytes)?;
                moved = true;
            }
            while let Some(event) = hub.poll_event() {
                if matches!(event, IngestEvent::PublishRequested { .. }) {
                    hub.accept_publish();
                }
            }
            if let Some(bytes) = hub.take_output() {
                client.handle_input(&bytes)?;
                moved = true;
            }
            if !moved {
                break;
            }
        }
        Ok(())
    };
    pump(&mut client, &mut hub, &mut sent)?;
    if !client.is_live() {
        return Err("the in-memory publish did not go live".into());
    }
    for tag in demo
        .tags
        .iter()
        .filter(|t| t.kind == 8 || t.kind == 9)
        .take(40)
    {
        let video = tag.kind == 9;
        let split = if video { 5 } else { 2 }.min(tag.body.len());
        client.write_media(&MediaMessage {
            kind: if video {
                MessageKind::Video
            } else {
                MessageKind::Audio
            },
            timestamp: tag.timestamp_ms,
            header: Bytes::copy_from_slice(&tag.body[..split]),
            body: Bytes::copy_from_slice(&tag.body[split..]),
            is_frame: true,
            keyframe: false,
            disposable: false,
        })?;
    }
    client.finish()?;
    pump(&mut client, &mut hub, &mut sent)?;
    let mut whole = vec![0];
    whole.extend_from_slice(&sent);
    seeds.put("rtmp_hub", "publish_ok", &whole)?;
    let mut split = vec![7];
    split.extend_from_slice(&sent);
    seeds.put("rtmp_hub", "publish_ok_7_byte_reads", &split)?;
    let mut refused = vec![0x80];
    refused.extend_from_slice(&sent[..sent.len().min(600)]);
    seeds.put("rtmp_hub", "publish_refused", &refused)?;
    Ok(())
}

fn rtmp_client(seeds: &mut Seeds) -> Result<(), Error> {
    use Amf::{Null, Num, Obj, Str, Undefined};
    // A whole publish as nginx-rtmp and SRS answer it.
    let mut w = ServerWriter::new();
    w.message(RtmpMessage::WindowAcknowledgement { size: 2_500_000 }, 0)?;
    w.message(
        RtmpMessage::SetPeerBandwidth {
            size: 2_500_000,
            limit_type: PeerBandwidthLimitType::Dynamic,
        },
        0,
    )?;
    let packet = w.chunks.set_max_chunk_size(4096, RtmpTimestamp::new(0))?;
    w.out.extend_from_slice(&packet.bytes);
    let server = Obj(vec![
        ("fmsVer", Str("FMS/3,0,1,123")),
        ("capabilities", Num(31.0)),
    ]);
    let connected = status(
        "status",
        "NetConnection.Connect.Success",
        "Connection succeeded.",
    );
    w.command(20, 0, &[Str("_result"), Num(1.0), server, connected])?;
    w.command(20, 0, &[Str("onBWDone")])?;
    w.command(20, 0, &[Str("_result"), Num(2.0), Null, Undefined])?;
    let fc = status("status", "NetStream.Publish.Start", "FCPublish");
    w.command(20, 0, &[Str("onFCPublish"), Num(0.0), Null, fc])?;
    w.command(20, 0, &[Str("_result"), Num(4.0), Null, Num(1.0)])?;
    w.message(
        RtmpMessage::UserControl {
            event_type: UserControlEventType::StreamBegin,
            stream_id: Some(1),
            buffer_length: None,
            timestamp: None,
        },
        0,
    )?;
    let live = status(
        "status",
        "NetStream.Publish.Start",
        "live/key is now published.",
    );
    w.command(20, 1, &[Str("onStatus"), Num(0.0), Null, live])?;
    w.message(
        RtmpMessage::UserControl {
            event_type: UserControlEventType::PingRequest,
            stream_id: None,
            buffer_length: None,
            timestamp: Some(RtmpTimestamp::new(1234)),
        },
        0,
    )?;
    w.message(
        RtmpMessage::Acknowledgement {
            sequence_number: 4096,
        },
        0,
    )?;
    let publish = w.out;
    seeds.put("rtmp_client", "publish_ok", [&[0][..], &publish].concat())?;
    seeds.put(
        "rtmp_client",
        "publish_ok_7_byte_reads",
        [&[7][..], &publish].concat(),
    )?;

    let mut w = ServerWriter::new();
    let refused = status("error", "NetConnection.Connect.Rejected", "app not found");
    w.command(20, 0, &[Str("_error"), Num(1.0), Null, refused])?;
    seeds.put(
        "rtmp_client",
        "connect_refused",
        [&[0][..], &w.out].concat(),
    )?;

    // Commands shorter than usual, and an AMF3 command (ffmpeg's server).
    let mut w = ServerWriter::new();
    w.command(20, 0, &[Str("_result"), Num(1.0)])?;
    w.command(17, 0, &[Str("_result"), Num(4.0), Null, Num(1.0)])?;
    let bad_name = status("error", "NetStream.Publish.BadName", "stream key in use");
    w.command(20, 1, &[Str("onStatus"), Num(0.0), Null, bad_name])?;
    seeds.put(
        "rtmp_client",
        "short_and_amf3_commands",
        [&[0][..], &w.out].concat(),
    )?;

    // A 300-byte message in 128-byte chunks (type 3 continuations), then an abort.
    let mut w = ServerWriter::new();
    let long: &'static str = Box::leak("x".repeat(300).into_boxed_str());
    w.command(20, 0, &[Str("onMetaData"), Num(0.0), Str(long)])?;
    w.message(RtmpMessage::Abort { stream_id: 3 }, 0)?;
    seeds.put(
        "rtmp_client",
        "chunked_message",
        [&[0][..], &w.out].concat(),
    )
}

fn rtmp_media(seeds: &mut Seeds, demo: &Demo) -> Result<(), Error> {
    let mut data = Vec::new();
    let config = demo.video_config()?;
    records::encode(&mut data, true, config.timestamp_ms, &config.body);
    let audio = demo.audio_config()?;
    records::encode(&mut data, false, audio.timestamp_ms, &audio.body);
    // A small keyframe of the demo's configuration (its SPS and PPS come first).
    let mut idr = vec![0x17, 1, 0, 0, 0x21];
    idr.extend_from_slice(&4u32.to_be_bytes());
    idr.extend_from_slice(&[0x65, 0x88, 0x84, 0x00]);
    records::encode(&mut data, true, 0, &idr);
    for tag in demo.audio_frames(4) {
        records::encode(&mut data, false, tag.timestamp_ms, &tag.body);
    }
    for tag in demo.small_frames(2, 600) {
        records::encode(&mut data, true, tag.timestamp_ms, &tag.body);
    }
    seeds.put("rtmp_media", "demo_av", &data)?;

    // Enhanced RTMP Opus: sequence start (OpusHead), packets, sequence end.
    let mut data = Vec::new();
    let mut head = vec![0x90];
    head.extend_from_slice(b"Opus");
    head.extend_from_slice(b"OpusHead");
    head.extend_from_slice(&[1, 2, 0x38, 1, 0x80, 0xbb, 0, 0, 0, 0, 0]);
    records::encode(&mut data, false, 0, &head);
    for (i, packet) in [[0xfc, 0xff, 0xfe], [0x78, 0x01, 0x02]].iter().enumerate() {
        let mut body = vec![0x91];
        body.extend_from_slice(b"Opus");
        body.extend_from_slice(packet);
        records::encode(&mut data, false, 20 * i as u32, &body);
    }
    records::encode(&mut data, false, 40, b"\x92Opus");
    seeds.put("rtmp_media", "opus", &data)?;

    // What a publisher should not send: another codec, a frame before its
    // configuration, unknown packet types, timestamps going back and wrapping.
    let mut data = Vec::new();
    records::encode(&mut data, true, 0, &[0x22, 0, 0, 0, 0]);
    records::encode(&mut data, true, 5, &[0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41]);
    records::encode(&mut data, true, 5, &[0x17, 7, 0, 0, 0]);
    records::encode(&mut data, false, u32::MAX, &[0xaf, 9]);
    records::encode(&mut data, false, 3, &[0x2f, 1, 2]);
    seeds.put("rtmp_media", "refused", &data)
}

fn transcode(seeds: &mut Seeds, demo: &Demo) -> Result<(), Error> {
    let config = demo.audio_config()?;
    let frames = demo.audio_frames(5);
    let mut data = Vec::new();
    records::encode(&mut data, false, 0, &config.body[2..]);
    for tag in &frames {
        records::encode(&mut data, false, tag.timestamp_ms, &tag.body[2..]);
    }
    seeds.put("transcode", "demo_aac", &data)?;
    // A corrupt unit, an empty one, then a jump back in time and one far ahead.
    let mut data = Vec::new();
    records::encode(&mut data, false, 0, &config.body[2..]);
    records::encode(&mut data, false, 0, &frames[0].body[2..]);
    records::encode(&mut data, false, 23, &[0x21, 0x1b, 0xff, 0xff, 0xff]);
    records::encode(&mut data, false, 46, &[]);
    records::encode(&mut data, false, 5, &frames[1].body[2..]);
    records::encode(&mut data, false, 90_000, &frames[2].body[2..]);
    seeds.put("transcode", "corrupt_and_jumps", &data)?;
    // Mono at 8 kHz (a resampler ratio of 6).
    let mut data = Vec::new();
    records::encode(&mut data, false, 0, &[0x15, 0x88]);
    records::encode(&mut data, false, 0, &frames[0].body[2..]);
    seeds.put("transcode", "mono_8khz", &data)
}

fn avc(seeds: &mut Seeds, demo: &Demo) -> Result<(), Error> {
    let config = demo.avc_config()?;
    seeds.put("avc", "demo_record", [&[3][..], config.record()].concat())?;
    let sps = Bytes::from_static(&[0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xbf, 0xe5, 0x84]);
    let pps = Bytes::from_static(&[0x68, 0xce, 0x3c, 0x80]);
    let built = AvcDecoderConfig::from_parameter_sets(
        std::slice::from_ref(&sps),
        std::slice::from_ref(&pps),
    )?;
    seeds.put(
        "avc",
        "baseline_record",
        [&[3][..], built.record()].concat(),
    )?;
    // An app's Annex-B keyframe: SPS, PPS and an IDR slice (as avcc with 2-byte lengths
    // too, for the splitter).
    let mut annexb = vec![0x81];
    for nal in [
        &config.sps()[0][..],
        &config.pps()[0][..],
        &[0x65, 0x88, 0x84, 0x00][..],
    ] {
        annexb.extend_from_slice(&[0, 0, 0, 1]);
        annexb.extend_from_slice(nal);
    }
    seeds.put("avc", "annexb_keyframe", &annexb)?;
    let mut avcc = vec![1];
    for nal in [&sps[..], &pps[..]] {
        avcc.extend_from_slice(&(nal.len() as u16).to_be_bytes());
        avcc.extend_from_slice(nal);
    }
    seeds.put("avc", "avcc_2_byte_lengths", &avcc)
}

fn aac(seeds: &mut Seeds, demo: &Demo) -> Result<(), Error> {
    let config = &demo.audio_config()?.body[2..];
    seeds.put("aac", "demo_config", config)?;
    // The demo is AAC-LC, 44.1 kHz, stereo.
    let lc = AudioSpecificConfig::new(2, 44_100, 2)?;
    let mut stream = Vec::new();
    for tag in demo.audio_frames(3) {
        let frame = AdtsFrame {
            config: lc.clone(),
            payload: Bytes::copy_from_slice(&tag.body[2..]),
        };
        stream.extend_from_slice(&frame.to_bytes()?);
    }
    seeds.put("aac", "demo_adts", &stream)?;
    // An explicit sample rate (index 15) and HE-AAC (object type 5).
    seeds.put("aac", "explicit_rate", [0x17, 0x80, 0x5d, 0xc0, 0x10])?;
    seeds.put("aac", "he_aac", [0x2b, 0x92, 0x08, 0x00])
}

fn sei(seeds: &mut Seeds, demo: &Demo) -> Result<(), Error> {
    let config = demo.avc_config()?;
    let idr: &[u8] = &[0x65, 0x88, 0x84, 0x00];
    let annexb = |first: u8, nals: &[&[u8]]| {
        let mut out = vec![first];
        for nal in nals {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(nal);
        }
        out
    };
    let stamp = latency_stamp(1_700_000_000_000_000);
    seeds.put(
        "sei",
        "stamped_annexb",
        annexb(3, &[&config.sps()[0], &stamp, idr]),
    )?;
    // Emulation prevention inside the stamp (zero bytes in the time).
    let escaped = latency_stamp(0x0000_0300_0000_0001);
    seeds.put("sei", "stamp_with_escapes", annexb(3, &[&escaped, idr]))?;
    // Other SEI messages first: a recovery point (type 6) and another UUID (type 5).
    let mut other = vec![6, 6, 1, 0x84, 5, 24];
    other.extend_from_slice(b"x264-other-uuid!");
    other.extend_from_slice(&[0; 8]);
    other.push(0x80);
    seeds.put("sei", "other_sei", annexb(3, &[&other, &stamp, idr]))?;
    // An AVCC unit (4-byte lengths) with parameter sets before the slice.
    let mut avcc = vec![3];
    for nal in [&config.sps()[0][..], &config.pps()[0][..], idr] {
        avcc.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        avcc.extend_from_slice(nal);
    }
    seeds.put("sei", "avcc_unit", &avcc)
}

/// The hub's RTP payloads for the demo's first frames (its own H.264 packetizer).
fn h264_payloads(demo: &Demo) -> Result<Vec<(bool, Vec<Bytes>)>, Error> {
    let stream = Arc::new(LiveStream::new("seeds"));
    let mut viewer = stream.subscribe();
    let mut feed = Feed::new(stream.clone(), 64_000);
    feed.video(0, Bytes::from(demo.video_config()?.body.clone()))?;
    let mut idr = vec![0x17, 1, 0, 0, 0];
    idr.extend_from_slice(&4u32.to_be_bytes());
    idr.extend_from_slice(&[0x65, 0x88, 0x84, 0x00]);
    feed.video(0, Bytes::from(idr))?;
    for tag in demo.small_frames(2, 3000) {
        feed.video(tag.timestamp_ms, Bytes::from(tag.body.clone()))?;
    }
    let mut frames = Vec::new();
    while let Ok(unit) = viewer.live.try_recv() {
        if let MediaUnit::Video(unit) = unit {
            frames.push((unit.keyframe, unit.payloads.clone()));
        }
    }
    Ok(frames)
}

fn rtp_seeds(seeds: &mut Seeds, demo: &Demo) -> Result<(), Error> {
    let frames = h264_payloads(demo)?;
    let packets: Vec<(u32, bool, Bytes)> = frames
        .iter()
        .enumerate()
        .flat_map(|(i, (_, payloads))| {
            let last = payloads.len() - 1;
            payloads
                .iter()
                .enumerate()
                .map(move |(j, p)| (3000 * i as u32, j == last, p.clone()))
        })
        .collect();
    let encode = |order: &[usize], sdp: &str| {
        let mut out = Vec::new();
        rtp::encode_setup(&mut out, 0, 100, 64, sdp);
        let (mut seq, mut ts) = (0i32, 0u32);
        for &i in order {
            let (t, marker, payload) = &packets[i];
            rtp::encode_packet(
                &mut out,
                (i as i32 - seq) as i16,
                t.wrapping_sub(ts),
                *marker,
                5,
                payload,
            );
            seq = i as i32;
            ts = *t;
        }
        out
    };
    let in_order: Vec<usize> = (0..packets.len()).collect();
    seeds.put("rtp", "h264_in_order", encode(&in_order, ""))?;
    let config = demo.avc_config()?;
    let sdp = format!(
        "a=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42c01e;sprop-parameter-sets={},{}",
        STANDARD.encode(&config.sps()[0]),
        STANDARD.encode(&config.pps()[0])
    );
    let mut shuffled = in_order.clone();
    if shuffled.len() > 3 {
        shuffled.swap(1, 2);
        shuffled.remove(3); // lost
        shuffled.push(shuffled[0]); // a duplicate
    }
    seeds.put("rtp", "h264_reordered_lost_sprop", encode(&shuffled, &sdp))?;

    // VP8 (RFC 7741): a keyframe in two packets with the extended descriptor (picture
    // id), then an inter frame.
    let mut vp8 = Vec::new();
    rtp::encode_setup(&mut vp8, 1, 100, 64, "");
    let key_start = [
        0x90, 0x80, 0x81, 0x23, 0x50, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01,
    ];
    rtp::encode_packet(&mut vp8, 1, 0, false, 0, &key_start);
    rtp::encode_packet(
        &mut vp8,
        1,
        0,
        true,
        1,
        &[0x80, 0x80, 0x81, 0x23, 0x00, 0x11, 0x22],
    );
    rtp::encode_packet(&mut vp8, 1, 3000, true, 33, &[0x10, 0x51, 0x03, 0x00, 0x44]);
    seeds.put("rtp", "vp8_key_and_inter", &vp8)
}

fn chat_server(seeds: &mut Seeds) -> Result<(), Error> {
    let frame = |id: u64, value: serde_json::Value| -> Result<String, Error> {
        let mut value = value;
        value["id"] = json!(id);
        // Through the protocol's own type, so that a seed is a frame the client sends.
        let frame: CommandFrame = serde_json::from_value(value)?;
        Ok(serde_json::to_string(&frame)?)
    };
    let session = [
        (
            '0',
            frame(
                1,
                json!({"type": "connect", "token": "$VIEWER", "client": {"name": "fuzz", "version": "1"}}),
            )?,
        ),
        ('1', frame(1, json!({"type": "connect", "token": "$MOD"}))?),
        ('0', frame(2, json!({"type": "join", "room": "a"}))?),
        (
            '1',
            frame(
                2,
                json!({"type": "join", "room": "a", "since": {"epoch": "e", "seq": 0}}),
            )?,
        ),
        (
            '0',
            frame(
                3,
                json!({"type": "send", "room": "a", "client_msg_id": "c1", "text": "hello"}),
            )?,
        ),
        (
            '0',
            frame(
                4,
                json!({"type": "send", "room": "a", "client_msg_id": "c1", "text": "hello"}),
            )?,
        ),
        ('0', frame(5, json!({"type": "typing", "room": "a"}))?),
        (
            '1',
            frame(3, json!({"type": "history", "room": "a", "limit": 10}))?,
        ),
        (
            '1',
            frame(4, json!({"type": "delete", "room": "a", "seq": 1}))?,
        ),
        (
            '1',
            frame(
                5,
                json!({"type": "slow_mode", "room": "a", "interval_ms": 1000}),
            )?,
        ),
        (
            '1',
            frame(
                6,
                json!({"type": "timeout", "room": "a", "user_id": "ada", "duration_ms": 5000}),
            )?,
        ),
        (
            '0',
            frame(
                6,
                json!({"type": "send", "room": "a", "client_msg_id": "c2", "text": "still here?"}),
            )?,
        ),
        (
            '1',
            frame(7, json!({"type": "ban", "room": "a", "user_id": "ada"}))?,
        ),
        (
            '1',
            frame(8, json!({"type": "unban", "room": "a", "user_id": "ada"}))?,
        ),
        (
            '0',
            frame(7, json!({"type": "refresh", "token": "$VIEWER"}))?,
        ),
        ('1', frame(9, json!({"type": "leave", "room": "a"}))?),
    ];
    let text: String = session
        .iter()
        .map(|(who, f)| format!("{who}{f}\n"))
        .collect();
    seeds.put("chat_server", "session", &text)?;
    let errors = [
        "0{\"id\":1,\"type\":\"join\",\"room\":\"a\"}",
        "0not json",
        "0{\"type\":\"connect\"}",
        "0{\"id\":1,\"type\":\"dance\"}",
        "0{\"id\":2,\"type\":\"connect\",\"token\":\"$EXPIRED\"}",
        "0{\"id\":3,\"type\":\"connect\",\"token\":\"$OTHER\"}",
        "0{\"id\":4,\"type\":\"join\",\"room\":\"a\"}",
        "0{\"id\":5,\"type\":\"join\",\"room\":\"bad room!\"}",
        "0{\"id\":6,\"type\":\"connect\",\"token\":\"$OTHER\"}",
        "1{\"id\":1,\"type\":\"connect\",\"token\":\"forged.token.x\"}",
        "2{\"id\":1,\"type\":\"connect\",\"token\":\"$BROADCASTER\"}",
        "2{\"id\":2,\"type\":\"send\",\"room\":\"b\",\"client_msg_id\":\"x\",\"text\":\"\"}",
        "2{\"id\":3,\"type\":\"history\",\"room\":\"b\",\"before_seq\":0,\"limit\":1000}",
        "2{\"id\":4,\"type\":\"delete\",\"room\":\"b\",\"seq\":18446744073709551615}",
        "2{\"id\":5,\"type\":\"timeout\",\"room\":\"b\",\"user_id\":\"mo\",\"duration_ms\":18446744073709551615}",
    ];
    seeds.put("chat_server", "refusals", errors.join("\n"))
}

fn chat_client(seeds: &mut Seeds) -> Result<(), Error> {
    let user = UserInfo {
        id: "mo".into(),
        name: "Mo".into(),
        role: Role::Moderator,
    };
    let reply = |id: u64, result: serde_json::Value| {
        ServerFrame::Reply(Reply {
            id,
            ok: true,
            result: Some(result),
            error: None,
        })
    };
    let refusal = |id: u64, error: ErrorBody| {
        ServerFrame::Reply(Reply {
            id,
            ok: false,
            result: None,
            error: Some(error),
        })
    };
    let join = |room: &str, seq: u64, recovered: bool| -> Result<serde_json::Value, Error> {
        Ok(serde_json::to_value(JoinResult {
            room: room.into(),
            epoch: "e1".into(),
            seq,
            viewers: 3,
            recovered,
            state: RoomState::default(),
        })?)
    };
    let message = |room: &str, seq: u64| {
        ServerFrame::Message(ChatMessage {
            room: room.into(),
            epoch: "e1".into(),
            seq,
            id: format!("m{seq}"),
            user: user.clone(),
            text: "hello".into(),
            ts: 1_700_000_000_000,
            client_msg_id: None,
            deleted: false,
        })
    };
    let connected = serde_json::to_value(ConnectResult {
        user: user.clone(),
        session: "s1".into(),
        limits: Limits {
            max_text_chars: 500,
            max_frame_bytes: 16384,
            rate: RateInfo {
                messages: 5,
                per_ms: 5000,
            },
        },
        token_expires_at_ms: 1_700_000_000_000,
    })?;
    let sent = serde_json::to_value(SendResult {
        id: "m6".into(),
        seq: 6,
        ts: 1_700_000_000_000,
    })?;
    let frames = vec![
        reply(1, connected.clone()),
        reply(2, join("a", 5, false)?),
        reply(3, join("b", 0, false)?),
        message("a", 6),
        message("a", 6),
        message("a", 9),
        reply(4, sent.clone()),
        refusal(
            5,
            ErrorBody::new(ErrorCode::RateLimited, "slow down").retry_after(1500),
        ),
        ServerFrame::Deleted {
            room: "a".into(),
            epoch: "e1".into(),
            seq: 6,
        },
        ServerFrame::Viewers {
            room: "a".into(),
            count: 4,
        },
        ServerFrame::Member {
            room: "a".into(),
            user: user.clone(),
            event: MemberEvent::Join,
        },
        ServerFrame::Typing {
            room: "a".into(),
            user: user.clone(),
        },
        ServerFrame::TokenExpiring {
            expires_in_ms: 30_000,
        },
        ServerFrame::Kicked {
            room: "b".into(),
            code: ErrorCode::Banned,
            message: "banned".into(),
        },
        ServerFrame::Disconnect(Disconnect {
            code: "shutting_down".into(),
            message: "bye".into(),
            reconnect: true,
            retry_after_ms: Some(2000),
        }),
        reply(1, connected),
        reply(2, join("a", 12, true)?),
        message("a", 10),
    ];
    let mut text = String::new();
    for frame in &frames {
        text.push_str(&serde_json::to_string(frame)?);
        text.push('\n');
    }
    text.push_str("{\"type\":\"from_a_newer_server\",\"x\":1}\n");
    seeds.put("chat_client", "session", &text)?;
    let lines = [
        serde_json::to_string(&refusal(
            1,
            ErrorBody::new(ErrorCode::TokenExpired, "expired"),
        ))?,
        serde_json::to_string(&reply(1, json!({"user": "not an object"})))?,
    ];
    seeds.put("chat_client", "connect_refused", lines.join("\n"))
}

fn whep_http(seeds: &mut Seeds) -> Result<(), Error> {
    // MediaMTX's answer headers, and a TURN server with credentials.
    seeds.put(
        "whep_http",
        "mediamtx",
        "/live/cam1/whep/5f1a2b3c-0000-4000-8000-000000000001\n\n\
         <stun:stun.l.google.com:19302>; rel=\"ice-server\"\n",
    )?;
    seeds.put(
        "whep_http",
        "turn_and_retry",
        "https://other.example.com/session/42\n\
         30\n\
         <turn:turn.example.com:3478?transport=udp>; rel=\"ice-server\"; username=\"user\"; credential=\"p;a,ss\"; credential-type=\"password\", <stuns:x.example.com>; rel=ice-server\n\
         <https://example.com/doc>; rel=\"help\"\n",
    )?;
    seeds.put(
        "whep_http",
        "relative_and_date",
        "../../other?x=1#f\nWed, 21 Oct 2015 07:28:00 GMT\n<stun:[::1]:3478>;rel=\"ice-server\"",
    )
}

fn jwt(seeds: &mut Seeds) -> Result<(), Error> {
    let keys = TokenKeys::hs256(SECRET);
    let mut claims = Claims::new("ada", Role::Moderator, vec!["a".into(), "*".into()], 60);
    claims.exp = FAR_EXPIRY;
    claims.iat = Some(1_700_000_000);
    let token = keys.issue(&claims)?;
    seeds.put("jwt", "valid", [&[0][..], token.as_bytes()].concat())?;
    claims.exp = 1_000_000_000;
    let expired = keys.issue(&claims)?;
    seeds.put("jwt", "expired", [&[0][..], expired.as_bytes()].concat())?;
    let forged = TokenKeys::hs256(b"another secret").issue(&claims)?;
    seeds.put("jwt", "forged", [&[0][..], forged.as_bytes()].concat())?;
    let header = r#"{"alg":"HS256","typ":"JWT"}"#;
    let claims_json = format!(
        r#"{{"sub":"ada","name":"Ada","role":"viewer","rooms":["a"],"exp":{FAR_EXPIRY},"iat":1700000000}}"#
    );
    seeds.put(
        "jwt",
        "signed_claims",
        format!("\x01{header}\n{claims_json}"),
    )?;
    let bad = format!(
        r#"{{"sub":"","name":"{}","role":"admin","rooms":"a","exp":-1}}"#,
        "n".repeat(41)
    );
    seeds.put("jwt", "signed_bad_claims", format!("\x01{header}\n{bad}"))?;
    let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
    let body = URL_SAFE_NO_PAD.encode(&claims_json);
    seeds.put("jwt", "alg_none", format!("\x00{none}.{body}."))
}

fn main() -> Result<(), Error> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let flv_bytes = std::fs::read(repo.join("assets/demo.flv"))?;
    let (header, tags) = demo_tags(&flv_bytes)?;
    let demo = Demo { header, tags };
    let mut seeds = Seeds {
        root: repo.join("fuzz/seeds"),
        written: 0,
    };
    flv(&mut seeds, &demo)?;
    rtmp_client(&mut seeds)?;
    rtmp_hub(&mut seeds, &demo)?;
    rtmp_media(&mut seeds, &demo)?;
    transcode(&mut seeds, &demo)?;
    avc(&mut seeds, &demo)?;
    aac(&mut seeds, &demo)?;
    sei(&mut seeds, &demo)?;
    rtp_seeds(&mut seeds, &demo)?;
    chat_server(&mut seeds)?;
    chat_client(&mut seeds)?;
    whep_http(&mut seeds)?;
    jwt(&mut seeds)?;
    println!("{} seeds in fuzz/seeds", seeds.written);
    Ok(())
}
