//! The hub's AAC → Opus transcoder on a publisher's AAC: the AudioSpecificConfig of the
//! sequence header, then raw access units with their timestamps (symphonia's AAC
//! decoder on hostile bitstreams, the timeline's resynchronisation on jumps, the
//! resampler and the Opus encoder), as `Feed::audio` drives it.
//!
//! Input: records (`streamhub_fuzz::records`); the first record's body is the
//! AudioSpecificConfig, every other one an access unit at its timestamp (kinds ignored).
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamhub::media::AudioSpecificConfig;
use streamhub::media::transcode::AacToOpus;
use streamhub_fuzz::records;

/// The hub's default Opus bitrate.
const BITRATE: u32 = 64_000;

fuzz_target!(|data: &[u8]| {
    let records = records::parse(data);
    let Some((config, units)) = records.split_first() else {
        return;
    };
    let Ok(config) = AudioSpecificConfig::parse(config.body) else {
        return;
    };
    let Ok(mut transcoder) = AacToOpus::new(&config, BITRATE) else {
        return;
    };
    assert!((1..=2).contains(&transcoder.channels()));
    for unit in units {
        // A corrupt unit is an error and a frame of silence; the transcoder goes on.
        if let Ok(packets) = transcoder.push(unit.body, i64::from(unit.timestamp_ms) * 1000) {
            for packet in packets {
                assert!(!packet.data.is_empty(), "an empty Opus packet");
            }
        }
    }
    let _ = transcoder.flush();
});
