//! The publish session against rml_rtmp's server session, in memory: two independently
//! written state machines exchanging bytes, with no sockets and no timing.

use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};
use streamhub::_internal_test_exports::rtmp::packetizer::{MediaMessage, MessageKind};
use streamhub::_internal_test_exports::rtmp::session::{
    PublishSession, SessionConfig, SessionState,
};
use streamhub::rtmp::{RtmpError, RtmpUrl};

/// What the in-memory server does with requests.
#[derive(Clone, Copy, PartialEq)]
enum Policy {
    Accept,
    RejectConnect,
    RejectPublish,
}

struct Server {
    handshake: Handshake,
    session: Option<ServerSession>,
    policy: Policy,
    events: Vec<ServerSessionEvent>,
    config: ServerSessionConfig,
}

impl Server {
    fn new(policy: Policy, config: ServerSessionConfig) -> Self {
        Server {
            handshake: Handshake::new(PeerType::Server),
            session: None,
            policy,
            events: Vec::new(),
            config,
        }
    }

    /// Consumes client bytes, returns bytes for the client.
    fn input(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let chunk_data = if self.session.is_none() {
            match self.handshake.process_bytes(data).unwrap() {
                HandshakeProcessResult::InProgress { response_bytes } => return response_bytes,
                HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                } => {
                    out.extend(response_bytes);
                    let (session, results) = ServerSession::new(self.config.clone()).unwrap();
                    self.session = Some(session);
                    self.apply(results, &mut out);
                    remaining_bytes
                }
            }
        } else {
            data.to_vec()
        };
        if !chunk_data.is_empty() {
            let results = self
                .session
                .as_mut()
                .unwrap()
                .handle_input(&chunk_data)
                .unwrap();
            self.apply(results, &mut out);
        }
        out
    }

    fn apply(&mut self, results: Vec<ServerSessionResult>, out: &mut Vec<u8>) {
        for result in results {
            match result {
                ServerSessionResult::OutboundResponse(packet) => out.extend(packet.bytes),
                ServerSessionResult::RaisedEvent(event) => {
                    let decision = match &event {
                        ServerSessionEvent::ConnectionRequested { request_id, .. } => {
                            Some((*request_id, self.policy != Policy::RejectConnect))
                        }
                        ServerSessionEvent::PublishStreamRequested { request_id, .. } => {
                            Some((*request_id, self.policy != Policy::RejectPublish))
                        }
                        _ => None,
                    };
                    self.events.push(event);
                    if let Some((id, accept)) = decision {
                        let session = self.session.as_mut().unwrap();
                        let more = if accept {
                            session.accept_request(id).unwrap()
                        } else if self.policy == Policy::RejectConnect {
                            session
                                .reject_request(id, "NetConnection.Connect.Rejected", "no such app")
                                .unwrap()
                        } else {
                            session
                                .reject_request(
                                    id,
                                    "NetStream.Publish.BadName",
                                    "Already publishing",
                                )
                                .unwrap()
                        };
                        self.apply(more, out);
                    }
                }
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
    }
}

/// Moves bytes both ways until neither side has anything to say.
fn pump(client: &mut PublishSession, server: &mut Server) -> Result<(), RtmpError> {
    for _ in 0..100 {
        let Some(out) = client.take_output() else {
            return Ok(());
        };
        let reply = server.input(&out);
        if !reply.is_empty() {
            client.handle_input(&reply)?;
        }
    }
    panic!("the exchange did not settle");
}

fn client(key: &str) -> PublishSession {
    let url = RtmpUrl::parse(&format!("rtmp://127.0.0.1/live/{key}")).unwrap();
    PublishSession::new(url, SessionConfig::default()).unwrap()
}

/// A deterministic pseudo-random sequence (xorshift64), so failures reproduce.
fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

fn media(kind: MessageKind, timestamp: u32, header: &[u8], body: Vec<u8>) -> MediaMessage {
    MediaMessage {
        kind,
        timestamp,
        header: Bytes::copy_from_slice(header),
        body: Bytes::from(body),
        is_frame: true,
        keyframe: false,
        disposable: false,
    }
}

#[test]
fn publishes_and_the_server_receives_exact_media_across_2_24_ms() {
    let mut client = client("k1");
    let mut server = Server::new(Policy::Accept, ServerSessionConfig::new());
    pump(&mut client, &mut server).unwrap();
    assert_eq!(client.state(), SessionState::Live);
    // rml_rtmp's server leaves releaseStream and FCPublish to the application.
    let commands: Vec<(&str, &[_])> = server
        .events
        .iter()
        .filter_map(|e| match e {
            ServerSessionEvent::UnhandleableAmf0Command {
                command_name,
                additional_values,
                ..
            } => Some((command_name.as_str(), additional_values.as_slice())),
            _ => None,
        })
        .collect();
    let key = [rml_rtmp::rml_amf0::Amf0Value::Utf8String("k1".into())];
    assert_eq!(
        commands,
        vec![("releaseStream", &key[..]), ("FCPublish", &key[..])]
    );
    assert!(
        client
            .poll_status()
            .is_some_and(|s| s.code == "NetStream.Publish.Start")
    );

    let mut sent = Vec::new();
    for i in 0..300u32 {
        let ts = 0x00ff_f000 + i * 33;
        let body: Vec<u8> = (0..9000 + i).map(|b| (b ^ i) as u8).collect();
        let message = media(MessageKind::Video, ts, &[0x27, 1, 0, 0, 0], body);
        client.write_media(&message).unwrap();
        sent.push((ts, [&message.header[..], &message.body[..]].concat()));
        let audio = media(MessageKind::Audio, ts + 5, &[0xaf, 1], vec![i as u8; 200]);
        client.write_media(&audio).unwrap();
        pump(&mut client, &mut server).unwrap();
    }
    let received: Vec<(u32, Vec<u8>)> = server
        .events
        .iter()
        .filter_map(|e| match e {
            ServerSessionEvent::VideoDataReceived {
                data, timestamp, ..
            } => Some((timestamp.value, data.to_vec())),
            _ => None,
        })
        .collect();
    assert_eq!(received.len(), sent.len());
    assert!(received == sent, "video payloads or timestamps differ");
    let audio = server
        .events
        .iter()
        .filter(|e| matches!(e, ServerSessionEvent::AudioDataReceived { .. }))
        .count();
    assert_eq!(audio, 300);

    client.finish().unwrap();
    pump(&mut client, &mut server).unwrap();
    assert!(server.events.iter().any(|e| matches!(
        e,
        ServerSessionEvent::PublishStreamFinished { stream_key, .. } if stream_key == "k1"
    )));
}

#[test]
fn connect_rejection_is_a_typed_error_with_the_servers_code() {
    let mut client = client("k");
    let mut server = Server::new(Policy::RejectConnect, ServerSessionConfig::new());
    match pump(&mut client, &mut server) {
        Err(RtmpError::ConnectRefused { code, description }) => {
            assert_eq!(code, "NetConnection.Connect.Rejected");
            assert_eq!(description, "no such app");
        }
        other => panic!("expected ConnectRefused, got {other:?}"),
    }
}

#[test]
fn publish_rejection_is_a_typed_error_with_the_servers_code() {
    let mut client = client("k");
    let mut server = Server::new(Policy::RejectPublish, ServerSessionConfig::new());
    match pump(&mut client, &mut server) {
        Err(err @ RtmpError::PublishRefused { .. }) => {
            assert!(
                err.to_string().contains("NetStream.Publish.BadName"),
                "{err}"
            );
        }
        other => panic!("expected PublishRefused, got {other:?}"),
    }
}

#[test]
fn answers_pings_and_acknowledges_the_running_byte_count() {
    let mut config = ServerSessionConfig::new();
    config.window_ack_size = 1000;
    let mut client = client("k");
    let mut server = Server::new(Policy::Accept, config);
    pump(&mut client, &mut server).unwrap();
    let start = client.bytes_received();

    // 600 pings of about 10 bytes each: several acknowledgement windows.
    for _ in 0..600 {
        let (packet, _) = server
            .session
            .as_mut()
            .unwrap()
            .send_ping_request()
            .unwrap();
        client.handle_input(&packet.bytes).unwrap();
        pump(&mut client, &mut server).unwrap();
    }
    let pongs = server
        .events
        .iter()
        .filter(|e| matches!(e, ServerSessionEvent::PingResponseReceived { .. }))
        .count();
    assert_eq!(pongs, 600);
    let acks: Vec<u32> = server
        .events
        .iter()
        .filter_map(|e| match e {
            ServerSessionEvent::AcknowledgementReceived { bytes_received } => Some(*bytes_received),
            _ => None,
        })
        .collect();
    // Every acknowledgement carries the running total, so they only grow and the
    // first one is at least one window.
    assert!(
        !acks.is_empty(),
        "received {start} bytes and sent no acknowledgement"
    );
    assert!(acks[0] >= 1000);
    assert!(
        acks.len() >= 3,
        "{acks:?} after {} bytes",
        client.bytes_received()
    );
    assert!(u64::from(*acks.last().unwrap()) <= client.bytes_received());
    assert!(acks.windows(2).all(|w| w[1] > w[0]), "{acks:?}");
}

#[test]
fn server_closing_is_described_by_state() {
    let mut c = client("k");
    assert!(matches!(c.closed_by_server(), RtmpError::Handshake(_)));
    let mut server = Server::new(Policy::Accept, ServerSessionConfig::new());
    pump(&mut c, &mut server).unwrap();
    assert!(matches!(
        c.closed_by_server(),
        RtmpError::ConnectionLost { .. }
    ));
}

#[test]
fn garbage_from_the_server_is_an_error_never_a_panic() {
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    let mut errors = 0;
    for round in 0..2000 {
        let mut c = client("k");
        let mut server = Server::new(Policy::Accept, ServerSessionConfig::new());
        // Half the rounds corrupt the handshake, half the chunk stream after it.
        if round % 2 == 1 {
            // Stop at Connecting: feed the server only the handshake.
            let c0c1 = c.take_output().unwrap();
            let s012 = server.input(&c0c1);
            c.handle_input(&s012).unwrap();
        }
        let len = (next() % 600) as usize;
        let garbage: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if c.handle_input(&garbage).is_err() {
            errors += 1;
        }
    }
    assert!(
        errors > 0,
        "random bytes should be refused at least sometimes"
    );
}

/// Well-framed chunks of every message type with random payloads, after a real
/// handshake and connect: the session may refuse them, but never panics.
#[test]
fn random_messages_of_every_type_never_panic() {
    use streamhub::_internal_test_exports::rtmp::chunk::{ChunkWriter, MessageHeader};
    let mut next = xorshift(0x1234_5678_9abc_def1);
    for round in 0..3000u32 {
        let mut c = client("k");
        let mut server = Server::new(Policy::Accept, ServerSessionConfig::new());
        let c0c1 = c.take_output().unwrap();
        let s012 = server.input(&c0c1);
        c.handle_input(&s012).unwrap();
        let type_id = (round % 23) as u8;
        let len = (next() % 48) as usize;
        let mut payload: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if type_id == 20 && round % 2 == 0 {
            // A plausible AMF0 string first, so decoding goes deeper.
            let mut cmd = vec![0x02, 0x00, 0x07];
            cmd.extend_from_slice(b"_result");
            cmd.extend(payload);
            payload = cmd;
        }
        let mut bytes = bytes::BytesMut::new();
        ChunkWriter::new()
            .write(
                &mut bytes,
                MessageHeader {
                    csid: 3,
                    timestamp: 0,
                    type_id,
                    stream_id: 0,
                },
                &[&payload],
            )
            .unwrap();
        let _ = c.handle_input(&bytes);
    }
}
