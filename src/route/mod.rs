//! Routing: which engines receive each event (seed "Routing Policies" and
//! "Cluster Redundancy"). A pure core: no IO, no clock (STYLE.md 1-2). The
//! daemon owns one [`Membership`] per cluster and one [`Router`] per map
//! destination, and calls [`Router::route`] for every event block in source
//! order.
//!
//! # Slots, names and spares
//! Routing addresses *slots*, not physical engines. A slot has a stable
//! [`EngineId`] (the journal's destination sets and cursors use it) and a
//! logical name (the engine's name in the config). When an engine fails, the
//! first unused spare, in config order, takes over its slot: its id *and its
//! name*, so every key that hashed to the failed engine now goes to the spare
//! and the journal's backlog for that slot goes there too. When spares run
//! out the slot stays failed: hash and multicast events still go to it and
//! wait in the journal; round-robin skips it. Adding or removing an engine
//! (the admin API) never consumes a spare.
//!
//! # Policies
//! - multicast: every event to every slot.
//! - round-robin: a whole block to one slot, the next non-failed slot after
//!   the previous block's, in config order. The counter advances per block in
//!   source order, so two managers fed the same input and membership agree.
//! - hash: `event_hash(key fields) mod N` over the slots in config order
//!   (engines added at run time come after). Adding or removing an engine
//!   changes N and moves most keys: that is the policy's nature.
//! - durable hash: a ring of [`VNODES`] points per slot (placed by its name
//!   with [`hash::ring_point`]); an event goes to the first point clockwise
//!   from the high 32 bits of its hash. Adding or removing an engine moves
//!   only the keys of that engine.
//!
//! With redundancy n (hash policies only) an event also goes to the n-1 next
//! distinct slots (next in config order, or next clockwise on the ring).
//!
//! # Never
//! Never consult a randomly keyed hasher, the clock, or anything but the
//! config, the membership and the event (contract 6).

pub mod hash;
pub mod ids;

use std::fmt;

use crate::config::{Engine, Policy};
use crate::limits::ENGINES_MAX;

/// A slot's stable id: bit position in an [`EngineSet`], key of its journal
/// cursor. Ids are reused only after a slot is removed.
pub type EngineId = u8;

/// Virtual points per slot on the durable-hash ring. An engine's share of the
/// ring varies by about 1/(N·√VNODES) around 1/N: 2048 points keep 100k keys
/// within ±5 % of even for 3 and 10 engines (1024 did not: 9 % off at 10), so
/// that removing an engine moves close to 1/N of the keys. Cost: 5 bytes a
/// point (a u32 point and a u8 owner), 10 KiB per engine: 30 KiB for 3
/// engines, 640 KiB for 64.
pub const VNODES: u32 = 2048;

/// A set of slots, as a bitmask over [`EngineId`]s.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct EngineSet(u64);

impl EngineSet {
    pub const EMPTY: EngineSet = EngineSet(0);

    pub fn insert(&mut self, id: EngineId) {
        self.0 |= 1 << id;
    }

    pub fn contains(self, id: EngineId) -> bool {
        self.0 & (1 << id) != 0
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn bits(self) -> u64 {
        self.0
    }

    pub fn from_bits(bits: u64) -> EngineSet {
        EngineSet(bits)
    }

    pub fn union(self, o: EngineSet) -> EngineSet {
        EngineSet(self.0 | o.0)
    }

    /// The engines of `self` not in `o`.
    pub fn minus(self, o: EngineSet) -> EngineSet {
        EngineSet(self.0 & !o.0)
    }

    pub fn iter(self) -> impl Iterator<Item = EngineId> {
        (0..64u8).filter(move |&i| self.contains(i))
    }
}

impl fmt::Debug for EngineSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// One routing slot of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub id: EngineId,
    /// The logical name: the config name of the engine first in this slot.
    pub name: String,
    /// The engine serving the slot now (a spare after a swap).
    pub engine: Engine,
    pub failed: bool,
}

/// What [`Membership::fail`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failover {
    /// The spare `spare` now serves the slot, under the slot's name.
    Spare { slot: EngineId, spare: String },
    /// No spare left: the slot is failed and its events wait.
    NoSpare { slot: EngineId },
}

/// Why a membership change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipError {
    UnknownEngine(String),
    DuplicateEngine(String),
    /// [`ENGINES_MAX`] slots are in use.
    Full,
    /// The last engine of a cluster cannot be removed.
    LastEngine(String),
}

impl fmt::Display for MembershipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MembershipError::UnknownEngine(n) => write!(f, "no engine named '{n}' in this cluster"),
            MembershipError::DuplicateEngine(n) => {
                write!(f, "an engine named '{n}' is already in this cluster")
            }
            MembershipError::Full => write!(
                f,
                "the cluster already has {ENGINES_MAX} engines, the most edgecm routes to"
            ),
            MembershipError::LastEngine(n) => write!(
                f,
                "'{n}' is the cluster's last engine; add another before removing it"
            ),
        }
    }
}

/// The engines of one cluster as routing sees them, and the durable ring.
#[derive(Debug, Clone)]
pub struct Membership {
    /// In config order, then in order of addition.
    slots: Vec<Slot>,
    /// Spares not yet used, in config order.
    spares: Vec<Engine>,
    /// Ring points, sorted; ties broken by owner id, so placement is total.
    ring_points: Vec<u32>,
    /// `ring_owners[i]` owns `ring_points[i]` (two arrays: 5 bytes a point).
    ring_owners: Vec<EngineId>,
}

impl Membership {
    /// The cluster's engines as slots 0..n, with its spares in reserve.
    pub fn new(engines: &[Engine], spares: &[Engine]) -> Result<Membership, MembershipError> {
        let mut m = Membership {
            slots: Vec::new(),
            spares: spares.to_vec(),
            ring_points: Vec::new(),
            ring_owners: Vec::new(),
        };
        for e in engines {
            m.add(e.clone())?;
        }
        Ok(m)
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    pub fn spares(&self) -> &[Engine] {
        &self.spares
    }

    pub fn slot(&self, id: EngineId) -> Option<&Slot> {
        self.slots.iter().find(|s| s.id == id)
    }

    /// The slot named `name`: its logical name or its current engine's name.
    pub fn by_name(&self, name: &str) -> Option<&Slot> {
        self.index_of(name).ok().map(|i| &self.slots[i])
    }

    fn index_of(&self, name: &str) -> Result<usize, MembershipError> {
        self.slots
            .iter()
            .position(|s| s.name == name || s.engine.name == name)
            .ok_or_else(|| MembershipError::UnknownEngine(name.to_string()))
    }

    /// The ring as `(point, owner)` pairs.
    fn ring_pairs(&self) -> impl Iterator<Item = (u32, EngineId)> + '_ {
        self.ring_points
            .iter()
            .copied()
            .zip(self.ring_owners.iter().copied())
    }

    /// Every slot, failed or not.
    pub fn all(&self) -> EngineSet {
        let mut s = EngineSet::EMPTY;
        for slot in &self.slots {
            s.insert(slot.id);
        }
        s
    }

    /// The id [`Membership::add`] gives the next engine.
    pub fn free_id(&self) -> Option<EngineId> {
        (0..ENGINES_MAX as u8).find(|&i| self.slot(i).is_none())
    }

    /// Adds an engine as a new slot (admin API; never takes a spare).
    pub fn add(&mut self, engine: Engine) -> Result<EngineId, MembershipError> {
        let id = self.free_id().ok_or(MembershipError::Full)?;
        self.add_at(id, engine)
    }

    /// Adds an engine as slot `id` (free), e.g. the slot it had before a
    /// restart, so that its queued events are still its own.
    pub fn add_at(&mut self, id: EngineId, engine: Engine) -> Result<EngineId, MembershipError> {
        if self.by_name(&engine.name).is_some() || self.spares.iter().any(|s| s.name == engine.name)
        {
            return Err(MembershipError::DuplicateEngine(engine.name));
        }
        if self.slot(id).is_some() || usize::from(id) >= ENGINES_MAX {
            return Err(MembershipError::Full);
        }
        let mut ring: Vec<(u32, EngineId)> = self.ring_pairs().collect();
        ring.extend((0..VNODES).map(|v| (hash::ring_point(&engine.name, v), id)));
        self.set_ring(ring);
        self.slots.push(Slot {
            id,
            name: engine.name.clone(),
            engine,
            failed: false,
        });
        Ok(id)
    }

    /// Removes an engine's slot (admin API). Its journal backlog is the
    /// daemon's to re-route.
    pub fn remove(&mut self, name: &str) -> Result<Slot, MembershipError> {
        let i = self.index_of(name)?;
        if self.slots.len() == 1 {
            return Err(MembershipError::LastEngine(name.to_string()));
        }
        let slot = self.slots.remove(i);
        let ring = self.ring_pairs().filter(|&(_, id)| id != slot.id).collect();
        self.set_ring(ring);
        Ok(slot)
    }

    /// Puts a spare in reserve (a reload): it takes over the next failed slot.
    pub fn add_spare(&mut self, engine: Engine) -> Result<(), MembershipError> {
        let taken = self
            .slots
            .iter()
            .any(|s| s.name == engine.name || s.engine.name == engine.name)
            || self.spares.iter().any(|s| s.name == engine.name);
        if taken {
            return Err(MembershipError::DuplicateEngine(engine.name));
        }
        self.spares.push(engine);
        Ok(())
    }

    /// Takes an unused spare out of reserve (admin API).
    pub fn remove_spare(&mut self, name: &str) -> Option<Engine> {
        let i = self.spares.iter().position(|s| s.name == name)?;
        Some(self.spares.remove(i))
    }

    /// Marks the engine serving a slot failed; the first unused spare takes
    /// its place and name. Failing an already failed slot is a no-op.
    pub fn fail(&mut self, name: &str) -> Result<Failover, MembershipError> {
        let i = self.index_of(name)?;
        let slot = &mut self.slots[i];
        if slot.failed {
            return Ok(Failover::NoSpare { slot: slot.id });
        }
        if self.spares.is_empty() {
            slot.failed = true;
            return Ok(Failover::NoSpare { slot: slot.id });
        }
        let spare = self.spares.remove(0);
        let spare_name = spare.name.clone();
        slot.engine = spare;
        Ok(Failover::Spare {
            slot: slot.id,
            spare: spare_name,
        })
    }

    /// A failed slot's engine answers again.
    pub fn recover(&mut self, name: &str) -> Result<EngineId, MembershipError> {
        let i = self.index_of(name)?;
        let slot = &mut self.slots[i];
        slot.failed = false;
        Ok(slot.id)
    }

    fn set_ring(&mut self, mut ring: Vec<(u32, EngineId)>) {
        ring.sort_unstable();
        self.ring_points = ring.iter().map(|p| p.0).collect();
        self.ring_owners = ring.iter().map(|p| p.1).collect();
    }

    /// The slot owning ring position `h`, and the next distinct ones clockwise.
    fn ring_walk(&self, h: u32, n: usize, out: &mut EngineSet) {
        let start = self.ring_points.partition_point(|&p| p < h);
        let len = self.ring_points.len();
        let want = n.min(self.slots.len());
        for k in 0..len {
            let id = self.ring_owners[(start + k) % len];
            out.insert(id);
            if out.len() == want {
                return;
            }
        }
    }
}

pub use crate::event::Keyed;

/// A routed block: groups of event indices, each with its destination set,
/// in order of first appearance; inside a group, events keep block order.
/// Reused across blocks: [`Routes::clear`] keeps the allocations.
#[derive(Debug, Default)]
pub struct Routes {
    groups: Vec<(EngineSet, Vec<u32>)>,
    used: usize,
}

impl Routes {
    pub fn clear(&mut self) {
        for g in &mut self.groups[..self.used] {
            g.1.clear();
        }
        self.used = 0;
    }

    fn push(&mut self, set: EngineSet, event: u32) {
        if let Some(g) = self.groups[..self.used].iter_mut().find(|g| g.0 == set) {
            g.1.push(event);
            return;
        }
        if self.used == self.groups.len() {
            self.groups.push((set, Vec::new()));
        }
        let g = &mut self.groups[self.used];
        g.0 = set;
        g.1.push(event);
        self.used += 1;
    }

    pub fn groups(&self) -> impl Iterator<Item = (EngineSet, &[u32])> {
        self.groups[..self.used]
            .iter()
            .map(|(s, v)| (*s, v.as_slice()))
    }

    /// The destination set of event `i` (tests and diagnostics).
    pub fn set_of(&self, i: u32) -> Option<EngineSet> {
        self.groups()
            .find(|(_, ev)| ev.contains(&i))
            .map(|(s, _)| s)
    }
}

/// The routing state of one map destination.
#[derive(Debug, Clone)]
pub struct Router {
    policy: Policy,
    redundancy: usize,
    /// Round-robin: config-order position of the next slot to try.
    next: usize,
}

impl Router {
    /// `redundancy` is the cluster's (the config checked it is 1 for
    /// multicast and round-robin).
    pub fn new(policy: Policy, redundancy: u32) -> Router {
        Router {
            policy,
            redundancy: redundancy.max(1) as usize,
            next: 0,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The round-robin position, for a standby to mirror.
    pub fn position(&self) -> usize {
        self.next
    }

    pub fn set_position(&mut self, next: usize) {
        self.next = next;
    }

    /// Routes one block of events (in source order) into `out` (cleared first).
    pub fn route<E: Keyed + ?Sized>(&mut self, m: &Membership, block: &[&E], out: &mut Routes) {
        out.clear();
        if block.is_empty() || m.slots.is_empty() {
            return;
        }
        match &self.policy {
            Policy::Multicast => {
                let all = m.all();
                for i in 0..block.len() {
                    out.push(all, i as u32);
                }
            }
            Policy::RoundRobin => {
                let set = self.next_round_robin(m);
                for i in 0..block.len() {
                    out.push(set, i as u32);
                }
            }
            Policy::Hash { fields, durable } => {
                for (i, e) in block.iter().enumerate() {
                    let h = hash::event_hash(fields.iter().map(|&f| e.field_text(f)));
                    let set = if *durable {
                        let mut s = EngineSet::EMPTY;
                        m.ring_walk((h >> 32) as u32, self.redundancy, &mut s);
                        s
                    } else {
                        hash_set(m, h, self.redundancy)
                    };
                    out.push(set, i as u32);
                }
            }
        }
    }

    /// The slot for the next round-robin block: the first non-failed slot at
    /// or after the counter; every slot failed: the one at the counter (the
    /// block waits for it).
    fn next_round_robin(&mut self, m: &Membership) -> EngineSet {
        let n = m.slots.len();
        let start = self.next % n;
        let pick = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| !m.slots[i].failed)
            .unwrap_or(start);
        self.next = (pick + 1) % n;
        let mut s = EngineSet::EMPTY;
        s.insert(m.slots[pick].id);
        s
    }
}

/// Plain hash: slot `h mod N`, then the next `redundancy - 1` in config order.
fn hash_set(m: &Membership, h: u64, redundancy: usize) -> EngineSet {
    let n = m.slots.len();
    let first = (h % n as u64) as usize;
    let mut s = EngineSet::EMPTY;
    for k in 0..redundancy.min(n) {
        s.insert(m.slots[(first + k) % n].id);
    }
    s
}

/// The slot index (config order) plain hash gives a key; for tests and
/// `-output-routers`.
pub fn hash_index(key_fields: &[&[u8]], engines: usize) -> usize {
    (hash::event_hash(key_fields.iter().copied()) % engines as u64) as usize
}
