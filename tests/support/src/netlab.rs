//! A network lab for tests: two network namespaces of the test's own ("near", where the
//! sender runs, and "far", where the server runs) joined by a veth pair, with the near
//! side's outgoing link shaped (tbf: rate, burst, queue) and cut (link down) on demand.
//! Everything is torn down by name and PID on drop, even when the test fails.
//!
//! Only addresses inside these namespaces are used (10.213.x.y/30, made per lab). Needs
//! root and iproute2; where namespaces are not allowed, [`NetLab::new`] fails the test
//! with a message saying so.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Labs made by this process (for unique names).
static LABS: AtomicU32 = AtomicU32::new(0);

/// Two namespaces and the link between them.
pub struct NetLab {
    /// The sender's namespace.
    pub near: String,
    /// The server's namespace.
    pub far: String,
    near_dev: String,
    far_dev: String,
    /// The near side's address.
    pub near_ip: String,
    /// The far side's address (where servers listen).
    pub far_ip: String,
    children: Children,
}

/// Processes a lab started, killed by PID on drop.
#[derive(Default)]
struct Children(Vec<Child>);

impl Children {
    fn spawn(&mut self, what: &str, command: &mut Command) -> u32 {
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {what}: {e}"));
        let pid = child.id();
        self.0.push(child);
        pid
    }

    fn kill(&mut self, pid: u32) {
        if let Some(child) = self.0.iter_mut().find(|c| c.id() == pid) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn wait(&mut self, pid: u32, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + within;
        let child = self.0.iter_mut().find(|c| c.id() == pid)?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A command to run in namespace `ns` (`ip netns exec ns program`).
fn in_namespace(ns: &str, program: &str) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", ns, program]);
    command
}

/// Waits (15 s at most) until something in namespace `ns` listens on `address:port`
/// (asks `ss` there; never connects).
fn wait_listen_in(ns: &str, address: &str, port: u16) {
    let want = format!("{address}:{port}");
    crate::poll_every(
        &format!("something listening on {want} in {ns}"),
        Duration::from_secs(15),
        Duration::from_millis(20),
        || {
            let out = in_namespace(ns, "ss")
                .args(["-Hltn", &format!("sport = :{port}")])
                .output()
                .expect("running ss in a lab namespace");
            String::from_utf8_lossy(&out.stdout).contains(&want)
        },
    );
}

/// Whether a hub's `GET /api/streams` body lists `name` with its video track.
pub fn lists_live_video(listing: &str, name: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(listing)
        .ok()
        .and_then(|list| list["streams"].as_array().cloned())
        .is_some_and(|list| {
            list.iter()
                .any(|s| s["name"] == name && !s["video"].is_null())
        })
}

/// A host whose only network is loopback: a namespace of the test's own with `lo` up,
/// no other interface and no route (an offline device, a container without a network).
pub struct LoopbackHost {
    /// The namespace's name.
    pub ns: String,
    children: Children,
}

impl LoopbackHost {
    /// Makes the namespace; fails the test with a clear message where namespaces are
    /// not allowed.
    #[allow(clippy::new_without_default)] // makes a namespace: not a default value
    pub fn new() -> LoopbackHost {
        let n = LABS.fetch_add(1, Ordering::Relaxed);
        let host = LoopbackHost {
            ns: format!("shlo-{:x}-{n}", std::process::id()),
            children: Children::default(),
        };
        if let Err(e) = ip(&["netns", "add", &host.ns])
            .and_then(|_| ip(&["-n", &host.ns, "link", "set", "lo", "up"]))
        {
            drop(host);
            panic!("a loopback-only host needs network namespaces (root, iproute2): {e}");
        }
        host
    }

    /// A command to run on this host.
    pub fn command(&self, program: &str) -> Command {
        in_namespace(&self.ns, program)
    }

    /// Starts `command` (from [`Self::command`]), to be killed by PID on drop.
    pub fn spawn(&mut self, what: &str, command: &mut Command) -> u32 {
        self.children.spawn(what, command)
    }

    /// Waits (bounded) for a process this host started to exit; its status.
    pub fn wait(&mut self, pid: u32, within: Duration) -> Option<std::process::ExitStatus> {
        self.children.wait(pid, within)
    }

    /// Starts `program play URL --duration SECONDS --json --record DIR/played.h264`, then
    /// `extra`, on this host: its report goes to `DIR/report.json`, its log to
    /// `DIR/play.log`. Its PID, for [`Self::finish_play`].
    pub fn start_play(
        &mut self,
        program: &str,
        url: &str,
        seconds: u32,
        dir: &std::path::Path,
        extra: &[&std::ffi::OsStr],
    ) -> u32 {
        self.spawn(
            "streamhub play",
            self.command(program)
                .arg("play")
                .arg(url)
                .args(["--duration", &seconds.to_string(), "--json", "--record"])
                .arg(dir.join("played.h264"))
                .args(extra)
                .stdout(std::fs::File::create(dir.join("report.json")).expect("report"))
                .stderr(std::fs::File::create(dir.join("play.log")).expect("log")),
        )
    }

    /// Waits (within `limit`) for a [`Self::start_play`] to end; its `--json` report.
    /// Fails the test, with the player's log, when it did not succeed.
    pub fn finish_play(
        &mut self,
        pid: u32,
        dir: &std::path::Path,
        limit: Duration,
    ) -> serde_json::Value {
        let status = self
            .wait(pid, limit)
            .unwrap_or_else(|| panic!("streamhub play did not end within {limit:?}"));
        let log = std::fs::read_to_string(dir.join("play.log")).unwrap_or_default();
        assert!(status.success(), "streamhub play failed: {log}");
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).expect("report"))
            .unwrap_or_else(|e| panic!("the report is not JSON ({e}); log: {log}"))
    }

    /// Gives the host a second interface, a dummy one with `address` (e.g.
    /// `10.213.250.1/24`), for peers that gather no loopback candidates.
    pub fn add_dummy(&self, address: &str) {
        let dev = "shdummy0";
        ip(&["-n", &self.ns, "link", "add", dev, "type", "dummy"])
            .and_then(|_| ip(&["-n", &self.ns, "addr", "add", address, "dev", dev]))
            .and_then(|_| ip(&["-n", &self.ns, "link", "set", dev, "up"]))
            .unwrap_or_else(|e| panic!("adding a dummy interface: {e}"));
    }

    /// Starts `program hub` on this host (HTTP on 127.0.0.1:`http`, RTMP on
    /// 127.0.0.1:`rtmp`) and `program publish CLIP --realtime` to it as `stream`;
    /// returns once the hub lists the stream with its video (within 10 s, or fails the
    /// test).
    pub fn start_hub_publishing(
        &mut self,
        program: &str,
        (http, rtmp): (u16, u16),
        clip: &std::path::Path,
        stream: &str,
    ) {
        self.spawn(
            "streamhub hub",
            self.command(program)
                .args(["hub", "--secret", "s"])
                .args(["--http", &format!("127.0.0.1:{http}")])
                .args(["--rtmp", &format!("127.0.0.1:{rtmp}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        self.wait_listen(http);
        self.wait_listen(rtmp);
        self.spawn(
            "streamhub publish",
            self.command(program)
                .arg("publish")
                .arg(clip)
                .arg(format!("rtmp://127.0.0.1:{rtmp}/live/{stream}"))
                .arg("--realtime")
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let streams = format!("http://127.0.0.1:{http}/api/streams");
        crate::poll_every(
            &format!("{stream} live on the hub"),
            Duration::from_secs(10),
            Duration::from_millis(100),
            || {
                let listed = self
                    .command("curl")
                    .args(["-s", "--max-time", "2", &streams])
                    .output()
                    .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
                    .unwrap_or_default();
                lists_live_video(&listed, stream)
            },
        );
    }

    /// Waits until something listens on 127.0.0.1:`port` on this host.
    pub fn wait_listen(&self, port: u16) {
        wait_listen_in(&self.ns, "127.0.0.1", port);
    }

    /// Drops `percent` % of the UDP packets this host receives (nftables `numgen
    /// random`, on its own table; both directions of a loopback flow are received here).
    /// Calling it again replaces the rule (0 stops dropping).
    pub fn drop_udp(&self, percent: u32) {
        // numgen's range is 0..100: everything is a rule without it.
        self.set_udp_drop(&if percent >= 100 {
            String::new()
        } else {
            format!("numgen random mod 100 < {percent} ")
        });
    }

    /// Drops every `n`-th UDP packet this host receives (nftables `numgen inc`): the
    /// share of `drop_udp(100 / n)`, spread evenly instead of at random. A test that must
    /// see a repair uses it: at random, 2 % of a 10 s call can leave every video packet
    /// alone (CI saw it once), and such a run proves nothing about repairs.
    pub fn drop_every_udp(&self, n: u32) {
        self.set_udp_drop(&format!("numgen inc mod {} 0 ", n.max(1)));
    }

    /// Replaces the loss table's one rule: UDP packets matching `match_rule` (all of
    /// them when empty) are dropped on input.
    fn set_udp_drop(&self, match_rule: &str) {
        let rules = format!(
            "table inet streamhub_loss\ndelete table inet streamhub_loss\n\
             table inet streamhub_loss {{\n chain input {{\n  type filter hook input priority 0;\n  \
             meta l4proto udp {match_rule}drop\n }}\n}}\n"
        );
        let out = self
            .command("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                if let Some(mut stdin) = child.stdin.take() {
                    stdin.write_all(rules.as_bytes())?;
                }
                child.wait_with_output()
            })
            .unwrap_or_else(|e| panic!("nft (nftables, installed by scripts/test.sh): {e}"));
        assert!(
            out.status.success(),
            "nft: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for LoopbackHost {
    fn drop(&mut self) {
        self.children = Children::default();
        let _ = ip(&["netns", "del", &self.ns]);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn tc(ns: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "tc"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("tc {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "tc {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NetLab {
    /// Makes the two namespaces and the link. Fails the test with a clear message where
    /// network namespaces are not allowed (not root, no iproute2).
    #[allow(clippy::new_without_default)] // makes namespaces: not a default value
    pub fn new() -> NetLab {
        let pid = std::process::id();
        let n = LABS.fetch_add(1, Ordering::Relaxed);
        // Interface names are at most 15 bytes.
        let tag = format!("{:x}{n}", pid % 0x10_0000);
        let subnet = (pid % 60) * 4 + n % 4; // 10.213.<subnet>.{1,2}
        let lab = NetLab {
            near: format!("shlab-{tag}-near"),
            far: format!("shlab-{tag}-far"),
            near_dev: format!("shn{tag}"),
            far_dev: format!("shf{tag}"),
            near_ip: format!("10.213.{subnet}.1"),
            far_ip: format!("10.213.{subnet}.2"),
            children: Children::default(),
        };
        if let Err(e) = lab.build() {
            drop(lab);
            panic!(
                "the network lab needs network namespaces (root and iproute2: `ip netns add`, \
                 veth, tc tbf), which are not allowed here: {e}"
            );
        }
        lab
    }

    fn build(&self) -> Result<(), String> {
        ip(&["netns", "add", &self.near])?;
        ip(&["netns", "add", &self.far])?;
        ip(&[
            "link",
            "add",
            &self.near_dev,
            "type",
            "veth",
            "peer",
            "name",
            &self.far_dev,
        ])?;
        ip(&["link", "set", &self.near_dev, "netns", &self.near])?;
        ip(&["link", "set", &self.far_dev, "netns", &self.far])?;
        for (ns, dev, addr) in [
            (&self.near, &self.near_dev, &self.near_ip),
            (&self.far, &self.far_dev, &self.far_ip),
        ] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/30"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            // A default route, as hosts have: without one, joining a multicast group
            // (WebRTC's mDNS) fails with ENODEV.
            ip(&["-n", ns, "route", "add", "default", "dev", dev])?;
        }
        Ok(())
    }

    /// A command to run in namespace `ns` (`ip netns exec ns program`).
    pub fn command(&self, ns: &str, program: &str) -> Command {
        in_namespace(ns, program)
    }

    /// Starts `command` (from [`Self::command`]) and keeps it, to be killed by PID when
    /// the lab is dropped; returns its PID.
    pub fn spawn(&mut self, what: &str, command: &mut Command) -> u32 {
        self.children.spawn(what, command)
    }

    /// Kills a process this lab started, now.
    pub fn kill(&mut self, pid: u32) {
        self.children.kill(pid);
    }

    /// Waits (bounded) for a process this lab started to exit; its status.
    pub fn wait(&mut self, pid: u32, within: Duration) -> Option<std::process::ExitStatus> {
        self.children.wait(pid, within)
    }

    /// Caps the near side's outgoing rate (the sender's upload): tbf with `rate_kbit`,
    /// a `burst_kb` bucket and at most `latency_ms` of queue.
    pub fn shape(&self, rate_kbit: u32, burst_kb: u32, latency_ms: u32) {
        tc(
            &self.near,
            &[
                "qdisc",
                "replace",
                "dev",
                &self.near_dev,
                "root",
                "tbf",
                "rate",
                &format!("{rate_kbit}kbit"),
                "burst",
                &format!("{burst_kb}kb"),
                "latency",
                &format!("{latency_ms}ms"),
            ],
        )
        .unwrap_or_else(|e| panic!("shaping the link: {e}"));
    }

    /// Cuts the link: the near side's interface goes down (packets neither way).
    pub fn cut(&self) {
        ip(&["-n", &self.near, "link", "set", &self.near_dev, "down"])
            .unwrap_or_else(|e| panic!("cutting the link: {e}"));
    }

    /// Restores a cut link.
    pub fn restore(&self) {
        ip(&["-n", &self.near, "link", "set", &self.near_dev, "up"])
            .unwrap_or_else(|e| panic!("restoring the link: {e}"));
    }

    /// Moves the near side to a new address, as a device whose network changed: the
    /// new address (in 10.214.x.0/24, which the far side also joins, so that it routes
    /// back) is added, then the old one removed. Sockets bound to the old address lose
    /// their path; the far side's address is unchanged. Returns the new address.
    pub fn renumber_near(&mut self) -> String {
        let subnet = self.near_ip.split('.').nth(2).unwrap_or("0").to_string();
        let new_ip = format!("10.214.{subnet}.1");
        let far_new = format!("10.214.{subnet}.2");
        let steps: [(&str, Vec<String>); 3] = [
            (
                &self.far,
                vec![
                    "addr".into(),
                    "add".into(),
                    format!("{far_new}/24"),
                    "dev".into(),
                    self.far_dev.clone(),
                ],
            ),
            (
                &self.near,
                vec![
                    "addr".into(),
                    "add".into(),
                    format!("{new_ip}/24"),
                    "dev".into(),
                    self.near_dev.clone(),
                ],
            ),
            (
                &self.near,
                vec![
                    "addr".into(),
                    "del".into(),
                    format!("{}/30", self.near_ip),
                    "dev".into(),
                    self.near_dev.clone(),
                ],
            ),
        ];
        for (ns, args) in steps {
            let mut full = vec!["-n", ns];
            full.extend(args.iter().map(String::as_str));
            ip(&full).unwrap_or_else(|e| panic!("renumbering the near side: {e}"));
        }
        // Routes went with the old address: the default route again.
        let _ = ip(&[
            "-n",
            &self.near,
            "route",
            "replace",
            "default",
            "dev",
            &self.near_dev,
        ]);
        self.near_ip = new_ip.clone();
        new_ip
    }

    /// The body of an HTTP GET of `url` from the far namespace (curl, 2 s at most);
    /// empty when the request failed.
    pub fn get_far(&self, url: &str) -> String {
        self.command(&self.far, "curl")
            .args(["-s", "--max-time", "2", url])
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Waits until something listens on the far side's `port` (asks `ss` in the far
    /// namespace; never connects).
    pub fn wait_listen_far(&self, port: u16) {
        wait_listen_in(&self.far, &self.far_ip, port);
    }
}

impl Drop for NetLab {
    fn drop(&mut self) {
        self.children = Children::default();
        // Deleting a namespace deletes the veth end in it, and with it the pair.
        let _ = ip(&["netns", "del", &self.near]);
        let _ = ip(&["netns", "del", &self.far]);
    }
}
