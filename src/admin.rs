//! The admin REST API on `-http` (ARCHITECTURE §1): `crate::http::server` serves on a
//! thread of its own; each request, body read there (at most
//! [`BODY_MAX`]), is handed to the core over a channel and answered with
//! what the core replies. The core never blocks on a client.
//!
//! Under both `/eventStreamProcessing/v1` and `/SASESP`:
//! - `GET status`: JSON; `GET metrics`: Prometheus text, the same numbers;
//! - `GET routerEngines[/{esp-map}[/{engine}]]`: engines with state and backlog (XML);
//! - `PUT routerEngines/{esp-map}/{engine}` with `<esp-engine name host port ha_port/>`;
//! - `DELETE routerEngines/{esp-map}/{engine}` (a spare in reserve: taken out of reserve);
//!   spares are listed as `<spare-esp-engine ... state="reserve|serving" serves=SLOT>`.

use crate::daemon::Core;
use crate::engine::encode::escape;
use async_executor::LocalExecutor;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::rc::Rc;

/// Largest request body read.
pub const BODY_MAX: usize = 64 * 1024;

/// The base paths the API answers under.
pub const BASES: [&str; 2] = ["/eventStreamProcessing/v1", "/SASESP"];

/// A request handed to the core, and where its answer goes.
pub struct Call {
    pub method: String,
    pub url: String,
    pub body: Vec<u8>,
    pub reply: async_channel::Sender<Reply>,
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// `Allow` on a 405.
    pub allow: Option<&'static str>,
}

impl Reply {
    fn new(status: u16, content_type: &'static str, body: String) -> Reply {
        Reply {
            status,
            content_type,
            body,
            allow: None,
        }
    }

    /// An error (or a short confirmation) as one line of text.
    pub fn text(status: u16, message: impl Into<String>) -> Reply {
        let mut body = message.into();
        body.push('\n');
        Reply::new(status, "text/plain; charset=utf-8", body)
    }

    fn not_allowed(method: &str, path: &str, allow: &'static str) -> Reply {
        Reply {
            allow: Some(allow),
            ..Reply::text(
                405,
                format!("{method} {path} is not accepted; accepted methods: {allow}"),
            )
        }
    }
}

/// Binds `addr` and serves on a new thread (`crate::http::server`, with its
/// limits); the calls come out of the returned channel. With `auth`, a
/// request without accepted credentials gets 401 there and never reaches
/// the core. Returns the bound address (port 0 picks one).
pub fn serve(
    listener: std::net::TcpListener,
    auth: Option<crate::auth::AdminAuth>,
) -> std::io::Result<(SocketAddr, async_channel::Receiver<Call>)> {
    let bound = listener.local_addr()?;
    let (tx, rx) = async_channel::bounded(8);
    let limits = crate::http::server::Limits {
        body_max: BODY_MAX,
        // A request has this long to arrive whole: a slow client holds one
        // of the connections only briefly.
        read_timeout: std::time::Duration::from_secs(2),
        ..crate::http::server::Limits::default()
    };
    std::thread::Builder::new()
        .name("admin-http".into())
        .spawn(move || {
            let ex = Rc::new(LocalExecutor::new());
            let auth = Rc::new(auth);
            let handler = move |rq: crate::http::server::Request| {
                let tx = tx.clone();
                let auth = auth.clone();
                async move { answer_http(rq, &tx, auth.as_ref().as_ref()).await }
            };
            let server = crate::http::server::serve(ex.clone(), listener, limits, None, handler);
            if let Err(e) = async_io::block_on(ex.run(server)) {
                log::error!("admin API: {e}");
            }
        })?;
    Ok((bound, rx))
}

/// Checks credentials, hands the request to the core and turns its reply
/// into a response.
async fn answer_http(
    rq: crate::http::server::Request,
    tx: &async_channel::Sender<Call>,
    auth: Option<&crate::auth::AdminAuth>,
) -> crate::http::server::Response {
    if let Some(a) = auth {
        if !a.accepts(rq.header("authorization")) {
            log::info!(
                "admin API: {} {} from {}: refused, {} credentials",
                rq.method,
                rq.url.split('?').next().unwrap_or(""),
                rq.peer.map_or("?".into(), |p| p.to_string()),
                if rq.header("authorization").is_some() {
                    "wrong"
                } else {
                    "no"
                }
            );
            return crate::http::server::Response::text(
                401,
                "credentials required; accepted: Basic with the authinfo entry for this manager's host and -http port, or Bearer with the -admin-token-file token",
            )
            .with_header("WWW-Authenticate", "Basic realm=\"edgecm\", Bearer realm=\"edgecm\"");
        }
    }
    let (rtx, rrx) = async_channel::bounded(1);
    let call = Call {
        method: rq.method,
        url: rq.url,
        body: rq.body,
        reply: rtx,
    };
    let reply = if tx.send(call).await.is_err() {
        Reply::text(503, "the manager is stopping")
    } else {
        rrx.recv()
            .await
            .unwrap_or_else(|_| Reply::text(503, "the manager is stopping"))
    };
    let mut resp = crate::http::server::Response::new(reply.status, reply.content_type, reply.body);
    if let Some(allow) = reply.allow {
        resp = resp.with_header("Allow", allow);
    }
    resp
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Status,
    Metrics,
    /// `GET routerEngines[/{map}[/{engine}]]`.
    Engines {
        map: Option<String>,
        engine: Option<String>,
    },
    Put {
        map: String,
        engine: String,
    },
    Delete {
        map: String,
        engine: String,
    },
    /// `POST cluster`: a failover message from another manager.
    Cluster,
    /// `GET health` (also `/health`): 200 or 503 with the reasons.
    Health,
    /// `GET loggers[/{name}]`: ESP's logger list; edgecm has one, `edgecm`.
    Loggers {
        name: Option<String>,
    },
    /// `PUT loggers/{name}/level?value=LEVEL`: the log level, live.
    SetLevel {
        name: String,
        value: String,
    },
}

/// The one logger edgecm has (ESP's `GET loggers` lists `esp`, `esp.http`, ...).
pub const LOGGER: &str = "edgecm";

/// Maps a method and URL to a [`Route`], or to the 404 / 405 answer.
pub fn route(method: &str, url: &str) -> Result<Route, Reply> {
    let path = url.split(['?', '#']).next().unwrap_or("");
    if path == "/health" {
        return match method {
            "GET" | "HEAD" => Ok(Route::Health),
            _ => Err(Reply::not_allowed(method, path, "GET")),
        };
    }
    let rest = BASES
        .iter()
        .find_map(|b| path.strip_prefix(b))
        .filter(|r| r.is_empty() || r.starts_with('/'))
        .ok_or_else(|| {
            Reply::text(
                404,
                format!(
                    "{path}: not found; the admin API is under {} and {}",
                    BASES[0], BASES[1]
                ),
            )
        })?;
    let segs: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let get_only = |r: Route| match method {
        "GET" | "HEAD" => Ok(r),
        _ => Err(Reply::not_allowed(method, path, "GET")),
    };
    match segs.as_slice() {
        ["status"] => get_only(Route::Status),
        ["health"] => get_only(Route::Health),
        ["cluster"] => match method {
            "POST" => Ok(Route::Cluster),
            _ => Err(Reply::not_allowed(method, path, "POST")),
        },
        ["metrics"] => get_only(Route::Metrics),
        ["loggers"] => get_only(Route::Loggers { name: None }),
        ["loggers", name] => get_only(Route::Loggers {
            name: Some(name.to_string()),
        }),
        ["loggers", name, "level"] => match method {
            "PUT" | "POST" => Ok(Route::SetLevel {
                name: name.to_string(),
                value: url
                    .split_once('?')
                    .into_iter()
                    .flat_map(|(_, q)| q.split('&'))
                    .find_map(|kv| kv.strip_prefix("value="))
                    .map(percent_decode)
                    .unwrap_or_default(),
            }),
            _ => Err(Reply::not_allowed(method, path, "PUT")),
        },
        ["routerEngines"] => get_only(Route::Engines {
            map: None,
            engine: None,
        }),
        ["routerEngines", map] => get_only(Route::Engines {
            map: Some(map.to_string()),
            engine: None,
        }),
        ["routerEngines", map, engine] => {
            let (map, engine) = (map.to_string(), engine.to_string());
            match method {
                "GET" | "HEAD" => Ok(Route::Engines {
                    map: Some(map),
                    engine: Some(engine),
                }),
                "PUT" => Ok(Route::Put { map, engine }),
                "DELETE" => Ok(Route::Delete { map, engine }),
                _ => Err(Reply::not_allowed(method, path, "GET, PUT, DELETE")),
            }
        }
        _ => Err(Reply::text(
            404,
            format!(
                "{path}: not found; accepted: status, health, metrics, routerEngines, routerEngines/{{esp-map}}, routerEngines/{{esp-map}}/{{engine}}, loggers, loggers/edgecm, loggers/edgecm/level?value=LEVEL, cluster"
            ),
        )),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).and_then(|&c| hex(c)),
            b.get(i + 2).and_then(|&c| hex(c)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A Prometheus label value.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One engine as the API shows it.
struct EngineView {
    cluster: String,
    slot: String,
    serving: crate::config::Engine,
    status: crate::engine::sender::Status,
    backlog: u64,
}

/// A configured spare: in reserve, or serving a slot since a failover.
struct SpareView {
    cluster: String,
    engine: crate::config::Engine,
    /// The slot it serves; None while in reserve.
    serves: Option<String>,
}

impl Core {
    /// Answers calls until the channel closes (never, while running). Calls
    /// run side by side: a `PUT` that waits for an engine to get ready does
    /// not hold up `status` or `metrics`.
    pub(crate) async fn serve_admin(
        self: &Rc<Self>,
        ex: &LocalExecutor<'_>,
        calls: async_channel::Receiver<Call>,
    ) {
        use std::future::Future;
        use std::pin::Pin;
        let mut running: Vec<Pin<Box<dyn Future<Output = ()> + '_>>> = Vec::new();
        loop {
            let next = {
                let mut recv = std::pin::pin!(calls.recv());
                std::future::poll_fn(|cx| {
                    running.retain_mut(|f| f.as_mut().poll(cx).is_pending());
                    recv.as_mut().poll(cx)
                })
                .await
            };
            let Ok(call) = next else { return };
            running.push(Box::pin(self.answer_call(ex, call)));
        }
    }

    /// Answers one call and sends the reply back to the serving thread.
    async fn answer_call(self: &Rc<Self>, ex: &LocalExecutor<'_>, call: Call) {
        let reply = self.answer(ex, &call).await;
        if reply.status >= 400 {
            log::info!(
                "admin API: {} {}: {} {}",
                call.method,
                call.url,
                reply.status,
                reply.body.trim_end()
            );
        } else {
            log::debug!("admin API: {} {}: {}", call.method, call.url, reply.status);
        }
        let _ = call.reply.send(reply).await;
    }

    async fn answer(self: &Rc<Self>, ex: &LocalExecutor<'_>, call: &Call) -> Reply {
        let r = match route(&call.method, &call.url) {
            Ok(r) => r,
            Err(reply) => return reply,
        };
        if let Route::Put { .. } | Route::Delete { .. } = r {
            if let Err(why) = self.engines_changeable() {
                return Reply::text(409, why);
            }
        }
        match r {
            Route::Loggers { name } if name.as_deref().is_some_and(|n| n != LOGGER) => {
                Reply::text(404, format!("no logger named {name:?}; accepted: {LOGGER}"))
            }
            Route::Loggers { .. } => Reply::new(
                200,
                "application/xml",
                format!(
                    "<loggers><logger name=\"{LOGGER}\" level=\"{}\"/></loggers>\n",
                    log::max_level().as_str().to_ascii_lowercase()
                ),
            ),
            Route::SetLevel { name, .. } if name != LOGGER => {
                Reply::text(404, format!("no logger named {name:?}; accepted: {LOGGER}"))
            }
            Route::SetLevel { value, .. } => match crate::cli::parse_level(&value) {
                Ok(level) => {
                    let was = log::max_level();
                    log::set_max_level(level);
                    let line = format!(
                        "log level {} (was {}), set over the admin API",
                        level.as_str().to_ascii_lowercase(),
                        was.as_str().to_ascii_lowercase()
                    );
                    // At info, or at the new level when that is quieter.
                    log::log!(
                        level
                            .to_level()
                            .unwrap_or(log::Level::Error)
                            .min(log::Level::Info),
                        "{line}"
                    );
                    Reply::text(200, line)
                }
                Err(e) => Reply::text(
                    400,
                    format!("PUT loggers/{LOGGER}/level?value=: {e}, fatal"),
                ),
            },
            Route::Status => Reply::new(200, "application/json", self.status_json()),
            Route::Health => {
                let reasons = self.health_reasons();
                let body = format!(
                    "{{\"status\": \"{}\", \"reasons\": [{}]}}\n",
                    if reasons.is_empty() { "ok" } else { "failing" },
                    reasons
                        .iter()
                        .map(|r| json_str(r))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                Reply::new(
                    if reasons.is_empty() { 200 } else { 503 },
                    "application/json",
                    body,
                )
            }
            Route::Metrics => Reply::new(
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics_text(),
            ),
            Route::Engines { map, engine } => {
                let maps: Vec<usize> = match &map {
                    None => (0..self.config().esp_maps.len()).collect(),
                    Some(m) => match self.map_index(m) {
                        Ok(i) => vec![i],
                        Err(reply) => return reply,
                    },
                };
                let mut out = String::from("<router-engines>\n");
                for i in maps {
                    let m = &self.config().esp_maps[i];
                    let views = self.engine_views(m.cluster);
                    let spares = self.spare_views(m.cluster);
                    if let Some(e) = &engine {
                        if !views.iter().any(|v| &v.slot == e)
                            && !spares.iter().any(|s| &s.engine.name == e)
                        {
                            return Reply::text(
                                404,
                                format!("esp-map '{}' routes to no engine named '{e}'", m.name),
                            );
                        }
                    }
                    let _ = writeln!(
                        out,
                        "  <esp-map name=\"{}\" cluster=\"{}\">",
                        escape(&m.name),
                        escape(&self.config().clusters[m.cluster].name)
                    );
                    for v in views
                        .iter()
                        .filter(|v| engine.as_ref().is_none_or(|e| &v.slot == e))
                    {
                        let _ = writeln!(
                            out,
                            "    <esp-engine name=\"{}\" serving=\"{}\" host=\"{}\" port=\"{}\" ha_port=\"{}\" state=\"{}\" backlog=\"{}\" acked=\"{}\" rejected=\"{}\"/>",
                            escape(&v.slot),
                            escape(&v.serving.name),
                            escape(&v.serving.host),
                            v.serving.port,
                            v.serving.ha_port,
                            self.engine_state(&v.status),
                            v.backlog,
                            v.status.acked_events,
                            v.status.rejected_events
                        );
                    }
                    for s in spares
                        .iter()
                        .filter(|s| engine.as_ref().is_none_or(|e| &s.engine.name == e))
                    {
                        let _ = writeln!(
                            out,
                            "    <spare-esp-engine name=\"{}\" host=\"{}\" port=\"{}\" ha_port=\"{}\" state=\"{}\"{}/>",
                            escape(&s.engine.name),
                            escape(&s.engine.host),
                            s.engine.port,
                            s.engine.ha_port,
                            if s.serves.is_some() { "serving" } else { "reserve" },
                            s.serves
                                .as_ref()
                                .map(|n| format!(" serves=\"{}\"", escape(n)))
                                .unwrap_or_default()
                        );
                    }
                    out.push_str("  </esp-map>\n");
                }
                out.push_str("</router-engines>\n");
                Reply::new(200, "application/xml", out)
            }
            Route::Cluster => {
                let r = std::str::from_utf8(&call.body)
                    .map_err(|e| format!("body: not UTF-8 text: {e}"))
                    .and_then(|t| self.failover_receive(t));
                match r {
                    Ok(()) => Reply::text(200, "ok".to_string()),
                    Err(e) => Reply::text(400, format!("POST cluster {e}")),
                }
            }
            Route::Put { map, engine } => {
                let i = match self.map_index(&map) {
                    Ok(i) => i,
                    Err(reply) => return reply,
                };
                let origin = format!("PUT routerEngines/{map}/{engine} body");
                let text = match std::str::from_utf8(&call.body) {
                    Ok(t) => t,
                    Err(e) => {
                        return Reply::text(400, format!("{origin}: not UTF-8 text: {e}"));
                    }
                };
                let e = match crate::config::parse_engine(&origin, text) {
                    Ok(e) => e,
                    Err(errors) => {
                        let lines: Vec<String> = errors.iter().map(|d| d.to_string()).collect();
                        return Reply::text(400, lines.join("\n"));
                    }
                };
                if e.name != engine {
                    return Reply::text(
                        400,
                        format!(
                            "{origin}: the path names engine '{engine}' and the body '{}'; they must agree",
                            e.name
                        ),
                    );
                }
                let c = self.config().esp_maps[i].cluster;
                let (host, port) = (e.host.clone(), e.ha_port);
                match self.add_engine(ex, c, e.clone()).await {
                    Ok(id) => {
                        log::info!(
                            "admin API: engine '{engine}' ({host}:{port}) added to cluster '{}'",
                            self.config().clusters[c].name
                        );
                        // Kept in the state dir: a restart or reload adds it again.
                        let cluster = &self.config().clusters[c].name;
                        let slot = id - self.offsets[c];
                        if let Err(err) = self.added.borrow_mut().add(cluster, slot, &e, text) {
                            log::warn!(
                                "cannot write {}/{}: {err}; engine '{engine}' is not added again after a restart",
                                self.options.state_dir.display(),
                                crate::engine::added::FILE_NAME
                            );
                        }
                        Reply::text(
                            201,
                            format!(
                                "engine '{engine}' added to cluster '{}' (esp-map '{map}'); projects deployed",
                                self.config().clusters[c].name
                            ),
                        )
                    }
                    Err((status, msg)) => Reply::text(status, msg),
                }
            }
            Route::Delete { map, engine } => {
                let i = match self.map_index(&map) {
                    Ok(i) => i,
                    Err(reply) => return reply,
                };
                let c = self.config().esp_maps[i].cluster;
                let spare = self.memberships[c].borrow_mut().remove_spare(&engine);
                if spare.is_some() {
                    log::info!(
                        "admin API: spare '{engine}' removed from cluster '{}'",
                        self.config().clusters[c].name
                    );
                    return Reply::text(
                        200,
                        format!(
                            "spare '{engine}' removed from cluster '{}'; it will not take over a failed engine",
                            self.config().clusters[c].name
                        ),
                    );
                }
                match self.remove_engine(c, &engine) {
                    Ok(moved) => {
                        self.forget_added(c, &engine);
                        Reply::text(
                        200,
                        format!(
                            "engine '{engine}' removed from cluster '{}'; {moved} queued events re-routed",
                            self.config().clusters[c].name
                        ),
                    )
                    }
                    Err((status, msg)) => Reply::text(status, msg),
                }
            }
        }
    }

    fn map_index(&self, name: &str) -> Result<usize, Reply> {
        self.config()
            .esp_maps
            .iter()
            .position(|m| m.name == name)
            .ok_or_else(|| {
                let config = self.config();
                let names: Vec<&str> = config.esp_maps.iter().map(|m| m.name.as_str()).collect();
                Reply::text(
                    404,
                    format!("no esp-map named '{name}'; accepted: {}", names.join(", ")),
                )
            })
    }

    fn engine_views(&self, c: usize) -> Vec<EngineView> {
        let m = self.memberships[c].borrow();
        let engines = self.engines.borrow();
        let j = self.shared.journal.borrow();
        m.slots()
            .iter()
            .map(|s| {
                let id = self.offsets[c] + s.id;
                EngineView {
                    cluster: self.config().clusters[c].name.clone(),
                    slot: s.name.clone(),
                    serving: s.engine.clone(),
                    status: engines
                        .iter()
                        .find(|h| h.id == id)
                        .map(|h| h.status.get())
                        .unwrap_or_default(),
                    backlog: j.backlog(id),
                }
            })
            .collect()
    }

    /// Every configured spare of cluster `c` and what it does.
    fn spare_views(&self, c: usize) -> Vec<SpareView> {
        let m = self.memberships[c].borrow();
        self.config().clusters[c]
            .spares
            .iter()
            .filter_map(|e| {
                let serves = m
                    .slots()
                    .iter()
                    .find(|s| s.engine.name == e.name)
                    .map(|s| s.name.clone());
                let reserve = m.spares().iter().any(|s| s.name == e.name);
                // A spare removed over the admin API is neither.
                (serves.is_some() || reserve).then(|| SpareView {
                    cluster: self.config().clusters[c].name.clone(),
                    engine: e.clone(),
                    serves,
                })
            })
            .collect()
    }

    fn all_engine_views(&self) -> Vec<EngineView> {
        (0..self.memberships.len())
            .flat_map(|c| self.engine_views(c))
            .collect()
    }

    /// An engine's state as shown: a standby's engines are "standby".
    fn engine_state(&self, s: &crate::engine::sender::Status) -> &'static str {
        if self.shared.failover.standby.get() {
            "standby"
        } else {
            s.state.name()
        }
    }

    /// Why the manager does not do its job, if it does not (`GET health`):
    /// a source that failed, an engine failed with no spare while events
    /// wait for it, a deploy that keeps failing, the journal near its cap or
    /// the filesystem full.
    pub fn health_reasons(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.sources() {
            if s.state.get() == crate::daemon::SourceState::Failed {
                out.push(format!(
                    "source '{}' failed: {}",
                    s.name,
                    s.error.borrow().as_deref().unwrap_or("see the log")
                ));
            }
        }
        if !self.shared.failover.standby.get() {
            for v in self.all_engine_views() {
                let st = &v.status;
                let why = st.last_error.as_deref().unwrap_or("see the log");
                if st.state == crate::engine::State::Failed && v.backlog > 0 {
                    out.push(format!(
                        "engine '{}' failed with {} events waiting for it (no spare took over): {why}",
                        v.slot, v.backlog
                    ));
                } else if st.deploy_failures > 0
                    && matches!(
                        st.state,
                        crate::engine::State::Deploying | crate::engine::State::Failed
                    )
                {
                    out.push(format!(
                        "engine '{}': deploying keeps failing: {why}",
                        v.slot
                    ));
                }
            }
        }
        for w in self.orchestration_waits() {
            if w.ends_with("it is failed") || w.ends_with("it is stopped") {
                out.push(format!("orchestration stuck: {w}"));
            }
        }
        let j = self.shared.journal.borrow();
        let share = j.bytes() as f64 / j.bytes_max().max(1) as f64;
        if share >= crate::limits::JOURNAL_HEALTH_SHARE {
            out.push(format!(
                "the journal holds {:.0} % of its cap ({} of {} bytes): sources pause soon",
                share * 100.0,
                j.bytes(),
                j.bytes_max()
            ));
        }
        if j.disk_full() {
            out.push("the filesystem of the state dir is full: sources wait until engines drained the journal".to_string());
        }
        out
    }

    /// `GET status`.
    pub fn status_json(&self) -> String {
        let mut o = String::from("{\n");
        let _ = writeln!(
            o,
            "  \"version\": {},\n  \"manager\": {},\n  \"uptime_s\": {:.3},",
            json_str(env!("CARGO_PKG_VERSION")),
            json_str(&self.config().manager),
            self.started.elapsed().as_secs_f64()
        );
        let (applied, refused) = self.reloads.get();
        let _ = writeln!(
            o,
            "  \"reloads\": {{\"applied\": {applied}, \"refused\": {refused}, \"last\": {}}},",
            self.last_reload
                .borrow()
                .as_deref()
                .map_or("null".to_string(), json_str)
        );
        {
            let n = self.node.borrow();
            let managers: Vec<String> = n
                .managers()
                .iter()
                .map(|m| format!("{{\"id\": {}, \"address\": {}}}", m.id, json_str(&m.addr)))
                .collect();
            let _ = writeln!(
                o,
                "  \"role\": \"{}\",\n  \"epoch\": {},\n  \"address\": {},\n  \"leader\": {},\n  \"managers\": [{}],",
                n.role().name(),
                n.epoch(),
                json_str(n.me()),
                n.leader_addr().map_or("null".to_string(), json_str),
                managers.join(", ")
            );
        }
        let positions = self.shared.journal.borrow().positions().clone();
        o.push_str("  \"sources\": [");
        for (i, s) in self.sources().iter().enumerate() {
            let st = s.stats.get();
            let pos = match positions.get(&self.source_ids.borrow()[i]) {
                Some(crate::journal::Position::File { offset, .. }) => {
                    format!("{{\"file_offset\": {offset}}}")
                }
                Some(crate::journal::Position::Socket { seq }) => {
                    format!("{{\"socket_events\": {seq}}}")
                }
                _ => "null".to_string(),
            };
            let _ = write!(
                o,
                "{}\n    {{\"name\": {}, \"state\": \"{}\", \"events\": {}, \"accepted\": {}, \"errors\": {}, \"bytes\": {}, \"position\": {pos}, \"error\": {}}}",
                if i > 0 { "," } else { "" },
                json_str(&s.name),
                s.state.get().name(),
                st.events,
                s.accepted.get(),
                st.errors,
                st.bytes,
                s.error.borrow().as_deref().map_or("null".to_string(), json_str)
            );
        }
        let waits: Vec<String> = self
            .orchestration_waits()
            .iter()
            .map(|w| json_str(w))
            .collect();
        let _ = write!(
            o,
            "\n  ],\n  \"orchestration_waits\": [{}],",
            waits.join(", ")
        );
        o.push_str("\n  \"engines\": [");
        for (i, v) in self.all_engine_views().iter().enumerate() {
            let st = &v.status;
            let _ = write!(
                o,
                "{}\n    {{\"cluster\": {}, \"name\": {}, \"serving\": {}, \"host\": {}, \"ha_port\": {}, \"state\": \"{}\", \"backlog\": {}, \"acked\": {}, \"rejected\": {}, \"failed_requests\": {}, \"deploys\": {}, \"deploy_failures\": {}, \"reference_resent\": {}, \"skipped\": {}, \"last_error\": {}}}",
                if i > 0 { "," } else { "" },
                json_str(&v.cluster),
                json_str(&v.slot),
                json_str(&v.serving.name),
                json_str(&v.serving.host),
                v.serving.ha_port,
                self.engine_state(st),
                v.backlog,
                st.acked_events,
                st.rejected_events,
                st.failed_requests,
                st.deploys,
                st.deploy_failures,
                st.reference_resent,
                st.skipped_events,
                st.last_error.as_deref().map_or("null".to_string(), json_str)
            );
        }
        o.push_str("\n  ],\n  \"spares\": [");
        let spares: Vec<SpareView> = (0..self.memberships.len())
            .flat_map(|c| self.spare_views(c))
            .collect();
        for (i, s) in spares.iter().enumerate() {
            let _ = write!(
                o,
                "{}\n    {{\"cluster\": {}, \"name\": {}, \"host\": {}, \"ha_port\": {}, \"serves\": {}}}",
                if i > 0 { "," } else { "" },
                json_str(&s.cluster),
                json_str(&s.engine.name),
                json_str(&s.engine.host),
                s.engine.ha_port,
                s.serves.as_deref().map_or("null".to_string(), json_str)
            );
        }
        let j = self.shared.journal.borrow();
        let r = self.shared.reference.borrow();
        let _ = write!(
            o,
            "\n  ],\n  \"journal\": {{\"bytes\": {}, \"segments\": {}, \"appended_events\": {}, \"synced_events\": {}, \"lost_events\": {}, \"damaged_stretches\": {}}},\n  \"reference\": {{\"bytes\": {}, \"bytes_max\": {}, \"events\": {}, \"dropped_events\": {}}}\n}}\n",
            j.bytes(),
            j.segment_count(),
            j.next_seq(),
            j.synced_seq(),
            j.recovery.lost_events,
            j.recovery.corrupt.len(),
            r.bytes(),
            crate::limits::REFERENCE_BYTES_MAX,
            r.events,
            r.dropped_events
        );
        o
    }

    /// `GET metrics`: the numbers of `status` in Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let mut o = String::new();
        let family = |o: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(
                o,
                "# HELP edgecm_{name} {help}\n# TYPE edgecm_{name} {kind}"
            );
        };
        family(
            &mut o,
            "uptime_seconds",
            "gauge",
            "Seconds since the manager started.",
        );
        let _ = writeln!(
            o,
            "edgecm_uptime_seconds {:.3}",
            self.started.elapsed().as_secs_f64()
        );
        type SourceFn = fn(&crate::daemon::SourceStatus) -> u64;
        let source_metrics: [(&str, &str, SourceFn); 4] = [
            ("source_events_total", "Events read from the source.", |s| {
                s.stats.get().events
            }),
            (
                "source_accepted_events_total",
                "Events appended to the journal.",
                |s| s.accepted.get(),
            ),
            (
                "source_errors_total",
                "Input skipped as not an event.",
                |s| s.stats.get().errors,
            ),
            ("source_bytes_total", "Bytes read from the source.", |s| {
                s.stats.get().bytes
            }),
        ];
        for (name, help, get) in source_metrics {
            family(&mut o, name, "counter", help);
            for s in &self.sources() {
                let _ = writeln!(
                    o,
                    "edgecm_{name}{{source=\"{}\"}} {}",
                    label(&s.name),
                    get(s)
                );
            }
        }
        family(
            &mut o,
            "source_running",
            "gauge",
            "1 while the source reads (not waiting, paused or ended).",
        );
        for s in &self.sources() {
            let _ = writeln!(
                o,
                "edgecm_source_running{{source=\"{}\",state=\"{}\"}} {}",
                label(&s.name),
                s.state.get().name(),
                u8::from(s.state.get() == crate::daemon::SourceState::Running)
            );
        }
        let views = self.all_engine_views();
        type EngineFn = fn(&EngineView) -> u64;
        let engine_metrics: [(&str, &str, &str, EngineFn); 8] = [
            (
                "engine_backlog_events",
                "gauge",
                "Events queued for the engine, not yet acknowledged.",
                |v| v.backlog,
            ),
            (
                "engine_acked_events_total",
                "counter",
                "Events the engine acknowledged.",
                |v| v.status.acked_events,
            ),
            (
                "engine_rejected_events_total",
                "counter",
                "Events the engine refused (written to dead-letters.xml).",
                |v| v.status.rejected_events,
            ),
            (
                "engine_failed_requests_total",
                "counter",
                "Publish requests that failed and will be retried.",
                |v| v.status.failed_requests,
            ),
            (
                "engine_project_loads_total",
                "counter",
                "Projects loaded on the engine (kept and adopted projects are not loads).",
                |v| v.status.deploys,
            ),
            (
                "engine_deploy_failures_total",
                "counter",
                "Loads refused, and projects lost again before the engine took an event.",
                |v| v.status.deploy_failures,
            ),
            (
                "engine_reference_resent_events_total",
                "counter",
                "Reference events sent again to the engine after it got its project anew.",
                |v| v.status.reference_resent,
            ),
            (
                "engine_up",
                "gauge",
                "1 when the engine is ready (projects deployed, answering).",
                |v| u64::from(v.status.state == crate::engine::State::Ready),
            ),
        ];
        for (name, kind, help, get) in engine_metrics {
            family(&mut o, name, kind, help);
            for v in &views {
                let _ = writeln!(
                    o,
                    "edgecm_{name}{{cluster=\"{}\",engine=\"{}\",serving=\"{}\"}} {}",
                    label(&v.cluster),
                    label(&v.slot),
                    label(&v.serving.name),
                    get(v)
                );
            }
        }
        family(
            &mut o,
            "spare_engine",
            "gauge",
            "1 for each configured spare; serves names the slot it took over (empty while in reserve).",
        );
        for c in 0..self.memberships.len() {
            for s in self.spare_views(c) {
                let _ = writeln!(
                    o,
                    "edgecm_spare_engine{{cluster=\"{}\",spare=\"{}\",serves=\"{}\"}} 1",
                    label(&s.cluster),
                    label(&s.engine.name),
                    label(s.serves.as_deref().unwrap_or(""))
                );
            }
        }
        family(
            &mut o,
            "engine_state",
            "gauge",
            "1 for the engine's state (connecting, deploying, ready, failing, failed, standby).",
        );
        for v in &views {
            let _ = writeln!(
                o,
                "edgecm_engine_state{{cluster=\"{}\",engine=\"{}\",serving=\"{}\",state=\"{}\"}} 1",
                label(&v.cluster),
                label(&v.slot),
                label(&v.serving.name),
                self.engine_state(&v.status)
            );
        }
        family(
            &mut o,
            "engine_backlog_age_seconds",
            "gauge",
            "Age of the oldest event queued for the engine (0 when none).",
        );
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        for c in 0..self.memberships.len() {
            let slots: Vec<(u8, String, String)> = self.memberships[c]
                .borrow()
                .slots()
                .iter()
                .map(|s| {
                    (
                        self.offsets[c] + s.id,
                        s.name.clone(),
                        s.engine.name.clone(),
                    )
                })
                .collect();
            for (id, slot, serving) in slots {
                let oldest = self
                    .shared
                    .journal
                    .borrow_mut()
                    .oldest_unacked_ms(id)
                    .ok()
                    .flatten();
                let _ = writeln!(
                    o,
                    "edgecm_engine_backlog_age_seconds{{cluster=\"{}\",engine=\"{}\",serving=\"{}\"}} {}",
                    label(&self.config().clusters[c].name),
                    label(&slot),
                    label(&serving),
                    oldest.map_or(0, |t| now_ms.saturating_sub(t) / 1000)
                );
            }
        }
        let j = self.shared.journal.borrow();
        family(
            &mut o,
            "journal_bytes",
            "gauge",
            "Bytes of journal segments.",
        );
        let _ = writeln!(o, "edgecm_journal_bytes {}", j.bytes());
        family(
            &mut o,
            "journal_bytes_max",
            "gauge",
            "The journal's byte cap (-state-max): at it, sources pause.",
        );
        let _ = writeln!(o, "edgecm_journal_bytes_max {}", j.limits().bytes_max);
        family(
            &mut o,
            "journal_segments",
            "gauge",
            "Journal segment files.",
        );
        let _ = writeln!(o, "edgecm_journal_segments {}", j.segment_count());
        family(
            &mut o,
            "journal_appended_events_total",
            "counter",
            "Events appended to the journal (its sequence).",
        );
        let _ = writeln!(o, "edgecm_journal_appended_events_total {}", j.next_seq());
        family(
            &mut o,
            "journal_written_bytes_total",
            "counter",
            "Bytes written to the state dir's journal files (records, cursors, the failover state).",
        );
        let _ = writeln!(
            o,
            "edgecm_journal_written_bytes_total {}",
            j.storage().bytes_written()
        );
        family(
            &mut o,
            "journal_syncs_total",
            "counter",
            "fsync/fdatasync calls on the journal (files and folder).",
        );
        let _ = writeln!(o, "edgecm_journal_syncs_total {}", j.storage().syncs());
        family(
            &mut o,
            "journal_lost_events",
            "gauge",
            "Events lost to damage found when the journal was opened (flash or a power cut); each damaged record costs only itself.",
        );
        let _ = writeln!(o, "edgecm_journal_lost_events {}", j.recovery.lost_events);
        let r = self.shared.reference.borrow();
        for (name, kind, help, v) in [
            (
                "reference_bytes",
                "gauge",
                "Bytes of reference data kept for engines that get their project anew.",
                r.bytes(),
            ),
            (
                "reference_events",
                "gauge",
                "Reference events kept.",
                r.events,
            ),
            (
                "dead_letter_bytes",
                "gauge",
                "Bytes of the current dead-letter file (capped; it rotates to dead-letters.1.xml).",
                self.shared.dead_letters.borrow().bytes,
            ),
            (
                "dead_letter_rotations_total",
                "counter",
                "Times the dead-letter file reached its cap and was rotated.",
                self.shared.dead_letters.borrow().rotations,
            ),
            (
                "reference_dropped_events_total",
                "counter",
                "Reference events not kept: past the reference store's cap.",
                r.dropped_events,
            ),
        ] {
            family(&mut o, name, kind, help);
            let _ = writeln!(o, "edgecm_{name} {v}");
        }
        drop(r);
        let n = self.node.borrow();
        family(
            &mut o,
            "role",
            "gauge",
            "1 for this manager's failover role (leader or standby).",
        );
        for r in [
            crate::failover::Role::Leader,
            crate::failover::Role::Standby,
        ] {
            let _ = writeln!(
                o,
                "edgecm_role{{role=\"{}\"}} {}",
                r.name(),
                u8::from(n.role() == r)
            );
        }
        family(
            &mut o,
            "epoch",
            "gauge",
            "The failover epoch this manager is in.",
        );
        let _ = writeln!(o, "edgecm_epoch {}", n.epoch());
        family(
            &mut o,
            "managers",
            "gauge",
            "Managers in the failover list (this one included).",
        );
        let _ = writeln!(o, "edgecm_managers {}", n.managers().len());
        let t = &self.traffic;
        let traffic: [(&str, &str, u64); 5] = [
            (
                "failover_sent_messages_total",
                "Failover messages sent to other managers.",
                t.sent_messages.get(),
            ),
            (
                "failover_sent_bytes_total",
                "Bytes of failover messages sent (bodies).",
                t.sent_bytes.get(),
            ),
            (
                "failover_send_failures_total",
                "Failover messages that got no 2xx answer.",
                t.send_failures.get(),
            ),
            (
                "failover_received_messages_total",
                "Failover messages received.",
                t.received_messages.get(),
            ),
            (
                "failover_received_bytes_total",
                "Bytes of failover messages received (bodies).",
                t.received_bytes.get(),
            ),
        ];
        for (name, help, v) in traffic {
            family(&mut o, name, "counter", help);
            let _ = writeln!(o, "edgecm_{name} {v}");
        }
        family(
            &mut o,
            "engine_skipped_events_total",
            "counter",
            "Events not sent because the leader reported them delivered (a standby's trim, a new leader's resume).",
        );
        for v in &views {
            let _ = writeln!(
                o,
                "edgecm_engine_skipped_events_total{{cluster=\"{}\",engine=\"{}\"}} {}",
                label(&v.cluster),
                label(&v.slot),
                v.status.skipped_events
            );
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_under_both_bases() {
        for base in BASES {
            assert_eq!(route("GET", &format!("{base}/status")), Ok(Route::Status));
            assert_eq!(
                route("PUT", &format!("{base}/routerEngines/m%201/esp2?x=1")),
                Ok(Route::Put {
                    map: "m 1".into(),
                    engine: "esp2".into()
                })
            );
        }
    }

    #[test]
    fn loggers_as_esp_names_them() {
        assert_eq!(
            route("GET", "/eventStreamProcessing/v1/loggers"),
            Ok(Route::Loggers { name: None })
        );
        assert_eq!(
            route("PUT", "/SASESP/loggers/edgecm/level?value=debug"),
            Ok(Route::SetLevel {
                name: "edgecm".into(),
                value: "debug".into()
            })
        );
        assert_eq!(
            route("GET", "/SASESP/loggers/edgecm/level")
                .unwrap_err()
                .status,
            405
        );
    }

    #[test]
    fn wrong_method_is_405_with_allow() {
        let r = route("POST", "/SASESP/routerEngines/m/e").unwrap_err();
        assert_eq!(r.status, 405);
        assert_eq!(r.allow, Some("GET, PUT, DELETE"));
        assert_eq!(route("DELETE", "/SASESP/status").unwrap_err().status, 405);
    }

    #[test]
    fn unknown_paths_are_404() {
        assert_eq!(route("GET", "/status").unwrap_err().status, 404);
        assert_eq!(route("GET", "/SASESPx/status").unwrap_err().status, 404);
        assert_eq!(
            route("GET", "/SASESP/routerEngines/a/b/c")
                .unwrap_err()
                .status,
            404
        );
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
