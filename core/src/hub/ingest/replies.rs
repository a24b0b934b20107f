//! The messages the hub's ingest sends a publisher: protocol control messages and the
//! AMF0 answers to its commands, as bodies ready for the chunk writer.

use std::collections::HashMap;

use bytes::Bytes;
use rml_rtmp::rml_amf0::{self, Amf0Value};

/// Set Chunk Size.
pub(super) const TYPE_SET_CHUNK_SIZE: u8 = 1;
/// Abort Message.
pub(super) const TYPE_ABORT: u8 = 2;
/// Acknowledgement.
pub(super) const TYPE_ACK: u8 = 3;
/// User Control Message.
pub(super) const TYPE_USER_CONTROL: u8 = 4;
/// Window Acknowledgement Size.
pub(super) const TYPE_WINDOW_ACK: u8 = 5;
/// Set Peer Bandwidth.
pub(super) const TYPE_PEER_BANDWIDTH: u8 = 6;
/// Audio.
pub(super) const TYPE_AUDIO: u8 = 8;
/// Video.
pub(super) const TYPE_VIDEO: u8 = 9;
/// AMF3 command (a format byte, then AMF0).
pub(super) const TYPE_AMF3_COMMAND: u8 = 17;
/// AMF0 command.
pub(super) const TYPE_AMF0_COMMAND: u8 = 20;

/// User control event: Stream Begin.
pub(super) const EVENT_STREAM_BEGIN: u16 = 0;
/// User control event: Ping Request.
pub(super) const EVENT_PING_REQUEST: u16 = 6;
/// User control event: Ping Response.
pub(super) const EVENT_PING_RESPONSE: u16 = 7;

/// A big-endian u32 body (Set Chunk Size, Acknowledgement, Window Acknowledgement Size).
pub(super) fn u32_body(value: u32) -> Bytes {
    Bytes::copy_from_slice(&value.to_be_bytes())
}

/// Set Peer Bandwidth with the dynamic limit type.
pub(super) fn peer_bandwidth(size: u32) -> Bytes {
    let mut body = size.to_be_bytes().to_vec();
    body.push(2);
    Bytes::from(body)
}

/// A user control event with one u32 argument.
pub(super) fn user_control(event: u16, value: u32) -> Bytes {
    let mut body = event.to_be_bytes().to_vec();
    body.extend_from_slice(&value.to_be_bytes());
    Bytes::from(body)
}

/// A command: name, transaction id, command object, arguments.
pub(super) fn command(
    name: &str,
    transaction_id: f64,
    object: Amf0Value,
    args: Vec<Amf0Value>,
) -> Bytes {
    let mut values = vec![
        Amf0Value::Utf8String(name.to_string()),
        Amf0Value::Number(transaction_id),
        object,
    ];
    values.extend(args);
    // Serializing values built here cannot fail (rml_amf0 only refuses strings over
    // 64 KiB, and every string here is short or was decoded from one).
    Bytes::from(rml_amf0::serialize(&values).unwrap_or_default())
}

/// `{level, code, description}`, the info object of `_result`, `_error` and `onStatus`.
pub(super) fn status(level: &str, code: &str, description: &str) -> Amf0Value {
    let mut props = HashMap::new();
    props.insert("level".to_string(), Amf0Value::Utf8String(level.into()));
    props.insert("code".to_string(), Amf0Value::Utf8String(code.into()));
    props.insert(
        "description".to_string(),
        Amf0Value::Utf8String(description.into()),
    );
    Amf0Value::Object(props)
}

/// The `_result` of `connect`: server properties and `NetConnection.Connect.Success`.
/// An Enhanced RTMP client's `fourCcList` is answered with the codecs the hub takes.
pub(super) fn connect_result(transaction_id: f64, enhanced: bool) -> Bytes {
    let mut props = HashMap::new();
    props.insert(
        "fmsVer".to_string(),
        Amf0Value::Utf8String("FMS/3,0,1,123".into()),
    );
    props.insert("capabilities".to_string(), Amf0Value::Number(31.0));
    let mut info = HashMap::new();
    if let Amf0Value::Object(status) = status(
        "status",
        "NetConnection.Connect.Success",
        "Connection succeeded.",
    ) {
        info = status;
    }
    info.insert("objectEncoding".to_string(), Amf0Value::Number(0.0));
    if enhanced {
        let codecs = ["avc1", "Opus", "mp4a"]
            .iter()
            .map(|c| Amf0Value::Utf8String((*c).to_string()))
            .collect();
        props.insert("fourCcList".to_string(), Amf0Value::StrictArray(codecs));
    }
    command(
        "_result",
        transaction_id,
        Amf0Value::Object(props),
        vec![Amf0Value::Object(info)],
    )
}
