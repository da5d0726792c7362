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

impl StandIn {
    pub fn new(settings: Settings) -> StandIn {
        StandIn {
            settings,
            projects: BTreeMap::new(),
            files: BTreeMap::new(),
            injects: 0,
            events: 0,
            loads: 0,
            routers: BTreeMap::new(),
        }
    }

    /// Answers one request. `url` is the path with its query.
    /// Answers one request; `content_type` is the request's header.
    pub fn handle(
        &mut self,
        method: &str,
        url: &str,
        content_type: Option<&[u8]>,
        body: &[u8],
    ) -> Answer {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let prefix = self.settings.prefix.trim_end_matches('/');
        let bases: Vec<String> = self
            .settings
            .bases
            .prefixes()
            .iter()
            .map(|b| format!("{prefix}{b}"))
            .collect();
        let Some(rest) = bases.iter().find_map(|p| {
            path.strip_prefix(p.as_str())
                .or_else(|| (path == &p[..p.len() - 1]).then_some(""))
        }) else {
            return error(
                404,
                &format!("no such resource: {path}"),
                &[format!("this stand-in serves {}", bases.join(" and "))],
            );
        };
        // Bodies are XML here; no Content-Type is taken as XML (esppy sends
        // none with a project), anything else is refused.
        if !body.is_empty() {
            if let Some(ct) = content_type {
                let ct = String::from_utf8_lossy(ct).to_ascii_lowercase();
                let mime = ct.split(';').next().unwrap_or("").trim().to_string();
                if !matches!(mime.as_str(), "application/xml" | "text/xml") {
                    return error(
                        415,
                        &format!("Content-Type {mime:?} is not accepted here"),
                        &["accepted: application/xml, text/xml".to_string()],
                    );
                }
            }
        }
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
            // esppy's probe: `HEAD {base}/` answers 401 when credentials are needed.
            ("HEAD" | "GET", []) => (200, String::new()),
            ("GET", ["projectXml"]) => {
                let want: Vec<&str> = param("name").map(|n| n.split('|').collect()).unwrap_or_default();
                let mut b = String::from("<projects>");
                for (name, p) in &self.projects {
                    if want.is_empty() || want.contains(&name.as_str()) {
                        b.push_str(&p.xml);
                    }
                }
                b.push_str("</projects>");
                (200, b)
            }
            ("GET", ["windows", p, cq, w]) => {
                let found = self
                    .projects
                    .get(*p)
                    .and_then(|l| l.windows.get(&(cq.to_string(), w.to_string())));
                match found {
                    Some(win) => {
                        let mut b = format!("<windows><{} name=\"{}\">", win.kind, escape(w));
                        if param("schema") == Some("true") {
                            b.push_str("<schema><fields>");
                            for (n, t, key) in &win.fields {
                                b.push_str(&format!(
                                    "<field name=\"{}\" type=\"{t}\"{}/>",
                                    escape(n),
                                    if *key { " key=\"true\"" } else { "" }
                                ));
                            }
                            b.push_str("</fields></schema>");
                        }
                        b.push_str(&format!("</{}></windows>", win.kind));
                        (200, b)
                    }
                    None => self.missing(&format!("window '{p}/{cq}/{w}' does not exist")),
                }
            }
            ("PUT", ["routers", name]) => {
                if self.routers.contains_key(*name) && param("overwrite") != Some("true") {
                    return error(400, &format!("router '{name}' already exists"), &["load with overwrite=true to replace it".to_string()]);
                }
                let text = String::from_utf8_lossy(body);
                match crate::config::router::parse(&text) {
                    Ok(r) => {
                        let line = format!(
                            "router {name} engines={} destinations={} routes={}",
                            r.engines.len(),
                            r.destinations.len(),
                            r.routes.len()
                        );
                        if let Err(a) = self.wire(&line) {
                            return a;
                        }
                        self.routers.insert(name.to_string(), r);
                        ok(&format!("router '{name}' loaded"))
                    }
                    Err(e) => error(400, &format!("router '{name}' is not a valid router"), &[e]),
                }
            }
            ("GET", ["routers"]) => {
                let mut b = String::from("<routers>");
                for name in self.routers.keys() {
                    b.push_str(&format!("<esp-router name=\"{}\"/>", escape(name)));
                }
                b.push_str("</routers>");
                (200, b)
            }
            ("DELETE", ["routers", name]) => match self.routers.remove(*name) {
                Some(_) => ok(&format!("router '{name}' deleted")),
                None => self.missing(&format!("router '{name}' does not exist")),
            },
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
        let date = match self
            .settings
            .dateformat
            .as_deref()
            .map(crate::source::value::DateFormat::parse)
        {
            None => None,
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => return error(500, &format!("the stand-in's -dateformat: {e}"), &[]),
        };
        let mut windows = BTreeMap::new();
        for cq in &p.contqueries {
            for w in &cq.windows {
                let (decoder, schema_error) = match &w.schema {
                    Some(Ok(schema)) => {
                        let layout = Layout::new(schema, w.autogen_key, false);
                        let mut opts = Options::new(crate::config::FsType::Xml);
                        opts.dates = date.clone();
                        (Some(Decoder::new(layout, opts)), None)
                    }
                    Some(Err(d)) => (None, Some(d.message.clone())),
                    None => (None, Some("the window declares no schema".to_string())),
                };
                let fields = match &w.schema {
                    Some(Ok(schema)) => schema
                        .fields
                        .iter()
                        .map(|f| (f.name.clone(), f.ty.name().to_string(), f.key))
                        .collect(),
                    _ => Vec::new(),
                };
                windows.insert(
                    (cq.name.clone(), w.name.clone()),
                    WindowInfo {
                        source: w.is_source(),
                        kind: w.kind.clone(),
                        fields,
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

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "<project name='p'><contqueries><contquery name='cq'><windows>\
        <window-source name='trades'><schema-string>id*:int64,sym:string,price:double,at:stamp</schema-string>\
        <connectors><connector class='fs' name='in'><properties><property name='type'>pub</property></properties></connector></connectors></window-source>\
        <window-filter name='big'><expression>price &gt; 10</expression></window-filter>\
        </windows><edges><edge source='trades' target='big'/></edges></contquery></contqueries></project>";
    const XML: Option<&[u8]> = Some(b"application/xml");
    const V1: &str = "/eventStreamProcessing/v1";

    fn loaded() -> StandIn {
        let mut s = StandIn::new(Settings::default());
        let (code, body) = s.handle(
            "PUT",
            &format!("{V1}/projects/p?overwrite=true"),
            XML,
            P.as_bytes(),
        );
        assert_eq!(code, 200, "{body}");
        s
    }

    fn inject(s: &mut StandIn, window: &str, ct: Option<&[u8]>, events: &str) -> Answer {
        s.handle(
            "PUT",
            &format!("{V1}/windows/p/cq/{window}/state?value=injected"),
            ct,
            format!("<events>{events}</events>").as_bytes(),
        )
    }

    /// An ESP-shaped error: `message` and `details/detail` (esp-protocol.md §2.3).
    fn esp_error(a: &Answer, code: u16, words: &str) {
        assert_eq!(a.0, code, "{}", a.1);
        assert!(a.1.contains("<message>"), "{}", a.1);
        assert!(a.1.contains(words), "{words:?} not in {}", a.1);
    }

    const GOOD: &str = "<event><opcode>i</opcode><id key='true'>1</id><sym>A</sym><price>2.5</price><at>1452933000000468</at></event>";

    #[test]
    fn injects_are_checked_as_strictly_as_esp() {
        let mut s = loaded();
        assert_eq!(inject(&mut s, "trades", XML, GOOD).0, 200);
        let unknown = GOOD.replace("<sym>A</sym>", "<sym>A</sym><venue>1</venue>");
        esp_error(&inject(&mut s, "trades", XML, &unknown), 400, "venue");
        let no_key = GOOD.replace("<id key='true'>1</id>", "");
        esp_error(&inject(&mut s, "trades", XML, &no_key), 400, "key field");
        let bad = GOOD.replace("2.5", "cheap");
        esp_error(&inject(&mut s, "trades", XML, &bad), 400, "price");
        // A stamp as a source wrote it: ESP cannot know the source's dateformat.
        let text = GOOD.replace("1452933000000468", "2016-01-16 08:30:00.000468");
        esp_error(
            &inject(&mut s, "trades", XML, &text),
            400,
            "microseconds since 1970",
        );
        esp_error(
            &inject(&mut s, "trades", Some(b"application/json"), GOOD),
            415,
            "Content-Type",
        );
        assert_eq!(
            inject(&mut s, "trades", Some(b"text/xml; charset=utf-8"), GOOD).0,
            200
        );
        assert_eq!(
            inject(&mut s, "trades", None, GOOD).0,
            200,
            "no Content-Type is XML"
        );
        esp_error(
            &inject(&mut s, "big", XML, GOOD),
            400,
            "not a source window",
        );
        esp_error(&inject(&mut s, "nope", XML, GOOD), 404, "does not exist");
        let (code, _) = s.handle(
            "PUT",
            &format!("{V1}/projects/p/state?value=stopped"),
            None,
            b"",
        );
        assert_eq!(code, 200);
        esp_error(&inject(&mut s, "trades", XML, GOOD), 400, "not running");
        s.handle(
            "PUT",
            &format!("{V1}/projects/p/state?value=running"),
            None,
            b"",
        );
        assert_eq!(inject(&mut s, "trades", XML, GOOD).0, 200);
    }

    #[test]
    fn loads_honour_overwrite_and_a_reload_empties_the_windows() {
        let mut s = loaded();
        inject(&mut s, "trades", XML, GOOD);
        inject(&mut s, "trades", XML, GOOD);
        let held = |s: &mut StandIn| {
            s.handle("GET", &format!("{V1}/events/p/cq/trades"), None, b"")
                .1
        };
        assert_eq!(held(&mut s), "<events count=\"2\"/>");
        let again = s.handle("PUT", &format!("{V1}/projects/p"), XML, P.as_bytes());
        esp_error(&again, 400, "already exists");
        assert_eq!(
            held(&mut s),
            "<events count=\"2\"/>",
            "a refused load changes nothing"
        );
        let r = s.handle(
            "PUT",
            &format!("{V1}/projects/p?overwrite=true&start=false"),
            XML,
            P.as_bytes(),
        );
        assert_eq!(r.0, 200);
        assert_eq!(
            held(&mut s),
            "<events count=\"0\"/>",
            "a reload empties the windows"
        );
        esp_error(&inject(&mut s, "trades", XML, GOOD), 400, "not running");
        assert_eq!(s.loads, 2);
        let list = s.handle("GET", &format!("{V1}/projects"), None, b"").1;
        assert_eq!(
            list,
            "<projects><project name=\"p\" state=\"stopped\"/></projects>"
        );
    }

    #[test]
    fn the_rest_surface_sas_clients_read() {
        let mut s = loaded();
        let server = s.handle("GET", "/SASESP/server", None, b"").1;
        assert!(server.contains("version=\"6.2\""), "{server}");
        assert_eq!(s.handle("HEAD", V1, None, b"").0, 200);
        let xml = s
            .handle("GET", &format!("{V1}/projectXml?name=p"), None, b"")
            .1;
        assert!(xml.starts_with("<projects><project name='p'"), "{xml}");
        let w = s
            .handle(
                "GET",
                &format!("{V1}/windows/p/cq/trades?schema=true"),
                None,
                b"",
            )
            .1;
        assert_eq!(
            w,
            "<windows><window-source name=\"trades\"><schema><fields><field name=\"id\" type=\"int64\" key=\"true\"/><field name=\"sym\" type=\"string\"/><field name=\"price\" type=\"double\"/><field name=\"at\" type=\"stamp\"/></fields></schema></window-source></windows>"
        );
        assert_eq!(
            s.handle("DELETE", &format!("{V1}/projects/p"), None, b"").0,
            200
        );
        assert_eq!(
            s.handle("DELETE", &format!("{V1}/projects/p"), None, b"").0,
            404
        );
    }

    #[test]
    fn a_base_prefix_and_the_status_for_a_missing_project() {
        let mut s = StandIn::new(Settings {
            prefix: "/SASEventStreamProcessingServer/p1".into(),
            missing_status: 400,
            ..Settings::default()
        });
        let at_root = s.handle("GET", &format!("{V1}/server"), None, b"");
        assert_eq!(at_root.0, 404);
        let base = format!("/SASEventStreamProcessingServer/p1{V1}");
        assert_eq!(s.handle("GET", &format!("{base}/server"), None, b"").0, 200);
        let r = s.handle(
            "PUT",
            &format!("{base}/windows/p/cq/trades/state?value=injected"),
            XML,
            b"<events/>",
        );
        esp_error(&r, 400, "project 'p' does not exist");
    }
}
