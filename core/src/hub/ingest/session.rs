//! The server side of an RTMP publish, as a state machine with no I/O: feed it the bytes
//! a publisher sent, take the bytes to send back and the events to act on.
//!
//! Sequence: handshake (rml_rtmp's, which only compares and echoes fixed-size packets)
//! → `connect` → `releaseStream`/`FCPublish` → `createStream` → `publish` (the
//! connection decides: [`IngestSession::accept_publish`] or
//! [`IngestSession::refuse`]) → media → `FCUnpublish`/`deleteStream`.
//!
//! It replaces rml_rtmp's `ServerSession`, which a stranger could panic with one AMF0
//! command holding only its name (`drain(..3)` on fewer than three values), and whose
//! chunk decoder and AMF0 decoder are unsafe on hostile input (see
//! [`crate::rtmp::chunk_reader`] and [`crate::rtmp::amf0`]). Every malformed message
//! here ends in a typed [`IngestError`]; a command that cannot be served gets a
//! refusal (`_error` or an error `onStatus`) and the session asks to close.

use std::collections::VecDeque;
use std::fmt;

use bytes::{Bytes, BytesMut};
use rml_rtmp::handshake::{Handshake, PeerType};
use rml_rtmp::rml_amf0::Amf0Value;
use tracing::debug;

use super::replies::{self, *};
use crate::rtmp::ack::AckCounter;
use crate::rtmp::amf0::{self, Command, CommandError};
use crate::rtmp::chunk::{ChunkWriter, MessageHeader};
use crate::rtmp::chunk_reader::{ChunkError, ChunkReader, Message, ReaderLimits};
use crate::rtmp::handshake::feed_handshake;

const CSID_CONTROL: u32 = 2;
const CSID_COMMAND: u32 = 3;
const CSID_STATUS: u32 = 5;
/// The chunk size the hub sends with.
const OUT_CHUNK_SIZE: u32 = 4096;
/// Window Acknowledgement Size and Set Peer Bandwidth announced to the publisher.
const WINDOW: u32 = 2_500_000;
/// Message streams one connection may create (publishers use one).
const MAX_STREAMS: u32 = 8;

/// A stream key as the publisher sent it: a secret, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct StreamKey(String);

impl StreamKey {
    /// The key itself, to resolve it; do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamKey({} bytes, hidden)", self.0.len())
    }
}

/// What the publisher asked for or sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IngestEvent {
    /// `connect` to an application was accepted.
    Connected {
        /// The application (`live` in `rtmp://host/live/key`).
        app: String,
    },
    /// `publish`: answer with [`IngestSession::accept_publish`] or
    /// [`IngestSession::refuse`].
    PublishRequested {
        /// The stream key.
        key: StreamKey,
    },
    /// `play`: the hub does not play over RTMP; answer with [`IngestSession::refuse`].
    PlayRequested,
    /// The publisher ended its publish (`FCUnpublish`, `deleteStream`, `closeStream`).
    PublishFinished,
    /// A video message of the accepted publish.
    Video {
        /// Its timestamp in milliseconds.
        timestamp: u32,
        /// The FLV video tag body.
        body: Bytes,
    },
    /// An audio message of the accepted publish.
    Audio {
        /// Its timestamp in milliseconds.
        timestamp: u32,
        /// The FLV audio tag body.
        body: Bytes,
    },
}

/// Why a publisher's connection is ended.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The RTMP handshake failed.
    #[error("RTMP handshake: {0}")]
    Handshake(String),
    /// The chunk stream is malformed or over a limit.
    #[error("RTMP chunks: {0}")]
    Chunks(#[from] ChunkError),
    /// A command message is malformed.
    #[error("RTMP command: {0}")]
    Command(#[from] CommandError),
    /// A protocol control message is malformed.
    #[error("RTMP control message of type {type_id}: {reason}")]
    Control {
        /// The message type.
        type_id: u8,
        /// What is wrong.
        reason: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Handshaking,
    AwaitingConnect,
    Connected,
    /// `publish` asked, waiting for the connection's decision.
    Deciding {
        stream_id: u32,
    },
    Publishing {
        stream_id: u32,
    },
    /// A refusal was sent; nothing more is read.
    Closing,
}

/// The RTMP commands the hub acts on; any other is ignored (and logged at debug).
pub const KNOWN_COMMANDS: [&str; 9] = [
    "connect",
    "createStream",
    "publish",
    "play",
    "deleteStream",
    "closeStream",
    "releaseStream",
    "FCPublish",
    "FCUnpublish",
];

/// One publisher's RTMP session on the hub (no I/O).
pub struct IngestSession {
    handshake: Handshake,
    state: State,
    reader: ChunkReader,
    writer: ChunkWriter,
    out: BytesMut,
    ack: AckCounter,
    events: VecDeque<IngestEvent>,
    streams_created: u32,
    /// Media messages received outside an accepted publish (ignored).
    stray_media: u64,
}

impl fmt::Debug for IngestSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IngestSession")
            .field("state", &self.state)
            .field("received", &self.ack.received())
            .finish_non_exhaustive()
    }
}

impl IngestSession {
    /// A session waiting for the publisher's handshake.
    pub fn new(limits: ReaderLimits) -> Self {
        IngestSession {
            handshake: Handshake::new(PeerType::Server),
            state: State::Handshaking,
            reader: ChunkReader::new(limits),
            writer: ChunkWriter::new(),
            out: BytesMut::new(),
            ack: AckCounter::default(),
            events: VecDeque::new(),
            streams_created: 0,
            stray_media: 0,
        }
    }

    /// A session whose handshake is taken as done: the fuzz target's entry, so that
    /// each input reaches our chunk reader and commands without paying for rml_rtmp's
    /// handshake digests (most of an execution's time otherwise).
    #[doc(hidden)]
    pub fn past_handshake(limits: ReaderLimits) -> Self {
        let mut session = Self::new(limits);
        session.state = State::AwaitingConnect;
        session
    }

    /// Whether the handshake and `connect` are done.
    pub fn is_connected(&self) -> bool {
        !matches!(self.state, State::Handshaking | State::AwaitingConnect)
    }

    /// Whether a publish was accepted and is on.
    pub fn is_publishing(&self) -> bool {
        matches!(self.state, State::Publishing { .. })
    }

    /// Whether the session refused something and wants the connection closed once its
    /// output is sent.
    pub fn is_closing(&self) -> bool {
        self.state == State::Closing
    }

    /// Media messages ignored because no publish was accepted.
    pub fn stray_media(&self) -> u64 {
        self.stray_media
    }

    /// Bytes to send to the publisher, if any.
    pub fn take_output(&mut self) -> Option<Bytes> {
        (!self.out.is_empty()).then(|| self.out.split().freeze())
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<IngestEvent> {
        self.events.pop_front()
    }

    /// Feeds bytes read from the socket.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<(), IngestError> {
        let remaining;
        let mut data = data;
        if self.state == State::Handshaking {
            let after = feed_handshake(&mut self.handshake, data, &mut self.out)
                .map_err(|e| IngestError::Handshake(format!("{e:?}")))?;
            let Some(after) = after else {
                return Ok(());
            };
            self.state = State::AwaitingConnect;
            remaining = after;
            data = &remaining;
        }
        if self.state == State::Closing || data.is_empty() {
            return Ok(());
        }
        if let Some(sequence) = self.ack.on_received(data.len()) {
            self.control(TYPE_ACK, replies::u32_body(sequence));
        }
        self.reader.push(data);
        while self.state != State::Closing {
            let Some(message) = self.reader.next_message()? else {
                break;
            };
            self.on_message(message)?;
        }
        Ok(())
    }

    /// Accepts the pending `publish`: Stream Begin and `NetStream.Publish.Start`.
    pub fn accept_publish(&mut self) {
        let State::Deciding { stream_id } = self.state else {
            return;
        };
        self.control(
            TYPE_USER_CONTROL,
            replies::user_control(EVENT_STREAM_BEGIN, stream_id),
        );
        let status = replies::status("status", "NetStream.Publish.Start", "Publishing.");
        self.on_status(stream_id, status);
        self.state = State::Publishing { stream_id };
    }

    /// Refuses the pending `publish` or `play` with an error `onStatus` carrying `code`
    /// and `description`, and asks to close.
    pub fn refuse(&mut self, code: &str, description: &str) {
        let stream_id = match self.state {
            State::Deciding { stream_id } | State::Publishing { stream_id } => stream_id,
            _ => 0,
        };
        self.on_status(stream_id, replies::status("error", code, description));
        self.state = State::Closing;
    }

    fn on_message(&mut self, message: Message) -> Result<(), IngestError> {
        match message.type_id {
            TYPE_AMF0_COMMAND => self.on_command_bytes(&message, &message.body[..]),
            TYPE_AMF3_COMMAND => match message.body.split_first() {
                Some((0, amf0)) => self.on_command_bytes(&message, amf0),
                _ => Err(IngestError::Command(CommandError::NoName)),
            },
            TYPE_AUDIO | TYPE_VIDEO => {
                self.on_media(message);
                Ok(())
            }
            TYPE_SET_CHUNK_SIZE => {
                let size = control_u32(&message)? & 0x7fff_ffff;
                self.reader.set_chunk_size(size)?;
                Ok(())
            }
            TYPE_ABORT => {
                self.reader.abort(control_u32(&message)?);
                Ok(())
            }
            TYPE_WINDOW_ACK => {
                self.ack.set_window(control_u32(&message)?);
                Ok(())
            }
            TYPE_USER_CONTROL => self.on_user_control(&message),
            // Acknowledgements, Set Peer Bandwidth, data messages (@setDataFrame, whose
            // metadata the hub reads from the media itself), shared objects: ignored.
            other => {
                debug!(type_id = other, "RTMP message ignored");
                Ok(())
            }
        }
    }

    fn on_media(&mut self, message: Message) {
        let on_published_stream = matches!(
            self.state,
            State::Publishing { stream_id } if stream_id == message.stream_id
        );
        if !on_published_stream {
            self.stray_media += 1;
            return;
        }
        let timestamp = message.timestamp;
        let body = message.body;
        self.events.push_back(if message.type_id == TYPE_VIDEO {
            IngestEvent::Video { timestamp, body }
        } else {
            IngestEvent::Audio { timestamp, body }
        });
    }

    fn on_user_control(&mut self, message: &Message) -> Result<(), IngestError> {
        let body = &message.body[..];
        let (Some(event), Some(value)) = (body.get(0..2), body.get(2..6)) else {
            return Err(IngestError::Control {
                type_id: TYPE_USER_CONTROL,
                reason: "shorter than 6 bytes",
            });
        };
        if u16::from_be_bytes([event[0], event[1]]) == EVENT_PING_REQUEST {
            let stamp = u32::from_be_bytes([value[0], value[1], value[2], value[3]]);
            self.control(
                TYPE_USER_CONTROL,
                replies::user_control(EVENT_PING_RESPONSE, stamp),
            );
        }
        Ok(())
    }

    fn on_command_bytes(&mut self, message: &Message, amf0: &[u8]) -> Result<(), IngestError> {
        let command = amf0::decode_command(amf0)?;
        self.on_command(message.stream_id, command);
        Ok(())
    }

    fn on_command(&mut self, stream_id: u32, command: Command) {
        let Command {
            name,
            transaction_id,
            object,
            args,
        } = command;
        match (name.as_str(), &self.state) {
            ("connect", State::AwaitingConnect) => self.on_connect(transaction_id, object),
            ("connect", _) => self.refuse_command(transaction_id, "connect was already done"),
            (_, State::AwaitingConnect) => {
                self.refuse_command(transaction_id, "the first command must be connect")
            }
            ("createStream", _) => {
                if self.streams_created >= MAX_STREAMS {
                    self.refuse_command(transaction_id, "too many streams on one connection");
                    return;
                }
                self.streams_created += 1;
                let id = f64::from(self.streams_created);
                let body = replies::command(
                    "_result",
                    transaction_id,
                    Amf0Value::Null,
                    vec![Amf0Value::Number(id)],
                );
                self.send_command(CSID_COMMAND, 0, body);
            }
            ("releaseStream" | "FCPublish", _) if transaction_id != 0.0 => {
                let body = replies::command("_result", transaction_id, Amf0Value::Null, Vec::new());
                self.send_command(CSID_COMMAND, 0, body);
            }
            ("publish", State::Connected) => self.on_publish(stream_id, args),
            ("publish", _) => {
                self.state = State::Deciding { stream_id };
                self.refuse(
                    "NetStream.Publish.BadName",
                    "this connection already publishes",
                );
            }
            ("play", _) => {
                self.state = State::Deciding { stream_id };
                self.events.push_back(IngestEvent::PlayRequested);
            }
            ("FCUnpublish" | "deleteStream" | "closeStream", State::Publishing { .. }) => {
                self.state = State::Connected;
                self.events.push_back(IngestEvent::PublishFinished);
            }
            (other, _) => debug!(command = other, "RTMP command ignored"),
        }
    }

    fn on_connect(&mut self, transaction_id: f64, object: Amf0Value) {
        let Amf0Value::Object(props) = object else {
            self.refuse_connect(transaction_id, "connect without a command object");
            return;
        };
        let Some(Amf0Value::Utf8String(app)) = props.get("app") else {
            self.refuse_connect(transaction_id, "connect without an application name");
            return;
        };
        let app = app.trim_end_matches('/').to_string();
        let enhanced = props.contains_key("fourCcList");
        self.control(TYPE_WINDOW_ACK, replies::u32_body(WINDOW));
        self.control(TYPE_PEER_BANDWIDTH, replies::peer_bandwidth(WINDOW));
        self.control(TYPE_SET_CHUNK_SIZE, replies::u32_body(OUT_CHUNK_SIZE));
        self.writer.set_chunk_size(OUT_CHUNK_SIZE as usize);
        let body = replies::connect_result(transaction_id, enhanced);
        self.send_command(CSID_COMMAND, 0, body);
        self.state = State::Connected;
        self.events.push_back(IngestEvent::Connected { app });
    }

    fn on_publish(&mut self, stream_id: u32, args: Vec<Amf0Value>) {
        self.state = State::Deciding { stream_id };
        let valid_stream = stream_id >= 1 && stream_id <= self.streams_created;
        match args.into_iter().next() {
            Some(Amf0Value::Utf8String(key)) if valid_stream && !key.is_empty() => {
                self.events.push_back(IngestEvent::PublishRequested {
                    key: StreamKey(key),
                });
            }
            _ if !valid_stream => self.refuse(
                "NetStream.Publish.BadName",
                "publish on a stream that createStream did not make",
            ),
            _ => self.refuse("NetStream.Publish.BadName", "publish without a stream key"),
        }
    }

    fn refuse_connect(&mut self, transaction_id: f64, description: &str) {
        let info = replies::status("error", "NetConnection.Connect.Rejected", description);
        let body = replies::command("_error", transaction_id, Amf0Value::Null, vec![info]);
        self.send_command(CSID_COMMAND, 0, body);
        self.state = State::Closing;
    }

    fn refuse_command(&mut self, transaction_id: f64, description: &str) {
        let info = replies::status("error", "NetConnection.Call.Failed", description);
        let body = replies::command("_error", transaction_id, Amf0Value::Null, vec![info]);
        self.send_command(CSID_COMMAND, 0, body);
        self.state = State::Closing;
    }

    fn on_status(&mut self, stream_id: u32, info: Amf0Value) {
        let body = replies::command("onStatus", 0.0, Amf0Value::Null, vec![info]);
        self.send_command(CSID_STATUS, stream_id, body);
    }

    fn control(&mut self, type_id: u8, body: Bytes) {
        self.write(CSID_CONTROL, type_id, 0, &body);
    }

    fn send_command(&mut self, csid: u32, stream_id: u32, body: Bytes) {
        self.write(csid, TYPE_AMF0_COMMAND, stream_id, &body);
    }

    fn write(&mut self, csid: u32, type_id: u8, stream_id: u32, body: &[u8]) {
        let header = MessageHeader {
            csid,
            timestamp: 0,
            type_id,
            stream_id,
        };
        // Only the 16 MiB message limit can fail a write, and the hub's messages are a
        // few hundred bytes.
        if let Err(e) = self.writer.write(&mut self.out, header, &[body]) {
            debug!(error = %e, "reply not written");
        }
    }
}

fn control_u32(message: &Message) -> Result<u32, IngestError> {
    match message.body.get(0..4) {
        Some(b) => Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(IngestError::Control {
            type_id: message.type_id,
            reason: "shorter than 4 bytes",
        }),
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
