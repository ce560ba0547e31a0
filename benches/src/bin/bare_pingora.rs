//! A bare pingora proxy with no logic (one fixed upstream), the ceiling LeanNodes' proxy is compared with
//! in `e2e.py`. Usage: bare_pingora LISTEN UPSTREAM THREADS

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session};
use pingora::server::configuration::ServerConf;
use pingora::upstreams::peer::HttpPeer;

/// The same allocator as `leannodes`, so the comparison isolates the proxy logic.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Bare(SocketAddr);

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();
    fn new_ctx(&self) {}
    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        let mut peer = HttpPeer::new(self.0, false, String::new());
        peer.options.connection_timeout = Some(Duration::from_secs(2));
        peer.options.idle_timeout = Some(Duration::from_secs(60));
        peer.options.read_timeout = Some(Duration::from_secs(60));
        peer.options.write_timeout = Some(Duration::from_secs(60));
        Ok(Box::new(peer))
    }
}

#[allow(clippy::field_reassign_with_default)]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(listen), Some(upstream), Some(threads)) =
        (args.get(1), args.get(2).and_then(|u| u.parse().ok()), args.get(3).and_then(|t| t.parse().ok()))
    else {
        eprintln!("usage: bare_pingora LISTEN UPSTREAM THREADS");
        std::process::exit(2);
    };
    let mut conf = ServerConf::default();
    conf.threads = threads;
    conf.work_stealing = false;
    conf.grace_period_seconds = Some(0);
    conf.pid_file = format!("/tmp/bare-pingora-{}.pid", std::process::id());
    conf.upgrade_sock = format!("/tmp/bare-pingora-{}.sock", std::process::id());
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut service = pingora::proxy::http_proxy_service(&server.configuration, Bare(upstream));
    service.add_tcp(listen);
    server.add_service(service);
    server.run_forever();
}
