//! End to end, through the real binary, the way a gateway runs it: the demo's
//! broker-surveillance config (targets/demo) with generated trades, three
//! stand-in engines and a spare (`edgecm engine`, separate processes whose CPU
//! does not count), and the manager as its own process with group commit on.
//!
//! ```text
//! cargo bench --bench e2e
//! EDGECM_E2E_EVENTS=200000 EDGECM_E2E_POLICIES=hash EDGECM_E2E_BLOCKSIZE=256 cargo bench --bench e2e
//! EDGECM_E2E_CALLGRIND=0 cargo bench --bench e2e     # without the callgrind run
//! EDGECM_E2E_SLOW_MS=0 cargo bench --bench e2e        # without the slow-engine run
//! EDGECM_E2E_ENGINES=1 EDGECM_E2E_SLOW_MS=0 cargo bench --bench e2e   # to esp1 alone
//! EDGECM_E2E_DELAY_MS=50 EDGECM_E2E_ARGS='-inflight 4' cargo bench --bench e2e
//! cargo bench --features count-allocs --bench e2e     # heap allocations per event too
//! EDGECM_E2E_QUEUED=1 EDGECM_E2E_EVENTS=10000000 EDGECM_E2E_ARGS='-buffersize 16m -state-max 4g' cargo bench --bench e2e
//! ```
//! `EDGECM_E2E_QUEUED=1`: the engines are down (their connections dropped)
//! until every trade is in the journal, then up: memory with the queue
//! full, then while it drains;
//! `EDGECM_E2E_DELAY_MS`: every stand-in answers each request that late;
//! `EDGECM_E2E_RTT_MS`: every stand-in is reached through a proxy that
//! holds each byte half that long each way (a WAN round trip: requests
//! pipelined on one connection overlap their trips, as on a real link);
//! `EDGECM_E2E_ARGS`: more arguments for the manager;
//! `EDGECM_E2E_POLL_MS`: how often the bench asks the manager's metrics
//! whether every event was acknowledged (default 10: a finer end time, for
//! some of the manager's CPU).
//! One line per policy (hash on broker, multicast to 3, round-robin):
//! events/s from start until every engine acknowledged everything, the
//! manager's CPU seconds per million input events (utime + stime from
//! /proc), its peak RSS (VmHWM) and its RSS once idle, bytes written to the
//! journal per input byte and fsyncs/s (the manager's own counters, from
//! `GET metrics`), and instructions per event: the manager under
//! `valgrind --tool=callgrind` on a smaller run (`EDGECM_E2E_CALLGRIND`
//! trades, default 50,000), its total instruction count (start-up and
//! shutdown included) divided by the trades. Instructions are what carries
//! over to an ARM core; qemu runs of this bench report them the same way
//! when valgrind is there.
//!
//! Then the same policy again with esp2's stand-in answering every request
//! `EDGECM_E2E_SLOW_MS` (default 100) late: the line gives the rate at which
//! esp1 and esp3 acknowledged their events, against the first run's rate
//! for the same events (1.00x: the slow engine cost them nothing).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_edgecm");

/// The manager: this build's binary, or another target's under qemu-user
/// (`EDGECM_E2E_MANAGER`, `EDGECM_E2E_QEMU`, `EDGECM_E2E_QEMU_PLUGIN`; cross/bench.sh sets them).
struct Manager {
    exe: PathBuf,
    /// The emulator and its arguments (`qemu-aarch64 -cpu cortex-a53`).
    qemu: Vec<String>,
    /// cross/qemu-insn.c, built: counts instructions instead of callgrind.
    plugin: Option<PathBuf>,
}

impl Manager {
    fn from_env() -> Manager {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        Manager {
            exe: var("EDGECM_E2E_MANAGER").map_or_else(|| PathBuf::from(EXE), PathBuf::from),
            qemu: var("EDGECM_E2E_QEMU")
                .map(|q| q.split_whitespace().map(String::from).collect())
                .unwrap_or_default(),
            plugin: var("EDGECM_E2E_QEMU_PLUGIN").map(PathBuf::from),
        }
    }

    /// The command that runs the manager; `count`: where the instruction
    /// count goes (callgrind's output file, or the plugin's under qemu).
    fn command(&self, count: Option<&Path>) -> Command {
        let mut c = match (self.qemu.split_first(), count) {
            (Some((qemu, args)), count) => {
                let mut c = Command::new(qemu);
                c.args(args);
                if let (Some(out), Some(plugin)) = (count, &self.plugin) {
                    c.arg("-plugin")
                        .arg(format!("{},out={}", plugin.display(), out.display()));
                }
                c
            }
            (None, Some(out)) => {
                let mut c = Command::new("valgrind");
                c.arg("--tool=callgrind")
                    .arg(format!("--callgrind-out-file={}", out.display()));
                c
            }
            (None, None) => return Command::new(&self.exe),
        };
        c.arg(&self.exe);
        c
    }

    /// Whether instructions can be counted: valgrind natively, the plugin
    /// under qemu.
    fn counts(&self) -> bool {
        if !self.qemu.is_empty() {
            return self.plugin.as_ref().is_some_and(|p| p.exists());
        }
        Command::new("valgrind")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn standin(delay_ms: u64) -> (Killed, u16) {
    let mut c = Command::new(EXE)
        .args(["-loglevel", "warn", "engine", "-http", "0"])
        .args(["-delay-ms", &delay_ms.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start a stand-in");
    let mut line = String::new();
    BufReader::new(c.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().rsplit(':').next().unwrap().parse().unwrap();
    (Killed(c), port)
}

fn config(policy: &str, blocksize: u32, ports: &[u16], engines: usize) -> String {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("targets/demo/broker-demo.xml");
    let mut c = std::fs::read_to_string(demo).unwrap();
    if engines == 1 {
        c = c
            .lines()
            .filter(|l| !l.contains("name='esp2'") && !l.contains("name='esp3'"))
            .collect::<Vec<_>>()
            .join("\n");
    }
    for (n, p) in ports.iter().enumerate() {
        c = c
            .replace(&format!("@ESP{}@", n + 1), &p.to_string())
            .replace(&format!("@PUBSUB{}@", n + 1), "1");
    }
    c = c.replace(
        "<property name='blocksize'>64</property>",
        &format!("<property name='blocksize'>{blocksize}</property>"),
    );
    if policy != "hash" {
        let tag = if policy == "multicast" {
            "multicast-destination"
        } else {
            "roundrobin-destination"
        };
        c = c.replace("hash-destination", tag);
        let (a, b) = (c.find("<fields>").unwrap(), c.find("</fields>").unwrap());
        c.replace_range(a..b + "</fields>".len(), "");
    }
    c
}

/// utime + stime (s), stime alone (s), VmHWM and VmRSS (KiB) of `pid`.
fn usage(pid: u32) -> (f64, f64, u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) in USER_HZ (100 on Linux).
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let cpu = (ticks(11) + ticks(12)) as f64 / 100.0;
    let sys = ticks(12) as f64 / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (cpu, sys, kib("VmHWM:"), kib("VmRSS:"))
}

fn get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn metric(text: &str, prefix: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

struct Figures {
    secs: f64,
    /// Until esp1 and esp3 had acknowledged `fast_want` (what they got in
    /// the run without a slow engine) or, without it, their final counts.
    fast_secs: f64,
    /// Events esp1 and esp3 acknowledged.
    fast_acked: [u64; 2],
    /// Events esp2 acknowledged.
    esp2_acked: u64,
    cpu: f64,
    /// Of `cpu`, in the kernel.
    sys: f64,
    /// The stand-in engines' CPU seconds, all of them (whether they kept up:
    /// on a two-core machine they share the cores with the manager).
    standin_cpu: f64,
    hwm: u64,
    idle: u64,
    written: f64,
    syncs: f64,
    /// Heap allocations per input event (`--features count-allocs` only).
    allocs: Option<f64>,
    /// With `EDGECM_E2E_QUEUED`: the manager once every trade was queued.
    queued: Option<Queued>,
}

/// The manager with every trade queued and its engines still down.
struct Queued {
    /// From start until every trade was in the journal.
    secs: f64,
    /// VmHWM and VmRSS then (KiB).
    hwm: u64,
    rss: u64,
}

/// What every run shares.
struct Bench {
    manager: Manager,
    blocksize: u32,
    /// Engines in the cluster: 3 (esp1 to esp3), or 1 (esp1 alone).
    engines: usize,
    /// Every stand-in answers this late (ms).
    delay_ms: u64,
    /// Every stand-in behind a proxy with this round trip (ms).
    rtt_ms: u64,
    /// More arguments for the manager.
    args: Vec<String>,
    /// Engines unreachable until every trade is in the journal, then
    /// reachable (`EDGECM_E2E_QUEUED`): memory with the queue full.
    queued: bool,
    /// How often the bench asks the manager's metrics whether it is done
    /// (`EDGECM_E2E_POLL_MS`, default 10): each ask costs the manager an
    /// admin request and a metrics render, counted in its CPU.
    poll: Duration,
    /// Where the runs' directories and the trades files go.
    dir: PathBuf,
}

/// A slow esp2: its stand-in waits `delay_ms` before each answer, and the
/// run ends once esp1 and esp3 acknowledged `fast_want`.
struct Slow {
    delay_ms: u64,
    fast_want: [u64; 2],
}

/// Events `engine` of the demo cluster acknowledged, from `GET metrics`.
fn acked(metrics: &str, engine: &str) -> u64 {
    metric(
        metrics,
        &format!("edgecm_engine_acked_events_total{{cluster=\"demo\",engine=\"{engine}\""),
    )
}

/// Runs the manager on `trades` until every event is acknowledged (with
/// `slow`, until esp1 and esp3 have theirs); with `callgrind`, under
/// valgrind writing its profile there.
fn run(
    bench: &Bench,
    policy: &str,
    events: u64,
    trades: &Path,
    callgrind: Option<&Path>,
    slow: Option<&Slow>,
) -> Figures {
    let engines: Vec<(Killed, u16)> = (0..4)
        .map(|i| {
            standin(
                slow.filter(|_| i == 1)
                    .map_or(bench.delay_ms, |s| s.delay_ms),
            )
        })
        .collect();
    let gate = bench
        .queued
        .then(|| std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)));
    let ports: Vec<u16> = engines
        .iter()
        .map(|e| match (bench.rtt_ms, &gate) {
            (0, None) => e.1,
            (rtt, gate) => delay_proxy(e.1, Duration::from_millis(rtt / 2), gate.clone()),
        })
        .collect();
    let (manager, blocksize, dir) = (&bench.manager, bench.blocksize, &bench.dir);
    let run_dir = dir.join(match (callgrind, slow) {
        (Some(_), _) => format!("{policy}-callgrind"),
        (None, Some(_)) => format!("{policy}-slow"),
        (None, None) => policy.to_string(),
    });
    let _ = std::fs::remove_dir_all(&run_dir);
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::write(
        run_dir.join("cluster.xml"),
        config(policy, blocksize, &ports, bench.engines),
    )
    .unwrap();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("targets/demo");
    for f in ["surveillance.xml", "venues.csv", "restricted.csv"] {
        std::fs::copy(demo.join(f), run_dir.join(f)).unwrap();
    }
    std::fs::hard_link(trades, run_dir.join("trades.csv"))
        .or_else(|_| std::fs::copy(trades, run_dir.join("trades.csv")).map(|_| ()))
        .unwrap();
    let log = std::fs::File::create(run_dir.join("manager.log")).unwrap();
    let started = Instant::now();
    let mut m = Killed(
        manager
            .command(callgrind)
            .args(["-loglevel", "info", "-http", "0", "-cluster-manager"])
            .arg(run_dir.join("cluster.xml"))
            .arg("-state-dir")
            .arg(run_dir.join("state"))
            .args(&bench.args)
            .stderr(log)
            .spawn()
            .expect("start the manager"),
    );
    let pid = m.0.id();
    let logged = |what: &str| {
        std::fs::read_to_string(run_dir.join("manager.log"))
            .unwrap_or_default()
            .contains(what)
    };
    let deadline = started + Duration::from_secs(3600);
    let mut admin = 0u16;
    while admin == 0 {
        assert!(Instant::now() < deadline && m.0.try_wait().unwrap().is_none());
        let text = std::fs::read_to_string(run_dir.join("manager.log")).unwrap_or_default();
        admin = text
            .split("admin API on http://127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        std::thread::sleep(Duration::from_millis(5));
    }
    // Reference data: 6 venues and 4 restricted to each engine.
    let trades_acked = if policy == "multicast" {
        bench.engines as u64 * events
    } else {
        events
    };
    let want = trades_acked + 10 * bench.engines as u64;
    // Engines down: every trade (and the 10 reference events) queued first.
    let mut queued = None;
    if let Some(gate) = gate {
        while metric(
            &get(admin, "/SASESP/metrics"),
            "edgecm_source_accepted_events_total{",
        ) < events + 10
        {
            assert!(
                Instant::now() < deadline && m.0.try_wait().unwrap().is_none(),
                "the manager did not queue every trade; see {}",
                run_dir.join("manager.log").display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let (_, _, hwm, rss) = usage(pid);
        queued = Some(Queued {
            secs: started.elapsed().as_secs_f64(),
            hwm,
            rss,
        });
        gate.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    let mut metrics;
    // esp1's and esp3's counts and the poll that first saw them (counts
    // only grow: the last change is when they reached their final ones).
    let mut fast_seen: Option<([u64; 2], f64)> = None;
    loop {
        metrics = get(admin, "/SASESP/metrics");
        let fast = ["esp1", "esp3"].map(|e| acked(&metrics, e));
        if fast_seen.is_none_or(|(f, _)| f != fast) {
            fast_seen = Some((fast, started.elapsed().as_secs_f64()));
        }
        let acked = metric(&metrics, "edgecm_engine_acked_events_total{");
        let done = match slow {
            Some(s) => fast[0] >= s.fast_want[0] && fast[1] >= s.fast_want[1],
            None => acked >= want && metric(&metrics, "edgecm_engine_backlog_events{") == 0,
        };
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline && m.0.try_wait().unwrap().is_none(),
            "the manager stopped or took too long; see {}",
            run_dir.join("manager.log").display()
        );
        std::thread::sleep(bench.poll);
    }
    let secs = started.elapsed().as_secs_f64();
    let (fast_acked, fast_secs) = fast_seen.unwrap_or(([0; 2], secs));
    let (cpu, sys, hwm, _) = usage(pid);
    let standin_cpu = engines.iter().map(|(e, _)| usage(e.0.id()).0).sum();
    // Idle: nothing to do for long enough that the committer gave back its
    // buffer (after a second idle, daemon/commit.rs).
    std::thread::sleep(Duration::from_millis(2500));
    let (_, _, _, idle) = usage(pid);
    // Where the resident memory is, for whoever works on it.
    if let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) {
        let _ = std::fs::write(run_dir.join("smaps"), maps);
    }
    let input = std::fs::metadata(trades).unwrap().len() as f64;
    let written = metric(&metrics, "edgecm_journal_written_bytes_total") as f64;
    let syncs = metric(&metrics, "edgecm_journal_syncs_total") as f64;
    let allocs = metrics
        .contains("edgecm_heap_allocations_total")
        .then(|| metric(&metrics, "edgecm_heap_allocations_total") as f64 / events as f64);
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = m.0.wait();
    assert!(logged("stopped"), "the manager did not stop cleanly");
    drop(engines);
    Figures {
        secs,
        fast_secs,
        fast_acked,
        esp2_acked: acked(&metrics, "esp2"),
        cpu,
        sys,
        standin_cpu,
        hwm,
        idle,
        written: written / input,
        syncs: syncs / secs,
        allocs,
        queued,
    }
}

/// A proxy on 127.0.0.1 to `port` that holds every byte `one_way` before
/// passing it on, each way: a link with that latency and no bandwidth
/// limit. With a `gate`, connections are dropped while it is false (the
/// engine is down). Its threads end with their connections (the bench
/// process ends with the runs).
fn delay_proxy(
    port: u16,
    one_way: Duration,
    gate: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
) -> u16 {
    use std::net::{TcpListener, TcpStream};
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let at = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            // A closed gate: the engine is down (the connection is dropped).
            if gate
                .as_ref()
                .is_some_and(|g| !g.load(std::sync::atomic::Ordering::SeqCst))
            {
                continue;
            }
            let Ok(t) = TcpStream::connect(("127.0.0.1", port)) else {
                continue;
            };
            let _ = (c.set_nodelay(true), t.set_nodelay(true));
            for (from, to) in [(c.try_clone().unwrap(), t.try_clone().unwrap()), (t, c)] {
                pump(from, to, one_way);
            }
        }
    });
    at
}

/// Copies `from` to `to`, each chunk `delay` after it was read.
fn pump(mut from: std::net::TcpStream, mut to: std::net::TcpStream, delay: Duration) {
    use std::io::{Read, Write};
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        for (due, data) in rx {
            if let Some(d) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
            if to.write_all(&data).is_err() {
                return;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0
                || tx
                    .send((Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
            {
                return;
            }
        }
    });
}

/// The total instruction count callgrind wrote ("totals:" or "summary:"),
/// or qemu-insn.c ("insns:").
fn callgrind_total(out: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(out).ok()?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
                .or_else(|| l.strip_prefix("insns:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn trades_file(dir: &Path, events: u64) -> PathBuf {
    let trades = dir.join(format!("trades-{events}.csv"));
    if !trades.exists() {
        let mut f = std::fs::File::create(&trades).unwrap();
        edgecm::demo::trades_csv(events, &mut f).unwrap();
    }
    trades
}

fn main() {
    // `cargo test --benches` runs this with no figures wanted.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let events: u64 = env_or("EDGECM_E2E_EVENTS", 1_000_000);
    let blocksize: u32 = env_or("EDGECM_E2E_BLOCKSIZE", 64);
    let policies: String = env_or(
        "EDGECM_E2E_POLICIES",
        "hash,multicast,roundrobin".to_string(),
    );
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let trades = trades_file(&dir, events);
    let small: u64 = env_or("EDGECM_E2E_CALLGRIND", 50_000);
    let slow_ms: u64 = env_or("EDGECM_E2E_SLOW_MS", 100);
    let manager = Manager::from_env();
    let counting = small > 0 && manager.counts();
    if small > 0 && !counting {
        if manager.qemu.is_empty() {
            println!("valgrind not found: no instructions per event (apt-get install valgrind)");
        } else {
            println!(
                "no EDGECM_E2E_QEMU_PLUGIN: no instructions per event (cross/bench.sh builds it)"
            );
        }
    }
    let counter = if manager.qemu.is_empty() {
        "callgrind"
    } else {
        "qemu-insn"
    };
    let engines: usize = env_or("EDGECM_E2E_ENGINES", 3);
    assert!(
        engines == 1 || engines == 3,
        "EDGECM_E2E_ENGINES: {engines}; accepted: 1 or 3"
    );
    assert!(
        engines == 3 || slow_ms == 0,
        "the slow-engine run needs 3 engines (EDGECM_E2E_SLOW_MS=0 with EDGECM_E2E_ENGINES=1)"
    );
    let bench = Bench {
        manager,
        blocksize,
        dir: dir.clone(),
        engines,
        delay_ms: env_or("EDGECM_E2E_DELAY_MS", 0),
        rtt_ms: env_or("EDGECM_E2E_RTT_MS", 0),
        args: env_or("EDGECM_E2E_ARGS", String::new())
            .split_whitespace()
            .map(String::from)
            .collect(),
        queued: env_or("EDGECM_E2E_QUEUED", 0) == 1,
        poll: Duration::from_millis(env_or("EDGECM_E2E_POLL_MS", 10)),
    };
    for p in policies.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        assert!(
            ["hash", "multicast", "roundrobin"].contains(&p),
            "EDGECM_E2E_POLICIES: {p:?}; accepted: hash, multicast, roundrobin"
        );
        let f = run(&bench, p, events, &trades, None, None);
        let instr = if counting {
            let out = dir.join(format!("callgrind.{p}.out"));
            let _ = std::fs::remove_file(&out);
            run(
                &bench,
                p,
                small,
                &trades_file(&dir, small),
                Some(&out),
                None,
            );
            match callgrind_total(&out) {
                Some(total) => format!(
                    ", {:.0} instructions per event ({counter}, {small} trades)",
                    total as f64 / small as f64
                ),
                None => format!(", no callgrind total in {}", out.display()),
            }
        } else {
            String::new()
        };
        let setup = match (bench.engines, bench.delay_ms, bench.args.join(" ")) {
            (3, 0, a) if a.is_empty() => String::new(),
            (n, d, a) => format!(
                " ({n} engine{}{}{})",
                if n == 1 { "" } else { "s" },
                if d > 0 {
                    format!(", answering in {d} ms")
                } else {
                    String::new()
                },
                if a.is_empty() {
                    String::new()
                } else {
                    format!(", {a}")
                }
            ),
        };
        println!(
            "e2e {p:<10} {events} trades, blocksize {blocksize}{setup}: {:>9.0} events/s, {:.2} manager CPU-s per M events ({:.2} in the kernel; stand-ins {:.2}), peak RSS {:.1} MiB, idle RSS {:.1} MiB, {:.3} bytes written per input byte, {:.1} fsyncs/s ({:.2} s){instr}{}",
            events as f64 / f.secs,
            f.cpu / (events as f64 / 1e6),
            f.sys / (events as f64 / 1e6),
            f.standin_cpu / (events as f64 / 1e6),
            f.hwm as f64 / 1024.0,
            f.idle as f64 / 1024.0,
            f.written,
            f.syncs,
            f.secs,
            f.allocs.map_or(String::new(), |a| format!(", {a:.4} heap allocations per event (count-allocs)")),
        );
        if let Some(q) = &f.queued {
            println!(
                "e2e {p:<10} queued with the engines down: {events} trades in {:.2} s, peak RSS {:.1} MiB, RSS {:.1} MiB once queued; then drained at {:.0} events/s ({:.2} s from the engines coming up, their retry backoff included)",
                q.secs,
                q.hwm as f64 / 1024.0,
                q.rss as f64 / 1024.0,
                events as f64 / (f.secs - q.secs),
                f.secs - q.secs,
            );
        }
        if slow_ms > 0 {
            let s = run(
                &bench,
                p,
                events,
                &trades,
                None,
                Some(&Slow {
                    delay_ms: slow_ms,
                    fast_want: f.fast_acked,
                }),
            );
            let n: u64 = f.fast_acked.iter().sum();
            println!(
                "e2e {p:<10} esp2 answering in {slow_ms} ms: esp1+esp3 acknowledged their {n} events at {:>9.0} events/s ({:.2} s; esp2 had {} of {}), {:.0} events/s without the slow engine ({:.2} s): {:.2}x",
                n as f64 / s.fast_secs,
                s.fast_secs,
                s.esp2_acked,
                f.esp2_acked,
                n as f64 / f.fast_secs,
                f.fast_secs,
                f.fast_secs / s.fast_secs,
            );
        }
    }
    println!(
        "binary {}: {} bytes{}",
        bench.manager.exe.display(),
        std::fs::metadata(&bench.manager.exe)
            .map(|m| m.len())
            .unwrap_or(0),
        if bench.manager.qemu.is_empty() {
            String::new()
        } else {
            format!(", run under {}", bench.manager.qemu.join(" "))
        }
    );
}
