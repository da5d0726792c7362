//! Journal figures (issue 5), on the real filesystem:
//!
//!   cargo bench --bench journal                 # all phases; ~1 GiB written under target/
//!
//! 1. Append + sync throughput for 100-byte events in records of 50, with the
//!    default group commit (sync every 50 ms or 1 MiB, whichever first), one
//!    engine acknowledging each group after its sync (so cursors are written
//!    too): events/s, MB/s, bytes written per payload byte, fsyncs/s.
//! 2. A 1 GiB journal with 10 M events unacknowledged, then a fresh process
//!    (this binary with `--recover DIR`) opens it: recovery time and that
//!    process's peak RSS (VmHWM), i.e. the backlog is not in RAM.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use edgecm::journal::{
    block::BlockWriter, DirStorage, Journal, Limits, NewRecord, Position, Storage,
};
use edgecm::route::EngineSet;

const EVENT_BYTES: usize = 100;
const BLOCK: u32 = 50;
const COMMIT_EVERY: Duration = Duration::from_millis(50);
const COMMIT_BYTES: usize = 1 << 20;

/// Counts what reaches the disk.
struct Counting {
    inner: DirStorage,
    bytes: u64,
    fsyncs: u64,
}

impl Storage for Counting {
    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }
    fn len(&self, name: &str) -> io::Result<u64> {
        self.inner.len(name)
    }
    fn read_at(&mut self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_at(name, offset, buf)
    }
    fn append(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        self.bytes += data.len() as u64;
        self.inner.append(name, data)
    }
    fn sync(&mut self, name: &str) -> io::Result<()> {
        self.fsyncs += 1;
        self.inner.sync(name)
    }
    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        self.inner.truncate(name, len)
    }
    fn remove(&mut self, name: &str) -> io::Result<()> {
        self.inner.remove(name)
    }
    fn replace(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        self.bytes += data.len() as u64;
        self.fsyncs += 2; // the file and its folder
        self.inner.replace(name, data)
    }
}

fn block() -> BlockWriter {
    // 100-byte events: opcode, flags, field count, length, and a 96-byte field.
    let field = [b'x'; EVENT_BYTES - 4];
    let mut w = BlockWriter::default();
    for _ in 0..BLOCK {
        w.push(b'i', b'n', [Some(&field[..])].into_iter());
    }
    assert_eq!(w.buf.len(), EVENT_BYTES * BLOCK as usize);
    w
}

fn rec(seq: u64) -> NewRecord {
    NewRecord {
        dest: EngineSet::from_bits(1),
        source: 0,
        target: 0,
        position: Position::Socket { seq },
        count: BLOCK,
        time_ms: 0,
        origin: edgecm::journal::Origin::NONE,
    }
}

fn fresh(dir: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    dir.to_path_buf()
}

fn throughput(dir: &Path, events: u64) {
    let storage = Counting {
        inner: DirStorage::open(dir).unwrap(),
        bytes: 0,
        fsyncs: 0,
    };
    let mut j = Journal::open(storage, Limits::default()).unwrap();
    j.restore_engine(0).unwrap();
    let w = block();
    let start = Instant::now();
    let mut last_commit = Instant::now();
    let mut pending = 0usize;
    let mut seq = 0;
    while seq < events {
        j.append(rec(seq), &w.buf).unwrap();
        seq += u64::from(BLOCK);
        pending += w.buf.len();
        if pending >= COMMIT_BYTES || last_commit.elapsed() >= COMMIT_EVERY {
            let synced = j.sync().unwrap();
            let c = j.cursor(0).unwrap();
            j.ack(0, synced, synced - c); // a fast engine: acked right away
            pending = 0;
            last_commit = Instant::now();
        }
    }
    j.sync().unwrap();
    let secs = start.elapsed().as_secs_f64();
    let s = j.storage();
    let payload = seq * EVENT_BYTES as u64;
    println!(
        "journal append+sync: {:.0} events/s, {:.1} MB/s payload, {:.3} bytes written per payload byte, {:.1} fsyncs/s ({} events, {:.2} s)",
        seq as f64 / secs,
        payload as f64 / secs / 1e6,
        s.bytes as f64 / payload as f64,
        s.fsyncs as f64 / secs,
        seq,
        secs
    );
}

fn fill(dir: &Path, events: u64) {
    let limits = Limits {
        engine_events_max: u64::MAX,
        bytes_max: 2 << 30,
        ..Limits::default()
    };
    let mut j = Journal::open(DirStorage::open(dir).unwrap(), limits).unwrap();
    j.restore_engine(0).unwrap();
    let w = block();
    let mut seq = 0;
    while seq < events {
        j.append(rec(seq), &w.buf).unwrap();
        seq += u64::from(BLOCK);
        if seq % (10_000 * u64::from(BLOCK)) == 0 {
            j.sync().unwrap();
        }
    }
    j.sync().unwrap();
    println!(
        "journal filled: {} events queued, {} bytes in {} segments",
        seq,
        j.bytes(),
        j.segment_count()
    );
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn recover(dir: &Path) {
    let start = Instant::now();
    let mut j = Journal::open(DirStorage::open(dir).unwrap(), Limits::default()).unwrap();
    j.restore_engine(0).unwrap();
    let secs = start.elapsed().as_secs_f64();
    // Read a few blocks, as a sender would, to include the read path.
    let mut pos = j.reader(0);
    let mut buf = Vec::new();
    for _ in 0..100 {
        j.read_next(0, &mut pos, &mut buf).unwrap();
    }
    println!(
        "journal recovery: {:.3} s for {} bytes ({} records, {} events); peak RSS {} KiB with {} events queued",
        secs,
        j.bytes(),
        j.recovery.records,
        j.recovery.events,
        vm_hwm_kib(),
        j.backlog(0)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--recover") {
        recover(Path::new(&args[i + 1]));
        return;
    }
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-journal");
    throughput(&fresh(&base.join("throughput")), 5_000_000);
    let big = fresh(&base.join("big"));
    fill(&big, 10_000_000);
    // Cold-ish: ask the kernel to drop clean caches when we may (root); the figure says which.
    let dropped = std::fs::write("/proc/sys/vm/drop_caches", "1").is_ok();
    println!("page cache dropped before recovery: {dropped}");
    let st = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--recover", big.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    let _ = std::fs::remove_dir_all(&base);
}
