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
    /// How `date` and `stamp` values must look (epoch numbers are accepted too).
    pub dateformat: String,
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
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            record: None,
            bases: Bases::Both,
            delay: Duration::ZERO,
            fail_every: 0,
            reject_window: None,
            dateformat: "%Y-%m-%d %H:%M:%S".into(),
            pubsub: 0,
            tls: None,
            require_basic: None,
            require_bearer: None,
            missing_status: 404,
            refuse_loads: false,
        }
    }
}

struct WindowInfo {
    source: bool,
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

impl StandIn {
    pub fn new(settings: Settings) -> StandIn {
        StandIn {
            settings,
            projects: BTreeMap::new(),
            files: BTreeMap::new(),
            injects: 0,
            events: 0,
            loads: 0,
        }
    }

    /// Answers one request. `url` is the path with its query.
    pub fn handle(&mut self, method: &str, url: &str, body: &[u8]) -> Answer {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let Some(rest) = self.settings.bases.prefixes().iter().find_map(|p| {
            path.strip_prefix(p)
                .or_else(|| (path == &p[..p.len() - 1]).then_some(""))
        }) else {
            return error(
                404,
                &format!("no such resource: {path}"),
                &[format!(
                    "this stand-in serves {}",
                    self.settings.bases.prefixes().join(" and ")
                )],
            );
        };
        let parts: Vec<String> = rest
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect();
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let param = |name: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        };
        let value = param("value").unwrap_or("");
        match (method, parts.as_slice()) {
            ("GET" | "HEAD", ["server"]) => (
                200,
                format!(
                    "<server engine=\"edgecm-standin\" version=\"6.2\" pubsub=\"{}\" standin=\"edgecm {}\"/>",
                    self.settings.pubsub,
                    env!("CARGO_PKG_VERSION")
                ),
            ),
            (_, ["server"]) => error(405, &format!("{method} is not allowed on server; allowed: GET"), &[]),
            ("GET", ["projects"]) => {
                let mut b = String::from("<projects>");
                for (name, p) in &self.projects {
                    let state = if p.running { "running" } else { "stopped" };
                    b.push_str(&format!("<project name=\"{}\" state=\"{state}\"/>", escape(name)));
                }
                b.push_str("</projects>");
                (200, b)
            }
            ("PUT" | "POST", ["projects", name]) => {
                let flag = |n: &str, default: bool| param(n).map_or(default, |v| v == "true");
                let how = Load {
                    overwrite: flag("overwrite", false),
                    connectors: flag("connectors", true),
                    start: flag("start", true),
                };
                self.load(name, body, how)
            }
            ("PUT", ["projects", name, "state"]) => match (self.projects.get_mut(*name), value) {
                (Some(p), "running" | "stopped") => {
                    p.running = value == "running";
                    ok(&format!("project '{name}' {value}"))
                }
                (Some(_), _) => error(400, &format!("project state {value:?} is not supported by the stand-in; accepted: running, stopped"), &[]),
                (None, _) => self.missing(&format!("project '{name}' does not exist")),
            },
            ("DELETE", ["projects", name]) => match self.projects.remove(*name) {
                Some(_) => ok(&format!("project '{name}' deleted")),
                None => error(404, &format!("project '{name}' does not exist"), &[]),
            },
            ("GET", ["projects", name]) => match self.projects.get(*name) {
                Some(p) => (200, p.xml.clone()),
                None => error(404, &format!("project '{name}' does not exist"), &[]),
            },
            (_, ["projects", ..]) => error(405, &format!("{method} is not allowed on projects; allowed: GET, PUT, DELETE"), &[]),
            ("PUT" | "POST", ["windows", p, cq, w, "state"]) if value == "injected" => {
                self.inject(p, cq, w, body)
            }
            ("PUT" | "POST", ["windows", _, _, _, "state"]) => error(
                400,
                &format!("window state {value:?} is not supported by the stand-in; accepted: injected"),
                &[],
            ),
            (_, ["windows", ..]) => error(405, &format!("{method} is not allowed here; allowed: PUT .../state?value=injected"), &[]),
            ("GET", ["events", p, cq, w]) => match self.projects.get(*p).and_then(|l| {
                l.windows.contains_key(&(cq.to_string(), w.to_string())).then(|| {
                    l.held.get(&(cq.to_string(), w.to_string())).copied().unwrap_or(0)
                })
            }) {
                Some(n) => (200, format!("<events count=\"{n}\"/>")),
                None => self.missing(&format!("window '{p}/{cq}/{w}' does not exist")),
            },
            _ => error(404, &format!("no such resource: {path}"), &[]),
        }
    }

    /// "No such project or window", with `-missing-status`.
    fn missing(&self, message: &str) -> Answer {
        error(self.settings.missing_status, message, &[])
    }

    /// Appends a line to `DIR/wire.log` (when recording).
    fn wire(&mut self, line: &str) -> Result<(), Answer> {
        let Some(dir) = &self.settings.record else {
            return Ok(());
        };
        record(
            &mut self.files,
            dir,
            "wire.log",
            format!("{line}\n").as_bytes(),
        )
        .map_err(|e| error(500, &format!("cannot record: {e}"), &[]))
    }

    fn load(&mut self, name: &str, body: &[u8], how: Load) -> Answer {
        if self.settings.refuse_loads {
            if let Err(a) = self.wire(&format!("refused-load {name}")) {
                return a;
            }
            return error(
                400,
                &format!("project '{name}' refused"),
                &["the stand-in runs with -refuse-loads".to_string()],
            );
        }
        if self.projects.contains_key(name) && !how.overwrite {
            return error(
                400,
                &format!("project '{name}' already exists"),
                &["load with overwrite=true to replace it".to_string()],
            );
        }
        let Ok(text) = std::str::from_utf8(body) else {
            return error(400, "the project is not UTF-8 text", &[]);
        };
        let file = match project::parse(Path::new("request body"), text) {
            Ok(f) => f,
            Err(d) => {
                return error(
                    400,
                    &format!("project '{name}' is not a valid project"),
                    &[d.to_string()],
                )
            }
        };
        let p: &Project = match file.project(name) {
            Some(p) => p,
            None if file.projects.len() == 1 => &file.projects[0],
            None => {
                return error(
                    400,
                    &format!("the document holds no project named '{name}'"),
                    &[format!(
                        "projects in it: {}",
                        file.projects
                            .iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )],
                )
            }
        };
        let date = match crate::source::value::DateFormat::parse(&self.settings.dateformat) {
            Ok(d) => d,
            Err(e) => return error(500, &format!("the stand-in's -dateformat: {e}"), &[]),
        };
        let mut windows = BTreeMap::new();
        for cq in &p.contqueries {
            for w in &cq.windows {
                let (decoder, schema_error) = match &w.schema {
                    Some(Ok(schema)) => {
                        let layout = Layout::new(schema, w.autogen_key, false);
                        let mut opts = Options::new(crate::config::FsType::Xml);
                        opts.dates = Some(date.clone());
                        opts.epoch_dates = true;
                        (Some(Decoder::new(layout, opts)), None)
                    }
                    Some(Err(d)) => (None, Some(d.message.clone())),
                    None => (None, Some("the window declares no schema".to_string())),
                };
                windows.insert(
                    (cq.name.clone(), w.name.clone()),
                    WindowInfo {
                        source: w.is_source(),
                        decoder,
                        schema_error,
                    },
                );
            }
        }
        let count = windows.len();
        let publishers: usize = p
            .contqueries
            .iter()
            .flat_map(|c| &c.windows)
            .map(|w| w.publisher_connectors.len())
            .sum();
        let started = if how.connectors && how.start {
            publishers
        } else {
            0
        };
        if let Err(a) = self.wire(&format!(
            "load {name} overwrite={} connectors={} start={} publishers={publishers} publishers_started={started}",
            how.overwrite, how.connectors, how.start
        )) {
            return a;
        }
        // A reload replaces the project: its windows start empty.
        self.projects.insert(
            name.to_string(),
            Loaded {
                xml: p.xml.clone(),
                windows,
                running: how.start,
                held: BTreeMap::new(),
            },
        );
        self.loads += 1;
        if started > 0 {
            log::warn!("stand-in: project '{name}' loaded with its {started} publisher connectors started (they would publish the project's own input)");
        }
        log::debug!("stand-in: project '{name}' loaded ({count} windows)");
        ok(&format!(
            "project '{name}' loaded{}",
            if how.start { " and started" } else { "" }
        ))
    }

    fn inject(&mut self, p: &str, cq: &str, w: &str, body: &[u8]) -> Answer {
        self.injects += 1;
        let missing = self.settings.missing_status;
        let Some(project) = self.projects.get_mut(p) else {
            return error(missing, &format!("project '{p}' does not exist"), &[]);
        };
        if !project.running {
            return error(400, &format!("project '{p}' is not running"), &[]);
        }
        let Some(win) = project.windows.get_mut(&(cq.to_string(), w.to_string())) else {
            return error(
                missing,
                &format!("window '{p}/{cq}/{w}' does not exist"),
                &[],
            );
        };
        if self.settings.fail_every > 0 && self.injects.is_multiple_of(self.settings.fail_every) {
            return error(
                503,
                &format!(
                    "failing inject number {} on purpose (-fail-every {})",
                    self.injects, self.settings.fail_every
                ),
                &[],
            );
        }
        if self.settings.reject_window.as_deref() == Some(w) {
            return error(
                400,
                &format!("window '{p}/{cq}/{w}' refuses events (-reject-window)"),
                &[],
            );
        }
        if !win.source {
            return error(400, &format!("window '{p}/{cq}/{w}' is not a source window; events can only be injected into source windows"), &[]);
        }
        let Some(decoder) = win.decoder.take() else {
            return error(
                400,
                &format!("window '{p}/{cq}/{w}' has no usable schema"),
                &[win.schema_error.clone().unwrap_or_default()],
            );
        };
        // Decode the whole block before recording any of it: a block is all or nothing.
        let mut lines = Vec::with_capacity(body.len() / 2);
        let mut n = 0u64;
        let mut reader = Reader::new(decoder);
        let mut src = body;
        let mut failure = None;
        loop {
            match reader.next(src.is_empty()) {
                Step::Event { .. } => {
                    n += 1;
                    csv_line(&reader.event(), &mut lines);
                }
                Step::Error { at, message, .. } => {
                    failure = Some(format!("event {} ({at}): {message}", n + 1));
                    break;
                }
                Step::NeedMore if src.is_empty() => break,
                Step::NeedMore => {
                    if let Err(e) = reader.fill(&mut src) {
                        failure = Some(format!("reading the body: {e}"));
                        break;
                    }
                }
            }
        }
        win.decoder = Some(reader.dec);
        if let Some(f) = failure {
            return error(400, &format!("events for '{p}/{cq}/{w}' refused"), &[f]);
        }
        if let Some(dir) = &self.settings.record {
            let file = format!("{p}.{cq}.{w}.csv");
            if let Err(e) = record(&mut self.files, dir, &file, &lines) {
                return error(500, &format!("cannot record events: {e}"), &[]);
            }
        }
        // A block sent as one `<transaction>` (esp-protocol.md §5.4) is marked.
        let tx = if memchr::memmem::find(body, b"<transaction>").is_some() {
            " transaction"
        } else {
            ""
        };
        if let Err(a) = self.wire(&format!("inject {p}/{cq}/{w} {n}{tx}")) {
            return a;
        }
        if let Some(l) = self.projects.get_mut(p) {
            *l.held.entry((cq.to_string(), w.to_string())).or_insert(0) += n;
        }
        self.events += n;
        ok(&format!("{n} events injected"))
    }
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
    let limits = crate::httpd::Limits {
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
    let handler = move |rq: crate::httpd::Request| {
        let (s, guard) = (s.clone(), guard.clone());
        async move {
            let (status, text) = if !guard.accepts(rq.header("authorization")) {
                log::debug!("stand-in: {} {} -> 401", rq.method, rq.url);
                error(401, "credentials required", &[])
            } else {
                let (status, text) = s.borrow_mut().handle(&rq.method, &rq.url, &rq.body);
                if status >= 400 {
                    log::debug!("stand-in: {} {} -> {status}", rq.method, rq.url);
                }
                (status, text)
            };
            if !delay.is_zero() {
                async_io::Timer::after(delay).await;
            }
            let r = crate::httpd::Response::new(status, "application/xml", text);
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
    let server = crate::httpd::serve(ex.clone(), listener, limits, tls, handler);
    async_io::block_on(ex.run(server))
}

#[cfg(feature = "tls")]
fn acceptor(settings: &Settings) -> io::Result<Option<crate::httpd::Acceptor>> {
    match &settings.tls {
        Some((cert, key)) => crate::tls::server(cert, key)
            .map(Some)
            .map_err(io::Error::other),
        None => Ok(None),
    }
}

#[cfg(not(feature = "tls"))]
fn acceptor(settings: &Settings) -> io::Result<Option<crate::httpd::Acceptor>> {
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
