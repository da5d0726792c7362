//! The journal's global engine ids: each cluster owns a range of them
//! (`offset..offset + capacity`, kept in `{state-dir}/layout` so that a
//! cluster's queued events stay its own across restarts), and slot `s` of
//! cluster `c` is engine `offset(c) + s`. This is the one place that does
//! that arithmetic.
//!
//! Invariants: ranges do not overlap and end at most at
//! [`ENGINES_MAX`](crate::limits::ENGINES_MAX) (`journal::layout::Layout::ranges`
//! makes them so); a slot given to [`EngineIds::id`] is below its cluster's
//! capacity.

use super::{EngineId, EngineSet};

/// Where each cluster's slots are among the journal's engine ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineIds {
    /// (offset, capacity) per cluster, in config order.
    ranges: Vec<(u8, u8)>,
}

impl EngineIds {
    /// From the layout's ranges (`Layout::ranges`): offsets and capacities
    /// per cluster, in config order.
    pub fn new(offsets: &[u8], capacities: &[u8]) -> EngineIds {
        debug_assert_eq!(offsets.len(), capacities.len());
        EngineIds {
            ranges: offsets
                .iter()
                .copied()
                .zip(capacities.iter().copied())
                .collect(),
        }
    }

    /// How many clusters.
    pub fn clusters(&self) -> usize {
        self.ranges.len()
    }

    /// The global id of slot `slot` of cluster `c`.
    pub fn id(&self, c: usize, slot: EngineId) -> EngineId {
        let (offset, capacity) = self.ranges[c];
        debug_assert!(
            slot < capacity,
            "slot {slot} of cluster {c} past its {capacity}"
        );
        offset + slot
    }

    /// How many slots cluster `c` has.
    pub fn capacity(&self, c: usize) -> u8 {
        self.ranges[c].1
    }

    /// The cluster whose range holds `id` and the slot it is there (None:
    /// no cluster's range holds it).
    pub fn slot_of(&self, id: EngineId) -> Option<(usize, EngineId)> {
        self.ranges
            .iter()
            .position(|&(o, n)| (o..o.saturating_add(n)).contains(&id))
            .map(|c| (c, id - self.ranges[c].0))
    }

    /// The cluster whose range holds `id` (the first cluster when none does).
    pub fn cluster_of(&self, id: EngineId) -> usize {
        self.slot_of(id).map_or(0, |(c, _)| c)
    }

    /// Cluster `c`'s slot set `set` as global ids.
    pub fn global(&self, c: usize, set: EngineSet) -> EngineSet {
        EngineSet::from_bits(set.bits() << self.ranges[c].0)
    }

    /// Every global id of cluster `c`'s range.
    pub fn range_set(&self, c: usize) -> EngineSet {
        let (offset, capacity) = self.ranges[c];
        let mut s = EngineSet::EMPTY;
        for id in offset..offset + capacity {
            s.insert(id);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two() -> EngineIds {
        // Cluster 0: ids 0..6; cluster 1: ids 6..13 (as a first start lays them out).
        EngineIds::new(&[0, 6], &[6, 7])
    }

    #[test]
    fn a_slot_is_its_clusters_offset_plus_the_slot() {
        let ids = two();
        assert_eq!(
            (ids.id(0, 0), ids.id(0, 5), ids.id(1, 0), ids.id(1, 6)),
            (0, 5, 6, 12)
        );
        assert_eq!(
            (ids.capacity(0), ids.capacity(1), ids.clusters()),
            (6, 7, 2)
        );
    }

    #[test]
    fn an_id_maps_back_to_its_cluster_and_slot() {
        let ids = two();
        for c in 0..ids.clusters() {
            for s in 0..ids.capacity(c) {
                assert_eq!(ids.slot_of(ids.id(c, s)), Some((c, s)));
                assert_eq!(ids.cluster_of(ids.id(c, s)), c);
            }
        }
        assert_eq!(ids.slot_of(13), None);
    }

    #[test]
    fn ranges_need_not_follow_config_order() {
        // A cluster added first in the config gets ids after the others'.
        let ids = EngineIds::new(&[19, 0, 6], &[5, 6, 13]);
        assert_eq!(ids.slot_of(20), Some((0, 1)));
        assert_eq!(ids.slot_of(7), Some((2, 1)));
        assert_eq!(ids.cluster_of(3), 1);
    }

    #[test]
    fn slot_sets_shift_into_the_clusters_range() {
        let ids = two();
        let mut local = EngineSet::EMPTY;
        local.insert(0);
        local.insert(2);
        let g = ids.global(1, local);
        assert!(g.contains(6) && g.contains(8) && !g.contains(0));
        assert_eq!(ids.range_set(0).bits(), 0b11_1111);
        assert_eq!(ids.range_set(1).bits(), 0b111_1111 << 6);
    }
}
