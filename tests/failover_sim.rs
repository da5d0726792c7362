//! The failover protocol (`edgecm::failover`) over a simulated network:
//! seeded, lossy, reordering, partitionable; no sockets, no sleeps. Each
//! manager publishes a model source to two model engines when it leads, and
//! trims by the leader's updates when it stands by. Every case checks that
//! no two managers ever lead the same epoch, that no event is lost, and that
//! once the network heals exactly one leader remains and everyone follows it.

use edgecm::failover::{Msg, Node, Out, Role, Saved, Timing};
use std::collections::BTreeMap;

const ENGINES: u64 = 2;
const TIMING: Timing = Timing {
    tick_ms: 100,
    retries: 2,
};
/// The model source: one event per ms.
const EVENTS: u64 = 3000;
const STEP_MS: u64 = 5;
const BATCH: u64 = 40;

struct Mgr {
    addr: String,
    node: Option<Node>,
    saved: Saved,
    standby_of: Option<String>,
    /// Per engine: the source count below which its events are done
    /// (published by this manager, or reported acknowledged by a leader).
    /// It is on flash, so it survives a crash.
    cursors: [u64; ENGINES as usize],
}

#[derive(Clone, Debug)]
enum Act {
    Crash(usize),
    Restart(usize),
    /// Cut every link between the two groups.
    Partition(Vec<usize>, Vec<usize>),
    Heal,
    /// Messages lost (percent) and the largest delay (ms) from now on.
    Network(u32, u64),
}

struct World {
    now: u64,
    rng: fastrand::Rng,
    loss: u32,
    max_delay: u64,
    queue: Vec<(u64, u64, usize, Msg)>,
    sent: u64,
    blocked: Vec<(usize, usize)>,
    mgrs: Vec<Mgr>,
    engines: Vec<Vec<u64>>,
    /// Who led each epoch.
    leaders: BTreeMap<u64, String>,
    role_changes: u32,
}

impl World {
    fn new(seed: u64, managers: usize) -> World {
        let mgrs = (0..managers)
            .map(|k| {
                let addr = format!("m{k}");
                let node = if k == 0 {
                    Node::leader(&addr, 1, TIMING, 0)
                } else {
                    Node::standby(&addr, "m0", 1, TIMING, 0)
                };
                Mgr {
                    addr,
                    saved: node.saved(),
                    node: Some(node),
                    standby_of: (k > 0).then(|| "m0".to_string()),
                    cursors: [0; ENGINES as usize],
                }
            })
            .collect();
        let mut w = World {
            now: 0,
            rng: fastrand::Rng::with_seed(seed),
            loss: 0,
            max_delay: 20,
            queue: Vec::new(),
            sent: 0,
            blocked: Vec::new(),
            mgrs,
            engines: vec![Vec::new(); ENGINES as usize],
            leaders: BTreeMap::new(),
            role_changes: 0,
        };
        w.leaders.insert(0, "m0".into());
        w
    }

    fn index(&self, addr: &str) -> Option<usize> {
        self.mgrs.iter().position(|m| m.addr == addr)
    }

    fn handle(&mut self, k: usize, outs: Vec<Out>) {
        for o in outs {
            match o {
                Out::Send { to, msg } => {
                    let Some(t) = self.index(&to) else { continue };
                    let cut = self.blocked.contains(&(k, t)) || self.blocked.contains(&(t, k));
                    if cut || self.rng.u32(0..100) < self.loss {
                        continue;
                    }
                    let at = self.now + self.rng.u64(1..=self.max_delay);
                    self.sent += 1;
                    self.queue.push((at, self.sent, t, msg));
                }
                Out::Role { to, epoch, .. } => {
                    self.role_changes += 1;
                    if to == Role::Leader {
                        let me = self.mgrs[k].addr.clone();
                        let prev = self.leaders.entry(epoch).or_insert(me.clone());
                        assert_eq!(*prev, me, "two leaders of epoch {epoch}");
                    }
                }
                Out::Acked => {
                    let node = self.mgrs[k].node.as_ref().expect("alive");
                    let acked: Vec<u64> = (0..ENGINES as u8)
                        .map(|e| node.acked().get(&(e, 0)).copied().unwrap_or(0))
                        .collect();
                    for (c, a) in self.mgrs[k].cursors.iter_mut().zip(acked) {
                        *c = (*c).max(a);
                    }
                }
                Out::Refused { by, why } => panic!("{by} refused: {why}"),
            }
        }
        if let Some(n) = &self.mgrs[k].node {
            self.mgrs[k].saved = n.saved();
        }
    }

    /// Leaders publish what the source has so far, a batch per engine.
    fn publish(&mut self) {
        let avail = (self.now + 1).min(EVENTS);
        for k in 0..self.mgrs.len() {
            let m = &mut self.mgrs[k];
            let Some(node) = &mut m.node else { continue };
            if node.role() != Role::Leader {
                continue;
            }
            for e in 0..ENGINES {
                let from = m.cursors[e as usize];
                let to = avail.min(from + BATCH);
                if to <= from {
                    continue;
                }
                self.engines[e as usize].extend((from..to).filter(|i| i % ENGINES == e));
                m.cursors[e as usize] = to;
                node.progress(e as u8, 0, to);
            }
        }
    }

    fn step(&mut self) {
        self.queue.sort_by_key(|q| (q.0, q.1));
        while self.queue.first().is_some_and(|q| q.0 <= self.now) {
            let (_, _, t, msg) = self.queue.remove(0);
            let now = self.now;
            let Some(n) = &mut self.mgrs[t].node else {
                continue;
            };
            let outs = n.step(now, msg);
            self.handle(t, outs);
        }
        for k in 0..self.mgrs.len() {
            let now = self.now;
            let Some(n) = &mut self.mgrs[k].node else {
                continue;
            };
            if now >= n.next_wake() {
                let outs = n.tick(now);
                self.handle(k, outs);
            }
        }
        if self.now.is_multiple_of(10) {
            self.publish();
        }
        self.now += STEP_MS;
    }

    fn act(&mut self, a: &Act) {
        match a.clone() {
            Act::Crash(k) => self.mgrs[k].node = None,
            Act::Restart(k) => {
                let m = &mut self.mgrs[k];
                m.node = Some(Node::restart(
                    &m.addr,
                    m.saved.clone(),
                    m.standby_of.as_deref(),
                    1,
                    TIMING,
                    self.now,
                ));
            }
            Act::Partition(a, b) => {
                for &x in &a {
                    for &y in &b {
                        self.blocked.push((x, y));
                    }
                }
            }
            Act::Heal => self.blocked.clear(),
            Act::Network(loss, delay) => {
                self.loss = loss;
                self.max_delay = delay;
            }
        }
    }

    fn leaders_now(&self) -> Vec<(String, u64)> {
        self.mgrs
            .iter()
            .filter_map(|m| m.node.as_ref())
            .filter(|n| n.role() == Role::Leader)
            .map(|n| (n.me().to_string(), n.epoch()))
            .collect()
    }

    /// Runs the script, heals everything, and checks the outcome. Returns
    /// the duplicates the engines recorded.
    fn run(mut self, script: &[(u64, Act)]) -> (u64, World) {
        let end = script.iter().map(|s| s.0).max().unwrap_or(0).max(EVENTS) + 3000;
        let mut script = script.to_vec();
        script.sort_by_key(|s| s.0);
        while self.now < end {
            while script.first().is_some_and(|s| s.0 <= self.now) {
                let (_, a) = script.remove(0);
                self.act(&a);
            }
            self.step();
        }
        // Heal: the network works again; let it settle.
        self.act(&Act::Heal);
        self.act(&Act::Network(0, 20));
        let settle = self.now + 20 * TIMING.tick_ms;
        while self.now < settle {
            self.step();
        }
        let leaders = self.leaders_now();
        assert_eq!(leaders.len(), 1, "one leader after healing: {leaders:?}");
        let epoch = leaders[0].1;
        for m in self.mgrs.iter().filter_map(|m| m.node.as_ref()) {
            assert_eq!(m.epoch(), epoch, "{} follows the last epoch", m.me());
            assert_eq!(m.leader_addr(), Some(leaders[0].0.as_str()));
        }
        let mut dups = 0;
        for e in 0..ENGINES {
            let got = &self.engines[e as usize];
            let mut seen = vec![false; EVENTS as usize];
            for &i in got {
                seen[i as usize] = true;
            }
            let lost: Vec<u64> = (0..EVENTS)
                .filter(|i| i % ENGINES == e && !seen[*i as usize])
                .collect();
            assert!(
                lost.is_empty(),
                "engine {e} never got {} events, first {:?}",
                lost.len(),
                &lost[..lost.len().min(5)]
            );
            dups += got.len() as u64 - EVENTS / ENGINES;
        }
        (dups, self)
    }
}

#[test]
fn leader_crash_with_one_standby() {
    let (dups, w) = World::new(1, 2).run(&[(1000, Act::Crash(0))]);
    assert_eq!(w.leaders_now()[0].0, "m1");
    // At most what was published after the last update reached the standby.
    assert!(dups <= 2 * BATCH * 2, "{dups} duplicates");
}

#[test]
fn leader_crash_with_two_standbys_elects_the_first() {
    let (dups, w) = World::new(2, 3).run(&[(1000, Act::Crash(0))]);
    // The first to register (id 1: first in the list after the leader).
    let first = w.mgrs.iter().find(|m| m.saved.id == Some(1)).unwrap();
    assert_eq!(w.leaders_now()[0].0, first.addr);
    assert_eq!(w.leaders_now()[0].1, 1, "id 1 claims epoch 1");
    assert!(dups <= 2 * BATCH * 2, "{dups} duplicates");
}

#[test]
fn the_second_standby_leads_when_the_first_is_dead_too() {
    let mut w = World::new(3, 3);
    while w.now < 500 {
        w.step();
    }
    let first = w.mgrs.iter().position(|m| m.saved.id == Some(1)).unwrap();
    let (_, w) = w.run(&[(800, Act::Crash(first)), (1000, Act::Crash(0))]);
    let second = &w.mgrs[3 - first].addr;
    assert_eq!(&w.leaders_now()[0].0, second);
    assert_eq!(w.leaders_now()[0].1, 2, "id 2 claims epoch 2");
}

#[test]
fn a_standby_crash_changes_nothing_and_it_rejoins() {
    let (dups, w) = World::new(4, 3).run(&[(700, Act::Crash(2)), (1500, Act::Restart(2))]);
    assert_eq!(w.leaders_now()[0], ("m0".to_string(), 0));
    assert_eq!(dups, 0);
}

#[test]
fn an_old_leader_that_restarts_after_a_takeover_follows_the_new_one() {
    let (_, w) = World::new(5, 3).run(&[(1000, Act::Crash(0)), (2500, Act::Restart(0))]);
    assert_ne!(w.leaders_now()[0].0, "m0");
    assert_eq!(w.leaders.len(), 2, "epochs: {:?}", w.leaders);
}

#[test]
fn a_partition_makes_two_leaders_of_different_epochs_and_healing_leaves_one() {
    let (dups, w) = World::new(6, 3).run(&[
        (1000, Act::Partition(vec![0], vec![1, 2])),
        (2200, Act::Heal),
    ]);
    assert!(
        w.leaders.len() >= 2,
        "the standbys elected a leader: {:?}",
        w.leaders
    );
    assert!(dups > 0, "two leaders published the same events");
}

#[test]
fn lost_and_reordered_updates_never_lose_events() {
    for seed in 0..40 {
        let mut w = World::new(100 + seed, 3);
        // Up to 30% loss, delays up to 1.5 ticks (reordering); a crash of
        // the leader at a random moment, sometimes of a standby too.
        let loss = w.rng.u32(0..30);
        let crash = w.rng.u64(300..2500);
        let mut script = vec![(0, Act::Network(loss, 150)), (crash, Act::Crash(0))];
        if seed % 3 == 0 {
            script.push((w.rng.u64(300..2500), Act::Crash(1)));
        }
        if seed % 4 == 0 {
            script.push((crash + w.rng.u64(500..1500), Act::Restart(0)));
        }
        let _ = w.run(&script);
    }
}
