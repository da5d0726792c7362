//! `{state-dir}/layout`: the journal's ids for the config's raw-sources and
//! map destinations, kept by name, so that a config edited between two
//! starts (a raw-source or map inserted, removed, moved) never mixes them up.
//!
//! Journal records name their source and their destination by a number.
//! Numbered by their place in the config, a raw-source inserted before
//! another would take over its resume position (and read the other's file
//! from there, found by inode as if rotated), and queued events would go to
//! another map's window. Here each raw-source keeps its id by its name, each
//! destination by its esp-map and map name and its target window's shape
//! (project, contquery, window, fields, opcode, transactional): a map whose
//! window changed is a new destination, since queued events have the old
//! shape. New ones get ids after the highest ever given; ids are never
//! reused, and the entries of removed ones stay, so that queued events of a
//! removed map still reach their window, and a raw-source put back resumes.
//!
//! A state dir without this file (a first start, or one written before it
//! existed) numbers by config order, as records were numbered then.
//!
//! Engines too: the journal names an engine by a global slot, `offset +
//! slot` of its cluster's range. Ranges were laid out from the engine counts
//! of the clusters before it, so an engine added to the first cluster (by a
//! reload, then a restart) moved the second cluster's range by one, and its
//! queued events were re-routed into the first cluster. Each cluster keeps
//! its range here by name (at first: its config's engines plus room for
//! more, as before); the last range grows if its cluster needs more. And
//! each engine keeps its slot in its cluster by name: an engine inserted
//! before the others in the config would otherwise take the next one's
//! slot, and with it that engine's queue (keys hashed to another engine).
//! A new engine never gets a slot the journal still holds a queue for.
//!
//! One line per entry, tab-separated:
//! `source ID NAME`,
//! `dest ID ESPMAP/MAP PROJECT CONTQUERY WINDOW OPCODE|- 0|1 FIELD[:key],...` and
//! `cluster NAME OFFSET CAPACITY` and `engine CLUSTER SLOT NAME`.

use crate::config::Destination;
use crate::event::Opcode;
use crate::limits::ENGINES_MAX;

pub const FILE_NAME: &str = "layout";

/// A destination's target window, as its queued events need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSpec {
    pub project: String,
    pub contquery: String,
    pub window: String,
    /// Schema field names in order, and whether each is a key.
    pub fields: Vec<(String, bool)>,
    pub opcode: Option<Opcode>,
    /// The source's `transactional`.
    pub transactional: bool,
}

impl WindowSpec {
    pub fn of(d: &Destination, transactional: bool) -> WindowSpec {
        WindowSpec {
            project: d.target.project.clone(),
            contquery: d.target.contquery.clone(),
            window: d.target.window.clone(),
            fields: d
                .schema
                .fields
                .iter()
                .map(|f| (f.name.clone(), f.key))
                .collect(),
            opcode: d.opcode,
            transactional,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestEntry {
    pub id: u16,
    /// `esp-map/map`.
    pub name: String,
    pub window: WindowSpec,
}

/// A cluster's global engine slots: `offset..offset + capacity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRange {
    pub name: String,
    pub offset: u8,
    pub capacity: u8,
}

/// An engine's slot in its cluster's range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSlot {
    pub cluster: String,
    pub slot: u8,
    pub name: String,
}

/// Every id given in this state dir.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    pub sources: Vec<(u16, String)>,
    pub dests: Vec<DestEntry>,
    pub clusters: Vec<ClusterRange>,
    pub engines: Vec<EngineSlot>,
}

/// The ids for one config, and whether the layout gained entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    /// Journal id of each raw-source, in config order.
    pub sources: Vec<u16>,
    /// Journal id of each map destination, in config order (maps of every esp-map).
    pub dests: Vec<u16>,
    pub grew: bool,
}

/// Ids stop below the record format's reserved `REROUTED` source.
const ID_MAX: u16 = super::REROUTED - 1;

impl Layout {
    /// Reads the file's text; an error names the line and what is accepted.
    pub fn parse(text: &str) -> Result<Layout, String> {
        let mut l = Layout::default();
        for (n, line) in text.lines().enumerate() {
            let at = |m: &str| format!("line {}: {m}", n + 1);
            let f: Vec<&str> = line.split('\t').collect();
            let id = |s: &str| {
                s.parse::<u16>()
                    .ok()
                    .filter(|&i| i <= ID_MAX)
                    .ok_or_else(|| at(&format!("id {s:?} is not a number from 0 to {ID_MAX}")))
            };
            match f.as_slice() {
                ["source", i, name] => l.sources.push((id(i)?, name.to_string())),
                ["engine", cluster, slot, name] => l.engines.push(EngineSlot {
                    cluster: cluster.to_string(),
                    slot: slot
                        .parse::<u8>()
                        .ok()
                        .filter(|&n| usize::from(n) < ENGINES_MAX)
                        .ok_or_else(|| {
                            at(&format!(
                                "slot {slot:?} is not a number from 0 to {}",
                                ENGINES_MAX - 1
                            ))
                        })?,
                    name: name.to_string(),
                }),
                ["cluster", name, offset, capacity] => {
                    let slot = |s: &str| {
                        s.parse::<u8>()
                            .ok()
                            .filter(|&n| usize::from(n) <= ENGINES_MAX)
                            .ok_or_else(|| at(&format!("{s:?} is not a number from 0 to {ENGINES_MAX}")))
                    };
                    l.clusters.push(ClusterRange {
                        name: name.to_string(),
                        offset: slot(offset)?,
                        capacity: slot(capacity)?,
                    });
                }
                ["dest", i, name, project, cq, window, opcode, tr, fields] => {
                    let opcode = match *opcode {
                        "-" => None,
                        w => Some(Opcode::from_word(w).ok_or_else(|| {
                            at(&format!("opcode {w:?}; accepted: -, insert, update, upsert, delete, safedelete"))
                        })?),
                    };
                    let transactional = match *tr {
                        "0" => false,
                        "1" => true,
                        t => return Err(at(&format!("transactional {t:?}; accepted: 0, 1"))),
                    };
                    let fields = fields
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(|s| match s.strip_suffix(":key") {
                            Some(n) => (n.to_string(), true),
                            None => (s.to_string(), false),
                        })
                        .collect();
                    l.dests.push(DestEntry {
                        id: id(i)?,
                        name: name.to_string(),
                        window: WindowSpec {
                            project: project.to_string(),
                            contquery: cq.to_string(),
                            window: window.to_string(),
                            fields,
                            opcode,
                            transactional,
                        },
                    });
                }
                _ => {
                    return Err(at(
                        "accepted: source<TAB>ID<TAB>NAME, dest<TAB>ID<TAB>ESPMAP/MAP<TAB>PROJECT<TAB>CONTQUERY<TAB>WINDOW<TAB>OPCODE|-<TAB>0|1<TAB>FIELDS, cluster<TAB>NAME<TAB>OFFSET<TAB>CAPACITY, or engine<TAB>CLUSTER<TAB>SLOT<TAB>NAME",
                    ))
                }
            }
        }
        Ok(l)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for (id, name) in &self.sources {
            out.push_str(&format!("source\t{id}\t{name}\n"));
        }
        for d in &self.dests {
            let w = &d.window;
            let fields: Vec<String> = w
                .fields
                .iter()
                .map(|(n, k)| if *k { format!("{n}:key") } else { n.clone() })
                .collect();
            out.push_str(&format!(
                "dest\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                d.id,
                d.name,
                w.project,
                w.contquery,
                w.window,
                w.opcode.map_or("-", Opcode::word),
                u8::from(w.transactional),
                fields.join(",")
            ));
        }
        for c in &self.clusters {
            out.push_str(&format!(
                "cluster\t{}\t{}\t{}\n",
                c.name, c.offset, c.capacity
            ));
        }
        for e in &self.engines {
            out.push_str(&format!("engine\t{}\t{}\t{}\n", e.cluster, e.slot, e.name));
        }
        out
    }

    /// The slots of `cluster`'s config engines `names` (in order): each
    /// keeps the one it had; a new one gets the lowest slot below
    /// `capacity` that no engine of the cluster has and that is not
    /// `busy` (the journal holds a queue for it, or an engine added over
    /// the admin API has it). Entries of engines no longer in `names` are
    /// dropped, unless `keep` says they are still members (added over the
    /// admin API). Returns the slots and whether the layout changed.
    pub fn engine_slots(
        &mut self,
        cluster: &str,
        names: &[&str],
        capacity: u8,
        busy: &dyn Fn(u8) -> bool,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<u8>, bool), String> {
        let before = self.engines.len();
        self.engines
            .retain(|e| e.cluster != cluster || names.contains(&e.name.as_str()) || keep(&e.name));
        let mut changed = self.engines.len() != before;
        let mut slots = Vec::new();
        for &name in names {
            let stored = self
                .engines
                .iter()
                .find(|e| e.cluster == cluster && e.name == name)
                .map(|e| e.slot)
                .filter(|&s| s < capacity);
            let slot = match stored {
                Some(s) => s,
                None => {
                    let taken = |s: u8| {
                        busy(s)
                            || self
                                .engines
                                .iter()
                                .any(|e| e.cluster == cluster && e.slot == s)
                    };
                    let s = (0..capacity).find(|&s| !taken(s)).ok_or_else(|| {
                        format!(
                            "esp-cluster '{cluster}': no free slot for engine '{name}' among its {capacity}"
                        )
                    })?;
                    self.engines
                        .retain(|e| !(e.cluster == cluster && e.name == name));
                    self.engines.push(EngineSlot {
                        cluster: cluster.to_string(),
                        slot: s,
                        name: name.to_string(),
                    });
                    changed = true;
                    s
                }
            };
            slots.push(slot);
        }
        Ok((slots, changed))
    }

    /// Records that engine `name` of `cluster` has `slot` (added live);
    /// false if it had it already.
    pub fn set_engine(&mut self, cluster: &str, slot: u8, name: &str) -> bool {
        let e = EngineSlot {
            cluster: cluster.to_string(),
            slot,
            name: name.to_string(),
        };
        if self.engines.contains(&e) {
            return false;
        }
        self.engines
            .retain(|x| !(x.cluster == cluster && (x.name == name || x.slot == slot)));
        self.engines.push(e);
        true
    }

    /// Forgets engine `name` of `cluster` (removed); false if not listed.
    pub fn remove_engine(&mut self, cluster: &str, name: &str) -> bool {
        let before = self.engines.len();
        self.engines
            .retain(|e| !(e.cluster == cluster && e.name == name));
        self.engines.len() != before
    }

    /// The slot ranges of `clusters` (name and config engine count, config
    /// order): the ones this layout has; a new one after the highest end,
    /// with room for `room` more engines than its config has; the last
    /// range grows when its cluster needs more. Returns (offsets,
    /// capacities, grew); fails when a cluster cannot get the slots its
    /// config's engines need.
    pub fn ranges(
        &mut self,
        clusters: &[(&str, usize)],
        room: usize,
    ) -> Result<(Vec<u8>, Vec<u8>, bool), String> {
        let mut grew = false;
        let (mut offsets, mut capacities) = (Vec::new(), Vec::new());
        for &(name, engines) in clusters {
            let end = |l: &Layout| {
                l.clusters
                    .iter()
                    .map(|c| usize::from(c.offset) + usize::from(c.capacity))
                    .max()
                    .unwrap_or(0)
            };
            let top = end(self);
            let r = match self.clusters.iter_mut().find(|c| c.name == name) {
                Some(r) if usize::from(r.capacity) >= engines => r.clone(),
                Some(r) if usize::from(r.offset) + usize::from(r.capacity) == top
                    && usize::from(r.offset) + engines <= ENGINES_MAX =>
                {
                    r.capacity = (engines + room).min(ENGINES_MAX - usize::from(r.offset)) as u8;
                    grew = true;
                    r.clone()
                }
                Some(r) => {
                    return Err(format!(
                        "esp-cluster '{name}' has {engines} engines in the config and {} slots in this state dir (they are kept so that other clusters' queued events stay theirs); remove engines, or start with a new state dir once the queue is drained",
                        r.capacity
                    ))
                }
                None => {
                    let capacity = (engines + room).min(ENGINES_MAX.saturating_sub(top));
                    if capacity < engines.max(1) {
                        return Err(format!(
                            "esp-cluster '{name}' needs {engines} engine slots and only {} of {ENGINES_MAX} are left",
                            ENGINES_MAX.saturating_sub(top)
                        ));
                    }
                    let r = ClusterRange {
                        name: name.to_string(),
                        offset: top as u8,
                        capacity: capacity as u8,
                    };
                    self.clusters.push(r.clone());
                    grew = true;
                    r
                }
            };
            offsets.push(r.offset);
            capacities.push(r.capacity);
        }
        Ok((offsets, capacities, grew))
    }

    /// The ids of `sources` (names, config order) and `dests` (`esp-map/map`
    /// and window, config order): the ones this layout has, new ones after
    /// the highest. Fails when ids run out.
    pub fn assign(
        &mut self,
        sources: &[String],
        dests: &[(String, WindowSpec)],
    ) -> Result<Ids, String> {
        let mut grew = false;
        let mut source_ids = Vec::new();
        for name in sources {
            let id = match self.sources.iter().find(|(_, n)| n == name) {
                Some(&(id, _)) => id,
                None => {
                    let id = next_id(self.sources.iter().map(|s| s.0))
                        .ok_or("more raw-sources than journal ids")?;
                    self.sources.push((id, name.clone()));
                    grew = true;
                    id
                }
            };
            source_ids.push(id);
        }
        let mut dest_ids = Vec::new();
        for (name, window) in dests {
            let id = match self
                .dests
                .iter()
                .find(|d| &d.name == name && &d.window == window)
            {
                Some(d) => d.id,
                None => {
                    let id = next_id(self.dests.iter().map(|d| d.id))
                        .ok_or("more map destinations than journal ids")?;
                    self.dests.push(DestEntry {
                        id,
                        name: name.clone(),
                        window: window.clone(),
                    });
                    grew = true;
                    id
                }
            };
            dest_ids.push(id);
        }
        Ok(Ids {
            sources: source_ids,
            dests: dest_ids,
            grew,
        })
    }

    /// The name of source id `id`.
    pub fn source_name(&self, id: u16) -> Option<&str> {
        self.sources
            .iter()
            .find(|s| s.0 == id)
            .map(|s| s.1.as_str())
    }
}

/// One past the highest of `ids` (0 for none); None when none is left.
fn next_id(ids: impl Iterator<Item = u16>) -> Option<u16> {
    match ids.max() {
        None => Some(0),
        Some(m) if m < ID_MAX => Some(m + 1),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(w: &str) -> WindowSpec {
        WindowSpec {
            project: "p".into(),
            contquery: "cq".into(),
            window: w.into(),
            fields: vec![("id".into(), true), ("price".into(), false)],
            opcode: Some(Opcode::Upsert),
            transactional: false,
        }
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_first_start_numbers_by_config_order() {
        let mut l = Layout::default();
        let ids = l
            .assign(
                &names(&["a", "b"]),
                &[("m/x".into(), window("x")), ("m/y".into(), window("y"))],
            )
            .unwrap();
        assert_eq!(
            (ids.sources, ids.dests, ids.grew),
            (vec![0, 1], vec![0, 1], true)
        );
    }

    #[test]
    fn ids_stay_with_names_when_the_config_moves_things() {
        let mut l = Layout::default();
        l.assign(
            &names(&["a", "b"]),
            &[("m/x".into(), window("x")), ("m/y".into(), window("y"))],
        )
        .unwrap();
        // A source inserted first, b removed; a map inserted first.
        let ids = l
            .assign(
                &names(&["new", "a"]),
                &[
                    ("m/z".into(), window("z")),
                    ("m/x".into(), window("x")),
                    ("m/y".into(), window("y")),
                ],
            )
            .unwrap();
        assert_eq!(ids.sources, [2, 0]);
        assert_eq!(ids.dests, [2, 0, 1]);
        // b comes back under its old id.
        let ids = l.assign(&names(&["b", "a", "new"]), &[]).unwrap();
        assert_eq!((ids.sources, ids.grew), (vec![1, 0, 2], false));
        // A map whose window changed shape is a new destination.
        let mut more = window("x");
        more.fields.push(("qty".into(), false));
        let ids = l.assign(&[], &[("m/x".into(), more)]).unwrap();
        assert_eq!(ids.dests, [3]);
    }

    #[test]
    fn cluster_ranges_stay_by_name_and_the_last_one_grows() {
        let mut l = Layout::default();
        let (o, c, grew) = l.ranges(&[("a", 2), ("b", 3)], 4).unwrap();
        assert_eq!((o, c, grew), (vec![0, 6], vec![6, 7], true));
        // 'a' gains an engine: its range stays, and so does b's.
        let (o, c, grew) = l.ranges(&[("a", 3), ("b", 3)], 4).unwrap();
        assert_eq!((o, c, grew), (vec![0, 6], vec![6, 7], false));
        // 'b' (the last) needs more: it grows in place.
        let (o, c, _) = l.ranges(&[("a", 3), ("b", 9)], 4).unwrap();
        assert_eq!((o, c), (vec![0, 6], vec![6, 13]));
        // 'a' needs more than its range, with b after it: refused, said why.
        let e = l.ranges(&[("a", 7), ("b", 3)], 4).unwrap_err();
        assert!(
            e.contains("esp-cluster 'a' has 7 engines in the config and 6 slots"),
            "{e}"
        );
        // A new cluster after the highest end; the order in the config does not matter.
        let (o, _, _) = l.ranges(&[("c", 1), ("a", 1), ("b", 1)], 4).unwrap();
        assert_eq!(o, vec![19, 0, 6]);
        assert_eq!(Layout::parse(&l.render()).unwrap(), l);
    }

    #[test]
    fn engines_keep_their_slots_by_name() {
        let mut l = Layout::default();
        let free = |_: u8| false;
        let none = |_: &str| false;
        let (s, changed) = l.engine_slots("c", &["a", "b"], 6, &free, &none).unwrap();
        assert_eq!((s, changed), (vec![0, 1], true));
        // 'x' inserted first: a and b keep theirs, x gets the next free one.
        let (s, _) = l
            .engine_slots("c", &["x", "a", "b"], 6, &free, &none)
            .unwrap();
        assert_eq!(s, [2, 0, 1]);
        // a removed: its slot is not given while the journal holds its queue.
        let busy = |s: u8| s == 0;
        let (s, _) = l
            .engine_slots("c", &["x", "b", "y"], 6, &busy, &none)
            .unwrap();
        assert_eq!(s, [2, 1, 3]);
        // Unchanged: nothing to write.
        let (_, changed) = l
            .engine_slots("c", &["x", "b", "y"], 6, &free, &none)
            .unwrap();
        assert!(!changed);
        // Live changes.
        assert!(l.set_engine("c", 4, "z"));
        assert!(!l.set_engine("c", 4, "z"));
        assert!(l.remove_engine("c", "z") && !l.remove_engine("c", "z"));
        assert_eq!(Layout::parse(&l.render()).unwrap(), l);
    }

    #[test]
    fn the_file_round_trips_and_a_bad_line_is_named() {
        let mut l = Layout::default();
        let mut t = window("x");
        t.transactional = true;
        t.opcode = None;
        l.assign(
            &names(&["a b"]),
            &[("m/x".into(), t), ("m/y".into(), window("y"))],
        )
        .unwrap();
        assert_eq!(Layout::parse(&l.render()).unwrap(), l);
        let e = Layout::parse("source\t0\ta\nsource\tx\tb\n").unwrap_err();
        assert!(e.starts_with("line 2: id \"x\""), "{e}");
        let e = Layout::parse("dest\t0\tm/x\n").unwrap_err();
        assert!(e.contains("line 1: accepted: source"), "{e}");
    }
}
