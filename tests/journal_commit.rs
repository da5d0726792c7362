//! Group commit cost: acknowledgements ride in a cursor record ahead of the
//! commit's event records, so records and cursors take one fsync together;
//! the cursor file is rewritten only when the set of engines changes or a
//! cursor record no longer fits the last segment.

mod support;

use edgecm::journal::{Journal, Limits, MemStorage, Storage};

use support::journal_rec as rec;

fn open(storage: MemStorage, limits: Limits) -> Journal<MemStorage> {
    let mut j = Journal::open(storage, limits).unwrap();
    for e in 0..3 {
        j.restore_engine(e).unwrap();
    }
    j
}

#[test]
fn a_commit_with_acks_and_records_costs_one_fsync_and_survives_a_crash() {
    let mut j = open(MemStorage::new(1), Limits::default());
    j.sync().unwrap(); // the new engines' cursor file
    for _ in 0..4 {
        j.append(rec(0b111, 10), &[1; 50]).unwrap();
    }
    j.sync().unwrap();
    for round in 0..20u64 {
        let before = j.storage().syncs;
        j.ack(0, 10 * (round + 1), 10);
        j.ack(1, 5 * (round + 1), 5);
        j.append(rec(0b011, 10), &[2; 50]).unwrap();
        j.sync().unwrap();
        assert_eq!(
            j.storage().syncs - before,
            1,
            "round {round}: acks and records in one fdatasync"
        );
    }
    let cursors: Vec<_> = j.engines().collect();
    let backlogs: Vec<_> = (0..3).map(|e| j.backlog(e)).collect();
    let mut s = j.into_storage();
    s.crash(false);
    let j = open(s, Limits::default());
    assert_eq!(j.engines().collect::<Vec<_>>(), cursors);
    assert_eq!((0..3).map(|e| j.backlog(e)).collect::<Vec<_>>(), backlogs);
    assert_eq!(j.recovery.cursor_records, 20);
    assert_eq!(cursors, vec![(0, 200), (1, 100), (2, 0)]);
}

#[test]
fn cursor_records_that_fill_a_segment_move_to_the_cursor_file_and_segment_names_stay_unique() {
    let limits = Limits {
        segment_max: 400,
        ..Limits::default()
    };
    let mut j = open(MemStorage::new(2), limits);
    j.append(rec(0b001, 100), &[3; 10]).unwrap(); // 106 bytes
    j.sync().unwrap();
    let file_writes_before = j.storage().list().unwrap();
    // Each lone cursor record is 65 bytes (3 engines): 4 fit beside the record.
    let mut fallbacks = 0;
    for k in 1..=40u64 {
        let before = j.storage().syncs;
        j.ack(0, k, 1);
        j.sync().unwrap();
        match j.storage().syncs - before {
            1 => {}
            2 => fallbacks += 1, // the cursor file and its folder
            n => panic!("ack {k}: {n} fsyncs"),
        }
        assert_eq!(j.segment_count(), 1, "ack {k}: no segment of cursors only");
    }
    assert_eq!(fallbacks, 40 - 4);
    assert!(file_writes_before.iter().any(|n| n.ends_with(".seg")));
    // New events open a segment named by their first sequence, and the
    // cursor record that does not fit beside them goes to the cursor file.
    j.append(rec(0b011, 5), &[4; 300]).unwrap();
    j.ack(0, 50, 10);
    let before = j.storage().syncs;
    j.sync().unwrap();
    assert_eq!(j.storage().syncs - before, 3);
    let names: Vec<String> = j.segments().map(|(n, _)| n.to_string()).collect();
    assert_eq!(
        names,
        vec!["00000000000000000000.seg", "00000000000000000100.seg"]
    );
    let mut s = j.into_storage();
    s.crash(false);
    let j = open(s, limits);
    assert_eq!(j.cursor(0), Some(50));
    assert_eq!(j.backlog(0), 55);
    assert_eq!(j.backlog(1), 5);
    assert_eq!(j.backlog(2), 0);
}

#[test]
fn a_commit_that_does_not_fit_the_last_segment_goes_whole_to_a_new_one() {
    let limits = Limits {
        segment_max: 1000,
        ..Limits::default()
    };
    let mut j = open(MemStorage::new(3), limits);
    j.sync().unwrap();
    let mut acked = 0;
    for k in 0..30u64 {
        let before = j.storage().syncs;
        j.append(rec(0b001, 4), &[5; 200]).unwrap(); // 296 bytes: three per segment
        let c = j.cursor(0).unwrap();
        j.ack(0, acked, acked - c);
        j.sync().unwrap();
        acked = j.synced_seq();
        assert_eq!(j.storage().syncs - before, 1, "commit {k}: one fdatasync");
    }
    // Every segment starts with its first event's sequence and holds whole commits.
    for (name, len) in j.segments() {
        assert!(len <= 1000, "{name}: {len} bytes");
    }
    let mut s = j.into_storage();
    s.crash(false);
    let j = open(s, limits);
    assert_eq!(j.cursor(0), Some(acked - 4));
    assert_eq!(j.backlog(0), 4);
}

#[test]
fn the_commit_buffer_is_given_back_only_when_nothing_waits_in_it() {
    let mut j = open(MemStorage::new(1), Limits::default());
    j.sync().unwrap();
    for _ in 0..100 {
        j.append(rec(0b001, 10), &[7; 1000]).unwrap();
    }
    assert!(j.buffer_capacity() >= 100_000);
    assert!(!j.release_buffer(), "records wait: the buffer is kept");
    assert!(j.pending_bytes() >= 100_000);
    j.sync().unwrap();
    assert!(j.release_buffer());
    assert_eq!(j.buffer_capacity(), 0);
    // The next burst grows it again and is committed as before.
    let seq = j.append(rec(0b001, 10), &[8; 1000]).unwrap();
    j.sync().unwrap();
    let mut pos = j.reader(0);
    let mut payload = Vec::new();
    let mut last = None;
    while let Some(h) = j.read_next(0, &mut pos, &mut payload).unwrap() {
        last = Some((h.first_seq, payload.clone()));
    }
    assert_eq!(last, Some((seq, vec![8; 1000])));
}
