//! SIGHUP: the config file read again and applied where it may change live
//! (`config::reload` plans it; this does it, in order).

use super::engines::AddFor;
use super::owner::Control;
use super::*;
use crate::config::reload::{Change, SourceChange};

/// A reload under way: the steps of its plan the owner walks between
/// messages (an engine to get ready, sources to stop).
pub(crate) struct ReloadRun {
    started: Instant,
    /// The running config with the changes applied so far.
    base: Config,
    /// The config read (its engines become `base`'s at the end).
    new: Option<Config>,
    changes: std::collections::VecDeque<Change>,
    sources: Vec<(String, SourceChange)>,
    done: Vec<String>,
    failed: Vec<String>,
    /// The sources being stopped before the config is swapped.
    stopping: Option<Vec<Rc<SourceStatus>>>,
    /// A step waits (an engine being added).
    waiting: bool,
}

/// What a reload under way does next (`Core::advance_reload`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// An engine it adds is not ready yet, or sources it stopped still run.
    Wait,
    /// Make the next engine or spare change.
    Change,
    /// Every engine change is made: stop the sources it removes or changes.
    StopSources,
    /// They stopped: swap the config in and finish.
    Swap,
}

/// Decides from where the reload stands: `waiting` for an engine,
/// `stopping` the sources stopped so far (each: its task ended), engine
/// changes left.
pub(super) fn next(waiting: bool, stopping: Option<&[bool]>, changes_left: usize) -> Next {
    match stopping {
        _ if waiting => Next::Wait,
        Some(ended) if ended.iter().all(|&e| e) => Next::Swap,
        Some(_) => Next::Wait,
        None if changes_left > 0 => Next::Change,
        None => Next::StopSources,
    }
}

impl Core {
    /// Starts a reload: reads the config file again and plans what may
    /// change live (`config::reload`): engines and spares, through the same
    /// paths as the admin API. A config that does not check, or that
    /// changes what cannot change live, is refused whole.
    pub(super) fn begin_reload(self: &Rc<Self>, ex: &LocalExecutor<'_>, ctl: &mut Control) {
        crate::systemd::notify("RELOADING=1");
        let started = crate::clock::now();
        match self.plan_reload(ctl) {
            Ok(Ok(run)) => {
                ctl.reload = Some(ReloadRun { started, ..run });
                self.advance_reload(ex, ctl);
            }
            Ok(Err(done)) => self.reload_done(ex, ctl, started, Ok(done)),
            Err(why) => self.reload_done(ex, ctl, started, Err(why)),
        }
    }

    /// The plan of a reload; `Ok(Err(line))` when nothing is to be done.
    fn plan_reload(&self, ctl: &Control) -> Result<Result<ReloadRun, String>, String> {
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
        let base = (*self.config()).clone();
        let plan = crate::config::reload::plan(&base, &new);
        if !plan.refused.is_empty() {
            return Err(format!("{file}:\n  {}", plan.refused.join("\n  ")));
        }
        let unchanged = plan.changes.is_empty() && plan.sources.is_empty();
        if unchanged && base == new {
            return Ok(Err("nothing changed".to_string()));
        }
        if ctl.node.managers().len() > 1 {
            log::warn!(
                "reload: this manager has failover peers; reload each of them with the same config, or their routing differs after a takeover"
            );
        }
        Ok(Ok(ReloadRun {
            started: crate::clock::now(),
            base,
            new: Some(new),
            changes: plan.changes.into(),
            sources: plan.sources,
            done: Vec::new(),
            failed: Vec::new(),
            stopping: None,
            waiting: false,
        }))
    }

    /// Walks the reload under way as far as it goes without waiting.
    pub(super) fn advance_reload(self: &Rc<Self>, ex: &LocalExecutor<'_>, ctl: &mut Control) {
        loop {
            let Some(run) = ctl.reload.as_mut() else {
                return;
            };
            let ended: Option<Vec<bool>> = run
                .stopping
                .as_ref()
                .map(|st| st.iter().map(|s| s.done.get()).collect());
            match next(run.waiting, ended.as_deref(), run.changes.len()) {
                Next::Wait => return,
                Next::Change | Next::StopSources => {}
                Next::Swap => return self.finish_reload(ex, ctl),
            }
            let Some(change) = run.changes.pop_front() else {
                // Every engine change is made: stop the sources the reload
                // removes or changes (they flush what they read).
                let stopping: Vec<Rc<SourceStatus>> = self
                    .sources()
                    .into_iter()
                    .filter(|s| run.sources.iter().any(|(n, _)| n == &s.name))
                    .collect();
                for s in &stopping {
                    s.stop.stop();
                }
                self.room.notify(usize::MAX);
                run.stopping = Some(stopping);
                continue;
            };
            let c = change.cluster();
            let cluster = self.config().clusters[c].name.clone();
            let r = match &change {
                Change::AddEngine { engine, .. } => {
                    let there = self.memberships[c].borrow().by_name(&engine.name).is_some();
                    if there {
                        self.forget_added(c, &engine.name);
                        Ok(format!(
                            "engine '{}' of cluster '{cluster}' was added over the admin API and is now in the config",
                            engine.name
                        ))
                    } else {
                        match self.add_slot(ctl, c, &engine.name) {
                            Ok(slot) => {
                                let (e, why) = (engine.clone(), AddFor::Reload(change.clone()));
                                self.start_add(ex, ctl, c, slot, e, why);
                                if let Some(run) = ctl.reload.as_mut() {
                                    run.waiting = true;
                                }
                                return;
                            }
                            Err(e) => Err(e),
                        }
                    }
                }
                Change::RemoveEngine { name, .. } => match self.remove_engine(ctl, c, name) {
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
                    .add_spare(ctl, c, engine.clone())
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
            self.reload_step(ctl, &change, r);
        }
    }

    /// The sources it stopped ended: swaps the config in and finishes.
    fn finish_reload(self: &Rc<Self>, ex: &LocalExecutor<'_>, ctl: &mut Control) {
        let mut run = ctl.reload.take().expect("looked at above");
        let mut next = run.new.take().expect("swapped once");
        next.clusters = std::mem::take(&mut run.base.clusters);
        match self.swap_sources(ex, next, &run.sources) {
            Ok(lines) => {
                // Every manager of a failover group runs the same config.
                let f = crate::config::fingerprint::config_fingerprint(&self.config());
                ctl.node.set_config(f);
                run.done.extend(lines);
            }
            Err(e) => run.failed.push(e),
        }
        if run.done.is_empty() && run.failed.is_empty() {
            run.done
                .push("orchestration or maps of no running source changed".to_string());
        }
        let r = if run.failed.is_empty() {
            Ok(run.done.join("; "))
        } else {
            Err(format!(
                "{} of {} changes not applied (a later reload tries them again): {}{}",
                run.failed.len(),
                run.failed.len() + run.done.len(),
                run.failed.join("; "),
                if run.done.is_empty() {
                    String::new()
                } else {
                    format!("; applied: {}", run.done.join("; "))
                }
            ))
        };
        self.reload_done(ex, ctl, run.started, r);
    }

    /// Records what one step of the reload did.
    fn reload_step(
        &self,
        ctl: &mut Control,
        change: &Change,
        r: Result<String, EngineChangeError>,
    ) {
        let Some(run) = ctl.reload.as_mut() else {
            return;
        };
        match r {
            Ok(m) => {
                crate::config::reload::apply(&mut run.base, change);
                run.done.push(m);
            }
            Err(e) => run.failed.push(e.to_string()),
        }
    }

    /// The reload's engine being added is ready (or not): the reload goes on.
    pub(super) fn reload_step_done(
        self: &Rc<Self>,
        ex: &LocalExecutor<'_>,
        ctl: &mut Control,
        change: Change,
        r: Result<(), EngineChangeError>,
    ) {
        let Change::AddEngine { cluster: c, engine } = &change else {
            return;
        };
        let r = r.map(|()| {
            self.forget_added(*c, &engine.name);
            format!(
                "engine '{}' ({}:{}) added to cluster '{}'",
                engine.name,
                engine.host,
                engine.ha_port,
                self.config().clusters[*c].name
            )
        });
        if let Some(run) = ctl.reload.as_mut() {
            run.waiting = false;
        }
        self.reload_step(ctl, &change, r);
        self.advance_reload(ex, ctl);
    }

    /// A reload ended: counted, logged, kept for `status`; one asked for
    /// meanwhile starts.
    fn reload_done(
        self: &Rc<Self>,
        ex: &LocalExecutor<'_>,
        ctl: &mut Control,
        started: Instant,
        r: Result<String, String>,
    ) {
        let ms = started.elapsed().as_millis();
        let (applied, refused) = ctl.reloads;
        let line = match &r {
            Ok(done) => {
                ctl.reloads = (applied + 1, refused);
                log::info!("reload: {done} ({ms} ms)");
                format!("applied in {ms} ms: {done}")
            }
            Err(why) => {
                ctl.reloads = (applied, refused + 1);
                log::error!("reload refused, the running config stays: {why}");
                format!("refused: {why}")
            }
        };
        ctl.last_reload = Some(line);
        crate::systemd::notify("READY=1");
        if std::mem::take(&mut ctl.reload_again) {
            self.begin_reload(ex, ctl);
        }
    }

    /// Swaps `next` in as the running config once the tasks of the sources
    /// `changes` removes or changes ended (`advance_reload` stopped them),
    /// gives the new sources and destinations their journal ids, and starts
    /// the sources added or changed, which resume where they stopped.
    /// Sources not in `changes` run on. Returns what it did, one line each.
    pub(super) fn swap_sources(
        self: &Rc<Self>,
        ex: &LocalExecutor<'_>,
        next: Config,
        changes: &[(String, crate::config::reload::SourceChange)],
    ) -> Result<Vec<String>, String> {
        let change_of = |name: &str| changes.iter().find(|(n, _)| n == name).map(|c| c.1);
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
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_makes_its_changes_then_stops_sources_then_swaps() {
        assert_eq!(next(false, None, 2), Next::Change);
        assert_eq!(next(true, None, 1), Next::Wait, "an engine gets ready");
        assert_eq!(next(false, None, 0), Next::StopSources);
        assert_eq!(next(false, Some(&[true, false]), 0), Next::Wait);
        assert_eq!(next(false, Some(&[true, true]), 0), Next::Swap);
        assert_eq!(next(false, Some(&[]), 0), Next::Swap, "none to stop");
    }
}
