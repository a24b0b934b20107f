//! The ingest session against our own publisher's session, in memory, and against
//! hand-made hostile messages.

use super::*;
use crate::rtmp::RtmpUrl;
use crate::rtmp::packetizer::{MediaMessage, MessageKind};
use crate::rtmp::session::{PublishSession, SessionConfig};
use rml_rtmp::handshake::HandshakeProcessResult;

/// Moves bytes both ways until neither side has anything to send.
fn pump(client: &mut PublishSession, hub: &mut IngestSession) -> Vec<IngestEvent> {
    let mut events = Vec::new();
    for _ in 0..100 {
        let mut moved = false;
        if let Some(bytes) = client.take_output() {
            hub.handle_input(&bytes)
                .expect("the hub reads our publisher");
            moved = true;
        }
        while let Some(event) = hub.poll_event() {
            if matches!(event, IngestEvent::PublishRequested { .. }) {
                hub.accept_publish();
            }
            events.push(event);
        }
        if let Some(bytes) = hub.take_output() {
            client
                .handle_input(&bytes)
                .expect("our publisher reads the hub");
            moved = true;
        }
        if !moved {
            break;
        }
    }
    events
}

fn handshaken() -> IngestSession {
    let mut hub = IngestSession::new(ReaderLimits::default());
    let mut client = Handshake::new(PeerType::Client);
    let c0c1 = client.generate_outbound_p0_and_p1().expect("c0c1");
    hub.handle_input(&c0c1).expect("c0c1");
    let s = hub.take_output().expect("s0s1s2");
    let c2 = match client.process_bytes(&s).expect("s0s1s2") {
        HandshakeProcessResult::Completed { response_bytes, .. } => response_bytes,
        HandshakeProcessResult::InProgress { response_bytes } => response_bytes,
    };
    hub.handle_input(&c2).expect("c2");
    assert!(hub.take_output().is_none());
    hub
}

fn command_message(stream_id: u32, values: Vec<Amf0Value>) -> Vec<u8> {
    let body = rml_rtmp::rml_amf0::serialize(&values).unwrap_or_default();
    let mut wire = BytesMut::new();
    let header = MessageHeader {
        csid: 3,
        timestamp: 0,
        type_id: TYPE_AMF0_COMMAND,
        stream_id,
    };
    ChunkWriter::new()
        .write(&mut wire, header, &[&body])
        .expect("short message");
    wire.to_vec()
}

fn connect_values() -> Vec<Amf0Value> {
    let mut props = std::collections::HashMap::new();
    props.insert("app".to_string(), Amf0Value::Utf8String("live".into()));
    vec![
        Amf0Value::Utf8String("connect".into()),
        Amf0Value::Number(1.0),
        Amf0Value::Object(props),
    ]
}

#[test]
fn our_publisher_goes_live_and_its_media_arrives_with_timestamps() {
    let url = RtmpUrl::parse("rtmp://127.0.0.1/live/secret-key").expect("url");
    let mut client = PublishSession::new(url, SessionConfig::default()).expect("session");
    let mut hub = IngestSession::new(ReaderLimits::default());
    let events = pump(&mut client, &mut hub);
    assert_eq!(
        events,
        vec![
            IngestEvent::Connected { app: "live".into() },
            IngestEvent::PublishRequested {
                key: StreamKey("secret-key".into())
            },
        ]
    );
    assert!(client.is_live(), "publisher state {:?}", client.state());
    assert!(hub.is_publishing());
    assert!(!format!("{events:?}").contains("secret-key"));

    let mut sent = Vec::new();
    for i in 0..50u32 {
        let video = i % 3 != 0;
        let body = Bytes::from(vec![i as u8; 10 + (i as usize * 211) % 9000]);
        let message = MediaMessage {
            kind: if video {
                MessageKind::Video
            } else {
                MessageKind::Audio
            },
            timestamp: i * 33,
            header: Bytes::from_static(&[0x17, 1, 0, 0, 0]),
            body: body.clone(),
            is_frame: true,
            keyframe: false,
            disposable: false,
        };
        client.write_media(&message).expect("writes");
        let mut whole = message.header.to_vec();
        whole.extend_from_slice(&body);
        sent.push((video, i * 33, whole));
    }
    let events = pump(&mut client, &mut hub);
    let got: Vec<_> = events
        .into_iter()
        .map(|event| match event {
            IngestEvent::Video { timestamp, body } => (true, timestamp, body.to_vec()),
            IngestEvent::Audio { timestamp, body } => (false, timestamp, body.to_vec()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(got, sent);

    client.finish().expect("finish");
    assert_eq!(
        pump(&mut client, &mut hub),
        vec![IngestEvent::PublishFinished]
    );
}

#[test]
fn commands_with_missing_values_are_refused_not_panicked_on() {
    for name in KNOWN_COMMANDS {
        for count in 0..3 {
            let values = [Amf0Value::Utf8String(name.into()), Amf0Value::Number(2.0)];
            let message = command_message(1, values[..count].to_vec());
            // Before connect: anything but a whole connect is refused.
            let mut hub = handshaken();
            let result = hub.handle_input(&message);
            if count == 0 {
                assert!(
                    matches!(result, Err(IngestError::Command(_))),
                    "{name} {count}"
                );
            } else {
                assert!(result.is_ok(), "{name} {count}: {result:?}");
                assert!(
                    hub.is_closing(),
                    "{name} with {count} values before connect"
                );
                assert!(hub.take_output().is_some(), "{name} {count}: no refusal");
            }
            // After connect.
            let mut hub = handshaken();
            hub.handle_input(&command_message(0, connect_values()))
                .expect("connect");
            hub.take_output();
            let result = hub.handle_input(&message);
            if count == 0 {
                assert!(result.is_err(), "{name} {count}");
                continue;
            }
            assert!(result.is_ok(), "{name} {count}: {result:?}");
            while let Some(event) = hub.poll_event() {
                if event == IngestEvent::PlayRequested {
                    hub.refuse("NetStream.Play.Failed", "no RTMP playback");
                }
            }
            match name {
                "connect" | "publish" | "play" => assert!(hub.is_closing(), "{name} {count}"),
                _ => assert!(!hub.is_publishing(), "{name} {count}"),
            }
        }
    }
}

#[test]
fn a_ping_is_answered_and_short_control_messages_are_errors() {
    let mut hub = handshaken();
    let mut wire = BytesMut::new();
    let header = MessageHeader {
        csid: 2,
        timestamp: 0,
        type_id: TYPE_USER_CONTROL,
        stream_id: 0,
    };
    ChunkWriter::new()
        .write(&mut wire, header, &[&[0, 6, 0, 0, 1, 2]])
        .expect("writes");
    hub.handle_input(&wire).expect("ping");
    let reply = hub.take_output().expect("pong");
    assert_eq!(&reply[reply.len() - 6..], &[0, 7, 0, 0, 1, 2]);

    for type_id in [
        TYPE_SET_CHUNK_SIZE,
        TYPE_ABORT,
        TYPE_WINDOW_ACK,
        TYPE_USER_CONTROL,
    ] {
        let mut hub = handshaken();
        let mut wire = BytesMut::new();
        let header = MessageHeader {
            csid: 2,
            timestamp: 0,
            type_id,
            stream_id: 0,
        };
        ChunkWriter::new()
            .write(&mut wire, header, &[&[0, 1]])
            .expect("writes");
        assert!(
            matches!(hub.handle_input(&wire), Err(IngestError::Control { .. })),
            "type {type_id}"
        );
    }
}

#[test]
fn media_before_an_accepted_publish_is_not_delivered() {
    let mut hub = handshaken();
    hub.handle_input(&command_message(0, connect_values()))
        .expect("connect");
    let mut wire = BytesMut::new();
    let header = MessageHeader {
        csid: 6,
        timestamp: 0,
        type_id: TYPE_VIDEO,
        stream_id: 1,
    };
    ChunkWriter::new()
        .write(&mut wire, header, &[&[0x17, 0, 0, 0, 0]])
        .expect("writes");
    hub.handle_input(&wire).expect("video");
    assert_eq!(
        hub.poll_event(),
        Some(IngestEvent::Connected { app: "live".into() })
    );
    assert_eq!(hub.poll_event(), None);
    assert_eq!(hub.stray_media(), 1);
}

/// Found by the rtmp_hub fuzz target (seed `short-key-in-debug-text`): the stream key
/// `Key` is part of the words `StreamKey`, so the check is the exact redacted text.
#[test]
fn a_stream_key_debugs_as_its_length_only() {
    for key in ["Key", "1", "hidden", "a-long-secret-stream-key"] {
        assert_eq!(
            format!("{:?}", StreamKey(key.into())),
            format!("StreamKey({} bytes, hidden)", key.len())
        );
    }
}
