//! What the manager shows: the core's state read into a plain
//! [`Snapshot`] at one point between awaits; `admin::render` turns it into
//! `status`, `metrics`, `health` and `routerEngines`.

use super::owner::Control;
use super::*;
use crate::admin::snapshot::{
    DeadLetterView, EngineView, Failover, JournalView, ReferenceView, Reloads, Snapshot,
    SourceView, SpareView,
};

impl Core {
    /// Everything the admin API shows. With `ages`, each engine's oldest
    /// queued event is looked up in the journal (`metrics` only: it reads
    /// a record per engine).
    pub(super) fn snapshot(&self, ctl: &Control, ages: bool) -> Snapshot {
        let config = self.config();
        let (applied, refused) = ctl.reloads;
        let failover = {
            let n = &ctl.node;
            let t = &self.traffic;
            Failover {
                role: n.role(),
                epoch: n.epoch(),
                me: n.me().to_string(),
                leader: n.leader_addr().map(str::to_string),
                managers: n.managers().to_vec(),
                sent_messages: t.sent_messages.get(),
                sent_bytes: t.sent_bytes.get(),
                send_failures: t.send_failures.get(),
                received_messages: t.received_messages.get(),
                received_bytes: t.received_bytes.get(),
            }
        };
        let positions = self.shared.journal.borrow().positions().clone();
        let source_ids = self.source_ids.borrow();
        let sources = self
            .sources()
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let st = s.stats.get();
                SourceView {
                    name: s.name.clone(),
                    state: s.state.get(),
                    events: st.events,
                    accepted: s.accepted.get(),
                    errors: st.errors,
                    bytes: st.bytes,
                    position: source_ids.get(i).and_then(|id| positions.get(id)).copied(),
                    error: s.error.borrow().clone(),
                }
            })
            .collect();
        drop(source_ids);
        let mut engines = Vec::new();
        let mut spares = Vec::new();
        for c in 0..self.memberships.len() {
            engines.extend(self.engine_views(ctl, c, ages));
            spares.extend(self.spare_views(c));
        }
        let j = self.shared.journal.borrow();
        let r = self.shared.reference.borrow();
        let d = self.shared.dead_letters.borrow();
        Snapshot {
            version: env!("CARGO_PKG_VERSION"),
            manager: config.manager.clone(),
            uptime_s: self.started.elapsed().as_secs_f64(),
            now_ms: crate::clock::wall_ms(),
            reloads: Reloads {
                applied,
                refused,
                last: ctl.last_reload.clone(),
            },
            failover,
            standby: ctl.is_standby(),
            sources,
            orchestration_waits: self.orchestration_waits(),
            clusters: config.clusters.iter().map(|c| c.name.clone()).collect(),
            maps: config
                .esp_maps
                .iter()
                .map(|m| (m.name.clone(), m.cluster))
                .collect(),
            engines,
            spares,
            journal: JournalView {
                bytes: j.bytes(),
                bytes_max: j.bytes_max(),
                segments: j.segment_count(),
                appended_events: j.next_seq(),
                synced_events: j.synced_seq(),
                lost_events: j.recovery.lost_events,
                damaged_stretches: j.recovery.corrupt.len(),
                written_bytes: j.storage().bytes_written(),
                syncs: j.storage().syncs(),
                disk_full: j.disk_full(),
            },
            reference: ReferenceView {
                bytes: r.bytes(),
                bytes_max: crate::limits::REFERENCE_BYTES_MAX,
                events: r.events,
                dropped_events: r.dropped_events,
            },
            dead_letters: DeadLetterView {
                bytes: d.bytes,
                rotations: d.rotations,
            },
        }
    }

    /// Cluster `c`'s slots, in the membership's order.
    fn engine_views(&self, ctl: &Control, c: usize, ages: bool) -> Vec<EngineView> {
        let m = self.memberships[c].borrow();
        let engines = &ctl.engines;
        let mut j = self.shared.journal.borrow_mut();
        m.slots()
            .iter()
            .map(|s| {
                let id = self.engine_ids.id(c, s.id);
                EngineView {
                    cluster: c,
                    slot: s.name.clone(),
                    serving: s.engine.clone(),
                    status: engines
                        .iter()
                        .find(|h| h.id == id)
                        .map(|h| h.status.get())
                        .unwrap_or_default(),
                    backlog: j.backlog(id),
                    oldest_ms: if ages {
                        j.oldest_unacked_ms(id).ok().flatten()
                    } else {
                        None
                    },
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
                    cluster: c,
                    engine: e.clone(),
                    serves,
                })
            })
            .collect()
    }
}
