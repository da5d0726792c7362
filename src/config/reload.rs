//! What a reload (SIGHUP, `systemctl reload`) may change live: the plan
//! from the config as last applied to the one just read. Pure: the daemon
//! applies it through the same paths as the admin API's `routerEngines` (an
//! added engine gets its projects before any event, a removed engine's
//! queued events are routed again), then stops the sources removed or
//! changed, swaps the config in and starts the sources added or changed.
//!
//! Live: engines and spares; raw-sources added, removed or changed (their
//! properties, or the maps that read them: destinations, policies, opcodes);
//! esp-maps and maps added or removed; orchestration (for sources that have
//! not started yet). A source keeps its journal id by name (`layout`), so a
//! changed one resumes where it stopped. Refused, whole, with each element
//! and why (the running config stays; a restart applies it): the manager's
//! name, projects, clusters added, removed, renamed or with another
//! redundancy, an engine's address under the same name, and an esp-map that
//! would deploy a project to a cluster whose engines do not run it.

use super::{Cluster, Config, Destination, Engine, RawSource};

/// One live change, in the order to apply it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An engine new in cluster `cluster` (index in the config's clusters).
    AddEngine {
        cluster: usize,
        engine: Engine,
    },
    /// An engine gone from the config.
    RemoveEngine {
        cluster: usize,
        name: String,
    },
    AddSpare {
        cluster: usize,
        engine: Engine,
    },
    RemoveSpare {
        cluster: usize,
        name: String,
    },
}

impl Change {
    pub fn cluster(&self) -> usize {
        match self {
            Change::AddEngine { cluster, .. }
            | Change::RemoveEngine { cluster, .. }
            | Change::AddSpare { cluster, .. }
            | Change::RemoveSpare { cluster, .. } => *cluster,
        }
    }
}

/// What happens to a raw-source's task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceChange {
    /// New: started.
    Added,
    /// Gone from the config: stopped (its journal id and position kept).
    Removed,
    /// Its properties or its maps changed: stopped, and started again from
    /// where it stopped.
    Changed,
}

/// The changes to apply, or why the new config cannot be applied live.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub changes: Vec<Change>,
    /// Raw-sources by name (of the old config for `Removed`, else the new).
    pub sources: Vec<(String, SourceChange)>,
    /// One line per element that cannot change live; non-empty: refused whole.
    pub refused: Vec<String>,
}

const RESTART: &str =
    "restart to apply it (systemctl restart edgecm; the journal keeps every accepted event)";

/// The plan from `old` (the config as last applied) to `new`.
pub fn plan(old: &Config, new: &Config) -> Plan {
    let mut p = Plan::default();
    if old.manager != new.manager {
        p.refused.push(format!(
            "esp-cluster-manager name '{}' -> '{}': the name cannot change live; {RESTART}",
            old.manager, new.manager
        ));
    }
    named_diff(
        "project",
        &named(&old.projects, |x| &x.name),
        &named(&new.projects, |x| &x.name),
        "projects are loaded on engines when they join",
        &mut p.refused,
    );
    p.sources = sources(old, new);
    // Clusters: the same names in the same order and redundancy; their
    // engines and spares may change.
    let shape = |c: &Cluster| (c.name.clone(), c.redundancy);
    if old
        .clusters
        .iter()
        .map(shape)
        .ne(new.clusters.iter().map(shape))
    {
        p.refused.push(format!(
            "esp-cluster: clusters added, removed, renamed or with another redundancy ({} -> {}); {RESTART}",
            summary(&old.clusters),
            summary(&new.clusters)
        ));
        return p;
    }
    for (c, cluster) in new.clusters.iter().enumerate() {
        let (was, now) = (deployed(old, c), deployed(new, c));
        for project in now.iter().filter(|p| !was.contains(p)) {
            p.refused.push(format!(
                "esp-cluster '{}': an esp-map would deploy project '{project}' to it, which its engines do not run (projects are loaded on engines when they join); {RESTART}",
                cluster.name
            ));
        }
    }
    for (c, (o, n)) in old.clusters.iter().zip(&new.clusters).enumerate() {
        let engines = Members {
            element: "esp-engine",
            add: |cluster, engine| Change::AddEngine { cluster, engine },
            remove: |cluster, name| Change::RemoveEngine { cluster, name },
        };
        engines.diff(c, &n.name, &o.engines, &n.engines, &mut p);
        let spares = Members {
            element: "spare-esp-engine",
            add: |cluster, engine| Change::AddSpare { cluster, engine },
            remove: |cluster, name| Change::RemoveSpare { cluster, name },
        };
        spares.diff(c, &n.name, &o.spares, &n.spares, &mut p);
    }
    if !p.refused.is_empty() {
        p.changes.clear();
        p.sources.clear();
    }
    p
}

/// The projects (`project-name`) the esp-maps deploy to cluster `c`.
fn deployed(config: &Config, c: usize) -> Vec<&str> {
    let mut out: Vec<&str> = config
        .esp_maps
        .iter()
        .filter(|m| m.cluster == c)
        .map(|m| config.projects[m.model].project.name.as_str())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// One map that reads a source, as its task uses it: esp-map, cluster and
/// map names, destination, and whether it carries reference data.
type FeedSpec<'a> = (&'a str, &'a str, &'a str, &'a Destination, bool);

/// What the task of raw-source `i` of `config` is built from.
fn task_of(config: &Config, i: usize) -> (&RawSource, Vec<FeedSpec<'_>>) {
    let feeds = config
        .esp_maps
        .iter()
        .flat_map(|m| m.maps.iter().map(move |map| (m, map)))
        .filter(|(_, map)| map.source == i)
        .map(|(m, map)| {
            (
                m.name.as_str(),
                config.clusters[m.cluster].name.as_str(),
                map.name.as_str(),
                &map.destination,
                m.is_reference(map),
            )
        })
        .collect();
    (&config.raw_sources[i], feeds)
}

/// Raw-sources added, removed, or changed (properties or maps).
fn sources(old: &Config, new: &Config) -> Vec<(String, SourceChange)> {
    let mut out = Vec::new();
    for (i, s) in new.raw_sources.iter().enumerate() {
        match old.raw_sources.iter().position(|o| o.name == s.name) {
            None => out.push((s.name.clone(), SourceChange::Added)),
            Some(j) if task_of(old, j) != task_of(new, i) => {
                out.push((s.name.clone(), SourceChange::Changed))
            }
            Some(_) => {}
        }
    }
    for s in &old.raw_sources {
        if !new.raw_sources.iter().any(|n| n.name == s.name) {
            out.push((s.name.clone(), SourceChange::Removed));
        }
    }
    out
}

/// `old` as it is once `change` was applied (the base of the next plan).
pub fn apply(old: &mut Config, change: &Change) {
    let c = &mut old.clusters[change.cluster()];
    match change {
        Change::AddEngine { engine, .. } => c.engines.push(engine.clone()),
        Change::RemoveEngine { name, .. } => c.engines.retain(|e| &e.name != name),
        Change::AddSpare { engine, .. } => c.spares.push(engine.clone()),
        Change::RemoveSpare { name, .. } => c.spares.retain(|e| &e.name != name),
    }
}

/// Engines or spares of one cluster, and the changes that add or remove one.
struct Members {
    element: &'static str,
    add: fn(usize, Engine) -> Change,
    remove: fn(usize, String) -> Change,
}

impl Members {
    /// Adds before removes, so that a cluster is never left empty.
    fn diff(&self, c: usize, cluster: &str, old: &[Engine], new: &[Engine], p: &mut Plan) {
        for e in new {
            match old.iter().find(|x| x.name == e.name) {
                None => p.changes.push((self.add)(c, e.clone())),
                Some(x) if x != e => p.refused.push(format!(
                    "esp-cluster '{cluster}': {} '{}' changed its address; give the new one another name (it is added and the old one removed, its queued events routed again) or {RESTART}",
                    self.element, e.name
                )),
                Some(_) => {}
            }
        }
        for e in old.iter().filter(|e| !new.iter().any(|x| x.name == e.name)) {
            p.changes.push((self.remove)(c, e.name.clone()));
        }
    }
}

fn named<T>(items: &[T], name: impl Fn(&T) -> &String) -> Vec<(&str, &T)> {
    items.iter().map(|x| (name(x).as_str(), x)).collect()
}

fn summary(clusters: &[Cluster]) -> String {
    let parts: Vec<String> = clusters
        .iter()
        .map(|c| format!("'{}' redundancy {}", c.name, c.redundancy))
        .collect();
    parts.join(", ")
}

/// Refusals for elements of kind `what` added, removed, changed or moved
/// between `old` and `new` (name and element, in config order).
fn named_diff<T: PartialEq>(
    what: &str,
    old: &[(&str, &T)],
    new: &[(&str, &T)],
    why: &str,
    refused: &mut Vec<String>,
) {
    let before = refused.len();
    for (name, n) in new {
        match old.iter().find(|(o, _)| o == name) {
            None => refused.push(format!(
                "{what} '{name}' added: {what}s cannot be added live ({why}); {RESTART}"
            )),
            Some((_, o)) if o != n => refused.push(format!(
                "{what} '{name}' changed: {what}s cannot change live ({why}); {RESTART}"
            )),
            Some(_) => {}
        }
    }
    for (name, _) in old {
        if !new.iter().any(|(n, _)| n == name) {
            refused.push(format!(
                "{what} '{name}' removed: {what}s cannot be removed live ({why}); {RESTART}"
            ));
        }
    }
    let names =
        |v: &[(&str, &T)]| -> Vec<String> { v.iter().map(|(n, _)| n.to_string()).collect() };
    if refused.len() == before && names(old) != names(new) {
        refused.push(format!(
            "{what}s reordered: {what}s cannot move live ({why}); {RESTART}"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const E1: &str = "<esp-engine name='e1' host='127.0.0.1' port='41003' ha_port='41001'/>";
    const S1: &str = "<esp-engine name='s1' host='127.0.0.1' port='51003' ha_port='51001'/>";

    /// tests/data/valid.xml with `edit` applied to its text.
    fn config(edit: &dyn Fn(String) -> String) -> Config {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/valid.xml");
        let text = edit(std::fs::read_to_string(&path).unwrap());
        Config::parse(&path, &text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn same(t: String) -> String {
        t
    }

    #[test]
    fn engines_and_spares_change_live_added_before_removed() {
        let old = config(&same);
        let new = config(&|t: String| {
            t.replace(
                E1,
                "<esp-engine name='e3' host='127.0.0.1' port='41009' ha_port='41007'/>",
            )
            .replace(
                S1,
                &format!(
                    "{S1}<esp-engine name='s2' host='127.0.0.1' port='51006' ha_port='51004'/>"
                ),
            )
        });
        let p = plan(&old, &new);
        assert!(p.refused.is_empty(), "{:?}", p.refused);
        let kinds: Vec<String> = p
            .changes
            .iter()
            .map(|c| match c {
                Change::AddEngine { engine, .. } => format!("+{}", engine.name),
                Change::RemoveEngine { name, .. } => format!("-{name}"),
                Change::AddSpare { engine, .. } => format!("+spare {}", engine.name),
                Change::RemoveSpare { name, .. } => format!("-spare {name}"),
            })
            .collect();
        assert_eq!(kinds, ["+e3", "-e1", "+spare s2"]);
        // Applying the plan to the old config leaves nothing to change.
        let mut applied = old.clone();
        for c in &p.changes {
            apply(&mut applied, c);
        }
        assert!(plan(&applied, &new).changes.is_empty());
        // And a spare taken out again.
        let p = plan(&new, &old);
        assert!(p.changes.contains(&Change::RemoveSpare {
            cluster: 0,
            name: "s2".into()
        }));
    }

    #[test]
    fn the_same_config_is_no_change() {
        assert_eq!(plan(&config(&same), &config(&same)), Plan::default());
    }

    #[test]
    fn what_cannot_change_live_is_named_and_refuses_the_whole_reload() {
        let old = config(&same);
        let new = config(&|t: String| {
            t.replace("project name='model'", "project name='model2'")
                .replace("model-ref='model'", "model-ref='model2'")
                .replace(
                    E1,
                    &format!(
                        "{E1}<esp-engine name='e3' host='127.0.0.1' port='41009' ha_port='41007'/>"
                    ),
                )
        });
        let p = plan(&old, &new);
        assert!(
            p.changes.is_empty() && p.sources.is_empty(),
            "refused whole: {p:?}"
        );
        let text = p.refused.join("\n");
        assert!(text.contains("project 'model2' added"), "{text}");
        assert!(text.contains("project 'model' removed"), "{text}");
        assert!(text.contains("systemctl restart edgecm"), "{text}");
        // An engine that keeps its name and changes its address.
        let moved = config(&|t: String| t.replace("port='41003'", "port='41013'"));
        let p = plan(&old, &moved);
        assert!(
            p.refused
                .iter()
                .any(|r| r.contains("esp-engine 'e1' changed its address")),
            "{:?}",
            p.refused
        );
        // A cluster's redundancy.
        let mut more = old.clone();
        more.clusters[0].redundancy = 2;
        let p = plan(&old, &more);
        assert!(
            p.refused.iter().any(|r| r.contains("redundancy 2")),
            "{p:?}"
        );
        // An esp-map moved to a cluster whose engines do not run its project.
        let mut two = old.clone();
        let mut c2 = two.clusters[0].clone();
        c2.name = "c2".into();
        two.clusters.push(c2);
        let mut moved = two.clone();
        moved.esp_maps[0].cluster = 1;
        let p = plan(&two, &moved);
        assert!(
            p.refused
                .iter()
                .any(|r| r.contains("esp-cluster 'c2': an esp-map would deploy project 'p1'")),
            "{p:?}"
        );
    }

    #[test]
    fn sources_and_maps_added_removed_and_changed_are_live() {
        let old = config(&same);
        let more_map = "<map name='moreMap'><from source='more'/><multicast-destination name='d9'><publish-target><project-func>p1</project-func><contquery-func>cq</contquery-func><window-func>venues</window-func></publish-target></multicast-destination></map>";
        let more_source = "<raw-source name='more' class='fs'><properties><property name='type'>pub</property><property name='fstype'>csv</property><property name='fsname'>more.csv</property></properties></raw-source>";
        let new = config(&|t: String| {
            t.replace("<raw-sources>", &format!("<raw-sources>{more_source}"))
                .replace("<map name='tradesMap'>", &format!("{more_map}<map name='tradesMap'>"))
                .replace(
                    "<property name='fsname'>trades.csv</property>",
                    "<property name='fsname'>trades.csv</property><property name='blocksize'>7</property>",
                )
        });
        let p = plan(&old, &new);
        assert!(p.refused.is_empty(), "{:?}", p.refused);
        assert_eq!(
            p.sources,
            [
                ("more".to_string(), SourceChange::Added),
                ("trades".to_string(), SourceChange::Changed)
            ]
        );
        // And back: 'more' removed, trades changed again, venues untouched.
        let p = plan(&new, &old);
        assert_eq!(
            p.sources,
            [
                ("trades".to_string(), SourceChange::Changed),
                ("more".to_string(), SourceChange::Removed)
            ]
        );
        // A map's destination changed: its source restarts.
        let upsert = config(&|t: String| t.replace("opcode='upsert'", "opcode='insert'"));
        assert_eq!(
            plan(&old, &upsert).sources,
            [("trades".to_string(), SourceChange::Changed)]
        );
    }

    #[test]
    fn sources_moved_in_the_config_are_no_change() {
        let old = config(&same);
        let mut new = old.clone();
        new.raw_sources.swap(0, 1);
        for m in new.esp_maps.iter_mut().flat_map(|m| m.maps.iter_mut()) {
            m.source = 1 - m.source;
        }
        for g in new
            .esp_maps
            .iter_mut()
            .flat_map(|m| m.orchestration.groups.iter_mut())
        {
            for e in &mut g.entries {
                e.source = 1 - e.source;
            }
        }
        assert_eq!(plan(&old, &new), Plan::default());
    }
}
