//! What the integration tests need from the machine, checked before a peer starts: a
//! missing program or file fails the test (never skips it) with a message naming the
//! README's test command, which installs everything (`scripts/test.sh`).

use std::path::Path;

/// The command that installs every test peer and then runs the tests.
pub const INSTALL: &str = "scripts/test.sh";

/// Panics unless `program` is on PATH (or is an existing path).
pub fn program(program: &str) {
    let found = if program.contains('/') {
        Path::new(program).exists()
    } else {
        std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|dir| dir.join(program).is_file())
        })
    };
    assert!(
        found,
        "`{program}` is not installed: run {INSTALL} (it installs every test peer, then runs \
         the tests)"
    );
}

/// Panics unless `path` exists; `what` says what it is.
pub fn file(path: &Path, what: &str) {
    assert!(
        path.exists(),
        "{what} ({}) is missing: run {INSTALL} (it installs every test peer, then runs the \
         tests)",
        path.display()
    );
}

/// ffmpeg and ffprobe.
pub fn ffmpeg() {
    program("ffmpeg");
    program("ffprobe");
}

/// nginx with its RTMP module.
pub fn nginx_rtmp() {
    program("nginx");
    file(
        Path::new("/usr/lib/nginx/modules/ngx_rtmp_module.so"),
        "nginx's RTMP module (libnginx-mod-rtmp)",
    );
}
