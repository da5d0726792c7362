//! Every Cluster Manager config we ship or keep in `../shared` run end to
//! end through the real binary against stand-in engines on 127.0.0.1, not
//! only through `check`: the seed's own shape (`<project name='test'>` with
//! `<project-name>project</project-name>`) must deliver.
//!
//! Each config is rewritten into a scratch folder (`support::cm`).

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use support::cm::Run;

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
    let mut run = Run::start("cfg-broker-local", &cfg, 4, &BTreeMap::new(), &[], &[]);
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
    // Trade 1's stamp was written `2016-01-16 08:30:00.000000` with the
    // source's dateformat; the engine got microseconds since 1970.
    let first = (0..4)
        .flat_map(|e| run.recorded(e, "project.query.trades"))
        .find(|l| l.split(',').nth(2) == Some("1"))
        .unwrap();
    assert!(first.ends_with(",1452933000000000"), "{first}");
}

#[test]
fn engine_dateformat_sends_times_in_that_form() {
    let shared = support::shared();
    let cfg = shared.join("corpus/cm/broker-local.xml");
    let trades = lines_of(&shared.join("corpus/esp/esppy__broker_surv_trades.csv"));
    let f = "%Y-%m-%d %H:%M:%S.%f";
    let mut run = Run::start(
        "cfg-engine-dateformat",
        &cfg,
        4,
        &BTreeMap::new(),
        &["-dateformat", f],
        &["-engine-dateformat", f],
    );
    run.wait_until("every trade recorded", |r| {
        (0..4)
            .map(|e| r.recorded(e, "project.query.trades").len())
            .sum::<usize>()
            >= trades
    });
    let first = (0..4)
        .flat_map(|e| run.recorded(e, "project.query.trades"))
        .find(|l| l.split(',').nth(2) == Some("1"))
        .unwrap();
    assert!(first.ends_with(",2016-01-16 08:30:00.000000"), "{first}");
}

#[test]
fn the_demo_config_delivers() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("targets/demo");
    let dir = support::scratch("cfg-demo-input");
    // The demo's own placeholders stand where the rewrite puts the stand-ins.
    let mut trades = std::fs::File::create(dir.join("trades.csv")).unwrap();
    edgecm::demo::trades_csv(3_000, &mut trades).unwrap();
    let inputs = BTreeMap::from([("trades.csv", dir.join("trades.csv"))]);
    let mut run = Run::start(
        "cfg-demo",
        &demo.join("broker-demo.xml"),
        4,
        &inputs,
        &[],
        &[],
    );
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
    let mut run = Run::start("cfg-example", &ex.join("cluster.xml"), 4, &inputs, &[], &[]);
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

#[test]
fn transactional_sources_send_each_record_as_one_transaction() {
    let shared = support::shared();
    let cfg = shared.join("corpus/cm/broker-local.xml");
    let trades = lines_of(&shared.join("corpus/esp/esppy__broker_surv_trades.csv"));
    let edit = |t: String| {
        let at = "<property name='blocksize'>50</property>";
        t.replace(
            at,
            &format!("{at}<property name='transactional'>true</property>"),
        )
    };
    let mut run = Run::start_edited(
        "cfg-transactional",
        &cfg,
        4,
        &BTreeMap::new(),
        &[],
        &[],
        &edit,
    );
    run.wait_until("every trade recorded", |r| {
        (0..4)
            .map(|e| r.recorded(e, "project.query.trades").len())
            .sum::<usize>()
            >= trades
    });
    let mut requests = 0;
    for e in 0..3 {
        for l in run.lines(e, "wire.log") {
            if l.starts_with("inject project/query/trades ") {
                requests += 1;
                assert!(l.ends_with(" transaction"), "{l}");
                let n: usize = l.split(' ').nth(2).unwrap().parse().unwrap();
                assert!(
                    n <= 50,
                    "one record (a block of at most 50) per transaction: {l}"
                );
            } else if l.starts_with("inject ") {
                assert!(
                    !l.ends_with(" transaction"),
                    "venues are not transactional: {l}"
                );
            }
        }
    }
    assert!(requests >= trades / 50, "{requests} requests");
}
