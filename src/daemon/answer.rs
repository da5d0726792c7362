//! The admin API's answers (`crate::admin` maps the request, the serving
//! thread hands it here): engines added and removed, log level, failover
//! messages, and the reads `status` renders.

use super::engines::AddFor;
use super::owner::Control;
use super::*;
use crate::admin::{render, route, Call, Reply, Route, LOGGER};

/// Sends `reply` to the serving thread, and logs refusals.
fn send_reply(call: &Call, reply: Reply) {
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
    // Capacity one, and one reply per call.
    let _ = call.reply.try_send(reply);
}

impl Core {
    /// Answers one call (`ToCore::Admin`). A `PUT` of an engine is
    /// answered later, when the engine is ready or its deadline passed
    /// (`check_adding`); everything else at once.
    pub(super) fn answer_call(
        self: &Rc<Self>,
        ex: &LocalExecutor<'_>,
        ctl: &mut Control,
        call: Call,
    ) {
        let r = match route(&call.method, &call.url) {
            Ok(r) => r,
            Err(reply) => return send_reply(&call, reply),
        };
        if let Route::Put { .. } | Route::Delete { .. } = r {
            if let Err(why) = self.engines_changeable(ctl) {
                return send_reply(&call, Reply::text(409, why));
            }
        }
        if let Route::Put { map, engine } = r {
            let parsed = self
                .map_index(&map)
                .and_then(|i| Ok((i, self.parse_put(&call, &map, &engine)?)));
            let (i, e) = match parsed {
                Ok(p) => p,
                Err(reply) => return send_reply(&call, reply),
            };
            let c = self.config().esp_maps[i].cluster;
            match self.add_slot(ctl, c, &e.name) {
                Ok(slot) => self.start_add(ex, ctl, c, slot, e, AddFor::Admin { call, map }),
                Err(err) => send_reply(&call, Reply::text(status_of(&err), err.to_string())),
            }
            return;
        }
        let reply = self.answer(ex, ctl, &call, r);
        send_reply(&call, reply);
    }

    /// The engine a `PUT routerEngines/{map}/{engine}` names, or the reply
    /// that refuses it.
    fn parse_put(
        &self,
        call: &Call,
        map: &str,
        engine: &str,
    ) -> Result<crate::config::Engine, Reply> {
        let origin = format!("PUT routerEngines/{map}/{engine} body");
        let text = std::str::from_utf8(&call.body)
            .map_err(|e| Reply::text(400, format!("{origin}: not UTF-8 text: {e}")))?;
        let e = crate::config::parse_engine(&origin, text).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(|d| d.to_string()).collect();
            Reply::text(400, lines.join("\n"))
        })?;
        if e.name != engine {
            return Err(Reply::text(
                400,
                format!(
                    "{origin}: the path names engine '{engine}' and the body '{}'; they must agree",
                    e.name
                ),
            ));
        }
        Ok(e)
    }

    /// Answers the `PUT` that asked for an engine once it is added (or not).
    pub(super) fn added_answer(
        &self,
        _ctl: &mut Control,
        call: Call,
        map: &str,
        c: usize,
        e: &crate::config::Engine,
        r: Result<EngineId, EngineChangeError>,
    ) {
        let engine = &e.name;
        let reply = match r {
            Ok(slot) => {
                let cluster = self.config().clusters[c].name.clone();
                log::info!(
                    "admin API: engine '{engine}' ({}:{}) added to cluster '{cluster}'",
                    e.host,
                    e.ha_port
                );
                // Kept in the state dir: a restart or reload adds it again.
                let text = String::from_utf8_lossy(&call.body);
                if let Err(err) = self.added.borrow_mut().add(&cluster, slot, e, &text) {
                    log::warn!(
                        "cannot write {}/{}: {err}; engine '{engine}' is not added again after a restart",
                        self.options.state_dir.display(),
                        crate::engine::added::FILE_NAME
                    );
                }
                Reply::text(
                    201,
                    format!(
                        "engine '{engine}' added to cluster '{cluster}' (esp-map '{map}'); projects deployed"
                    ),
                )
            }
            Err(e) => Reply::text(status_of(&e), e.to_string()),
        };
        send_reply(&call, reply);
    }

    fn answer(
        self: &Rc<Self>,
        ex: &LocalExecutor<'_>,
        ctl: &mut Control,
        call: &Call,
        r: Route,
    ) -> Reply {
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
            Route::SetLevel { value, .. } => match crate::logger::parse_level(&value) {
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
            Route::Status => Reply::new(
                200,
                "application/json",
                render::status_json(&self.snapshot(ctl, false)),
            ),
            Route::Health => {
                let reasons = render::health_reasons(&self.snapshot(ctl, false));
                Reply::new(
                    if reasons.is_empty() { 200 } else { 503 },
                    "application/json",
                    render::health_json(&reasons),
                )
            }
            Route::Metrics => Reply::new(
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                render::metrics_text(&self.snapshot(ctl, true)),
            ),
            Route::Engines { map, engine } => {
                let maps: Vec<usize> = match &map {
                    None => (0..self.config().esp_maps.len()).collect(),
                    Some(m) => match self.map_index(m) {
                        Ok(i) => vec![i],
                        Err(reply) => return reply,
                    },
                };
                match render::router_engines_xml(
                    &self.snapshot(ctl, false),
                    &maps,
                    engine.as_deref(),
                ) {
                    Ok(xml) => Reply::new(200, "application/xml", xml),
                    Err(why) => Reply::text(404, why),
                }
            }
            Route::Cluster => {
                let r = std::str::from_utf8(&call.body)
                    .map_err(|e| format!("body: not UTF-8 text: {e}"))
                    .and_then(|t| self.failover_receive(ex, ctl, t));
                match r {
                    Ok(()) => Reply::text(200, "ok".to_string()),
                    Err(e) => Reply::text(400, format!("POST cluster {e}")),
                }
            }
            Route::Put { .. } => unreachable!("answered by answer_call"),
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
                match self.remove_engine(ctl, c, &engine) {
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
                    Err(e) => Reply::text(status_of(&e), e.to_string()),
                }
            }
        }
    }

    pub(super) fn map_index(&self, name: &str) -> Result<usize, Reply> {
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
}

/// The HTTP status the admin API answers an engine change that was not made
/// with.
fn status_of(e: &EngineChangeError) -> u16 {
    match e {
        EngineChangeError::Unknown(_) => 404,
        EngineChangeError::Conflict(_) => 409,
        EngineChangeError::NotReady(_) => 502,
        EngineChangeError::NoRoom(_) => 507,
        EngineChangeError::Unavailable(_) => 503,
        EngineChangeError::Journal(_) => 500,
    }
}
