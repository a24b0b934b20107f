//! Publish an FLV file to an RTMP ingest with the StreamHub core, at the media's pace.
//!
//! ```sh
//! cargo run -p streamhub-examples --example publish_flv -- clip.flv rtmp://127.0.0.1/live/key
//! ```

use streamhub::media::Pacer;
use streamhub::media::flv::{FlvPayload, FlvReader};
use streamhub::rtmp::{PublishConfig, Publisher};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(url)) = (args.next(), args.next()) else {
        return Err("usage: publish_flv FILE.flv rtmp://host/app/key".into());
    };
    let reader = FlvReader::new(std::io::BufReader::new(std::fs::File::open(path)?))?;

    // Configs are `#[non_exhaustive]`: start from the defaults, then set fields.
    let mut config = PublishConfig::default();
    config.timestamp_origin_us = Some(0); // FLV times already start near zero
    let publisher = Publisher::connect(&url, config).await?;
    let mut pacer = Pacer::from_first_timestamp();
    for tag in reader {
        let tag = tag?;
        // Real apps send frames as the encoder produces them; here we pace by timestamp.
        pacer.wait(i64::from(tag.timestamp_ms) * 1000).await;
        match tag.payload {
            FlvPayload::VideoConfig(config) => publisher.set_video_config(config),
            FlvPayload::AudioConfig(config) => publisher.set_audio_config(config),
            FlvPayload::Video(frame) => publisher.send_video(&frame).await?,
            FlvPayload::Audio(frame) => publisher.send_audio(&frame).await?,
            _ => {}
        }
    }
    let stats = publisher.finish().await?;
    println!(
        "sent {} video and {} audio frames, {} bytes, live after {:?}",
        stats.video_frames, stats.audio_frames, stats.bytes_sent, stats.connect_time
    );
    Ok(())
}
