//! The C session functions called in-process against the real hub, for promises the
//! examples cannot show: a `send_chat` retried with a bigger id buffer publishes the
//! message once, and `streamhub_session_free` returns at once with a live session that
//! has work left, after which no callback runs.

use crate::common;

use std::ffi::{CStr, CString, c_char, c_void};
use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::TestHub;
use streamhub::chat::Role;
use streamhub_ffi::c::events::{streamhub_event, streamhub_event_kind, streamhub_state_info};
use streamhub_ffi::c::result::{STREAMHUB_BUFFER_TOO_SMALL, STREAMHUB_OK, streamhub_result};
use streamhub_ffi::c::session::*;
use streamhub_test_support::poll_until;

/// What the event callback saw.
#[derive(Default)]
struct Seen {
    chat_sent: AtomicU64,
    events: AtomicU64,
    freed: AtomicBool,
    after_free: AtomicU64,
    sent_ids: Mutex<Vec<String>>,
    kinds: Mutex<Vec<streamhub_event_kind>>,
}

unsafe extern "C" fn on_event(userdata: *mut c_void, event: *const streamhub_event) {
    // SAFETY: `userdata` is the test's `Seen`, alive for the whole test; `event` is valid
    // during the call.
    let (seen, event) = unsafe { (&*(userdata as *const Seen), &*event) };
    if seen.freed.load(Ordering::SeqCst) {
        seen.after_free.fetch_add(1, Ordering::SeqCst);
    }
    seen.events.fetch_add(1, Ordering::SeqCst);
    seen.kinds.lock().unwrap().push(event.kind);
    if event.kind == streamhub_event_kind::STREAMHUB_EVENT_CHAT_SENT {
        seen.chat_sent.fetch_add(1, Ordering::SeqCst);
        // SAFETY: never NULL, NUL-terminated, valid during the call.
        let id = unsafe { CStr::from_ptr(event.client_msg_id) };
        seen.sent_ids
            .lock()
            .unwrap()
            .push(id.to_string_lossy().into_owned());
    }
}

fn ok(result: streamhub_result) {
    assert_eq!(result, STREAMHUB_OK, "{}", last_error());
}

fn last_error() -> String {
    let mut buf = [0 as c_char; 512];
    // SAFETY: a writable buffer of its length.
    unsafe {
        streamhub_ffi::c::result::streamhub_last_error_message(
            buf.as_mut_ptr(),
            buf.len(),
            ptr::null_mut(),
        );
        CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
    }
}

/// A broadcast session with chat in room `stream` of `hub`, events to `seen`.
fn broadcast(hub: &TestHub, stream: &str, seen: &Seen) -> *mut streamhub_session {
    let url = CString::new(hub.rtmp_url(stream)).unwrap();
    let chat_url = CString::new(hub.chat_url()).unwrap();
    let room = CString::new(stream).unwrap();
    let token = CString::new(hub.token("ada", Role::Broadcaster)).unwrap();
    let mut config = std::mem::MaybeUninit::<streamhub_session_config>::uninit();
    // SAFETY: a writable config; the strings outlive the create call, `seen` the session.
    unsafe {
        ok(streamhub_session_config_defaults(
            config.as_mut_ptr(),
            std::mem::size_of::<streamhub_session_config>(),
        ));
        let config = config.assume_init_mut();
        config.url = url.as_ptr();
        config.chat_url = chat_url.as_ptr();
        config.chat_room = room.as_ptr();
        config.chat_token = token.as_ptr();
        config.on_event = Some(on_event);
        config.userdata = seen as *const Seen as *mut c_void;
        let mut session = ptr::null_mut();
        ok(streamhub_session_broadcast(config, &mut session));
        session
    }
}

#[test]
fn send_chat_retried_with_a_bigger_id_buffer_publishes_once() {
    let hub = TestHub::start();
    let seen = Seen::default();
    let session = broadcast(&hub, "retry", &seen);
    let text = CString::new("only once").unwrap();

    let mut small = [0 as c_char; 8];
    // SAFETY: a live handle, a C string, a buffer of its length.
    let refused = unsafe {
        streamhub_session_send_chat(session, text.as_ptr(), small.as_mut_ptr(), small.len())
    };
    assert_eq!(refused, STREAMHUB_BUFFER_TOO_SMALL);
    assert!(
        last_error().contains("nothing was queued"),
        "{}",
        last_error()
    );

    let mut id = [0 as c_char; STREAMHUB_CLIENT_MSG_ID_SIZE];
    // SAFETY: as above.
    ok(unsafe { streamhub_session_send_chat(session, text.as_ptr(), id.as_mut_ptr(), id.len()) });
    // SAFETY: NUL-terminated by the call.
    let id = unsafe { CStr::from_ptr(id.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    assert_eq!(id.len(), STREAMHUB_CLIENT_MSG_ID_SIZE - 1);

    // At once: the stop flushes the chat's queue and returns once the callback got
    // every event, so the outcome of every queued message is in by then — a copy
    // queued by the refused call would have been published too (and first).
    // SAFETY: a live handle; NULL stats.
    ok(unsafe { streamhub_session_stop(session, ptr::null_mut()) });
    assert_eq!(
        *seen.sent_ids.lock().unwrap(),
        [id],
        "one ChatSent, ours; events: {:?}",
        seen.kinds.lock().unwrap()
    );
    let room = hub.room("retry").expect("the room exists");
    assert_eq!(room.last_seq, 1, "the room holds exactly one message");
    streamhub_session_free(session);
}

#[test]
fn free_returns_at_once_with_a_live_session_and_no_callback_runs_after() {
    let hub = TestHub::start();
    let seen = Seen::default();
    let session = broadcast(&hub, "free", &seen);
    let mut state = std::mem::MaybeUninit::<streamhub_state_info>::zeroed();
    // SAFETY: a writable state, whose struct_size the library reads.
    unsafe { (*state.as_mut_ptr()).struct_size = size_of::<streamhub_state_info>() as u32 };
    // SAFETY: a live handle; a writable state.
    ok(unsafe { streamhub_session_wait_live(session, 10_000, state.as_mut_ptr()) });
    poll_until("the stream at the hub", Duration::from_secs(10), || {
        hub.streams().iter().any(|s| s.name == "free")
    });
    // Work left for the stop: the hub allows 5 chat messages per 5 s, so the last three
    // of eight wait for the rate limit, and a stop would give them 2 s.
    for i in 0..8 {
        let text = CString::new(format!("m{i}")).unwrap();
        // SAFETY: a live handle, a C string, no id buffer.
        ok(unsafe { streamhub_session_send_chat(session, text.as_ptr(), ptr::null_mut(), 0) });
    }
    poll_until(
        "the first acknowledgements",
        Duration::from_secs(10),
        || seen.chat_sent.load(Ordering::SeqCst) >= 5,
    );

    let start = Instant::now();
    streamhub_session_free(session);
    let took = start.elapsed();
    seen.freed.store(true, Ordering::SeqCst);
    println!(
        "streamhub_session_free returned after {took:?} ({} events before)",
        seen.events.load(Ordering::SeqCst)
    );
    assert!(took < Duration::from_millis(10), "free took {took:?}");

    // The session stops in the background: it unpublishes.
    poll_until("the unpublish", Duration::from_secs(15), || {
        !hub.streams().iter().any(|s| s.name == "free")
    });
    assert_eq!(
        seen.after_free.load(Ordering::SeqCst),
        0,
        "a callback ran after free returned"
    );
}
