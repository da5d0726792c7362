//! The engines' supervision: a sender per slot, spares swapped in for
//! failed engines, engines added and removed at run time, and the events
//! queued for a removed engine routed again over those left.

use super::owner::{Control, ToCore};
use super::*;
use crate::journal::plan;

/// Why an engine or spare was not added or removed, sorted by what the
/// caller does (STYLE 9). The admin API answers each with its HTTP status
/// (`daemon::answer`); a reload reports the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineChangeError {
    /// No engine of that name.
    Unknown(String),
    /// The change conflicts with what is: the name is taken, no slot is
    /// left, another add is under way, or a spare serves a slot.
    Conflict(String),
    /// The engine did not get ready within the deploy time.
    NotReady(String),
    /// The journal has no room for the events to move: try again once
    /// engines caught up.
    NoRoom(String),
    /// The journal cannot sync now.
    Unavailable(String),
    /// Reading or re-routing the journal failed.
    Journal(String),
}

impl std::fmt::Display for EngineChangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use EngineChangeError::*;
        match self {
            Unknown(m) | Conflict(m) | NotReady(m) | NoRoom(m) | Unavailable(m) | Journal(m) => {
                f.write_str(m)
            }
        }
    }
}

/// What supervision does with an engine slot (`Core::fail_over`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Supervision {
    Leave,
    /// It answers again after a failure: routing may use it again (a
    /// spare that took its place keeps the slot).
    Recover,
    /// It failed and nothing was done yet: a spare takes its slot, if one
    /// is left.
    FailOver,
}

/// Decides for a slot whose sender is in `state`; `down`: its failure was
/// handled; `stopped`: its sender is being stopped (removed, shutdown).
pub(super) fn supervision(state: crate::engine::State, down: bool, stopped: bool) -> Supervision {
    use crate::engine::State::*;
    match state {
        Ready if down => Supervision::Recover,
        Failed if !down && !stopped => Supervision::FailOver,
        _ => Supervision::Leave,
    }
}

/// What becomes of an engine being added whose sender is in `state`:
/// None, wait; `Some(true)`, it joins routing (ready); `Some(false)`, it is
/// dropped (not ready by its deadline).
pub(super) fn add_outcome(
    state: crate::engine::State,
    now: Instant,
    deadline: Instant,
) -> Option<bool> {
    match state {
        crate::engine::State::Ready => Some(true),
        _ if now >= deadline => Some(false),
        _ => None,
    }
}

/// One engine slot and its sender.
pub struct EngineHandle {
    /// Global id: the journal's engine (cluster offset + slot id).
    pub id: EngineId,
    pub cluster: usize,
    /// The slot's name (a spare serving it keeps the name).
    pub name: String,
    pub status: Rc<Watched>,
    pub stop: Rc<Stop>,
    /// Where the owner tells its sender what to do.
    pub told: Rc<crate::engine::sender::Told<crate::engine::sender::Orders>>,
    /// The failure was handled (spare swapped in, or none left).
    pub(super) down: bool,
}

/// An engine being added: its sender runs, and it joins routing once ready
/// (`Core::check_adding`).
pub(crate) struct Adding {
    c: usize,
    slot: EngineId,
    engine: crate::config::Engine,
    handle: EngineHandle,
    /// Not ready by then: not added.
    pub(super) deadline: Instant,
    /// Who asked: answered when it is done.
    purpose: AddFor,
}

impl Adding {
    /// The manager stops: the engine is not added; whoever asked is told.
    pub(super) fn stop(self) {
        self.handle.stop.stop();
        if let AddFor::Admin { call, .. } = self.purpose {
            let _ = call.reply.try_send(crate::admin::Reply::text(
                503,
                "the manager is stopping; the engine was not added",
            ));
        }
    }
}

/// Who asked for an engine to be added.
pub(super) enum AddFor {
    /// `PUT routerEngines/{map}/{engine}` (the call, answered when done).
    Admin {
        call: crate::admin::Call,
        map: String,
    },
    /// A reload's step.
    Reload(crate::config::reload::Change),
}

impl Core {
    /// The projects deployed to engines of cluster `c`.
    pub(super) fn deploys(&self, c: usize) -> Vec<Rc<Deploy>> {
        let mut out: Vec<Rc<Deploy>> = Vec::new();
        for m in self.config().esp_maps.iter().filter(|m| m.cluster == c) {
            // Loaded under its `project-name` (what `project-func` names);
            // `<project name>` is only the config's handle for `model-ref`.
            let p = &self.config().projects[m.model].project;
            if !out.iter().any(|d| d.name == p.name) {
                out.push(Rc::new(Deploy::new(&p.name, &p.xml)));
            }
        }
        out
    }

    /// Starts a sender for every engine slot.
    pub(super) fn start_engines(&self, ex: &LocalExecutor<'_>, ctl: &mut Control) {
        for (c, m) in self.memberships.iter().enumerate() {
            for slot in m.borrow().slots() {
                let h = self.spawn_sender(ex, ctl, c, slot.id, &slot.name, &slot.engine);
                ctl.engines.push(h);
            }
        }
    }

    /// Starts the sender of slot `slot` of cluster `c`, served by `engine`.
    pub(super) fn spawn_sender(
        &self,
        ex: &LocalExecutor<'_>,
        ctl: &Control,
        c: usize,
        slot: EngineId,
        name: &str,
        engine: &crate::config::Engine,
    ) -> EngineHandle {
        let id = self.engine_ids.id(c, slot);
        // Logs name the engine serving the slot (a spare by its own name).
        let cluster_mask = self.engine_ids.range_set(c).bits();
        let s = Sender::new(
            id,
            &engine.name,
            &engine.host,
            engine.ha_port,
            self.deploys(c),
            self.settings(),
        )
        .in_cluster(cluster_mask)
        .at(&engine.prefix, engine.connect.clone())
        .reporting_to({
            let inbox = self.inbox.0.clone();
            Rc::new(move |r| inbox.try_send(ToCore::Engine(r)).is_ok())
        });
        s.told.put(ctl.orders(id));
        // Checked at start for configured engines; one added later without
        // what it needs is still started, and its requests fail visibly.
        let s = match self.options.security.for_engine(engine) {
            Ok((t, c)) => s.reaching_with(t, c),
            Err(e) => {
                log::error!("{e}");
                s
            }
        };
        let h = EngineHandle {
            id,
            cluster: c,
            name: name.to_string(),
            status: s.status.clone(),
            stop: s.stop.clone(),
            told: s.told.clone(),
            down: false,
        };
        ex.spawn(s.run(self.shared.clone())).detach();
        h
    }

    /// Supervision, at every wake of the owner: a slot whose engine failed
    /// is given the cluster's next spare (same slot, same keys, same
    /// journal cursor); with none left its events wait.
    pub(super) fn fail_over(&self, ex: &LocalExecutor<'_>, ctl: &mut Control) {
        for i in 0..ctl.engines.len() {
            let h = &mut ctl.engines[i];
            match supervision(h.status.get().state, h.down, h.stop.is_stopped()) {
                Supervision::Leave => continue,
                Supervision::Recover => {
                    h.down = false;
                    let _ = self.memberships[h.cluster].borrow_mut().recover(&h.name);
                    continue;
                }
                Supervision::FailOver => h.down = true,
            }
            let (c, name) = (h.cluster, h.name.clone());
            let failover = self.memberships[c].borrow_mut().fail(&name);
            match failover {
                Ok(crate::route::Failover::Spare { slot, spare }) => {
                    let engine = self.memberships[c]
                        .borrow()
                        .slot(slot)
                        .map(|s| s.engine.clone())
                        .expect("the slot just swapped");
                    log::warn!(
                        "engine '{name}' failed; spare '{spare}' ({}:{}) takes its place and its keys",
                        engine.host,
                        engine.ha_port
                    );
                    ctl.engines[i].stop.stop();
                    let h = self.spawn_sender(ex, ctl, c, slot, &name, &engine);
                    ctl.engines[i] = h;
                }
                Ok(crate::route::Failover::NoSpare { .. }) => {
                    log::warn!(
                        "engine '{name}' failed and cluster '{}' has no spare left; its events wait for it",
                        self.config().clusters[c].name
                    );
                }
                Err(e) => log::error!("engine '{name}': {e}"),
            }
        }
    }

    /// The slot of cluster `c` an engine named `name` would take, or why
    /// it cannot be added now.
    pub(super) fn add_slot(
        &self,
        ctl: &Control,
        c: usize,
        name: &str,
    ) -> Result<EngineId, EngineChangeError> {
        if ctl.adding.is_some() {
            return Err(EngineChangeError::Conflict(
                "another engine is being added; try again once that PUT answered".to_string(),
            ));
        }
        let cluster = &self.config().clusters[c];
        let m = self.memberships[c].borrow();
        if m.by_name(name).is_some() || m.spares().iter().any(|s| s.name == name) {
            return Err(EngineChangeError::Conflict(format!(
                "cluster '{}' already has an engine named '{name}'; DELETE it first or choose another name",
                cluster.name
            )));
        }
        match m.free_id() {
            Some(id) if id < self.engine_ids.capacity(c) => Ok(id),
            _ => Err(EngineChangeError::Conflict(format!(
                "cluster '{}' has {} engines, the most it may have (its config's {} plus {SLOTS_SPARE}); remove one first",
                cluster.name,
                m.slots().len(),
                cluster.engines.len()
            ))),
        }
    }

    /// Starts adding `engine` to slot `slot` of cluster `c` (`add_slot`;
    /// admin API, reload): its sender deploys the projects first; only once
    /// it is ready does routing send it events (`check_adding`). An engine
    /// that does not get ready within the deploy time is not added.
    pub(super) fn start_add(
        &self,
        ex: &LocalExecutor<'_>,
        ctl: &mut Control,
        c: usize,
        slot: EngineId,
        engine: crate::config::Engine,
        purpose: AddFor,
    ) {
        let id = self.engine_ids.id(c, slot);
        self.shared.journal.borrow_mut().add_engine(id);
        let handle = self.spawn_sender(ex, ctl, c, slot, &engine.name, &engine);
        let deadline = crate::clock::now()
            + Duration::from_millis(self.options.timeout_ms.max(10_000))
            + Duration::from_millis(self.options.ticktime_ms);
        ctl.adding = Some(Adding {
            c,
            slot,
            engine,
            handle,
            deadline,
            purpose,
        });
    }

    /// The engine being added: once ready it joins routing; past its
    /// deadline it is dropped. Whoever asked is answered either way.
    pub(super) fn check_adding(self: &Rc<Self>, ex: &LocalExecutor<'_>, ctl: &mut Control) {
        let Some(a) = &ctl.adding else { return };
        let state = a.handle.status.get().state;
        let Some(ready) = add_outcome(state, crate::clock::now(), a.deadline) else {
            return;
        };
        let a = ctl.adding.take().expect("looked at above");
        let (c, slot, engine) = (a.c, a.slot, a.engine);
        let r = if ready {
            let name = engine.name.clone();
            let added = self.memberships[c].borrow_mut().add(engine.clone());
            debug_assert_eq!(added.as_ref().ok(), Some(&slot));
            self.keep_slot(c, |l, cluster| l.set_engine(cluster, slot, &name));
            ctl.engines.push(a.handle);
            Ok(slot)
        } else {
            a.handle.stop.stop();
            self.shared
                .journal
                .borrow_mut()
                .remove_engine(self.engine_ids.id(c, slot));
            let why = a.handle.status.get().last_error.unwrap_or_default();
            Err(EngineChangeError::NotReady(format!(
                "engine '{}' ({}:{}) did not get ready, so it was not added: {why}",
                engine.name, engine.host, engine.ha_port
            )))
        };
        match a.purpose {
            AddFor::Admin { call, map } => self.added_answer(ctl, call, &map, c, &engine, r),
            AddFor::Reload(change) => self.reload_step_done(ex, ctl, change, r.map(|_| ())),
        }
    }

    /// Removes engine `name` from cluster `c` (admin API): its sender stops
    /// and its queued events are routed again, by each map's policy, to the
    /// engines that remain. Returns how many events moved.
    pub(crate) fn remove_engine(
        &self,
        ctl: &mut Control,
        c: usize,
        name: &str,
    ) -> Result<u64, EngineChangeError> {
        let cluster = &self.config().clusters[c];
        let mut after = self.memberships[c].borrow().clone();
        let slot = after.remove(name).map_err(|e| match e {
            crate::route::MembershipError::UnknownEngine(_) => {
                EngineChangeError::Unknown(format!("cluster '{}': {e}", cluster.name))
            }
            _ => EngineChangeError::Conflict(format!("cluster '{}': {e}", cluster.name)),
        })?;
        let id = self.engine_ids.id(c, slot.id);
        // Make every record destined to it readable, then size the move.
        self.shared
            .journal
            .borrow_mut()
            .sync()
            .map_err(|e| EngineChangeError::Unavailable(format!("the journal cannot sync: {e}")))?;
        let need = self
            .reroute_plan(c, id, &after, &mut |_, _| {})
            .map_err(|e| EngineChangeError::Journal(format!("reading the journal: {e}")))?;
        let room = self.shared.journal.borrow().room_bytes();
        if need.1 > room {
            return Err(EngineChangeError::NoRoom(
                format!(
                    "re-routing the {} events queued for '{name}' needs {} bytes of journal and {room} are free; nothing was changed, try again once engines caught up",
                    need.0, need.1
                ),
            ));
        }
        if let Some(h) = ctl.engines.iter().find(|h| h.id == id) {
            h.stop.stop();
        }
        *self.memberships[c].borrow_mut() = after;
        let moved = {
            let after = self.memberships[c].borrow();
            self.reroute(c, id, &after)
                .map_err(|e| EngineChangeError::Journal(format!("re-routing: {e}")))?
        };
        ctl.engines.retain(|h| h.id != id);
        let mut j = self.shared.journal.borrow_mut();
        j.remove_engine(id);
        j.sync()
            .map_err(|e| EngineChangeError::Unavailable(format!("the journal cannot sync: {e}")))?;
        drop(j);
        self.shared.synced.notify(usize::MAX);
        self.room.notify(usize::MAX);
        self.keep_slot(c, |l, cluster| l.remove_engine(cluster, &slot.name));
        log::info!(
            "engine '{}' removed from cluster '{}'; {moved} queued events re-routed",
            slot.name,
            cluster.name
        );
        Ok(moved)
    }

    /// Puts `engine` in cluster `c`'s reserve (a reload). A slot that failed
    /// with no spare left takes it at once.
    pub(super) fn add_spare(
        &self,
        ctl: &mut Control,
        c: usize,
        engine: crate::config::Engine,
    ) -> Result<(), EngineChangeError> {
        self.memberships[c]
            .borrow_mut()
            .add_spare(engine)
            .map_err(|e| {
                EngineChangeError::Conflict(format!(
                    "cluster '{}': {e}",
                    self.config().clusters[c].name
                ))
            })?;
        for h in ctl.engines.iter_mut() {
            if h.cluster == c && h.down && h.status.get().state == crate::engine::State::Failed {
                let _ = self.memberships[c].borrow_mut().recover(&h.name);
                h.down = false;
            }
        }
        Ok(())
    }

    /// Changes the layout's engine slots of cluster `c` with `change` and
    /// writes the file when it changed (an engine added or removed live).
    pub(super) fn keep_slot(
        &self,
        c: usize,
        change: impl FnOnce(&mut crate::journal::layout::Layout, &str) -> bool,
    ) {
        let config = self.config();
        let mut layout = self.layout.borrow_mut();
        if change(&mut layout, &config.clusters[c].name) {
            if let Err(e) = write_layout(&self.options.state_dir, &layout) {
                log::warn!("{e}; engine slots may be laid out anew at the next start (queues are re-routed then, not lost)");
            }
        }
    }

    /// Forgets engine `name` of cluster `c` in `engines-added` (removed, or
    /// now listed in the config).
    pub(crate) fn forget_added(&self, c: usize, name: &str) {
        let cluster = &self.config().clusters[c].name;
        if let Err(e) = self.added.borrow_mut().remove(cluster, name) {
            log::warn!(
                "cannot rewrite {}/{}: {e}; engine '{name}' may be added again at the next start",
                self.options.state_dir.display(),
                crate::engine::added::FILE_NAME
            );
        }
    }

    /// Appends again, routed over `m`, every event queued for engine `gone`
    /// (global id) of cluster `c`, to the engines of `m` that did not have
    /// it already. Syncs as it goes; `gone` keeps its cursor (and so its
    /// records) until the caller removes it. Returns the events moved.
    pub(super) fn reroute(&self, c: usize, gone: EngineId, m: &Membership) -> std::io::Result<u64> {
        let mut moved = 0;
        let mut failed = None;
        self.reroute_plan(c, gone, m, &mut |rec, payload| {
            if failed.is_some() {
                return;
            }
            let mut j = self.shared.journal.borrow_mut();
            moved += u64::from(rec.count);
            if j.append_rerouted(rec, payload).is_err() {
                failed = Some(std::io::Error::other("the journal is full"));
                return;
            }
            if j.pending_bytes() >= self.options.commit_bytes {
                if let Err(e) = j.sync() {
                    failed = Some(e);
                }
            }
        })?;
        match failed {
            Some(e) => Err(e),
            None => Ok(moved),
        }
    }

    /// Walks the records queued for `gone` and calls `emit` with each new
    /// record routing gives; returns (events, bytes) of what it emitted.
    pub(super) fn reroute_plan(
        &self,
        c: usize,
        gone: EngineId,
        m: &Membership,
        emit: &mut dyn FnMut(NewRecord, &[u8]),
    ) -> std::io::Result<(u64, u64)> {
        let config = self.config();
        let maps: Vec<&crate::config::Map> = config.esp_maps.iter().flat_map(|m| &m.maps).collect();
        let redundancy = config.clusters[c].redundancy;
        let mut routers: std::collections::BTreeMap<u16, Router> = Default::default();
        let mut pos = self.shared.journal.borrow().reader(gone);
        let mut payload = Vec::new();
        let mut routes = Routes::default();
        let mut sub = BlockWriter::default();
        let (mut events_n, mut bytes) = (0u64, 0u64);
        loop {
            let h = self
                .shared
                .journal
                .borrow_mut()
                .read_next(gone, &mut pos, &mut payload)?;
            let Some(h) = h else { break };
            // A map since removed from the config: its events go to one
            // engine that remains (its policy is not known any more).
            let policy = match self.dest_ids.borrow().iter().position(|&d| d == h.target) {
                Some(i) => maps[i].destination.policy.clone(),
                None => crate::config::Policy::RoundRobin,
            };
            let router = routers
                .entry(h.target)
                .or_insert_with(|| Router::new(policy, redundancy));
            let evs: Vec<_> = events(&payload).flatten().collect();
            let fields: Vec<Vec<&[u8]>> = evs
                .iter()
                .map(|e| e.fields().map(|f| f.unwrap_or(&[])).collect())
                .collect();
            let refs: Vec<&Vec<&[u8]>> = fields.iter().collect();
            router.route(m, &refs, &mut routes);
            let routed: Vec<plan::Routed> = routes
                .groups()
                .map(|(set, events)| plan::Routed {
                    target: h.target,
                    dest: self.engine_ids.global(c, set),
                    events,
                })
                .collect();
            for (g, rec) in plan::rerouted_records(h.dest, h.time_ms, gone, &routed) {
                let n = evs.len() as u32;
                let payload = plan::payload(&payload, n, &evs, routed[g].events, &mut sub);
                events_n += u64::from(rec.count);
                bytes += (crate::journal::record::HEADER_LEN + payload.len()) as u64;
                emit(rec, payload);
            }
        }
        Ok((events_n, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::State;

    #[test]
    fn an_engine_being_added_joins_once_ready_and_is_dropped_at_its_deadline() {
        let now = Instant::now();
        let later = now + Duration::from_secs(10);
        assert_eq!(add_outcome(State::Deploying, now, later), None);
        assert_eq!(add_outcome(State::Ready, now, later), Some(true));
        assert_eq!(add_outcome(State::Ready, later, later), Some(true));
        assert_eq!(add_outcome(State::Failing, later, later), Some(false));
        assert_eq!(add_outcome(State::Connecting, later, now), Some(false));
    }

    #[test]
    fn a_failed_engine_is_failed_over_once_and_recovered_when_ready() {
        assert_eq!(
            supervision(State::Failed, false, false),
            Supervision::FailOver
        );
        assert_eq!(
            supervision(State::Failed, true, false),
            Supervision::Leave,
            "handled"
        );
        assert_eq!(
            supervision(State::Failed, false, true),
            Supervision::Leave,
            "stopping"
        );
        assert_eq!(supervision(State::Ready, true, false), Supervision::Recover);
        for s in [
            State::Connecting,
            State::Deploying,
            State::Failing,
            State::Ready,
        ] {
            assert_eq!(supervision(s, false, false), Supervision::Leave, "{s:?}");
        }
    }
}
