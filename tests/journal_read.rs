//! Reading for the engines through the read-ahead (`limits::JOURNAL_READ_AHEAD`):
//! one read of durable bytes serves the records after the one asked for,
//! every record still reads back as written (small, larger than the
//! read-ahead, written again after a failed commit cut it back), and two engines reading the same segment keep their own.

mod support;

use edgecm::journal::{Journal, Limits, MemStorage, ReadPos, Storage};
use edgecm::limits::JOURNAL_READ_AHEAD;

use support::journal_rec as rec;

fn open(storage: MemStorage) -> Journal<MemStorage> {
    let mut j = Journal::open(storage, Limits::default()).unwrap();
    for e in 0..2 {
        j.restore_engine(e).unwrap();
    }
    j.sync().unwrap();
    j
}

/// The payload of the `i`th record: its own bytes, `len` of them.
fn payload(i: u32, len: usize) -> Vec<u8> {
    (0..len).map(|k| (i as usize * 31 + k) as u8).collect()
}

/// The payloads of every record engine `e` can read from `pos` on.
fn read_all(j: &mut Journal<MemStorage>, e: u8, pos: &mut ReadPos) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while let Some(_h) = j.read_next(e, pos, &mut buf).unwrap() {
        out.push(buf.clone());
    }
    out
}

#[test]
fn records_come_from_one_read_per_stretch_and_read_back_as_written() {
    let mut j = open(MemStorage::new(3));
    // 200 records of 200 bytes for engine 0, every third also for engine 1,
    // and one larger than the read-ahead in the middle.
    let mut want = [Vec::new(), Vec::new()];
    for i in 0..200u32 {
        let len = if i == 100 {
            JOURNAL_READ_AHEAD + 5_000
        } else {
            200
        };
        let dest = if i % 3 == 0 { 0b11 } else { 0b01 };
        let p = payload(i, len);
        j.append(rec(dest, 1), &p).unwrap();
        want[0].push(p.clone());
        if i % 3 == 0 {
            want[1].push(p);
        }
    }
    j.sync().unwrap();
    let reads = j.storage().reads;
    let (mut p0, mut p1) = (j.reader(0), j.reader(1));
    // Interleaved: the two readers' windows are their own.
    let mut got = [Vec::new(), Vec::new()];
    let mut buf = Vec::new();
    loop {
        let a = j
            .read_next(0, &mut p0, &mut buf)
            .unwrap()
            .map(|_| buf.clone());
        let b = j
            .read_next(1, &mut p1, &mut buf)
            .unwrap()
            .map(|_| buf.clone());
        if a.is_none() && b.is_none() {
            break;
        }
        got[0].extend(a);
        got[1].extend(b);
    }
    assert_eq!(got[0].len(), 200);
    assert!(
        got[0] == want[0] && got[1] == want[1],
        "records read back as written"
    );
    let bytes: usize = want[0].iter().map(|p| p.len() + 100).sum();
    let reads = j.storage().reads - reads;
    // Each reader reads the segment in stretches (plus the large record
    // and the stretch cut at it); four system calls a record before.
    let most = 2 * (bytes / JOURNAL_READ_AHEAD + 4) as u64;
    assert!(
        reads <= most,
        "{reads} reads for 2 x 200 records, at most {most}"
    );
}

#[test]
fn a_reader_that_caught_up_reads_what_a_failed_commit_wrote_again() {
    let mut j = open(MemStorage::new(4));
    j.append(rec(0b01, 1), &payload(0, 300)).unwrap();
    j.sync().unwrap();
    let mut pos = j.reader(0);
    assert_eq!(read_all(&mut j, 0, &mut pos), vec![payload(0, 300)]);
    // A commit that fails half written is cut back to the durable end; the
    // records then go again, other bytes at the same offsets.
    let s = j.storage();
    let used: u64 = s.list().unwrap().iter().map(|f| s.len(f).unwrap()).sum();
    // The reserve file is given up first (contract 4): no room even then.
    let reserve = s.len("reserve").unwrap_or(0);
    j.storage_mut().capacity = used - reserve + 150;
    j.append(rec(0b01, 1), &payload(1, 400)).unwrap();
    let next = j.next_seq();
    assert!(
        !matches!(j.sync(), Ok(s) if s == next),
        "the disk is full: the record waits in RAM"
    );
    assert!(
        read_all(&mut j, 0, &mut pos).is_empty(),
        "nothing new is durable"
    );
    j.storage_mut().capacity = u64::MAX;
    assert_eq!(j.sync().unwrap(), next);
    assert_eq!(read_all(&mut j, 0, &mut pos), vec![payload(1, 400)]);
}

#[test]
fn a_status_peek_at_the_oldest_record_leaves_the_senders_read_ahead_alone() {
    let mut j = open(MemStorage::new(5));
    // About 60 KiB: the reader's window, further on, no longer holds the
    // first record.
    for i in 0..200u32 {
        j.append(rec(0b01, 1), &payload(i, 200)).unwrap();
    }
    j.sync().unwrap();
    let mut pos = j.reader(0);
    let mut buf = Vec::new();
    for _ in 0..190 {
        j.read_next(0, &mut pos, &mut buf).unwrap().unwrap();
    }
    // Nothing acknowledged: the oldest record is the first, behind the reader.
    assert!(j.oldest_unacked_ms(0).unwrap().is_some());
    let reads = j.storage().reads;
    let rest = read_all(&mut j, 0, &mut pos);
    assert_eq!(
        rest,
        (190..200).map(|i| payload(i, 200)).collect::<Vec<_>>()
    );
    assert_eq!(
        j.storage().reads,
        reads,
        "the last ten records come from the read-ahead filled before the peek"
    );
}
