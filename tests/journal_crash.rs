//! Real processes, real faults (STYLE.md 15): a child appends numbered events
//! to a journal in a real folder and prints each sync; the parent SIGKILLs it
//! at a random moment, reopens the journal, and checks that every event
//! reported synced before the kill is there exactly once and in order.
//! 50 trials on one folder, so each recovery also recovers the last one's.

mod support;

use std::io::{BufRead, BufReader, Lines};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use edgecm::journal::{block, DirStorage, Journal, Limits, NewRecord, Position};
use edgecm::route::{hash::splitmix64, EngineSet};

const CHILD_ENV: &str = "EDGECM_JOURNAL_CRASH_CHILD";

fn limits() -> Limits {
    // Small segments so that rolling and reclaim happen during the trials.
    Limits {
        segment_max: 64 * 1024,
        bytes_max: 1 << 30,
        engine_events_max: u64::MAX,
    }
}

/// The child: append blocks of numbered events (event n's single field is
/// "n"), sync, print "synced N", and every fifth round ack all that is synced.
/// Stops by itself after a bounded number of events or seconds.
#[test]
fn child_process_entry_point() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut j = Journal::open(DirStorage::open(Path::new(&dir)).unwrap(), limits()).unwrap();
    j.restore_engine(0).unwrap();
    let start = Instant::now();
    let mut w = block::BlockWriter::default();
    let mut round = 0u64;
    while start.elapsed() < Duration::from_secs(20) && j.next_seq() < 5_000_000 {
        round += 1;
        for _ in 0..(1 + splitmix64(round) % 8) {
            let first = j.next_seq();
            let count = 1 + (splitmix64(first) % 40) as u32;
            w.clear();
            for n in first..first + u64::from(count) {
                let text = n.to_string();
                w.push(b'i', b'n', [Some(text.as_bytes())].into_iter());
            }
            let rec = NewRecord {
                dest: EngineSet::from_bits(1),
                source: 0,
                target: 0,
                position: Position::Socket {
                    seq: first + u64::from(count),
                },
                count,
                time_ms: 0,
                origin: edgecm::journal::Origin::NONE,
            };
            j.append(rec, &w.buf).unwrap();
        }
        let synced = j.sync().unwrap();
        println!("synced {synced}");
        if round.is_multiple_of(5) {
            // As a sender would after the engine answered 2xx for everything synced.
            let c = j.cursor(0).unwrap();
            j.ack(0, synced, synced - c);
        }
    }
}

/// Starts the writer child on `dir`; returns it and its stdout lines.
fn spawn_writer(dir: &Path) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_entry_point",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

/// A record read back: first sequence, end sequence, the numbers its events carry.
type ReadRecord = (u64, u64, Vec<u64>);

/// Recovers `dir` (`what` names the case in panics) and reads every record for
/// engine 0 from its cursor, with the numbers its events carry. Returns the
/// cursor, the records, and the journal's next sequence.
fn read_back(dir: &Path, what: &str) -> (u64, Vec<ReadRecord>, u64) {
    let mut j = Journal::open(DirStorage::open(dir).unwrap(), limits())
        .unwrap_or_else(|e| panic!("{what}: recovery failed: {e}"));
    j.restore_engine(0).unwrap();
    let cursor = j.cursor(0).unwrap();
    let mut pos = j.reader(0);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while let Some(h) = j.read_next(0, &mut pos, &mut buf).unwrap() {
        let numbers: Vec<u64> = block::events(&buf)
            .map(|ev| {
                let ev = ev.unwrap_or_else(|_| {
                    panic!("{what}: a record returned as valid holds a malformed payload")
                });
                std::str::from_utf8(ev.fields().next().unwrap().unwrap())
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
            })
            .collect();
        out.push((h.first_seq, h.end_seq(), numbers));
    }
    (cursor, out, j.next_seq())
}

/// Every event in the journal for engine 0, from its cursor: numbers, in order.
fn recorded(dir: &Path) -> (u64, Vec<u64>, u64) {
    let (cursor, records, next) = read_back(dir, "after SIGKILL");
    let mut out = Vec::new();
    for (first, end, numbers) in records {
        assert_eq!(
            numbers,
            (first..end).collect::<Vec<_>>(),
            "event number = its sequence"
        );
        out.extend(numbers);
    }
    (cursor, out, next)
}

#[test]
fn sigkill_at_random_moments_loses_no_synced_event_and_repeats_none() {
    let dir = support::scratch("journal-crash");
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut trials = 0;
    let mut kills_mid_run = 0;
    for trial in 0..50u64 {
        assert!(Instant::now() < deadline, "50 trials did not fit in 240 s");
        let (mut child, lines) = spawn_writer(&dir);
        let wanted = 1 + splitmix64(trial) % 30;
        let mut last_synced = None;
        for line in lines.take(wanted as usize) {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("synced ") {
                last_synced = Some(n.trim().parse::<u64>().unwrap());
            }
        }
        child.kill().unwrap(); // SIGKILL, possibly mid-append or mid-fsync
        let status = child.wait().unwrap();
        if status.code().is_none() {
            kills_mid_run += 1;
        }
        let (cursor, events, next) = recorded(&dir);
        // From the record holding the cursor (it may start before it) to the end.
        let start = events.first().copied().unwrap_or(cursor);
        assert!(
            start <= cursor,
            "trial {trial}: events before the cursor are gone, not after it"
        );
        let expect: Vec<u64> = (start..next).collect();
        assert_eq!(
            events, expect,
            "trial {trial}: events from the cursor are each sequence exactly once, in order"
        );
        if let Some(s) = last_synced {
            assert!(
                next >= s,
                "trial {trial}: {s} events were reported synced, only {next} recovered"
            );
        }
        trials += 1;
    }
    assert_eq!(trials, 50);
    assert!(
        kills_mid_run >= 40,
        "most trials must kill a running writer, got {kills_mid_run}"
    );
}

/// Copies every file of `from` into a fresh `to` (racing the writer: a copy
/// may catch a segment mid-append, as a power cut would).
fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        // A file deleted by reclaim between listing and copying is simply absent.
        let _ = std::fs::copy(e.path(), to.join(e.file_name()));
    }
}

/// Each record's events must be exactly its sequence numbers, records strictly
/// increasing. Returns the number of records read.
fn recover_and_check(dir: &Path, what: &str) -> usize {
    let (_, records, _) = read_back(dir, what);
    let mut last_end = 0;
    for (first, end, numbers) in &records {
        assert!(*first >= last_end, "{what}: records overlap or go back");
        assert_eq!(
            numbers,
            &(*first..*end).collect::<Vec<_>>(),
            "{what}: a damaged record was returned as valid"
        );
        last_end = *end;
    }
    records.len()
}

#[test]
fn power_cut_copies_truncated_or_corrupted_recover_without_panic_or_bad_records() {
    let live = support::scratch("journal-powercut-live");
    let copy = support::scratch("journal-powercut-copy");
    let (mut child, mut lines) = spawn_writer(&live);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut checked = 0;
    let mut records_seen = 0;
    for snap in 0..20u64 {
        assert!(
            Instant::now() < deadline,
            "20 snapshots did not fit in 120 s"
        );
        // Let the writer make progress between snapshots.
        for _ in 0..3 {
            if lines.next().is_none() {
                break;
            }
        }
        copy_dir(&live, &copy);
        records_seen += recover_and_check(&copy, &format!("snapshot {snap} as copied"));

        // Truncate a random file at a random offset.
        copy_dir(&live, &copy);
        let files: Vec<_> = std::fs::read_dir(&copy)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        let f = &files[(splitmix64(snap) % files.len() as u64) as usize];
        let len = std::fs::metadata(f).unwrap().len();
        let cut = if len == 0 {
            0
        } else {
            splitmix64(snap ^ 0x55) % len
        };
        std::fs::OpenOptions::new()
            .write(true)
            .open(f)
            .unwrap()
            .set_len(cut)
            .unwrap();
        recover_and_check(
            &copy,
            &format!("snapshot {snap}, {} cut at {cut}", f.display()),
        );

        // Corrupt random bytes in random files.
        copy_dir(&live, &copy);
        for k in 0..8u64 {
            let r = splitmix64(snap * 100 + k);
            let f = &files[(r % files.len() as u64) as usize];
            let Ok(mut bytes) = std::fs::read(copy.join(f.file_name().unwrap())) else {
                continue;
            };
            if bytes.is_empty() {
                continue;
            }
            let at = (splitmix64(r) % bytes.len() as u64) as usize;
            bytes[at] ^= 1 << (r % 8);
            std::fs::write(copy.join(f.file_name().unwrap()), bytes).unwrap();
        }
        recover_and_check(&copy, &format!("snapshot {snap} corrupted"));
        checked += 1;
    }
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(checked, 20);
    assert!(
        records_seen >= 20,
        "the snapshots held only {records_seen} records"
    );
    eprintln!(
        "power cut: {checked} snapshots, {records_seen} records read back from the plain copies"
    );
}
