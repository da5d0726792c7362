//! The journal ids of sources, destinations and engine slots, kept in
//! `{state-dir}/layout` (`journal::layout`) across restarts and reloads.

use super::*;
use crate::route::ids::EngineIds;

pub(super) use crate::limits::SLOTS_SPARE;

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
    let ids = match layout.ranges(&clusters, SLOTS_SPARE) {
        Ok((offsets, capacities, _)) => EngineIds::new(&offsets, &capacities),
        // A start would refuse this config: engines stay slots.
        Err(_) => EngineIds::default(),
    };
    // Engines in the slots the layout keeps (also those added live), else
    // in config order.
    let mut engines = std::collections::BTreeMap::new();
    for (c, cl) in config
        .clusters
        .iter()
        .enumerate()
        .filter(|(c, _)| *c < ids.clusters())
    {
        let kept: Vec<_> = layout
            .engines
            .iter()
            .filter(|e| e.cluster == cl.name)
            .collect();
        if kept.is_empty() {
            for (k, e) in cl.engines.iter().enumerate() {
                engines.insert(ids.id(c, k as u8), e.name.clone());
            }
        }
        for e in kept {
            engines.insert(ids.id(c, e.slot), e.name.clone());
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
pub(super) fn open_layout(dir: &std::path::Path, config: &Config) -> Result<LayoutNow, String> {
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
    let (offsets, capacities, ranges_grew) = layout
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
        engine_ids: EngineIds::new(&offsets, &capacities),
    })
}

/// The windows of the layout's destination ids from `from` on, in id
/// order; None when an id is missing (the file was edited by hand).
pub(super) fn layout_windows(
    layout: &crate::journal::layout::Layout,
    from: usize,
) -> Option<Vec<Rc<Window>>> {
    (from..layout.dests.len())
        .map(|id| {
            layout
                .dests
                .iter()
                .find(|d| usize::from(d.id) == id)
                .map(|d| Rc::new(crate::engine::window(&d.window)))
        })
        .collect()
}

/// What [`open_layout`] gives the start.
pub(super) struct LayoutNow {
    pub(super) layout: crate::journal::layout::Layout,
    pub(super) ids: crate::journal::layout::Ids,
    /// Each cluster's first global engine slot and how many it has.
    pub(super) engine_ids: EngineIds,
}

pub(super) fn write_layout(
    dir: &std::path::Path,
    layout: &crate::journal::layout::Layout,
) -> Result<(), String> {
    use crate::journal::layout::FILE_NAME;
    crate::journal::storage::replace_file(dir, FILE_NAME, layout.render().as_bytes())
        .map_err(|e| format!("cannot write {}/{FILE_NAME}: {e}", dir.display()))
}

/// The journal ids of `config`'s raw-sources and destinations from
/// `layout` (new ones added; the caller writes the file when it grew).
pub(super) fn layout_ids(
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
