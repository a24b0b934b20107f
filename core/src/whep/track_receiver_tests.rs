//! The track receiver in memory: packets and RTCP built by hand, a clock moved by hand.

use super::*;

use bytes::Bytes;

const SSRC: u32 = 0x1234_5678;
const LATENCY: Duration = Duration::from_millis(100);

fn receiver(kind: MediaKind, codec: Codec, clock_rate: u32, start: Instant) -> TrackReceiver {
    receiver_with_clock(kind, codec, clock_rate, start, Arc::default())
}

fn receiver_with_clock(
    kind: MediaKind,
    codec: Codec,
    clock_rate: u32,
    start: Instant,
    sender_clock: Arc<SenderClock>,
) -> TrackReceiver {
    let params = TrackParams {
        kind,
        codec,
        ssrc: SSRC,
        clock_rate,
        latency: LATENCY,
        started: start,
    };
    TrackReceiver::new(params, "", sender_clock, start)
}

fn opus(ts: u32) -> RtpPayload {
    RtpPayload {
        timestamp: ts,
        marker: false,
        payload: Bytes::from(ts.to_be_bytes().to_vec()),
    }
}

/// A one-packet VP8 frame: descriptor with S set, then a frame whose P bit says key or
/// delta.
fn vp8(ts: u32, keyframe: bool) -> RtpPayload {
    let first = if keyframe { 0x00 } else { 0x01 };
    RtpPayload {
        timestamp: ts,
        marker: true,
        payload: Bytes::from(vec![0x10, first, 0x02, 0x03]),
    }
}

fn outputs(r: &mut TrackReceiver) -> Vec<TrackOutput> {
    std::iter::from_fn(|| r.poll_output()).collect()
}

fn frames(outputs: &[TrackOutput]) -> Vec<&MediaFrame> {
    outputs
        .iter()
        .filter_map(|o| match o {
            TrackOutput::Frame(f) => Some(f),
            _ => None,
        })
        .collect()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn audio_comes_out_in_order_paced_by_its_rtp_clock_and_asks_for_nothing() {
    let t0 = Instant::now();
    let mut r = receiver(MediaKind::Audio, Codec::Opus, 48_000, t0);
    let mut out = Vec::new();
    for i in 0..10u16 {
        r.push_rtp(t0 + ms(20 * u64::from(i)), i, opus(960 * u32::from(i)));
        out.extend(outputs(&mut r));
    }
    let got = frames(&out);
    assert_eq!(got.len(), 10, "{out:?}");
    assert!(out.iter().all(|o| matches!(o, TrackOutput::Frame(_))));
    for pair in got.windows(2) {
        assert_eq!(pair[1].timestamp_us - pair[0].timestamp_us, 20_000);
        assert!(!pair[1].discontinuity);
    }
    assert_eq!(r.stats().packets, 10);
    assert_eq!(r.stats().bytes, 40);
    assert_eq!(r.stats().keyframe_requests, 0);
    assert_eq!(r.poll_timeout(), None, "nothing held, nothing to ask");
}

#[test]
fn a_reordered_packet_is_put_back_in_place_and_counted_as_recovered() {
    let t0 = Instant::now();
    let mut r = receiver(MediaKind::Audio, Codec::Opus, 48_000, t0);
    r.push_rtp(t0, 0, opus(0));
    r.push_rtp(t0 + ms(20), 2, opus(1920));
    let first = outputs(&mut r);
    assert_eq!(frames(&first).len(), 1, "packet 2 waits for packet 1");
    assert!(r.poll_timeout().is_some(), "a wait for the gap");
    r.push_rtp(t0 + ms(25), 1, opus(960));
    let rest = outputs(&mut r);
    let timestamps: Vec<i64> = frames(&rest).iter().map(|f| f.timestamp_us).collect();
    assert_eq!(timestamps, [20_000, 40_000]);
    assert!(frames(&rest).iter().all(|f| !f.discontinuity));
    assert_eq!((r.stats().recovered, r.stats().lost), (1, 0));
    // A second copy is counted as received but handed out once.
    r.push_rtp(t0 + ms(30), 1, opus(960));
    assert!(outputs(&mut r).is_empty());
    assert_eq!(r.stats().packets, 4);
}

#[test]
fn a_missing_packet_is_given_up_at_the_timeout_and_the_next_audio_frame_says_so() {
    let t0 = Instant::now();
    let mut r = receiver(MediaKind::Audio, Codec::Opus, 48_000, t0);
    r.push_rtp(t0, 0, opus(0));
    r.push_rtp(t0 + ms(20), 1, opus(960));
    r.push_rtp(t0 + ms(60), 3, opus(2880));
    assert_eq!(frames(&outputs(&mut r)).len(), 2);
    let due = r.poll_timeout().expect("the gap's deadline");
    assert!(due > t0 + ms(60) && due <= t0 + ms(60) + LATENCY, "{due:?}");
    // Early: nothing yet.
    r.handle_timeout(due - ms(1));
    assert!(outputs(&mut r).is_empty());
    r.handle_timeout(due);
    let out = outputs(&mut r);
    let got = frames(&out);
    assert_eq!(got.len(), 1, "{out:?}");
    assert!(got[0].discontinuity, "audio after a loss is marked");
    assert_eq!(r.stats().lost, 1);
    r.push_rtp(t0 + ms(80), 4, opus(3840));
    assert!(!frames(&outputs(&mut r))[0].discontinuity, "only once");
}

#[test]
fn video_asks_for_a_keyframe_at_once_then_every_200_ms_until_one_arrives() {
    let t0 = Instant::now();
    let mut r = receiver(MediaKind::Video, Codec::Vp8, 90_000, t0);
    assert_eq!(
        outputs(&mut r),
        [TrackOutput::RequestKeyframe {
            media_ssrc: SSRC,
            fir: Some(0)
        }],
        "the first request carries a FIR"
    );
    assert_eq!(r.poll_timeout(), Some(t0 + ms(200)));
    // A delta frame cannot start the picture.
    r.push_rtp(t0 + ms(10), 100, vp8(0, false));
    assert!(outputs(&mut r).is_empty());
    r.handle_timeout(t0 + ms(200));
    assert_eq!(
        outputs(&mut r),
        [TrackOutput::RequestKeyframe {
            media_ssrc: SSRC,
            fir: None
        }],
        "then PLI alone"
    );
    r.push_rtp(t0 + ms(250), 101, vp8(3000, true));
    let out = outputs(&mut r);
    let got = frames(&out);
    assert_eq!(got.len(), 1, "{out:?}");
    assert!(got[0].keyframe && got[0].kind == MediaKind::Video);
    r.push_rtp(t0 + ms(283), 102, vp8(6000, false));
    assert_eq!(frames(&outputs(&mut r)).len(), 1);
    assert_eq!(r.poll_timeout(), None, "no more requests");
    assert_eq!(r.stats().keyframe_requests, 2);
}

#[test]
fn a_lost_video_packet_waits_for_a_keyframe_and_asks_for_one() {
    let t0 = Instant::now();
    let mut r = receiver(MediaKind::Video, Codec::Vp8, 90_000, t0);
    outputs(&mut r);
    r.push_rtp(t0, 0, vp8(0, true));
    r.push_rtp(t0 + ms(33), 1, vp8(3000, false));
    assert_eq!(frames(&outputs(&mut r)).len(), 2);
    // Frame 9000 in two packets: the first (2) never comes.
    r.push_rtp(
        t0 + ms(100),
        3,
        RtpPayload {
            timestamp: 9000,
            marker: true,
            payload: Bytes::from_static(&[0x00, 0x04, 0x05]),
        },
    );
    // NACK retries come before the give-up, and a keyframe request after it (when the
    // 200 ms since the last one are up); wait them out.
    let mut now = t0 + ms(100);
    let mut requests = Vec::new();
    while r.stats().lost == 0 || requests.is_empty() {
        now = r
            .poll_timeout()
            .expect("a deadline while a packet is missing");
        r.handle_timeout(now);
        requests.extend(outputs(&mut r));
        assert!(now < t0 + ms(1000), "never given up");
    }
    assert!(
        requests
            .iter()
            .all(|o| matches!(o, TrackOutput::RequestKeyframe { fir: None, .. })),
        "the broken frame is not shown: {requests:?}"
    );
    assert_eq!(requests.len(), 1, "{requests:?}");
    r.push_rtp(now + ms(10), 4, vp8(12000, false));
    assert!(
        frames(&outputs(&mut r)).is_empty(),
        "a delta frame cannot follow a loss"
    );
    r.push_rtp(now + ms(20), 5, vp8(15000, true));
    let out = outputs(&mut r);
    let got = frames(&out);
    assert_eq!(got.len(), 1);
    assert!(got[0].keyframe && got[0].discontinuity, "{out:?}");
}

#[test]
fn a_goodbye_hands_out_what_is_held_then_ends_the_track() {
    let t0 = Instant::now();
    let mut r = receiver(MediaKind::Audio, Codec::Opus, 48_000, t0);
    r.push_rtp(t0, 0, opus(0));
    r.push_rtp(t0 + ms(40), 2, opus(1920));
    assert_eq!(frames(&outputs(&mut r)).len(), 1);
    // Someone else's goodbye changes nothing.
    let other: Vec<Box<dyn rtc::rtcp::Packet>> = vec![Box::new(Goodbye {
        sources: vec![SSRC + 1],
        ..Goodbye::default()
    })];
    r.push_rtcp(t0 + ms(41), &other);
    assert!(outputs(&mut r).is_empty() && !r.is_ended());
    let bye: Vec<Box<dyn rtc::rtcp::Packet>> = vec![Box::new(Goodbye {
        sources: vec![SSRC],
        ..Goodbye::default()
    })];
    r.push_rtcp(t0 + ms(42), &bye);
    let out = outputs(&mut r);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(matches!(&out[0], TrackOutput::Frame(f) if f.discontinuity));
    assert_eq!(out[1], TrackOutput::Ended);
    assert!(r.is_ended());
    assert_eq!(r.poll_timeout(), None);
    r.push_rtp(t0 + ms(60), 3, opus(2880));
    assert!(outputs(&mut r).is_empty(), "nothing after the end");
}

#[test]
fn sender_reports_put_audio_and_video_on_the_senders_shared_clock() {
    let t0 = Instant::now();
    let shared = Arc::new(SenderClock::default());
    let mut audio = receiver_with_clock(
        MediaKind::Audio,
        Codec::Opus,
        48_000,
        t0,
        Arc::clone(&shared),
    );
    let mut video = receiver_with_clock(
        MediaKind::Video,
        Codec::Vp8,
        90_000,
        t0,
        Arc::clone(&shared),
    );
    outputs(&mut video);
    // Both reports say: this RTP time was captured at NTP 1000 s. The audio one
    // comes 30 ms later, as reports do.
    let ntp = 1000u64 << 32;
    let report = |ssrc, rtp_time| -> Vec<Box<dyn rtc::rtcp::Packet>> {
        vec![Box::new(SenderReport {
            ssrc,
            ntp_time: ntp,
            rtp_time,
            ..SenderReport::default()
        })]
    };
    video.push_rtcp(t0 + ms(5), &report(SSRC, 90_000));
    audio.push_rtcp(t0 + ms(35), &report(SSRC, 48_000));
    audio.push_rtcp(t0 + ms(35), &report(SSRC + 1, 0));
    assert_eq!(
        audio.stats().sender_reports,
        1,
        "another SSRC's report is not ours"
    );
    // One second of each clock after the reported instant.
    video.push_rtp(t0 + ms(50), 7, vp8(180_000, true));
    audio.push_rtp(t0 + ms(90), 9, opus(96_000));
    let v = frames(&outputs(&mut video))[0].timestamp_us;
    let a = frames(&outputs(&mut audio))[0].timestamp_us;
    assert_eq!(a, v, "lip sync follows the sender");
    // The offset was fixed by the first report of either track (5 ms after the start).
    assert_eq!(v, 5_000 + 1_000_000);
}

#[test]
fn a_frame_the_app_had_no_room_for_marks_the_next_one() {
    let t0 = Instant::now();
    let mut r = receiver(MediaKind::Audio, Codec::Opus, 48_000, t0);
    r.push_rtp(t0, 0, opus(0));
    assert_eq!(frames(&outputs(&mut r)).len(), 1);
    r.frame_dropped();
    r.push_rtp(t0 + ms(20), 1, opus(960));
    r.push_rtp(t0 + ms(40), 2, opus(1920));
    let out = outputs(&mut r);
    let flags: Vec<bool> = frames(&out).iter().map(|f| f.discontinuity).collect();
    assert_eq!(flags, [true, false]);
}

#[test]
fn jitter_is_zero_for_evenly_paced_packets_and_grows_with_variation() {
    let mut meter = JitterMeter::default();
    for i in 0..50u32 {
        let j = meter.update(Duration::from_millis(u64::from(i) * 20), i * 960, 48_000);
        assert_eq!(j, 0);
    }
    let mut meter = JitterMeter::default();
    let mut last = 0;
    for i in 0..200u32 {
        let wobble = if i % 2 == 0 { 0 } else { 10 };
        last = meter.update(
            Duration::from_millis(u64::from(i) * 20 + wobble),
            i * 960,
            48_000,
        );
    }
    // Alternating 10 ms late: |D| is 10 ms for every pair, so J converges to 10 ms.
    assert!((9_000..=10_000).contains(&last), "{last} us");
}
