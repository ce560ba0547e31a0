//! Parking held requests outside Pingora's per-request machinery.
//!
//! The first request of every downstream connection is read here before Pingora sees it: its head is
//! parsed (bounded in size, header count and time), the gate decides, and a request whose flow is asleep
//! waits *parked* — the connection, the bytes read so far and the gate's small future, nothing else.
//! When the gate has decided (awake, failed, out of budget, client gone), the same connection is handed
//! to the Pingora proxy with those bytes replayed in front of it and the verdict attached
//! ([`Unparked`]); the proxy's `request_filter` takes that verdict instead of asking the gate again, so
//! every answer (warm-up page, gRPC status, `503` JSON, `Retry-After`) is written by the same code as
//! before. Requests that follow on a kept-alive connection, and HTTP/2 (h2c preface or ALPN `h2`), go to
//! Pingora directly and are held there.
//!
//! A head that never completes is answered `408` after `[server] request_head_timeout`; a head larger
//! than [`MAX_HEAD`] or with more than [`MAX_HEADERS`] headers is answered `431` — before anything is
//! held, so parking opens no new way to keep memory.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use pingora::apps::ServerApp;
use pingora::http::RequestHeader;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::TlsRef;
use pingora::protocols::{
    ALPN, GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream, TimingDigest, UniqueID, UniqueIDType,
};
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;

use crate::answer::{STATUS_PREFIX, json_reply};
use crate::gate::Verdict;
use crate::metrics::HeadRefusal;
use crate::service::{InFlight, LeanProxy, ProxyState, inquiry_of};

/// The largest request head the parker reads; a larger one is answered `431`.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// The most headers a request head may have (Pingora's own limit); more is answered `431`.
pub(crate) const MAX_HEADERS: usize = 256;
/// The first read of a connection's head.
const FIRST_READ: usize = 2 * 1024;

/// A gate verdict reached while the request was parked, for the proxy to act on.
#[derive(Debug)]
pub(crate) struct Parked {
    /// What the gate decided.
    pub verdict: Verdict,
    /// When the request's head was complete (the start of the request; its hold comes after).
    pub arrived: Instant,
    /// The request counts as in flight from its complete head until the proxy has taken over (a
    /// graceful shutdown waits for it to be answered).
    _in_flight: InFlight,
}

/// The front of every proxy listener: reads each connection's first request head, lets the gate decide
/// (parking the connection while a flow wakes), then hands the connection to the Pingora proxy.
pub(crate) struct Parker {
    proxy: Arc<HttpProxy<LeanProxy>>,
    state: Arc<ProxyState>,
    head_timeout: Duration,
}

impl Parker {
    /// A parker in front of `proxy`.
    pub(crate) fn new(proxy: HttpProxy<LeanProxy>, state: Arc<ProxyState>, head_timeout: Duration) -> Parker {
        Parker { proxy: Arc::new(proxy), state, head_timeout }
    }

    /// Answers a connection whose head is not handed to the proxy (the JSON error shape of every
    /// answer), closes it and counts it.
    async fn refuse(&self, stream: &mut Stream, refusal: HeadRefusal, message: &str) {
        self.state.refused_heads.count(refusal);
        let status = refusal.status();
        let reply = json_reply(status, refusal.label(), None, message, None, serde_json::json!({}));
        let reason = http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or_default();
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            reply.content_type,
            reply.body.len()
        );
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.write_all(&reply.body).await;
        let _ = stream.flush().await;
        Shutdown::shutdown(&mut **stream).await;
    }

    /// Hands the connection to the proxy, `read` replayed in front of it (`http1`: it starts with a whole
    /// HTTP/1 request head) and `parked` attached.
    async fn hand_over(
        &self,
        stream: Stream,
        read: Vec<u8>,
        http1: bool,
        parked: Option<Parked>,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let stream: Stream = Box::new(Unparked::new(stream, read, http1, parked));
        ServerApp::process_new(&self.proxy, stream, shutdown).await
    }
}

#[async_trait]
impl ServerApp for Parker {
    async fn process_new(self: &Arc<Self>, mut stream: Stream, shutdown: &ShutdownWatch) -> Option<Stream> {
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            return ServerApp::process_new(&self.proxy, stream, shutdown).await;
        }
        let mut read = Vec::with_capacity(FIRST_READ);
        let head = match tokio::time::timeout(self.head_timeout, read_head(&mut stream, &mut read)).await {
            Ok(Ok(head)) => head,
            // The client closed or broke the connection before its head was complete.
            Ok(Err(_)) => return None,
            Err(_) => {
                let message = format!(
                    "the request head did not arrive within {:?} ([server] request_head_timeout); send it at once",
                    self.head_timeout
                );
                self.refuse(&mut stream, HeadRefusal::Timeout, &message).await;
                return None;
            }
        };
        let arrived = Instant::now();
        let req = match head {
            Head::Request(req) => req,
            Head::TooLarge => {
                let message = format!(
                    "the request head is larger than {MAX_HEAD} bytes or has more than {MAX_HEADERS} headers; send fewer or smaller \
                     headers (large cookies are the usual cause)"
                );
                self.refuse(&mut stream, HeadRefusal::TooLarge, &message).await;
                return None;
            }
            // HTTP/2 prior knowledge, or not HTTP: Pingora answers as it always did.
            Head::Other => return self.hand_over(stream, read, false, None, shutdown).await,
        };
        let inquiry = inquiry_of(&req);
        if inquiry.path.starts_with(STATUS_PREFIX) {
            return self.hand_over(stream, read, true, None, shutdown).await;
        }
        let in_flight = InFlight::new(&self.state);
        let watch = !declares_body(&req) && !is_upgrade(&req);
        drop(req);
        read.shrink_to_fit();
        let verdict = self.state.gate(&inquiry, client_gone(&mut stream, &mut read, watch)).await;
        self.hand_over(stream, read, true, Some(Parked { verdict, arrived, _in_flight: in_flight }), shutdown).await
    }

    async fn cleanup(&self) {
        ServerApp::cleanup(&*self.proxy).await;
    }
}

/// What the first bytes of a connection are.
#[derive(Debug)]
enum Head {
    /// A complete HTTP/1 request head.
    Request(Box<RequestHeader>),
    /// Over [`MAX_HEAD`] bytes, or over [`MAX_HEADERS`] headers.
    TooLarge,
    /// Not an HTTP/1 request head (the HTTP/2 preface, or malformed).
    Other,
}

/// Reads until `read` holds a complete request head (bytes after it stay in `read`).
async fn read_head<S: AsyncRead + Unpin + ?Sized>(stream: &mut S, read: &mut Vec<u8>) -> io::Result<Head> {
    loop {
        if read.len() == read.capacity() {
            read.reserve((read.capacity()).min(MAX_HEAD - read.len()).max(1));
        }
        if stream.read_buf(read).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        match parse_head(read) {
            Parse::Partial if read.len() >= MAX_HEAD => return Ok(Head::TooLarge),
            Parse::Partial => {}
            Parse::Done(head) => return Ok(head),
        }
    }
}

/// A parse of the bytes read so far.
enum Parse {
    /// More bytes are needed.
    Partial,
    /// Decided.
    Done(Head),
}

fn parse_head(bytes: &[u8]) -> Parse {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(bytes) {
        Ok(httparse::Status::Partial) => Parse::Partial,
        Err(httparse::Error::TooManyHeaders) => Parse::Done(Head::TooLarge),
        Err(_) => Parse::Done(Head::Other),
        Ok(httparse::Status::Complete(len)) if len > MAX_HEAD => Parse::Done(Head::TooLarge),
        Ok(httparse::Status::Complete(_)) => Parse::Done(to_request_header(&req).map_or(Head::Other, |head| Head::Request(Box::new(head)))),
    }
}

/// The inquiry of a complete request head, as the parker reads it (for the fuzz targets).
#[cfg(feature = "fuzzing")]
pub(crate) fn inquiry_of_head(bytes: &[u8]) -> Option<crate::gate::Inquiry> {
    match parse_head(bytes) {
        Parse::Done(Head::Request(req)) => Some(inquiry_of(&req)),
        _ => None,
    }
}

fn to_request_header(req: &httparse::Request<'_, '_>) -> Option<RequestHeader> {
    let mut head = RequestHeader::build(req.method?, req.path?.as_bytes(), Some(req.headers.len())).ok()?;
    if req.version == Some(0) {
        head.set_version(http::Version::HTTP_10);
    }
    for h in req.headers.iter() {
        head.append_header(h.name.to_string(), h.value).ok()?;
    }
    Some(head)
}

/// Whether the request declares a body (content-length > 0 or chunked).
pub(crate) fn declares_body(req: &RequestHeader) -> bool {
    let h = &req.headers;
    h.contains_key(http::header::TRANSFER_ENCODING)
        || h.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() != "0")
}

/// Whether the request asks for a protocol upgrade (WebSocket): its connection stays open with nothing
/// more to send until the answer, so a quiet socket says nothing.
fn is_upgrade(req: &RequestHeader) -> bool {
    req.version == http::Version::HTTP_11 && req.headers.contains_key(http::header::UPGRADE)
}

/// Resolves when the client closes a parked connection. Bytes it sends meanwhile (a pipelined request)
/// are kept for the proxy, and watching stops; with `watch` false (a body or an upgrade may follow), it
/// never resolves.
async fn client_gone(stream: &mut Stream, read: &mut Vec<u8>, watch: bool) {
    if watch {
        read.reserve(1);
        match stream.read_buf(read).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
    std::future::pending::<()>().await;
}

/// A connection handed from the parker to the proxy: the bytes the parker read come first, then the
/// socket; the parked verdict waits for the proxy to take it ([`Unparked::take`]).
#[derive(Debug)]
pub(crate) struct Unparked {
    inner: Stream,
    replay: Vec<u8>,
    pos: usize,
    /// The replay starts with a whole HTTP/1 request head.
    http1: bool,
    parked: Mutex<Option<Parked>>,
}

impl Unparked {
    fn new(inner: Stream, replay: Vec<u8>, http1: bool, parked: Option<Parked>) -> Unparked {
        Unparked { inner, replay, pos: 0, http1, parked: Mutex::new(parked) }
    }

    /// The verdict of the connection's parked first request, once.
    pub(crate) fn take(stream: &Stream) -> Option<Parked> {
        (**stream).as_any().downcast_ref::<Unparked>().and_then(|u| u.parked.lock().take())
    }
}

impl AsyncRead for Unparked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.pos < this.replay.len() {
            let n = buf.remaining().min(this.replay.len() - this.pos);
            buf.put_slice(&this.replay[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.replay.len() {
                this.replay = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Unparked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for Unparked {
    async fn shutdown(&mut self) {
        Shutdown::shutdown(&mut *self.inner).await;
    }
}

impl UniqueID for Unparked {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for Unparked {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<pingora::protocols::tls::SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for Unparked {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for Unparked {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest);
    }
}

impl GetSocketDigest for Unparked {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest);
    }
}

#[async_trait]
impl Peek for Unparked {
    /// The replayed bytes (read further from the socket until they fill `buf`, unless they are a whole
    /// HTTP/1 head, which no more bytes may follow), else the socket's own peek.
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        if self.pos == self.replay.len() {
            return self.inner.try_peek(buf).await;
        }
        while !self.http1 && self.replay.len() - self.pos < buf.len() {
            self.replay.reserve(buf.len());
            if self.inner.read_buf(&mut self.replay).await? == 0 {
                break;
            }
        }
        let rest = &self.replay[self.pos..];
        let n = buf.len().min(rest.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
