//! A small HTTP/1.1 server on async-io, for the admin API and the stand-in
//! engine: bounded in every dimension a hostile client could stretch.
//!
//! - request line and headers at most [`Limits::head_max`] bytes (431), at
//!   most [`HEADERS_MAX`] headers (431);
//! - a body only with `Content-Length`, at most [`Limits::body_max`] (413);
//!   `Transfer-Encoding` is refused (411: give a length);
//! - the whole request, head and body, must arrive within
//!   [`Limits::read_timeout`] of its first byte, and a kept-alive connection
//!   idle that long is closed: a slow or silent client holds a connection
//!   for a bounded time (408 when a request was started);
//! - at most [`Limits::conns_max`] connections at once; one more is answered
//!   503 and closed. The last one is kept for a client on loopback (an
//!   operator on the gateway reaches the admin API whatever the network
//!   sends it: [`admits`]).
//!
//! [`parse_head`] is pure (a fuzz target drives it). Optional TLS (the
//! stand-in's `-tls-cert`): the handshake must also finish within the read
//! time-out.

use async_executor::LocalExecutor;

/// Whether a new connection is served with `open` already open: up to
/// `max`, the last one only for a peer on loopback.
pub fn admits(open: usize, max: usize, loopback: bool) -> bool {
    open + 1 < max || (open < max && loopback)
}
use async_io::{Async, Timer};
use futures_lite::{future, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::time::Duration;

/// What TLS a server speaks (nothing in a plaintext-only build).
#[cfg(feature = "tls")]
pub type Acceptor = crate::http::tls::TlsAcceptor;
#[cfg(not(feature = "tls"))]
#[derive(Clone)]
pub enum Acceptor {}

pub use crate::limits::REQUEST_HEADERS_MAX as HEADERS_MAX;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub head_max: usize,
    pub body_max: usize,
    pub read_timeout: Duration,
    pub conns_max: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            head_max: 8 * 1024,
            body_max: 64 * 1024,
            read_timeout: Duration::from_secs(10),
            conns_max: 32,
        }
    }
}

/// A request as handed to the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub url: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    pub peer: Option<SocketAddr>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn text(status: u16, message: &str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", format!("{message}\n"))
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}

/// A parsed head: method, URL, lower-cased headers, body length, keep-alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub length: usize,
    pub keep_alive: bool,
    /// Bytes of `buf` the head took.
    pub used: usize,
}

/// Parses a request head from the start of `buf`: `Ok(None)` wants more
/// bytes; `Err` is the answer to send before closing.
pub fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<Head>, Response> {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut r = httparse::Request::new(&mut headers);
    let used = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.head_max {
                return Err(Response::text(
                    431,
                    &format!(
                        "request line and headers over {} bytes; accepted: at most that",
                        limits.head_max
                    ),
                ));
            }
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Response::text(
                431,
                &format!("more than {HEADERS_MAX} headers; accepted: at most that"),
            ))
        }
        Err(e) => {
            return Err(Response::text(
                400,
                &format!("not an HTTP/1.x request: {e}"),
            ))
        }
    };
    if used > limits.head_max {
        return Err(Response::text(
            431,
            &format!(
                "request line and headers over {} bytes; accepted: at most that",
                limits.head_max
            ),
        ));
    }
    let method = r.method.unwrap_or("").to_string();
    let url = r.path.unwrap_or("").to_string();
    let mut keep_alive = r.version == Some(1);
    let mut length: Option<usize> = None;
    let mut out = Vec::with_capacity(r.headers.len());
    for h in r.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        match name.as_str() {
            "content-length" => {
                let v = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .ok_or_else(|| {
                        Response::text(400, "Content-Length is not a number; accepted: digits")
                    })?;
                if length.is_some_and(|l| l as u64 != v) {
                    return Err(Response::text(400, "two different Content-Length headers"));
                }
                if v > limits.body_max as u64 {
                    return Err(Response::text(
                        413,
                        &format!(
                            "{method} {url}: the body is over {} bytes; accepted: at most that",
                            limits.body_max
                        ),
                    ));
                }
                length = Some(v as usize);
            }
            "transfer-encoding" => {
                return Err(Response::text(
                    411,
                    "Transfer-Encoding is not accepted; accepted: a body with Content-Length",
                ))
            }
            "connection" => keep_alive = connection_keeps(h.value, keep_alive),
            _ => {}
        }
        out.push((name, h.value.to_vec()));
    }
    Ok(Some(Head {
        method,
        url,
        headers: out,
        length: length.unwrap_or(0),
        keep_alive,
        used,
    }))
}

/// Whether a `Connection` header value keeps the connection open, from
/// what the HTTP version implies (`keep`); the engine client uses it too.
pub fn connection_keeps(value: &[u8], mut keep: bool) -> bool {
    for t in value.split(|&b| b == b',') {
        let t = t.trim_ascii();
        if t.eq_ignore_ascii_case(b"close") {
            keep = false;
        } else if t.eq_ignore_ascii_case(b"keep-alive") {
            keep = true;
        }
    }
    keep
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// The bytes of `r` on the wire.
pub fn encode(r: &Response, keep_alive: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(r.body.len() + 160);
    use std::io::Write;
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len()
    );
    for (n, v) in &r.headers {
        let _ = write!(out, "{n}: {v}\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&r.body);
    out
}

/// Reads one request within the limits; `Ok(None)`: the client closed (or
/// stayed idle) between requests.
async fn read_request<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
    limits: &Limits,
) -> Result<Option<(Head, Vec<u8>)>, Response> {
    let mut chunk = [0u8; 4096];
    let head = loop {
        if !buf.is_empty() {
            if let Some(h) = parse_head(buf, limits)? {
                break h;
            }
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) if buf.is_empty() => return Ok(None),
            Ok(0) => return Err(Response::text(400, "the request ends inside its headers")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(Response::text(400, &format!("reading the request: {e}"))),
        }
    };
    buf.drain(..head.used);
    while buf.len() < head.length {
        match s.read(&mut chunk).await {
            Ok(0) => return Err(Response::text(400, "the request ends inside its body")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(Response::text(400, &format!("reading the body: {e}"))),
        }
    }
    let body: Vec<u8> = buf.drain(..head.length).collect();
    Ok(Some((head, body)))
}

/// Serves one connection until it closes, errs, idles or `handler` asks.
async fn connection<S, F, Fut>(mut s: S, peer: Option<SocketAddr>, limits: Limits, handler: Rc<F>)
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let mut buf = Vec::new();
    loop {
        let read = future::or(read_request(&mut s, &mut buf, &limits), async {
            Timer::after(limits.read_timeout).await;
            Err(Response::text(
                408,
                &format!(
                    "the request did not arrive within {} ms",
                    limits.read_timeout.as_millis()
                ),
            ))
        })
        .await;
        let (head, body) = match read {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(resp) => {
                // An idle kept-alive connection just closes; a started request is told why.
                if resp.status != 408 || !buf.is_empty() {
                    let _ = s.write_all(&encode(&resp, false)).await;
                    let _ = s.flush().await;
                }
                return;
            }
        };
        let keep = head.keep_alive;
        let resp = handler(Request {
            method: head.method,
            url: head.url,
            headers: head.headers,
            body,
            peer,
        })
        .await;
        if s.write_all(&encode(&resp, keep)).await.is_err() || s.flush().await.is_err() || !keep {
            let _ = s.close().await;
            return;
        }
    }
}

/// Accepts on `listener` and serves each connection on `ex` until the
/// listener fails.
pub async fn serve<F, Fut>(
    ex: Rc<LocalExecutor<'static>>,
    listener: TcpListener,
    limits: Limits,
    tls: Option<Acceptor>,
    handler: F,
) -> io::Result<()>
where
    F: Fn(Request) -> Fut + 'static,
    Fut: Future<Output = Response> + 'static,
{
    let listener = Async::new(listener)?;
    let handler = Rc::new(handler);
    let open = Rc::new(Cell::new(0usize));
    loop {
        let (stream, peer): (Async<TcpStream>, SocketAddr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
            Err(e) => {
                // Out of descriptors: wait a little rather than spin.
                log::warn!("HTTP server: accept: {e}");
                Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.get_ref().set_nodelay(true);
        if !admits(open.get(), limits.conns_max, peer.ip().is_loopback()) {
            let mut s = stream;
            ex.spawn(async move {
                let busy = Response::text(
                    503,
                    "too many connections at once; accepted: fewer, try again",
                );
                let _ = future::or(
                    async {
                        let _ = s.write_all(&encode(&busy, false)).await;
                    },
                    async {
                        Timer::after(Duration::from_secs(1)).await;
                    },
                )
                .await;
            })
            .detach();
            continue;
        }
        open.set(open.get() + 1);
        let (h, o) = (handler.clone(), open.clone());
        let tls = tls.clone();
        ex.spawn(async move {
            if let Some(acceptor) = tls {
                #[cfg(not(feature = "tls"))]
                match acceptor {}
                #[cfg(feature = "tls")]
                {
                    let hs = future::or(async { acceptor.accept(stream).await.map(Some) }, async {
                        Timer::after(limits.read_timeout).await;
                        Ok(None)
                    })
                    .await;
                    match hs {
                        Ok(Some(s)) => connection(s, Some(peer), limits, h).await,
                        Ok(None) => log::debug!("HTTPS: {peer}: no handshake within the time-out"),
                        Err(e) => log::info!("HTTPS: {peer}: handshake failed: {e}"),
                    }
                    o.set(o.get() - 1);
                    return;
                }
            }
            connection(stream, Some(peer), limits, h).await;
            o.set(o.get() - 1);
        })
        .detach();
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_last_connection_is_kept_for_loopback() {
        assert!(admits(0, 32, false));
        assert!(admits(30, 32, false));
        assert!(
            !admits(31, 32, false),
            "the last slot is not for the network"
        );
        assert!(admits(31, 32, true), "it is for loopback");
        assert!(!admits(32, 32, true));
    }

    use super::*;

    fn l() -> Limits {
        Limits {
            head_max: 200,
            body_max: 10,
            ..Limits::default()
        }
    }

    #[test]
    fn heads_are_parsed_and_bounded() {
        let h = parse_head(
            b"PUT /a HTTP/1.1\r\nContent-Length: 3\r\nX-A: b\r\n\r\nabc",
            &l(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (h.method.as_str(), h.url.as_str(), h.length),
            ("PUT", "/a", 3)
        );
        assert!(h.keep_alive);
        assert_eq!(h.used, 46);
        assert!(parse_head(b"GET / HTTP/1.1\r\nX: y", &l())
            .unwrap()
            .is_none());
        let big = format!("GET / HTTP/1.1\r\nX: {}", "y".repeat(300));
        assert_eq!(parse_head(big.as_bytes(), &l()).unwrap_err().status, 431);
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "A: b\r\n".repeat(70));
        let big = Limits {
            head_max: 10_000,
            ..l()
        };
        assert_eq!(parse_head(many.as_bytes(), &big).unwrap_err().status, 431);
        let e = parse_head(b"PUT / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", &l()).unwrap_err();
        assert_eq!(e.status, 413);
        let e = parse_head(
            b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            &l(),
        )
        .unwrap_err();
        assert_eq!(e.status, 411);
        assert_eq!(
            parse_head(b"\x00\x01 nonsense\r\n\r\n", &l())
                .unwrap_err()
                .status,
            400
        );
        let h = parse_head(b"GET / HTTP/1.0\r\n\r\n", &l())
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
    }

    /// A server on 127.0.0.1:0 on its own thread, answering 200 "hi".
    fn server(limits: Limits) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let ex = Rc::new(LocalExecutor::new());
            let h = |_rq: Request| async { Response::text(200, "hi") };
            let _ = async_io::block_on(ex.run(serve(ex.clone(), l, limits, None, h)));
        });
        port
    }

    /// Sends `req` and reads until the server closes (bounded by a socket time-out).
    fn exchange(port: u16, req: &[u8]) -> String {
        use std::io::{Read, Write};
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(req).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn hostile_clients_get_bounded_answers() {
        let port = server(Limits {
            head_max: 256,
            body_max: 16,
            // long enough that the held connections below stay open under qemu
            read_timeout: Duration::from_millis(2000),
            conns_max: 2,
        });
        let ok = exchange(port, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(
            ok.starts_with("HTTP/1.1 200 OK\r\n") && ok.ends_with("hi\n"),
            "{ok}"
        );
        // Keep-alive: two requests on one connection, then the idle time-out closes it.
        let two = exchange(port, b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n");
        assert_eq!(two.matches("200 OK").count(), 2, "{two}");
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(400));
        assert!(exchange(port, big.as_bytes()).starts_with("HTTP/1.1 431 "));
        let body = b"PUT / HTTP/1.1\r\nContent-Length: 17\r\n\r\n01234567890123456";
        assert!(exchange(port, body).starts_with("HTTP/1.1 413 "));
        // A slow client: half a request, then nothing.
        let slow = exchange(port, b"GET / HTTP/1.1\r\nHost: x");
        assert!(slow.starts_with("HTTP/1.1 408 "), "{slow}");
        // Over the connection limit: 503 while two others are held open.
        let held: Vec<TcpStream> = (0..2)
            .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
            .collect();
        // The server counts a connection once it accepted it: one request
        // on each held connection makes sure both were.
        for mut h in &held {
            use std::io::{Read, Write};
            h.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
            h.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut b = [0u8; 64];
            assert!(h.read(&mut b).unwrap() > 0);
        }
        let busy = exchange(port, b"GET / HTTP/1.1\r\n\r\n");
        assert!(busy.starts_with("HTTP/1.1 503 "), "{busy}");
        drop(held);
    }

    proptest::proptest! {
        #[test]
        fn parse_head_never_panics(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = parse_head(&b, &l());
        }
    }
}
