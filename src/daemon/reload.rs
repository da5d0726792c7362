//! SIGHUP: the config file read again and applied where it may change live
//! (`config::reload` plans it; this does it, in order).

use super::*;

impl Core {
    /// Where SIGHUP asks for a reload (`try_send`; a request already waiting
    /// absorbs the next).
    pub fn reload_requests(&self) -> async_channel::Sender<()> {
        self.reload_inbox.0.clone()
    }

    /// Applies each reload asked for, one at a time, until the manager stops.
    pub(super) async fn reloads(self: &Rc<Self>, ex: &LocalExecutor<'_>) {
        let inbox = self.reload_inbox.1.clone();
        while inbox.recv().await.is_ok() {
            crate::systemd::notify("RELOADING=1");
            let started = crate::clock::now();
            let r = self.reload(ex).await;
            let ms = started.elapsed().as_millis();
            let (applied, refused) = self.reloads.get();
            let line = match &r {
                Ok(done) => {
                    self.reloads.set((applied + 1, refused));
                    log::info!("reload: {done} ({ms} ms)");
                    format!("applied in {ms} ms: {done}")
                }
                Err(why) => {
                    self.reloads.set((applied, refused + 1));
                    log::error!("reload refused, the running config stays: {why}");
                    format!("refused: {why}")
                }
            };
            self.last_reload.replace(Some(line));
            crate::systemd::notify("READY=1");
        }
    }

    /// Reads the config file again and applies what may change live
    /// (`config::reload`): engines and spares, through the same paths as
    /// the admin API. A config that does not check, or that changes what
    /// cannot change live, is refused whole.
    pub(super) async fn reload(self: &Rc<Self>, ex: &LocalExecutor<'_>) -> Result<String, String> {
        use crate::config::reload::Change;
        let file = self.config().file.display().to_string();
        log::info!("reload: reading {file}");
        let mut new = Config::load(&file)
            .map_err(|e| format!("{file} does not check:\n{}", e.to_string().trim_end()))?;
        let engine_dateformat = self
            .config()
            .raw_sources
            .first()
            .and_then(|s| s.fs.engine_dateformat.clone());
        for s in &mut new.raw_sources {
            s.fs.engine_dateformat.clone_from(&engine_dateformat);
        }
        let findings = crate::source::preflight::preflight(&new, None);
        if !findings.errors.is_empty() {
            return Err(format!(
                "{file} does not check:\n  {}",
                findings.errors.join("\n  ")
            ));
        }
        // The base: the running config, whose engines are what the
        // reloads so far applied (one that failed is tried again).
        let mut base = (*self.config()).clone();
        let plan = crate::config::reload::plan(&base, &new);
        if !plan.refused.is_empty() {
            return Err(format!("{file}:\n  {}", plan.refused.join("\n  ")));
        }
        let unchanged = plan.changes.is_empty() && plan.sources.is_empty();
        if unchanged && base == new {
            return Ok("nothing changed".to_string());
        }
        if self.node.borrow().managers().len() > 1 {
            log::warn!(
                "reload: this manager has failover peers; reload each of them with the same config, or their routing differs after a takeover"
            );
        }
        let (mut done, mut failed) = (Vec::new(), Vec::new());
        for change in plan.changes {
            let c = change.cluster();
            let cluster = self.config().clusters[c].name.clone();
            let r = match &change {
                Change::AddEngine { engine, .. } => {
                    let there = self.memberships[c].borrow().by_name(&engine.name).is_some();
                    let r = if there {
                        Ok(format!(
                            "engine '{}' of cluster '{cluster}' was added over the admin API and is now in the config",
                            engine.name
                        ))
                    } else {
                        self.add_engine(ex, c, engine.clone()).await.map(|_| {
                            format!(
                                "engine '{}' ({}:{}) added to cluster '{cluster}'",
                                engine.name, engine.host, engine.ha_port
                            )
                        })
                    };
                    if r.is_ok() {
                        self.forget_added(c, &engine.name);
                    }
                    r
                }
                Change::RemoveEngine { name, .. } => match self.remove_engine(c, name) {
                    Ok(moved) => {
                        self.forget_added(c, name);
                        Ok(format!(
                            "engine '{name}' removed from cluster '{cluster}', {moved} queued events re-routed"
                        ))
                    }
                    Err(EngineChangeError::Unknown(_)) => Ok(format!(
                        "engine '{name}' was already gone from cluster '{cluster}'"
                    )),
                    Err(e) => Err(e),
                },
                Change::AddSpare { engine, .. } => self
                    .add_spare(c, engine.clone())
                    .map(|()| format!("spare '{}' added to cluster '{cluster}'", engine.name)),
                Change::RemoveSpare { name, .. } => Ok(
                    if self.memberships[c]
                        .borrow_mut()
                        .remove_spare(name)
                        .is_some()
                    {
                        format!("spare '{name}' removed from cluster '{cluster}'")
                    } else {
                        format!(
                            "spare '{name}' of cluster '{cluster}' serves a failed engine's slot; it stays until that slot is removed"
                        )
                    },
                ),
            };
            match r {
                Ok(m) => {
                    crate::config::reload::apply(&mut base, &change);
                    done.push(m);
                }
                Err(e) => failed.push(e.to_string()),
            }
        }
        // The new config with the engines as applied.
        let mut next = new;
        next.clusters = base.clusters;
        match self.swap_sources(ex, next, &plan.sources).await {
            Ok(lines) => done.extend(lines),
            Err(e) => failed.push(e),
        }
        if done.is_empty() && failed.is_empty() {
            done.push("orchestration or maps of no running source changed".to_string());
        }
        if failed.is_empty() {
            Ok(done.join("; "))
        } else {
            Err(format!(
                "{} of {} changes not applied (a later reload tries them again): {}{}",
                failed.len(),
                failed.len() + done.len(),
                failed.join("; "),
                if done.is_empty() {
                    String::new()
                } else {
                    format!("; applied: {}", done.join("; "))
                }
            ))
        }
    }

    /// Swaps `next` in as the running config: stops the tasks of the
    /// sources `changes` removes or changes (they flush what they read),
    /// gives the new sources and destinations their journal ids, and starts
    /// the sources added or changed, which resume where they stopped.
    /// Sources not in `changes` run on. Returns what it did, one line each.
    pub(super) async fn swap_sources(
        self: &Rc<Self>,
        ex: &LocalExecutor<'_>,
        next: Config,
        changes: &[(String, crate::config::reload::SourceChange)],
    ) -> Result<Vec<String>, String> {
        use crate::config::reload::SourceChange;
        let change_of = |name: &str| changes.iter().find(|(n, _)| n == name).map(|c| c.1);
        let stopping: Vec<Rc<SourceStatus>> = self
            .sources()
            .into_iter()
            .filter(|s| change_of(&s.name).is_some())
            .collect();
        for s in &stopping {
            s.stop.stop();
        }
        self.room.notify(usize::MAX);
        loop {
            let l = self.orchestration.listen();
            if stopping.iter().all(|s| s.done.get()) {
                break;
            }
            l.await;
        }
        let ids = {
            let mut layout = self.layout.borrow_mut();
            let ids = layout_ids(&mut layout, &next)?;
            if ids.grew {
                write_layout(&self.options.state_dir, &layout)?;
            }
            let mut windows = self.shared.windows.borrow_mut();
            let new = layout_windows(&layout, windows.len()).expect("layout ids are dense");
            windows.extend(new);
            ids
        };
        let old = self.sources();
        let statuses: Vec<Rc<SourceStatus>> = next
            .raw_sources
            .iter()
            .map(
                |r| match (change_of(&r.name), old.iter().find(|s| s.name == r.name)) {
                    (None, Some(s)) => s.clone(),
                    _ => Rc::new(SourceStatus::new(&r.name)),
                },
            )
            .collect();
        let next = Rc::new(next);
        self.node
            .borrow_mut()
            .set_config(crate::config::fingerprint::config_fingerprint(&next));
        *self.config.borrow_mut() = next.clone();
        *self.source_ids.borrow_mut() = ids.sources;
        *self.dest_ids.borrow_mut() = ids.dests;
        *self.sources.borrow_mut() = statuses;
        let mut lines = Vec::new();
        for (name, change) in changes {
            match (
                change,
                next.raw_sources.iter().position(|r| &r.name == name),
            ) {
                (SourceChange::Removed, _) => lines.push(format!(
                    "raw-source '{name}' removed (stopped; its position is kept)"
                )),
                (_, Some(i)) => {
                    self.start_source(ex, &next, i);
                    lines.push(format!(
                        "raw-source '{name}' {}",
                        if *change == SourceChange::Added {
                            "added (started)"
                        } else {
                            "changed (started again where it stopped)"
                        }
                    ));
                }
                (_, None) => {}
            }
        }
        self.orchestration.notify(usize::MAX);
        Ok(lines)
    }
}
