//! A TCP forwarder to put between LeanNodes and a server (e.g. Postgres) that can be made to **hang**:
//! it keeps accepting connections but lets no byte through in either direction, not even a close, so
//! the client sees a server that accepts and never answers (as behind a network partition, or a
//! database frozen by I/O) rather than one that refuses or errors. Switched back, it delivers what it
//! held and carries on, as TCP does when a short partition heals.

use std::net::{SocketAddr, ToSocketAddrs};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running forwarder (on its own thread and runtime, so it works under any test), stopped when dropped.
#[derive(Debug)]
pub struct Toxic {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The server it forwards to.
    pub upstream: SocketAddr,
    flowing: watch::Sender<bool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Toxic {
    /// Forwards a fresh loopback port to `upstream`, letting traffic through.
    pub fn start(upstream: SocketAddr) -> Toxic {
        let (listener, addr) = crate::bind_ephemeral();
        listener.set_nonblocking(true).expect("non-blocking listener");
        let (flowing, rx) = watch::channel(true);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("toxic".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("toxic runtime");
                rt.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("tokio listener");
                    tokio::select! {
                        () = accept_loop(listener, upstream, rx) => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime here closes every forwarded connection.
            })
            .expect("toxic thread");
        Toxic { addr, upstream, flowing, stop: Some(stop), thread: Some(thread) }
    }

    /// A forwarder in front of the server of a `postgres://…@HOST:PORT/DB` URL, and the same URL with the
    /// forwarder in place of the server.
    pub fn for_url(url: &str) -> (Toxic, String) {
        let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((user, hostport)) => (format!("{user}@"), hostport),
            None => (String::new(), authority),
        };
        let upstream = hostport
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .unwrap_or_else(|| panic!("the server of {url} must be HOST:PORT over TCP"));
        let toxic = Toxic::start(upstream);
        let through = format!("{scheme}://{userinfo}{}{tail}", toxic.addr);
        (toxic, through)
    }

    /// Stops letting anything through (connections stay open; new ones are accepted).
    pub fn hang(&self) {
        self.flowing.send_replace(false);
    }

    /// Lets traffic through again, held bytes first.
    pub fn restore(&self) {
        self.flowing.send_replace(true);
    }

    /// Whether it is hanging now.
    pub fn is_hanging(&self) -> bool {
        !*self.flowing.borrow()
    }
}

impl Drop for Toxic {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, flowing: watch::Receiver<bool>) {
    loop {
        let Ok((client, _)) = listener.accept().await else { continue };
        let mut flowing = flowing.clone();
        tokio::spawn(async move {
            // A connection accepted while hanging reaches the server only once traffic flows again.
            if flowing.wait_for(|f| *f).await.is_err() {
                return;
            }
            let Ok(server) = TcpStream::connect(upstream).await else { return };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::join!(pump(client_read, server_write, flowing.clone()), pump(server_read, client_write, flowing));
        });
    }
}

/// Copies one direction; while hanging, whatever was read waits (and so does end of stream).
async fn pump(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, mut flowing: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await.unwrap_or(0);
        if flowing.wait_for(|f| *f).await.is_err() {
            return;
        }
        if n == 0 || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
