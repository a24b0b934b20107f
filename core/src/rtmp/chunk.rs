//! Outbound RTMP chunking (RTMP 1.0 spec §5.3), written for the publish path.
//!
//! rml_rtmp's `ChunkSerializer` works, but it allocates per message, uses Type 3 headers
//! for new messages (whose delta semantics after a Type 0 header differ between
//! servers), and computes a wrapped delta when a timestamp goes backwards. This writer
//! serializes straight into the caller's buffer and follows three rules:
//!
//! - a message whose timestamp goes backwards, or the first on a chunk stream, gets a
//!   Type 0 header with the absolute timestamp;
//! - otherwise Type 1 (length or type changed) or Type 2 with the timestamp delta;
//!   Type 3 only for continuation chunks;
//! - a timestamp field of 0xFFFFFF or more is sent as the extended timestamp, and every
//!   continuation chunk of that message repeats it (spec §5.3.1.3). Whether a message is
//!   extended depends on its own header field (absolute or delta), never on the absolute
//!   time: the classic mistake that breaks streams after 2^24 ms (4 h 40 min).
//!
//! Inbound chunks are decoded with rml_rtmp's `ChunkDeserializer`.

use bytes::{BufMut, BytesMut};

use super::RtmpError;

/// Largest value of the 24-bit timestamp field; from it on the extended field is used.
const EXTENDED: u32 = 0xff_ffff;
/// Largest message body the 24-bit length field can describe.
pub const MAX_MESSAGE_LEN: usize = 0xff_ffff;

/// Where and how one message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageHeader {
    /// Chunk stream id (2 for protocol control).
    pub csid: u32,
    /// Message timestamp in milliseconds (wrapping at 2^32).
    pub timestamp: u32,
    /// Message type id.
    pub type_id: u8,
    /// Message stream id.
    pub stream_id: u32,
}

#[derive(Debug, Clone, Copy)]
struct Previous {
    timestamp: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
}

/// Serializes messages into chunks, remembering the last header of each chunk stream.
#[derive(Debug)]
pub struct ChunkWriter {
    chunk_size: usize,
    previous: Vec<Option<Previous>>,
}

impl Default for ChunkWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkWriter {
    /// A writer using the protocol's initial chunk size of 128 bytes.
    pub fn new() -> Self {
        ChunkWriter {
            chunk_size: 128,
            previous: Vec::new(),
        }
    }

    /// Changes the chunk size for every following message. The caller must have sent
    /// Set Chunk Size to the peer before any chunk written after this call.
    pub fn set_chunk_size(&mut self, size: usize) {
        self.chunk_size = size.clamp(1, 0x7fff_ffff);
    }

    /// The current chunk size.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Appends the chunks of one message whose body is `parts` concatenated.
    pub fn write(
        &mut self,
        out: &mut BytesMut,
        header: MessageHeader,
        parts: &[&[u8]],
    ) -> Result<(), RtmpError> {
        let length: usize = parts.iter().map(|p| p.len()).sum();
        if length > MAX_MESSAGE_LEN {
            return Err(RtmpError::Media(crate::media::MediaError::invalid(
                "RTMP message",
                format!("{length} bytes exceeds the 16 MiB message limit"),
            )));
        }
        if !(2..65600).contains(&header.csid) {
            return Err(RtmpError::protocol(format!(
                "chunk stream id {} out of range",
                header.csid
            )));
        }
        let slot = header.csid as usize;
        if self.previous.len() <= slot {
            self.previous.resize(slot + 1, None);
        }
        let length = length as u32;
        let (format, field) = match self.previous[slot] {
            Some(prev)
                if prev.stream_id == header.stream_id
                    && header.timestamp.wrapping_sub(prev.timestamp) < 0x8000_0000 =>
            {
                let delta = header.timestamp.wrapping_sub(prev.timestamp);
                if prev.length == length && prev.type_id == header.type_id {
                    (2u8, delta)
                } else {
                    (1u8, delta)
                }
            }
            _ => (0u8, header.timestamp),
        };
        self.previous[slot] = Some(Previous {
            timestamp: header.timestamp,
            length,
            type_id: header.type_id,
            stream_id: header.stream_id,
        });
        let extended = field >= EXTENDED;
        let chunks = (length as usize).div_ceil(self.chunk_size).max(1);
        let per_chunk_overhead = 3 + if extended { 4 } else { 0 };
        out.reserve(length as usize + 11 + chunks * per_chunk_overhead);

        put_basic_header(out, format, header.csid);
        out.put_uint(u64::from(field.min(EXTENDED)), 3);
        if format <= 1 {
            out.put_uint(u64::from(length), 3);
            out.put_u8(header.type_id);
        }
        if format == 0 {
            out.put_u32_le(header.stream_id);
        }
        if extended {
            out.put_u32(field);
        }

        let mut in_chunk = 0;
        for part in parts {
            let mut part = *part;
            while !part.is_empty() {
                if in_chunk == self.chunk_size {
                    put_basic_header(out, 3, header.csid);
                    if extended {
                        out.put_u32(field);
                    }
                    in_chunk = 0;
                }
                let take = part.len().min(self.chunk_size - in_chunk);
                out.put_slice(&part[..take]);
                part = &part[take..];
                in_chunk += take;
            }
        }
        Ok(())
    }
}

fn put_basic_header(out: &mut BytesMut, format: u8, csid: u32) {
    let fmt = format << 6;
    match csid {
        2..=63 => out.put_u8(fmt | csid as u8),
        64..=319 => {
            out.put_u8(fmt);
            out.put_u8((csid - 64) as u8);
        }
        _ => {
            out.put_u8(fmt | 1);
            out.put_u16_le((csid - 64) as u16);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rml_rtmp::chunk_io::ChunkDeserializer;

    fn decode_all(bytes: &[u8], chunk_size: usize) -> Vec<(u32, u8, u32, Vec<u8>)> {
        let mut reader = ChunkDeserializer::new();
        reader.set_max_chunk_size(chunk_size).unwrap();
        let mut out = Vec::new();
        let mut input = bytes;
        while let Some(msg) = reader.get_next_message(input).unwrap() {
            input = &[];
            out.push((
                msg.timestamp.value,
                msg.type_id,
                msg.message_stream_id,
                msg.data.to_vec(),
            ));
        }
        out
    }

    /// A header on message stream 1 (the chunk reader's tests use it too).
    pub(crate) fn header(csid: u32, timestamp: u32, type_id: u8) -> MessageHeader {
        MessageHeader {
            csid,
            timestamp,
            type_id,
            stream_id: 1,
        }
    }

    #[test]
    fn first_message_is_type_0_with_exact_bytes() {
        let mut w = ChunkWriter::new();
        let mut out = BytesMut::new();
        w.write(&mut out, header(6, 72, 9), &[&[1, 2], &[3]])
            .unwrap();
        assert_eq!(
            &out[..],
            &[6, 0, 0, 72, 0, 0, 3, 9, 1, 0, 0, 0, 1, 2, 3][..]
        );
    }

    #[test]
    fn uses_type_1_and_2_deltas_and_type_0_when_going_back() {
        let mut w = ChunkWriter::new();
        let mut out = BytesMut::new();
        w.write(&mut out, header(6, 100, 9), &[&[1]]).unwrap();
        let start = out.len();
        w.write(&mut out, header(6, 133, 9), &[&[2]]).unwrap();
        assert_eq!(&out[start..], &[0x80 | 6, 0, 0, 33, 2]);
        let start = out.len();
        w.write(&mut out, header(6, 166, 9), &[&[3, 4]]).unwrap();
        assert_eq!(&out[start..], &[0x40 | 6, 0, 0, 33, 0, 0, 2, 9, 3, 4]);
        let start = out.len();
        w.write(&mut out, header(6, 150, 9), &[&[5, 6]]).unwrap();
        assert_eq!(
            out[start], 6,
            "a timestamp going back needs a type 0 header"
        );
        let decoded = decode_all(&out, 128);
        let times: Vec<u32> = decoded.iter().map(|m| m.0).collect();
        assert_eq!(times, vec![100, 133, 166, 150]);
    }

    #[test]
    fn large_message_uses_type_3_continuations() {
        let mut w = ChunkWriter::new();
        w.set_chunk_size(4096);
        let body: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let mut out = BytesMut::new();
        w.write(&mut out, header(6, 0, 9), &[&body[..5], &body[5..]])
            .unwrap();
        assert_eq!(out.len(), 12 + 10_000 + 2);
        assert_eq!(out[12 + 4096], 0xc0 | 6);
        let decoded = decode_all(&out, 4096);
        assert_eq!(decoded.len(), 1);
        assert_eq!(decoded[0].3, body);
    }

    #[test]
    fn extended_timestamp_on_first_and_continuation_chunks() {
        let mut w = ChunkWriter::new();
        let body = vec![7u8; 300];
        let mut out = BytesMut::new();
        w.write(&mut out, header(6, 0x0100_0000, 9), &[&body])
            .unwrap();
        // Type 0: 0xFFFFFF in the header, then the 4-byte extended timestamp.
        assert_eq!(&out[1..4], &[0xff, 0xff, 0xff]);
        assert_eq!(&out[12..16], &0x0100_0000u32.to_be_bytes());
        // First continuation chunk: basic header + repeated extended timestamp.
        assert_eq!(out[16 + 128], 0xc0 | 6);
        assert_eq!(&out[17 + 128..21 + 128], &0x0100_0000u32.to_be_bytes());
        let decoded = decode_all(&out, 128);
        assert_eq!(decoded[0].0, 0x0100_0000);
        assert_eq!(decoded[0].3, body);
    }

    #[test]
    fn small_delta_after_large_absolute_timestamp_is_not_extended() {
        let mut w = ChunkWriter::new();
        let body = vec![1u8; 300];
        let mut out = BytesMut::new();
        w.write(&mut out, header(6, 0x00ff_fff0, 9), &[&body])
            .unwrap();
        let start = out.len();
        w.write(&mut out, header(6, 0x0100_0010, 9), &[&body])
            .unwrap();
        // Type 2 with delta 0x20, no extended field on its continuations.
        assert_eq!(&out[start..start + 4], &[0x80 | 6, 0, 0, 0x20]);
        assert_eq!(out[start + 4 + 128], 0xc0 | 6);
        assert_eq!(
            out[start + 5 + 128],
            1,
            "payload follows the basic header directly"
        );
        let decoded = decode_all(&out, 128);
        assert_eq!(decoded[1].0, 0x0100_0010);
        assert_eq!(decoded[1].3, body);
    }

    /// Walks a long stream across 2^24, 2^31 and the 2^32 wrap with two interleaved
    /// chunk streams and multi-chunk messages; an independent decoder must agree.
    #[test]
    fn timestamps_cross_2_24_2_31_and_2_32() {
        for start in [0x00ff_f000u32, 0x7fff_f000, 0xffff_f000] {
            let mut w = ChunkWriter::new();
            w.set_chunk_size(4096);
            let mut out = BytesMut::new();
            let mut expected = Vec::new();
            for i in 0..400u32 {
                let video_ts = start.wrapping_add(i * 33);
                let audio_ts = start.wrapping_add(i * 23);
                let video = vec![i as u8; 5000 + (i as usize % 7)];
                let audio = vec![!(i as u8); 300];
                w.write(&mut out, header(6, video_ts, 9), &[&video])
                    .unwrap();
                w.write(&mut out, header(4, audio_ts, 8), &[&audio])
                    .unwrap();
                expected.push((video_ts, 9u8, 1u32, video));
                expected.push((audio_ts, 8u8, 1u32, audio));
            }
            assert_eq!(decode_all(&out, 4096), expected, "start {start:#x}");
        }
    }

    #[test]
    fn delta_of_0xffffff_or_more_is_extended() {
        let mut w = ChunkWriter::new();
        let mut out = BytesMut::new();
        w.write(&mut out, header(6, 0, 9), &[&[1]]).unwrap();
        w.write(&mut out, header(6, 0x0200_0000, 9), &[&[2]])
            .unwrap();
        let decoded = decode_all(&out, 128);
        assert_eq!(decoded[1].0, 0x0200_0000);
    }

    #[test]
    fn two_and_three_byte_chunk_stream_ids() {
        let mut w = ChunkWriter::new();
        let mut out = BytesMut::new();
        w.write(&mut out, header(100, 5, 9), &[&[1]]).unwrap();
        assert_eq!(&out[..2], &[0, 36]);
        let mut out = BytesMut::new();
        w.write(&mut out, header(1000, 5, 9), &[&[1]]).unwrap();
        assert_eq!(&out[..3], &[1, 0xa8, 0x03]);
        assert!(w.write(&mut out, header(1, 5, 9), &[&[1]]).is_err());
    }

    #[test]
    fn rejects_oversized_message() {
        let mut w = ChunkWriter::new();
        let big = vec![0u8; MAX_MESSAGE_LEN + 1];
        assert!(
            w.write(&mut BytesMut::new(), header(6, 0, 9), &[&big])
                .is_err()
        );
    }
}
