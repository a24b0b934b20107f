//! AAC: ADTS streams as an app hands them to the publisher, and AudioSpecificConfig
//! records (FLV and RTMP sequence headers).
//!
//! Input: read as an AudioSpecificConfig, as ADTS, and as an ADTS frame through the
//! packetizer.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use streamhub::_internal_test_exports::rtmp::packetizer::Packetizer;
use streamhub::media::{AudioFormat, AudioFrame, AudioSpecificConfig, split_adts};

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = AudioSpecificConfig::parse(data) {
        let (object_type, rate, channels) = (
            config.object_type(),
            config.sample_rate(),
            config.channels(),
        );
        // What parses can be built again, and reads back the same.
        if let Ok(rebuilt) = AudioSpecificConfig::new(object_type, rate, channels) {
            let again = AudioSpecificConfig::parse(rebuilt.bytes()).expect("a built config parses");
            assert_eq!(
                (again.object_type(), again.sample_rate(), again.channels()),
                (object_type, rate, channels)
            );
        }
    }
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(frames) = split_adts(&bytes) {
        for frame in frames {
            let _ = (frame.config.sample_rate(), frame.payload.len());
        }
    }
    let mut packetizer = Packetizer::new(None, Default::default());
    let _ = packetizer.audio(&AudioFrame::new(bytes, AudioFormat::AacAdts, 0));
});
