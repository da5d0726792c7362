//! What the manager shows: `GET status` (JSON), `GET metrics` (Prometheus)
//! and `GET health`, read from the core's state.

use super::*;
use crate::text::{json_str, label};
use std::fmt::Write as _;

/// One engine as the API shows it.
pub(super) struct EngineView {
    pub(super) cluster: String,
    pub(super) slot: String,
    pub(super) serving: crate::config::Engine,
    pub(super) status: crate::engine::sender::Status,
    pub(super) backlog: u64,
}

/// A configured spare: in reserve, or serving a slot since a failover.
pub(super) struct SpareView {
    pub(super) cluster: String,
    pub(super) engine: crate::config::Engine,
    /// The slot it serves; None while in reserve.
    pub(super) serves: Option<String>,
}

impl Core {
    pub(super) fn engine_views(&self, c: usize) -> Vec<EngineView> {
        let m = self.memberships[c].borrow();
        let engines = self.engines.borrow();
        let j = self.shared.journal.borrow();
        m.slots()
            .iter()
            .map(|s| {
                let id = self.engine_ids.id(c, s.id);
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
    pub(super) fn spare_views(&self, c: usize) -> Vec<SpareView> {
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

    pub(super) fn all_engine_views(&self) -> Vec<EngineView> {
        (0..self.memberships.len())
            .flat_map(|c| self.engine_views(c))
            .collect()
    }

    /// An engine's state as shown: a standby's engines are "standby".
    pub(super) fn engine_state(&self, s: &crate::engine::sender::Status) -> &'static str {
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
        let now_ms = crate::clock::wall_ms();
        for c in 0..self.memberships.len() {
            let slots: Vec<(u8, String, String)> = self.memberships[c]
                .borrow()
                .slots()
                .iter()
                .map(|s| {
                    (
                        self.engine_ids.id(c, s.id),
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
