//! An FLV file as `streamhub publish` reads it: the reader, each tag body, and the
//! packetizer that turns the file's frames into RTMP messages (with the demo's
//! latency stamp put in front of each frame's first slice).
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamhub::_internal_test_exports::rtmp::packetizer::Packetizer;
use streamhub::media::flv::{FlvError, FlvPayload, FlvReader};
use streamhub::media::sei::{insert_before_first_slice, latency_stamp};

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = FlvReader::new(data) else {
        return;
    };
    let _ = (reader.has_audio(), reader.has_video());
    let mut packetizer = Packetizer::new(None, Default::default());
    let mut length_size = 4;
    loop {
        let tag = match reader.next_tag() {
            Ok(Some(tag)) => tag,
            Ok(None) => break,
            // A bad tag body is skipped, as a tolerant reader would; the reader is past it.
            Err(FlvError::Media { .. }) => continue,
            Err(_) => break,
        };
        match tag.payload {
            FlvPayload::VideoConfig(config) => {
                let _ = (config.dimensions(), config.frame_rate());
                length_size = config.nal_length_size();
                packetizer.set_video_config(config);
            }
            FlvPayload::Video(mut frame) => {
                if let Ok(stamped) =
                    insert_before_first_slice(&frame.data, length_size, &latency_stamp(1))
                {
                    frame.data = stamped;
                }
                let _ = packetizer.video(&frame);
            }
            FlvPayload::AudioConfig(config) => packetizer.set_audio_config(config),
            FlvPayload::Audio(frame) => {
                let _ = packetizer.audio(&frame);
            }
            FlvPayload::Metadata(_) | FlvPayload::OtherScript | FlvPayload::VideoEndOfSequence => {}
        }
    }
});
