//! H.264 configuration: the AVC decoder configuration record (as in an FLV or RTMP
//! sequence header) with its SPS (dimensions, frame rate), the NAL unit splitters, and
//! an app's Annex-B frame through the packetizer, which finds SPS and PPS in it and
//! builds a record from them.
//!
//! Input: the first byte picks the NAL length size (1 + byte % 4) for the AVCC
//! splitter; the rest is read as a record, as AVCC and as Annex B.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use streamhub::_internal_test_exports::rtmp::packetizer::Packetizer;
use streamhub::media::{
    AvcDecoderConfig, VideoFormat, VideoFrame, annexb_nal_units, avcc_nal_units, nal_type,
};

fuzz_target!(|data: &[u8]| {
    let Some((&first, data)) = data.split_first() else {
        return;
    };
    if let Ok(config) = AvcDecoderConfig::parse(data) {
        let _ = (config.dimensions(), config.frame_rate());
        let _ = (
            config.profile_idc(),
            config.level_idc(),
            config.nal_length_size(),
        );
        // A record rebuilt from its own parameter sets parses again.
        if let Ok(rebuilt) = AvcDecoderConfig::from_parameter_sets(config.sps(), config.pps()) {
            let again = AvcDecoderConfig::parse(rebuilt.record()).expect("a rebuilt record parses");
            assert_eq!(again.sps(), config.sps());
            assert_eq!(again.pps(), config.pps());
        }
    }
    let length_size = 1 + usize::from(first % 4);
    if let Ok(nals) = avcc_nal_units(data, length_size) {
        for nal in nals {
            let _ = nal_type(nal);
        }
    }
    let sets: Vec<Bytes> = annexb_nal_units(data).map(Bytes::copy_from_slice).collect();
    let _ = AvcDecoderConfig::from_parameter_sets(&sets, &sets);
    let mut packetizer = Packetizer::new(None, Default::default());
    let frame = VideoFrame::new(data.to_vec(), VideoFormat::AnnexB, first & 0x80 != 0, 0);
    let _ = packetizer.video(&frame);
});
