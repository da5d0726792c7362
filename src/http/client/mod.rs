//! A small HTTP/1.1 client on async-io: one keep-alive connection, one
//! request at a time (or pipelined: [`Client::send_pipelined`] and
//! [`Client::receive`]), a deadline on each request.
//!
//! Responses are parsed with httparse (status line and headers) and its
//! chunk-size parser; bodies may be `Content-Length`, chunked, or delimited by
//! the connection closing. Only the first [`BODY_KEEP`] bytes of a body are
//! kept (an engine's answer is a short XML document); a longer body ends the
//! read there and the connection is closed, so a 10 MB or endless answer
//! costs neither memory nor time. A response that is not HTTP is an error,
//! never a panic. Any error closes the connection; the next request opens a
//! new one, resolving the host again (see `crate::http::resolve`).
//!
//! With [`Client::with_transport`] (TLS) the connection is HTTPS (rustls, `crate::http::tls`),
//! the handshake inside the request's deadline; a failed handshake or
//! certificate check is [`HttpError::Tls`] with rustls's reason. With
//! [`Client::with_auth`] each request carries `Authorization` from a
//! [`Authorize`] (the credential, from `auth`); a 401 to a bearer token fetches a new token and sends
//! the request once more. The header is never logged or put in an error.

use super::Authorize;
use async_io::{Async, Timer};
use futures_lite::{future, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

pub use crate::limits::RESPONSE_BODY_KEEP as BODY_KEEP;
use crate::limits::RESPONSE_HEADERS_MAX as HEADERS_MAX;
pub use crate::limits::RESPONSE_HEAD_MAX as HEAD_MAX;
use crate::limits::RESPONSE_READ_STEP as READ_STEP;

mod read;
use read::{read_response, ReadError::Failed, ReadError::Stale};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// The body's first [`BODY_KEEP`] bytes.
    pub body: Vec<u8>,
    /// The body was longer than what is kept.
    pub truncated: bool,
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Debug)]
pub enum HttpError {
    /// The host name did not resolve.
    Resolve(io::Error),
    /// No address of the host accepted a connection.
    Connect(io::Error),
    /// The request did not complete within its deadline.
    Timeout(Duration),
    /// Reading or writing failed, or the peer closed mid-response.
    Io(io::Error),
    /// The answer is not HTTP/1.x.
    Malformed(String),
    /// The TLS handshake or the certificate check failed (rustls's reason).
    Tls(String),
    /// No credentials could be had (e.g. the token endpoint refused).
    Auth(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Resolve(e) => write!(f, "cannot resolve: {e}"),
            HttpError::Connect(e) => write!(f, "cannot connect: {e}"),
            HttpError::Timeout(t) => write!(f, "no complete answer within {} ms", t.as_millis()),
            HttpError::Io(e) => write!(f, "connection failed: {e}"),
            HttpError::Malformed(m) => write!(f, "not an HTTP answer: {m}"),
            HttpError::Tls(m) => write!(f, "TLS: {m}"),
            HttpError::Auth(m) => write!(f, "credentials: {m}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// A connection, plain or TLS.
pub enum Stream {
    Plain(Async<TcpStream>),
    #[cfg(feature = "tls")]
    Tls(Box<futures_rustls::client::TlsStream<Async<TcpStream>>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_close(cx),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}

/// How a client reaches its server: plain TCP, or TLS checked against `host`.
#[derive(Clone, Default)]
pub enum Transport {
    #[default]
    Plain,
    #[cfg(feature = "tls")]
    Tls(crate::http::tls::TlsConnector),
}

impl Transport {
    /// `https` or `http`, for messages.
    pub fn scheme(&self) -> &'static str {
        match self {
            Transport::Plain => "http",
            #[cfg(feature = "tls")]
            Transport::Tls(_) => "https",
        }
    }
}

struct Conn {
    stream: Stream,
    buf: Vec<u8>,
    start: usize,
    /// Requests this connection served (0: fresh).
    served: u64,
}

impl Conn {
    fn avail(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Reads more; `Ok(0)` is the peer closing.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + READ_STEP, 0);
        let r = self.stream.read(&mut self.buf[len..]).await;
        self.buf.truncate(len + *r.as_ref().unwrap_or(&0));
        r
    }

    async fn fill_or_eof(&mut self, what: &str) -> Result<(), HttpError> {
        match self.fill().await {
            Ok(0) => Err(HttpError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the engine closed the connection {what}"),
            ))),
            Ok(_) => Ok(()),
            Err(e) => Err(HttpError::Io(e)),
        }
    }

    /// Consumes `n` body bytes, keeping what fits in `out`.
    async fn body_bytes(&mut self, mut n: u64, out: &mut Body) -> Result<(), HttpError> {
        while n > 0 {
            if self.avail().is_empty() {
                self.fill_or_eof("mid-body").await?;
            }
            let take = (self.avail().len() as u64).min(n) as usize;
            out.keep(&self.buf[self.start..self.start + take]);
            self.start += take;
            n -= take as u64;
            if out.truncated {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Reads a line ending in CRLF and returns its length (without CRLF).
    async fn line(&mut self) -> Result<usize, HttpError> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', self.avail()) {
                self.start += i + 1;
                return Ok(i);
            }
            if self.avail().len() > HEAD_MAX {
                return Err(HttpError::Malformed("a chunk line too long".into()));
            }
            self.fill_or_eof("mid-body").await?;
        }
    }
}

struct Body {
    data: Vec<u8>,
    truncated: bool,
}

impl Body {
    fn keep(&mut self, b: &[u8]) {
        let room = BODY_KEEP - self.data.len();
        if b.len() > room {
            self.truncated = true;
        }
        self.data.extend_from_slice(&b[..b.len().min(room)]);
    }
}

enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// One engine's HTTP connection.
pub struct Client {
    host: String,
    port: u16,
    authority: String,
    conn: Option<Conn>,
    head: Vec<u8>,
    transport: Transport,
    auth: Option<Rc<dyn Authorize>>,
    accept: &'static str,
    /// Where to connect instead of where `host` resolves (`Host` and TLS
    /// still name `host`).
    connect_to: Option<(String, u16)>,
    /// Pipelined requests sent whose answers are not read yet (`send_pipelined`).
    pending: usize,
}

impl Client {
    pub fn new(host: &str, port: u16) -> Client {
        Client {
            host: host.to_string(),
            port,
            authority: crate::http::resolve::authority(host, port),
            conn: None,
            head: Vec::new(),
            transport: Transport::Plain,
            auth: None,
            accept: "application/xml",
            connect_to: None,
            pending: 0,
        }
    }

    /// Connects to `addr` instead of where the host resolves (like `curl
    /// --resolve`): for an engine behind an ingress not yet in DNS.
    pub fn with_connect(mut self, addr: Option<(String, u16)>) -> Client {
        self.connect_to = addr;
        self
    }

    /// The `Accept` header (default `application/xml`, what ESP answers in).
    pub fn with_accept(mut self, accept: &'static str) -> Client {
        self.accept = accept;
        self
    }

    /// Connects over `t` (TLS: HTTPS to `host`).
    pub fn with_transport(mut self, t: Transport) -> Client {
        self.transport = t;
        self
    }

    /// Sends `Authorization` from `c` with every request.
    pub fn with_auth<A: Authorize + 'static>(mut self, c: Option<Rc<A>>) -> Client {
        self.auth = c.map(|a| a as Rc<dyn Authorize>);
        self
    }

    /// `host:port` as used in messages.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Drops the connection (the next request opens a new one), and with
    /// it any pipelined answers not read yet.
    pub fn close(&mut self) {
        self.conn = None;
        self.pending = 0;
    }

    /// Pipelined requests whose answers are not read yet.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Pipelining (RFC 9112 §9.3.2: a server answers the requests of one
    /// connection in the order they came): writes one request, within
    /// `timeout`, without reading its answer; [`Client::receive`] reads
    /// the answers in order. Any error drops the connection and every
    /// answer outstanding.
    pub async fn send_pipelined(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
        timeout: Duration,
    ) -> Result<(), HttpError> {
        let auth = self.auth.clone();
        let r = future::or(
            async {
                let authz = authorization(&auth, timeout).await?;
                self.build_head(method, path, content_type, authz.as_deref(), body.len());
                // A kept-alive connection the engine closed while idle: once
                // more on a new one, when nothing else is outstanding on it.
                for attempt in 0..2 {
                    if self.conn.is_none() {
                        self.pending = 0;
                        self.connect(timeout).await?;
                    }
                    let conn = self.conn.as_mut().expect("connected above");
                    let stale_retry = conn.served > 0 && self.pending == 0 && attempt == 0;
                    match send(conn, &self.head, body, self.pending > 0).await {
                        Ok(()) => {
                            self.pending += 1;
                            return Ok(());
                        }
                        Err(_) if stale_retry => self.conn = None,
                        Err(e) => return Err(HttpError::Io(e)),
                    }
                }
                unreachable!("the second attempt returns")
            },
            expire(timeout),
        )
        .await;
        if r.is_err() {
            self.close();
        }
        r
    }

    /// The answer to the oldest pipelined request not answered yet, within
    /// `timeout`.
    pub async fn receive(&mut self, timeout: Duration) -> Result<Response, HttpError> {
        let r = future::or(
            async {
                let Some(conn) = self.conn.as_mut().filter(|_| self.pending > 0) else {
                    return Err(HttpError::Io(io::Error::new(
                        io::ErrorKind::NotConnected,
                        "no request is waiting for an answer",
                    )));
                };
                match read_response(conn, false).await {
                    Ok((resp, keep)) => {
                        conn.served += 1;
                        self.pending -= 1;
                        if !keep {
                            // Answers still outstanding are lost with it.
                            self.close();
                        }
                        Ok(resp)
                    }
                    Err(Failed(e)) | Err(Stale(e)) => Err(e),
                }
            },
            expire(timeout),
        )
        .await;
        if r.is_err() {
            self.close();
        }
        r
    }

    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Sends one request and reads its answer, all within `timeout`.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        let auth = self.auth.clone();
        let r = future::or(
            async {
                let authz = authorization(&auth, timeout).await?;
                let r = self
                    .exchange(method, path, content_type, body, authz.as_deref(), timeout)
                    .await;
                match (&r, &auth) {
                    (Ok(resp), Some(a)) if resp.status == 401 && a.refreshable() => {
                        // The token expired early or was revoked: once more with a new one.
                        log::info!(
                            "{}: 401 to the bearer token; fetching a new one and retrying once",
                            self.authority
                        );
                        a.invalidate();
                        let authz = a.header(timeout).await?;
                        self.exchange(method, path, content_type, body, Some(&authz), timeout)
                            .await
                    }
                    _ => r,
                }
            },
            expire(timeout),
        )
        .await;
        if r.is_err() {
            self.conn = None;
        }
        r
    }

    /// [`Client::request`] with this `Authorization` value instead of the
    /// client's credential (the token request itself).
    pub async fn request_authorized(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
        authz: &str,
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        let r = future::or(
            self.exchange(method, path, content_type, body, Some(authz), timeout),
            expire(timeout),
        )
        .await;
        if r.is_err() {
            self.conn = None;
        }
        r
    }

    async fn connect(&mut self, timeout: Duration) -> Result<(), HttpError> {
        let (host, port) = match &self.connect_to {
            Some((h, p)) => (h.as_str(), *p),
            None => (self.host.as_str(), self.port),
        };
        let addrs = crate::http::resolve::resolve(host, port, timeout)
            .await
            .map_err(HttpError::Resolve)?;
        let mut last = None;
        for a in addrs {
            match connect_one(a).await {
                Ok(tcp) => {
                    let stream = match &self.transport {
                        Transport::Plain => Stream::Plain(tcp),
                        #[cfg(feature = "tls")]
                        Transport::Tls(c) => {
                            let name = crate::http::tls::server_name(&self.host)
                                .map_err(HttpError::Tls)?;
                            let s = c.connect(name, tcp).await.map_err(|e| {
                                HttpError::Tls(format!("handshake with {}: {e}", self.authority))
                            })?;
                            Stream::Tls(Box::new(s))
                        }
                    };
                    self.conn = Some(Conn {
                        stream,
                        buf: Vec::with_capacity(READ_STEP),
                        start: 0,
                        served: 0,
                    });
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        Err(HttpError::Connect(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "no address")
        })))
    }

    async fn exchange(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
        authz: Option<&str>,
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        // Answers outstanding on this connection would come first.
        if self.pending > 0 {
            self.close();
        }
        self.build_head(method, path, content_type, authz, body.len());
        // A kept-alive connection the engine closed while idle fails at once
        // with nothing read: that, and only that, is retried on a new one.
        for attempt in 0..2 {
            if self.conn.is_none() {
                self.connect(timeout).await?;
            }
            let conn = self.conn.as_mut().expect("connected above");
            let reused = conn.served > 0;
            match send(conn, &self.head, body, false).await {
                Ok(()) => {}
                Err(_) if reused && attempt == 0 => {
                    self.conn = None;
                    continue;
                }
                Err(e) => return Err(HttpError::Io(e)),
            }
            match read_response(conn, method == "HEAD").await {
                Ok((resp, keep)) => {
                    conn.served += 1;
                    if !keep {
                        self.conn = None;
                    }
                    return Ok(resp);
                }
                Err(Stale(_)) if reused && attempt == 0 => {
                    self.conn = None;
                }
                Err(Failed(e)) | Err(Stale(e)) => return Err(e),
            }
        }
        unreachable!("the second attempt returns")
    }
}

impl Client {
    /// The request head in `self.head`.
    fn build_head(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        authz: Option<&str>,
        body_len: usize,
    ) {
        self.head.clear();
        use std::io::Write;
        let _ = write!(
            self.head,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: edgecm/{}\r\nAccept: {}\r\n",
            self.authority,
            env!("CARGO_PKG_VERSION"),
            self.accept
        );
        if let Some(ct) = content_type {
            let _ = write!(self.head, "Content-Type: {ct}\r\n");
        }
        if let Some(a) = authz {
            let _ = write!(self.head, "Authorization: {a}\r\n");
        }
        if body_len > 0 || method == "PUT" || method == "POST" {
            let _ = write!(self.head, "Content-Length: {body_len}\r\n");
        }
        self.head.extend_from_slice(b"\r\n");
    }
}

/// The `Authorization` header's value, when the engine wants one.
async fn authorization(
    auth: &Option<Rc<dyn Authorize>>,
    timeout: Duration,
) -> Result<Option<String>, HttpError> {
    match auth {
        Some(a) => Ok(Some(a.header(timeout).await?)),
        None => Ok(None),
    }
}

async fn expire<T>(timeout: Duration) -> Result<T, HttpError> {
    Timer::after(timeout).await;
    Err(HttpError::Timeout(timeout))
}

async fn connect_one(a: SocketAddr) -> io::Result<Async<TcpStream>> {
    let s = Async::<TcpStream>::connect(a).await?;
    s.get_ref().set_nodelay(true)?;
    Ok(s)
}

/// Writes a request; `keep_buffered`: answers to earlier pipelined
/// requests may be in the read buffer already.
async fn send(conn: &mut Conn, head: &[u8], body: &[u8], keep_buffered: bool) -> io::Result<()> {
    if !keep_buffered {
        conn.buf.clear();
        conn.start = 0;
    }
    conn.stream.write_all(head).await?;
    if !body.is_empty() {
        conn.stream.write_all(body).await?;
    }
    conn.stream.flush().await
}
