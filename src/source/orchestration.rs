//! Orchestration (the seed's `<esp-map><orchestration>`): which raw-source
//! may start, given how far the others got. Pure: the daemon hands it each
//! source's [`Progress`] and starts a source once nothing is [`unmet`].
//!
//! Rule: a source in group G may start when every entry of every group with
//! an edge into G has reached its state (`started`: the source opened its
//! input; `finished`: it reached the end). A source in no group starts at
//! once. One esp-map's orchestration never holds back another map's sources.

use crate::config::{AdapterEntry, AdapterState, Orchestration};

/// How far a raw-source got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub started: bool,
    pub finished: bool,
}

/// An entry source `i` still waits for.
#[derive(Debug, Clone, PartialEq)]
pub struct Unmet<'c> {
    /// The esp-map's place (in the orchestrations given).
    pub map: usize,
    /// Source `i`'s group and the group it waits for.
    pub group: usize,
    pub waits_for: usize,
    pub entry: &'c AdapterEntry,
}

/// The entries source `i` waits for, over the esp-maps' orchestrations (in
/// config order); `progress` has one entry per raw-source.
pub fn unmet<'c>(
    orchestrations: impl IntoIterator<Item = &'c Orchestration>,
    progress: &[Progress],
    i: usize,
) -> Vec<Unmet<'c>> {
    let mut out = Vec::new();
    for (map, o) in orchestrations.into_iter().enumerate() {
        let Some(g) = o
            .groups
            .iter()
            .position(|g| g.entries.iter().any(|e| e.source == i))
        else {
            continue;
        };
        for &(from, _) in o.edges.iter().filter(|e| e.1 == g) {
            for entry in &o.groups[from].entries {
                let p = progress.get(entry.source).copied().unwrap_or_default();
                let reached = match entry.state {
                    AdapterState::Started => p.started,
                    AdapterState::Finished => p.finished,
                };
                if !reached {
                    out.push(Unmet {
                        map,
                        group: g,
                        waits_for: from,
                        entry,
                    });
                }
            }
        }
    }
    out
}

/// Whether source `i` may start.
pub fn may_start<'c>(
    orchestrations: impl IntoIterator<Item = &'c Orchestration>,
    progress: &[Progress],
    i: usize,
) -> bool {
    unmet(orchestrations, progress, i).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AdapterGroup;

    fn entry(source: usize, state: AdapterState) -> AdapterEntry {
        AdapterEntry { source, state }
    }

    /// Group "ref" (source 0, must finish) feeds group "live" (sources 1
    /// and 2); source 3 is in no group.
    fn reference_first() -> Orchestration {
        Orchestration {
            groups: vec![
                AdapterGroup {
                    name: "ref".into(),
                    entries: vec![entry(0, AdapterState::Finished)],
                },
                AdapterGroup {
                    name: "live".into(),
                    entries: vec![
                        entry(1, AdapterState::Started),
                        entry(2, AdapterState::Started),
                    ],
                },
            ],
            edges: vec![(0, 1)],
            waves: vec![vec![0], vec![1]],
        }
    }

    const NONE: Progress = Progress {
        started: false,
        finished: false,
    };
    const STARTED: Progress = Progress {
        started: true,
        finished: false,
    };
    const FINISHED: Progress = Progress {
        started: true,
        finished: true,
    };

    #[test]
    fn a_group_waits_until_the_group_before_it_reached_its_state() {
        let o = [reference_first()];
        let p = [NONE, NONE, NONE, NONE];
        assert!(may_start(&o, &p, 0), "the first wave starts at once");
        assert!(!may_start(&o, &p, 1));
        let p = [STARTED, NONE, NONE, NONE];
        let u = unmet(&o, &p, 2);
        assert_eq!(u.len(), 1, "started is not finished: {u:?}");
        assert_eq!(
            (u[0].map, u[0].group, u[0].waits_for, u[0].entry.source),
            (0, 1, 0, 0)
        );
        let p = [FINISHED, NONE, NONE, NONE];
        assert!(may_start(&o, &p, 1) && may_start(&o, &p, 2));
    }

    #[test]
    fn a_source_in_no_group_starts_at_once() {
        assert!(may_start(&[reference_first()], &[NONE; 4], 3));
        assert!(may_start(std::iter::empty(), &[NONE; 4], 1));
    }

    #[test]
    fn a_started_entry_is_met_by_a_source_that_opened_its_input() {
        let mut o = reference_first();
        o.groups[0].entries[0].state = AdapterState::Started;
        assert!(!may_start([&o], &[NONE; 4], 1));
        assert!(may_start([&o], &[STARTED, NONE, NONE, NONE], 1));
    }

    #[test]
    fn every_maps_orchestration_must_allow_it() {
        // Map 1 puts source 1 after source 3 finished; map 0 after source 0.
        let a = reference_first();
        let b = Orchestration {
            groups: vec![
                AdapterGroup {
                    name: "first".into(),
                    entries: vec![entry(3, AdapterState::Finished)],
                },
                AdapterGroup {
                    name: "then".into(),
                    entries: vec![entry(1, AdapterState::Started)],
                },
            ],
            edges: vec![(0, 1)],
            waves: vec![vec![0], vec![1]],
        };
        let p = [FINISHED, NONE, NONE, STARTED];
        let u = unmet([&a, &b], &p, 1);
        assert_eq!(u.len(), 1);
        assert_eq!((u[0].map, u[0].entry.source), (1, 3));
        assert!(may_start([&a, &b], &[FINISHED, NONE, NONE, FINISHED], 1));
    }
}
