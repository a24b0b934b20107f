//! Tests against real AAC made by ffmpeg (see `testdata/README.md`): the Opus output is
//! decoded back with libopus (in ffmpeg) and its tone, level, length and timestamps are checked.

use bytes::Bytes;

use super::resampler::Resampler;
use super::*;
use crate::media::split_adts;

const STEREO_44100: &[u8] = include_bytes!("testdata/sine_1k_1k5_stereo_44100.aac");
const MONO_48000: &[u8] = include_bytes!("testdata/sine_1k_mono_48000.aac");

/// ffmpeg's `sine` source has an amplitude of 1/8: RMS 0.125 / √2.
const SINE_RMS: f64 = 0.125 / std::f64::consts::SQRT_2;

struct Fixture {
    config: AudioSpecificConfig,
    frames: Vec<Bytes>,
}

impl Fixture {
    fn load(data: &'static [u8]) -> Fixture {
        let frames = split_adts(&Bytes::from_static(data)).expect("fixture is valid ADTS");
        let config = frames[0].config.clone();
        Fixture {
            config,
            frames: frames.into_iter().map(|frame| frame.payload).collect(),
        }
    }

    fn rate(&self) -> u32 {
        self.config.sample_rate()
    }

    /// pts of access unit `index` when the stream starts at `start_us`.
    fn pts(&self, start_us: i64, index: usize) -> i64 {
        start_us + (index as i64 * 1024 * 1_000_000) / i64::from(self.rate())
    }
}

/// Opus packets a whole segment of `aac_frames` access units must produce: its duration at
/// 48 kHz rounded to a sample, padded to whole 20 ms packets.
fn expected_packets(aac_frames: usize, rate: u32) -> usize {
    let samples_48k = (aac_frames as u64 * 1024 * 48_000 + u64::from(rate) / 2) / u64::from(rate);
    samples_48k.div_ceil(960) as usize
}

fn transcode_all(fixture: &Fixture, start_us: i64) -> (AacToOpus, Vec<OpusPacket>) {
    let mut transcoder = AacToOpus::new(&fixture.config, 64_000).expect("AAC-LC config");
    let mut packets = Vec::new();
    for (index, frame) in fixture.frames.iter().enumerate() {
        packets.extend(
            transcoder
                .push(frame, fixture.pts(start_us, index))
                .expect("decodes"),
        );
    }
    packets.extend(transcoder.flush().expect("flushes"));
    (transcoder, packets)
}

/// Decodes packets with libopus, in ffmpeg (an independent implementation of the
/// decoder): the packets go into an Ogg Opus stream with no pre-skip, so the output is
/// every decoded sample, 960 per packet. One Vec of 48 kHz samples per channel.
fn decode(packets: &[OpusPacket], channels: u8) -> Vec<Vec<f32>> {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let mut head = opus_pure::OpusHead::new(channels, 48_000).expect("Opus head");
    head.pre_skip = 0;
    let mut ogg = Vec::new();
    let mut writer = opus_pure::OggOpusWriter::new(&mut ogg, head).expect("Ogg writer");
    for packet in packets {
        assert_eq!(packet.samples, 960);
        writer.write_packet(&packet.data).expect("Ogg page");
    }
    writer.finish().expect("Ogg end");

    let mut child = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-c:a", "libopus", "-f", "ogg", "-i", "pipe:0"])
        .args(["-f", "f32le", "-ar", "48000", "pipe:1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("running ffmpeg: {e} (scripts/test.sh installs every test peer, then runs the tests)")
        });
    let mut stdin = child.stdin.take().expect("ffmpeg stdin");
    let feeder = std::thread::spawn(move || stdin.write_all(&ogg));
    let out = child.wait_with_output().expect("ffmpeg output");
    feeder
        .join()
        .expect("feeding ffmpeg")
        .expect("writing to ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg could not decode the Opus packets: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let width = usize::from(channels);
    let samples: Vec<f32> = out
        .stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(
        samples.len(),
        packets.len() * 960 * width,
        "every packet is 20 ms"
    );
    let mut planes = vec![Vec::with_capacity(samples.len() / width); width];
    for (index, sample) in samples.iter().enumerate() {
        planes[index % width].push(*sample);
    }
    planes
}

fn rms(samples: &[f32]) -> f64 {
    let sum: f64 = samples.iter().map(|s| f64::from(*s) * f64::from(*s)).sum();
    (sum / samples.len().max(1) as f64).sqrt()
}

/// Frequency estimated from the zero crossings of `samples` at 48 kHz.
fn zero_crossing_hz(samples: &[f32]) -> f64 {
    let crossings = samples
        .windows(2)
        .filter(|pair| (pair[0] < 0.0) != (pair[1] < 0.0))
        .count();
    crossings as f64 / 2.0 / (samples.len() as f64 / 48_000.0)
}

/// Power of `samples` (48 kHz) at `freq` Hz, Goertzel algorithm, normalised to the length.
fn goertzel(samples: &[f32], freq: f64) -> f64 {
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * freq / 48_000.0).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for sample in samples {
        let s0 = f64::from(*sample) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (samples.len() as f64).powi(2)
}

/// Milliseconds of `samples` (48 kHz) whose 10 ms windows are clearly not silent.
fn audible_ms(samples: &[f32]) -> usize {
    samples
        .chunks(480)
        .filter(|w| rms(w) > SINE_RMS / 2.0)
        .count()
        * 10
}

/// The steady part of the tone: 200 ms to 800 ms.
fn steady(plane: &[f32]) -> &[f32] {
    &plane[9_600..38_400]
}

fn assert_tone(plane: &[f32], freq: f64, other: f64) {
    let part = steady(plane);
    let hz = zero_crossing_hz(part);
    assert!(
        (hz - freq).abs() < freq * 0.01,
        "tone at {hz} Hz, expected {freq}"
    );
    let level = rms(part);
    assert!(
        (level - SINE_RMS).abs() < SINE_RMS * 0.15,
        "RMS {level}, expected {SINE_RMS}"
    );
    assert!(
        goertzel(part, freq) > 100.0 * goertzel(part, other),
        "{freq} Hz does not dominate {other} Hz"
    );
}

fn assert_continuous(packets: &[OpusPacket], start_us: i64) {
    for (n, packet) in packets.iter().enumerate() {
        assert_eq!(packet.pts_us, start_us + n as i64 * 20_000, "packet {n}");
    }
}

#[test]
fn stereo_44100_keeps_tones_channels_level_and_duration() {
    let fixture = Fixture::load(STEREO_44100);
    assert_eq!(
        (
            fixture.config.object_type(),
            fixture.rate(),
            fixture.config.channels()
        ),
        (2, 44_100, 2)
    );
    let start_us = 1_234_567;
    let (transcoder, packets) = transcode_all(&fixture, start_us);
    assert_eq!(transcoder.channels(), 2);
    assert_eq!(
        packets.len(),
        expected_packets(fixture.frames.len(), 44_100)
    );
    assert_continuous(&packets, start_us);

    let planes = decode(&packets, 2);
    assert_tone(&planes[0], 1_000.0, 1_500.0); // left
    assert_tone(&planes[1], 1_500.0, 1_000.0); // right
    // The source is 1 s of tone: within a 20 ms frame plus codec delays and the fade-in of
    // the first window.
    let audible = audible_ms(&planes[0]);
    assert!((970..=1_040).contains(&audible), "{audible} ms of tone");
}

#[test]
fn mono_48000_passes_through_the_resampler() {
    let fixture = Fixture::load(MONO_48000);
    assert_eq!((fixture.rate(), fixture.config.channels()), (48_000, 1));
    let (transcoder, packets) = transcode_all(&fixture, 0);
    assert_eq!(transcoder.channels(), 1);
    assert_eq!(
        packets.len(),
        expected_packets(fixture.frames.len(), 48_000)
    );
    assert_continuous(&packets, 0);
    let planes = decode(&packets, 1);
    assert_eq!(planes.len(), 1);
    assert_tone(&planes[0], 1_000.0, 1_500.0);
    let audible = audible_ms(&planes[0]);
    assert!((970..=1_040).contains(&audible), "{audible} ms of tone");
}

#[test]
fn small_jitter_keeps_timestamps_continuous() {
    let fixture = Fixture::load(STEREO_44100);
    let mut transcoder = AacToOpus::new(&fixture.config, 64_000).unwrap();
    let mut packets = Vec::new();
    for (index, frame) in fixture.frames.iter().enumerate() {
        // FLV-style millisecond rounding plus up to ±90 ms of wobble.
        let wobble = [0, 90_000, -90_000, 1_000][index % 4];
        let pts = fixture.pts(0, index) / 1_000 * 1_000 + wobble;
        let pts = if index == 0 { 0 } else { pts };
        packets.extend(transcoder.push(frame, pts).unwrap());
    }
    packets.extend(transcoder.flush().unwrap());
    assert_eq!(
        packets.len(),
        expected_packets(fixture.frames.len(), 44_100)
    );
    assert_continuous(&packets, 0);
}

/// Feeds the fixture twice, the second time from `second_start_us`, and checks the output
/// is two continuous segments, the second starting exactly there.
fn check_resync(second_start_us: i64) {
    let fixture = Fixture::load(STEREO_44100);
    let mut transcoder = AacToOpus::new(&fixture.config, 64_000).unwrap();
    let first_start_us = 10_000_000;
    let mut packets = Vec::new();
    for start in [first_start_us, second_start_us] {
        for (index, frame) in fixture.frames.iter().enumerate() {
            packets.extend(transcoder.push(frame, fixture.pts(start, index)).unwrap());
        }
    }
    packets.extend(transcoder.flush().unwrap());

    let per_segment = expected_packets(fixture.frames.len(), 44_100);
    assert_eq!(packets.len(), 2 * per_segment);
    assert_continuous(&packets[..per_segment], first_start_us);
    assert_continuous(&packets[per_segment..], second_start_us);
    // Both segments still carry the tone.
    let planes = decode(&packets, 2);
    let second = &planes[0][per_segment * 960..];
    assert_tone(second, 1_000.0, 1_500.0);
}

#[test]
fn resyncs_after_a_forward_gap() {
    // The fixture lasts ~1.04 s: the second run starts 5 s later than expected.
    check_resync(16_000_000);
}

#[test]
fn resyncs_when_a_publisher_restarts_its_loop() {
    check_resync(0);
}

#[test]
fn a_corrupt_frame_is_an_error_and_the_next_one_decodes() {
    let fixture = Fixture::load(STEREO_44100);
    let mut transcoder = AacToOpus::new(&fixture.config, 64_000).unwrap();
    let bad = 20;
    let mut packets = Vec::new();
    let mut errors = Vec::new();
    for (index, frame) in fixture.frames.iter().enumerate() {
        let pts = fixture.pts(0, index);
        let data: &[u8] = if index == bad { &frame[..6] } else { frame };
        match transcoder.push(data, pts) {
            Ok(out) => packets.extend(out),
            Err(err) => errors.push((index, err)),
        }
    }
    packets.extend(transcoder.flush().unwrap());

    assert_eq!(errors.len(), 1, "{errors:?}");
    let (index, err) = &errors[0];
    assert_eq!(*index, bad);
    match err {
        TranscodeError::CorruptFrame { pts_us, len, .. } => {
            assert_eq!((*pts_us, *len), (fixture.pts(0, bad), 6));
        }
        other => panic!("unexpected error {other:?}"),
    }
    // The bad frame became 1024 samples of silence: same length, same timestamps, and no
    // packet completed during the failing call was lost.
    assert_eq!(
        packets.len(),
        expected_packets(fixture.frames.len(), 44_100)
    );
    assert_continuous(&packets, 0);
    // The tone is back right after the gap (frame 21 starts at ~487 ms).
    let planes = decode(&packets, 2);
    let after = &planes[0][26_400..43_200]; // 550 ms to 900 ms
    assert!((zero_crossing_hz(after) - 1_000.0).abs() < 10.0);
    assert!((rms(after) - SINE_RMS).abs() < SINE_RMS * 0.15);
    // ... and the gap is there: some 10 ms window around 465-510 ms is near silent.
    let gap = &planes[0][22_080..24_960];
    assert!(gap.chunks(480).any(|w| rms(w) < SINE_RMS / 4.0));
}

#[test]
fn empty_and_garbage_units_are_typed_errors() {
    let fixture = Fixture::load(MONO_48000);
    let mut transcoder = AacToOpus::new(&fixture.config, 32_000).unwrap();
    let err = transcoder.push(&[], 0).unwrap_err();
    assert!(
        matches!(err, TranscodeError::CorruptFrame { len: 0, .. }),
        "{err}"
    );
    // A channel pair element (id 1) in a mono stream.
    let err = transcoder.push(&[0x20, 0, 0], 21_333).unwrap_err();
    assert!(
        matches!(err, TranscodeError::CorruptFrame { len: 3, .. }),
        "{err}"
    );
    assert!(transcoder.push(&fixture.frames[2], 42_666).is_ok());
}

#[test]
fn mangled_input_never_panics_and_leaves_it_usable() {
    let fixture = Fixture::load(STEREO_44100);
    let mut transcoder = AacToOpus::new(&fixture.config, 64_000).unwrap();
    // Deterministic xorshift, so a failure reproduces.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut pts = 0;
    let mut errors = 0;
    for round in 0..20 {
        for frame in &fixture.frames {
            let mut data = frame.to_vec();
            match round % 3 {
                0 => {
                    for _ in 0..4 {
                        let at = next() as usize % data.len();
                        data[at] ^= 1 << (next() % 8);
                    }
                }
                1 => data.truncate(next() as usize % data.len()),
                _ => data.iter_mut().for_each(|b| *b = next() as u8),
            }
            match transcoder.push(&data, pts) {
                Ok(_) => {}
                Err(TranscodeError::CorruptFrame { .. }) => errors += 1,
                Err(other) => panic!("unexpected error {other}"),
            }
            // Whatever the mangled unit did to the decoder, a good one decodes next.
            transcoder
                .push(frame, pts + 23_220)
                .expect("a good unit after a mangled one decodes");
            pts += 2 * 23_220;
        }
    }
    assert!(errors > 100, "only {errors} mangled units were refused");
    transcoder.flush().unwrap();
    for (index, frame) in fixture.frames.iter().enumerate() {
        transcoder.push(frame, fixture.pts(0, index)).unwrap();
    }
}

#[test]
fn unsupported_configs_are_refused_with_typed_errors() {
    let he_aac = AudioSpecificConfig::new(5, 44_100, 2).unwrap();
    assert!(matches!(
        AacToOpus::new(&he_aac, 64_000),
        Err(TranscodeError::UnsupportedObjectType { object_type: 5 })
    ));
    let main = AudioSpecificConfig::new(1, 44_100, 2).unwrap();
    assert!(matches!(
        AacToOpus::new(&main, 64_000),
        Err(TranscodeError::UnsupportedObjectType { object_type: 1 })
    ));
    let surround = AudioSpecificConfig::new(2, 48_000, 6).unwrap();
    assert!(matches!(
        AacToOpus::new(&surround, 64_000),
        Err(TranscodeError::UnsupportedChannels { channels: 6 })
    ));
    let in_band = AudioSpecificConfig::new(2, 48_000, 0).unwrap();
    assert!(matches!(
        AacToOpus::new(&in_band, 64_000),
        Err(TranscodeError::UnsupportedChannels { channels: 0 })
    ));
    // AAC-LC, explicit (escape) sample rate 44 099 Hz, stereo.
    let bits: u64 = (2u64 << 35) | (15u64 << 31) | (44_099u64 << 7) | (2u64 << 3);
    let odd_rate = AudioSpecificConfig::parse(&bits.to_be_bytes()[3..]).unwrap();
    assert!(matches!(
        AacToOpus::new(&odd_rate, 64_000),
        Err(TranscodeError::UnsupportedSampleRate {
            sample_rate: 44_099
        })
    ));
    let lc = AudioSpecificConfig::new(2, 44_100, 2).unwrap();
    for bitrate_bps in [0, 5_999, 510_001] {
        assert!(matches!(
            AacToOpus::new(&lc, bitrate_bps),
            Err(TranscodeError::InvalidBitrate { .. })
        ));
    }
    assert!(AacToOpus::new(&lc, 6_000).is_ok());
}

#[test]
fn transcoder_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<AacToOpus>();
}

/// A sine at `freq` Hz, `rate` Hz, interleaved on `channels`.
fn sine(freq: f64, rate: u32, frames: usize, channels: usize) -> Vec<f32> {
    (0..frames)
        .flat_map(|n| {
            let value = (0.125
                * (2.0 * std::f64::consts::PI * freq * n as f64 / f64::from(rate)).sin())
                as f32;
            std::iter::repeat_n(value, channels)
        })
        .collect()
}

#[test]
fn resampler_converts_common_rates_to_48k_without_delay() {
    for rate in [8_000, 22_050, 32_000, 44_100, 96_000] {
        let mut resampler = Resampler::new(rate, 2).unwrap();
        let input = sine(1_000.0, rate, rate as usize, 2); // 1 s
        let mut out = Vec::new();
        // Uneven pieces, as a decoder would not deliver them, to exercise the buffering.
        for piece in input.chunks(2 * 700) {
            resampler.process(piece, &mut out).unwrap();
        }
        resampler.drain(&mut out).unwrap();
        assert_eq!(out.len(), 2 * 48_000, "{rate} Hz");
        let left: Vec<f32> = out.iter().step_by(2).copied().collect();
        let hz = zero_crossing_hz(&left[4_800..43_200]);
        assert!((hz - 1_000.0).abs() < 5.0, "{rate} Hz: tone at {hz}");
        // The resampler delay is trimmed: the sine starts at sample 0, so by 0.25 ms
        // (12 samples) it is already well above zero.
        assert!(left[12] > 0.02, "{rate} Hz: starts with {:?}", &left[..16]);
    }
}

#[test]
fn a_mono_unit_in_a_stereo_stream_does_not_wedge_the_decoder() {
    let stereo = Fixture::load(STEREO_44100);
    let mono = Fixture::load(MONO_48000);
    let mut transcoder = AacToOpus::new(&stereo.config, 64_000).unwrap();
    transcoder.push(&stereo.frames[1], 0).unwrap();
    // A truncated unit: refused (the decoder starts afresh).
    let truncated = &stereo.frames[2][..4];
    assert!(transcoder.push(truncated, 23_220).is_err());
    // A well-formed single channel element where a channel pair is expected: symphonia
    // registers channel pair 0 as a single channel, whether or not it refuses the unit.
    let _ = transcoder.push(&mono.frames[3], 46_440);
    // The next good units decode.
    for (index, frame) in stereo.frames[4..8].iter().enumerate() {
        let pts = stereo.pts(0, 4 + index);
        transcoder.push(frame, pts).expect("good unit decodes");
    }
}
