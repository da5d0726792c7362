//! The command line, in both dash styles, and the binary's exit codes.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use edgecm::cli::{self, Command as Sub, DEFAULT_BUFFERSIZE};

const SEED_STYLE: &[&str] = &[
    "-http",
    "12347",
    "-pubsub",
    "12348",
    "-cluster-manager",
    "file://config.xml",
    "-auth",
    "-output-projects",
    "p.xml",
    "-output-routers",
    "r.xml",
    "-standby",
    "localhost:12341",
    "-ticktime",
    "30000",
    "-retries",
    "5",
    "-timeout",
    "1500",
    "-buffersize",
    "64k",
    "-state-dir",
    "/tmp/s",
    "-loglevel",
    "debug",
];

#[test]
fn single_and_double_dash_long_options_parse_the_same() {
    let single = cli::parse(SEED_STYLE).unwrap_or_else(|e| panic!("{}", e.output));
    let double: Vec<String> = SEED_STYLE
        .iter()
        .map(|a| {
            if a.starts_with('-') {
                format!("-{a}")
            } else {
                a.to_string()
            }
        })
        .collect();
    let double = cli::parse(&double).unwrap_or_else(|e| panic!("{}", e.output));
    assert_eq!(single, double);

    assert_eq!(
        single.http,
        Some("127.0.0.1:12347".parse::<SocketAddr>().unwrap())
    );
    assert_eq!(single.pubsub, Some(12348));
    assert_eq!(single.cluster_manager.as_deref(), Some("file://config.xml"));
    assert!(single.auth);
    assert_eq!(single.output_projects, Some(PathBuf::from("p.xml")));
    assert_eq!(single.output_routers, Some(PathBuf::from("r.xml")));
    assert_eq!(single.standby.as_deref(), Some("localhost:12341"));
    assert_eq!(
        (single.ticktime, single.retries, single.timeout),
        (30000, 5, 1500)
    );
    assert_eq!(single.buffersize, 64 * 1024);
    assert_eq!(single.state_dir, PathBuf::from("/tmp/s"));
    assert_eq!(single.loglevel, log::LevelFilter::Debug);
}

#[test]
fn defaults_are_the_seeds() {
    let c = cli::parse(&["-http", "1", "-cluster-manager", "x.xml"]).unwrap();
    assert_eq!((c.ticktime, c.retries, c.timeout), (1000, 2, 3000));
    assert_eq!(c.buffersize, DEFAULT_BUFFERSIZE);
    assert_eq!(c.buffersize, 1_048_576, "1m");
    assert_eq!(c.state_dir, PathBuf::from("/var/lib/edgecm"));
    assert_eq!(c.loglevel, log::LevelFilter::Info);
    assert!(!c.auth && c.standby.is_none() && c.command.is_none());
}

#[test]
fn journal_options_take_sizes_and_say_what_is_accepted() {
    let c = cli::parse(&[
        "-state-max",
        "512m",
        "-commit-ms",
        "20",
        "-commit-bytes",
        "256k",
        "-inflight",
        "3",
    ])
    .unwrap();
    assert_eq!(c.inflight, 3);
    assert_eq!(c.state_max, Some(512 << 20));
    assert_eq!((c.commit_ms, c.commit_bytes), (20, 256 << 10));
    let c = cli::parse(&["-http", "1"]).unwrap();
    assert_eq!(
        (c.state_max, c.commit_ms, c.commit_bytes),
        (None, 50, 1 << 20)
    );
    assert_eq!(c.inflight, edgecm::limits::DEFAULT_INFLIGHT);
    for (opt, bad, accepted) in [
        ("-state-max", "100k", "at least 1m"),
        ("-state-max", "lots", "k, m or g suffix"),
        ("-commit-ms", "0", "from 1 to 10000"),
        ("-commit-bytes", "-1", "k, m or g suffix"),
        ("-inflight", "0", "from 1 to 64"),
        ("-inflight", "65", "from 1 to 64"),
    ] {
        let e = cli::parse(&[opt, bad]).expect_err(bad);
        assert!(e.output.contains(accepted), "{opt} {bad}: {}", e.output);
    }
}

#[test]
fn http_takes_a_port_or_an_address() {
    let c = cli::parse(&["--http", "0.0.0.0:8080"]).unwrap();
    assert_eq!(c.http, Some("0.0.0.0:8080".parse().unwrap()));
    let c = cli::parse(&["-http", "[::1]:9"]).unwrap();
    assert_eq!(c.http, Some("[::1]:9".parse().unwrap()));
    let c = cli::parse(&["-http", "0"]).unwrap();
    assert_eq!(
        c.http,
        Some("127.0.0.1:0".parse().unwrap()),
        "0: any free port"
    );
    for bad in ["70000", "host:port", ""] {
        let e = cli::parse(&["-http", bad]).expect_err(bad);
        assert!(
            e.output.contains("accepted: PORT or ADDR:PORT"),
            "{bad}: {}",
            e.output
        );
    }
}

#[test]
fn buffersize_takes_k_m_g_suffixes_and_rejects_junk() {
    assert_eq!(cli::parse_size("1m"), Ok(1 << 20));
    assert_eq!(cli::parse_size("2K"), Ok(2048));
    assert_eq!(cli::parse_size("1g"), Ok(1 << 30));
    assert_eq!(cli::parse_size("500"), Ok(500));
    for bad in ["0", "m", "1t", "-1", "99999999999999999999g"] {
        assert!(cli::parse_size(bad).is_err(), "{bad}");
    }
}

#[test]
fn check_subcommand_takes_either_dash_style() {
    for args in [
        ["check", "-cluster-manager", "file://c.xml"],
        ["check", "--cluster-manager", "file://c.xml"],
    ] {
        let c = cli::parse(&args).unwrap();
        let Some(Sub::Check(chk)) = c.command else {
            panic!("check expected")
        };
        assert_eq!(chk.cluster_manager, "file://c.xml");
    }
}

#[test]
fn values_that_look_like_options_are_left_alone() {
    // Only our own option names are rewritten to the double-dash form.
    assert_eq!(
        cli::normalize(&["-http", "-x", "-state-dir", "-v"]),
        ["--http", "-x", "--state-dir", "-v"]
    );
}

fn edgecm(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_edgecm"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run edgecm")
}

/// Runs `edgecm check` on `url`, asserts exit 0, returns (stdout, stderr).
fn check_ok(url: &str) -> (String, String) {
    let out = edgecm(&["check", "-cluster-manager", url]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    (stdout, stderr)
}

#[test]
fn no_arguments_prints_usage_and_exits_2() {
    let out = edgecm(&[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Usage: edgecm") && err.contains("--cluster-manager"),
        "{err}"
    );
}

#[test]
fn check_of_broker_local_exits_0_with_the_summary() {
    let (stdout, _) = check_ok("file://../shared/corpus/cm/broker-local.xml");
    for want in [
        "valid (esp-cluster-manager 'broker-manager')",
        "trades [fs csv] file ../shared/corpus/esp/esppy__broker_surv_trades.csv blocksize=50",
        "map tradesMap: trades -> hash(broker) -> project/query/trades (13 fields) opcode=insert",
        "map venuesMap: venuesSource -> multicast -> project/query/venuesSource",
        "1. G1: venuesSource(finished), restrictedSource(finished)",
        "2. G2: trades(finished) after G1",
        "engine esp1 127.0.0.1:41001 (pubsub 41003)",
        "spare esp4 127.0.0.1:51001 (pubsub 51003)",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
}

#[test]
fn check_of_a_broken_config_exits_1_with_file_line_col() {
    let out = edgecm(&[
        "check",
        "-cluster-manager",
        "file://../shared/corpus/cm/seed-sample.xml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error: ../shared/corpus/cm/seed-sample.xml:15:17: raw-source 'trades': fstype 'binary'"), "{err}");
    assert!(err.contains("error: ../shared/corpus/cm/seed-sample.xml:6:21: project file ../shared/corpus/cm/broker.xml"), "{err}");
    assert!(err.contains("2 errors;"), "{err}");
}

#[test]
fn check_of_a_missing_file_or_bad_url_exits_1_and_says_why() {
    let out = edgecm(&["check", "-cluster-manager", "file://no/such.xml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such.xml:1:1: cannot read"));
    let out = edgecm(&["check", "-cluster-manager", "http://host/c.xml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("scheme 'http' is not supported"));
}

#[test]
fn a_bad_option_value_exits_2_with_what_is_accepted() {
    let out = edgecm(&["-http", "1", "-loglevel", "loud"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("accepted: off, error, warn, info, debug, trace"));
}

#[test]
fn the_example_gateway_config_checks_clean_where_its_inputs_exist() {
    // On a machine without the example's input files, check says which.
    let out = edgecm(&[
        "check",
        "-cluster-manager",
        "file://targets/examples/cluster.xml",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error: raw-source 'devices': fsname /var/lib/edgecm/input/devices.csv cannot be read")
            && err.contains("warning: raw-source 'readings': fsname /var/log/sensors/readings.csv does not exist yet (growinginputfile"),
        "{err}"
    );
    // With them (the gateway's paths made local), it checks clean.
    let dir = support::scratch("cli-example");
    let ex = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("targets/examples");
    std::fs::copy(
        ex.join("sensors-project.xml"),
        dir.join("sensors-project.xml"),
    )
    .unwrap();
    std::fs::write(dir.join("devices.csv"), "i,n,dev1,site1,50.5\n").unwrap();
    std::fs::write(dir.join("readings.csv"), "").unwrap();
    let text = std::fs::read_to_string(ex.join("cluster.xml"))
        .unwrap()
        .replace("/var/lib/edgecm/input/devices.csv", "devices.csv")
        .replace("/var/log/sensors/readings.csv", "readings.csv");
    std::fs::write(dir.join("cluster.xml"), text).unwrap();
    let (stdout, stderr) = check_ok(dir.join("cluster.xml").to_str().unwrap());
    assert!(stderr.is_empty(), "{stderr}");
    assert!(
        stdout.contains("map readingsMap: readings -> durable hash(device) -> sensors/cq/readings"),
        "{stdout}"
    );
    assert!(stdout.contains("cloud redundancy=2"), "{stdout}");
}

#[test]
fn queue_reports_backlog_age_positions_and_damage_without_repairing() {
    use edgecm::journal::{DirStorage, Journal, Limits, NewRecord, Position};
    use edgecm::route::EngineSet;
    let state = support::scratch("queue-cmd");
    let dir = state.clone();
    let mut j = Journal::open(DirStorage::open(&dir).unwrap(), Limits::default()).unwrap();
    j.restore_engine(0).unwrap();
    j.restore_engine(1).unwrap();
    for k in 0..4u64 {
        let rec = NewRecord {
            dest: EngineSet::from_bits(0b11),
            source: 1,
            target: 0,
            position: Position::File {
                dev: 7,
                ino: 42,
                offset: 100 * (k + 1),
            },
            count: 10,
            time_ms: 1_000 + k,
            origin: edgecm::journal::Origin::NONE,
        };
        j.append(rec, b"payload").unwrap();
    }
    j.sync().unwrap();
    j.ack(0, 20, 20);
    j.sync().unwrap();
    drop(j);
    // Tear the tail: half a record appended after the last one.
    let seg = dir.join(format!("{:020}.seg", 0));
    let mut bytes = std::fs::read(&seg).unwrap();
    let len = bytes.len();
    bytes.extend_from_within(..40);
    std::fs::write(&seg, &bytes).unwrap();

    let out = edgecm(&["queue", "-state-dir", state.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "segments 1, records 4, events 40",
        "next sequence 40",
        "0: cursor 20, backlog 20 events, oldest",
        "1: cursor 0, backlog 40 events, oldest",
        "1: file dev 7 inode 42 offset 400",
        "torn tail of 40 bytes in the last segment",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
    assert_eq!(
        std::fs::metadata(&seg).unwrap().len() as usize,
        len + 40,
        "queue must not repair"
    );

    let out = edgecm(&["queue", "-state-dir", "/nonexistent/state"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no journal here"));
}

#[test]
fn queue_reads_the_state_dir_the_daemon_wrote() {
    let dir = support::scratch("queue-demo");
    let out = edgecm(&[
        "demo",
        "-trades",
        "500",
        "-dir",
        dir.to_str().unwrap(),
        "-keep",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = edgecm(&["queue", "-state-dir", dir.join("state").to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "segments 1, records ",
        "backlog 0 events, oldest none",
        "damage: none",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
}

#[test]
fn install_script_provisions_a_root_and_keeps_an_existing_config() {
    let root = support::scratch("install-root");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("targets/install.sh");
    let run = || {
        std::process::Command::new("bash")
            .arg(&script)
            .arg("--root")
            .arg(&root)
            .arg("--binary")
            .arg(env!("CARGO_BIN_EXE_edgecm"))
            .output()
            .expect("run install.sh")
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("does not check yet") && said.contains("still names the example hosts"),
        "install says why it would not start: {said}"
    );
    assert!(root.join("etc/default/edgecm").is_file());
    for f in [
        "usr/local/bin/edgecm",
        "etc/systemd/system/edgecm.service",
        "etc/edgecm/cluster.xml",
        "etc/edgecm/sensors-project.xml",
    ] {
        assert!(root.join(f).is_file(), "{f} not installed");
    }
    let unit = std::fs::read_to_string(root.join("etc/systemd/system/edgecm.service")).unwrap();
    assert!(unit.contains("Type=notify") && unit.contains("StateDirectory=edgecm"));
    let mine =
        std::fs::read_to_string(root.join("etc/edgecm/cluster.xml")).unwrap() + "<!-- mine -->\n";
    std::fs::write(root.join("etc/edgecm/cluster.xml"), &mine).unwrap();
    let out = run();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("kept the existing"));
    assert_eq!(
        std::fs::read_to_string(root.join("etc/edgecm/cluster.xml")).unwrap(),
        mine
    );
}

#[test]
fn deb_script_packages_the_binary_unit_and_config_as_conffiles() {
    let out_dir = support::scratch("deb-out");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("targets/deb.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .env("EDGECM_DEB_COMPRESSION", "none")
        .args([
            "--binary",
            env!("CARGO_BIN_EXE_edgecm"),
            "--arch",
            "arm64",
            "--out",
        ])
        .arg(&out_dir)
        .output()
        .expect("run deb.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = out_dir.join(format!("edgecm_{}_arm64.deb", env!("CARGO_PKG_VERSION")));
    let field = |f: &str| {
        let o = std::process::Command::new("dpkg-deb")
            .arg("-f")
            .arg(&deb)
            .arg(f)
            .output()
            .expect("dpkg-deb -f");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(field("Package"), "edgecm");
    assert_eq!(field("Architecture"), "arm64");
    assert_eq!(field("Version"), env!("CARGO_PKG_VERSION"));
    let root = out_dir.join("root");
    let x = std::process::Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&root)
        .status()
        .unwrap();
    assert!(x.success());
    assert_eq!(
        std::fs::read(root.join("usr/bin/edgecm")).unwrap(),
        std::fs::read(env!("CARGO_BIN_EXE_edgecm")).unwrap()
    );
    let unit = std::fs::read_to_string(root.join("lib/systemd/system/edgecm.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/edgecm "), "{unit}");
    assert!(!unit.contains("/usr/local/bin"));
    for f in [
        "etc/edgecm/cluster.xml",
        "etc/edgecm/sensors-project.xml",
        "etc/default/edgecm",
        "usr/share/doc/edgecm/copyright",
        "usr/share/doc/edgecm/changelog.gz",
    ] {
        assert!(root.join(f).is_file(), "{f} not packaged");
    }
    assert!(
        unit.contains("EnvironmentFile=-/etc/default/edgecm") && unit.contains("$EDGECM_OPTS"),
        "{unit}"
    );
    let ctl = out_dir.join("ctl");
    let e = std::process::Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(&ctl)
        .status()
        .unwrap();
    assert!(e.success());
    assert_eq!(
        std::fs::read_to_string(ctl.join("conffiles")).unwrap(),
        "/etc/edgecm/cluster.xml\n/etc/edgecm/sensors-project.xml\n/etc/default/edgecm\n"
    );
    let postinst = std::fs::read_to_string(ctl.join("postinst")).unwrap();
    assert!(
        postinst.contains("edgecm check -cluster-manager /etc/edgecm/cluster.xml")
            && postinst.contains("example"),
        "the .deb checks the config as install.sh does: {postinst}"
    );
}

#[test]
fn http_admin_is_the_4_2_spelling_of_http() {
    let a = cli::parse(&["-http-admin", "12347", "-cluster-manager", "c.xml"]).unwrap();
    let b = cli::parse(&["-http", "12347", "-cluster-manager", "c.xml"]).unwrap();
    assert_eq!(a, b);
    let c = cli::parse(&["--http-admin", "0.0.0.0:1", "-cluster-manager", "c.xml"]).unwrap();
    assert_eq!(c.http, Some("0.0.0.0:1".parse().unwrap()));
}

/// The demo's project and reference files copied into `dir`, and its config
/// with engine N's ports set to N (a config that checks; nothing listens).
fn demo_config_in(dir: &Path) -> String {
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("targets/demo");
    for f in ["surveillance.xml", "venues.csv", "restricted.csv"] {
        std::fs::copy(demo.join(f), dir.join(f)).unwrap();
    }
    let mut text = std::fs::read_to_string(demo.join("broker-demo.xml")).unwrap();
    for n in 1..=4 {
        text = text
            .replace(&format!("@ESP{n}@"), &n.to_string())
            .replace(&format!("@PUBSUB{n}@"), &n.to_string());
    }
    text
}

#[test]
fn standby_with_round_robin_is_refused_and_says_why() {
    let dir = support::scratch("cli-standby-rr");
    let mut text = demo_config_in(&dir);
    std::fs::write(dir.join("trades.csv"), "").unwrap();
    // The trades map becomes round-robin (no hash fields).
    let start = text.find("<hash-destination").unwrap();
    let fields = text[start..].find("<fields>").unwrap() + start;
    let fields_end = text[fields..].find("</fields>").unwrap() + fields + "</fields>".len();
    text.replace_range(fields..fields_end, "");
    text = text.replacen("<hash-destination", "<roundrobin-destination", 1);
    text = text.replacen("</hash-destination>", "</roundrobin-destination>", 1);
    let cfg = dir.join("rr.xml");
    std::fs::write(&cfg, text).unwrap();
    let cfg = cfg.to_str().unwrap();
    let state = dir.join("state");
    let out = edgecm(&[
        "-cluster-manager",
        cfg,
        "-http",
        "0",
        "-standby",
        "127.0.0.1:9",
        "-state-dir",
        state.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("-standby: failover needs routing")
            && err.contains("round-robin")
            && err.contains("trades"),
        "{err}"
    );
    let (stdout, _) = check_ok(cfg);
    assert!(
        stdout.contains("round-robin"),
        "the config itself is fine: {stdout}"
    );
}

#[test]
fn check_fails_on_a_missing_file_a_stuck_orchestration_and_an_unwritable_state_dir() {
    let dir = support::scratch("cli-preflight");
    let base = demo_config_in(&dir);
    let run = |name: &str, text: &str, extra: &[&str]| {
        let cfg = dir.join(name);
        std::fs::write(&cfg, text).unwrap();
        let mut args = vec!["check", "-cluster-manager", cfg.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = edgecm(&args);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // trades.csv is missing.
    let (code, err) = run("missing.xml", &base, &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("raw-source 'trades': fsname") && err.contains("trades.csv cannot be read"),
        "{err}"
    );
    std::fs::write(dir.join("trades.csv"), "").unwrap();
    let (code, err) = run("ok.xml", &base, &[]);
    assert_eq!(code, Some(0), "{err}");
    // A group waits for a socket source to finish: it never does.
    let socket = base.replacen(
        "<property name='fsname'>venues.csv</property>",
        "<property name='fsname'>:28099</property>",
        1,
    );
    assert_ne!(socket, base);
    let (code, err) = run("stuck.xml", &socket, &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("waits for 'venues' (state='finished')")
            && err.contains("a socket source never finishes"),
        "{err}"
    );
    // A state dir that cannot be written (a file stands where it should be).
    std::fs::write(dir.join("not-a-dir"), "").unwrap();
    let state = dir.join("not-a-dir").join("state");
    let (code, err) = run("ok.xml", &base, &["-state-dir", state.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("not writable"), "{err}");
}

#[test]
fn version_short_help_and_option_equals_value() {
    for v in ["--version", "-version", "-V"] {
        let out = edgecm(&[v]);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("edgecm {}", env!("CARGO_PKG_VERSION"))
        );
    }
    let out = edgecm(&["-h"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.starts_with("Usage: edgecm"), "{help}");
    assert!(!help.contains("{{"), "no doubled braces: {help}");
    let a = cli::parse(&["--ticktime=500", "-retries=3", "-cluster-manager=c.xml"]).unwrap();
    let b = cli::parse(&[
        "-ticktime",
        "500",
        "-retries",
        "3",
        "-cluster-manager",
        "c.xml",
    ])
    .unwrap();
    assert_eq!(a, b);
    // A value that holds '=' is left whole.
    let c = cli::parse(&["-cluster-manager", "file://a=b.xml"]).unwrap();
    assert_eq!(c.cluster_manager.as_deref(), Some("file://a=b.xml"));
}

/// Logs: times when not under journald, journald's `<N>` form under it
/// (`JOURNAL_STREAM`), one JSON object per line with `-logformat json`.
#[test]
fn logs_have_times_outside_journald_and_json_on_request() {
    use std::io::BufRead;
    let run = |env: Option<&str>, format: &str| -> Vec<String> {
        let dir = support::scratch("cli-logs");
        let err = std::fs::File::create(dir.join("stderr")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_edgecm"));
        cmd.args([
            "-loglevel",
            "debug",
            "-logformat",
            format,
            "engine",
            "-http",
            "0",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(err)
        .env_remove("JOURNAL_STREAM");
        if let Some(v) = env {
            cmd.env("JOURNAL_STREAM", v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line.trim().rsplit(':').next().unwrap().parse().unwrap();
        // A request the stand-in refuses, logged at debug.
        let (code, _) = support::http(port, "GET", "/nowhere", "");
        assert_eq!(code, 404);
        let _ = child.kill();
        let _ = child.wait();
        let text = std::fs::read_to_string(dir.join("stderr")).unwrap();
        text.lines().map(str::to_string).collect()
    };
    let text = run(None, "text");
    assert!(!text.is_empty());
    for l in &text {
        let (time, rest) = l.split_once(' ').unwrap();
        assert!(
            time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "{l}"
        );
        assert!(
            rest.starts_with("debug: ") || rest.starts_with("info: "),
            "{l}"
        );
    }
    let journal = run(Some("8:12345"), "text");
    assert!(
        journal
            .iter()
            .all(|l| l.starts_with("<7>debug: ") || l.starts_with("<6>info: ")),
        "{journal:?}"
    );
    let json = run(None, "json");
    assert!(!json.is_empty());
    for l in &json {
        assert!(
            l.starts_with("{\"time\":\"")
                && l.contains("\",\"level\":\"")
                && l.contains(",\"target\":\"edgecm")
                && l.ends_with("\"}"),
            "{l}"
        );
    }
    let bad = edgecm(&["-logformat", "xml", "engine", "-http", "0"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("accepted: text, json"));
}
