//! The manager: the only place that wires the stages together
//! (ARCHITECTURE §1, §6).
//!
//! ```text
//! source task (one per raw-source) ─ decode ─ block of `blocksize` events
//!     └─ route (per map) ─ journal append ──▶ committer task: group sync
//!                                                   │ notifies
//! sender task (one per engine) ◀────────────────────┘ reads, publishes, acks
//! ```
//! Everything runs on one `LocalExecutor` on the main thread. The only
//! `await`s that hold data are a source waiting for journal room
//! (backpressure: the block stays in RAM, the source reads nothing more, so
//! a file stays where it is and a socket's TCP window closes) and senders
//! waiting for engines.
//!
//! Positions and torn syncs: a block split by routing into several records
//! carries the source position reached after the block only on its last
//! record; the others carry the position before the block. A power cut that
//! keeps only the first records of a block therefore resumes before the
//! block, and its events are read again (duplicates, never loss).

use crate::config::fs::FsName;
use crate::config::{AdapterState, Config};
use crate::engine::deadletter::DeadLetters;
use crate::engine::encode::Window;
use crate::engine::sender::{Deploy, Sender, Settings, Shared, Stop, Watched};
use crate::journal::block::{events, BlockWriter};
use crate::journal::storage::default_bytes_max;
use crate::journal::{DirStorage, Full, Journal, Limits, NewRecord, Origin, Position};
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

/// How the manager runs, from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    pub state_dir: PathBuf,
    pub ticktime_ms: u64,
    pub retries: u32,
    pub timeout_ms: u64,
    /// `-buffersize`: unacknowledged events per engine before sources pause.
    pub buffersize: u64,
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
    pub cluster: crate::cluster::ClusterOptions,
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
            buffersize: crate::cli::DEFAULT_BUFFERSIZE,
            journal_max: None,
            commit_every: Duration::from_millis(50),
            commit_bytes: 1 << 20,
            grace: Duration::from_secs(5),
            progress: Duration::from_secs(60),
            exit_when_drained: false,
            cluster: Default::default(),
            security: Default::default(),
        }
    }
}

/// Where a source stands, for logs, the admin API and the demo's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceState {
    Waiting,
    Running,
    /// Paused by backpressure.
    Paused,
    Finished,
    Failed,
    Stopped,
}

impl SourceState {
    pub fn name(self) -> &'static str {
        match self {
            SourceState::Waiting => "waiting",
            SourceState::Running => "running",
            SourceState::Paused => "paused",
            SourceState::Finished => "finished",
            SourceState::Failed => "failed",
            SourceState::Stopped => "stopped",
        }
    }
}

#[derive(Debug)]
pub struct SourceStatus {
    pub name: String,
    pub state: Cell<SourceState>,
    pub started: Cell<bool>,
    pub stats: Cell<Stats>,
    /// Events appended to the journal.
    pub accepted: Cell<u64>,
    /// Why it failed (`state: failed`).
    pub error: RefCell<Option<String>>,
    /// Stops its task (shutdown, or a reload that removes or changes it).
    pub stop: Rc<Stop>,
    /// Its task has ended (or was never started).
    pub done: Cell<bool>,
}

impl SourceStatus {
    fn new(name: &str) -> SourceStatus {
        SourceStatus {
            name: name.to_string(),
            state: Cell::new(SourceState::Waiting),
            started: Cell::new(false),
            stats: Cell::new(Stats::default()),
            accepted: Cell::new(0),
            error: RefCell::new(None),
            stop: Rc::new(Stop::default()),
            done: Cell::new(true),
        }
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
    /// The failure was handled (spare swapped in, or none left).
    down: bool,
}

/// A map fed by a source: its router, cluster and destination index.
struct Feed {
    router: Router,
    cluster: usize,
    /// The journal's id of its destination (`journal::layout`).
    dest: u16,
    /// Its place among the config's maps (all esp-maps, in order).
    map: usize,
    routes: Routes,
    /// Its records are kept as reference data (`journal::reference`).
    reference: bool,
}

/// Slots a cluster may have beyond its config's engines (added at run time).
const SLOTS_SPARE: usize = 4;

/// The config's engines by journal slot and its raw-sources by place
/// (`edgecm queue -cluster-manager`; the state dir's `layout` names
/// sources first, and gives engines their slots, also those added live).
pub fn names(config: &Config, state_dir: &std::path::Path) -> crate::journal::inspect::Names {
    // The cluster ranges a start would use: the state dir's (`layout`),
    // laid out as a first start does for clusters it does not have yet.
    let mut layout = std::fs::read_to_string(state_dir.join(crate::journal::layout::FILE_NAME))
        .ok()
        .and_then(|t| crate::journal::layout::Layout::parse(&t).ok())
        .unwrap_or_default();
    let clusters: Vec<(&str, usize)> = config
        .clusters
        .iter()
        .map(|c| (c.name.as_str(), c.engines.len()))
        .collect();
    let offsets = match layout.ranges(&clusters, SLOTS_SPARE) {
        Ok((offsets, _, _)) => offsets,
        // A start would refuse this config: engines stay slots.
        Err(_) => Vec::new(),
    };
    // Engines in the slots the layout keeps (also those added live), else
    // in config order.
    let mut engines = std::collections::BTreeMap::new();
    for (c, cl) in config
        .clusters
        .iter()
        .enumerate()
        .filter(|(c, _)| *c < offsets.len())
    {
        let kept: Vec<_> = layout
            .engines
            .iter()
            .filter(|e| e.cluster == cl.name)
            .collect();
        if kept.is_empty() {
            for (k, e) in cl.engines.iter().enumerate() {
                engines.insert(offsets[c] + k as u8, e.name.clone());
            }
        }
        for e in kept {
            engines.insert(offsets[c] + e.slot, e.name.clone());
        }
    }
    crate::journal::inspect::Names {
        engines,
        sources: config.raw_sources.iter().map(|s| s.name.clone()).collect(),
    }
}

/// Reads (or starts) the state dir's layout: `config`'s clusters get their
/// engine slot ranges, its raw-sources and destinations their journal ids;
/// the file is written when it grew.
fn open_layout(dir: &std::path::Path, config: &Config) -> Result<LayoutNow, String> {
    use crate::journal::layout::{Layout, FILE_NAME};
    let where_ = || format!("{}/{FILE_NAME}", dir.display());
    let mut layout = match std::fs::read_to_string(dir.join(FILE_NAME)) {
        Ok(text) => Layout::parse(&text).map_err(|e| {
            format!(
                "{}: {e}; restore the file or remove it (then ids follow the config's order)",
                where_()
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Layout::default(),
        Err(e) => return Err(format!("cannot read {}: {e}", where_())),
    };
    let clusters: Vec<(&str, usize)> = config
        .clusters
        .iter()
        .map(|c| (c.name.as_str(), c.engines.len()))
        .collect();
    let (offsets, capacity, ranges_grew) = layout
        .ranges(&clusters, SLOTS_SPARE)
        .map_err(|e| format!("{}: {e}", where_()))?;
    let ids = layout_ids(&mut layout, config)?;
    if ranges_grew || ids.grew {
        write_layout(dir, &layout)?;
    }
    let sources: Vec<&str> = config.raw_sources.iter().map(|s| s.name.as_str()).collect();
    let dests: Vec<String> = config
        .esp_maps
        .iter()
        .flat_map(|m| {
            m.maps
                .iter()
                .map(move |map| format!("{}/{}", m.name, map.name))
        })
        .collect();
    for (i, &id) in ids.sources.iter().enumerate() {
        if usize::from(id) != i {
            log::info!(
                "raw-source '{}' keeps its journal id {id} (it is raw-source {} in the config now; {FILE_NAME})",
                sources[i],
                i + 1
            );
        }
    }
    for (i, &id) in ids.dests.iter().enumerate() {
        if usize::from(id) != i {
            log::info!(
                "map '{}' has journal destination id {id} (its window or its place in the config changed; {FILE_NAME})",
                dests[i]
            );
        }
    }
    Ok(LayoutNow {
        layout,
        ids,
        offsets,
        capacity,
    })
}

/// The windows of the layout's destination ids from `from` on, in id
/// order; None when an id is missing (the file was edited by hand).
fn layout_windows(layout: &crate::journal::layout::Layout, from: usize) -> Option<Vec<Rc<Window>>> {
    (from..layout.dests.len())
        .map(|id| {
            layout
                .dests
                .iter()
                .find(|d| usize::from(d.id) == id)
                .map(|d| Rc::new(Window::from_spec(&d.window)))
        })
        .collect()
}

/// What [`open_layout`] gives the start.
struct LayoutNow {
    layout: crate::journal::layout::Layout,
    ids: crate::journal::layout::Ids,
    /// Each cluster's first global engine slot and how many it has.
    offsets: Vec<u8>,
    capacity: Vec<u8>,
}

fn write_layout(
    dir: &std::path::Path,
    layout: &crate::journal::layout::Layout,
) -> Result<(), String> {
    use crate::journal::layout::FILE_NAME;
    crate::journal::storage::replace_file(dir, FILE_NAME, layout.render().as_bytes())
        .map_err(|e| format!("cannot write {}/{FILE_NAME}: {e}", dir.display()))
}

/// The journal ids of `config`'s raw-sources and destinations from
/// `layout` (new ones added; the caller writes the file when it grew).
fn layout_ids(
    layout: &mut crate::journal::layout::Layout,
    config: &Config,
) -> Result<crate::journal::layout::Ids, String> {
    use crate::journal::layout::{WindowSpec, FILE_NAME};
    let sources: Vec<String> = config.raw_sources.iter().map(|s| s.name.clone()).collect();
    let dests: Vec<(String, WindowSpec)> = config
        .esp_maps
        .iter()
        .flat_map(|m| m.maps.iter().map(move |map| (m, map)))
        .map(|(m, map)| {
            let transactional = config.raw_sources[map.source].fs.transactional;
            (
                format!("{}/{}", m.name, map.name),
                WindowSpec::of(&map.destination, transactional),
            )
        })
        .collect();
    layout
        .assign(&sources, &dests)
        .map_err(|e| format!("{FILE_NAME}: {e}"))
}

pub struct Core {
    /// The config as started or last reloaded (`Core::config`).
    config: RefCell<Rc<Config>>,
    pub options: Options,
    pub shared: Rc<Shared<DirStorage>>,
    pub memberships: Vec<RefCell<Membership>>,
    pub(crate) offsets: Vec<u8>,
    capacity: Vec<u8>,
    /// One per raw-source of the current config, in its order.
    sources: RefCell<Vec<Rc<SourceStatus>>>,
    pub engines: RefCell<Vec<EngineHandle>>,
    /// Notified on every append (wakes the committer).
    appended: Event,
    /// Notified after every sync (wakes sources waiting for room).
    room: Event,
    /// Notified whenever a source starts or finishes (orchestration).
    orchestration: Event,
    /// Notified at every engine status change (spare takeover).
    engine_changed: Rc<Event>,
    pub stop_sources: Rc<Stop>,
    pub started: Instant,
    /// The failover protocol's node (`cluster`).
    pub node: RefCell<crate::failover::Node>,
    pub(crate) cluster_inbox: (
        async_channel::Sender<crate::failover::Msg>,
        async_channel::Receiver<crate::failover::Msg>,
    ),
    pub traffic: crate::cluster::Traffic,
    /// An engine is being added (admin calls run side by side; adds one at a time).
    adding: Cell<bool>,
    /// The journal's id of each raw-source and of each map destination, in
    /// config order (`journal::layout`).
    layout: RefCell<crate::journal::layout::Layout>,
    pub(crate) source_ids: RefCell<Vec<u16>>,
    pub(crate) dest_ids: RefCell<Vec<u16>>,
    /// Engines added over the admin API (`engine::added`), kept in the state dir.
    pub(crate) added: RefCell<crate::engine::added::AddedEngines>,
    /// SIGHUP asks for a reload here; one waiting at most (signals coalesce).
    reload_inbox: (async_channel::Sender<()>, async_channel::Receiver<()>),
    /// Reloads applied and refused.
    pub reloads: Cell<(u64, u64)>,
    /// What the last reload did or why it was refused.
    pub last_reload: RefCell<Option<String>>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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
        let node = crate::cluster::start_node(
            &options.state_dir,
            &options.cluster,
            crate::failover::Timing {
                tick_ms: options.ticktime_ms.max(1),
                retries: options.retries,
            },
        )
        .map_err(|e| format!("failover: {e}"))?;
        let LayoutNow {
            layout,
            ids,
            offsets,
            capacity,
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
                let busy =
                    |s: u8| cursors.contains(offsets[c] + s) || over_rest.iter().any(|r| r.0 == s);
                let keep = |n: &str| over_rest.iter().any(|r| r.1 == n);
                let (slots, changed) = layout
                    .engine_slots(&cl.name, &names, capacity[c], &busy, &keep)
                    .map_err(|e| format!("{}: {e}", crate::journal::layout::FILE_NAME))?;
                layout_changed |= changed;
                slots
            } else {
                let none = |_: u8| false;
                let keep = |_: &str| true;
                let (slots, _) = layout
                    .engine_slots(&cl.name, &names, capacity[c], &none, &keep)
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
                known.insert(offsets[c] + slot.id);
                journal
                    .restore_engine(offsets[c] + slot.id)
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
            let slot = if a.slot < capacity[c] {
                m.add_at(a.slot, a.engine.clone())
            } else {
                m.add(a.engine.clone())
            };
            let slot = match slot.or_else(|_| m.add(a.engine.clone())) {
                Ok(slot) if slot < capacity[c] => slot,
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
            known.insert(offsets[c] + slot);
            journal
                .restore_engine(offsets[c] + slot)
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
            failover: Default::default(),
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
            reload_inbox: async_channel::bounded(1),
            reloads: Cell::new((0, 0)),
            last_reload: RefCell::new(None),
            shared,
            memberships,
            offsets,
            capacity,
            sources: RefCell::new(sources),
            engines: RefCell::new(Vec::new()),
            appended: Event::new(),
            room: Event::new(),
            orchestration: Event::new(),
            engine_changed: Rc::new(Event::new()),
            stop_sources: Rc::new(Stop::default()),
            started: Instant::now(),
            node: RefCell::new(node),
            cluster_inbox: async_channel::bounded(64),
            traffic: Default::default(),
            adding: Cell::new(false),
        });
        let standby = core.node.borrow().role() == crate::failover::Role::Standby;
        core.shared.failover.standby.set(standby);
        if standby {
            log::info!(
                "failover: standing by{}; reading sources, publishing nothing",
                core.node
                    .borrow()
                    .leader_addr()
                    .or(core.options.cluster.standby.as_deref())
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
        Ok(core)
    }

    /// The config as started or last reloaded.
    pub fn config(&self) -> Rc<Config> {
        self.config.borrow().clone()
    }

    /// The cluster whose id range holds global engine id `e`.
    fn cluster_of(&self, e: EngineId) -> usize {
        self.offsets.iter().rposition(|&o| o <= e).unwrap_or(0)
    }

    fn settings(&self) -> Settings {
        Settings::new(
            self.options.ticktime_ms,
            self.options.retries,
            self.options.timeout_ms,
        )
    }

    /// The projects deployed to engines of cluster `c`.
    fn deploys(&self, c: usize) -> Vec<Rc<Deploy>> {
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
    pub fn start_engines(self: &Rc<Self>, ex: &LocalExecutor<'_>) {
        for (c, m) in self.memberships.iter().enumerate() {
            for slot in m.borrow().slots() {
                let h = self.spawn_sender(ex, c, slot.id, &slot.name, &slot.engine);
                self.engines.borrow_mut().push(h);
            }
        }
    }

    /// Starts the sender of slot `slot` of cluster `c`, served by `engine`.
    fn spawn_sender(
        &self,
        ex: &LocalExecutor<'_>,
        c: usize,
        slot: EngineId,
        name: &str,
        engine: &crate::config::Engine,
    ) -> EngineHandle {
        let id = self.offsets[c] + slot;
        // Logs name the engine serving the slot (a spare by its own name).
        let first = u32::from(self.offsets[c]);
        let n = u32::from(self.capacity[c]);
        let cluster_mask = (first..first + n).fold(0u64, |m, i| m | (1u64 << i));
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
        .watched_by(self.engine_changed.clone());
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
            down: false,
        };
        ex.spawn(s.run(self.shared.clone())).detach();
        h
    }

    /// Watches the engines: a slot whose engine failed is given the
    /// cluster's next spare (same slot, same keys, same journal cursor);
    /// with none left its events wait. Runs until the manager stops.
    async fn supervise(self: &Rc<Self>, ex: &LocalExecutor<'_>) {
        loop {
            let l = self.engine_changed.listen();
            self.fail_over(ex);
            l.await;
        }
    }

    /// One pass of [`Core::supervise`].
    fn fail_over(&self, ex: &LocalExecutor<'_>) {
        let mut engines = self.engines.borrow_mut();
        for h in engines.iter_mut() {
            let state = h.status.get().state;
            if state == crate::engine::State::Ready && h.down {
                h.down = false;
                let _ = self.memberships[h.cluster].borrow_mut().recover(&h.name);
                continue;
            }
            if state != crate::engine::State::Failed || h.down || h.stop.is_stopped() {
                continue;
            }
            h.down = true;
            let c = h.cluster;
            let failover = self.memberships[c].borrow_mut().fail(&h.name);
            match failover {
                Ok(crate::route::Failover::Spare { slot, spare }) => {
                    let engine = self.memberships[c]
                        .borrow()
                        .slot(slot)
                        .map(|s| s.engine.clone())
                        .expect("the slot just swapped");
                    log::warn!(
                        "engine '{}' failed; spare '{spare}' ({}:{}) takes its place and its keys",
                        h.name,
                        engine.host,
                        engine.ha_port
                    );
                    h.stop.stop();
                    *h = self.spawn_sender(ex, c, slot, &h.name, &engine);
                }
                Ok(crate::route::Failover::NoSpare { .. }) => {
                    log::warn!(
                            "engine '{}' failed and cluster '{}' has no spare left; its events wait for it",
                            h.name,
                            self.config().clusters[c].name
                        );
                }
                Err(e) => log::error!("engine '{}': {e}", h.name),
            }
        }
    }

    /// Adds `engine` to the cluster of esp-map `map` (admin API): its sender
    /// deploys the projects first; only once it is ready does routing send
    /// it events. An engine that does not get ready within the deploy time
    /// is not added.
    pub(crate) async fn add_engine(
        self: &Rc<Self>,
        ex: &LocalExecutor<'_>,
        c: usize,
        engine: crate::config::Engine,
    ) -> Result<EngineId, (u16, String)> {
        if self.adding.replace(true) {
            return Err((
                409,
                "another engine is being added; try again once that PUT answered".to_string(),
            ));
        }
        let r = self.add_engine_now(ex, c, engine).await;
        self.adding.set(false);
        r
    }

    async fn add_engine_now(
        self: &Rc<Self>,
        ex: &LocalExecutor<'_>,
        c: usize,
        engine: crate::config::Engine,
    ) -> Result<EngineId, (u16, String)> {
        let cluster = &self.config().clusters[c];
        let slot = {
            let m = self.memberships[c].borrow();
            if m.by_name(&engine.name).is_some() || m.spares().iter().any(|s| s.name == engine.name)
            {
                return Err((
                    409,
                    format!(
                        "cluster '{}' already has an engine named '{}'; DELETE it first or choose another name",
                        cluster.name, engine.name
                    ),
                ));
            }
            match m.free_id() {
                Some(id) if id < self.capacity[c] => id,
                _ => {
                    return Err((
                        409,
                        format!(
                            "cluster '{}' has {} engines, the most it may have (its config's {} plus {SLOTS_SPARE}); remove one first",
                            cluster.name,
                            m.slots().len(),
                            cluster.engines.len()
                        ),
                    ))
                }
            }
        };
        let id = self.offsets[c] + slot;
        self.shared.journal.borrow_mut().add_engine(id);
        let h = self.spawn_sender(ex, c, slot, &engine.name, &engine);
        let deadline = Instant::now()
            + Duration::from_millis(self.options.timeout_ms.max(10_000))
            + Duration::from_millis(self.options.ticktime_ms);
        let ready = h
            .status
            .wait_for(|s| s.state == crate::engine::State::Ready, deadline)
            .await;
        if !ready {
            h.stop.stop();
            self.shared.journal.borrow_mut().remove_engine(id);
            let why = h.status.get().last_error.unwrap_or_default();
            return Err((
                502,
                format!(
                    "engine '{}' ({}:{}) did not get ready, so it was not added: {why}",
                    engine.name, engine.host, engine.ha_port
                ),
            ));
        }
        let name = engine.name.clone();
        let added = self.memberships[c].borrow_mut().add(engine);
        debug_assert_eq!(added.as_ref().ok(), Some(&slot));
        self.keep_slot(c, |l, cluster| l.set_engine(cluster, slot, &name));
        self.engines.borrow_mut().push(h);
        self.engine_changed.notify(usize::MAX);
        Ok(id)
    }

    /// Removes engine `name` from cluster `c` (admin API): its sender stops
    /// and its queued events are routed again, by each map's policy, to the
    /// engines that remain. Returns how many events moved.
    pub(crate) fn remove_engine(&self, c: usize, name: &str) -> Result<u64, (u16, String)> {
        let cluster = &self.config().clusters[c];
        let mut after = self.memberships[c].borrow().clone();
        let slot = after.remove(name).map_err(|e| match e {
            crate::route::MembershipError::UnknownEngine(_) => {
                (404, format!("cluster '{}': {e}", cluster.name))
            }
            _ => (409, format!("cluster '{}': {e}", cluster.name)),
        })?;
        let id = self.offsets[c] + slot.id;
        // Make every record destined to it readable, then size the move.
        self.shared
            .journal
            .borrow_mut()
            .sync()
            .map_err(|e| (503, format!("the journal cannot sync: {e}")))?;
        let need = self
            .reroute_plan(c, id, &after, &mut |_, _| {})
            .map_err(|e| (500, format!("reading the journal: {e}")))?;
        let room = self.shared.journal.borrow().room_bytes();
        if need.1 > room {
            return Err((
                507,
                format!(
                    "re-routing the {} events queued for '{name}' needs {} bytes of journal and {room} are free; nothing was changed, try again once engines caught up",
                    need.0, need.1
                ),
            ));
        }
        if let Some(h) = self.engines.borrow().iter().find(|h| h.id == id) {
            h.stop.stop();
        }
        *self.memberships[c].borrow_mut() = after;
        let moved = {
            let after = self.memberships[c].borrow();
            self.reroute(c, id, &after)
                .map_err(|e| (500, format!("re-routing: {e}")))?
        };
        self.engines.borrow_mut().retain(|h| h.id != id);
        let mut j = self.shared.journal.borrow_mut();
        j.remove_engine(id);
        j.sync()
            .map_err(|e| (503, format!("the journal cannot sync: {e}")))?;
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
    fn add_spare(&self, c: usize, engine: crate::config::Engine) -> Result<(), (u16, String)> {
        self.memberships[c]
            .borrow_mut()
            .add_spare(engine)
            .map_err(|e| {
                (
                    409,
                    format!("cluster '{}': {e}", self.config().clusters[c].name),
                )
            })?;
        for h in self.engines.borrow_mut().iter_mut() {
            if h.cluster == c && h.down && h.status.get().state == crate::engine::State::Failed {
                let _ = self.memberships[c].borrow_mut().recover(&h.name);
                h.down = false;
            }
        }
        self.engine_changed.notify(usize::MAX);
        Ok(())
    }

    /// Changes the layout's engine slots of cluster `c` with `change` and
    /// writes the file when it changed (an engine added or removed live).
    fn keep_slot(
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

    /// Where SIGHUP asks for a reload (`try_send`; a request already waiting
    /// absorbs the next).
    pub fn reload_requests(&self) -> async_channel::Sender<()> {
        self.reload_inbox.0.clone()
    }

    /// Applies each reload asked for, one at a time, until the manager stops.
    async fn reloads(self: &Rc<Self>, ex: &LocalExecutor<'_>) {
        let inbox = self.reload_inbox.1.clone();
        while inbox.recv().await.is_ok() {
            crate::systemd::notify("RELOADING=1");
            let started = Instant::now();
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
    async fn reload(self: &Rc<Self>, ex: &LocalExecutor<'_>) -> Result<String, String> {
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
        let findings = crate::config::preflight::preflight(&new, None);
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
                    Err((404, _)) => Ok(format!(
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
                Err((_, m)) => failed.push(m),
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
    async fn swap_sources(
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
            .set_config(crate::cluster::config_fingerprint(&next));
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

    /// Appends again, routed over `m`, every event queued for engine `gone`
    /// (global id) of cluster `c`, to the engines of `m` that did not have
    /// it already. Syncs as it goes; `gone` keeps its cursor (and so its
    /// records) until the caller removes it. Returns the events moved.
    fn reroute(&self, c: usize, gone: EngineId, m: &Membership) -> std::io::Result<u64> {
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
    fn reroute_plan(
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
            // Engines that had the record already keep it.
            let had = h.dest.bits() & !(1u64 << gone);
            for (set, idx) in routes.groups() {
                let dest = (set.bits() << self.offsets[c]) & !had;
                if dest == 0 {
                    continue;
                }
                sub.clear();
                for &i in idx {
                    let e = &evs[i as usize];
                    sub.push(e.opcode, e.flags, e.fields());
                }
                let rec = NewRecord {
                    dest: EngineSet::from_bits(dest),
                    source: crate::journal::REROUTED,
                    target: h.target,
                    position: Position::None,
                    count: idx.len() as u32,
                    time_ms: h.time_ms,
                    origin: crate::journal::Origin::NONE,
                };
                events_n += idx.len() as u64;
                bytes += (crate::journal::record::HEADER_LEN + sub.buf.len()) as u64;
                emit(rec, &sub.buf);
            }
        }
        Ok((events_n, bytes))
    }

    /// Whether source `i` may start: every group with an edge into its
    /// group has all its entries in their state.
    fn may_start(&self, i: usize) -> bool {
        self.unmet(&self.config(), i).is_empty()
    }

    /// The orchestration entries source `i` still waits for: (esp-map, its
    /// group, the group waited for, the entry), for [`Core::may_start`] and
    /// [`Core::orchestration_waits`].
    fn unmet<'c>(
        &self,
        config: &'c Config,
        i: usize,
    ) -> Vec<(
        &'c crate::config::EspMap,
        usize,
        usize,
        &'c crate::config::AdapterEntry,
    )> {
        let sources = self.sources();
        let mut out = Vec::new();
        for m in &config.esp_maps {
            let o = &m.orchestration;
            let Some(g) = o
                .groups
                .iter()
                .position(|g| g.entries.iter().any(|e| e.source == i))
            else {
                continue;
            };
            for &(from, _) in o.edges.iter().filter(|e| e.1 == g) {
                for e in &o.groups[from].entries {
                    let s = &sources[e.source];
                    let reached = match e.state {
                        AdapterState::Started => s.started.get(),
                        AdapterState::Finished => s.state.get() == SourceState::Finished,
                    };
                    if !reached {
                        out.push((m, g, from, e));
                    }
                }
            }
        }
        out
    }

    /// Starts a task for every raw-source some map reads.
    pub fn start_sources(self: &Rc<Self>, ex: &LocalExecutor<'_>) {
        let config = self.config();
        for i in 0..config.raw_sources.len() {
            self.start_source(ex, &config, i);
        }
    }

    /// The raw-sources of the current config, in its order.
    pub fn sources(&self) -> Vec<Rc<SourceStatus>> {
        self.sources.borrow().clone()
    }

    /// Where the source with journal id `id` is in the current config.
    fn place_of(&self, id: u16) -> Option<usize> {
        self.source_ids.borrow().iter().position(|&s| s == id)
    }

    /// Starts raw-source `i` of `config` (the current one) if some map
    /// reads it: its feeds and its window layout are fixed here, so that its
    /// task runs on no matter how a reload renumbers the others.
    fn start_source(self: &Rc<Self>, ex: &LocalExecutor<'_>, config: &Config, i: usize) {
        let raw = config.raw_sources[i].clone();
        let mut feeds = Vec::new();
        let mut place = 0usize;
        for m in &config.esp_maps {
            let redundancy = config.clusters[m.cluster].redundancy;
            for map in &m.maps {
                if map.source == i {
                    feeds.push(Feed {
                        router: Router::new(map.destination.policy.clone(), redundancy),
                        cluster: m.cluster,
                        dest: self.dest_ids.borrow()[place],
                        map: place,
                        routes: Routes::default(),
                        reference: m.is_reference(map),
                    });
                }
                place += 1;
            }
        }
        if feeds.is_empty() {
            log::warn!("source '{}': no esp-map reads it; not started", raw.name);
            return;
        }
        // The layout of the first map's target window (maps of one source share it).
        let dest = &config
            .esp_maps
            .iter()
            .flat_map(|m| &m.maps)
            .nth(feeds[0].map)
            .expect("feed destinations exist")
            .destination;
        let autogen = config
            .esp_maps
            .iter()
            .find_map(|m| {
                let p = &config.projects[m.model].project;
                p.contquery(&dest.target.contquery)
                    .and_then(|c| c.windows.iter().find(|w| w.name == dest.target.window))
                    .map(|w| w.autogen_key)
            })
            .unwrap_or(false);
        let layout = Layout::new(&dest.schema, autogen, raw.fs.noautogenfield);
        let id = self.source_ids.borrow()[i];
        let status = self.sources.borrow()[i].clone();
        status.done.set(false);
        let core = self.clone();
        let offsets = self.offsets.clone();
        ex.spawn(async move {
            core.clone()
                .run_source(id, raw, status.clone(), feeds, layout, offsets)
                .await;
            status.done.set(true);
            core.orchestration.notify(usize::MAX);
        })
        .detach();
    }

    async fn run_source(
        self: Rc<Self>,
        id: u16,
        raw: crate::config::RawSource,
        status: Rc<SourceStatus>,
        feeds: Vec<Feed>,
        layout: Layout,
        offsets: Vec<u8>,
    ) {
        // Wait for the orchestration edges into this source's group.
        loop {
            let l = self.orchestration.listen();
            if status.stop.is_stopped() {
                status.state.set(SourceState::Stopped);
                return;
            }
            match self.place_of(id) {
                None => return,
                Some(i) if self.may_start(i) => break,
                Some(_) => {}
            }
            status.stop.or(l).await;
        }
        let resume = self
            .shared
            .journal
            .borrow()
            .positions()
            .get(&id)
            .copied()
            .unwrap_or(Position::None);
        let source = match open_source(&raw.name, &raw.fs, layout, resume) {
            Ok(s) => s,
            Err(e) => {
                log::error!("{e}");
                status.error.replace(Some(e.to_string()));
                status.state.set(SourceState::Failed);
                self.orchestration.notify(usize::MAX);
                return;
            }
        };
        let counted = match self.shared.journal.borrow().source_counts().get(&id) {
            None => Some(0),
            Some(&c) => c,
        };
        if resume != Position::None {
            log::info!("source '{}': resuming after {resume}", raw.name);
        }
        if counted.is_none() {
            log::warn!(
                "source '{}': its journal records are of format version 1, without event counts; its events are not counted for failover until the journal is drained",
                raw.name
            );
        }
        status.started.set(true);
        status.state.set(SourceState::Running);
        self.orchestration.notify(usize::MAX);
        log::info!("source '{}': started", raw.name);
        let mut run = SourceRun {
            core: self.clone(),
            index: id,
            feeds,
            offsets,
            block: BlockWriter::default(),
            before: resume,
            last: resume,
            spans: Vec::new(),
            status: status.clone(),
            blocksize: raw.fs.blocksize.max(1),
            counted,
        };
        let end = run.pump(source).await;
        status.state.set(end);
        self.orchestration.notify(usize::MAX);
        log::info!(
            "source '{}': {} ({} events accepted)",
            raw.name,
            end.name(),
            status.accepted.get()
        );
    }

    /// Group commit: syncs appended records and cursor changes, at most
    /// `commit_every` after the first change or at `commit_bytes` pending.
    async fn committer(self: Rc<Self>) {
        let mut failures = 0u32;
        loop {
            let l = self.appended.listen();
            let a = self.shared.acked.listen();
            let (pending, cursors) = {
                let j = self.shared.journal.borrow();
                (j.next_seq() > j.synced_seq(), !j.cursors_synced())
            };
            if !pending && !cursors {
                future::or(l, a).await;
                continue;
            }
            let due = Instant::now() + self.options.commit_every;
            loop {
                if self.shared.journal.borrow().pending_bytes() >= self.options.commit_bytes {
                    break;
                }
                let l = self.appended.listen();
                let more = future::or(
                    async {
                        l.await;
                        true
                    },
                    async {
                        Timer::at(due).await;
                        false
                    },
                )
                .await;
                if !more {
                    break;
                }
            }
            // Dead letters and reference data first: an acknowledgement of a
            // refused block is never on flash before its letter, and whatever
            // the journal holds, the reference store holds too.
            let r = self.shared.dead_letters.borrow_mut().sync();
            let r = r.and_then(|()| self.shared.reference.borrow_mut().sync());
            let r = r.and_then(|()| self.shared.journal.borrow_mut().sync().map(|_| ()));
            match r {
                Ok(()) => {
                    if failures > 0 {
                        log::info!("journal: syncing works again");
                    }
                    failures = 0;
                    self.shared.synced.notify(usize::MAX);
                    self.room.notify(usize::MAX);
                    let held = {
                        let j = self.shared.journal.borrow();
                        j.next_seq() > j.synced_seq()
                    };
                    if held {
                        // The filesystem is full: records wait in RAM while
                        // engines drain. Try again after an acknowledgement
                        // (or a moment), not in a loop that starves them.
                        let a = self.shared.acked.listen();
                        future::or(a, unit(Timer::after(Duration::from_millis(200)))).await;
                    }
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures.is_power_of_two() {
                        log::error!(
                            "journal: sync failed ({failures} in a row), events stay in RAM and sources pause: {e}"
                        );
                    }
                    Timer::after(Duration::from_millis(100 * u64::from(failures.min(50)))).await;
                }
            }
        }
    }

    /// Logs a progress line every `-progress-s` while events move (silent
    /// when idle), and what each orchestration group waits for, each minute.
    async fn progress(self: Rc<Self>) {
        let every = self.options.progress;
        let mut last = (0u64, 0u64);
        let mut waits_said = Instant::now();
        loop {
            let tick = if every.is_zero() {
                Duration::from_secs(60)
            } else {
                every.min(Duration::from_secs(60))
            };
            Timer::after(tick).await;
            if !every.is_zero() {
                let accepted: u64 = self.sources().iter().map(|s| s.accepted.get()).sum();
                let (acked, backlog) = {
                    let j = self.shared.journal.borrow();
                    self.engines
                        .borrow()
                        .iter()
                        .fold((0u64, 0u64), |(a, b), e| {
                            (a + e.status.get().acked_events, b + j.backlog(e.id))
                        })
                };
                let (din, dout) = (accepted - last.0.min(accepted), acked - last.1.min(acked));
                if din > 0 || dout > 0 {
                    let secs = every.as_secs_f64();
                    log::info!(
                        "progress: {:.0} events/s in, {:.0} events/s acknowledged, backlog {backlog} events, journal {} bytes",
                        din as f64 / secs,
                        dout as f64 / secs,
                        self.shared.journal.borrow().bytes()
                    );
                }
                last = (accepted, acked);
            }
            if waits_said.elapsed() >= Duration::from_secs(60) {
                waits_said = Instant::now();
                for w in self.orchestration_waits() {
                    log::info!("orchestration: {w}");
                }
            }
        }
    }

    /// For each source still waiting for its orchestration group: what it
    /// waits for (`source 'x' waits for 'y' to finish`).
    pub fn orchestration_waits(&self) -> Vec<String> {
        let config = self.config();
        let sources = self.sources();
        let mut out = Vec::new();
        for (i, s) in sources.iter().enumerate() {
            if s.state.get() != SourceState::Waiting || self.stop_sources.is_stopped() {
                continue;
            }
            for (m, g, from, e) in self.unmet(&config, i) {
                let o = &m.orchestration;
                let other = &sources[e.source];
                let word = match e.state {
                    AdapterState::Started => "start",
                    AdapterState::Finished => "finish",
                };
                out.push(format!(
                    "source '{}' (group '{}') waits for '{}' (group '{}') to {word}; it is {}",
                    s.name,
                    o.groups[g].name,
                    other.name,
                    o.groups[from].name,
                    other.state.get().name()
                ));
            }
        }
        out
    }

    /// Every source is done and every engine caught up.
    pub fn drained(&self) -> bool {
        let sources_done = self.sources().iter().all(|s| {
            matches!(
                s.state.get(),
                SourceState::Finished | SourceState::Failed | SourceState::Stopped
            )
        });
        let j = self.shared.journal.borrow();
        sources_done
            && j.next_seq() == j.synced_seq()
            && self.engines.borrow().iter().all(|e| j.backlog(e.id) == 0)
            && j.cursors_synced()
    }

    /// Stops sources, syncs, lets senders drain for the grace period, and
    /// syncs the cursors.
    pub async fn shutdown(self: &Rc<Self>) {
        self.stop_sources.stop();
        for s in self.sources() {
            s.stop.stop();
        }
        self.room.notify(usize::MAX);
        // Sources flush their partial blocks on the way out (they notify
        // `orchestration` when they end); wait for them within the grace period.
        let deadline = Instant::now() + self.options.grace;
        loop {
            let l = self.orchestration.listen();
            let busy = self
                .sources()
                .iter()
                .any(|s| matches!(s.state.get(), SourceState::Running | SourceState::Paused));
            if !busy || Instant::now() >= deadline {
                break;
            }
            future::or(l, unit(Timer::at(deadline))).await;
        }
        let _ = self.shared.dead_letters.borrow_mut().sync();
        let _ = self.shared.reference.borrow_mut().sync();
        let _ = self.shared.journal.borrow_mut().sync();
        self.shared.synced.notify(usize::MAX);
        // Senders go on until caught up or the grace period ends.
        let engines: Vec<(EngineId, Rc<Watched>)> = self
            .engines
            .borrow()
            .iter()
            .map(|e| (e.id, e.status.clone()))
            .collect();
        for (id, w) in engines
            .iter()
            .filter(|_| !self.shared.failover.standby.get())
        {
            let shared = self.shared.clone();
            let id = *id;
            w.wait_for(move |_| shared.journal.borrow().backlog(id) == 0, deadline)
                .await;
        }
        for e in self.engines.borrow().iter() {
            e.stop.stop();
        }
        let _ = self.shared.dead_letters.borrow_mut().sync();
        if let Err(e) = self.shared.journal.borrow_mut().sync() {
            log::error!("journal: final sync failed: {e}");
        }
    }

    /// Runs the manager on `ex` until `until` resolves (a signal) or, with
    /// `exit_when_drained`, until everything is delivered.
    pub async fn run(
        self: &Rc<Self>,
        ex: &LocalExecutor<'_>,
        admin: Option<async_channel::Receiver<crate::admin::Call>>,
        until: impl std::future::Future<Output = ()>,
    ) {
        ex.spawn(self.clone().committer()).detach();
        ex.spawn(self.clone().progress()).detach();
        self.start_engines(ex);
        self.start_sources(ex);
        let background = future::or(
            future::or(self.supervise(ex), self.cluster(ex)),
            self.reloads(ex),
        );
        let background = future::or(background, async {
            match admin {
                Some(calls) => self.serve_admin(ex, calls).await,
                None => future::pending().await,
            }
        });
        let drained = async {
            if !self.options.exit_when_drained {
                return future::pending::<()>().await;
            }
            loop {
                // Woken by syncs (acks are synced by the committer) and by source changes.
                let a = self.shared.synced.listen();
                let b = self.orchestration.listen();
                if self.drained() {
                    return;
                }
                future::or(
                    future::or(a, b),
                    unit(Timer::after(Duration::from_millis(200))),
                )
                .await;
            }
        };
        future::or(until, future::or(drained, background)).await;
        self.shutdown().await;
    }
}

/// Awaits `f` and drops its output (to race futures of different outputs).
async fn unit<F: std::future::Future>(f: F) {
    f.await;
}

enum AnySource {
    File(FileSource),
    Connect(ConnectSource),
    Listen(ListenSource),
}

impl AnySource {
    async fn next(&mut self) -> Result<Next<'_>, SourceError> {
        match self {
            AnySource::File(s) => s.next().await,
            AnySource::Connect(s) => s.next().await,
            AnySource::Listen(s) => s.next().await,
        }
    }

    fn stats(&self) -> Stats {
        match self {
            AnySource::File(s) => s.stats(),
            AnySource::Connect(s) => s.stats(),
            AnySource::Listen(s) => s.stats(),
        }
    }
}

fn open_source(
    name: &str,
    fs: &crate::config::FsSource,
    layout: Layout,
    resume: Position,
) -> Result<AnySource, SourceError> {
    Ok(match &fs.fsname {
        FsName::File(_) => {
            let mut s = FileSource::new(name, fs, layout)?;
            s.resume_from(resume)?;
            AnySource::File(s)
        }
        FsName::Connect { .. } => {
            let mut s = ConnectSource::new(name, fs, layout)?;
            s.resume_from(resume);
            AnySource::Connect(s)
        }
        FsName::Listen { .. } => {
            let addr = ListenSource::address(fs).expect("a listen fsname");
            let mut s = ListenSource::bind(name, fs, layout, addr)?;
            s.resume_from(resume);
            AnySource::Listen(s)
        }
    })
}

/// One event of a block, for routing: its field spans in the block buffer.
struct Spanned<'a> {
    buf: &'a [u8],
    spans: &'a [(u32, u32)],
}

impl Keyed for Spanned<'_> {
    fn field_text(&self, index: usize) -> &[u8] {
        match self.spans.get(index) {
            Some(&(s, e)) if s != u32::MAX => &self.buf[s as usize..e as usize],
            _ => &[],
        }
    }
}

/// A running source's block in the making.
struct SourceRun {
    core: Rc<Core>,
    index: u16,
    feeds: Vec<Feed>,
    offsets: Vec<u8>,
    block: BlockWriter,
    /// The position before the block's first event, and after its last.
    before: Position,
    last: Position,
    spans: Vec<(u32, u32)>,
    status: Rc<SourceStatus>,
    blocksize: u32,
    /// The source's events before the block (None: unknown, after a
    /// version 1 journal), for the records' [`Origin`].
    counted: Option<u64>,
}

/// Room for one more event in a record, besides the header.
const RECORD_PAYLOAD_MAX: usize = crate::journal::RECORD_MAX - crate::journal::record::HEADER_LEN;

impl SourceRun {
    /// Keeps a reference record just appended at `seq` (contract 7).
    fn keep_reference(&self, seq: u64, rec: &NewRecord, f: &Feed, payload: &[u8]) {
        let r = crate::journal::reference::RefRecord {
            seq,
            dest: rec.dest.bits(),
            target: rec.target,
            count: rec.count,
            multicast: *f.router.policy() == crate::config::Policy::Multicast,
        };
        let mut store = self.core.shared.reference.borrow_mut();
        let before = store.dropped_events;
        match store.append(&r, payload) {
            Ok(true) => {}
            Ok(false) if before == 0 => log::warn!(
                "reference data: {} holds {} bytes, its cap; further reference events of source '{}' and others are not kept, so engines that get their project later will not receive them again",
                crate::journal::reference::FILE_NAME,
                store.bytes(),
                self.status.name
            ),
            Ok(false) => {}
            Err(e) => log::error!(
                "reference data: cannot keep {} events of source '{}': {e}; engines that get their project later will not receive them again",
                rec.count,
                self.status.name
            ),
        }
    }

    /// Reads until the source ends, fails or is stopped; returns how it ended.
    async fn pump(&mut self, mut source: AnySource) -> SourceState {
        let stop = self.status.stop.clone();
        loop {
            let step = stop.or(source.next()).await;
            let Some(step) = step else {
                self.flush().await;
                self.status.stats.set(source.stats());
                return SourceState::Stopped;
            };
            match step {
                Ok(Next::Event(view, pos)) => {
                    let size: usize = view
                        .fields()
                        .map(|f| f.map_or(1, |t| t.len() + 5))
                        .sum::<usize>()
                        + 8;
                    if self.block.count > 0 && self.block.buf.len() + size > RECORD_PAYLOAD_MAX {
                        self.flush().await;
                    }
                    debug_assert!(size <= EVENT_MAX + 1024 * 8);
                    self.block.push(
                        view.opcode.letter() as u8,
                        view.flags.letter() as u8,
                        view.fields(),
                    );
                    self.last = pos;
                    if self.block.count >= self.blocksize {
                        self.status.stats.set(source.stats());
                        self.flush().await;
                        // A file that is always readable never makes this task
                        // wait: let the committer and senders run between blocks.
                        future::yield_now().await;
                    }
                }
                Ok(Next::Idle) => {
                    self.status.stats.set(source.stats());
                    self.flush().await;
                }
                Ok(Next::Finished) => {
                    self.flush().await;
                    self.status.stats.set(source.stats());
                    return SourceState::Finished;
                }
                Err(e) => {
                    log::error!(
                        "{e}; the source stops here, as ESP's does with ignorecsvparseerrors=false: fix the input, or set <property name='ignorecsvparseerrors'>true</property> to skip such lines (counted and logged)"
                    );
                    self.status.error.replace(Some(e.to_string()));
                    self.flush().await;
                    self.status.stats.set(source.stats());
                    return SourceState::Failed;
                }
            }
        }
    }

    /// Routes the block and appends it, waiting for room as long as needed
    /// (backpressure); the block is then empty.
    async fn flush(&mut self) {
        if self.block.count == 0 {
            return;
        }
        // Group commit bounds what waits in RAM for a sync: past
        // `commit_bytes`, wait for the committer (which this wakes).
        loop {
            let synced = self.core.room.listen();
            if self.core.shared.journal.borrow().pending_bytes() < self.core.options.commit_bytes {
                break;
            }
            self.core.appended.notify(usize::MAX);
            synced.await;
        }
        // Field spans of every event, for hashing.
        self.spans.clear();
        let base = self.block.buf.as_ptr() as usize;
        let mut nfields = 0;
        for e in events(&self.block.buf).flatten() {
            nfields = e.field_count();
            for f in e.fields() {
                self.spans.push(match f {
                    Some(t) => {
                        let s = (t.as_ptr() as usize - base) as u32;
                        (s, s + t.len() as u32)
                    }
                    None => (u32::MAX, 0),
                });
            }
        }
        let block: Vec<Spanned> = (0..self.block.count as usize)
            .map(|k| Spanned {
                buf: &self.block.buf,
                spans: &self.spans[k * nfields..(k + 1) * nfields],
            })
            .collect();
        let refs: Vec<&Spanned> = block.iter().collect();
        for f in &mut self.feeds {
            let m = self.core.memberships[f.cluster].borrow();
            f.router.route(&m, &refs, &mut f.routes);
        }
        drop(refs);
        drop(block);
        // Append every group of every feed, in order; on Full, wait for room
        // and retry that group.
        let mut groups: Vec<(&Feed, EngineSet, &[u32])> = self
            .feeds
            .iter()
            .flat_map(|f| f.routes.groups().map(move |(set, idx)| (f, set, idx)))
            .collect();
        // The record carrying the position after the block is the last one
        // appended, and holds the block's last event (so its origin's count
        // at that position is the block's end).
        let whole = self.block.count as usize;
        if let Some(k) = groups
            .iter()
            .rposition(|g| g.2.last() == Some(&(whole as u32 - 1)))
        {
            let g = groups.remove(k);
            groups.push(g);
        }
        let dests: Vec<EngineSet> = groups
            .iter()
            .map(|&(f, set, _)| EngineSet::from_bits(set.bits() << self.offsets[f.cluster]))
            .collect();
        // Decoded once, only when some group is a part of the block.
        let evs: Vec<_> = if groups.iter().any(|g| g.2.len() != whole) {
            events(&self.block.buf).flatten().collect()
        } else {
            Vec::new()
        };
        let mut sub = BlockWriter::default();
        let mut paused = false;
        for (k, &(f, _, idx)) in groups.iter().enumerate() {
            let payload: &[u8] = if idx.len() == whole {
                &self.block.buf
            } else {
                sub.clear();
                for &i in idx {
                    let e = &evs[i as usize];
                    sub.push(e.opcode, e.flags, e.fields());
                }
                &sub.buf
            };
            let at_end = k + 1 == groups.len();
            let later = dests[k + 1..]
                .iter()
                .fold(EngineSet::EMPTY, |a, &d| a.union(d));
            let origin = match self.counted {
                Some(start) => Origin {
                    block_start: start,
                    block_len: self.block.count,
                    at_end,
                    closes: dests[k].minus(later),
                },
                None => Origin::NONE,
            };
            let rec = NewRecord {
                dest: dests[k],
                source: self.index,
                target: f.dest,
                position: if at_end { self.last } else { self.before },
                count: idx.len() as u32,
                time_ms: now_ms(),
                origin,
            };
            loop {
                // Listen before trying, so room made by a sync in between is not missed.
                let room = self.core.room.listen();
                let r = self.core.shared.journal.borrow_mut().append(rec, payload);
                let full = match r {
                    Ok(seq) => {
                        if f.reference {
                            self.keep_reference(seq, &rec, f, payload);
                        }
                        self.core.appended.notify(usize::MAX);
                        break;
                    }
                    Err(full) => full,
                };
                if !paused {
                    paused = true;
                    self.status.state.set(SourceState::Paused);
                    log::info!(
                        "source '{}': paused, {}",
                        self.status.name,
                        match full {
                            Full::Bytes => "the journal is full".to_string(),
                            Full::Engine(e) =>
                                format!("engine slot {e} has -buffersize events unacknowledged"),
                        }
                    );
                }
                // Waits for room even when stopping: accepted input is never dropped.
                future::or(room, unit(Timer::after(Duration::from_millis(500)))).await;
            }
        }
        drop(groups);
        if paused {
            log::info!("source '{}': resumed", self.status.name);
            if self.status.state.get() == SourceState::Paused {
                self.status.state.set(SourceState::Running);
            }
        }
        self.status
            .accepted
            .set(self.status.accepted.get() + u64::from(self.block.count));
        if let Some(c) = &mut self.counted {
            *c += u64::from(self.block.count);
        }
        self.block.clear();
        self.before = self.last;
    }
}
