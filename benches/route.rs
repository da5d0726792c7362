//! Routing cost per event, per policy, for 3 and 32 engines.
//!
//!   cargo bench --bench route                      # ns/event, every case
//!   benches/route-callgrind.sh                     # instructions/event (callgrind)
//!
//! Arguments after `--`: `--events N` (per case, default 2,000,000) and
//! `--only CASE` (e.g. `hash/32`). Events come in blocks of 50 with one key
//! field holding broker-id-like text, as in the trades data.

use std::hint::black_box;
use std::time::Instant;

use edgecm::config::{Engine, Policy};
use edgecm::route::{hash, Membership, Router, Routes};

const BLOCK: usize = 50;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let events: usize = arg("--events")
        .map(|s| s.parse().expect("--events N"))
        .unwrap_or(2_000_000);
    let only = arg("--only");

    // 4,096 distinct keys, reused: the router's cost, not the key generation's.
    let keys: Vec<[String; 1]> = (0..4096u64)
        .map(|i| [format!("{}", 1_000_000 + hash::splitmix64(i) % 9_000_000)])
        .collect();
    let cases: [(&str, Policy); 4] = [
        ("multicast", Policy::Multicast),
        ("round-robin", Policy::RoundRobin),
        (
            "hash",
            Policy::Hash {
                fields: vec![0],
                durable: false,
            },
        ),
        (
            "durable-hash",
            Policy::Hash {
                fields: vec![0],
                durable: true,
            },
        ),
    ];
    for n in [3usize, 32] {
        let engines: Vec<Engine> = (0..n)
            .map(|i| Engine {
                name: format!("esp{i}"),
                host: "h".into(),
                port: 1,
                ha_port: 2,
                tls: false,
                auth_user: None,
                prefix: String::new(),
                connect: None,
            })
            .collect();
        let m = Membership::new(&engines, &[]).expect("membership");
        for (name, policy) in &cases {
            let case = format!("{name}/{n}");
            if only.as_deref().is_some_and(|o| o != case) {
                continue;
            }
            let mut router = Router::new(policy.clone(), 1);
            let mut out = Routes::default();
            let blocks = events.div_ceil(BLOCK);
            let start = Instant::now();
            let mut sets = 0usize;
            for b in 0..blocks {
                let base = (b * BLOCK) % (keys.len() - BLOCK);
                let block: Vec<&[String; 1]> = keys[base..base + BLOCK].iter().collect();
                router.route(&m, black_box(&block[..]), &mut out);
                sets += out.groups().count();
            }
            let ns = start.elapsed().as_nanos() as f64 / (blocks * BLOCK) as f64;
            println!(
                "route {case:<16} {ns:7.1} ns/event  ({} events, {} destination groups)",
                blocks * BLOCK,
                black_box(sets)
            );
        }
    }
}
