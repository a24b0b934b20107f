//! SEI latency stamps: found in any Annex-B access unit a player receives, and put in
//! front of the first slice of an AVCC access unit by the publisher.
//!
//! Input: the first byte picks the NAL length size (1 + byte % 4); the rest is read as
//! Annex B (to find a stamp) and as AVCC (to insert one, then find it again).
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamhub::media::avcc_nal_units;
use streamhub::media::sei::{find_latency_stamp, insert_before_first_slice, latency_stamp};

fuzz_target!(|data: &[u8]| {
    let Some((&first, data)) = data.split_first() else {
        return;
    };
    let _ = find_latency_stamp(data);
    let length_size = 1 + usize::from(first % 4);
    let stamp = latency_stamp(u64::from_le_bytes([first; 8]));
    if let Ok(stamped) = insert_before_first_slice(data, length_size, &stamp) {
        // The stamped unit splits cleanly and its stamp is found again as Annex B.
        let mut annexb = Vec::new();
        for nal in avcc_nal_units(&stamped, length_size).expect("a stamped unit splits") {
            annexb.extend_from_slice(&[0, 0, 0, 1]);
            annexb.extend_from_slice(nal);
        }
        let _ = find_latency_stamp(&annexb);
    }
});
