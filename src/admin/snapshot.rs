//! What the manager shows, as plain data: the core fills a [`Snapshot`]
//! (`daemon::status`) and the pure renderer (`admin::render`) turns it into
//! `GET status` (JSON), `GET metrics` (Prometheus), `GET health` and
//! `GET routerEngines` (XML). Nothing here borrows the core's state: a
//! snapshot is read at one point between awaits.

use crate::config::Engine;
use crate::engine::sender::Status;
use crate::event::Position;
use crate::failover::{Manager, Role};
use crate::source::SourceState;

/// Everything the admin API renders.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub version: &'static str,
    pub manager: String,
    pub uptime_s: f64,
    /// Wall-clock ms when it was taken (backlog ages).
    pub now_ms: u64,
    pub reloads: Reloads,
    pub failover: Failover,
    /// This manager is a standby: its engines show as "standby".
    pub standby: bool,
    pub sources: Vec<SourceView>,
    pub orchestration_waits: Vec<String>,
    /// Cluster names, in config order (views name theirs by index).
    pub clusters: Vec<String>,
    /// esp-maps: name and cluster index, in config order.
    pub maps: Vec<(String, usize)>,
    pub engines: Vec<EngineView>,
    pub spares: Vec<SpareView>,
    pub journal: JournalView,
    pub reference: ReferenceView,
    pub dead_letters: DeadLetterView,
}

#[derive(Debug, Clone, Default)]
pub struct Reloads {
    pub applied: u64,
    pub refused: u64,
    /// What the last reload did or why it was refused.
    pub last: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Failover {
    pub role: Role,
    pub epoch: u64,
    pub me: String,
    pub leader: Option<String>,
    pub managers: Vec<Manager>,
    pub sent_messages: u64,
    pub sent_bytes: u64,
    pub send_failures: u64,
    pub received_messages: u64,
    pub received_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct SourceView {
    pub name: String,
    pub state: SourceState,
    pub events: u64,
    pub accepted: u64,
    pub errors: u64,
    pub bytes: u64,
    /// Where it resumes after a restart (the journal's position).
    pub position: Option<Position>,
    pub error: Option<String>,
}

/// One engine slot.
#[derive(Debug, Clone)]
pub struct EngineView {
    pub cluster: usize,
    pub slot: String,
    /// The engine serving the slot (a spare by its own name).
    pub serving: Engine,
    pub status: Status,
    pub backlog: u64,
    /// When the oldest event queued for it was read (None: none queued,
    /// or not asked for).
    pub oldest_ms: Option<u64>,
}

/// A configured spare: in reserve, or serving a slot since a failover.
#[derive(Debug, Clone)]
pub struct SpareView {
    pub cluster: usize,
    pub engine: Engine,
    /// The slot it serves; None while in reserve.
    pub serves: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct JournalView {
    pub bytes: u64,
    pub bytes_max: u64,
    pub segments: usize,
    pub appended_events: u64,
    pub synced_events: u64,
    pub lost_events: u64,
    pub damaged_stretches: usize,
    pub written_bytes: u64,
    pub syncs: u64,
    pub disk_full: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ReferenceView {
    pub bytes: u64,
    pub bytes_max: u64,
    pub events: u64,
    pub dropped_events: u64,
}

#[derive(Debug, Clone, Default)]
pub struct DeadLetterView {
    pub bytes: u64,
    pub rotations: u64,
}

impl Snapshot {
    /// An engine's state as shown: a standby's engines are "standby".
    pub fn engine_state(&self, v: &EngineView) -> &'static str {
        if self.standby {
            "standby"
        } else {
            v.status.state.name()
        }
    }

    pub fn cluster_name(&self, c: usize) -> &str {
        self.clusters.get(c).map_or("", String::as_str)
    }
}
