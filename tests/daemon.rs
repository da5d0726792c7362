//! The manager end to end, through the real binary, on 127.0.0.1: the demo's
//! broker-surveillance config (ours, in targets/demo) against three stand-in
//! engines and a spare.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::StandIn;

const BROKERS_HASHED: usize = 3;

struct Setup {
    dir: PathBuf,
    engines: Vec<StandIn>,
    trades: u64,
}

fn setup(name: &str, trades: u64) -> Setup {
    let dir = support::scratch(name);
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("targets/demo");
    let engines: Vec<StandIn> = (1..=4)
        .map(|n| {
            let rec = dir.join(format!("esp{n}"));
            StandIn::start(0, &["-record", rec.to_str().unwrap()])
        })
        .collect();
    let mut config = std::fs::read_to_string(demo.join("broker-demo.xml")).unwrap();
    for (n, e) in engines.iter().enumerate() {
        config = config
            .replace(&format!("@ESP{}@", n + 1), &e.port.to_string())
            .replace(&format!("@PUBSUB{}@", n + 1), "1");
    }
    std::fs::write(dir.join("broker-demo.xml"), config).unwrap();
    for f in ["surveillance.xml", "venues.csv", "restricted.csv"] {
        std::fs::copy(demo.join(f), dir.join(f)).unwrap();
    }
    let mut f = std::fs::File::create(dir.join("trades.csv")).unwrap();
    edgecm::demo::trades_csv(trades, &mut f).unwrap();
    Setup {
        dir,
        engines,
        trades,
    }
}

impl Setup {
    fn manager(&self, log: &str) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(log))
            .unwrap();
        Command::new(env!("CARGO_BIN_EXE_edgecm"))
            .arg("-cluster-manager")
            .arg(self.dir.join("broker-demo.xml"))
            .arg("-state-dir")
            .arg(self.dir.join("state"))
            .args(["-ticktime", "200", "-loglevel", "info"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the manager")
    }

    fn recorded(&self, engine: usize, window: &str) -> Vec<String> {
        let p = self
            .dir
            .join(format!("esp{}/surveillance.watch.{window}.csv", engine + 1));
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn trades_recorded(&self) -> usize {
        (0..4).map(|e| self.recorded(e, "trades").len()).sum()
    }

    /// Distinct trade ids recorded.
    fn unique_trades(&self) -> usize {
        let mut ids: Vec<u64> = (0..4)
            .flat_map(|e| self.recorded(e, "trades"))
            .filter_map(|l| l.split(',').nth(2).and_then(|v| v.parse().ok()))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }

    /// Waits (bounded) until at least `n` trade lines are recorded.
    fn wait_trades(&self, n: usize, manager: &mut Child) {
        self.wait_until(|| self.trades_recorded() >= n, manager);
    }

    fn wait_until(&self, done: impl Fn() -> bool, manager: &mut Child) {
        let deadline = Instant::now() + Duration::from_secs(300);
        while !done() {
            if let Ok(Some(s)) = manager.try_wait() {
                panic!("the manager exited early: {s}; log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "not reached: {} trades recorded; log:\n{}",
                self.trades_recorded(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.join("manager.log")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

fn sigterm_and_wait(child: &mut Child) -> std::process::ExitStatus {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "the manager did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Checks every trade reached the engine its broker hashes to (and only
/// that one), at least once; returns the number of duplicate lines.
fn check_trades(s: &Setup) -> usize {
    let mut seen = vec![0u32; s.trades as usize + 1];
    for e in 0..4 {
        for line in s.recorded(e, "trades") {
            let f: Vec<&str> = line.split(',').collect();
            let id: usize = f[2].parse().unwrap();
            let broker = f[3];
            let want = edgecm::route::hash_index(&[broker.as_bytes()], BROKERS_HASHED);
            assert_eq!(
                e,
                want,
                "trade {id} of broker {broker} reached esp{}",
                e + 1
            );
            seen[id] += 1;
        }
    }
    let missing: Vec<usize> = (1..seen.len()).filter(|&i| seen[i] == 0).collect();
    assert!(
        missing.is_empty(),
        "{} trades lost, first {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    seen.iter().map(|&n| n.saturating_sub(1) as usize).sum()
}

#[test]
fn trades_hash_by_broker_reference_data_goes_everywhere_in_orchestration_order() {
    let s = setup("daemon-broker", 20_000);
    let mut m = s.manager("manager.log");
    s.wait_trades(20_000, &mut m);
    let status = sigterm_and_wait(&mut m);
    assert!(status.success(), "exit {status}; log:\n{}", s.log());
    assert_eq!(check_trades(&s), 0, "no duplicates without a crash");
    for e in 0..3 {
        assert_eq!(s.recorded(e, "venues").len(), 6, "esp{} venues", e + 1);
        assert_eq!(
            s.recorded(e, "restricted").len(),
            4,
            "esp{} restricted",
            e + 1
        );
    }
    assert_eq!(
        s.recorded(3, "trades").len(),
        0,
        "the spare gets nothing while all are up"
    );
    let log = s.log();
    let at = |what: &str| {
        log.find(what)
            .unwrap_or_else(|| panic!("{what:?} not logged:\n{log}"))
    };
    let trades_start = at("source 'trades': started");
    assert!(at("source 'venues': finished") < trades_start, "{log}");
    assert!(at("source 'restricted': finished") < trades_start, "{log}");
    for e in &s.engines {
        assert!(e.port > 0);
    }
}

#[test]
fn killed_at_random_points_and_restarted_nothing_is_lost() {
    let trials: usize = std::env::var("EDGECM_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let trades: u64 = std::env::var("EDGECM_CRASH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000);
    let s = setup("daemon-crash", trades);
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut dups = Vec::new();
    for t in 0..trials {
        let mut m = s.manager("manager.log");
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let at = s.trades_recorded() + 1 + (rng % (trades / (trials as u64 + 1))) as usize;
        s.wait_trades(at.min(trades as usize), &mut m);
        let _ = m.kill();
        let _ = m.wait();
        dups.push((t, s.trades_recorded()));
    }
    let mut m = s.manager("manager.log");
    s.wait_until(|| s.unique_trades() == trades as usize, &mut m);
    // Everything recorded at least once: finish, then check.
    let status = sigterm_and_wait(&mut m);
    assert!(status.success(), "exit {status}");
    let d = check_trades(&s);
    eprintln!("{trials} kill -9 trials over {trades} trades: {d} duplicate lines; recorded after each kill: {dups:?}");
    // Duplicates are the blocks acknowledged within the last group-commit
    // window before a kill (their cursor was not yet on flash): measured
    // about 7 blocks per engine per kill; 16 is the bound asserted.
    assert!(
        d <= trials * 3 * 64 * 16,
        "{d} duplicates for {trials} kills: more than 16 blocks per engine per kill"
    );
}
