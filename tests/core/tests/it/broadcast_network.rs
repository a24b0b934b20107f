//! A broadcast session on a real network: a paused broadcaster notices a dead link
//! without sending (network lab: the link is cut), and a killed primary ingest is
//! replaced by the backup. Against nginx-rtmp.

use crate::common;
use streamhub_test_support::netlab;

use std::fs::File;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::peers::{self, Nginx, NginxOptions};
use netlab::NetLab;
use streamhub::media::Pacer;
use streamhub::media::flv::FlvPayload;
use streamhub::session::{BroadcastConfig, SessionEvent, SessionState, StreamSession};
use tokio::time::Instant;

/// Sends `clip`'s tags from `from` while their media time is under `until_us`, in real
/// time from `start` (shifted by `shift_us`); returns the index it stopped at.
async fn feed(
    session: &StreamSession,
    clip: &[FlvPayload],
    from: usize,
    until_us: i64,
    start: Instant,
    shift_us: i64,
) -> usize {
    let mut pacer = Pacer::new(start, shift_us);
    for (i, payload) in clip.iter().enumerate().skip(from) {
        let ts = match payload {
            FlvPayload::Video(f) => Some(f.dts_us),
            FlvPayload::Audio(f) => Some(f.pts_us),
            _ => None,
        };
        if let Some(ts) = ts {
            if ts >= until_us {
                return i;
            }
            pacer.wait(ts).await;
        }
        match payload {
            FlvPayload::VideoConfig(c) => session.set_video_config(c.clone()).expect("config"),
            FlvPayload::AudioConfig(c) => session.set_audio_config(c.clone()).expect("config"),
            FlvPayload::Video(f) => session.send_video(f).await.expect("send_video"),
            FlvPayload::Audio(f) => session.send_audio(f).await.expect("send_audio"),
            _ => {}
        }
    }
    clip.len()
}

/// Every state with the time it was entered, and the ingests that went live.
#[derive(Clone, Default)]
struct Log {
    states: Arc<Mutex<Vec<(Instant, SessionState)>>>,
    ingests: Arc<Mutex<Vec<usize>>>,
}

impl Log {
    fn collect(mut events: streamhub::session::SessionEvents) -> Log {
        let log = Log::default();
        let sink = log.clone();
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                match event {
                    SessionEvent::StateChanged(s) => {
                        sink.states.lock().unwrap().push((Instant::now(), s))
                    }
                    SessionEvent::IngestLive { index, .. } => {
                        sink.ingests.lock().unwrap().push(index)
                    }
                    _ => {}
                }
            }
        });
        log
    }

    /// When the first state matching `f` at or after `after` was entered.
    fn first_after(&self, after: Instant, f: impl Fn(&SessionState) -> bool) -> Option<Instant> {
        self.states
            .lock()
            .unwrap()
            .iter()
            .find(|(at, s)| *at >= after && f(s))
            .map(|(at, _)| *at)
    }
}

async fn wait_state(
    log: &Log,
    after: Instant,
    within: Duration,
    what: &str,
    f: impl Fn(&SessionState) -> bool + Copy,
) -> Instant {
    let deadline = Instant::now() + within;
    loop {
        if let Some(at) = log.first_after(after, f) {
            return at;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} within {within:?}: {:?}",
            log.states.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs `test` on a thread of its own that entered network namespace `ns` (so every
/// socket it opens is there), with a tokio runtime on that thread.
fn in_namespace<F: std::future::Future<Output = ()>>(
    ns: &str,
    test: impl FnOnce() -> F + Send + 'static,
) {
    let path = format!("/var/run/netns/{ns}");
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|e| panic!("entering {path}: {e}"));
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime")
                    .block_on(test());
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    });
}

#[test]
fn a_paused_broadcaster_notices_a_cut_link_and_comes_back_when_it_returns() {
    let dir = peers::tempdir();
    let clip_path = dir.path().join("clip.flv");
    peers::make_clip(&clip_path, 12);
    let clip = peers::read_clip(&clip_path);
    let mut lab = NetLab::new();
    let port = 19360;
    let nginx_dir = dir.path().join("nginx");
    std::fs::create_dir_all(&nginx_dir).expect("dir");
    let d = nginx_dir.display();
    std::fs::write(
        nginx_dir.join("nginx.conf"),
        format!(
            "load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;\ndaemon off;\n\
             master_process off;\nworker_processes 1;\nerror_log {d}/error.log info;\n\
             pid {d}/nginx.pid;\nevents {{ worker_connections 64; }}\n\
             rtmp {{ server {{ listen {}:{port}; application live {{ live on; \
             drop_idle_publisher 2s; }} }} }}\n",
            lab.far_ip
        ),
    )
    .expect("nginx.conf");
    let far = lab.far.clone();
    lab.spawn(
        "nginx",
        lab.command(&far, "nginx")
            .arg("-c")
            .arg(nginx_dir.join("nginx.conf"))
            .arg("-p")
            .arg(&nginx_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    // Like real ingests, nginx drops a publisher that went silent (`drop_idle_publisher`):
    // it never learns that our old connection died with the link, and would refuse the
    // key as "already publishing" until its own timeout.
    lab.wait_listen_far(port);
    let url = format!("rtmp://{}:{port}/live/paused", lab.far_ip);
    let near = lab.near.clone();
    let lab = Arc::new(lab);
    let cutter = lab.clone();
    in_namespace(&near, move || async move {
        let (session, events) =
            StreamSession::broadcast(BroadcastConfig::new(url)).expect("session");
        let log = Log::collect(events);
        let start = Instant::now();
        let live_at = wait_state(&log, start, Duration::from_secs(10), "Live", |s| {
            *s == SessionState::Live
        })
        .await;
        // 3 s of media, then the app pauses (sends nothing) and the link is cut.
        let next = feed(&session, &clip, 0, 3_000_000, live_at, 0).await;
        let cut_at = Instant::now();
        cutter.cut();
        let reconnecting = wait_state(&log, cut_at, Duration::from_secs(5), "Reconnecting", |s| {
            matches!(s, SessionState::Reconnecting { .. })
        })
        .await;
        let noticed = reconnecting - cut_at;
        // 5 s without a link, then it is back and the app resumes.
        tokio::time::sleep_until(cut_at + Duration::from_secs(5)).await;
        let back_at = Instant::now();
        cutter.restore();
        let resumed = tokio::spawn({
            let session = session.clone();
            let clip = clip.clone();
            async move {
                feed(&session, &clip, next, 8_000_000, back_at, 3_000_000).await;
            }
        });
        let live_again = wait_state(&log, back_at, Duration::from_secs(5), "Live again", |s| {
            *s == SessionState::Live
        })
        .await;
        let back_after = live_again - back_at;
        resumed.await.expect("feeding");
        let stats = session.stop().await;
        eprintln!(
            "figures: dead link noticed {noticed:?} after the cut (nothing sent); Live \
             {back_after:?} after the link came back; {stats:?}"
        );
        assert!(
            noticed <= Duration::from_secs(2),
            "noticed after {noticed:?}"
        );
        assert!(
            back_after <= Duration::from_secs(1),
            "Live again after {back_after:?}"
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_ingest_is_replaced_by_the_backup() {
    let dir = peers::tempdir();
    let clip_path = dir.path().join("clip.flv");
    tokio::task::block_in_place(|| peers::make_clip(&clip_path, 8));
    let clip = peers::read_clip(&clip_path);
    let (mut primary, backup) = tokio::task::block_in_place(|| {
        (
            Nginx::start(&dir.path().join("primary"), NginxOptions::default()),
            Nginx::start(&dir.path().join("backup"), NginxOptions::default()),
        )
    });
    let mut config = BroadcastConfig::new(primary.url("show"));
    config.backup_urls = vec![backup.url("show")];
    let (session, events) = StreamSession::broadcast(config).expect("session");
    let log = Log::collect(events);
    let start = Instant::now();
    let live_at = wait_state(&log, start, Duration::from_secs(10), "Live", |s| {
        *s == SessionState::Live
    })
    .await;
    let next = feed(&session, &clip, 0, 3_000_000, live_at, 0).await;
    let killed_at = Instant::now();
    primary.proc.kill();
    let feeding = tokio::spawn({
        let session = session.clone();
        let clip = clip.clone();
        async move { feed(&session, &clip, next, 8_000_000, live_at, 0).await }
    });
    let reconnecting = wait_state(
        &log,
        killed_at,
        Duration::from_secs(3),
        "Reconnecting",
        |s| matches!(s, SessionState::Reconnecting { .. }),
    )
    .await;
    let on_backup = wait_state(
        &log,
        reconnecting,
        Duration::from_secs(5),
        "Live on the backup",
        |s| *s == SessionState::Live,
    )
    .await;
    let switch = on_backup - killed_at;
    feeding.await.expect("feeding");
    let stats = session.stop().await;
    tokio::task::block_in_place(|| backup.wait_disconnects(1));
    let ingests = log.ingests.lock().unwrap().clone();
    assert_eq!(ingests, [0, 1], "live on the primary, then on the backup");
    assert_eq!(stats.ingest, 1);
    assert!(
        switch <= Duration::from_secs(3),
        "Live on the backup after {switch:?}"
    );
    // The session's frame counts add up: every frame the app handed in was written to a
    // connection or counted as dropped.
    assert_eq!(
        stats.frames_sent_by_app,
        stats.video_frames + stats.audio_frames + stats.frames_dropped,
        "{stats:?}"
    );
    // The backup's recording holds what was written after the switch, from a keyframe.
    let recorded = peers::packets(&backup.recording_path("show"));
    let video = peers::of_kind(&recorded, "video");
    assert!(
        video.len() > 60,
        "{} video frames on the backup",
        video.len()
    );
    assert!(video[0].key, "the backup's recording starts at a keyframe");
    eprintln!(
        "figures: Live on the backup {switch:?} after the primary was killed; {} video \
         frames recorded there; app handed in {}, written {} + {}, dropped {}",
        video.len(),
        stats.frames_sent_by_app,
        stats.video_frames,
        stats.audio_frames,
        stats.frames_dropped
    );
}
