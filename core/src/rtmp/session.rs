//! The publish session as a state machine with no I/O: feed it the bytes the server
//! sent, take the bytes to send. The tokio driver in [`super::publisher`] owns the socket.
//!
//! Sequence: handshake (rml_rtmp) → Set Chunk Size → `connect` → `releaseStream`,
//! `FCPublish`, `createStream` → `publish` → `NetStream.Publish.Start` → media →
//! `FCUnpublish`, `deleteStream`. rml_rtmp's own `ClientSession` sends neither
//! `releaseStream` nor `FCPublish` (which Twitch, YouTube and other CDNs expect),
//! stamps control messages with the wall clock, and acknowledges per-window counts; so
//! this session uses rml_rtmp for the handshake, chunk decoding and AMF0 only.

use std::collections::HashMap;
use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use rml_rtmp::handshake::{Handshake, PeerType};

use super::handshake::feed_handshake;
use rml_rtmp::messages::{MessagePayload, RtmpMessage, UserControlEventType};
use rml_rtmp::rml_amf0::Amf0Value;
use rml_rtmp::time::RtmpTimestamp;
use tracing::{debug, warn};

use super::ack::AckCounter;
use super::amf0;
use super::chunk::{ChunkWriter, MessageHeader};
use super::chunk_reader::{ChunkReader, Message, ReaderLimits};
use super::packetizer::{MediaMessage, MessageKind};
use super::{RtmpError, RtmpUrl};

const CSID_CONTROL: u32 = 2;
const CSID_COMMAND: u32 = 3;
const CSID_AUDIO: u32 = 4;
const CSID_DATA: u32 = 5;
const CSID_VIDEO: u32 = 6;
const CSID_STREAM_COMMAND: u32 = 8;

const TYPE_AMF0_COMMAND: u8 = 20;
const TYPE_AMF3_COMMAND: u8 = 17;

const TX_CONNECT: f64 = 1.0;
const TX_RELEASE_STREAM: f64 = 2.0;
const TX_FC_PUBLISH: f64 = 3.0;
const TX_CREATE_STREAM: f64 = 4.0;
const TX_PUBLISH: f64 = 5.0;

/// Largest chunk size a server may announce before we call it malformed (16 MiB).
const MAX_PEER_CHUNK_SIZE: u32 = 0x0100_0000;

/// Where the session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Exchanging the RTMP handshake.
    Handshaking,
    /// `connect` sent, waiting for its result.
    Connecting,
    /// `createStream` sent, waiting for the stream id.
    CreatingStream,
    /// `publish` sent, waiting for `NetStream.Publish.Start`.
    Publishing,
    /// The server accepted the stream; media flows.
    Live,
    /// `FCUnpublish`/`deleteStream` sent.
    Closing,
}

/// A status the server reported with `onStatus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStatus {
    /// `status`, `warning` or `error`.
    pub level: String,
    /// e.g. `NetStream.Publish.Start`.
    pub code: String,
    /// Free text from the server.
    pub description: String,
}

/// Session settings.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The chunk size we send with (the spec's default is 128; we use 4096 or more).
    pub chunk_size: u32,
    /// Window Acknowledgement Size we announce to the server.
    pub window_ack_size: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            chunk_size: 4096,
            window_ack_size: 2_500_000,
        }
    }
}

/// The sans-I/O publish session.
pub struct PublishSession {
    url: RtmpUrl,
    config: SessionConfig,
    state: SessionState,
    handshake: Handshake,
    reader: ChunkReader,
    writer: ChunkWriter,
    out: BytesMut,
    ack: AckCounter,
    stream_id: u32,
    statuses: VecDeque<ServerStatus>,
    media_bytes: u64,
}

impl std::fmt::Debug for PublishSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishSession")
            .field("url", &self.url)
            .field("state", &self.state)
            .field("stream_id", &self.stream_id)
            .finish_non_exhaustive()
    }
}

impl PublishSession {
    /// Starts a session: C0 and C1 are ready in the output right away.
    pub fn new(url: RtmpUrl, config: SessionConfig) -> Result<Self, RtmpError> {
        let mut handshake = Handshake::new(PeerType::Client);
        let c0c1 = handshake
            .generate_outbound_p0_and_p1()
            .map_err(|e| RtmpError::Handshake(e.to_string()))?;
        let mut out = BytesMut::with_capacity(64 * 1024);
        out.extend_from_slice(&c0c1);
        Ok(PublishSession {
            url,
            config,
            state: SessionState::Handshaking,
            handshake,
            reader: ChunkReader::new(ReaderLimits::default()),
            writer: ChunkWriter::new(),
            out,
            ack: AckCounter::default(),
            stream_id: 0,
            statuses: VecDeque::new(),
            media_bytes: 0,
        })
    }

    /// The current state.
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// True once the server has accepted the stream.
    pub fn is_live(&self) -> bool {
        self.state == SessionState::Live
    }

    /// Bytes waiting to be written to the socket, if any.
    pub fn take_output(&mut self) -> Option<Bytes> {
        if self.out.is_empty() {
            None
        } else {
            Some(self.out.split().freeze())
        }
    }

    /// Number of bytes waiting in the output buffer.
    pub fn pending_output(&self) -> usize {
        self.out.len()
    }

    /// The next status the server reported, oldest first.
    pub fn poll_status(&mut self) -> Option<ServerStatus> {
        self.statuses.pop_front()
    }

    /// Bytes received from the server so far (after the handshake).
    pub fn bytes_received(&self) -> u64 {
        self.ack.received()
    }

    /// Feeds bytes read from the socket.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<(), RtmpError> {
        let chunk_bytes: Vec<u8>;
        let mut data = data;
        if self.state == SessionState::Handshaking {
            let after = feed_handshake(&mut self.handshake, data, &mut self.out)
                .map_err(|e| RtmpError::Handshake(e.to_string()))?;
            let Some(after) = after else {
                return Ok(());
            };
            self.on_handshake_done()?;
            chunk_bytes = after;
            data = &chunk_bytes;
        }
        if data.is_empty() {
            return Ok(());
        }
        if let Some(sequence_number) = self.ack.on_received(data.len()) {
            self.send_control(RtmpMessage::Acknowledgement { sequence_number })?;
        }
        self.reader.push(data);
        while let Some(message) = self.reader.next_message().map_err(RtmpError::protocol)? {
            self.handle_message(message)?;
        }
        Ok(())
    }

    /// The error that describes the server closing the connection in the current state.
    pub fn closed_by_server(&self) -> RtmpError {
        match self.state {
            SessionState::Handshaking => {
                RtmpError::Handshake("the server closed the connection".into())
            }
            SessionState::Connecting | SessionState::CreatingStream => RtmpError::ConnectRefused {
                code: "connection closed".into(),
                description: format!(
                    "the server closed the connection after connect to application {:?}",
                    self.url.app()
                ),
            },
            SessionState::Publishing => RtmpError::PublishRefused {
                code: "connection closed".into(),
                description: "the server closed the connection after publish (stream key refused?)"
                    .into(),
            },
            SessionState::Live => RtmpError::ConnectionLost {
                reason: "the server closed the connection".into(),
            },
            SessionState::Closing => RtmpError::Closed,
        }
    }

    /// Serializes one media message; the session must be live.
    pub fn write_media(&mut self, message: &MediaMessage) -> Result<(), RtmpError> {
        if self.state != SessionState::Live {
            return Err(RtmpError::Closed);
        }
        let (csid, type_id) = match message.kind {
            MessageKind::Video => (CSID_VIDEO, 9),
            MessageKind::Audio => (CSID_AUDIO, 8),
            MessageKind::Data => (CSID_DATA, 18),
        };
        self.writer.write(
            &mut self.out,
            MessageHeader {
                csid,
                timestamp: message.timestamp,
                type_id,
                stream_id: self.stream_id,
            },
            &[&message.header, &message.body],
        )?;
        self.media_bytes += message.len() as u64;
        Ok(())
    }

    /// Media payload bytes serialized so far.
    pub fn media_bytes(&self) -> u64 {
        self.media_bytes
    }

    /// Ends the publish: `FCUnpublish` and `deleteStream`.
    pub fn finish(&mut self) -> Result<(), RtmpError> {
        if self.state == SessionState::Live {
            let key = self.url.stream_key().to_string();
            self.send_command("FCUnpublish", 0.0, vec![Amf0Value::Utf8String(key)], 0)?;
            let id = f64::from(self.stream_id);
            self.send_command("deleteStream", 0.0, vec![Amf0Value::Number(id)], 0)?;
        }
        self.state = SessionState::Closing;
        Ok(())
    }

    fn on_handshake_done(&mut self) -> Result<(), RtmpError> {
        let size = self.config.chunk_size.max(128);
        self.send_control(RtmpMessage::SetChunkSize { size })?;
        self.writer.set_chunk_size(size as usize);
        let mut props = HashMap::new();
        props.insert("app".into(), Amf0Value::Utf8String(self.url.app().into()));
        props.insert("type".into(), Amf0Value::Utf8String("nonprivate".into()));
        props.insert(
            "flashVer".into(),
            Amf0Value::Utf8String("FMLE/3.0 (compatible; StreamHub)".into()),
        );
        props.insert("tcUrl".into(), Amf0Value::Utf8String(self.url.tc_url()));
        self.send_amf0(
            CSID_COMMAND,
            0,
            "connect",
            TX_CONNECT,
            Amf0Value::Object(props),
            vec![],
        )?;
        self.state = SessionState::Connecting;
        Ok(())
    }

    fn handle_message(&mut self, message: Message) -> Result<(), RtmpError> {
        if message.type_id == TYPE_AMF0_COMMAND || message.type_id == TYPE_AMF3_COMMAND {
            // rml_rtmp 0.8 panics on a command with fewer than three values (ffmpeg's
            // RTMP server sends such) and its AMF0 decoder recurses without a bound, so
            // commands are decoded by `amf0`. An AMF3 command is AMF0 behind a 0 format
            // byte.
            let data = match message.body.split_first() {
                Some((0, rest)) if message.type_id == TYPE_AMF3_COMMAND => rest,
                _ => &message.body[..],
            };
            let (name, transaction_id, command_object, args) = decode_command(data)?;
            return self.handle_command(&name, transaction_id, command_object, args);
        }
        if !(1..=6).contains(&message.type_id) {
            // Media, data and shared-object messages from a server are not ours to read
            // (and rml_rtmp's data decoder has the unbounded AMF0 recursion).
            debug!(type_id = message.type_id, "ignoring server message");
            return Ok(());
        }
        let payload = MessagePayload {
            timestamp: RtmpTimestamp::new(message.timestamp),
            type_id: message.type_id,
            message_stream_id: message.stream_id,
            data: message.body,
        };
        let message = payload.to_rtmp_message().map_err(RtmpError::protocol)?;
        match message {
            RtmpMessage::SetChunkSize { size } => {
                if size == 0 || size > MAX_PEER_CHUNK_SIZE {
                    return Err(RtmpError::protocol(format!("chunk size {size}")));
                }
                self.reader
                    .set_chunk_size(size)
                    .map_err(RtmpError::protocol)?;
            }
            RtmpMessage::WindowAcknowledgement { size } => self.ack.set_window(size),
            RtmpMessage::Abort { stream_id } => self.reader.abort(stream_id),
            RtmpMessage::SetPeerBandwidth { size, .. } => {
                debug!(size, "server set peer bandwidth");
                self.send_control(RtmpMessage::WindowAcknowledgement {
                    size: self.config.window_ack_size,
                })?;
            }
            RtmpMessage::UserControl {
                event_type: UserControlEventType::PingRequest,
                timestamp,
                ..
            } => self.send_control(RtmpMessage::UserControl {
                event_type: UserControlEventType::PingResponse,
                stream_id: None,
                buffer_length: None,
                timestamp: Some(timestamp.unwrap_or(RtmpTimestamp::new(0))),
            })?,
            RtmpMessage::Amf0Command {
                command_name,
                transaction_id,
                command_object,
                additional_arguments,
            } => self.handle_command(
                &command_name,
                transaction_id,
                command_object,
                additional_arguments,
            )?,
            other => debug!(?other, "ignoring server message"),
        }
        Ok(())
    }

    fn handle_command(
        &mut self,
        name: &str,
        transaction_id: f64,
        command_object: Amf0Value,
        args: Vec<Amf0Value>,
    ) -> Result<(), RtmpError> {
        match (name, self.state) {
            ("_result", SessionState::Connecting) if transaction_id == TX_CONNECT => {
                let status = status_of(&args);
                if status.level == "error" {
                    return Err(RtmpError::ConnectRefused {
                        code: status.code,
                        description: status.description,
                    });
                }
                let key = Amf0Value::Utf8String(self.url.stream_key().into());
                self.send_command("releaseStream", TX_RELEASE_STREAM, vec![key.clone()], 0)?;
                self.send_command("FCPublish", TX_FC_PUBLISH, vec![key], 0)?;
                self.send_command("createStream", TX_CREATE_STREAM, vec![], 0)?;
                self.state = SessionState::CreatingStream;
            }
            ("_error", SessionState::Connecting) if transaction_id == TX_CONNECT => {
                let status = status_of(&args);
                return Err(RtmpError::ConnectRefused {
                    code: status.code,
                    description: status.description,
                });
            }
            ("_result", SessionState::CreatingStream) if transaction_id == TX_CREATE_STREAM => {
                let id = args.iter().find_map(|v| match v {
                    Amf0Value::Number(n) => Some(*n),
                    _ => None,
                });
                let id = match id {
                    Some(n) if n >= 1.0 && n <= f64::from(u32::MAX) && n.fract() == 0.0 => n as u32,
                    _ => {
                        return Err(RtmpError::protocol(
                            "createStream result without a valid stream id",
                        ));
                    }
                };
                self.stream_id = id;
                let args = vec![
                    Amf0Value::Utf8String(self.url.stream_key().into()),
                    Amf0Value::Utf8String("live".into()),
                ];
                self.send_command("publish", TX_PUBLISH, args, id)?;
                self.state = SessionState::Publishing;
            }
            ("_error", SessionState::CreatingStream) if transaction_id == TX_CREATE_STREAM => {
                let status = status_of(&args);
                return Err(RtmpError::PublishRefused {
                    code: status.code,
                    description: status.description,
                });
            }
            // Some servers answer a refused publish with _error (and transaction id 0).
            ("_error", SessionState::Publishing) => {
                let status = status_of(&args);
                return Err(RtmpError::PublishRefused {
                    code: status.code,
                    description: status.description,
                });
            }
            ("onStatus", _) => {
                let status = status_of(&args);
                let is_error = status.level == "error";
                self.statuses.push_back(status.clone());
                match self.state {
                    SessionState::Publishing if status.code == "NetStream.Publish.Start" => {
                        self.state = SessionState::Live;
                    }
                    SessionState::Publishing | SessionState::CreatingStream if is_error => {
                        return Err(RtmpError::PublishRefused {
                            code: status.code,
                            description: status.description,
                        });
                    }
                    SessionState::Live if is_error => {
                        return Err(RtmpError::ConnectionLost {
                            reason: format!("{}: {}", status.code, status.description),
                        });
                    }
                    _ => debug!(?status, "server status"),
                }
            }
            ("_error", _) => {
                let status = status_of(&args);
                warn!(
                    transaction_id,
                    ?status,
                    "server answered a command with _error"
                )
            }
            _ => debug!(name, transaction_id, ?command_object, "ignoring command"),
        }
        Ok(())
    }

    /// Queues a ping request (user control event 6) carrying `timestamp_ms`: a few bytes
    /// the server must acknowledge, so that a link that died while the app sends
    /// nothing is noticed (the server's ping response is read and ignored).
    pub fn ping(&mut self, timestamp_ms: u32) -> Result<(), RtmpError> {
        if self.state != SessionState::Live {
            return Err(RtmpError::Closed);
        }
        self.send_control(RtmpMessage::UserControl {
            event_type: UserControlEventType::PingRequest,
            stream_id: None,
            buffer_length: None,
            timestamp: Some(RtmpTimestamp::new(timestamp_ms)),
        })
    }

    fn send_control(&mut self, message: RtmpMessage) -> Result<(), RtmpError> {
        let payload = message
            .into_message_payload(RtmpTimestamp::new(0), 0)
            .map_err(RtmpError::protocol)?;
        self.write_payload(CSID_CONTROL, &payload)
    }

    fn send_command(
        &mut self,
        name: &str,
        transaction_id: f64,
        args: Vec<Amf0Value>,
        stream_id: u32,
    ) -> Result<(), RtmpError> {
        let csid = if stream_id == 0 {
            CSID_COMMAND
        } else {
            CSID_STREAM_COMMAND
        };
        self.send_amf0(csid, stream_id, name, transaction_id, Amf0Value::Null, args)
    }

    fn send_amf0(
        &mut self,
        csid: u32,
        stream_id: u32,
        name: &str,
        transaction_id: f64,
        command_object: Amf0Value,
        additional_arguments: Vec<Amf0Value>,
    ) -> Result<(), RtmpError> {
        let payload = RtmpMessage::Amf0Command {
            command_name: name.into(),
            transaction_id,
            command_object,
            additional_arguments,
        }
        .into_message_payload(RtmpTimestamp::new(0), stream_id)
        .map_err(RtmpError::protocol)?;
        self.write_payload(csid, &payload)
    }

    fn write_payload(&mut self, csid: u32, payload: &MessagePayload) -> Result<(), RtmpError> {
        self.writer.write(
            &mut self.out,
            MessageHeader {
                csid,
                timestamp: payload.timestamp.value,
                type_id: payload.type_id,
                stream_id: payload.message_stream_id,
            },
            &[&payload.data],
        )
    }
}

/// Splits an AMF0 command into name, transaction id, command object and arguments;
/// missing trailing values read as 0 and null.
fn decode_command(data: &[u8]) -> Result<(String, f64, Amf0Value, Vec<Amf0Value>), RtmpError> {
    let command = amf0::decode_command(data)
        .map_err(|e| RtmpError::protocol(format!("AMF0 command: {e}")))?;
    Ok((
        command.name,
        command.transaction_id,
        command.object,
        command.args,
    ))
}

/// Reads `level`, `code` and `description` from a status or result info object.
fn status_of(args: &[Amf0Value]) -> ServerStatus {
    let props = args.iter().find_map(|v| match v {
        Amf0Value::Object(props) => Some(props),
        _ => None,
    });
    let text = |key: &str| {
        props
            .and_then(|p| p.get(key))
            .and_then(|v| match v {
                Amf0Value::Utf8String(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default()
    };
    ServerStatus {
        level: text("level"),
        code: text("code"),
        description: text("description"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amf(values: Vec<Amf0Value>) -> Vec<u8> {
        rml_rtmp::rml_amf0::serialize(&values).unwrap()
    }

    #[test]
    fn decodes_short_commands_that_rml_rtmp_would_panic_on() {
        let (name, tx, obj, args) =
            decode_command(&amf(vec![Amf0Value::Utf8String("onBWDone".into())])).unwrap();
        assert_eq!(
            (name.as_str(), tx, obj, args.len()),
            ("onBWDone", 0.0, Amf0Value::Null, 0)
        );
        let (_, tx, _, _) = decode_command(&amf(vec![
            Amf0Value::Utf8String("_result".into()),
            Amf0Value::Number(4.0),
        ]))
        .unwrap();
        assert_eq!(tx, 4.0);
        assert!(decode_command(&amf(vec![Amf0Value::Number(1.0)])).is_err());
        assert!(decode_command(&[0x02, 0x00]).is_err());
        assert!(decode_command(&[]).is_err());
    }
}
