//! The cost of crossing the C ABI: one call into the library (handle lookup, panic
//! boundary, result code) and one frame through the C callback path (the
//! `streamhub-frames` loop: wait on the runtime for the next frame, build the C frame,
//! call the app's callback).
//!
//! `cargo bench -p streamhub-ffi --bench ffi_calls`

use std::ffi::c_void;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use streamhub::whep::{Codec, MediaFrame, MediaKind};
use streamhub_ffi::c::events::{CFrameSink, UserData, streamhub_frame, streamhub_state_info};
use streamhub_ffi::c::result::STREAMHUB_OK;
use streamhub_ffi::c::session::{
    streamhub_session, streamhub_session_broadcast, streamhub_session_config,
    streamhub_session_config_defaults, streamhub_session_free, streamhub_session_state,
    streamhub_session_stats,
};
use streamhub_ffi::c::{events::streamhub_stats, streamhub_version};
use streamhub_ffi::gate::CallbackGate;
use streamhub_ffi::runtime;
use streamhub_ffi::session::pump_frames;

/// A session that exists but connects nowhere (port 9, no retries): calls on it
/// measure the boundary, not the network.
fn idle_session() -> *mut streamhub_session {
    let mut config = std::mem::MaybeUninit::<streamhub_session_config>::uninit();
    // SAFETY: a valid out-pointer; init fills every field.
    let mut config = unsafe {
        assert_eq!(
            streamhub_session_config_defaults(
                config.as_mut_ptr(),
                std::mem::size_of::<streamhub_session_config>()
            ),
            STREAMHUB_OK
        );
        config.assume_init()
    };
    config.url = c"rtmp://127.0.0.1:9/live/bench".as_ptr();
    config.max_reconnect_attempts = 0;
    let mut session = std::ptr::null_mut();
    // SAFETY: valid config and out-pointer.
    assert_eq!(
        unsafe { streamhub_session_broadcast(&config, &mut session) },
        STREAMHUB_OK
    );
    session
}

fn c_calls(c: &mut Criterion) {
    let session = idle_session();
    let mut group = c.benchmark_group("c_call");
    group.bench_function("streamhub_version", |b| {
        b.iter(|| black_box(streamhub_version()))
    });
    group.bench_function("streamhub_session_state", |b| {
        let mut state = std::mem::MaybeUninit::<streamhub_state_info>::zeroed();
        // SAFETY: a writable struct; the library reads its struct_size.
        unsafe { (*state.as_mut_ptr()).struct_size = size_of::<streamhub_state_info>() as u32 };
        // SAFETY: a live handle and a valid out-pointer.
        b.iter(|| unsafe { black_box(streamhub_session_state(session, state.as_mut_ptr())) })
    });
    group.bench_function("streamhub_session_stats", |b| {
        let mut stats = std::mem::MaybeUninit::<streamhub_stats>::zeroed();
        // SAFETY: a writable struct; the library reads its struct_size.
        unsafe { (*stats.as_mut_ptr()).struct_size = size_of::<streamhub_stats>() as u32 };
        // SAFETY: a live handle and a valid out-pointer.
        b.iter(|| unsafe { black_box(streamhub_session_stats(session, stats.as_mut_ptr())) })
    });
    group.finish();
    streamhub_session_free(session);
}

unsafe extern "C" fn count_frame(userdata: *mut c_void, frame: *const streamhub_frame) {
    // SAFETY: userdata is the AtomicU64 below; frame is valid during the call.
    unsafe {
        let counter = &*(userdata as *const AtomicU64);
        counter.fetch_add((*frame).len as u64, Ordering::Relaxed);
    }
}

fn callback_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("c_callback");
    const BATCH: u64 = 10_000;
    group.throughput(Throughput::Elements(BATCH));
    // A 720p-sized H.264 frame (8 KB).
    let data = Bytes::from(vec![0u8; 8 * 1024]);
    group.bench_function("frames_through_streamhub_frames_loop", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let bytes = AtomicU64::new(0);
                let sink = CFrameSink {
                    callback: count_frame,
                    userdata: UserData(&bytes as *const AtomicU64 as *mut c_void),
                };
                let (tx, mut rx) = tokio::sync::mpsc::channel(BATCH as usize);
                for i in 0..BATCH {
                    let frame = MediaFrame {
                        kind: MediaKind::Video,
                        codec: Codec::H264,
                        data: data.clone(),
                        timestamp_us: i as i64 * 33_333,
                        keyframe: i % 60 == 0,
                        discontinuity: false,
                    };
                    tx.try_send(frame).expect("room for the batch");
                }
                drop(tx);
                let gate = CallbackGate::new();
                let start = Instant::now();
                pump_frames(|| runtime::block_on(rx.recv()).ok().flatten(), &gate, &sink);
                total += start.elapsed();
                assert_eq!(bytes.load(Ordering::Relaxed), BATCH * data.len() as u64);
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, c_calls, callback_path);
criterion_main!(benches);
