//! Leader and standby managers (ARCHITECTURE §5; the seed's "Cluster
//! Manager Failover"). This module is the protocol, pure: a [`Node`] is fed
//! messages ([`Node::step`]) and time ([`Node::tick`]) and answers with
//! messages to send. It never reads a clock, a socket or a file; the daemon
//! carries its messages over HTTP (`POST {base}/cluster`, [`wire`]) and
//! tests carry them over a simulated network.
//!
//! Words: a *cluster* is ESP's engine cluster (`<esp-cluster>`); the
//! managers that fail over for one another are a *failover group*. The
//! message path `POST {base}/cluster` and the saved file `cluster` keep the
//! seed's word: they are the protocol and the state dir's format.
//!
//! # Protocol
//! - **Roles.** A manager started without `-standby` leads. A standby
//!   registers with the address given to `-standby` (and, after a restart,
//!   with every manager it knew) every tick until a leader's update arrives.
//!   A manager that is asked but does not lead answers with the leader it
//!   knows, and the registrant goes there.
//! - **Managers.** The leader keeps the list: itself first, then the others
//!   by id; ids are handed out in registration order and never reused, so
//!   the list's order is the registration order.
//! - **Updates.** Every tick, and at most [`COALESCE_MS`] after an
//!   acknowledgement, the leader sends every other manager an update: epoch,
//!   counter, the list, and for each engine and raw-source the count of the
//!   source's events below which everything routed to that engine is
//!   acknowledged. Updates are ordered by (epoch, counter); an older or equal
//!   one is ignored, so duplicates and reordering are harmless, and the
//!   acknowledged counts only ever grow (merged by maximum).
//! - **Election.** A standby that heard no update for `retries` ticks
//!   probes the managers ahead of it in the list (the leader aside). If none
//!   answers within a tick it leads; if one does, it waits `retries` ticks
//!   for that one's first update and probes again if none comes. Managers
//!   detect a dead leader at about the same time, so the first live manager
//!   in the list wins and the others follow its update.
//! - **Epochs are claimed, not counted.** Manager `id` only ever leads epochs
//!   `e` with `e % MANAGERS_MAX == id`, taking the smallest above every
//!   epoch it saw. Two managers can therefore never lead the same epoch.
//!   A manager never accepts an update of an epoch below its own; it answers
//!   with its epoch, and a leader that learns of a higher epoch (from that
//!   answer or from an update) becomes a standby of that epoch's leader.
//!
//! # Partitions
//! A standby cut off from the leader but not from the engines leads after
//! `retries` ticks while the old leader goes on: two leaders, each
//! publishing from its own journal. The consequence is duplicates, never
//! loss: each manager reads every source into its own journal and only
//! drops an event once an engine acknowledged it (to itself, or to a leader
//! that said so in an update). When the partition heals, the old leader
//! receives the new leader's update (or an answer naming a higher epoch)
//! and steps down. Without a majority rule (the seed's managers come in
//! pairs and triples, where a majority would stop a lone survivor from
//! leading) this is the price of always having a leader.

mod msg;
pub mod wire;

pub use msg::{Body, Msg, Out, Saved, Update};

use std::collections::{BTreeMap, BTreeSet};

pub use crate::limits::MANAGERS_MAX;
/// Acknowledgements are reported at most this often.
pub const COALESCE_MS: u64 = 50;

/// `(engine, raw-source)` → the source's event count below which every
/// event routed to that engine is acknowledged.
pub type Acked = BTreeMap<(u8, u16), u64>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manager {
    pub id: u8,
    pub addr: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    #[default]
    Leader,
    Standby,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Standby => "standby",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub tick_ms: u64,
    pub retries: u32,
}

impl Timing {
    fn silence_ms(&self) -> u64 {
        self.tick_ms * u64::from(self.retries.max(1))
    }
}

#[derive(Debug)]
struct Election {
    ahead: Vec<String>,
    alive: BTreeSet<String>,
    decide_at: u64,
    /// Someone ahead answered: its update is awaited until then.
    wait_until: Option<u64>,
}

#[derive(Debug)]
pub struct Node {
    me: String,
    config: u64,
    timing: Timing,
    id: Option<u8>,
    role: Role,
    epoch: u64,
    counter: u64,
    managers: Vec<Manager>,
    leader: Option<String>,
    acked: Acked,
    /// Leader: acknowledgements not yet reported.
    dirty: bool,
    last_sent: u64,
    next_tick: u64,
    /// Standby: when the current leader's last accepted update came.
    heard: u64,
    /// Standby: a leader's update arrived (it has us in its list).
    registered: bool,
    /// Standby: where to register while not registered.
    join: Vec<String>,
    election: Option<Election>,
}

/// The smallest epoch above `seen` that manager `id` may lead.
pub fn claim_epoch(seen: u64, id: u8) -> u64 {
    let m = u64::from(MANAGERS_MAX);
    let base = seen - seen % m + u64::from(id);
    if base > seen {
        base
    } else {
        base + m
    }
}

impl Node {
    fn new(me: &str, config: u64, timing: Timing, now: u64) -> Node {
        Node {
            me: me.to_string(),
            config,
            timing,
            id: None,
            role: Role::Standby,
            epoch: 0,
            counter: 0,
            managers: Vec::new(),
            leader: None,
            acked: Acked::new(),
            dirty: false,
            last_sent: 0,
            next_tick: now,
            heard: now,
            registered: false,
            join: Vec::new(),
            election: None,
        }
    }

    /// The config's fingerprint changed (a reload): standbys that register
    /// from now on must have the new one.
    pub fn set_config(&mut self, config: u64) {
        self.config = config;
    }

    /// The first manager of a new failover group: it leads epoch 0 as id 0.
    pub fn leader(me: &str, config: u64, timing: Timing, now: u64) -> Node {
        let mut n = Node::new(me, config, timing, now);
        n.id = Some(0);
        n.role = Role::Leader;
        n.leader = Some(me.to_string());
        n.managers = vec![Manager {
            id: 0,
            addr: me.to_string(),
        }];
        n
    }

    /// A standby that registers with `leader`.
    pub fn standby(me: &str, leader: &str, config: u64, timing: Timing, now: u64) -> Node {
        let mut n = Node::new(me, config, timing, now);
        n.join = vec![leader.to_string()];
        n
    }

    /// A manager restarting with what it saved: it does not lead before it
    /// asked every manager it knew (`retries` ticks), so an old leader that
    /// comes back joins the new one. `standby` adds the `-standby` address.
    pub fn restart(
        me: &str,
        saved: Saved,
        standby: Option<&str>,
        config: u64,
        timing: Timing,
        now: u64,
    ) -> Node {
        let mut n = Node::new(me, config, timing, now);
        n.id = saved.id;
        n.epoch = saved.epoch;
        n.join = saved
            .managers
            .iter()
            .map(|m| m.addr.clone())
            .filter(|a| a != me)
            .chain(standby.map(str::to_string))
            .collect();
        n.join.sort();
        n.join.dedup();
        n.managers = saved.managers;
        if n.join.is_empty() {
            // Alone in its list: nobody to ask.
            if n.id.is_none() {
                n.id = Some(0);
                n.managers = vec![Manager {
                    id: 0,
                    addr: me.to_string(),
                }];
            }
            n.become_leader(now, &mut Vec::new());
        }
        n
    }

    pub fn role(&self) -> Role {
        self.role
    }
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
    pub fn id(&self) -> Option<u8> {
        self.id
    }
    pub fn me(&self) -> &str {
        &self.me
    }
    pub fn leader_addr(&self) -> Option<&str> {
        self.leader.as_deref()
    }
    pub fn managers(&self) -> &[Manager] {
        &self.managers
    }
    pub fn acked(&self) -> &Acked {
        &self.acked
    }
    pub fn saved(&self) -> Saved {
        Saved {
            id: self.id,
            epoch: self.epoch,
            managers: self.managers.clone(),
        }
    }

    /// When [`Node::tick`] has something to do next.
    pub fn next_wake(&self) -> u64 {
        let mut t = self.next_tick;
        if self.role == Role::Leader && self.dirty {
            t = t.min(self.last_sent + COALESCE_MS);
        }
        if let Some(e) = &self.election {
            t = t.min(e.wait_until.unwrap_or(e.decide_at));
        } else if self.role == Role::Standby && self.listed() {
            // The leader's silence is noticed when it happens, not at the next tick.
            t = t.min(self.heard + self.timing.silence_ms());
        }
        t
    }

    /// In a list with someone else: an election has candidates.
    fn listed(&self) -> bool {
        self.id.is_some() && self.managers.len() > 1
    }

    /// The leader's engines acknowledged up to `through` of a source.
    pub fn progress(&mut self, engine: u8, source: u16, through: u64) {
        let v = self.acked.entry((engine, source)).or_insert(0);
        if through > *v {
            *v = through;
            self.dirty = true;
        }
    }

    fn send(&self, to: &str, body: Body, out: &mut Vec<Out>) {
        out.push(Out::Send {
            to: to.to_string(),
            msg: Msg {
                from: self.me.clone(),
                body,
            },
        });
    }

    /// Tells `to` the epoch and leader this manager knows.
    fn not_leader(&self, to: &str, out: &mut Vec<Out>) {
        let body = Body::NotLeader {
            epoch: self.epoch,
            leader: self.leader.clone(),
        };
        self.send(to, body, out);
    }

    fn set_role(&mut self, to: Role, out: &mut Vec<Out>) {
        let from = self.role;
        self.role = to;
        out.push(Out::Role {
            from,
            to,
            epoch: self.epoch,
        });
    }

    fn broadcast(&mut self, now: u64, out: &mut Vec<Out>) {
        self.counter += 1;
        let u = Update {
            epoch: self.epoch,
            counter: self.counter,
            managers: self.managers.clone(),
            acked: self.acked.clone(),
        };
        for m in self.managers.iter().filter(|m| m.addr != self.me) {
            self.send(&m.addr, Body::Update(u.clone()), out);
        }
        self.dirty = false;
        self.last_sent = now;
        self.next_tick = now + self.timing.tick_ms;
    }

    fn become_leader(&mut self, now: u64, out: &mut Vec<Out>) {
        let id = self.id.expect("only a listed manager is elected");
        self.epoch = claim_epoch(self.epoch, id);
        self.counter = 0;
        self.election = None;
        self.leader = Some(self.me.clone());
        self.managers.sort_by_key(|m| (m.addr != self.me, m.id));
        self.set_role(Role::Leader, out);
        self.broadcast(now, out);
    }

    /// Leaves the lead (or an election) for the leader of a higher epoch.
    fn follow(&mut self, epoch: u64, leader: Option<String>, out: &mut Vec<Out>) {
        self.epoch = epoch;
        self.election = None;
        self.registered = false;
        if let Some(l) = &leader {
            self.join = vec![l.clone()];
        }
        self.leader = leader;
        if self.role == Role::Leader {
            self.set_role(Role::Standby, out);
        }
    }

    fn accept(&mut self, from: &str, u: Update, now: u64, out: &mut Vec<Out>) {
        let newer = (u.epoch, u.counter) > (self.epoch, self.counter);
        if !newer {
            return; // a duplicate or an older one: idempotent
        }
        self.epoch = u.epoch;
        self.counter = u.counter;
        if self.role == Role::Leader {
            self.set_role(Role::Standby, out);
        }
        self.leader = Some(from.to_string());
        self.heard = now;
        self.election = None;
        let mut grew = false;
        for (k, v) in u.acked {
            let e = self.acked.entry(k).or_insert(0);
            if v > *e {
                *e = v;
                grew = true;
            }
        }
        if grew {
            out.push(Out::Acked);
        }
        self.managers = u.managers;
        match self.managers.iter().find(|m| m.addr == self.me) {
            Some(m) => {
                self.id = Some(m.id);
                self.registered = true;
                self.join.clear();
            }
            None => {
                // It leads without us (we were not registered with it yet).
                self.registered = false;
                self.join = vec![from.to_string()];
                self.send(
                    from,
                    Body::Register {
                        config: self.config,
                    },
                    out,
                );
            }
        }
    }

    /// Handles one message.
    pub fn step(&mut self, now: u64, msg: Msg) -> Vec<Out> {
        let mut out = Vec::new();
        let Msg { from, body } = msg;
        if from == self.me {
            return out;
        }
        match body {
            Body::Update(u) => {
                if u.epoch < self.epoch {
                    self.not_leader(&from, &mut out);
                } else if u.epoch == self.epoch && self.role == Role::Leader {
                    // Cannot happen with claimed epochs unless two managers
                    // share an id; the lower address keeps the lead.
                    if from < self.me {
                        self.accept(&from, u, now, &mut out);
                    }
                } else {
                    self.accept(&from, u, now, &mut out);
                }
            }
            Body::Register { config } => {
                if self.role != Role::Leader {
                    self.not_leader(&from, &mut out);
                } else if config != self.config {
                    self.send(
                        &from,
                        Body::Refused {
                            why: format!(
                                "its configuration (fingerprint {config:016x}) differs from the leader's ({:016x}); every manager must use the same config",
                                self.config
                            ),
                        },
                        &mut out,
                    );
                } else if self.managers.iter().any(|m| m.addr == from) {
                    self.broadcast(now, &mut out);
                } else {
                    let next = self.managers.iter().map(|m| m.id + 1).max().unwrap_or(0);
                    if next >= MANAGERS_MAX {
                        self.send(
                            &from,
                            Body::Refused {
                                why: format!(
                                    "a failover group has at most {MANAGERS_MAX} managers over its life"
                                ),
                            },
                            &mut out,
                        );
                    } else {
                        self.managers.push(Manager {
                            id: next,
                            addr: from.clone(),
                        });
                        self.broadcast(now, &mut out);
                    }
                }
            }
            Body::NotLeader { epoch, leader } => {
                if epoch > self.epoch
                    || (self.role == Role::Standby && !self.registered && epoch == self.epoch)
                {
                    let leader = leader.filter(|l| *l != self.me);
                    if self.role == Role::Leader || leader.is_some() {
                        self.follow(epoch, leader, &mut out);
                    }
                }
            }
            Body::Refused { why } => out.push(Out::Refused { by: from, why }),
            Body::Probe => self.send(&from, Body::Alive, &mut out),
            Body::Alive => {
                if let Some(e) = &mut self.election {
                    if e.ahead.contains(&from) {
                        e.alive.insert(from);
                    }
                }
            }
        }
        out
    }

    /// Lets time pass: updates, registrations, failure detection, elections.
    pub fn tick(&mut self, now: u64) -> Vec<Out> {
        let mut out = Vec::new();
        match self.role {
            Role::Leader => {
                if now >= self.next_tick || (self.dirty && now >= self.last_sent + COALESCE_MS) {
                    self.broadcast(now, &mut out);
                }
            }
            Role::Standby => {
                if self.election.is_some() {
                    self.elect(now, &mut out);
                } else if self.listed() && now >= self.heard + self.timing.silence_ms() {
                    self.next_tick = now + self.timing.tick_ms;
                    self.start_election(now, &mut out);
                } else if now >= self.next_tick {
                    self.next_tick = now + self.timing.tick_ms;
                    if !self.registered {
                        for to in self.join.clone() {
                            self.send(
                                &to,
                                Body::Register {
                                    config: self.config,
                                },
                                &mut out,
                            );
                        }
                    }
                }
            }
        }
        out
    }

    fn start_election(&mut self, now: u64, out: &mut Vec<Out>) {
        let old = self.leader.clone();
        let ahead: Vec<String> = self
            .managers
            .iter()
            .map(|m| m.addr.clone())
            .filter(|a| Some(a) != old.as_ref() || *a == self.me)
            .take_while(|a| *a != self.me)
            .collect();
        if ahead.is_empty() {
            self.become_leader(now, out);
            return;
        }
        for a in &ahead {
            self.send(a, Body::Probe, out);
        }
        self.election = Some(Election {
            ahead,
            alive: BTreeSet::new(),
            decide_at: now + self.timing.tick_ms,
            wait_until: None,
        });
    }

    fn elect(&mut self, now: u64, out: &mut Vec<Out>) {
        let e = self.election.as_mut().expect("electing");
        match e.wait_until {
            Some(w) if now >= w => self.start_election(now, out),
            Some(_) => {}
            None if now >= e.decide_at => {
                if e.alive.is_empty() {
                    self.become_leader(now, out);
                } else {
                    e.wait_until = Some(now + self.timing.silence_ms());
                }
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_claimed_by_different_ids_never_meet() {
        let mut seen = BTreeSet::new();
        for id in 0..MANAGERS_MAX {
            let mut e = 0;
            for _ in 0..20 {
                e = claim_epoch(e, id);
                assert_eq!(e % u64::from(MANAGERS_MAX), u64::from(id));
                assert!(seen.insert(e), "epoch {e} claimed twice");
            }
        }
        assert_eq!(claim_epoch(0, 1), 1);
        assert_eq!(claim_epoch(1, 1), 17);
        assert_eq!(claim_epoch(17, 0), 32);
    }

    fn timing() -> Timing {
        Timing {
            tick_ms: 100,
            retries: 2,
        }
    }

    fn sends(out: &[Out]) -> Vec<(String, Msg)> {
        out.iter()
            .filter_map(|o| match o {
                Out::Send { to, msg } => Some((to.clone(), msg.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_standby_registers_is_listed_and_follows_updates() {
        let mut l = Node::leader("a", 7, timing(), 0);
        let mut s = Node::standby("b", "a", 7, timing(), 0);
        let reg = sends(&s.tick(0));
        assert_eq!(reg.len(), 1);
        let out = l.step(1, reg[0].1.clone());
        let ups = sends(&out);
        assert_eq!(ups[0].0, "b");
        l.progress(0, 0, 40);
        s.step(2, ups[0].1.clone());
        assert_eq!(s.id(), Some(1));
        assert_eq!(s.leader_addr(), Some("a"));
        let out = l.tick(1 + COALESCE_MS);
        let out = s.step(60, sends(&out)[0].1.clone());
        assert_eq!(out, vec![Out::Acked]);
        assert_eq!(s.acked()[&(0, 0)], 40);
    }

    #[test]
    fn a_silent_leader_is_replaced_retries_ticks_after_its_last_update() {
        let mut l = Node::leader("a", 7, timing(), 0);
        let mut s = Node::standby("b", "a", 7, timing(), 0);
        let reg = sends(&s.tick(0));
        let ups = sends(&l.step(1, reg[0].1.clone()));
        s.step(30, ups[0].1.clone());
        // Heard at 30: silent from then on for 2 ticks of 100 ms.
        assert_eq!(s.next_wake(), 100, "the next tick comes first");
        assert!(
            sends(&s.tick(100)).is_empty(),
            "registered: nothing to send"
        );
        assert_eq!(s.next_wake(), 200);
        assert!(s.tick(200).is_empty());
        assert_eq!(s.next_wake(), 230, "not the tick at 300");
        assert!(s.tick(229).is_empty());
        let out = s.tick(230);
        assert!(out.contains(&Out::Role {
            from: Role::Standby,
            to: Role::Leader,
            epoch: 1
        }));
        assert_eq!(s.leader_addr(), Some("b"));
        // The old leader hears of epoch 1 and follows.
        let up = sends(&out).into_iter().find(|(to, _)| to == "a").unwrap();
        let out = l.step(231, up.1);
        assert!(out.contains(&Out::Role {
            from: Role::Leader,
            to: Role::Standby,
            epoch: 1
        }));
        assert_eq!(l.leader_addr(), Some("b"));
    }

    #[test]
    fn a_different_config_is_refused_with_both_fingerprints() {
        let mut l = Node::leader("a", 7, timing(), 0);
        let mut s = Node::standby("b", "a", 8, timing(), 0);
        let reg = sends(&s.tick(0));
        let out = sends(&l.step(1, reg[0].1.clone()));
        let out = s.step(2, out[0].1.clone());
        match &out[0] {
            Out::Refused { by, why } => {
                assert_eq!(by, "a");
                assert!(why.contains("0000000000000008") && why.contains("0000000000000007"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(l.managers().len(), 1);
        // After a reload to the standby's config, it is taken.
        l.set_config(8);
        let mut s = Node::standby("b", "a", 8, timing(), 3);
        let reg = sends(&s.tick(3));
        let out = sends(&l.step(4, reg[0].1.clone()));
        assert!(!out.is_empty());
        assert_eq!(l.managers().len(), 2, "{out:?}");
    }
}
