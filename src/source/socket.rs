//! Socket raw-sources: the byte stream of a TCP connection carries exactly
//! the file format (esp-protocol.md §6): newline-terminated CSV lines, or XML
//! or JSON events.
//!
//! - `fsname=host:port` ([`ConnectSource`]) connects out and reconnects with
//!   capped exponential backoff whenever the connection fails or closes.
//! - `fsname=:port` ([`ListenSource`]) listens on every IPv4 interface, as
//!   ESP does, for any number of clients (up to [`CLIENTS_MAX`]). Each client
//!   is its own stream: a partial line waits for its end, and a client whose
//!   input does not decode is disconnected with the reason logged (or, with
//!   `ignorecsvparseerrors`, the event is skipped), while the others go on.
//!
//! A socket has no offsets to go back to, so an event's position is the
//! source's own sequence number: it says how far the journal got, and a
//! restart numbers on from there. Events a peer sent that were not yet
//! journaled when the manager stopped are the peer's to send again.
//!
//! Host names are resolved with the C library's resolver on the calling
//! thread, once per connection attempt; use an address in `fsname` where a
//! slow DNS server must never hold the manager up.

use super::{Next, SourceError, Stats};
use crate::config::fs::{FsName, FsSource};
use crate::event::Position;
use crate::source::{Decoder, Layout, Reader, Step};
use async_io::{Async, Timer};
use futures_lite::future;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::task::Poll;
use std::time::Duration;

pub use crate::limits::SOCKET_CLIENTS_MAX as CLIENTS_MAX;

/// First and longest wait between connection attempts.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// How long one connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn decoder(name: &str, fs: &FsSource, layout: &Layout) -> Result<Decoder, SourceError> {
    let opts = super::options(fs).map_err(|e| SourceError(format!("source '{name}': {e}")))?;
    Ok(Decoder::new(layout.clone(), opts))
}

/// Reads once without blocking into `reader`. `Ok(None)`: nothing now.
fn read_some(stream: &Async<TcpStream>, reader: &mut Reader) -> io::Result<Option<usize>> {
    match reader.fill_with(|b| stream.get_ref().read(b)) {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
        Err(e) => Err(e),
    }
}

/// `fsname=host:port`: a client that reconnects.
#[derive(Debug)]
pub struct ConnectSource {
    name: String,
    host: String,
    port: u16,
    reader: Reader,
    stream: Option<Async<TcpStream>>,
    closed: bool,
    ignore_errors: bool,
    seq: u64,
    stats: Stats,
    backoff: Duration,
    idle_said: bool,
    max_events: Option<u64>,
}

impl ConnectSource {
    pub fn new(name: &str, fs: &FsSource, layout: Layout) -> Result<ConnectSource, SourceError> {
        let FsName::Connect { host, port } = &fs.fsname else {
            return Err(SourceError(format!(
                "source '{name}': fsname is not host:port"
            )));
        };
        Ok(ConnectSource {
            name: name.to_string(),
            host: host.clone(),
            port: *port,
            reader: Reader::new(decoder(name, fs, &layout)?),
            stream: None,
            closed: false,
            ignore_errors: fs.ignorecsvparseerrors,
            seq: 0,
            stats: Stats::default(),
            backoff: Duration::ZERO,
            idle_said: false,
            max_events: fs.maxevents,
        })
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Numbers events on after `pos` (a `Position::Socket`).
    pub fn resume_from(&mut self, pos: Position) {
        if let Position::Socket { seq } = pos {
            self.seq = seq;
        }
    }

    async fn connect(&mut self) -> io::Result<Async<TcpStream>> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port).to_socket_addrs()?.collect();
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        for a in addrs {
            let attempt = future::or(Async::<TcpStream>::connect(a), async {
                Timer::after(CONNECT_TIMEOUT).await;
                Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
            });
            match attempt.await {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The next event (position: the source's sequence number), `Idle` once
    /// before each wait, `Finished` only after `maxevents`.
    pub async fn next(&mut self) -> Result<Next<'_>, SourceError> {
        loop {
            if self.max_events.is_some_and(|m| self.stats.events >= m) {
                return Ok(Next::Finished);
            }
            if self.stream.is_none() {
                if !self.backoff.is_zero() {
                    if !self.idle_said {
                        self.idle_said = true;
                        return Ok(Next::Idle);
                    }
                    Timer::after(self.backoff).await;
                }
                match self.connect().await {
                    Ok(s) => {
                        log::info!(
                            "source '{}': connected to {}:{}",
                            self.name,
                            self.host,
                            self.port
                        );
                        self.stream = Some(s);
                        self.closed = false;
                        self.reader.restart(0);
                        self.backoff = Duration::ZERO;
                    }
                    Err(e) => {
                        self.backoff = (self.backoff * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
                        log::warn!(
                            "source '{}': cannot connect to {}:{}: {e}; next try in {} ms",
                            self.name,
                            self.host,
                            self.port,
                            self.backoff.as_millis()
                        );
                        continue;
                    }
                }
            }
            // A socket's last line counts only with its terminator: a line
            // cut by a disconnect is not an event (a file's last line is).
            match self.reader.next(false) {
                Step::Event { .. } => {
                    self.seq += 1;
                    self.stats.events += 1;
                    self.idle_said = false;
                    return Ok(Next::Event(
                        self.reader.event(),
                        Position::Socket { seq: self.seq },
                    ));
                }
                Step::Error { at, message, .. } => {
                    self.stats.errors += 1;
                    let e = SourceError(format!(
                        "source '{}': {}:{}: {at}: {message}",
                        self.name, self.host, self.port
                    ));
                    if !self.ignore_errors {
                        return Err(e);
                    }
                    log::warn!("{e} (skipped: ignorecsvparseerrors)");
                }
                Step::NeedMore if self.closed => {
                    if let Some((at, n)) = self.reader.drop_unfinished() {
                        self.stats.errors += 1;
                        log::warn!(
                            "source '{}': {}:{}: {at}: {n} bytes without their line end when the connection closed; not an event, dropped",
                            self.name,
                            self.host,
                            self.port
                        );
                    }
                    log::warn!(
                        "source '{}': {}:{} closed the connection; reconnecting",
                        self.name,
                        self.host,
                        self.port
                    );
                    self.stream = None;
                    self.backoff = BACKOFF_MIN;
                }
                Step::NeedMore => {
                    let stream = self.stream.as_ref().expect("connected");
                    match read_some(stream, &mut self.reader) {
                        Ok(Some(0)) => self.closed = true,
                        Ok(Some(n)) => self.stats.bytes += n as u64,
                        Ok(None) => {
                            if !self.idle_said {
                                self.idle_said = true;
                                return Ok(Next::Idle);
                            }
                            let _ = stream.readable().await;
                            self.idle_said = false;
                        }
                        Err(e) => {
                            log::warn!(
                                "source '{}': read from {}:{}: {e}",
                                self.name,
                                self.host,
                                self.port
                            );
                            self.closed = true;
                        }
                    }
                }
            }
        }
    }
}

#[derive(Debug)]
struct Client {
    stream: Async<TcpStream>,
    peer: SocketAddr,
    reader: Reader,
    /// The peer closed its side: decode what is left, then drop it.
    closed: bool,
}

/// `fsname=:port`: a server for any number of clients.
#[derive(Debug)]
pub struct ListenSource {
    name: String,
    listener: Async<TcpListener>,
    clients: Vec<Client>,
    template: Decoder,
    ignore_errors: bool,
    seq: u64,
    stats: Stats,
    /// Clients dropped for bad input.
    pub disconnected: u64,
    /// Where the scan for a buffered event starts: each client in turn.
    turn: usize,
    idle_said: bool,
    max_events: Option<u64>,
}

impl ListenSource {
    /// The address `fsname=:port` binds: every IPv4 interface, as ESP does.
    pub fn address(fs: &FsSource) -> Option<SocketAddr> {
        match fs.fsname {
            FsName::Listen { port } => Some(SocketAddr::new(
                fs.listen_address.unwrap_or(IpAddr::from([0, 0, 0, 0])),
                port,
            )),
            _ => None,
        }
    }

    /// Binds `addr` (normally [`ListenSource::address`]; tests use 127.0.0.1).
    pub fn bind(
        name: &str,
        fs: &FsSource,
        layout: Layout,
        addr: SocketAddr,
    ) -> Result<ListenSource, SourceError> {
        let listener = Async::<TcpListener>::bind(addr)
            .map_err(|e| SourceError(format!("source '{name}': cannot listen on {addr}: {e}")))?;
        Ok(ListenSource {
            name: name.to_string(),
            listener,
            clients: Vec::new(),
            template: decoder(name, fs, &layout)?,
            ignore_errors: fs.ignorecsvparseerrors,
            seq: 0,
            stats: Stats::default(),
            disconnected: 0,
            turn: 0,
            idle_said: false,
            max_events: fs.maxevents,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.get_ref().local_addr()
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    pub fn resume_from(&mut self, pos: Position) {
        if let Position::Socket { seq } = pos {
            self.seq = seq;
        }
    }

    fn accept_all(&mut self) {
        loop {
            match self.listener.get_ref().accept() {
                Ok((stream, peer)) => {
                    if self.clients.len() >= CLIENTS_MAX {
                        log::warn!(
                            "source '{}': refusing {peer}: already {CLIENTS_MAX} clients",
                            self.name
                        );
                        continue;
                    }
                    match Async::new(stream) {
                        Ok(stream) => {
                            log::info!("source '{}': client {peer} connected", self.name);
                            let dec = Decoder::new(
                                self.template.layout.clone(),
                                self.template.opts.clone(),
                            );
                            self.clients.push(Client {
                                stream,
                                peer,
                                reader: Reader::new(dec),
                                closed: false,
                            });
                        }
                        Err(e) => log::warn!("source '{}': client {peer}: {e}", self.name),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("source '{}': accept: {e}", self.name);
                    return;
                }
            }
        }
    }

    /// Decodes buffered input, client by client in turn, until an event:
    /// its client's index. Drops clients that closed or sent bad input.
    fn buffered_event(&mut self) -> Option<usize> {
        let mut i = 0;
        while i < self.clients.len() {
            let k = (self.turn + i) % self.clients.len();
            let c = &mut self.clients[k];
            match c.reader.next(false) {
                Step::Event { .. } => {
                    self.turn = k + 1;
                    return Some(k);
                }
                Step::Error { at, message, .. } => {
                    self.stats.errors += 1;
                    if self.ignore_errors {
                        log::warn!(
                            "source '{}': client {}: {at}: {message} (skipped: ignorecsvparseerrors)",
                            self.name,
                            c.peer
                        );
                    } else {
                        log::warn!(
                            "source '{}': client {}: {at}: {message}; disconnecting it",
                            self.name,
                            c.peer
                        );
                        self.disconnected += 1;
                        self.clients.swap_remove(k);
                        i = 0;
                    }
                }
                Step::NeedMore if c.closed => {
                    if let Some((at, n)) = c.reader.drop_unfinished() {
                        self.stats.errors += 1;
                        log::warn!(
                            "source '{}': client {}: {at}: {n} bytes without their line end when it disconnected; not an event, dropped",
                            self.name,
                            c.peer
                        );
                    }
                    log::info!("source '{}': client {} disconnected", self.name, c.peer);
                    self.clients.swap_remove(k);
                    i = 0;
                }
                Step::NeedMore => i += 1,
            }
        }
        None
    }

    /// Reads what every client has for us, without blocking: whether
    /// anything came (bytes, or a client closing).
    fn read_all(&mut self) -> bool {
        let mut progress = false;
        for c in &mut self.clients {
            if c.closed {
                continue;
            }
            match read_some(&c.stream, &mut c.reader) {
                Ok(Some(0)) => c.closed = true,
                Ok(Some(n)) => self.stats.bytes += n as u64,
                Ok(None) => continue,
                Err(e) => {
                    log::warn!("source '{}': client {}: {e}", self.name, c.peer);
                    c.closed = true;
                }
            }
            progress = true;
        }
        progress
    }

    /// Waits until the listener or a client is readable.
    async fn readable(&self) {
        future::poll_fn(|cx| {
            let mut ready = self.listener.poll_readable(cx).is_ready();
            for c in &self.clients {
                ready |= !c.closed && c.stream.poll_readable(cx).is_ready();
            }
            if ready {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// The next event from any client (position: the source's sequence
    /// number), `Idle` once before each wait; never `Finished` unless
    /// `maxevents` is reached.
    pub async fn next(&mut self) -> Result<Next<'_>, SourceError> {
        loop {
            if self.max_events.is_some_and(|m| self.stats.events >= m) {
                return Ok(Next::Finished);
            }
            if let Some(k) = self.buffered_event() {
                self.seq += 1;
                self.stats.events += 1;
                self.idle_said = false;
                let pos = Position::Socket { seq: self.seq };
                return Ok(Next::Event(self.clients[k].reader.event(), pos));
            }
            self.accept_all();
            if self.read_all() {
                continue;
            }
            if !self.idle_said {
                self.idle_said = true;
                return Ok(Next::Idle);
            }
            self.readable().await;
            self.idle_said = false;
        }
    }
}
