//! The manager: the only place that wires the stages together
//! (ARCHITECTURE §1, §6).
//!
//! ```text
//! source task (one per raw-source) ─ decode ─ block of `blocksize` events
//!     └─ route (per map) ─ journal append ──▶ committer task: group sync
//!                                                   │ notifies
//! sender task (one per engine) ◀────────────────────┘ reads, publishes, acks
//! ```
//! Everything runs on one `LocalExecutor` on the main thread. The control
//! state (engine slots, failover, orchestration, reloads) belongs to one
//! owner task that hears from the others through one inbox (`owner`). The
//! only `await`s that hold data are a source waiting for journal room
//! (backpressure: the block stays in RAM, the source reads nothing more, so
//! a file stays where it is and a socket's TCP window closes) and senders
//! waiting for engines.
//!
//! Positions and torn syncs: `journal::plan` decides the records a routed
//! block becomes and which one carries the position after it.

use crate::config::fs::FsName;
use crate::config::{AdapterState, Config};
use crate::engine::deadletter::DeadLetters;
use crate::engine::encode::Window;
use crate::engine::sender::{Deploy, Sender, Settings, Shared, Stop, Watched};
use crate::journal::block::{events, BlockWriter};
use crate::journal::storage::default_bytes_max;
use crate::journal::{DirStorage, Full, Journal, Limits, NewRecord, Position};
use crate::limits::EVENT_MAX;
use crate::route::{EngineId, EngineSet, Keyed, Membership, Router, Routes};
use crate::source::{ConnectSource, FileSource, Layout, ListenSource, Next, SourceError, Stats};
use async_executor::LocalExecutor;
use async_io::Timer;
use event_listener::Event;
use futures_lite::future;
use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

mod answer;
mod commit;
mod engines;
pub mod failover;
mod layout;
mod owner;
mod reload;
mod source_task;
mod sources;
mod status;

pub use crate::source::SourceState;
pub use engines::{EngineChangeError, EngineHandle};
pub use layout::names;
use layout::*;
use owner::Control;
pub use owner::ToCore;
use source_task::*;
pub use sources::SourceStatus;
use sources::*;

/// How the manager runs, from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    pub state_dir: PathBuf,
    pub ticktime_ms: u64,
    pub retries: u32,
    pub timeout_ms: u64,
    /// `-buffersize`: unacknowledged events per engine before sources pause.
    pub buffersize: u64,
    /// `-inflight`: requests per engine whose acknowledgement may
    /// wait for the group commit.
    pub inflight: usize,
    /// `-pipeline`: up to `inflight` requests on the wire at once.
    pub pipeline: bool,
    /// Journal byte cap (`-state-max`); None: [`default_bytes_max`].
    pub journal_max: Option<u64>,
    /// Group commit: sync at most this long after the first unsynced append...
    pub commit_every: Duration,
    /// ...or as soon as this many bytes wait.
    pub commit_bytes: usize,
    /// On SIGTERM: how long senders may go on draining.
    pub grace: Duration,
    /// A progress line this often while events move (`-progress-s`; zero: never).
    pub progress: Duration,
    /// Stop by itself once every source finished and every engine caught up
    /// (`edgecm demo`; a real manager runs until signalled).
    pub exit_when_drained: bool,
    /// Leader or standby (`cluster`).
    pub failover: crate::daemon::failover::FailoverOptions,
    /// TLS and credentials for engines and peers.
    pub security: crate::auth::Security,
}

impl Options {
    pub fn new(state_dir: PathBuf) -> Options {
        Options {
            state_dir,
            ticktime_ms: 1000,
            retries: 2,
            timeout_ms: 3000,
            buffersize: crate::limits::DEFAULT_BUFFERSIZE,
            inflight: crate::limits::DEFAULT_INFLIGHT,
            pipeline: false,
            journal_max: None,
            commit_every: Duration::from_millis(50),
            commit_bytes: 1 << 20,
            grace: Duration::from_secs(5),
            progress: Duration::from_secs(60),
            exit_when_drained: false,
            failover: Default::default(),
            security: Default::default(),
        }
    }
}

pub struct Core {
    /// The config as started or last reloaded (`Core::config`).
    config: RefCell<Rc<Config>>,
    pub options: Options,
    pub shared: Rc<Shared<DirStorage>>,
    pub memberships: Vec<RefCell<Membership>>,
    /// Cluster and slot to the journal's engine id, and back.
    pub(crate) engine_ids: crate::route::ids::EngineIds,
    /// One per raw-source of the current config, in its order.
    sources: RefCell<Vec<Rc<SourceStatus>>>,
    /// Notified on every append (wakes the committer).
    appended: Event,
    /// Notified after every sync (wakes sources waiting for room).
    room: Event,
    pub stop_sources: Rc<Stop>,
    pub started: Instant,
    /// The owner's inbox (`owner`): everything that asks the core for
    /// something or tells it what happened.
    inbox: (
        async_channel::Sender<ToCore>,
        async_channel::Receiver<ToCore>,
    ),
    /// The control state until `run` hands it to the owner task.
    unowned: RefCell<Option<Control>>,
    pub traffic: crate::daemon::failover::Traffic,
    /// The journal's id of each raw-source and of each map destination, in
    /// config order (`journal::layout`).
    layout: RefCell<crate::journal::layout::Layout>,
    pub(crate) source_ids: RefCell<Vec<u16>>,
    pub(crate) dest_ids: RefCell<Vec<u16>>,
    /// Engines added over the admin API (`engine::added`), kept in the state dir.
    pub(crate) added: RefCell<crate::engine::added::AddedEngines>,
}

impl Core {
    /// Opens the journal in the state dir and sets up engines and sources.
    pub fn new(config: Config, options: Options) -> Result<Rc<Core>, String> {
        let storage = DirStorage::open(&options.state_dir)
            .map_err(|e| format!("cannot use state dir {}: {e}", options.state_dir.display()))?;
        let bytes_max = match options.journal_max {
            Some(n) => n,
            None => {
                let (cap, free, reserve) = default_bytes_max(&options.state_dir).map_err(|e| {
                    format!(
                        "cannot measure the free space of {}: {e}",
                        options.state_dir.display()
                    )
                })?;
                log::info!(
                    "journal: holds at most {} MiB ({} MiB free in {} less a {} MiB reserve, at most 1024 MiB; -state-max sets it)",
                    cap >> 20,
                    free >> 20,
                    options.state_dir.display(),
                    reserve >> 20
                );
                if cap < 2 * crate::journal::SEGMENT_MAX {
                    log::warn!(
                        "journal: only {} KiB of flash for the queue; sources will pause often (free space or -state-max)",
                        cap >> 10
                    );
                }
                cap
            }
        };
        let limits = Limits {
            bytes_max,
            // At least four segments under the cap, and under the free
            // space (a cap set above it, or a disk others fill): the last
            // segment is never freed, so one segment could never make room.
            segment_max: crate::journal::SEGMENT_MAX
                .min(bytes_max / 4)
                .min(
                    default_bytes_max(&options.state_dir).map_or(u64::MAX, |(_, free, _)| free / 4),
                )
                .max(crate::journal::RECORD_MAX as u64),
            engine_events_max: options.buffersize,
        };
        let mut journal = Journal::open(storage, limits).map_err(|e| {
            format!(
                "cannot open the journal in {}: {e}",
                options.state_dir.display()
            )
        })?;
        let reference = crate::journal::reference::Reference::open(
            &options.state_dir,
            crate::limits::REFERENCE_BYTES_MAX,
            journal.next_seq(),
        )
        .map_err(|e| {
            format!(
                "cannot open {}/{}: {e}",
                options.state_dir.display(),
                crate::journal::reference::FILE_NAME
            )
        })?;
        if reference.cut_bytes > 0 {
            log::warn!(
                "reference data: cut {} bytes at the end of {} (torn, damaged, or not in the journal)",
                reference.cut_bytes,
                crate::journal::reference::FILE_NAME
            );
        }
        let r = &journal.recovery;
        if r.records > 0 || r.torn_bytes > 0 || !r.corrupt.is_empty() {
            log::info!(
                "journal: recovered {} records ({} events) in {} segments{}{}",
                r.records,
                r.events,
                r.segments,
                if r.torn_bytes > 0 {
                    format!(", cut a torn tail of {} bytes", r.torn_bytes)
                } else {
                    String::new()
                },
                if r.lost_events > 0 {
                    format!(", {} events lost to corruption", r.lost_events)
                } else {
                    String::new()
                }
            );
        }
        let node = crate::daemon::failover::start_node(
            &options.state_dir,
            &options.failover,
            crate::failover::Timing {
                tick_ms: options.ticktime_ms.max(1),
                retries: options.retries,
            },
        )
        .map_err(|e| format!("failover: {e}"))?;
        let LayoutNow {
            layout,
            ids,
            engine_ids,
        } = open_layout(&options.state_dir, &config)?;
        let mut layout = layout;
        let added = crate::engine::added::AddedEngines::open(&options.state_dir);
        let mut cursors = EngineSet::EMPTY;
        for (e, _) in journal.engines() {
            cursors.insert(e);
        }
        let mut layout_changed = false;
        let mut memberships = Vec::new();
        let mut known = EngineSet::EMPTY;
        for (c, cl) in config.clusters.iter().enumerate() {
            // Each engine in the slot it had (`layout`); a state dir that
            // has none for this cluster yet numbers by config order, as
            // slots were numbered before.
            let names: Vec<&str> = cl.engines.iter().map(|e| e.name.as_str()).collect();
            let over_rest: Vec<(u8, &str)> = added
                .entries()
                .iter()
                .filter(|a| a.cluster == cl.name)
                .map(|a| (a.slot, a.engine.name.as_str()))
                .collect();
            let slots: Vec<u8> = if layout.engines.iter().any(|e| e.cluster == cl.name) {
                let busy = |s: u8| {
                    cursors.contains(engine_ids.id(c, s)) || over_rest.iter().any(|r| r.0 == s)
                };
                let keep = |n: &str| over_rest.iter().any(|r| r.1 == n);
                let (slots, changed) = layout
                    .engine_slots(&cl.name, &names, engine_ids.capacity(c), &busy, &keep)
                    .map_err(|e| format!("{}: {e}", crate::journal::layout::FILE_NAME))?;
                layout_changed |= changed;
                slots
            } else {
                let none = |_: u8| false;
                let keep = |_: &str| true;
                let (slots, _) = layout
                    .engine_slots(&cl.name, &names, engine_ids.capacity(c), &none, &keep)
                    .map_err(|e| format!("{}: {e}", crate::journal::layout::FILE_NAME))?;
                layout_changed = true;
                slots
            };
            let mut m = Membership::new(&[], &cl.spares)
                .map_err(|e| format!("cluster '{}': {e}", cl.name))?;
            for (e, &slot) in cl.engines.iter().zip(&slots) {
                m.add_at(slot, e.clone())
                    .map_err(|err| format!("cluster '{}': {err}", cl.name))?;
            }
            for slot in m.slots() {
                known.insert(engine_ids.id(c, slot.id));
                journal
                    .restore_engine(engine_ids.id(c, slot.id))
                    .map_err(|e| format!("journal: {e}"))?;
            }
            memberships.push(RefCell::new(m));
        }
        if layout_changed {
            write_layout(&options.state_dir, &layout)?;
        }
        // Engines added over the admin API before this start, in the slots
        // they had (so their queued events are still theirs).
        for a in added.entries() {
            let Some(c) = config.clusters.iter().position(|c| c.name == a.cluster) else {
                log::warn!(
                    "{}: engine '{}' was added to cluster '{}', which the config no longer has; not added again",
                    crate::engine::added::FILE_NAME,
                    a.engine.name,
                    a.cluster
                );
                continue;
            };
            let m = memberships[c].get_mut();
            let slot = if a.slot < engine_ids.capacity(c) {
                m.add_at(a.slot, a.engine.clone())
            } else {
                m.add(a.engine.clone())
            };
            let slot = match slot.or_else(|_| m.add(a.engine.clone())) {
                Ok(slot) if slot < engine_ids.capacity(c) => slot,
                Ok(slot) => {
                    let _ = m.remove(&a.engine.name);
                    log::warn!(
                        "engine '{}' (added over the admin API) has no slot left in cluster '{}' (slot {slot}); not added again",
                        a.engine.name,
                        a.cluster
                    );
                    continue;
                }
                Err(e) => {
                    log::warn!(
                        "engine '{}' (added over the admin API): cluster '{}': {e}; not added again",
                        a.engine.name,
                        a.cluster
                    );
                    continue;
                }
            };
            known.insert(engine_ids.id(c, slot));
            journal
                .restore_engine(engine_ids.id(c, slot))
                .map_err(|e| format!("journal: {e}"))?;
            log::info!(
                "engine '{}' ({}:{}) added over the admin API before, kept in cluster '{}' ({})",
                a.engine.name,
                a.engine.host,
                a.engine.ha_port,
                a.cluster,
                crate::engine::added::FILE_NAME
            );
        }
        // Engines the journal has and the config does not (added through the
        // admin API before a restart and removed since, or gone from the
        // config): their backlog goes to the config's.
        let orphans: Vec<EngineId> = journal
            .engines()
            .map(|(e, _)| e)
            .filter(|&e| !known.contains(e))
            .collect();
        // Every destination the state dir knows, also of maps since removed
        // (their queued events still go to their window), by journal id.
        let windows = layout_windows(&layout, 0).ok_or_else(|| {
                format!(
                    "{}/{}: destination ids are not 0 to {} each once; restore the file or remove it (then ids follow the config's order)",
                    options.state_dir.display(),
                    crate::journal::layout::FILE_NAME,
                    layout.dests.len().saturating_sub(1)
                )
            })?;
        let shared = Rc::new(Shared {
            journal: RefCell::new(journal),
            synced: Event::new(),
            acked: Event::new(),
            dead_letters: RefCell::new(DeadLetters::new(&options.state_dir)),
            deployed: RefCell::new(crate::engine::deployed::Deployed::open(&options.state_dir)),
            reference: RefCell::new(reference),
            windows: RefCell::new(windows),
        });
        let sources = config
            .raw_sources
            .iter()
            .map(|s| Rc::new(SourceStatus::new(&s.name)))
            .collect();
        let core = Rc::new(Core {
            layout: RefCell::new(layout),
            source_ids: RefCell::new(ids.sources),
            dest_ids: RefCell::new(ids.dests),
            config: RefCell::new(Rc::new(config)),
            options,
            added: RefCell::new(added),
            shared,
            memberships,
            engine_ids,
            sources: RefCell::new(sources),
            appended: Event::new(),
            room: Event::new(),
            stop_sources: Rc::new(Stop::default()),
            started: crate::clock::now(),
            inbox: async_channel::bounded(crate::limits::CORE_INBOX),
            traffic: Default::default(),
            unowned: RefCell::new(None),
        });
        if node.role() == crate::failover::Role::Standby {
            log::info!(
                "failover: standing by{}; reading sources, publishing nothing",
                node.leader_addr()
                    .or(core.options.failover.standby.as_deref())
                    .map(|l| format!(" (leader {l})"))
                    .unwrap_or_default()
            );
        }
        for e in orphans {
            let c = core.cluster_of(e);
            let moved = core
                .reroute(c, e, &core.memberships[c].borrow())
                .map_err(|err| format!("re-routing engine slot {e}: {err}"))?;
            core.shared.journal.borrow_mut().remove_engine(e);
            log::warn!(
                "journal: engine slot {e} is not in the config (added through the admin API before a restart); its {moved} queued events were re-routed to cluster '{}'",
                core.config().clusters[c].name
            );
        }
        core.shared
            .journal
            .borrow_mut()
            .sync()
            .map_err(|e| format!("journal: {e}"))?;
        *core.unowned.borrow_mut() = Some(Control::new(node));
        Ok(core)
    }

    /// The config as started or last reloaded.
    pub fn config(&self) -> Rc<Config> {
        self.config.borrow().clone()
    }

    /// The cluster whose id range holds global engine id `e`.
    fn cluster_of(&self, e: EngineId) -> usize {
        self.engine_ids.cluster_of(e)
    }

    fn settings(&self) -> Settings {
        Settings {
            inflight: self.options.inflight.max(1),
            pipeline: self.options.pipeline,
            ..Settings::new(
                self.options.ticktime_ms,
                self.options.retries,
                self.options.timeout_ms,
            )
        }
    }

    /// Every source is done and every engine caught up.
    fn drained(&self, ctl: &Control) -> bool {
        let sources_done = self.sources().iter().all(|s| {
            matches!(
                s.state.get(),
                SourceState::Finished | SourceState::Failed | SourceState::Stopped
            )
        });
        let j = self.shared.journal.borrow();
        sources_done
            && j.next_seq() == j.synced_seq()
            && ctl.engines.iter().all(|e| j.backlog(e.id) == 0)
            && j.cursors_synced()
    }

    /// Stops sources, syncs, lets senders drain for the grace period, and
    /// syncs the cursors. Messages keep being read (sources report their
    /// end through them).
    async fn shutdown(self: &Rc<Self>, ctl: &mut Control) {
        self.stop_sources.stop();
        for s in self.sources() {
            s.stop.stop();
        }
        if let Some(a) = ctl.adding.take() {
            a.stop();
        }
        self.room.notify(usize::MAX);
        // Sources flush their partial blocks on the way out (each reports
        // its end); wait for them within the grace period.
        let deadline = crate::clock::now() + self.options.grace;
        let inbox = self.inbox.1.clone();
        loop {
            let busy = self
                .sources()
                .iter()
                .any(|s| matches!(s.state.get(), SourceState::Running | SourceState::Paused));
            if !busy || crate::clock::now() >= deadline {
                break;
            }
            match crate::clock::wait_until(inbox.recv(), deadline).await {
                Some(Ok(ToCore::Admin(call))) => {
                    let _ = call
                        .reply
                        .try_send(crate::admin::Reply::text(503, "the manager is stopping"));
                }
                Some(Ok(ToCore::Look(tx))) => {
                    let _ = tx.try_send(self.snapshot(ctl, false));
                }
                _ => {}
            }
        }
        let _ = self.shared.dead_letters.borrow_mut().sync();
        let _ = self.shared.reference.borrow_mut().sync();
        let _ = self.shared.journal.borrow_mut().sync();
        self.shared.synced.notify(usize::MAX);
        // Senders go on until caught up or the grace period ends.
        if !ctl.is_standby() {
            for e in &ctl.engines {
                let (shared, id) = (self.shared.clone(), e.id);
                e.status
                    .wait_for(move |_| shared.journal.borrow().backlog(id) == 0, deadline)
                    .await;
            }
        }
        for e in &ctl.engines {
            e.stop.stop();
        }
        let _ = self.shared.dead_letters.borrow_mut().sync();
        if let Err(e) = self.shared.journal.borrow_mut().sync() {
            log::error!("journal: final sync failed: {e}");
        }
    }

    /// Runs the manager on `ex` until `until` resolves (a signal) or, with
    /// `exit_when_drained`, until everything is delivered; returns the
    /// state as it ended. Admin calls come from `admin`'s serving thread.
    pub async fn run(
        self: &Rc<Self>,
        ex: &LocalExecutor<'_>,
        admin: Option<async_channel::Receiver<crate::admin::Call>>,
        until: impl std::future::Future<Output = ()> + 'static,
    ) -> crate::admin::snapshot::Snapshot {
        let Some(ctl) = self.unowned.borrow_mut().take() else {
            panic!("Core::run is called once");
        };
        ex.spawn(self.clone().committer()).detach();
        // The admin thread's calls, and the signal to stop, as messages.
        if let Some(calls) = admin {
            let inbox = self.inbox();
            ex.spawn(async move {
                while let Ok(call) = calls.recv().await {
                    if inbox.send(ToCore::Admin(call)).await.is_err() {
                        return;
                    }
                }
            })
            .detach();
        }
        let inbox = self.inbox();
        ex.spawn(async move {
            until.await;
            let _ = inbox.send(ToCore::Stop).await;
        })
        .detach();
        self.own(ex, ctl).await
    }
}
