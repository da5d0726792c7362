//! `edgecm engine`: a stand-in for an ESP engine's REST API, for trials,
//! demos and tests. It is NOT an ESP engine: it runs no windows, it only
//! accepts projects, checks injected events against their source window's
//! schema, and records them.
//!
//! Served under `/eventStreamProcessing/v1` and/or `/SASESP` (`-base`):
//! - `GET server`: `<server engine="edgecm-standin" version="6.2" pubsub=".."/>`
//!   (a numeric version, as esppy parses it: esp-protocol.md §2.2);
//! - `GET projects`: `<projects><project name=".." state="running|stopped"/>..`;
//!   `GET projects/{name}`: the project's XML as loaded;
//! - `PUT projects/{name}?overwrite=&connectors=&start=`: loads a project
//!   under the URL's name (esppy's `load_project` names it so, §2.2).
//!   Without `overwrite=true` a project of that name is not replaced (400);
//!   with it, the old one and everything its windows held are gone, as in
//!   ESP. `start` (default true) runs it; `connectors` (default true, as in
//!   esppy) would start its connectors: a load that would start publisher
//!   connectors is logged in `DIR/wire.log` (`publishers_started=N`), since
//!   on a real engine they would publish the project's own input files;
//! - `PUT projects/{name}/state?value=running|stopped`; `DELETE projects/{name}`;
//! - `PUT windows/{p}/{cq}/{w}/state?value=injected`: an `<events>` body,
//!   decoded with the source decoder against the window's schema; only into
//!   a source window of a running project; "no such project or window" is
//!   answered with `-missing-status` (404, or 400: ESP's status for it is
//!   not documented, §2.3), a bad event with 400 (the whole block is
//!   refused). Accepted events are appended, in arrival order, to
//!   `DIR/{p}.{cq}.{w}.csv` as `opcode,flags,f1,...` lines, in the CSV
//!   dialect the sources read, before the answer is sent;
//! - `GET events/{p}/{cq}/{w}`: `<events count="N"/>`, what the window
//!   received since its project was loaded (a reload empties it).
//!
//! `DIR/wire.log` keeps, in arrival order, one line per load
//! (`load NAME overwrite=.. connectors=.. start=.. publishers=N
//! publishers_started=N`) and per accepted inject (`inject P/CQ/W N`, with
//! ` transaction` when the body was one `<transaction>`): the
//! tests read from it what an engine held before what.
//!
//! Like an ESP server, it forgets its projects when restarted. Recordings
//! survive a SIGKILL: each block is one `write` to a file opened for append,
//! and a line cut short by a kill is removed when the file is next opened
//! (its block was never acknowledged, so the manager sends it again).
//!
//! What each behaviour rests on (`shared/design/esp-protocol.md`; tags:
//! [C] seen in SAS's public code, [I] inferred from it, [G] guessed):
//!
//! | behaviour | section | tag |
//! |---|---|---|
//! | REST under `/eventStreamProcessing/v1` and `/SASESP`; a prefix before them behind a Viya ingress (`-base-prefix`) | §2.1, §1 | [C] |
//! | `GET server`: `version` (numeric: esppy parses it), `engine`, `pubsub` | §2.2 | [C] |
//! | `HEAD {base}/`: 200, 401 without credentials | §2.2 | [C] |
//! | `PUT projects/{name}` with `overwrite`, `connectors`, `start`; the URL names the project | §2.2 | [C] (esppy `load_project`) |
//! | no replacing without `overwrite=true`; `connectors`, `start` default true | §2.2 | [I] (esppy always sends them; its defaults are true) |
//! | a reload empties the project's windows | §2.2 | [I] (replace = a new project) |
//! | `GET projects`, `GET projectXml?name=`, `GET windows/{p}/{cq}/{w}?schema=true` | §2.2 | [C] |
//! | `PUT projects/{name}/state?value=running\|stopped`, `DELETE projects/{name}` | §2.2 | [C] |
//! | inject: `PUT windows/{p}/{cq}/{w}/state?value=injected`, XML `<events>[<transaction>]<event>` | §2.2, §5.4 | [C] |
//! | only into source windows of a running project | §9 | [I] |
//! | unknown fields, missing keys, values not of the field's type refused, the block whole | §5.1, §5.2 | [I] |
//! | no `Content-Type`, `application/xml` or `text/xml` accepted; others 415 | §2.2 | [I] (esppy sends none with a project, esp-connect `text/xml`) |
//! | error bodies `<response code><message><details><detail>` | §2.3 | [G] (esppy reads `message` and `details/detail` [C]) |
//! | the status for "no such project": 404, or 400 with `-missing-status` | §2.3 | [U] |
//! | `GET events/{p}/{cq}/{w}` with a `count` | §2.2 | [C] (its children are not kept here) |
//! | `PUT routers/{name}` with an `<esp-router>`, `GET routers`, `DELETE routers/{name}` (structure checked, nothing routed) | §2.2, §7.1 | [C] |
//! | forgets everything when restarted | §2.2 | [I] |
//!
//! Security switches: `-tls-cert/-tls-key` (HTTPS), `-require-basic
//! USER:PASS` and `-require-bearer TOKEN|@FILE` (401 without them; with
//! `@FILE` the accepted tokens are re-read from FILE at each request, so a
//! test can revoke a token mid-stream).
//!
//! Fault switches: `-delay-ms` before each answer, `-fail-every N` (every Nth
//! inject gets 503), `-reject-window NAME` (injects into it get 400),
//! `-refuse-loads` (every load gets 400, logged as `refused-load NAME`).

use crate::config::project::{self, Project};
use crate::engine::encode::escape;
use crate::source::{Decoder, Layout, Options, Reader, Step};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

/// Which base paths are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bases {
    V1,
    Sasesp,
    Both,
}

impl Bases {
    pub fn parse(s: &str) -> Result<Bases, String> {
        match s {
            "v1" => Ok(Bases::V1),
            "sasesp" => Ok(Bases::Sasesp),
            "both" => Ok(Bases::Both),
            _ => Err(format!("{s:?} is not accepted; accepted: v1, sasesp, both")),
        }
    }

    fn prefixes(self) -> &'static [&'static str] {
        match self {
            Bases::V1 => &["/eventStreamProcessing/v1/"],
            Bases::Sasesp => &["/SASESP/"],
            Bases::Both => &["/eventStreamProcessing/v1/", "/SASESP/"],
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub record: Option<PathBuf>,
    pub bases: Bases,
    pub delay: Duration,
    pub fail_every: u64,
    pub reject_window: Option<String>,
    /// How `date` and `stamp` values must look: None, the numbers ESP
    /// writes (seconds, microseconds since 1970); or this format only.
    pub dateformat: Option<String>,
    /// Reported as the `pubsub` attribute of `GET server`.
    pub pubsub: u16,
    /// `-tls-cert`, `-tls-key`: serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `-require-basic USER:PASS`.
    pub require_basic: Option<String>,
    /// `-require-bearer TOKEN|@FILE`.
    pub require_bearer: Option<String>,
    /// The status for "no such project or window" (`-missing-status`).
    pub missing_status: u16,
    /// Refuse every project load with 400 (`-refuse-loads`).
    pub refuse_loads: bool,
    /// Served under this path first (`-base-prefix`), like a Viya ingress's
    /// `/SASEventStreamProcessingServer/<project>`; empty: at the root.
    pub prefix: String,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            record: None,
            bases: Bases::Both,
            delay: Duration::ZERO,
            fail_every: 0,
            reject_window: None,
            dateformat: None,
            pubsub: 0,
            tls: None,
            require_basic: None,
            require_bearer: None,
            missing_status: 404,
            refuse_loads: false,
            prefix: String::new(),
        }
    }
}

struct WindowInfo {
    source: bool,
    /// The element name (`window-source`, ...).
    kind: String,
    /// `(name, type, key)` of each schema field.
    fields: Vec<(String, String, bool)>,
    decoder: Option<Decoder>,
    schema_error: Option<String>,
}

struct Loaded {
    xml: String,
    windows: BTreeMap<(String, String), WindowInfo>,
    running: bool,
    /// Events each window received since the load.
    held: BTreeMap<(String, String), u64>,
}

/// The stand-in's state; [`StandIn::handle`] answers one request.
pub struct StandIn {
    settings: Settings,
    projects: BTreeMap<String, Loaded>,
    files: BTreeMap<String, File>,
    injects: u64,
    /// Events recorded since start.
    pub events: u64,
    /// Project loads since start.
    pub loads: u64,
    /// Routers loaded (`PUT routers/{name}`), read with `config::router`.
    routers: BTreeMap<String, crate::config::router::Router>,
}

/// How a project is loaded (`PUT projects/{name}`'s parameters).
#[derive(Debug, Clone, Copy)]
struct Load {
    overwrite: bool,
    connectors: bool,
    start: bool,
}

/// An answer: status and XML body.
pub type Answer = (u16, String);

fn error(code: u16, message: &str, details: &[String]) -> Answer {
    let mut body = format!(
        "<response code=\"{code}\"><message>{}</message>",
        escape(message)
    );
    if !details.is_empty() {
        body.push_str("<details>");
        for d in details {
            body.push_str(&format!("<detail>{}</detail>", escape(d)));
        }
        body.push_str("</details>");
    }
    body.push_str("</response>");
    (code, body)
}

fn ok(message: &str) -> Answer {
    (
        200,
        format!(
            "<response code=\"0\"><message>{}</message></response>",
            escape(message)
        ),
    )
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Appends `opcode,flags,f1,...\n`: null is empty, text is quoted when it
/// holds a comma, quote, CR or LF, or is empty (so it is not read as null).
pub fn csv_line(e: &crate::source::EventView, out: &mut Vec<u8>) {
    out.push(e.opcode.letter() as u8);
    out.push(b',');
    out.push(e.flags.letter() as u8);
    for f in e.fields() {
        out.push(b',');
        let Some(v) = f else { continue };
        if v.is_empty() || v.iter().any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n')) {
            out.push(b'"');
            for &b in v {
                if b == b'"' {
                    out.push(b'"');
                }
                out.push(b);
            }
            out.push(b'"');
        } else {
            out.extend_from_slice(v);
        }
    }
    out.push(b'\n');
}

fn record(
    files: &mut BTreeMap<String, File>,
    dir: &Path,
    key: &str,
    lines: &[u8],
) -> io::Result<()> {
    if !files.contains_key(key) {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(key);
        let mut f = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        cut_partial_line(&mut f)?;
        files.insert(key.to_string(), f);
    }
    files.get_mut(key).expect("inserted above").write_all(lines)
}

/// Drops a last line without its newline (a write cut short by a kill).
fn cut_partial_line(f: &mut File) -> io::Result<()> {
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut keep = len;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let from = keep.saturating_sub(buf.len() as u64);
        let n = (keep - from) as usize;
        f.seek(SeekFrom::Start(from))?;
        f.read_exact(&mut buf[..n])?;
        if let Some(i) = memchr::memrchr(b'\n', &buf[..n]) {
            keep = from + i as u64 + 1;
            break;
        }
        if from == 0 {
            keep = 0;
            break;
        }
        keep = from;
    }
    if keep < len {
        log::warn!(
            "stand-in: dropping {} bytes of a line cut short",
            len - keep
        );
        f.set_len(keep)?;
    }
    Ok(())
}

/// Serves on `addr` until killed. Prints the bound address on stdout first.
pub fn serve(addr: std::net::SocketAddr, settings: Settings) -> io::Result<()> {
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    let bound = listener.local_addr()?;
    {
        let mut out = io::stdout().lock();
        let scheme = if settings.tls.is_some() {
            "https"
        } else {
            "http"
        };
        writeln!(out, "edgecm engine: a stand-in for an ESP engine (not an ESP engine), listening on {scheme}://{bound}")?;
        out.flush()?;
    }
    serve_on(listener, settings)
}

/// Serves on a bound listener until the process ends (the bench runs it on a thread).
pub fn serve_on(listener: std::net::TcpListener, settings: Settings) -> io::Result<()> {
    let tls = acceptor(&settings)?;
    let limits = crate::http::server::Limits {
        body_max: crate::limits::STANDIN_BODY_MAX,
        head_max: 16 * 1024,
        read_timeout: Duration::from_secs(30),
        conns_max: 256,
    };
    let delay = settings.delay;
    let guard = Rc::new(Guard {
        basic: settings
            .require_basic
            .as_ref()
            .map(|up| crate::auth::base64(up.as_bytes())),
        bearer: settings.require_bearer.clone(),
    });
    let s = Rc::new(RefCell::new(StandIn::new(settings)));
    let ex = Rc::new(async_executor::LocalExecutor::new());
    let handler = move |rq: crate::http::server::Request| {
        let (s, guard) = (s.clone(), guard.clone());
        async move {
            let (status, text) = if !guard.accepts(rq.header("authorization")) {
                log::debug!("stand-in: {} {} -> 401", rq.method, rq.url);
                error(401, "credentials required", &[])
            } else {
                let ct = rq.header("content-type");
                let (status, text) = s.borrow_mut().handle(&rq.method, &rq.url, ct, &rq.body);
                if status >= 400 {
                    log::debug!("stand-in: {} {} -> {status}", rq.method, rq.url);
                }
                (status, text)
            };
            if !delay.is_zero() {
                async_io::Timer::after(delay).await;
            }
            let r = crate::http::server::Response::new(status, "application/xml", text);
            if status == 401 {
                r.with_header(
                    "WWW-Authenticate",
                    "Basic realm=\"esp\", Bearer realm=\"esp\"",
                )
            } else {
                r
            }
        }
    };
    let server = crate::http::server::serve(ex.clone(), listener, limits, tls, handler);
    async_io::block_on(ex.run(server))
}

#[cfg(feature = "tls")]
fn acceptor(settings: &Settings) -> io::Result<Option<crate::http::server::Acceptor>> {
    match &settings.tls {
        Some((cert, key)) => crate::http::tls::server(cert, key)
            .map(Some)
            .map_err(io::Error::other),
        None => Ok(None),
    }
}

#[cfg(not(feature = "tls"))]
fn acceptor(settings: &Settings) -> io::Result<Option<crate::http::server::Acceptor>> {
    match &settings.tls {
        Some(_) => Err(io::Error::other(
            "-tls-cert needs the `tls` feature, which this edgecm was built without",
        )),
        None => Ok(None),
    }
}

/// `-require-basic` / `-require-bearer`: either accepted credential passes.
struct Guard {
    /// base64 of `USER:PASS`.
    basic: Option<String>,
    /// A token, or `@FILE` of tokens (one per line, read at each request).
    bearer: Option<String>,
}

impl Guard {
    fn accepts(&self, header: Option<&[u8]>) -> bool {
        if self.basic.is_none() && self.bearer.is_none() {
            return true;
        }
        let Some((scheme, value)) = header.and_then(crate::auth::authorization) else {
            return false;
        };
        if scheme.eq_ignore_ascii_case(b"basic") {
            return self
                .basic
                .as_ref()
                .is_some_and(|b| crate::auth::ct_eq(b.as_bytes(), value));
        }
        if !scheme.eq_ignore_ascii_case(b"bearer") {
            return false;
        }
        match self.bearer.as_deref() {
            Some(b) => match b.strip_prefix('@') {
                Some(file) => std::fs::read_to_string(file).is_ok_and(|t| {
                    t.lines().any(|l| {
                        !l.trim().is_empty() && crate::auth::ct_eq(l.trim().as_bytes(), value)
                    })
                }),
                None => crate::auth::ct_eq(b.as_bytes(), value),
            },
            None => false,
        }
    }
}

mod rest;
#[cfg(test)]
mod tests;
