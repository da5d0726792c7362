//! Every Cluster Manager config we ship or keep in `../shared` run end to
//! end through the real binary against stand-in engines on 127.0.0.1, not
//! only through `check`: the seed's own shape (`<project name='test'>` with
//! `<project-name>project</project-name>`) must deliver.
//!
//! Each config is rewritten into a scratch folder: engines point at the
//! stand-ins (`host` 127.0.0.1, `ha_port` a stand-in's port, no `tls`), and
//! every path becomes absolute (input files that name gateway paths such as
//! `/var/log/...` are generated in the scratch folder).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::StandIn;

/// A config rewritten for this machine, its stand-ins and its manager.
struct Run {
    dir: PathBuf,
    /// Kept alive for the run (killed when dropped).
    _engines: Vec<StandIn>,
    manager: Option<Child>,
}

/// Rewrites `config` (paths relative to its folder) into `dir`: engine
/// hosts and ports to `ports` (in document order), `tls` dropped, project
/// URLs and `fsname`s made absolute; `inputs` maps an `fsname` as written
/// to the file that replaces it.
fn rewrite(config: &Path, dir: &Path, ports: &[u16], inputs: &BTreeMap<&str, PathBuf>) -> PathBuf {
    let text = std::fs::read_to_string(config).unwrap();
    let base = config.parent().unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    // (range, replacement), applied back to front.
    let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    let mut engine = 0;
    for n in doc.descendants().filter(|n| n.is_element()) {
        match n.tag_name().name() {
            "esp-engine" => {
                for a in n.attributes() {
                    match a.name() {
                        "host" => edits.push((a.range_value(), "127.0.0.1".into())),
                        "ha_port" => edits.push((a.range_value(), ports[engine].to_string())),
                        "port" => edits.push((a.range_value(), "1".into())),
                        "tls" => edits.push((a.range(), String::new())),
                        _ => {}
                    }
                }
                engine += 1;
            }
            "project-url" => {
                let t = n.first_child().unwrap();
                let rel = t.text().unwrap().trim().strip_prefix("file://").unwrap();
                let abs = edgecm::config::join_clean(base, rel);
                edits.push((t.range(), format!("file://{}", abs.display())));
            }
            "property" if n.attribute("name") == Some("fsname") => {
                let t = n.first_child().unwrap();
                let name = t.text().unwrap().trim();
                let path = match inputs.get(name) {
                    Some(p) => p.clone(),
                    None => edgecm::config::join_clean(base, name),
                };
                edits.push((t.range(), path.display().to_string()));
            }
            _ => {}
        }
    }
    assert_eq!(engine, ports.len(), "{}: engines", config.display());
    edits.sort_by_key(|e| std::cmp::Reverse(e.0.start));
    let mut out = text.clone();
    for (r, s) in edits {
        out.replace_range(r, &s);
    }
    let path = dir.join(config.file_name().unwrap());
    std::fs::write(&path, out).unwrap();
    path
}

impl Run {
    /// Starts `engines` stand-ins, rewrites `config` for them and starts a
    /// manager on it.
    fn start(
        name: &str,
        config: &Path,
        engines: usize,
        inputs: &BTreeMap<&str, PathBuf>,
        standin_args: &[&str],
    ) -> Run {
        let dir = support::scratch(name);
        let engines: Vec<StandIn> = (1..=engines)
            .map(|n| {
                let rec = dir.join(format!("esp{n}"));
                let mut args = vec!["-record", rec.to_str().unwrap()];
                args.extend_from_slice(standin_args);
                StandIn::start(0, &args)
            })
            .collect();
        let ports: Vec<u16> = engines.iter().map(|e| e.port).collect();
        let cfg = rewrite(config, &dir, &ports, inputs);
        let log = std::fs::File::create(dir.join("manager.log")).unwrap();
        let manager = Command::new(env!("CARGO_BIN_EXE_edgecm"))
            .arg("-cluster-manager")
            .arg(&cfg)
            .arg("-state-dir")
            .arg(dir.join("state"))
            .args(["-ticktime", "200", "-loglevel", "info"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the manager");
        Run {
            dir,
            _engines: engines,
            manager: Some(manager),
        }
    }

    /// Lines engine `e` (0-based) recorded for `project.cq.window`.
    fn recorded(&self, e: usize, window: &str) -> Vec<String> {
        std::fs::read_to_string(self.dir.join(format!("esp{}/{window}.csv", e + 1)))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("manager.log")).unwrap_or_default()
    }

    /// Waits (bounded) until `done`, failing early when the manager exits.
    fn wait_until(&mut self, what: &str, mut done: impl FnMut(&Run) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !done(self) {
            if let Some(Ok(Some(s))) = self.manager.as_mut().map(Child::try_wait) {
                panic!("the manager exited early: {s}; log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "not reached: {what}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(mut m) = self.manager.take() {
            let _ = m.kill();
            let _ = m.wait();
        }
    }
}

/// Non-empty lines of a file (the events a CSV source holds).
fn lines_of(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

#[test]
fn the_seeds_broker_config_delivers_under_its_project_name() {
    let shared = support::shared();
    let cfg = shared.join("corpus/cm/broker-local.xml");
    let esp = shared.join("corpus/esp");
    let trades = lines_of(&esp.join("esppy__broker_surv_trades.csv"));
    let venues = lines_of(&esp.join("esppy__broker_surv_venues.csv"));
    let restricted = lines_of(&shared.join("corpus/cm/restricted.csv"));
    let mut run = Run::start("cfg-broker-local", &cfg, 4, &BTreeMap::new(), &[]);
    // `<project name='test'>` is the config's handle; engines know it as
    // `project` (its project-name), which is what project-func names.
    run.wait_until("every trade recorded", |r| {
        (0..4)
            .map(|e| r.recorded(e, "project.query.trades").len())
            .sum::<usize>()
            >= trades
    });
    for e in 0..3 {
        assert_eq!(
            run.recorded(e, "project.query.venuesSource").len(),
            venues,
            "esp{} venues",
            e + 1
        );
        assert_eq!(
            run.recorded(e, "project.query.restrictedSource").len(),
            restricted,
            "esp{} restricted",
            e + 1
        );
    }
    let mut ids: Vec<u64> = (0..4)
        .flat_map(|e| run.recorded(e, "project.query.trades"))
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    ids.sort_unstable();
    let n = ids.len();
    ids.dedup();
    assert_eq!((n, ids.len()), (trades, trades), "every trade once");
    assert!(
        !std::fs::read_dir(run.dir.join("esp1")).unwrap().any(|f| f
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("test.")),
        "nothing is published under the config's handle 'test'"
    );
    let log = run.log();
    assert!(log.contains("project 'project' deployed"), "{log}");
}

#[test]
fn the_demo_config_delivers() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("targets/demo");
    let dir = support::scratch("cfg-demo-input");
    // The demo's own placeholders stand where the rewrite puts the stand-ins.
    let mut trades = std::fs::File::create(dir.join("trades.csv")).unwrap();
    edgecm::demo::trades_csv(3_000, &mut trades).unwrap();
    let inputs = BTreeMap::from([("trades.csv", dir.join("trades.csv"))]);
    let mut run = Run::start("cfg-demo", &demo.join("broker-demo.xml"), 4, &inputs, &[]);
    run.wait_until("every trade recorded", |r| {
        (0..4)
            .map(|e| r.recorded(e, "surveillance.watch.trades").len())
            .sum::<usize>()
            >= 3_000
    });
    let venues = lines_of(&demo.join("venues.csv"));
    for e in 0..3 {
        assert_eq!(run.recorded(e, "surveillance.watch.venues").len(), venues);
    }
}

#[test]
fn the_gateway_example_config_delivers() {
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("targets/examples");
    let dir = support::scratch("cfg-example-input");
    let devices = dir.join("devices.csv");
    let readings = dir.join("readings.csv");
    let mut d = String::new();
    for i in 0..20 {
        d.push_str(&format!("i,n,dev{i},site{},{}.5\n", i % 3, 50 + i));
    }
    std::fs::write(&devices, d).unwrap();
    let mut r = String::new();
    for i in 0..500 {
        r.push_str(&format!(
            "i,n,{i},dev{},temp,{}.25,2026-12-01 10:{:02}:{:02}\n",
            i % 20,
            i % 40,
            (i / 60) % 60,
            i % 60
        ));
    }
    std::fs::write(&readings, r).unwrap();
    let inputs = BTreeMap::from([
        ("/var/lib/edgecm/input/devices.csv", devices),
        ("/var/log/sensors/readings.csv", readings),
    ]);
    let mut run = Run::start("cfg-example", &ex.join("cluster.xml"), 4, &inputs, &[]);
    // Redundancy 2: each reading and each device on two engines.
    run.wait_until("every reading on two engines", |r| {
        (0..4)
            .map(|e| r.recorded(e, "sensors.cq.readings").len())
            .sum::<usize>()
            >= 1_000
    });
    let devices: usize = (0..4)
        .map(|e| run.recorded(e, "sensors.cq.devices").len())
        .sum();
    assert_eq!(devices, 40, "each device on two engines");
    for e in 0..3 {
        assert!(
            !run.recorded(e, "sensors.cq.readings").is_empty(),
            "esp{} gets readings",
            e + 1
        );
    }
}
