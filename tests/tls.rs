//! TLS listeners end to end: `leannodes serve` with `[[server.tls]]`, real clients (curl, openssl,
//! rustls), real certificates from a throwaway authority. The certificate is chosen by SNI, HTTP/2 comes
//! by ALPN, the hold, the warm-up page and WebSocket behave as over plain HTTP, certificates rotate
//! under load without a failed request, garbage bytes disturb nobody, and bad key material stops the
//! start with an error that names the file.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use leannodes_harness::tls::{Issued, TestCa};
use leannodes_harness::{DemoNode, Serve, WebSocket, assert_eventually, free_port, workdir};

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");

/// A flow of one demo node answering `hosts`.
fn flow(logs: &Path, name: &str, hosts: &[&str], settings: &str, node: &DemoNode) -> String {
    let hosts: Vec<String> = hosts.iter().map(|h| format!("\"{h}\"")).collect();
    format!(
        "\n[[flow]]\nname = \"{name}\"\nhosts = [{}]\nupstream = \"{}\"\n{settings}\n{}",
        hosts.join(", "),
        node.name,
        node.toml(BIN, logs)
    )
}

/// `[[server.tls]]` on `port` with these certificate files (the first is the default).
fn tls_listener(port: u16, certs: &[(std::path::PathBuf, std::path::PathBuf)]) -> String {
    let certs: Vec<String> = certs.iter().map(|(c, k)| format!("{{ cert = \"{}\", key = \"{}\" }}", c.display(), k.display())).collect();
    format!("\n[[server.tls]]\nlisten = \"127.0.0.1:{port}\"\ncerts = [{}]\n", certs.join(", "))
}

/// curl over TLS to `https://{host}:{port}{path}`, trusting `ca`: (status, headers, body, HTTP version).
fn curl(ca: &Path, host: &str, port: u16, path: &str, extra: &[&str]) -> (u16, String, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("{host}:{port}:127.0.0.1"), "-D", "-", "-w", "\n%{http_version}"])
        .args(extra)
        .arg(format!("https://{host}:{port}{path}"))
        .output()
        .expect("run curl");
    assert!(out.status.success(), "curl {host}{path}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (rest, version) = text.rsplit_once('\n').expect("version line");
    let (head, body) = rest.split_once("\r\n\r\n").expect("head and body");
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status");
    (status, head.to_ascii_lowercase(), body.to_string(), version.to_string())
}

/// The subject of the certificate the listener presents for `server_name` (none: no SNI at all).
fn presented_subject(port: u16, server_name: Option<&str>) -> String {
    let mut args = vec!["s_client".to_string(), "-connect".into(), format!("127.0.0.1:{port}")];
    match server_name {
        Some(name) => args.extend(["-servername".to_string(), name.to_string()]),
        None => args.push("-noservername".into()),
    }
    let hello = Command::new("openssl").args(&args).stdin(std::process::Stdio::null()).output().expect("openssl s_client");
    let text = String::from_utf8_lossy(&hello.stdout);
    text.lines().find_map(|l| l.strip_prefix("subject=")).map(|s| s.trim().to_string()).unwrap_or_else(|| panic!("no subject in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_listener_picks_certificates_by_sni_speaks_h2_and_holds_like_plain_http() {
    let dir = workdir();
    let ca = TestCa::new("LeanNodes test CA");
    let ca_file = ca.write(&dir.path().join("ca.pem"));
    let shop = ca.issue(&["shop.test"]).write(dir.path(), "shop");
    let docs = ca.issue(&["docs.test"]).write(dir.path(), "docs");
    let apps = ca.issue(&["*.apps.test"]).write(dir.path(), "apps");
    let port = free_port();
    let web = DemoNode::new("web").args(&["--startup-delay", "300ms"]);
    let docs_node = DemoNode::new("docs");
    let slow = DemoNode::new("slow").args(&["--startup-delay", "4s"]);
    let body = [
        flow(dir.path(), "shop", &["shop.test"], "", &web),
        flow(dir.path(), "docs", &["docs.test"], "", &docs_node),
        flow(dir.path(), "slow", &["slow.apps.test"], "fast_hold = \"300ms\"", &slow),
    ]
    .concat();
    let serve = Serve::start(BIN, dir.path(), &tls_listener(port, &[shop, docs, apps]), &body);
    for name in ["shop", "docs", "slow"] {
        serve.drain(name);
    }

    // SNI picks the certificate (curl verifies it against the name), HTTP/2 by ALPN, and the first
    // request is held through the wake exactly as over plain HTTP.
    let (status, head, body, version) = curl(&ca_file, "shop.test", port, "/cart?id=7", &[]);
    assert_eq!((status, body.as_str(), version.as_str()), (200, "web GET /cart?id=7\n", "2"));
    assert!(head.contains("x-leannodes-cold-start:"), "held through the wake: {head}");
    let (status, head, body, version) = curl(&ca_file, "docs.test", port, "/", &["--http1.1"]);
    assert_eq!((status, body.as_str(), version.as_str()), (200, "docs GET /\n", "1.1"));
    assert!(head.contains("x-leannodes-cold-start:"));

    // The default certificate for clients without SNI or with a name no certificate has; a wildcard
    // certificate covers one label.
    assert!(presented_subject(port, None).contains("shop.test"));
    assert!(presented_subject(port, Some("unknown.test")).contains("shop.test"));
    assert!(presented_subject(port, Some("slow.apps.test")).contains("*.apps.test"));

    // A browser gets the warm-up page at fast_hold, over TLS too.
    let (status, head, page, _) = curl(&ca_file, "slow.apps.test", port, "/", &["-H", "accept: text/html"]);
    assert_eq!(status, 503);
    assert!(head.contains("content-type: text/html") && page.contains("/.well-known/leannodes"), "{head}\n{page}");

    // WebSocket over TLS (HTTP/1.1 by ALPN): the upgrade is proxied to the awake flow.
    let stream = ca.connect(serve_tls(port), "shop.test").expect("TLS connection");
    let mut ws = WebSocket::handshake(Box::new(stream), "shop.test", "/ws").expect("upgrade");
    assert!(ws.head.starts_with("HTTP/1.1 101"), "{}", ws.head);
    ws.send("over tls").expect("send");
    assert_eq!(ws.recv().expect("echo"), "over tls");
}

fn serve_tls(port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

/// Kubernetes updates a mounted Secret by writing a new folder and swapping the `..data` symlink; the
/// files the config names are symlinks through it.
struct SecretVolume {
    dir: std::path::PathBuf,
    generation: u32,
}

impl SecretVolume {
    fn new(dir: &Path, first: &Issued) -> SecretVolume {
        std::fs::create_dir_all(dir).expect("volume");
        let mut volume = SecretVolume { dir: dir.to_path_buf(), generation: 0 };
        volume.update(first);
        for name in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name)).expect("symlink");
        }
        volume
    }

    fn update(&mut self, issued: &Issued) {
        self.generation += 1;
        let version = format!("..v{}", self.generation);
        let folder = self.dir.join(&version);
        std::fs::create_dir(&folder).expect("version folder");
        std::fs::write(folder.join("tls.crt"), &issued.cert).expect("cert");
        std::fs::write(folder.join("tls.key"), &issued.key).expect("key");
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&version, &tmp).expect("symlink");
        std::fs::rename(&tmp, self.dir.join("..data")).expect("atomic swap");
    }

    fn files(&self) -> (std::path::PathBuf, std::path::PathBuf) {
        (self.dir.join("tls.crt"), self.dir.join("tls.key"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotate_under_load_without_a_failed_request() {
    let dir = workdir();
    let ca = TestCa::new("rotation CA");
    let first = ca.issue(&["shop.test"]);
    let mut volume = SecretVolume::new(&dir.path().join("secret"), &first);
    let port = free_port();
    let web = DemoNode::new("web");
    let serve = Serve::start(BIN, dir.path(), &tls_listener(port, &[volume.files()]), &flow(dir.path(), "shop", &["shop.test"], "", &web));
    let leaf = |stream: &leannodes_harness::tls::TlsStream| stream.conn.peer_certificates().expect("certificates")[0].to_vec();
    let served_first = leaf(&ca.connect(serve_tls(port), "shop.test").expect("TLS"));

    // Load: fresh connections (a handshake each) and one kept-alive connection, all trusting only the CA.
    let ca_cert = reqwest::Certificate::from_pem(ca.pem().as_bytes()).expect("CA");
    let client = |fresh: bool| {
        let builder = reqwest::Client::builder().no_proxy().add_root_certificate(ca_cert.clone()).resolve("shop.test", serve_tls(port));
        let builder = if fresh { builder.pool_max_idle_per_host(0) } else { builder };
        builder.timeout(Duration::from_secs(30)).build().expect("client")
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut workers = Vec::new();
    for fresh in [true, true, true, false] {
        let (client, stop, ok, failed) = (client(fresh), stop.clone(), ok.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let answer = match client.get(format!("https://shop.test:{port}/load")).send().await {
                    Ok(r) => (r.status().as_u16(), r.text().await.map_err(|e| format!("{e:?}"))),
                    Err(e) => (0, Err(format!("{e:?}"))),
                };
                if answer.0 == 200 && answer.1.as_deref() == Ok("web GET /load\n") {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    eprintln!("request failed: {answer:?}");
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    assert_eventually!(ok.load(Ordering::Relaxed) > 50, "load is running");

    // Rotate: a new key and certificate, swapped in the way a Secret volume is.
    let second = ca.issue(&["shop.test"]);
    volume.update(&second);
    assert_eventually!(
        ca.connect(serve_tls(port), "shop.test").map(|s| leaf(&s)).is_ok_and(|der| der != served_first),
        "new handshakes get the rotated certificate"
    );
    let after_rotation = ok.load(Ordering::Relaxed);
    assert_eventually!(ok.load(Ordering::Relaxed) > after_rotation + 50, "load goes on after the rotation");
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.expect("worker");
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "no request failed during the rotation:\n{}", serve.log());
    assert!(serve.log().contains("TLS certificates re-read from disk"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_tls_and_http2_bytes_disturb_nobody() {
    use std::io::{Read, Write};
    let dir = workdir();
    let ca = TestCa::new("garbage CA");
    let ca_file = ca.write(&dir.path().join("ca.pem"));
    let shop = ca.issue(&["shop.test"]).write(dir.path(), "shop");
    let port = free_port();
    let web = DemoNode::new("web");
    let serve =
        Serve::start(BIN, dir.path(), &tls_listener(port, &[shop]), &flow(dir.path(), "shop", &["shop.test", "127.0.0.1"], "", &web));

    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let exchange = |addr: std::net::SocketAddr, bytes: &[u8]| {
        let mut socket = std::net::TcpStream::connect(addr).expect("connect");
        socket.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let _ = socket.write_all(bytes);
        let mut answer = Vec::new();
        let _ = socket.read_to_end(&mut answer);
        answer
    };
    // Not TLS at all; a TLS record header announcing a huge handshake, then noise.
    exchange(serve_tls(port), &garbage);
    exchange(serve_tls(port), &[&[0x16, 0x03, 0x01, 0xff, 0xff][..], &garbage].concat());
    // HTTP/2 with prior knowledge on the plain listener, then frames that make no sense.
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let bogus_frames = [&[0x00, 0x00, 0x08, 0x07, 0x00, 0x00, 0x00, 0x00, 0x05][..], &garbage[..64]].concat();
    let answer = exchange(serve.proxy, &[&preface[..], &bogus_frames].concat());
    assert!(!answer.is_empty(), "the HTTP/2 server answers a protocol error with its own frames (GOAWAY)");
    exchange(serve.proxy, &[&preface[..], &garbage].concat());

    // Everyone else is served as before, on both listeners.
    let (status, _, body, version) = curl(&ca_file, "shop.test", port, "/after", &[]);
    assert_eq!((status, body.as_str(), version.as_str()), (200, "web GET /after\n", "2"));
    let plain = reqwest::Client::builder().no_proxy().build().expect("client").get(serve.url("/plain")).send().await.expect("plain");
    assert_eq!(plain.text().await.expect("body"), "web GET /plain\n");
}

/// Starts `leannodes serve` expecting it to refuse; returns its stderr.
fn refused_start(dir: &Path, tls: &str) -> String {
    let config = dir.join("refused.toml");
    let admin = free_port();
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:{}\"]\nadmin_listen = \"127.0.0.1:{admin}\"\nstore = \"sqlite://refused.db\"\n{tls}",
            free_port()
        ),
    )
    .expect("config");
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .env("LEANNODES_SUPER_ADMIN_EMAIL", leannodes_harness::ADMIN_EMAIL)
        .env("LEANNODES_SUPER_ADMIN_PASSWORD", leannodes_harness::ADMIN_PASSWORD)
        .output()
        .expect("run serve");
    assert!(!out.status.success(), "the start must fail");
    assert!(std::net::TcpStream::connect(("127.0.0.1", admin)).is_err(), "nothing is left listening");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_missing_certificate_or_a_key_of_another_certificate_stops_the_start_with_the_file_named() {
    let dir = workdir();
    let ca = TestCa::new("start CA");
    let (a_cert, _) = ca.issue(&["a.test"]).write(dir.path(), "a");
    let (_, b_key) = ca.issue(&["b.test"]).write(dir.path(), "b");
    let port = free_port();

    let mismatched = refused_start(dir.path(), &tls_listener(port, &[(a_cert.clone(), b_key.clone())]));
    assert!(
        mismatched.contains(&format!("TLS listener 127.0.0.1:{port}"))
            && mismatched.contains("does not belong to the certificate")
            && mismatched.contains(&b_key.display().to_string()),
        "{mismatched}"
    );
    let missing = refused_start(dir.path(), &tls_listener(port, &[(dir.path().join("gone.pem"), b_key)]));
    assert!(missing.contains("cannot read") && missing.contains("gone.pem"), "{missing}");
}
