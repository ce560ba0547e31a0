//! A listener that remembers the connections it accepted, so the API server can go away the way a
//! crashed or restarted kube-apiserver does: the port stops accepting and every open connection (watch
//! streams and idle kept-alive ones alike) is cut at once.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The open connections of one simulator, by id: a duplicate of each socket, to shut it down with.
#[derive(Debug, Default)]
pub(crate) struct Connections {
    open: Mutex<HashMap<u64, std::net::TcpStream>>,
    next: AtomicU64,
}

impl Connections {
    /// Cuts every open connection (both directions); their handlers see the connection end.
    pub(crate) fn cut_all(&self) {
        for (_, socket) in self.open.lock().drain() {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// A TCP listener whose connections are registered in [`Connections`] while they are open.
pub(crate) struct Tracked {
    pub(crate) listener: TcpListener,
    pub(crate) connections: Arc<Connections>,
}

/// One accepted connection; leaves the registry when the server drops it.
pub(crate) struct TrackedStream {
    stream: TcpStream,
    id: u64,
    connections: Arc<Connections>,
}

impl Drop for TrackedStream {
    fn drop(&mut self) {
        self.connections.open.lock().remove(&self.id);
    }
}

impl axum::serve::Listener for Tracked {
    type Io = TrackedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(_) => {
                    // Out of file descriptors and the like: wait a moment, as axum's own listener does.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(duplicate) = stream.as_fd().try_clone_to_owned() else { continue };
            let id = self.connections.next.fetch_add(1, Ordering::Relaxed);
            self.connections.open.lock().insert(id, std::net::TcpStream::from(duplicate));
            return (TrackedStream { stream, id, connections: self.connections.clone() }, addr);
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

impl AsyncRead for TrackedStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TrackedStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
