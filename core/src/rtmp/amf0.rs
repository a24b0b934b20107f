//! AMF0 decoding (Adobe's AMF0 specification) for bytes that come from a peer.
//!
//! rml_amf0 0.3 is kept for *encoding* (its [`Amf0Value`] is the value type here too),
//! but its decoder is not safe on hostile input: it recurses once per nested object
//! with no limit, so a 64 KiB command made of nested objects overflows a thread's
//! stack and aborts the whole process; and rml_rtmp's command parser panics on a
//! command with fewer than three values. This decoder bounds the nesting depth, reads
//! only what the message holds and returns a typed error for everything else.

use std::collections::HashMap;

use rml_rtmp::rml_amf0::Amf0Value;

/// Deepest nesting of objects and arrays accepted (real peers use 2 or 3).
pub const MAX_DEPTH: usize = 16;

/// Why AMF0 bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Amf0Error {
    /// The bytes ended inside a value.
    #[error("AMF0 value truncated at byte {at}")]
    Truncated {
        /// Offset where more bytes were needed.
        at: usize,
    },
    /// A type marker this decoder does not know (references, AMF3 switch, ...).
    #[error("AMF0 marker {marker:#04x} at byte {at} is not supported")]
    UnknownMarker {
        /// The marker byte.
        marker: u8,
        /// Its offset.
        at: usize,
    },
    /// Objects or arrays nested deeper than [`MAX_DEPTH`].
    #[error("AMF0 values nested deeper than {MAX_DEPTH}")]
    TooDeep,
    /// A string is not UTF-8.
    #[error("AMF0 string at byte {at} is not UTF-8")]
    NotUtf8 {
        /// The string's offset.
        at: usize,
    },
    /// An object property with an empty name is not followed by the end marker.
    #[error("AMF0 object at byte {at} has a property without a name")]
    EmptyPropertyName {
        /// The offset of the property.
        at: usize,
    },
}

/// A command message (`connect`, `publish`, `_result`, `onStatus`, ...) as decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// The command's name.
    pub name: String,
    /// Its transaction id (0 when the peer left it out or sent another type).
    pub transaction_id: f64,
    /// The command object (`Null` when absent).
    pub object: Amf0Value,
    /// The values after the command object.
    pub args: Vec<Amf0Value>,
}

/// Why a command message was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// Its AMF0 bytes are malformed.
    #[error(transparent)]
    Amf0(#[from] Amf0Error),
    /// The first value is not a string.
    #[error("command without a name")]
    NoName,
}

/// Decodes every value of `data`; a top-level object-end marker ends the list.
pub fn decode(data: &[u8]) -> Result<Vec<Amf0Value>, Amf0Error> {
    let mut reader = Reader { data, at: 0 };
    let mut values = Vec::new();
    while reader.at < data.len() {
        if data[reader.at] == OBJECT_END {
            break;
        }
        values.push(reader.value(0)?);
    }
    Ok(values)
}

/// Decodes a command message body (AMF0; for an AMF3 command message strip its leading
/// format byte first). Missing transaction ids and command objects are tolerated, as
/// real servers and clients leave them out.
pub fn decode_command(data: &[u8]) -> Result<Command, CommandError> {
    let mut values = decode(data)?.into_iter();
    let name = match values.next() {
        Some(Amf0Value::Utf8String(name)) => name,
        _ => return Err(CommandError::NoName),
    };
    let transaction_id = match values.next() {
        Some(Amf0Value::Number(id)) if id.is_finite() => id,
        _ => 0.0,
    };
    let object = values.next().unwrap_or(Amf0Value::Null);
    Ok(Command {
        name,
        transaction_id,
        object,
        args: values.collect(),
    })
}

const NUMBER: u8 = 0x00;
const BOOLEAN: u8 = 0x01;
const STRING: u8 = 0x02;
const OBJECT: u8 = 0x03;
const NULL: u8 = 0x05;
const UNDEFINED: u8 = 0x06;
const ECMA_ARRAY: u8 = 0x08;
const OBJECT_END: u8 = 0x09;
const STRICT_ARRAY: u8 = 0x0a;
const DATE: u8 = 0x0b;
const LONG_STRING: u8 = 0x0c;

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Amf0Error> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.data.len())
            .ok_or(Amf0Error::Truncated { at: self.at })?;
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, Amf0Error> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<usize, Amf0Error> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn u32(&mut self) -> Result<u32, Amf0Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64, Amf0Error> {
        let b = self.take(8)?;
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(b);
        Ok(f64::from_be_bytes(bytes))
    }

    fn string(&mut self, len: usize) -> Result<String, Amf0Error> {
        let at = self.at;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| Amf0Error::NotUtf8 { at })
    }

    fn value(&mut self, depth: usize) -> Result<Amf0Value, Amf0Error> {
        let at = self.at;
        let marker = self.u8()?;
        Ok(match marker {
            NUMBER => Amf0Value::Number(self.f64()?),
            BOOLEAN => Amf0Value::Boolean(self.u8()? != 0),
            STRING => {
                let len = self.u16()?;
                Amf0Value::Utf8String(self.string(len)?)
            }
            LONG_STRING => {
                let len = self.u32()? as usize;
                Amf0Value::Utf8String(self.string(len)?)
            }
            NULL => Amf0Value::Null,
            UNDEFINED => Amf0Value::Undefined,
            OBJECT => Amf0Value::Object(self.properties(depth + 1)?),
            // The count is advisory (encoders disagree); the end marker is what counts,
            // as rml_amf0 and FFmpeg read it.
            ECMA_ARRAY => {
                self.u32()?;
                Amf0Value::Object(self.properties(depth + 1)?)
            }
            STRICT_ARRAY => {
                if depth + 1 > MAX_DEPTH {
                    return Err(Amf0Error::TooDeep);
                }
                let count = self.u32()? as usize;
                // Every value takes at least one byte: a count beyond what is left is a
                // lie, and must not size an allocation.
                let mut values = Vec::with_capacity(count.min(self.data.len() - self.at));
                for _ in 0..count {
                    values.push(self.value(depth + 1)?);
                }
                Amf0Value::StrictArray(values)
            }
            DATE => {
                let ms = self.f64()?;
                self.take(2)?; // time zone, unused by the format's own definition
                Amf0Value::Number(ms)
            }
            marker => return Err(Amf0Error::UnknownMarker { marker, at }),
        })
    }

    fn properties(&mut self, depth: usize) -> Result<HashMap<String, Amf0Value>, Amf0Error> {
        if depth > MAX_DEPTH {
            return Err(Amf0Error::TooDeep);
        }
        let mut properties = HashMap::new();
        loop {
            let at = self.at;
            let len = self.u16()?;
            if len == 0 {
                // An empty name is the end of the object, followed by the end marker.
                // Some encoders end the message without it.
                if self.at == self.data.len() {
                    return Ok(properties);
                }
                return match self.u8()? {
                    OBJECT_END => Ok(properties),
                    _ => Err(Amf0Error::EmptyPropertyName { at }),
                };
            }
            let name = self.string(len)?;
            let value = self.value(depth)?;
            properties.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rml_rtmp::rml_amf0;

    fn encode(values: Vec<Amf0Value>) -> Vec<u8> {
        rml_amf0::serialize(&values).unwrap_or_default()
    }

    #[test]
    fn decodes_what_rml_amf0_encodes() {
        let mut props = HashMap::new();
        props.insert("app".to_string(), Amf0Value::Utf8String("live".into()));
        props.insert("n".to_string(), Amf0Value::Number(3.5));
        props.insert("b".to_string(), Amf0Value::Boolean(true));
        props.insert(
            "list".to_string(),
            Amf0Value::StrictArray(vec![Amf0Value::Null, Amf0Value::Undefined]),
        );
        let values = vec![
            Amf0Value::Utf8String("connect".into()),
            Amf0Value::Number(1.0),
            Amf0Value::Object(props),
        ];
        assert_eq!(decode(&encode(values.clone())), Ok(values));
    }

    #[test]
    fn a_command_with_only_its_name_decodes() {
        let body = encode(vec![Amf0Value::Utf8String("connect".into())]);
        let command = decode_command(&body).expect("decodes");
        assert_eq!(command.name, "connect");
        assert_eq!(command.transaction_id, 0.0);
        assert_eq!(command.object, Amf0Value::Null);
        assert!(command.args.is_empty());
    }

    #[test]
    fn deep_nesting_is_refused_without_recursing_to_the_bottom() {
        // 20 000 nested objects: rml_amf0 overflows the stack on this.
        let mut body = Vec::new();
        for _ in 0..20_000 {
            body.extend_from_slice(&[OBJECT, 0, 1, b'a']);
        }
        assert_eq!(decode(&body), Err(Amf0Error::TooDeep));
        let mut arrays = Vec::new();
        for _ in 0..20_000 {
            arrays.extend_from_slice(&[STRICT_ARRAY, 0, 0, 0, 1]);
        }
        assert_eq!(decode(&arrays), Err(Amf0Error::TooDeep));
    }

    #[test]
    fn lying_lengths_are_truncation_errors() {
        assert_eq!(
            decode(&[STRING, 0xff, 0xff, b'a']),
            Err(Amf0Error::Truncated { at: 3 })
        );
        assert_eq!(
            decode(&[STRICT_ARRAY, 0xff, 0xff, 0xff, 0xff]),
            Err(Amf0Error::Truncated { at: 5 })
        );
        assert_eq!(decode(&[NUMBER, 1, 2]), Err(Amf0Error::Truncated { at: 1 }));
        assert_eq!(
            decode(&[0x11]),
            Err(Amf0Error::UnknownMarker {
                marker: 0x11,
                at: 0
            })
        );
        assert_eq!(
            decode(&[STRING, 0, 1, 0xff]),
            Err(Amf0Error::NotUtf8 { at: 3 })
        );
        assert_eq!(decode_command(&[]), Err(CommandError::NoName));
        assert_eq!(
            decode_command(&encode(vec![Amf0Value::Number(1.0)])),
            Err(CommandError::NoName)
        );
    }
}
