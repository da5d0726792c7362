//! The routing core: determinism across platforms, spread, the durable ring's
//! minimal movement, redundancy, round-robin balance, spares.

use edgecm::config::{Engine, Policy};
use edgecm::route::{hash, hash_index, EngineSet, Failover, Membership, Router, Routes};
use proptest::prelude::*;

fn engine(name: &str) -> Engine {
    Engine {
        name: name.into(),
        host: "127.0.0.1".into(),
        port: 1,
        ha_port: 2,
        tls: false,
        auth_user: None,
        prefix: String::new(),
        connect: None,
    }
}

fn engines(n: usize) -> Vec<Engine> {
    (1..=n).map(|i| engine(&format!("esp{i}"))).collect()
}

/// Reproducible "random" keys: splitmix64 output as decimal or hex text.
fn keys(count: usize, seed: u64) -> Vec<Vec<String>> {
    (0..count as u64)
        .map(|i| {
            let r = hash::splitmix64(seed ^ i.wrapping_mul(0x2545_f491_4f6c_dd1d));
            vec![format!("{:x}", r >> (r % 40))]
        })
        .collect()
}

/// The destination set of each key, one event per block.
fn route_all(router: &mut Router, m: &Membership, keys: &[Vec<String>]) -> Vec<EngineSet> {
    let mut out = Routes::default();
    keys.iter()
        .map(|k| {
            router.route(m, &[k], &mut out);
            out.set_of(0).expect("every event is routed")
        })
        .collect()
}

fn hash_policy(durable: bool) -> Policy {
    Policy::Hash {
        fields: vec![0],
        durable,
    }
}

#[test]
fn hash_gives_the_committed_answers_on_every_platform() {
    // Computed once and committed: an armv7 or aarch64 build must agree bit for bit.
    let vectors: &[(&[&str], u64, usize, usize)] = &[
        (&["77"], 0xd83b_1e9b_be2a_ba5b, 0, 9),
        (&["78"], 0x57f3_9587_4af6_cd58, 0, 2),
        (&["1012112"], 0x55fd_4b85_e04a_0672, 1, 4),
        (&["EPIC", "55000"], 0x71ec_b0fd_4d87_ec78, 2, 6),
        (&[""], 0x3661_0c0f_0fbc_67ca, 2, 6),
        (&["héllo"], 0x331d_48dc_877a_b5aa, 2, 0),
    ];
    let mut got = Vec::new();
    for (fields, _, _, _) in vectors {
        let f: Vec<&[u8]> = fields.iter().map(|s| s.as_bytes()).collect();
        got.push((
            hash::event_hash(f.iter().copied()),
            hash_index(&f, 3),
            hash_index(&f, 10),
        ));
    }
    let want: Vec<(u64, usize, usize)> = vectors.iter().map(|v| (v.1, v.2, v.3)).collect();
    assert_eq!(
        got, want,
        "hash vectors changed: this breaks failover between managers and upgrades"
    );
    assert_eq!(hash::ring_point("esp1", 0), 0x592e_099a);
    assert_eq!(hash::ring_point("esp1", 1023), 0xbef6_a99f);
}

/// Routes 100k keys over 3 and 10 engines with `policy`; every engine gets
/// within 5 % of its fair share, each key exactly one engine.
fn assert_spread_within_5_percent(policy: Policy, seed: u64) {
    let ks = keys(100_000, seed);
    for n in [3usize, 10] {
        let m = Membership::new(&engines(n), &[]).unwrap();
        let mut r = Router::new(policy.clone(), 1);
        let mut counts = vec![0usize; n];
        for set in route_all(&mut r, &m, &ks) {
            assert_eq!(set.len(), 1);
            counts[set.iter().next().unwrap() as usize] += 1;
        }
        let fair = ks.len() as f64 / n as f64;
        for (i, c) in counts.iter().enumerate() {
            let off = (*c as f64 - fair).abs() / fair;
            assert!(
                off <= 0.05,
                "{policy:?} n={n} engine {i}: {c} keys, {:.1}% off fair ({counts:?})",
                off * 100.0
            );
        }
    }
}

#[test]
fn plain_hash_spreads_100k_keys_within_5_percent_over_3_and_10_engines() {
    assert_spread_within_5_percent(hash_policy(false), 7);
}

#[test]
fn durable_hash_spreads_100k_keys_within_5_percent() {
    assert_spread_within_5_percent(hash_policy(true), 11);
}

#[test]
fn durable_hash_moves_only_the_keys_of_an_added_or_removed_engine() {
    let ks = keys(100_000, 3);
    for n in 3..=10usize {
        let mut m = Membership::new(&engines(n), &[]).unwrap();
        let mut r = Router::new(hash_policy(true), 1);
        let before = route_all(&mut r, &m, &ks);

        // Add one: only keys that now go to the new engine move.
        let new_id = m.add(engine("added")).unwrap();
        let after = route_all(&mut r, &m, &ks);
        let moved: Vec<usize> = (0..ks.len()).filter(|&i| before[i] != after[i]).collect();
        assert!(
            moved.iter().all(|&i| after[i].contains(new_id)),
            "n={n}: a key moved between old engines"
        );
        let share = moved.len() as f64 / ks.len() as f64;
        assert!(
            share <= 1.0 / (n as f64 + 1.0) + 0.02,
            "n={n}: adding moved {:.2}%",
            share * 100.0
        );
        m.remove("added").unwrap();
        assert_eq!(
            route_all(&mut r, &m, &ks),
            before,
            "removing the added engine restores every key"
        );

        // Remove one: only its keys move.
        let gone = m.by_name("esp2").unwrap().id;
        m.remove("esp2").unwrap();
        let after = route_all(&mut r, &m, &ks);
        let moved: Vec<usize> = (0..ks.len()).filter(|&i| before[i] != after[i]).collect();
        assert!(
            moved.iter().all(|&i| before[i].contains(gone)),
            "n={n}: a key of another engine moved"
        );
        let share = moved.len() as f64 / ks.len() as f64;
        assert!(
            share <= 1.0 / n as f64 + 0.02,
            "n={n}: removing moved {:.2}%",
            share * 100.0
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn durable_ring_moves_only_affected_keys_for_any_names(
        names in proptest::collection::btree_set("[a-z][a-z0-9_]{0,11}", 2..8),
        extra in "[A-Z][a-z]{0,6}",
        seed in any::<u64>(),
    ) {
        let list: Vec<Engine> = names.iter().map(|n| engine(n)).collect();
        let mut m = Membership::new(&list, &[]).unwrap();
        let mut r = Router::new(hash_policy(true), 1);
        let ks = keys(2_000, seed);
        let before = route_all(&mut r, &m, &ks);
        let id = m.add(engine(&extra)).unwrap();
        let after = route_all(&mut r, &m, &ks);
        for i in 0..ks.len() {
            prop_assert!(before[i] == after[i] || after[i].contains(id));
        }
    }

    #[test]
    fn with_redundancy_n_every_event_reaches_n_distinct_engines(
        engines_n in 1usize..12,
        redundancy in 1u32..12,
        durable in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let redundancy = redundancy.min(engines_n as u32);
        let m = Membership::new(&engines(engines_n), &[]).unwrap();
        let mut r = Router::new(hash_policy(durable), redundancy);
        for set in route_all(&mut r, &m, &keys(500, seed)) {
            prop_assert_eq!(set.len(), redundancy as usize);
        }
    }

    #[test]
    fn round_robin_stays_within_one_block_and_skips_failed_engines(
        engines_n in 1usize..10,
        blocks in 1usize..300,
        failed in proptest::collection::vec(any::<bool>(), 10),
    ) {
        let mut m = Membership::new(&engines(engines_n), &[]).unwrap();
        let mut failed_ids = EngineSet::EMPTY;
        for (i, f) in failed.iter().take(engines_n).enumerate() {
            if *f && failed_ids.len() + 1 < engines_n {
                m.fail(&format!("esp{}", i + 1)).unwrap();
                failed_ids.insert(i as u8);
            }
        }
        let mut r = Router::new(Policy::RoundRobin, 1);
        let mut out = Routes::default();
        let mut counts = vec![0usize; engines_n];
        let block = vec![vec!["x"]; 3];
        let refs: Vec<&Vec<&str>> = block.iter().collect();
        for _ in 0..blocks {
            r.route(&m, &refs, &mut out);
            let groups: Vec<_> = out.groups().collect();
            prop_assert_eq!(groups.len(), 1, "a block goes to one engine whole");
            prop_assert_eq!(groups[0].1.len(), 3);
            let id = groups[0].0.iter().next().unwrap();
            prop_assert!(!failed_ids.contains(id), "round-robin sent to failed engine {}", id);
            counts[id as usize] += 1;
        }
        let live: Vec<usize> = (0..engines_n).filter(|&i| !failed_ids.contains(i as u8)).map(|i| counts[i]).collect();
        let (lo, hi) = (live.iter().min().unwrap(), live.iter().max().unwrap());
        prop_assert!(hi - lo <= 1, "counts {:?}", counts);
    }
}

#[test]
fn a_spare_that_replaces_a_failed_engine_receives_exactly_its_keys() {
    let ks = keys(20_000, 5);
    for durable in [false, true] {
        let mut m = Membership::new(&engines(3), &[engine("spare1"), engine("spare2")]).unwrap();
        let mut r = Router::new(hash_policy(durable), 1);
        let before = route_all(&mut r, &m, &ks);
        let esp2 = m.by_name("esp2").unwrap().id;
        assert_eq!(
            m.fail("esp2").unwrap(),
            Failover::Spare {
                slot: esp2,
                spare: "spare1".into()
            }
        );
        let after = route_all(&mut r, &m, &ks);
        assert_eq!(
            before, after,
            "the spare takes the failed engine's slot and name: no key moves"
        );
        let slot = m.slot(esp2).unwrap();
        assert_eq!(
            (slot.name.as_str(), slot.engine.name.as_str(), slot.failed),
            ("esp2", "spare1", false)
        );
        assert!(
            before.iter().any(|s| s.contains(esp2)),
            "the failed engine had keys"
        );
        // The next failure takes the next spare, in config order.
        assert_eq!(
            m.fail("esp3").unwrap(),
            Failover::Spare {
                slot: m.by_name("esp3").unwrap().id,
                spare: "spare2".into()
            }
        );
        assert!(m.spares().is_empty());
    }
}

#[test]
fn without_spares_hash_events_wait_for_the_failed_engine_and_round_robin_skips_it() {
    let mut m = Membership::new(&engines(3), &[]).unwrap();
    let esp1 = m.by_name("esp1").unwrap().id;
    assert_eq!(m.fail("esp1").unwrap(), Failover::NoSpare { slot: esp1 });
    let ks = keys(3_000, 9);
    let mut h = Router::new(hash_policy(false), 1);
    assert!(
        route_all(&mut h, &m, &ks).iter().any(|s| s.contains(esp1)),
        "hash keeps routing to it: events queue"
    );
    let mut rr = Router::new(Policy::RoundRobin, 1);
    assert!(route_all(&mut rr, &m, &ks)
        .iter()
        .all(|s| !s.contains(esp1)));
    m.recover("esp1").unwrap();
    assert!(
        route_all(&mut rr, &m, &ks).iter().any(|s| s.contains(esp1)),
        "a recovered engine gets blocks again"
    );
}

#[test]
fn adding_or_removing_engines_never_consumes_a_spare() {
    let mut m = Membership::new(&engines(2), &[engine("s1")]).unwrap();
    m.add(engine("esp3")).unwrap();
    m.remove("esp1").unwrap();
    assert_eq!(m.spares().len(), 1);
    assert_eq!(
        m.add(engine("s1")),
        Err(edgecm::route::MembershipError::DuplicateEngine("s1".into()))
    );
    assert!(m.remove("nope").is_err());
    m.remove("esp2").unwrap();
    assert!(matches!(
        m.remove("esp3"),
        Err(edgecm::route::MembershipError::LastEngine(_))
    ));
}

#[test]
fn multicast_sends_every_event_to_every_engine_including_failed_ones() {
    let mut m = Membership::new(&engines(4), &[]).unwrap();
    m.fail("esp4").unwrap();
    let mut r = Router::new(Policy::Multicast, 1);
    assert!(route_all(&mut r, &m, &keys(100, 1))
        .iter()
        .all(|s| *s == m.all() && s.len() == 4));
}

#[test]
fn two_managers_fed_the_same_blocks_choose_the_same_engines() {
    let m = Membership::new(&engines(5), &[]).unwrap();
    let ks = keys(1_000, 2);
    for policy in [Policy::RoundRobin, hash_policy(false), hash_policy(true)] {
        let a = route_all(&mut Router::new(policy.clone(), 1), &m, &ks);
        let b = route_all(&mut Router::new(policy.clone(), 1), &m, &ks);
        assert_eq!(a, b);
    }
}

#[test]
fn a_hash_block_is_split_into_groups_that_keep_source_order() {
    let m = Membership::new(&engines(3), &[]).unwrap();
    let mut r = Router::new(hash_policy(false), 1);
    let ks = keys(60, 4);
    let refs: Vec<&Vec<String>> = ks.iter().collect();
    let mut out = Routes::default();
    r.route(&m, &refs, &mut out);
    let mut seen: Vec<u32> = Vec::new();
    for (set, events) in out.groups() {
        assert!(
            events.windows(2).all(|w| w[0] < w[1]),
            "order kept inside a group"
        );
        for &e in events {
            assert_eq!(
                hash_index(&[ks[e as usize][0].as_bytes()], 3),
                set.iter().next().unwrap() as usize
            );
        }
        seen.extend(events);
    }
    seen.sort();
    assert_eq!(
        seen,
        (0..60).collect::<Vec<u32>>(),
        "every event exactly once"
    );
}
