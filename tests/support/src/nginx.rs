//! nginx with its RTMP module as an ingest for tests: in the foreground on free loopback
//! ports (or a given one), killed by PID on drop, recording every stream of application
//! `live` to `<dir>/<key>.flv`; optionally a key check (`on_publish`) and an RTMPS port
//! (a TLS proxy of nginx's stream module with a throwaway CA). Shared by the core and
//! cli tests.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::{Proc, free_port, run_checked, wait_listen};
use crate::require;

/// Options for a private nginx-rtmp.
#[derive(Default)]
pub struct NginxOptions {
    /// Only this stream key may publish (checked by nginx's `on_publish`).
    pub only_key: Option<String>,
    /// Also listen for RTMPS through a TLS proxy (nginx stream module).
    pub tls: bool,
    /// The RTMP port (to come back where a killed nginx was); a free one by default.
    pub rtmp_port: Option<u16>,
}

/// A running nginx-rtmp.
pub struct Nginx {
    /// The nginx process.
    pub proc: Proc,
    /// Its RTMP port on 127.0.0.1.
    pub rtmp_port: u16,
    /// Its RTMPS port (the TLS proxy; listening only with `tls`).
    pub tls_port: u16,
    /// Its folder: configuration, logs and the recordings (`<key>.flv`).
    pub dir: PathBuf,
    /// CA certificate (PEM) that signed the TLS proxy's certificate.
    pub ca_pem: PathBuf,
}

impl Nginx {
    /// Starts nginx in `dir` and waits until it listens.
    pub fn start(dir: &Path, options: NginxOptions) -> Nginx {
        require::nginx_rtmp();
        let rtmp_port = options.rtmp_port.unwrap_or_else(free_port);
        let http_port = free_port();
        let tls_port = free_port();
        fs::create_dir_all(dir).expect("nginx dir");
        let d = dir.display();
        let mut modules = "load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;\n".to_string();
        let mut extra = String::new();
        let ca_pem = dir.join("ca.pem");
        if options.tls {
            modules.push_str("load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n");
            make_certificates(dir);
            extra.push_str(&format!(
                "stream {{ server {{ listen 127.0.0.1:{tls_port} ssl; \
                 ssl_certificate {d}/server.pem; ssl_certificate_key {d}/server.key; \
                 proxy_pass 127.0.0.1:{rtmp_port}; }} }}\n"
            ));
        }
        let mut on_publish = String::new();
        if let Some(key) = &options.only_key {
            on_publish =
                format!("notify_method get; on_publish http://127.0.0.1:{http_port}/auth;");
            extra.push_str(&format!(
                "http {{ access_log off; client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; \
                 fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi; \
                 server {{ listen 127.0.0.1:{http_port}; location /auth {{ \
                 if ($arg_name = \"{key}\") {{ return 200; }} return 403; }} }} }}\n"
            ));
        }
        let conf = format!(
            "{modules}daemon off;\nmaster_process off;\nworker_processes 1;\n\
             error_log {d}/error.log info;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 64; }}\n{extra}\
             rtmp {{ server {{ listen 127.0.0.1:{rtmp_port}; chunk_size 4096; \
             application live {{ live on; record all; record_path {d}; record_unique off; \
             {on_publish} }} }} }}\n"
        );
        fs::write(dir.join("nginx.conf"), conf).expect("writing nginx.conf");
        let proc = Proc::spawn(
            "nginx",
            Command::new("nginx")
                .arg("-c")
                .arg(dir.join("nginx.conf"))
                .arg("-p")
                .arg(dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        wait_listen(rtmp_port);
        if options.tls {
            wait_listen(tls_port);
        }
        if options.only_key.is_some() {
            wait_listen(http_port);
        }
        Nginx {
            proc,
            rtmp_port,
            tls_port,
            dir: dir.to_path_buf(),
            ca_pem,
        }
    }

    /// `rtmp://127.0.0.1:PORT/live/{key}`.
    pub fn url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{key}", self.rtmp_port)
    }

    /// The recording of `key` (possibly still being written).
    pub fn recording_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.flv"))
    }

    /// Waits until nginx logged `publishers` disconnects (their recordings are closed).
    pub fn wait_disconnects(&self, publishers: usize) {
        let log = self.dir.join("error.log");
        crate::poll_until(
            "nginx to see the publisher leave",
            Duration::from_secs(15),
            || {
                fs::read_to_string(&log)
                    .map(|l| l.matches("disconnect").count() >= publishers)
                    .unwrap_or(false)
            },
        );
    }

    /// Waits until nginx has closed the recording of `key` (it logs the disconnect
    /// of every publisher) and returns its path.
    pub fn recording(&self, key: &str, publishers: usize) -> PathBuf {
        self.wait_disconnects(publishers);
        self.recording_path(key)
    }
}

/// A throwaway CA and a server certificate for localhost / 127.0.0.1 signed by it:
/// `ca.pem`, `server.pem` and `server.key` in `dir`.
pub fn make_certificates(dir: &Path) {
    require::program("openssl");
    let ext = dir.join("san.ext");
    fs::write(&ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\n").expect("san.ext");
    let openssl = |args: &[&str]| {
        run_checked(
            "openssl",
            Command::new("openssl").current_dir(dir).args(args),
        )
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=StreamHub Test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    ]);
}
