//! The pure renderer: a [`Snapshot`] to `GET status` (JSON), `GET metrics`
//! (Prometheus text, the same numbers: `admin::metrics`), `GET health` and
//! `GET routerEngines` (XML). No state, no clock: everything it prints is in
//! the snapshot, so each form is unit-tested from a snapshot built by hand.

use super::snapshot::{EngineView, Snapshot};
use crate::engine::encode::escape;
use crate::event::Position;
use crate::source::SourceState;
use crate::text::json_str;
use std::fmt::Write as _;

pub use super::metrics::metrics_text;

/// Why the manager does not do its job, if it does not (`GET health`):
/// a source that failed, an engine failed with no spare while events wait
/// for it, a deploy that keeps failing, the journal near its cap or the
/// filesystem full.
pub fn health_reasons(s: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for src in &s.sources {
        if src.state == SourceState::Failed {
            out.push(format!(
                "source '{}' failed: {}",
                src.name,
                src.error.as_deref().unwrap_or("see the log")
            ));
        }
    }
    if !s.standby {
        for v in &s.engines {
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
    for w in &s.orchestration_waits {
        if w.ends_with("it is failed") || w.ends_with("it is stopped") {
            out.push(format!("orchestration stuck: {w}"));
        }
    }
    let j = &s.journal;
    let share = j.bytes as f64 / j.bytes_max.max(1) as f64;
    if share >= crate::limits::JOURNAL_HEALTH_SHARE {
        out.push(format!(
            "the journal holds {:.0} % of its cap ({} of {} bytes): sources pause soon",
            share * 100.0,
            j.bytes,
            j.bytes_max
        ));
    }
    if j.disk_full {
        out.push("the filesystem of the state dir is full: sources wait until engines drained the journal".to_string());
    }
    out
}

/// `GET health`: 200 and `ok`, or 503 and the reasons.
pub fn health_json(reasons: &[String]) -> String {
    format!(
        "{{\"status\": \"{}\", \"reasons\": [{}]}}\n",
        if reasons.is_empty() { "ok" } else { "failing" },
        reasons
            .iter()
            .map(|r| json_str(r))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// `GET status`.
pub fn status_json(s: &Snapshot) -> String {
    let mut o = String::from("{\n");
    let _ = writeln!(
        o,
        "  \"version\": {},\n  \"manager\": {},\n  \"uptime_s\": {:.3},",
        json_str(s.version),
        json_str(&s.manager),
        s.uptime_s
    );
    let _ = writeln!(
        o,
        "  \"reloads\": {{\"applied\": {}, \"refused\": {}, \"last\": {}}},",
        s.reloads.applied,
        s.reloads.refused,
        s.reloads
            .last
            .as_deref()
            .map_or("null".to_string(), json_str)
    );
    let f = &s.failover;
    let managers: Vec<String> = f
        .managers
        .iter()
        .map(|m| format!("{{\"id\": {}, \"address\": {}}}", m.id, json_str(&m.addr)))
        .collect();
    let _ = writeln!(
        o,
        "  \"role\": \"{}\",\n  \"epoch\": {},\n  \"address\": {},\n  \"leader\": {},\n  \"managers\": [{}],",
        f.role.name(),
        f.epoch,
        json_str(&f.me),
        f.leader.as_deref().map_or("null".to_string(), json_str),
        managers.join(", ")
    );
    o.push_str("  \"sources\": [");
    for (i, src) in s.sources.iter().enumerate() {
        let pos = match src.position {
            Some(Position::File { offset, .. }) => format!("{{\"file_offset\": {offset}}}"),
            Some(Position::Socket { seq }) => format!("{{\"socket_events\": {seq}}}"),
            _ => "null".to_string(),
        };
        let _ = write!(
            o,
            "{}\n    {{\"name\": {}, \"state\": \"{}\", \"events\": {}, \"accepted\": {}, \"errors\": {}, \"bytes\": {}, \"position\": {pos}, \"error\": {}}}",
            if i > 0 { "," } else { "" },
            json_str(&src.name),
            src.state.name(),
            src.events,
            src.accepted,
            src.errors,
            src.bytes,
            src.error.as_deref().map_or("null".to_string(), json_str)
        );
    }
    let waits: Vec<String> = s.orchestration_waits.iter().map(|w| json_str(w)).collect();
    let _ = write!(
        o,
        "\n  ],\n  \"orchestration_waits\": [{}],",
        waits.join(", ")
    );
    o.push_str("\n  \"engines\": [");
    for (i, v) in s.engines.iter().enumerate() {
        let st = &v.status;
        let _ = write!(
            o,
            "{}\n    {{\"cluster\": {}, \"name\": {}, \"serving\": {}, \"host\": {}, \"ha_port\": {}, \"state\": \"{}\", \"backlog\": {}, \"acked\": {}, \"rejected\": {}, \"failed_requests\": {}, \"deploys\": {}, \"deploy_failures\": {}, \"reference_resent\": {}, \"skipped\": {}, \"last_error\": {}}}",
            if i > 0 { "," } else { "" },
            json_str(s.cluster_name(v.cluster)),
            json_str(&v.slot),
            json_str(&v.serving.name),
            json_str(&v.serving.host),
            v.serving.ha_port,
            s.engine_state(v),
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
    for (i, sp) in s.spares.iter().enumerate() {
        let _ = write!(
            o,
            "{}\n    {{\"cluster\": {}, \"name\": {}, \"host\": {}, \"ha_port\": {}, \"serves\": {}}}",
            if i > 0 { "," } else { "" },
            json_str(s.cluster_name(sp.cluster)),
            json_str(&sp.engine.name),
            json_str(&sp.engine.host),
            sp.engine.ha_port,
            sp.serves.as_deref().map_or("null".to_string(), json_str)
        );
    }
    let (j, r) = (&s.journal, &s.reference);
    let _ = write!(
        o,
        "\n  ],\n  \"journal\": {{\"bytes\": {}, \"segments\": {}, \"appended_events\": {}, \"synced_events\": {}, \"lost_events\": {}, \"damaged_stretches\": {}}},\n  \"reference\": {{\"bytes\": {}, \"bytes_max\": {}, \"events\": {}, \"dropped_events\": {}}}\n}}\n",
        j.bytes,
        j.segments,
        j.appended_events,
        j.synced_events,
        j.lost_events,
        j.damaged_stretches,
        r.bytes,
        r.bytes_max,
        r.events,
        r.dropped_events
    );
    o
}

/// `GET routerEngines[/{map}[/{engine}]]` for the esp-maps `maps` (indices
/// into the snapshot's), only engine `engine` when given; `Err` names what
/// is missing (404).
pub fn router_engines_xml(
    s: &Snapshot,
    maps: &[usize],
    engine: Option<&str>,
) -> Result<String, String> {
    let mut out = String::from("<router-engines>\n");
    for &i in maps {
        let (name, c) = (&s.maps[i].0, s.maps[i].1);
        let views: Vec<&EngineView> = s.engines.iter().filter(|v| v.cluster == c).collect();
        let spares: Vec<_> = s.spares.iter().filter(|sp| sp.cluster == c).collect();
        if let Some(e) = engine {
            if !views.iter().any(|v| v.slot == e) && !spares.iter().any(|sp| sp.engine.name == e) {
                return Err(format!("esp-map '{name}' routes to no engine named '{e}'"));
            }
        }
        let _ = writeln!(
            out,
            "  <esp-map name=\"{}\" cluster=\"{}\">",
            escape(name),
            escape(s.cluster_name(c))
        );
        for v in views.iter().filter(|v| engine.is_none_or(|e| v.slot == e)) {
            let _ = writeln!(
                out,
                "    <esp-engine name=\"{}\" serving=\"{}\" host=\"{}\" port=\"{}\" ha_port=\"{}\" state=\"{}\" backlog=\"{}\" acked=\"{}\" rejected=\"{}\"/>",
                escape(&v.slot),
                escape(&v.serving.name),
                escape(&v.serving.host),
                v.serving.port,
                v.serving.ha_port,
                s.engine_state(v),
                v.backlog,
                v.status.acked_events,
                v.status.rejected_events
            );
        }
        for sp in spares
            .iter()
            .filter(|sp| engine.is_none_or(|e| sp.engine.name == e))
        {
            let _ = writeln!(
                out,
                "    <spare-esp-engine name=\"{}\" host=\"{}\" port=\"{}\" ha_port=\"{}\" state=\"{}\"{}/>",
                escape(&sp.engine.name),
                escape(&sp.engine.host),
                sp.engine.port,
                sp.engine.ha_port,
                if sp.serves.is_some() { "serving" } else { "reserve" },
                sp.serves
                    .as_ref()
                    .map(|n| format!(" serves=\"{}\"", escape(n)))
                    .unwrap_or_default()
            );
        }
        out.push_str("  </esp-map>\n");
    }
    out.push_str("</router-engines>\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::snapshot::{SourceView, SpareView};
    use crate::config::Engine;
    use crate::engine::sender::Status;
    use crate::engine::State;

    fn engine(name: &str, port: u16) -> Engine {
        Engine {
            name: name.into(),
            host: "127.0.0.1".into(),
            port: port - 1,
            ha_port: port,
            tls: false,
            auth_user: None,
            prefix: String::new(),
            connect: None,
        }
    }

    fn view(cluster: usize, slot: &str, state: State, backlog: u64) -> EngineView {
        EngineView {
            cluster,
            slot: slot.into(),
            serving: engine(slot, 9001),
            status: Status {
                state,
                acked_events: 40,
                ..Status::default()
            },
            backlog,
            oldest_ms: Some(1_000),
        }
    }

    /// Two clusters: "grid" with esp1 (ready) and esp2 (failed, 7 waiting)
    /// and spare esp3 in reserve; "side" with esp9. One source, running.
    fn snapshot() -> Snapshot {
        Snapshot {
            version: "0.1.0",
            manager: "cm \"a\"".into(),
            uptime_s: 2.5,
            now_ms: 61_000,
            sources: vec![SourceView {
                name: "trades".into(),
                state: SourceState::Running,
                events: 100,
                accepted: 90,
                errors: 1,
                bytes: 4096,
                position: Some(Position::File {
                    dev: 1,
                    ino: 2,
                    offset: 4000,
                }),
                error: None,
            }],
            clusters: vec!["grid".into(), "side".into()],
            maps: vec![("m1".into(), 0), ("m2".into(), 1)],
            engines: vec![
                view(0, "esp1", State::Ready, 0),
                view(0, "esp2", State::Failed, 7),
                view(1, "esp9", State::Ready, 0),
            ],
            spares: vec![SpareView {
                cluster: 0,
                engine: engine("esp3", 9003),
                serves: None,
            }],
            ..Snapshot::default()
        }
    }

    #[test]
    fn status_is_json_with_every_source_engine_and_spare() {
        let j = status_json(&snapshot());
        assert!(j.starts_with("{\n  \"version\": \"0.1.0\",\n  \"manager\": \"cm \\\"a\\\"\","));
        assert!(j.contains("\"position\": {\"file_offset\": 4000}"), "{j}");
        assert!(
            j.contains("\"cluster\": \"side\", \"name\": \"esp9\""),
            "{j}"
        );
        assert!(j.contains("\"name\": \"esp2\", \"serving\": \"esp2\", \"host\": \"127.0.0.1\", \"ha_port\": 9001, \"state\": \"failed\", \"backlog\": 7"), "{j}");
        assert!(
            j.contains("\"spares\": [\n    {\"cluster\": \"grid\", \"name\": \"esp3\""),
            "{j}"
        );
        assert!(j.trim_end().ends_with('}'));
    }

    #[test]
    fn a_standbys_engines_show_as_standby_and_do_not_fail_its_health() {
        let mut s = snapshot();
        assert_eq!(
            health_reasons(&s),
            vec!["engine 'esp2' failed with 7 events waiting for it (no spare took over): see the log"]
        );
        s.standby = true;
        assert!(health_reasons(&s).is_empty());
        assert!(status_json(&s).contains("\"state\": \"standby\""));
        assert_eq!(health_json(&[]), "{\"status\": \"ok\", \"reasons\": []}\n");
    }

    #[test]
    fn health_names_a_failed_source_and_a_journal_near_its_cap() {
        let mut s = snapshot();
        s.engines.clear();
        s.sources[0].state = SourceState::Failed;
        s.sources[0].error = Some("cannot open in.csv".into());
        s.journal.bytes = 95;
        s.journal.bytes_max = 100;
        let r = health_reasons(&s);
        assert_eq!(r[0], "source 'trades' failed: cannot open in.csv");
        assert!(
            r[1].starts_with("the journal holds 95 % of its cap"),
            "{r:?}"
        );
    }

    #[test]
    fn metrics_carry_labels_and_the_backlog_age() {
        let m = metrics_text(&snapshot());
        assert!(m.contains("# TYPE edgecm_engine_backlog_events gauge\n"));
        assert!(m.contains(
            "edgecm_engine_backlog_events{cluster=\"grid\",engine=\"esp2\",serving=\"esp2\"} 7\n"
        ));
        assert!(
            m.contains("edgecm_engine_up{cluster=\"side\",engine=\"esp9\",serving=\"esp9\"} 1\n")
        );
        // The oldest queued event was read 60 s before the snapshot.
        assert!(m.contains(
            "edgecm_engine_backlog_age_seconds{cluster=\"grid\",engine=\"esp1\",serving=\"esp1\"} 60\n"
        ));
        assert!(m.contains("edgecm_spare_engine{cluster=\"grid\",spare=\"esp3\",serves=\"\"} 1\n"));
        assert!(m.contains("edgecm_source_running{source=\"trades\",state=\"running\"} 1\n"));
        assert!(m.contains("edgecm_role{role=\"leader\"} 1\nedgecm_role{role=\"standby\"} 0\n"));
        // Every sample line follows its family's HELP and TYPE.
        for line in m.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(m.contains(&format!("# TYPE {name} ")), "{name} has no TYPE");
        }
    }

    #[test]
    fn router_engines_lists_a_maps_cluster_and_names_what_is_missing() {
        let s = snapshot();
        let all = router_engines_xml(&s, &[0, 1], None).unwrap();
        assert!(all.contains("<esp-map name=\"m1\" cluster=\"grid\">"));
        assert!(all.contains("<esp-engine name=\"esp9\""));
        assert!(all.contains(
            "<spare-esp-engine name=\"esp3\" host=\"127.0.0.1\" port=\"9002\" ha_port=\"9003\" state=\"reserve\"/>"
        ));
        let one = router_engines_xml(&s, &[0], Some("esp2")).unwrap();
        assert!(one.contains("esp2") && !one.contains("esp1") && !one.contains("esp3"));
        assert_eq!(
            router_engines_xml(&s, &[1], Some("esp1")).unwrap_err(),
            "esp-map 'm2' routes to no engine named 'esp1'"
        );
    }
}
