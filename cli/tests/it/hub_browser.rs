//! The hub's development page in a real browser (Debian's chromium driven by playwright-core,
//! `tests/browser/dev_page.mjs`): a clip published into the hub over RTMP plays in the page
//! over WHEP (video frames decoded, audio packets received), and a chat message typed into
//! the page reaches a `streamhub chat` process in the stream's room.

use crate::common;
use crate::hub_harness;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Proc, STREAMHUB, poll_until, tempdir};
use hub_harness::{Hub, artifacts_dir, baseline_clip, publish, workspace_root};
use serde_json::Value;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Fails (never skips) when the browser or the driver is missing, naming scripts/test.sh.
fn require_browser_tools() -> std::path::PathBuf {
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run scripts/test.sh (it installs every test peer, then runs the tests)"
    );
    let browser_dir = workspace_root().join("tests/browser");
    assert!(
        browser_dir
            .join("node_modules/playwright-core/package.json")
            .exists(),
        "tests/browser/node_modules/playwright-core is missing: run scripts/test.sh (it \
         installs every test peer, then runs the tests)"
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node is missing: run scripts/test.sh (it installs every test peer, then runs the tests)"
    );
    browser_dir
}

/// `streamhub chat URL --room ROOM --token T --json --follow`, its JSON lines collected.
struct ChatListener {
    _proc: Proc,
    lines: Arc<Mutex<Vec<Value>>>,
}

impl ChatListener {
    fn start(hub: &Hub, room: &str) -> ChatListener {
        let token = hub.token("listener");
        let mut child = Command::new(STREAMHUB)
            .args(["chat", &hub.chat, "--room", room, "--token", &token])
            .args(["--json", "--follow"])
            .stdin(Stdio::piped()) // kept open: --follow prints until killed
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting streamhub chat");
        let stdout = child.stdout.take().unwrap();
        let lines: Arc<Mutex<Vec<Value>>> = Arc::default();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str(&line) {
                    sink.lock().unwrap().push(value);
                }
            }
        });
        ChatListener {
            _proc: Proc::adopt("chat listener", child),
            lines,
        }
    }

    fn of_type(&self, kind: &str) -> Vec<Value> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .filter(|v| v["type"] == kind)
            .cloned()
            .collect()
    }
}

#[test]
fn the_dev_page_plays_a_published_stream_and_chats_in_its_room() {
    let browser_dir = require_browser_tools();
    let dir = tempdir();
    let clip = dir.path().join("clip.flv");
    baseline_clip(&clip, 90);

    let hub = Hub::start("browser test secret");
    let name = "demo";
    let _publisher = publish(&hub, &clip, name);
    hub.wait_live(name, Duration::from_secs(15));
    let listed = hub.wait_audio(name, Duration::from_secs(3));
    eprintln!("listed: {listed}");
    let listener = ChatListener::start(&hub, name);
    poll_until("the chat listener joined", Duration::from_secs(10), || {
        !listener.of_type("joined").is_empty()
    });

    // The page, driven by the node script; the hub's viewer counts are sampled meanwhile.
    let screenshot = artifacts_dir().join("dev-page.png");
    let _ = std::fs::remove_file(&screenshot);
    let message = format!("hello from the dev page <i>{}</i>", std::process::id());
    let mut node = Command::new("node")
        .current_dir(&browser_dir)
        .arg("dev_page.mjs")
        .args(["--page", &hub.page, "--stream", name, "--message", &message])
        .arg("--screenshot")
        .arg(&screenshot)
        .args(["--min-frames", "60", "--timeout-ms", "45000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting node");
    let mut stdout = node.stdout.take().unwrap();
    let mut stderr = node.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut node = Proc::adopt("node dev_page.mjs", node);
    let (mut max_whep, mut max_viewers) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = node.child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the node script ran over 90 s");
        if let Some(s) = hub.stream(name) {
            max_whep = max_whep.max(s["whep_viewers"].as_u64().unwrap_or(0));
            max_viewers = max_viewers.max(s["viewers"].as_u64().unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let out = out_reader.join().unwrap();
    let err = err_reader.join().unwrap();
    assert!(
        status.success(),
        "dev_page.mjs failed ({status}):\n{err}\nstdout: {out}"
    );
    let figures: Value = serde_json::from_str(out.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("dev_page.mjs printed no JSON line ({e}): {out}\n{err}"));
    eprintln!("browser figures: {figures}");
    eprintln!(
        "hub counts while the page watched: viewers ≤ {max_viewers}, whep_viewers ≤ {max_whep}"
    );

    // What the browser saw.
    let num = |key: &str| {
        figures[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing: {figures}"))
    };
    assert!(num("framesDecoded") > 60.0, "{figures}");
    assert!(num("audioPacketsReceived") > 0.0, "{figures}");
    assert_eq!((num("frameWidth"), num("frameHeight")), (640.0, 360.0));
    assert_eq!(
        figures["videoCodec"]
            .as_str()
            .map(str::to_lowercase)
            .as_deref(),
        Some("h264")
    );
    assert_eq!(
        figures["audioCodec"]
            .as_str()
            .map(str::to_lowercase)
            .as_deref(),
        Some("opus")
    );
    assert_eq!(figures["connectionState"], "connected", "{figures}");
    // A keyframe comes every second in this clip: the first picture may wait for one.
    let first_frame = num("firstFrameMs");
    assert!(
        first_frame > 0.0 && first_frame < 5000.0,
        "first frame after {first_frame} ms"
    );
    let fps = num("framesPerSecond");
    assert!((20.0..=40.0).contains(&fps), "{fps} fps for a 30 fps clip");
    assert!(
        screenshot.exists(),
        "no screenshot at {}",
        screenshot.display()
    );

    // The hub counted the page as a WHEP viewer, and the room's viewers include it.
    assert!(
        max_whep >= 1,
        "whep_viewers never rose while the page watched"
    );
    // The page's WHEP POST carries its chat token: watching and chatting count it once, so
    // the audience is the page's user and the listener.
    assert_eq!(
        max_viewers, 2,
        "the room's audience peaked at {max_viewers}, expected 2"
    );
    // The page left with DELETE: its session ends at once, not at an ICE timeout.
    poll_until(
        "the page's WHEP session to end",
        Duration::from_secs(5),
        || {
            hub.stream(name)
                .is_some_and(|s| s["whep_viewers"].as_u64() == Some(0))
        },
    );

    // The page's message reached the other chat client, from the page's user, in the room.
    let page_user = figures["chat"]["user"]
        .as_str()
        .expect("chat.user")
        .to_string();
    assert!(page_user.starts_with("viewer-"), "page user {page_user}");
    poll_until(
        "the listener printed the page's message",
        Duration::from_secs(10),
        || {
            listener
                .of_type("message")
                .iter()
                .any(|m| m["text"] == message.as_str())
        },
    );
    let messages = listener.of_type("message");
    let received = messages
        .iter()
        .find(|m| m["text"] == message.as_str())
        .unwrap();
    assert_eq!(received["room"], name);
    assert_eq!(received["user"], page_user.as_str());
    assert_eq!(received["seq"], figures["chat"]["seq"]);
    eprintln!("screenshot: {}", screenshot.display());
}
