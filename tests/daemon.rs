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
    setup_with(name, trades, &[], None)
}

/// Stand-ins get `engine_args` too; `rate` paces the trades source (events/s)
/// so that traffic flows for a while.
fn setup_with(name: &str, trades: u64, engine_args: &[&str], rate: Option<u32>) -> Setup {
    let dir = support::scratch(name);
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("targets/demo");
    let engines: Vec<StandIn> = (1..=4)
        .map(|n| {
            let rec = dir.join(format!("esp{n}"));
            let mut args = vec!["-record", rec.to_str().unwrap()];
            args.extend_from_slice(engine_args);
            StandIn::start(0, &args)
        })
        .collect();
    let mut config = std::fs::read_to_string(demo.join("broker-demo.xml")).unwrap();
    if let Some(rate) = rate {
        let at = "<property name='fsname'>trades.csv</property>";
        assert!(config.contains(at));
        config = config.replace(at, &format!("{at}<property name='rate'>{rate}</property>"));
    }
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
        self.manager_with(log, &[])
    }

    fn manager_with(&self, log: &str, extra: &[&str]) -> Child {
        self.manager_in("state", log, extra)
    }

    /// A manager with its own state dir `state` (several managers, failover).
    fn manager_in(&self, state: &str, log: &str, extra: &[&str]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(log))
            .unwrap();
        Command::new(env!("CARGO_BIN_EXE_edgecm"))
            .arg("-cluster-manager")
            .arg(self.dir.join("broker-demo.xml"))
            .arg("-state-dir")
            .arg(self.dir.join(state))
            .args(if extra.contains(&"-ticktime") {
                &["-loglevel", "info"][..]
            } else {
                &["-ticktime", "200", "-loglevel", "info"][..]
            })
            // A 512 KiB request can take seconds under an emulator with
            // every process on two cores: no engine fails for that here.
            .args(if extra.contains(&"-timeout") {
                &[][..]
            } else {
                &["-timeout", "15000"][..]
            })
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the manager")
    }

    fn recorded(&self, engine: usize, window: &str) -> Vec<String> {
        let p = self
            .dir
            .join(format!("esp{}/surveillance.watch.{window}.csv", engine + 1));
        support::whole_lines(&p)
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

    fn wait_until(&self, mut done: impl FnMut() -> bool, manager: &mut Child) {
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

    /// The admin API port the manager logged (it was started with `-http 0`).
    fn admin_port(&self, manager: &mut Child) -> u16 {
        self.admin_port_in("manager.log", manager)
    }

    fn admin_port_in(&self, log: &str, manager: &mut Child) -> u16 {
        let mut port = 0;
        self.wait_until(
            || {
                let log = self.log_of(log);
                port = log
                    .split("admin API on http://127.0.0.1:")
                    .nth(1)
                    .and_then(|r| r.split('/').next())
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0);
                port != 0
            },
            manager,
        );
        port
    }

    /// Trade lines recorded by engine `e`, by the slot their broker hashes to.
    fn trades_by_slot(&self, e: usize) -> [usize; BROKERS_HASHED] {
        let mut n = [0; BROKERS_HASHED];
        for line in self.recorded(e, "trades") {
            let broker = line.split(',').nth(3).unwrap().to_string();
            n[edgecm::route::hash_index(&[broker.as_bytes()], BROKERS_HASHED)] += 1;
        }
        n
    }

    /// How many generated trades hash to each slot.
    fn expected_by_slot(&self) -> [usize; BROKERS_HASHED] {
        let mut csv = Vec::new();
        edgecm::demo::trades_csv(self.trades, &mut csv).unwrap();
        let mut n = [0; BROKERS_HASHED];
        for line in String::from_utf8(csv).unwrap().lines() {
            if let Some(broker) = line.split(',').nth(3) {
                n[edgecm::route::hash_index(&[broker.as_bytes()], BROKERS_HASHED)] += 1;
            }
        }
        n
    }

    fn log(&self) -> String {
        self.log_of("manager.log")
    }

    fn log_of(&self, name: &str) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.join(name)) {
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
    check_trades_placed(s, |engine, slot| engine == slot)
}

/// [`check_trades`] with `placed(engine, slot)` saying which engine may hold
/// a trade of a slot.
fn check_trades_placed(s: &Setup, placed: impl Fn(usize, usize) -> bool) -> usize {
    let mut seen = vec![0u32; s.trades as usize + 1];
    for e in 0..4 {
        for line in s.recorded(e, "trades") {
            let f: Vec<&str> = line.split(',').collect();
            let id: usize = f[2].parse().unwrap();
            let broker = f[3];
            let want = edgecm::route::hash_index(&[broker.as_bytes()], BROKERS_HASHED);
            assert!(
                placed(e, want),
                "trade {id} of broker {broker} (slot {want}) reached esp{}",
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
    kill_trials("daemon-crash", &[]);
}

/// The same with requests pipelined: what was on the wire is sent again,
/// within the same bound.
#[test]
fn killed_while_pipelining_and_restarted_nothing_is_lost() {
    kill_trials("daemon-crash-pipelined", &["-pipeline"]);
}

/// Kills the manager `EDGECM_CRASH_TRIALS` times at random points while it
/// delivers, restarts it each time with `args`, and checks that every
/// trade arrives and duplicates stay within contract 2's bound.
fn kill_trials(name: &str, args: &[&str]) {
    let trials: usize = std::env::var("EDGECM_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let trades: u64 = std::env::var("EDGECM_CRASH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000);
    // EDGECM_CRASH_RATE paces the trades (events/s) to measure duplicates
    // per kill at a given rate; unset, as fast as it goes.
    let rate: Option<u32> = std::env::var("EDGECM_CRASH_RATE")
        .ok()
        .and_then(|v| v.parse().ok());
    let s = setup_with(name, trades, &[], rate);
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut dups = Vec::new();
    // A 1 s tick: health checks wait 1 s, so emulation under parallel load
    // (CI runs this under qemu) does not fail engines over to the spare.
    let tick: Vec<&str> = ["-ticktime", "1000"].iter().chain(args).copied().collect();
    for t in 0..trials {
        let mut m = s.manager_with("manager.log", &tick);
        let at = s.trades_recorded()
            + 1
            + (xorshift(&mut rng) % (trades / (trials as u64 + 1))) as usize;
        s.wait_trades(at.min(trades as usize), &mut m);
        let _ = m.kill();
        let _ = m.wait();
        dups.push((t, s.trades_recorded()));
    }
    let mut m = s.manager_with("manager.log", &tick);
    s.wait_until(|| s.unique_trades() == trades as usize, &mut m);
    // Everything recorded at least once: finish, then check.
    let status = sigterm_and_wait(&mut m);
    assert!(status.success(), "exit {status}");
    let d = check_trades(&s);
    eprintln!(
        "{trials} kill -9 trials over {trades} trades{}{}: {d} duplicate lines ({:.0} per kill; the bound is {} per kill: -inflight {INFLIGHT} requests of at most {per_request} trades per engine); recorded after each kill: {dups:?}",
        rate.map(|r| format!(" at {r}/s")).unwrap_or_default(),
        if args.is_empty() { String::new() } else { format!(" ({})", args.join(" ")) },
        d as f64 / trials as f64,
        3 * INFLIGHT * per_request(),
        per_request = per_request()
    );
    // Contract 2: at most the requests in flight per engine are sent again:
    // past -inflight answered requests whose acknowledgement is not on
    // flash, a sender waits for the group commit.
    let per_request = per_request();
    assert!(
        d <= trials * 3 * INFLIGHT * per_request,
        "{d} duplicates for {trials} kills: more than {INFLIGHT} requests ({per_request} events each) per engine per kill"
    );
}

/// The next of a seeded xorshift sequence (random kill points, reproducible).
fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// The most trades one request can carry: REQUEST_BODY_MAX bytes of XML
/// (a trade takes about 210) plus one record of the demo's blocksize 64.
/// Answered requests per engine whose acknowledgement may wait for the
/// group commit (`-inflight`, its default here).
const INFLIGHT: usize = edgecm::limits::DEFAULT_INFLIGHT;

fn per_request() -> usize {
    edgecm::engine::sender::REQUEST_BODY_MAX / 200 + 64
}

/// The sum of a numeric field over every engine in a `GET status` answer.
fn status_sum(status: &str, field: &str) -> usize {
    status
        .split(&format!("\"{field}\": "))
        .skip(1)
        .map(|r| r.split(',').next().unwrap().parse::<usize>().unwrap())
        .sum()
}

const V1: &str = "/eventStreamProcessing/v1";
const MAP: &str = "surveillance-map";

#[test]
fn admin_api_status_metrics_engines_and_clear_errors() {
    let s = setup("daemon-admin", 2_000);
    let mut m = s.manager_with("manager.log", &["-http", "0"]);
    let port = s.admin_port(&mut m);
    s.wait_trades(2_000, &mut m);
    // The stand-in records a block before it answers: the manager counts
    // it a moment later.
    s.wait_until(
        || {
            status_sum(
                &support::http(port, "GET", &format!("{V1}/status"), "").1,
                "acked",
            ) >= 2_000
        },
        &mut m,
    );
    let (code, status) = support::http(port, "GET", &format!("{V1}/status"), "");
    assert_eq!(code, 200, "{status}");
    for want in [
        "\"role\": \"leader\"",
        "\"name\": \"trades\"",
        "\"name\": \"esp1\"",
        "\"journal\": {\"bytes\": ",
        "\"uptime_s\": ",
    ] {
        assert!(status.contains(want), "{want:?} not in status:\n{status}");
    }
    // Every engine reports what it acknowledged; the sum covers the trades.
    let acked = status_sum(&status, "acked");
    assert!(acked >= 2_000, "{status}");
    let (code, metrics) = support::http(port, "GET", "/SASESP/metrics", "");
    assert_eq!(code, 200);
    for want in [
        "# TYPE edgecm_engine_acked_events_total counter",
        "edgecm_engine_up{cluster=\"demo\",engine=\"esp2\",serving=\"esp2\"} 1",
        "edgecm_source_accepted_events_total{source=\"trades\"} 2000",
        "edgecm_journal_segments ",
    ] {
        assert!(
            metrics.contains(want),
            "{want:?} not in metrics:\n{metrics}"
        );
    }
    let (code, engines) = support::http(port, "GET", &format!("{V1}/routerEngines/{MAP}"), "");
    assert_eq!(code, 200);
    for e in ["esp1", "esp2", "esp3"] {
        assert!(
            engines.contains(&format!("name=\"{e}\"")) && engines.contains("state=\"ready\""),
            "{engines}"
        );
    }
    assert!(
        !engines.contains("<esp-engine name=\"esp4\""),
        "the spare is not routed to: {engines}"
    );
    assert!(
        engines.contains("<spare-esp-engine name=\"esp4\"")
            && engines.contains("state=\"reserve\""),
        "the spare is listed as such: {engines}"
    );
    assert!(
        status.contains("\"spares\": [") && status.contains("\"serves\": null"),
        "{status}"
    );
    assert!(
        metrics.contains("edgecm_spare_engine{cluster=\"demo\",spare=\"esp4\",serves=\"\"} 1"),
        "{metrics}"
    );
    let put = |engine: &str, body: &str| {
        support::http(
            port,
            "PUT",
            &format!("{V1}/routerEngines/{MAP}/{engine}"),
            body,
        )
    };
    let (code, msg) = put("esp9", "<esp-engine name='esp9' host='127.0.0.1' port='1'");
    assert_eq!(code, 400, "{msg}");
    assert!(msg.contains("body:1:"), "the XML position: {msg}");
    let (code, msg) = put(
        "esp9",
        "<esp-engine name='esp9' host='127.0.0.1' port='1' ha_port='x'/>",
    );
    assert_eq!(code, 400, "{msg}");
    assert!(
        msg.contains("ha_port") && msg.contains("1 to 65535"),
        "{msg}"
    );
    let (code, msg) = put(
        "esp9",
        "<esp-engine name='esp8' host='127.0.0.1' port='1' ha_port='2'/>",
    );
    assert_eq!(code, 400, "{msg}");
    assert!(msg.contains("must agree"), "{msg}");
    let (code, msg) = put(
        "esp1",
        "<esp-engine name='esp1' host='127.0.0.1' port='1' ha_port='2'/>",
    );
    assert_eq!(code, 409, "{msg}");
    let (code, msg) = support::http(
        port,
        "DELETE",
        &format!("{V1}/routerEngines/{MAP}/esp7"),
        "",
    );
    assert_eq!(code, 404, "{msg}");
    // A spare's name: known to PUT (409), GET and DELETE alike.
    let (code, msg) = put(
        "esp4",
        "<esp-engine name='esp4' host='127.0.0.1' port='1' ha_port='2'/>",
    );
    assert_eq!(code, 409, "{msg}");
    let (code, msg) = support::http(port, "GET", &format!("{V1}/routerEngines/{MAP}/esp4"), "");
    assert_eq!(code, 200, "{msg}");
    assert!(msg.contains("<spare-esp-engine name=\"esp4\""), "{msg}");
    let (code, msg) = support::http(
        port,
        "DELETE",
        &format!("{V1}/routerEngines/{MAP}/esp4"),
        "",
    );
    assert_eq!(code, 200, "{msg}");
    assert!(msg.contains("spare 'esp4' removed"), "{msg}");
    let (code, msg) = support::http(port, "GET", &format!("{V1}/routerEngines/{MAP}/esp4"), "");
    assert_eq!(code, 404, "{msg}");
    let (code, msg) = support::http(port, "GET", &format!("{V1}/routerEngines/nomap"), "");
    assert_eq!(code, 404, "{msg}");
    assert!(msg.contains(MAP), "names the maps there are: {msg}");
    let (code, _) = support::http(port, "POST", &format!("{V1}/routerEngines/{MAP}/esp1"), "");
    assert_eq!(code, 405);
    let (code, _) = support::http(port, "GET", "/elsewhere", "");
    assert_eq!(code, 404);
    let status = sigterm_and_wait(&mut m);
    assert!(status.success(), "exit {status}; log:\n{}", s.log());
    assert_eq!(check_trades(&s), 0);
}

#[test]
fn an_engine_down_for_a_while_gets_its_events_when_back() {
    // Retries high: no failover to the spare, the events wait.
    let mut s = setup_with(
        "daemon-engine-down",
        10_000,
        &["-delay-ms", "2"],
        Some(4_000),
    );
    let mut m = s.manager_with("manager.log", &["-retries", "1000000", "-http", "0"]);
    let port = s.admin_port(&mut m);
    s.wait_until(|| !s.recorded(1, "trades").is_empty(), &mut m);
    s.engines[1].kill();
    let want = s.expected_by_slot();
    // The others get all theirs while esp2 is down.
    s.wait_until(
        || s.recorded(0, "trades").len() >= want[0] && s.recorded(2, "trades").len() >= want[2],
        &mut m,
    );
    let (_, engines) = support::http(port, "GET", &format!("{V1}/routerEngines/{MAP}/esp2"), "");
    assert!(
        !engines.contains("backlog=\"0\""),
        "esp2's events wait: {engines}"
    );
    s.engines[1].restart();
    s.wait_until(|| s.unique_trades() == 10_000, &mut m);
    // Each failed request (the kill, and time-outs on a slow machine) may have
    // reached the engine: at most that request is sent again.
    let (_, st) = support::http(port, "GET", &format!("{V1}/status"), "");
    let failed = status_sum(&st, "failed_requests");
    let status = sigterm_and_wait(&mut m);
    assert!(status.success(), "exit {status}");
    let d = check_trades(&s);
    assert!(
        d <= (failed + 1) * per_request(),
        "{d} duplicates: more than one request per failed request ({failed})"
    );
    assert!(s.recorded(3, "trades").is_empty(), "no spare was used");
}

/// A metric's value from `GET /metrics`.
fn metric(port: u16, name: &str) -> u64 {
    let (_, m) = support::http(port, "GET", &format!("{V1}/metrics"), "");
    m.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{m}"))
}

#[test]
fn at_the_state_max_sources_pause_and_nothing_is_lost() {
    // esp2 down from the start: its events hold every segment, so the journal
    // fills to -state-max, and the source must wait rather than drop or grow.
    let trades = 20_000; // about 1.7 MB of journal: past 1m with esp2 down
    let mut s = setup("daemon-state-max", trades);
    s.engines[1].kill();
    let mut m = s.manager_with(
        "manager.log",
        &["-retries", "1000000", "-http", "0", "-state-max", "1m"],
    );
    let port = s.admin_port(&mut m);
    s.wait_until(
        || {
            s.log()
                .contains("source 'trades': paused, the journal is full")
        },
        &mut m,
    );
    assert_eq!(metric(port, "edgecm_journal_bytes_max"), 1 << 20);
    let bytes = metric(port, "edgecm_journal_bytes");
    assert!(bytes <= 1 << 20, "{bytes} bytes: past -state-max");
    assert!(
        s.unique_trades() < trades as usize,
        "the source really waited"
    );
    s.engines[1].restart();
    s.wait_until(|| s.unique_trades() == trades as usize, &mut m);
    assert!(metric(port, "edgecm_journal_bytes") <= 1 << 20);
    let status = sigterm_and_wait(&mut m);
    assert!(status.success(), "exit {status}");
    check_trades(&s);
    assert!(s.log().contains("source 'trades': resumed"));
}

#[test]
fn a_failed_engine_is_replaced_by_the_spare_which_gets_its_keys() {
    let mut s = setup("daemon-spare", 5_000);
    s.engines[1].kill();
    let mut m = s.manager_with("manager.log", &["-retries", "2"]);
    s.wait_until(|| s.unique_trades() == 5_000, &mut m);
    let status = sigterm_and_wait(&mut m);
    assert!(status.success(), "exit {status}");
    // Slot 1's trades all went to the spare (esp4), the others where they hash.
    let d = check_trades_placed(&s, |e, slot| e == slot || (slot == 1 && e == 3));
    assert_eq!(d, 0);
    let want = s.expected_by_slot();
    assert_eq!(s.trades_by_slot(3), [0, want[1], 0]);
    let log = s.log();
    assert!(
        log.contains("engine 'esp2' failed; spare 'esp4'"),
        "the takeover is logged:\n{log}"
    );
    // The spare also got the reference data of the slot it took (deployed, then routed).
    assert!(!s.recorded(3, "venues").is_empty() || log.contains("venues"));
}

#[test]
fn router_engines_put_and_delete_while_traffic_flows() {
    let s = setup_with(
        "daemon-put-delete",
        12_000,
        &["-delay-ms", "3"],
        Some(3_000),
    );
    let rec5 = s.dir.join("esp5");
    let esp5 = StandIn::start(0, &["-record", rec5.to_str().unwrap(), "-delay-ms", "3"]);
    let mut m = s.manager_with("manager.log", &["-http", "0"]);
    let port = s.admin_port(&mut m);
    s.wait_until(|| s.trades_recorded() >= 500, &mut m);
    let body = format!(
        "<esp-engine name='esp5' host='127.0.0.1' port='1' ha_port='{}'/>",
        esp5.port
    );
    let (code, msg) = support::http(
        port,
        "PUT",
        &format!("{V1}/routerEngines/{MAP}/esp5"),
        &body,
    );
    assert_eq!(code, 201, "{msg}\n{}", s.log());
    let esp5_trades = || {
        std::fs::read_to_string(rec5.join("surveillance.watch.trades.csv"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    s.wait_until(|| esp5_trades() > 0, &mut m);
    let (code, msg) = support::http(
        port,
        "DELETE",
        &format!("{SASESP}/routerEngines/{MAP}/esp1"),
        "",
    );
    assert_eq!(code, 200, "{msg}");
    assert!(msg.contains("re-routed"), "{msg}");
    let (_, engines) = support::http(port, "GET", &format!("{V1}/routerEngines/{MAP}"), "");
    assert!(
        !engines.contains("name=\"esp1\"") && engines.contains("name=\"esp5\""),
        "{engines}"
    );
    // Every trade arrives somewhere, at least once.
    let all = || {
        let mut ids: Vec<u64> = (0..4)
            .flat_map(|e| s.recorded(e, "trades"))
            .chain(
                std::fs::read_to_string(rec5.join("surveillance.watch.trades.csv"))
                    .unwrap_or_default()
                    .lines()
                    .map(str::to_string),
            )
            .filter_map(|l| l.split(',').nth(2).and_then(|v| v.parse().ok()))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    };
    s.wait_until(|| all() == 12_000, &mut m);
    let esp1_after = s.recorded(0, "trades").len();
    let status = sigterm_and_wait(&mut m);
    assert!(status.success(), "exit {status}");
    assert_eq!(s.recorded(0, "trades").len(), esp1_after);
    let log = s.log();
    assert!(log.contains("engine 'esp1' removed"), "{log}");
}

const SASESP: &str = "/SASESP";

#[test]
fn sigterm_drains_the_queue_within_the_grace_period() {
    let s = setup_with("daemon-drain", 6_000, &["-delay-ms", "50"], None);
    let mut m = s.manager_with("manager.log", &["-http", "0", "-grace", "120000"]);
    let port = s.admin_port(&mut m);
    // Once the file is read (all accepted), stop while engines still have a backlog.
    s.wait_until(
        || {
            let (_, st) = support::http(port, "GET", &format!("{V1}/status"), "");
            st.contains("\"name\": \"trades\", \"state\": \"finished\"")
        },
        &mut m,
    );
    let before = s.trades_recorded();
    assert!(
        before < 6_000,
        "the engines had caught up already: nothing to drain"
    );
    let status = sigterm_and_wait(&mut m);
    assert!(status.success(), "exit {status}");
    assert_eq!(check_trades(&s), 0);
    assert_eq!(
        s.unique_trades(),
        6_000,
        "drained: {before} were recorded at SIGTERM"
    );
    let log = s.log();
    assert!(log.contains("SIGTERM") || log.contains("Term"), "{log}");
}

/// `role`, `epoch` and the engines' `acked` sum in a `GET status` answer.
fn role_of(port: u16) -> Option<(String, u64, usize)> {
    let (code, body) =
        std::panic::catch_unwind(|| support::http(port, "GET", &format!("{V1}/status"), ""))
            .ok()?;
    if code != 200 {
        return None;
    }
    let field = |f: &str| {
        body.split(&format!("\"{f}\": "))
            .nth(1)
            .and_then(|r| r.split([',', '\n']).next())
            .map(|v| v.trim_matches('"').to_string())
    };
    Some((
        field("role")?,
        field("epoch")?.parse().ok()?,
        status_sum(&body, "acked"),
    ))
}

/// A leader and two standbys on the trades source and three stand-ins;
/// the leader is SIGKILLed at a random moment mid-stream; the first standby
/// leads, resumes each engine after what the leader reported delivered, and
/// every trade is recorded at least once.
#[test]
fn leader_killed_mid_stream_a_standby_takes_over_and_nothing_is_lost() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let trials = env("EDGECM_FAILOVER_TRIALS", 10);
    let trades = env("EDGECM_FAILOVER_EVENTS", 6_000);
    let rate = env("EDGECM_FAILOVER_RATE", 5_000);
    let tick = env("EDGECM_FAILOVER_TICK", 200).to_string();
    let retries = "2";
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut figures = Vec::new();
    for t in 0..trials {
        let s = setup_with("daemon-failover", trades, &[], Some(rate as u32));
        let common = ["-http", "0", "-ticktime", &tick, "-retries", retries];
        let mut leader = s.manager_in("leader", "manager.log", &common);
        let lport = s.admin_port_in("manager.log", &mut leader);
        let at = format!("127.0.0.1:{lport}");
        let mut standbys: Vec<(Child, u16)> = (1..=2)
            .map(|k| {
                let log = format!("standby{k}.log");
                let mut args = common.to_vec();
                args.extend(["-standby", &at]);
                let mut c = s.manager_in(&format!("standby{k}"), &log, &args);
                let p = s.admin_port_in(&log, &mut c);
                (c, p)
            })
            .collect();
        // Both standbys listed by the leader before the kill.
        s.wait_until(
            || {
                support::http(lport, "GET", &format!("{V1}/status"), "")
                    .1
                    .matches("\"address\": \"127.0.0.1:")
                    .count()
                    >= 4 // its own address, and three in the list
            },
            &mut leader,
        );
        if t == 0 {
            let (code, body) = support::http(
                lport,
                "PUT",
                &format!("{V1}/routerEngines/{MAP}/esp9"),
                "<esp-engine name='esp9' host='127.0.0.1' port='1' ha_port='1'/>",
            );
            assert_eq!(code, 409, "{body}");
            assert!(body.contains("2 standby managers are registered"), "{body}");
            let (code, body) = support::http(lport, "POST", &format!("{V1}/cluster"), "hello");
            assert_eq!(code, 400, "{body}");
            assert!(body.contains("body:1: starts with \"hello\""), "{body}");
        }
        let kill_at = 1 + (xorshift(&mut rng) % (trades * 8 / 10)) as usize;
        s.wait_trades(kill_at, &mut leader);
        let metrics = support::http(lport, "GET", &format!("{V1}/metrics"), "").1;
        let metric = |name: &str| -> f64 {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0.0)
        };
        let traffic = metric("edgecm_failover_sent_bytes_total") / metric("edgecm_uptime_seconds");
        let _ = leader.kill();
        let killed = Instant::now();
        let _ = leader.wait();
        // Failover time: the kill → a standby leads and an engine acknowledged it.
        let mut took = None;
        let mut new_leader = 0;
        let ports: Vec<u16> = standbys.iter().map(|s| s.1).collect();
        s.wait_until(
            || {
                for (k, p) in ports.iter().enumerate() {
                    if let Some((role, _, acked)) = role_of(*p) {
                        if role == "leader" && acked > 0 {
                            took.get_or_insert(killed.elapsed());
                            new_leader = k;
                            return true;
                        }
                    }
                }
                false
            },
            &mut standbys[0].0,
        );
        s.wait_until(
            || s.unique_trades() == trades as usize,
            &mut standbys[new_leader].0,
        );
        // Both standbys may have stood (slow machines): the one at the lower
        // epoch steps down once it hears the other. Wait, bounded, for one
        // leader that the other standby follows at the leader's epoch.
        let mut epoch = 0;
        s.wait_until(
            || {
                let (Some(a), Some(b)) = (role_of(ports[0]), role_of(ports[1])) else {
                    return false;
                };
                let leader = match (a.0.as_str(), b.0.as_str()) {
                    ("leader", "standby") => 0,
                    ("standby", "leader") => 1,
                    _ => return false,
                };
                (new_leader, epoch) = (leader, a.1);
                a.1 == b.1
            },
            &mut standbys[0].0,
        );
        let d = check_trades(&s);
        let log = s.log_of(&format!("standby{}.log", new_leader + 1));
        assert!(
            log.contains(&format!("role=STANDBY=>LEADER epoch={epoch}")),
            "{log}"
        );
        for (c, _) in &mut standbys {
            let _ = c.kill();
            let _ = c.wait();
        }
        let took = took.unwrap();
        eprintln!(
            "failover trial {t}: killed after {kill_at} trades recorded; standby{} led epoch {epoch} after {} ms; {d} duplicate trades; the leader had sent {traffic:.0} B/s of failover messages",
            new_leader + 1,
            took.as_millis()
        );
        // In flight (-inflight requests per engine) plus what was
        // acknowledged after the last update reached the standby and one
        // block per engine.
        assert!(
            d <= 3 * ((INFLIGHT + 1) * per_request() + 64),
            "{d} duplicates in one failover"
        );
        figures.push((took.as_millis(), d));
        let _ = std::fs::remove_dir_all(&s.dir);
    }
    let n = figures.len().max(1) as u128;
    eprintln!(
        "failover over {trials} trials (ticktime {tick}, retries {retries}, {rate} trades/s): mean {} ms, max {} ms to the first publish; duplicates per failover mean {}, max {}",
        figures.iter().map(|f| f.0).sum::<u128>() / n,
        figures.iter().map(|f| f.0).max().unwrap_or(0),
        figures.iter().map(|f| f.1 as u128).sum::<u128>() / n,
        figures.iter().map(|f| f.1).max().unwrap_or(0),
    );
}
