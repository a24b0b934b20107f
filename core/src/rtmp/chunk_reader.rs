//! Inbound RTMP chunking (RTMP 1.0 spec §5.3): bytes from a peer to whole messages.
//!
//! Written here, not taken from rml_rtmp's `ChunkDeserializer`, because that one is not
//! safe to face strangers: a message header that shortens a chunk stream's length in
//! the middle of a message underflows (a panic in debug builds, a reservation of
//! ~2^64 bytes and an abort in release), an extended timestamp below 0xFFFFFF
//! underflows the same way, every chunk stream shares one partial-payload buffer (so
//! interleaved messages are spliced together), and nothing bounds the message length,
//! the number of chunk streams or the bytes held for unfinished messages. This reader
//! bounds all three ([`ReaderLimits`]) and returns a typed error for anything else.

use std::collections::HashMap;

use bytes::{Buf, Bytes, BytesMut};

/// A whole message, reassembled from its chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The chunk stream it arrived on.
    pub csid: u32,
    /// Its timestamp in milliseconds (wrapping at 2^32).
    pub timestamp: u32,
    /// Its type id (1-6 protocol control, 8 audio, 9 video, 18/15 data, 20/17 command).
    pub type_id: u8,
    /// Its message stream id.
    pub stream_id: u32,
    /// Its body.
    pub body: Bytes,
}

/// What a peer may make the reader hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderLimits {
    /// Longest message body accepted, in bytes (the 24-bit field allows 16 MiB - 1).
    pub max_message_len: usize,
    /// Most chunk streams with state at once.
    pub max_chunk_streams: usize,
    /// Most bytes held for messages not yet complete, over all chunk streams.
    pub max_buffered: usize,
}

impl Default for ReaderLimits {
    /// 8 MiB messages (a 4K keyframe at a high bitrate is about 2 MiB), 64 chunk
    /// streams (encoders use fewer than 10), 16 MiB held.
    fn default() -> Self {
        ReaderLimits {
            max_message_len: 8 << 20,
            max_chunk_streams: 64,
            max_buffered: 16 << 20,
        }
    }
}

/// Why the peer's chunks were refused; the connection cannot go on after one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// A type 1, 2 or 3 chunk on a chunk stream that never had a type 0 chunk.
    #[error("chunk of type {fmt} on chunk stream {csid}, which has no previous header")]
    NoPreviousHeader {
        /// The chunk type.
        fmt: u8,
        /// The chunk stream.
        csid: u32,
    },
    /// A message declared longer than [`ReaderLimits::max_message_len`].
    #[error("message of {len} bytes on chunk stream {csid} is longer than the {max}-byte limit")]
    MessageTooLong {
        /// The declared length.
        len: usize,
        /// The limit.
        max: usize,
        /// The chunk stream.
        csid: u32,
    },
    /// More chunk streams than [`ReaderLimits::max_chunk_streams`].
    #[error("more than {max} chunk streams")]
    TooManyChunkStreams {
        /// The limit.
        max: usize,
    },
    /// Unfinished messages hold more than [`ReaderLimits::max_buffered`] bytes.
    #[error("unfinished messages hold more than {max} bytes")]
    TooMuchBuffered {
        /// The limit.
        max: usize,
    },
    /// A new message header arrived while the chunk stream's message was incomplete.
    #[error("new message header on chunk stream {csid} before its message of {len} bytes ended")]
    InterruptedMessage {
        /// The chunk stream.
        csid: u32,
        /// The length of the unfinished message.
        len: usize,
    },
    /// A chunk size of 0 or above 2^31 - 1.
    #[error("chunk size {0} is not allowed")]
    BadChunkSize(u32),
}

#[derive(Debug, Default)]
struct ChunkStream {
    timestamp: u32,
    /// The last timestamp field (the extended value when it was extended): the delta a
    /// type 3 chunk that starts a message adds, as FFmpeg and rml_rtmp read it.
    field: u32,
    extended: bool,
    length: usize,
    type_id: u8,
    stream_id: u32,
    partial: BytesMut,
}

/// Reassembles messages from chunks. Feed bytes with [`ChunkReader::push`], take
/// messages with [`ChunkReader::next_message`].
#[derive(Debug)]
pub struct ChunkReader {
    input: BytesMut,
    chunk_size: usize,
    limits: ReaderLimits,
    streams: HashMap<u32, ChunkStream>,
    buffered: usize,
}

impl ChunkReader {
    /// A reader at the protocol's initial chunk size of 128 bytes.
    pub fn new(limits: ReaderLimits) -> Self {
        ChunkReader {
            input: BytesMut::new(),
            chunk_size: 128,
            limits,
            streams: HashMap::new(),
            buffered: 0,
        }
    }

    /// Applies the peer's Set Chunk Size.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        if size == 0 || size > 0x7fff_ffff {
            return Err(ChunkError::BadChunkSize(size));
        }
        self.chunk_size = size as usize;
        Ok(())
    }

    /// Applies the peer's Abort Message: drops the chunk stream's unfinished message.
    pub fn abort(&mut self, csid: u32) {
        if let Some(stream) = self.streams.get_mut(&csid) {
            self.buffered -= stream.partial.len();
            stream.partial = BytesMut::new();
        }
    }

    /// Adds bytes read from the peer.
    pub fn push(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
    }

    /// Bytes received but not yet part of a whole chunk.
    pub fn pending(&self) -> usize {
        self.input.len()
    }

    /// The next whole message, `None` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>, ChunkError> {
        loop {
            let Some(chunk) = self.parse_header()? else {
                return Ok(None);
            };
            if let Some(message) = self.take_chunk(chunk)? {
                return Ok(Some(message));
            }
        }
    }

    /// Reads one chunk header if the whole chunk (header and payload) is buffered, and
    /// updates the chunk stream's header; consumes nothing otherwise.
    fn parse_header(&mut self) -> Result<Option<ChunkHead>, ChunkError> {
        let input = &self.input[..];
        let Some(&first) = input.first() else {
            return Ok(None);
        };
        let fmt = first >> 6;
        let (csid, mut at) = match first & 0x3f {
            0 => match input.get(1) {
                Some(&b) => (64 + u32::from(b), 2),
                None => return Ok(None),
            },
            1 => match (input.get(1), input.get(2)) {
                (Some(&b1), Some(&b2)) => (64 + u32::from(b1) + 256 * u32::from(b2), 3),
                _ => return Ok(None),
            },
            csid => (u32::from(csid), 1),
        };
        let header_len = [11, 7, 3, 0][usize::from(fmt)];
        let Some(header) = input.get(at..at + header_len) else {
            return Ok(None);
        };
        at += header_len;
        let previous = self.streams.get(&csid);
        if fmt != 0 && previous.is_none() {
            return Err(ChunkError::NoPreviousHeader { fmt, csid });
        }
        if previous.is_none() && self.streams.len() >= self.limits.max_chunk_streams {
            return Err(ChunkError::TooManyChunkStreams {
                max: self.limits.max_chunk_streams,
            });
        }
        let continuing = previous.is_some_and(|s| !s.partial.is_empty());
        let u24 = |b: &[u8]| u32::from_be_bytes([0, b[0], b[1], b[2]]);
        let field = (fmt < 3).then(|| u24(&header[0..3]));
        let extended = match field {
            Some(field) => field == 0xff_ffff,
            None => previous.is_some_and(|s| s.extended),
        };
        let field = if extended {
            let Some(ext) = input.get(at..at + 4) else {
                return Ok(None);
            };
            at += 4;
            Some(u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]))
        } else {
            field
        };
        let length = if fmt <= 1 {
            let length = u24(&header[3..6]) as usize;
            if length > self.limits.max_message_len {
                return Err(ChunkError::MessageTooLong {
                    len: length,
                    max: self.limits.max_message_len,
                    csid,
                });
            }
            length
        } else {
            previous.map_or(0, |s| s.length)
        };
        if continuing && fmt != 3 {
            return Err(ChunkError::InterruptedMessage {
                csid,
                len: previous.map_or(0, |s| s.length),
            });
        }
        let received = previous.map_or(0, |s| s.partial.len());
        let payload = length.saturating_sub(received).min(self.chunk_size);
        if self.input.len() < at + payload {
            return Ok(None);
        }
        // The whole chunk is here: commit the header.
        let stream = self.streams.entry(csid).or_default();
        match fmt {
            0 => {
                let absolute = field.unwrap_or(0);
                stream.timestamp = absolute;
                stream.field = absolute;
                stream.stream_id =
                    u32::from_le_bytes([header[7], header[8], header[9], header[10]]);
            }
            1 | 2 => {
                let delta = field.unwrap_or(0);
                stream.timestamp = stream.timestamp.wrapping_add(delta);
                stream.field = delta;
            }
            _ if !continuing => {
                // A type 3 chunk starting a message repeats the previous delta; its
                // extended field, when present, is that delta.
                if let Some(delta) = field {
                    stream.field = delta;
                }
                stream.timestamp = stream.timestamp.wrapping_add(stream.field);
            }
            _ => {}
        }
        stream.extended = extended;
        if fmt <= 1 {
            stream.length = length;
            stream.type_id = header[6];
        }
        Ok(Some(ChunkHead {
            csid,
            header_len: at,
            payload,
        }))
    }

    fn take_chunk(&mut self, chunk: ChunkHead) -> Result<Option<Message>, ChunkError> {
        self.input.advance(chunk.header_len);
        let bytes = self.input.split_to(chunk.payload);
        let Some(stream) = self.streams.get_mut(&chunk.csid) else {
            return Ok(None);
        };
        if stream.partial.len() + bytes.len() == stream.length {
            self.buffered -= stream.partial.len();
            let body = if stream.partial.is_empty() {
                bytes.freeze()
            } else {
                stream.partial.extend_from_slice(&bytes);
                std::mem::take(&mut stream.partial).freeze()
            };
            return Ok(Some(Message {
                csid: chunk.csid,
                timestamp: stream.timestamp,
                type_id: stream.type_id,
                stream_id: stream.stream_id,
                body,
            }));
        }
        self.buffered += bytes.len();
        if self.buffered > self.limits.max_buffered {
            return Err(ChunkError::TooMuchBuffered {
                max: self.limits.max_buffered,
            });
        }
        stream.partial.extend_from_slice(&bytes);
        Ok(None)
    }
}

struct ChunkHead {
    csid: u32,
    header_len: usize,
    payload: usize,
}

#[cfg(test)]
mod tests {
    use super::super::chunk::ChunkWriter;
    use super::super::chunk::tests::header;
    use super::*;

    fn read_all(reader: &mut ChunkReader) -> Vec<Message> {
        let mut out = Vec::new();
        while let Some(message) = reader.next_message().expect("valid chunks") {
            out.push(message);
        }
        out
    }

    #[test]
    fn reads_back_what_the_writer_wrote_whatever_the_split() {
        let mut writer = ChunkWriter::new();
        writer.set_chunk_size(100);
        let mut wire = BytesMut::new();
        let bodies: Vec<Vec<u8>> = (0..6u32)
            .map(|i| (0..(i * 97 + 3)).map(|b| b as u8).collect())
            .collect();
        let stamps = [0u32, 40, 80, 0x0100_0000, 0x0100_0028, 7];
        for (i, body) in bodies.iter().enumerate() {
            let csid = if i % 2 == 0 { 6 } else { 4 };
            writer
                .write(&mut wire, header(csid, stamps[i], 9), &[body])
                .expect("writes");
        }
        for step in [1usize, 7, 100, wire.len()] {
            let mut reader = ChunkReader::new(ReaderLimits::default());
            reader.set_chunk_size(100).expect("valid size");
            let mut got = Vec::new();
            for piece in wire.chunks(step) {
                reader.push(piece);
                got.extend(read_all(&mut reader));
            }
            assert_eq!(got.len(), bodies.len(), "split {step}");
            for (i, message) in got.iter().enumerate() {
                assert_eq!(&message.body[..], &bodies[i][..]);
                assert_eq!(message.timestamp, stamps[i], "message {i}, split {step}");
            }
            assert_eq!(reader.pending(), 0);
        }
    }

    #[test]
    fn interleaved_chunk_streams_are_not_spliced() {
        // Two 200-byte messages at chunk size 128, their chunks interleaved.
        let mut wire = Vec::new();
        wire.extend_from_slice(&[0x04, 0, 0, 0, 0, 0, 200, 8, 1, 0, 0, 0]);
        wire.extend_from_slice(&[b'a'; 128]);
        wire.extend_from_slice(&[0x06, 0, 0, 0, 0, 0, 200, 9, 1, 0, 0, 0]);
        wire.extend_from_slice(&[b'v'; 128]);
        wire.push(0xc4);
        wire.extend_from_slice(&[b'a'; 72]);
        wire.push(0xc6);
        wire.extend_from_slice(&[b'v'; 72]);
        let mut reader = ChunkReader::new(ReaderLimits::default());
        reader.push(&wire);
        let got = read_all(&mut reader);
        assert_eq!(got.len(), 2);
        assert!(got[0].body.iter().all(|&b| b == b'a') && got[0].body.len() == 200);
        assert!(got[1].body.iter().all(|&b| b == b'v') && got[1].body.len() == 200);
    }

    #[test]
    fn hostile_headers_are_typed_errors() {
        let mut reader = ChunkReader::new(ReaderLimits::default());
        reader.push(&[0x43, 0, 0, 0, 0, 0, 1, 20]);
        assert_eq!(
            reader.next_message(),
            Err(ChunkError::NoPreviousHeader { fmt: 1, csid: 3 })
        );

        let mut reader = ChunkReader::new(ReaderLimits::default());
        reader.push(&[0x03, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0]);
        assert!(matches!(
            reader.next_message(),
            Err(ChunkError::MessageTooLong { len: 0xff_ffff, .. })
        ));

        // A shorter length mid-message (rml_rtmp underflows here).
        let mut reader = ChunkReader::new(ReaderLimits::default());
        reader.push(&[0x03, 0, 0, 0, 0, 1, 0, 9, 1, 0, 0, 0]);
        reader.push(&[0u8; 128]);
        reader.push(&[0x43, 0, 0, 0, 0, 0, 1, 9, 0]);
        assert_eq!(
            reader.next_message(),
            Err(ChunkError::InterruptedMessage { csid: 3, len: 256 })
        );

        let mut reader = ChunkReader::new(ReaderLimits {
            max_chunk_streams: 2,
            ..ReaderLimits::default()
        });
        for csid in 3..6u8 {
            reader.push(&[csid, 0, 0, 0, 0, 0, 0, 9, 1, 0, 0, 0]);
        }
        assert_eq!(reader.next_message().map(|m| m.is_some()), Ok(true));
        assert_eq!(reader.next_message().map(|m| m.is_some()), Ok(true));
        assert_eq!(
            reader.next_message(),
            Err(ChunkError::TooManyChunkStreams { max: 2 })
        );

        let mut reader = ChunkReader::new(ReaderLimits {
            max_buffered: 200,
            ..ReaderLimits::default()
        });
        for csid in 3..6u8 {
            reader.push(&[csid, 0, 0, 0, 0, 1, 0, 9, 1, 0, 0, 0]);
            reader.push(&[0u8; 128]);
        }
        assert_eq!(
            reader.next_message(),
            Err(ChunkError::TooMuchBuffered { max: 200 })
        );
        assert_eq!(
            ChunkReader::new(ReaderLimits::default()).set_chunk_size(0),
            Err(ChunkError::BadChunkSize(0))
        );
    }

    #[test]
    fn an_extended_timestamp_below_the_marker_is_taken_as_it_is() {
        // rml_rtmp subtracts 0xFFFFFF from it and underflows.
        let mut reader = ChunkReader::new(ReaderLimits::default());
        reader.push(&[
            0x06, 0xff, 0xff, 0xff, 0, 0, 1, 9, 1, 0, 0, 0, 0, 0, 0, 5, 0xaa,
        ]);
        reader.push(&[0x86, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0xbb]);
        let got = read_all(&mut reader);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].timestamp, 5);
        assert_eq!(got[1].timestamp, 6);
    }
}
