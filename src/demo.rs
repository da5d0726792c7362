//! `edgecm demo`: the whole product on one machine, in seconds. It starts
//! three stand-in engines and a spare (`edgecm engine` child processes on
//! free 127.0.0.1 ports), writes a broker-surveillance example shaped like
//! the seed's sample (config, project and reference data from
//! `targets/demo/`, trades generated here), runs the manager until every
//! event is acknowledged, and prints what each engine received.

use crate::config::Config;
use crate::daemon::{Core, Options};
use async_executor::LocalExecutor;
use async_io::Timer;
use futures_lite::future;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CONFIG: &str = include_str!("../targets/demo/broker-demo.xml");
const PROJECT: &str = include_str!("../targets/demo/surveillance.xml");
const VENUES: &str = include_str!("../targets/demo/venues.csv");
const RESTRICTED: &str = include_str!("../targets/demo/restricted.csv");

const BROKERS: [&str; 12] = [
    "Alder", "Birch", "Cedar", "Dogwood", "Elm", "Fir", "Ginkgo", "Hazel", "Ivy", "Juniper",
    "Kapok", "Larch",
];
const SYMBOLS: [&str; 10] = [
    "ABCD", "EFGH", "IJKL", "KLMN", "MNOP", "QRST", "UVWX", "WXYZ", "BRIX", "CORE",
];

/// Writes `n` trades: `i,n,id,broker,symbol,venue,price,quantity,tradeTime`.
pub fn trades_csv(n: u64, out: &mut impl Write) -> std::io::Result<()> {
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let mut w = std::io::BufWriter::new(out);
    for id in 1..=n {
        let ms = id * 37;
        let secs = 9 * 3600 + (ms / 1000) % (15 * 3600);
        writeln!(
            w,
            "i,n,{id},{},{},{},{}.{:02},{},2026-01-05 {:02}:{:02}:{:02}.{:06}",
            BROKERS[rng.usize(..BROKERS.len())],
            SYMBOLS[rng.usize(..SYMBOLS.len())],
            rng.u32(1..=6),
            rng.u32(5..500),
            rng.u32(0..100),
            rng.u32(1..100) * 100,
            secs / 3600,
            (secs / 60) % 60,
            secs % 60,
            (ms % 1000) * 1000
        )?;
    }
    w.flush()
}

struct Engines(Vec<(Child, u16)>);

impl Drop for Engines {
    fn drop(&mut self) {
        for (c, _) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_standin(exe: &Path, record: &Path) -> Result<(Child, u16), String> {
    let mut child = Command::new(exe)
        .args(["-loglevel", "warn", "engine", "-http", "0", "-record"])
        .arg(record)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start a stand-in engine ({}): {e}", exe.display()))?;
    let mut line = String::new();
    let stdout = child.stdout.take().expect("piped");
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("stand-in engine: {e}"))?;
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("the stand-in engine did not say where it listens: {line:?}"))?;
    Ok((child, port))
}

fn lines_in(path: &Path) -> u64 {
    std::fs::read(path)
        .map(|b| memchr::memchr_iter(b'\n', &b).count() as u64)
        .unwrap_or(0)
}

/// Runs the demo in `dir` (created, and removed afterwards unless `keep`).
pub fn run(trades: u64, dir: Option<PathBuf>, keep: bool) -> Result<(), String> {
    let dir = dir.unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        std::env::temp_dir().join(format!("edgecm-demo-{}-{nanos}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let r = run_in(trades, &dir);
    if keep {
        println!("demo files kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    r
}

fn run_in(trades: u64, dir: &Path) -> Result<(), String> {
    let io = |e: std::io::Error| format!("{}: {e}", dir.display());
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my own binary: {e}"))?;
    println!("edgecm demo: starting 3 stand-in engines and a spare on 127.0.0.1 (stand-ins, not ESP engines)");
    let mut engines = Engines(Vec::new());
    for n in 1..=4 {
        engines
            .0
            .push(start_standin(&exe, &dir.join(format!("esp{n}")))?);
    }
    let mut config = CONFIG.to_string();
    for (n, (_, port)) in engines.0.iter().enumerate() {
        config = config
            .replace(&format!("@ESP{}@", n + 1), &port.to_string())
            .replace(
                &format!("@PUBSUB{}@", n + 1),
                &port.saturating_add(1).to_string(),
            );
    }
    std::fs::write(dir.join("broker-demo.xml"), config).map_err(io)?;
    std::fs::write(dir.join("surveillance.xml"), PROJECT).map_err(io)?;
    std::fs::write(dir.join("venues.csv"), VENUES).map_err(io)?;
    std::fs::write(dir.join("restricted.csv"), RESTRICTED).map_err(io)?;
    let mut f = std::fs::File::create(dir.join("trades.csv")).map_err(io)?;
    trades_csv(trades, &mut f).map_err(io)?;
    drop(f);
    let config = Config::load(dir.join("broker-demo.xml").to_str().unwrap_or_default())
        .map_err(|e| format!("the demo config does not load:\n{e}"))?;
    println!(
        "config {} (hash on broker over esp1..esp3, venues and restricted to all; trades start after both finished)",
        dir.join("broker-demo.xml").display()
    );
    let mut options = Options::new(dir.join("state"));
    options.ticktime_ms = 500;
    options.exit_when_drained = true;
    let core = Core::new(config, options)?;
    let ex = LocalExecutor::new();
    let started = Instant::now();
    let progress = {
        let core = core.clone();
        async move {
            loop {
                Timer::after(Duration::from_secs(1)).await;
                match core.look().await {
                    Some(s) => print_progress(&s, started),
                    None => return,
                }
            }
        }
    };
    let end = future::block_on(ex.run(core.run(&ex, None, progress)));
    print_progress(&end, started);
    let secs = started.elapsed().as_secs_f64();
    println!();
    println!(
        "{:<6} {:>8} {:>8} {:>10} {:>10} {:>8}",
        "engine", "venues", "restricted", "trades", "acked", "state"
    );
    let mut total_trades = 0;
    for (i, h) in end.engines.iter().enumerate() {
        let rec = dir.join(format!("esp{}", i + 1));
        let count = |w: &str| lines_in(&rec.join(format!("surveillance.watch.{w}.csv")));
        let st = &h.status;
        total_trades += count("trades");
        println!(
            "{:<6} {:>8} {:>8} {:>10} {:>10} {:>8}",
            h.slot,
            count("venues"),
            count("restricted"),
            count("trades"),
            st.acked_events,
            st.state
        );
    }
    let spare = lines_in(&dir.join("esp4/surveillance.watch.trades.csv"));
    println!(
        "{:<6} {:>8} {:>8} {:>10} {:>10} {:>8}",
        "esp4", "-", "-", spare, "-", "spare"
    );
    println!(
        "{total_trades} of {trades} trades delivered in {secs:.1} s ({:.0} events/s end to end)",
        trades as f64 / secs
    );
    if let Some(kib) = peak_rss_kib() {
        println!("manager peak RSS {kib} KiB (VmHWM; the stand-ins are other processes)");
    }
    if total_trades < trades {
        return Err(format!(
            "only {total_trades} of {trades} trades were recorded"
        ));
    }
    Ok(())
}

/// This process's peak resident set (Linux; under qemu-user, the emulator's).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn print_progress(s: &crate::admin::snapshot::Snapshot, started: Instant) {
    let read: u64 = s.sources.iter().map(|s| s.accepted).sum();
    let mut line = format!("{:>5.1}s  read {read:>7}", started.elapsed().as_secs_f64());
    for e in &s.engines {
        line.push_str(&format!(
            "  {} {} acked {:>6} backlog {:>5}",
            e.slot, e.status.state, e.status.acked_events, e.backlog
        ));
    }
    println!("{line}");
}
