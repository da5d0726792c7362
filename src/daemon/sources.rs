//! The raw-sources' lives: starting each when its orchestration allows, the
//! status the admin API shows, and the order groups wait for (`may_start`).

use super::owner::ToCore;
use super::*;
use crate::source::orchestration;

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
    /// Opened by the owner when its orchestration group may start.
    pub go: Go,
}

/// A latch the owner opens once (a source may start).
#[derive(Debug, Default)]
pub struct Go {
    open: Cell<bool>,
    event: Event,
}

impl Go {
    pub fn open(&self) {
        self.open.set(true);
        self.event.notify(usize::MAX);
    }

    pub fn is_open(&self) -> bool {
        self.open.get()
    }

    /// Returns once open.
    pub async fn opened(&self) {
        loop {
            let l = self.event.listen();
            if self.open.get() {
                return;
            }
            l.await;
        }
    }
}

impl SourceStatus {
    pub(super) fn new(name: &str) -> SourceStatus {
        SourceStatus {
            name: name.to_string(),
            state: Cell::new(SourceState::Waiting),
            started: Cell::new(false),
            stats: Cell::new(Stats::default()),
            accepted: Cell::new(0),
            error: RefCell::new(None),
            stop: Rc::new(Stop::default()),
            done: Cell::new(true),
            go: Go::default(),
        }
    }
}

/// A map fed by a source: its router, cluster and destination index.
pub(super) struct Feed {
    pub(super) router: Router,
    pub(super) cluster: usize,
    /// The journal's id of its destination (`journal::layout`).
    pub(super) dest: u16,
    /// Its place among the config's maps (all esp-maps, in order).
    pub(super) map: usize,
    pub(super) routes: Routes,
    /// Its records are kept as reference data (`journal::reference`).
    pub(super) reference: bool,
}

impl Core {
    /// Whether source `i` may start (`source::orchestration`).
    pub(super) fn may_start(&self, i: usize) -> bool {
        let config = self.config();
        orchestration::may_start(
            config.esp_maps.iter().map(|m| &m.orchestration),
            &self.source_progress(),
            i,
        )
    }

    /// How far each source got, as orchestration reads it.
    fn source_progress(&self) -> Vec<orchestration::Progress> {
        self.sources()
            .iter()
            .map(|s| orchestration::Progress {
                started: s.started.get(),
                finished: s.state.get() == SourceState::Finished,
            })
            .collect()
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

    /// Starts raw-source `i` of `config` (the current one) if some map
    /// reads it: its feeds and its window layout are fixed here, so that its
    /// task runs on no matter how a reload renumbers the others.
    pub(super) fn start_source(self: &Rc<Self>, ex: &LocalExecutor<'_>, config: &Config, i: usize) {
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
        let engine_ids = self.engine_ids.clone();
        ex.spawn(async move {
            core.clone()
                .run_source(id, raw, status.clone(), feeds, layout, engine_ids)
                .await;
            status.done.set(true);
            core.tell(ToCore::Source).await;
        })
        .detach();
    }

    pub(super) async fn run_source(
        self: Rc<Self>,
        id: u16,
        raw: crate::config::RawSource,
        status: Rc<SourceStatus>,
        feeds: Vec<Feed>,
        layout: Layout,
        engine_ids: crate::route::ids::EngineIds,
    ) {
        // Wait for the orchestration edges into this source's group (the
        // owner opens `go`).
        if status.stop.or(status.go.opened()).await.is_none() {
            status.state.set(SourceState::Stopped);
            return;
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
                self.tell(ToCore::Source).await;
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
        self.tell(ToCore::Source).await;
        log::info!("source '{}': started", raw.name);
        let mut run = SourceRun {
            core: self.clone(),
            index: id,
            feeds,
            engine_ids,
            block: BlockWriter::default(),
            before: resume,
            last: resume,
            status: status.clone(),
            blocksize: raw.fs.blocksize.max(1),
            counted,
        };
        let end = run.pump(source).await;
        status.state.set(end);
        self.tell(ToCore::Source).await;
        log::info!(
            "source '{}': {} ({} events accepted)",
            raw.name,
            end.name(),
            status.accepted.get()
        );
    }

    /// For each source still waiting for its orchestration group: what it
    /// waits for (`source 'x' waits for 'y' to finish`).
    pub fn orchestration_waits(&self) -> Vec<String> {
        let config = self.config();
        let sources = self.sources();
        let progress = self.source_progress();
        let mut out = Vec::new();
        for (i, s) in sources.iter().enumerate() {
            if s.state.get() != SourceState::Waiting || self.stop_sources.is_stopped() {
                continue;
            }
            let maps = config.esp_maps.iter().map(|m| &m.orchestration);
            for u in orchestration::unmet(maps, &progress, i) {
                let (g, from, e) = (u.group, u.waits_for, u.entry);
                let o = &config.esp_maps[u.map].orchestration;
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
}
