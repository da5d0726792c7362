//! `GET metrics`: a [`Snapshot`] in Prometheus text format, the numbers of
//! `status` (pure; tested with the other forms in `admin::render`).

use super::snapshot::{EngineView, Snapshot, SourceView};
use crate::failover::Role;
use crate::source::SourceState;
use crate::text::label;
use std::fmt::Write as _;

/// `# HELP` and `# TYPE` of a metric family.
fn family(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(
        o,
        "# HELP edgecm_{name} {help}\n# TYPE edgecm_{name} {kind}"
    );
}

/// `GET metrics`: the numbers of `status` in Prometheus text format.
pub fn metrics_text(s: &Snapshot) -> String {
    let mut o = String::new();
    family(
        &mut o,
        "uptime_seconds",
        "gauge",
        "Seconds since the manager started.",
    );
    let _ = writeln!(o, "edgecm_uptime_seconds {:.3}", s.uptime_s);
    if let Some(n) = crate::heap::allocations() {
        family(
            &mut o,
            "heap_allocations_total",
            "counter",
            "Heap allocations and reallocations (built with count-allocs).",
        );
        let _ = writeln!(o, "edgecm_heap_allocations_total {n}");
    }
    type SourceFn = fn(&SourceView) -> u64;
    let source_metrics: [(&str, &str, SourceFn); 4] = [
        ("source_events_total", "Events read from the source.", |s| {
            s.events
        }),
        (
            "source_accepted_events_total",
            "Events appended to the journal.",
            |s| s.accepted,
        ),
        (
            "source_errors_total",
            "Input skipped as not an event.",
            |s| s.errors,
        ),
        ("source_bytes_total", "Bytes read from the source.", |s| {
            s.bytes
        }),
    ];
    for (name, help, get) in source_metrics {
        family(&mut o, name, "counter", help);
        for src in &s.sources {
            let _ = writeln!(
                o,
                "edgecm_{name}{{source=\"{}\"}} {}",
                label(&src.name),
                get(src)
            );
        }
    }
    family(
        &mut o,
        "source_running",
        "gauge",
        "1 while the source reads (not waiting, paused or ended).",
    );
    for src in &s.sources {
        let _ = writeln!(
            o,
            "edgecm_source_running{{source=\"{}\",state=\"{}\"}} {}",
            label(&src.name),
            src.state.name(),
            u8::from(src.state == SourceState::Running)
        );
    }
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
        for v in &s.engines {
            let _ = writeln!(
                o,
                "edgecm_{name}{{cluster=\"{}\",engine=\"{}\",serving=\"{}\"}} {}",
                label(s.cluster_name(v.cluster)),
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
    for sp in &s.spares {
        let _ = writeln!(
            o,
            "edgecm_spare_engine{{cluster=\"{}\",spare=\"{}\",serves=\"{}\"}} 1",
            label(s.cluster_name(sp.cluster)),
            label(&sp.engine.name),
            label(sp.serves.as_deref().unwrap_or(""))
        );
    }
    family(
        &mut o,
        "engine_state",
        "gauge",
        "1 for the engine's state (connecting, deploying, ready, failing, failed, standby).",
    );
    for v in &s.engines {
        let _ = writeln!(
            o,
            "edgecm_engine_state{{cluster=\"{}\",engine=\"{}\",serving=\"{}\",state=\"{}\"}} 1",
            label(s.cluster_name(v.cluster)),
            label(&v.slot),
            label(&v.serving.name),
            s.engine_state(v)
        );
    }
    family(
        &mut o,
        "engine_backlog_age_seconds",
        "gauge",
        "Age of the oldest event queued for the engine (0 when none).",
    );
    for v in &s.engines {
        let _ = writeln!(
            o,
            "edgecm_engine_backlog_age_seconds{{cluster=\"{}\",engine=\"{}\",serving=\"{}\"}} {}",
            label(s.cluster_name(v.cluster)),
            label(&v.slot),
            label(&v.serving.name),
            v.oldest_ms.map_or(0, |t| s.now_ms.saturating_sub(t) / 1000)
        );
    }
    let j = &s.journal;
    let journal: [(&str, &str, &str, u64); 7] = [
        ("journal_bytes", "gauge", "Bytes of journal segments.", j.bytes),
        (
            "journal_bytes_max",
            "gauge",
            "The journal's byte cap (-state-max): at it, sources pause.",
            j.bytes_max,
        ),
        (
            "journal_segments",
            "gauge",
            "Journal segment files.",
            j.segments as u64,
        ),
        (
            "journal_appended_events_total",
            "counter",
            "Events appended to the journal (its sequence).",
            j.appended_events,
        ),
        (
            "journal_written_bytes_total",
            "counter",
            "Bytes written to the state dir's journal files (records, cursors, the failover state).",
            j.written_bytes,
        ),
        (
            "journal_syncs_total",
            "counter",
            "fsync/fdatasync calls on the journal (files and folder).",
            j.syncs,
        ),
        (
            "journal_lost_events",
            "gauge",
            "Events lost to damage found when the journal was opened (flash or a power cut); each damaged record costs only itself.",
            j.lost_events,
        ),
    ];
    let r = &s.reference;
    let stores: [(&str, &str, &str, u64); 5] = [
        (
            "reference_bytes",
            "gauge",
            "Bytes of reference data kept for engines that get their project anew.",
            r.bytes,
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
            s.dead_letters.bytes,
        ),
        (
            "dead_letter_rotations_total",
            "counter",
            "Times the dead-letter file reached its cap and was rotated.",
            s.dead_letters.rotations,
        ),
        (
            "reference_dropped_events_total",
            "counter",
            "Reference events not kept: past the reference store's cap.",
            r.dropped_events,
        ),
    ];
    for (name, kind, help, v) in journal.into_iter().chain(stores) {
        family(&mut o, name, kind, help);
        let _ = writeln!(o, "edgecm_{name} {v}");
    }
    let f = &s.failover;
    family(
        &mut o,
        "role",
        "gauge",
        "1 for this manager's failover role (leader or standby).",
    );
    for r in [Role::Leader, Role::Standby] {
        let _ = writeln!(
            o,
            "edgecm_role{{role=\"{}\"}} {}",
            r.name(),
            u8::from(f.role == r)
        );
    }
    family(
        &mut o,
        "epoch",
        "gauge",
        "The failover epoch this manager is in.",
    );
    let _ = writeln!(o, "edgecm_epoch {}", f.epoch);
    family(
        &mut o,
        "managers",
        "gauge",
        "Managers in the failover list (this one included).",
    );
    let _ = writeln!(o, "edgecm_managers {}", f.managers.len());
    let traffic: [(&str, &str, u64); 5] = [
        (
            "failover_sent_messages_total",
            "Failover messages sent to other managers.",
            f.sent_messages,
        ),
        (
            "failover_sent_bytes_total",
            "Bytes of failover messages sent (bodies).",
            f.sent_bytes,
        ),
        (
            "failover_send_failures_total",
            "Failover messages that got no 2xx answer.",
            f.send_failures,
        ),
        (
            "failover_received_messages_total",
            "Failover messages received.",
            f.received_messages,
        ),
        (
            "failover_received_bytes_total",
            "Bytes of failover messages received (bodies).",
            f.received_bytes,
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
    for v in &s.engines {
        let _ = writeln!(
            o,
            "edgecm_engine_skipped_events_total{{cluster=\"{}\",engine=\"{}\"}} {}",
            label(s.cluster_name(v.cluster)),
            label(&v.slot),
            v.status.skipped_events
        );
    }
    o
}
