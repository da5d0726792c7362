//! The stand-in's REST answers: one method per ESP call it knows, each as
//! strict as the engine (see the table in the module above).

use super::*;

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
