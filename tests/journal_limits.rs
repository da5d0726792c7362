//! Contract 4: at a cap, `append` reports backpressure; it never drops and
//! never grows past the cap, and acks make room again.

mod support;

use edgecm::journal::{Full, Journal, Limits, MemStorage};

use support::journal_rec as rec;

#[test]
fn an_engine_at_its_buffersize_pauses_appends_destined_to_it_until_it_acks() {
    let limits = Limits {
        engine_events_max: 100,
        ..Limits::default()
    };
    let mut j = Journal::open(MemStorage::new(1), limits).unwrap();
    j.restore_engine(0).unwrap();
    j.restore_engine(1).unwrap();
    for _ in 0..10 {
        j.append(rec(0b01, 10), b"x").unwrap();
    }
    assert_eq!(j.backlog(0), 100);
    assert_eq!(j.append(rec(0b01, 1), b"x"), Err(Full::Engine(0)));
    assert_eq!(
        j.append(rec(0b11, 1), b"x"),
        Err(Full::Engine(0)),
        "any destination set that includes it"
    );
    j.append(rec(0b10, 50), b"x")
        .expect("another engine is not held back");
    let synced = j.sync().unwrap();
    assert_eq!(synced, 150);
    j.ack(0, 30, 30);
    assert_eq!(j.backlog(0), 70);
    j.append(rec(0b01, 30), b"x").expect("acks make room");
    assert_eq!(j.append(rec(0b01, 1), b"x"), Err(Full::Engine(0)));
}

#[test]
fn the_journal_never_grows_past_its_byte_cap_and_frees_room_when_segments_are_acked() {
    let limits = Limits {
        segment_max: 1000,
        bytes_max: 5000,
        engine_events_max: u64::MAX,
    };
    let mut j = Journal::open(MemStorage::new(2), limits).unwrap();
    j.restore_engine(0).unwrap();
    let payload = [7u8; 104]; // 200-byte records (96-byte header): 5 per segment
    let mut appended = 0;
    loop {
        match j.append(rec(1, 1), &payload) {
            Ok(_) => appended += 1,
            Err(Full::Bytes) => break,
            Err(other) => panic!("{other:?}"),
        }
        assert!(j.bytes() <= 5000);
        j.sync().unwrap();
    }
    assert_eq!(appended, 25);
    assert!(j.bytes() <= 5000);
    // Everything delivered: whole segments go, except the current one.
    let upto = j.synced_seq();
    j.ack(0, upto, upto);
    j.sync().unwrap();
    assert_eq!(j.segment_count(), 1);
    j.append(rec(1, 1), &payload).expect("room again");
}

/// A source that finished keeps its position after the segment that held
/// its last record is freed (contract 1: a restart does not read it again).
#[test]
fn a_finished_sources_position_survives_the_reclaim_of_its_segment() {
    use edgecm::journal::{MemStorage, Position};
    let limits = Limits {
        segment_max: 4096,
        bytes_max: 1 << 20,
        engine_events_max: 1 << 20,
    };
    let mut j = Journal::open(MemStorage::new(7), limits).unwrap();
    j.add_engine(0);
    j.sync().unwrap();
    let mut rec = support::journal_rec(1, 1);
    rec.source = 1;
    rec.position = Position::File {
        dev: 1,
        ino: 2,
        offset: 280,
    };
    j.append(rec, b"venue").unwrap();
    // Another source goes on long enough for segments to roll.
    for k in 0..200u64 {
        let mut r = support::journal_rec(1, 1);
        r.source = 2;
        r.position = Position::Socket { seq: k };
        j.append(r, &[b'x'; 100]).unwrap();
        j.sync().unwrap();
    }
    let end = j.next_seq();
    j.ack(0, end, 201);
    j.sync().unwrap();
    let before = j.segment_count();
    let storage = j.into_storage();
    let j = Journal::open(storage, limits).unwrap();
    assert!(
        j.segments()
            .next()
            .is_some_and(|(n, _)| n != "00000000000000000000.seg"),
        "the first segment was freed ({before} segments before)"
    );
    assert_eq!(
        j.positions().get(&1),
        Some(&Position::File {
            dev: 1,
            ino: 2,
            offset: 280
        }),
        "{:?}",
        j.positions()
    );
    assert_eq!(j.positions().get(&2), Some(&Position::Socket { seq: 199 }));
}

/// A byte flipped in the middle of a segment costs the record that holds
/// it, not the rest of the segment: readers resume at the next valid record.
#[test]
fn a_damaged_record_mid_segment_costs_only_itself() {
    use edgecm::journal::{record, MemStorage, ReadPos};
    let limits = Limits {
        segment_max: 1 << 20,
        bytes_max: 1 << 24,
        engine_events_max: 1 << 20,
    };
    let mut j = Journal::open(MemStorage::new(3), limits).unwrap();
    j.add_engine(0);
    j.add_engine(1);
    j.sync().unwrap();
    for k in 0..300u64 {
        // Every other record goes to engine 1 as well.
        let dest = if k % 2 == 0 { 0b01 } else { 0b11 };
        j.append(
            rec(dest, 10),
            format!("payload of record {k:04}").as_bytes(),
        )
        .unwrap();
    }
    j.sync().unwrap();
    let mut storage = j.into_storage();
    let name = "00000000000000000000.seg";
    let image = storage.file(name).unwrap().to_vec();
    let records = record::scan(&image).records;
    assert_eq!(records.len(), 300);
    // Record 151 (for both engines) loses a byte of its payload.
    let (off, len, h) = records[151];
    storage.flip_byte(name, (off as usize) + len - 3);
    let mut j = Journal::open(storage, limits).unwrap();
    assert_eq!(j.recovery.lost_events, 10);
    assert_eq!(j.recovery.corrupt.len(), 1);
    for (e, want) in [(0u8, 299usize), (1, 149)] {
        let mut pos = ReadPos::default();
        let mut payload = Vec::new();
        let mut got = Vec::new();
        while let Some(r) = j.read_next(e, &mut pos, &mut payload).unwrap() {
            got.push(r.first_seq);
        }
        assert_eq!(got.len(), want, "engine {e}: {got:?}");
        assert!(!got.contains(&h.first_seq));
        // The next record of this engine after the damaged one (152 is engine 0's only).
        let next = if e == 0 { 10 } else { 20 };
        assert!(
            got.contains(&(h.first_seq + next)),
            "the record after the damage is read"
        );
        assert_eq!(j.backlog(e), want as u64 * 10);
    }
    let log = j.damage_log().unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(
        log[0].contains("1 damaged stretch (") && log[0].ends_with("10 events lost"),
        "{log:?}"
    );
}

/// Damage that appears after the journal was opened (flash going bad under
/// a running manager) is found by scanning again, and costs only itself too.
#[test]
fn damage_found_while_reading_also_costs_only_its_record() {
    use edgecm::journal::{record, MemStorage, ReadPos};
    let limits = Limits {
        segment_max: 1 << 20,
        bytes_max: 1 << 24,
        engine_events_max: 1 << 20,
    };
    let mut j = Journal::open(MemStorage::new(4), limits).unwrap();
    j.add_engine(0);
    j.sync().unwrap();
    for k in 0..100u64 {
        j.append(rec(0b01, 5), format!("record {k:03}").as_bytes())
            .unwrap();
    }
    j.sync().unwrap();
    let name = "00000000000000000000.seg";
    let image = j.storage().file(name).unwrap().to_vec();
    let (off, _, h) = record::scan(&image).records[40];
    j.storage_mut().flip_byte(name, off as usize + 1);
    let mut pos = ReadPos::default();
    let mut payload = Vec::new();
    let mut got = 0;
    while let Some(r) = j.read_next(0, &mut pos, &mut payload).unwrap() {
        assert_ne!(r.first_seq, h.first_seq);
        got += 1;
    }
    assert_eq!(got, 99);
}

/// A torn tail that keeps the first records of a source block but not its
/// last (the one whose position is after the block): recovery cuts back to
/// the block's start, so the source resumes before it and nothing it
/// journaled is read twice (contract 1).
#[test]
fn a_torn_tail_inside_a_block_resumes_exactly_before_that_block() {
    use edgecm::journal::{record, MemStorage, Origin, Position};
    use edgecm::route::EngineSet;
    let limits = Limits::default();
    let mut j = Journal::open(MemStorage::new(5), limits).unwrap();
    j.add_engine(0);
    j.add_engine(1);
    j.sync().unwrap();
    let file = |offset| Position::File {
        dev: 1,
        ino: 1,
        offset,
    };
    // Block 1 (events 0..4) whole; block 2 (events 4..8) in three records,
    // split by engine, the last one carrying the position after the block.
    let mut append = |dest: u64, count: u32, start: u64, len: u32, at_end: bool, pos: u64| {
        let mut r = support::journal_rec(dest, count);
        r.source = 1;
        r.position = file(pos);
        r.origin = Origin {
            block_start: start,
            block_len: len,
            at_end,
            closes: EngineSet::from_bits(dest),
        };
        j.append(r, b"events").unwrap();
    };
    append(0b11, 4, 0, 4, true, 100);
    append(0b01, 1, 4, 4, false, 100);
    append(0b10, 2, 4, 4, false, 100);
    append(0b01, 1, 4, 4, true, 200);
    j.sync().unwrap();
    let mut storage = j.into_storage();
    let name = "00000000000000000000.seg";
    let image = storage.file(name).unwrap().to_vec();
    let recs = record::scan(&image).records;
    assert_eq!(recs.len(), 4);
    // A power cut tears the last record.
    let (off, len, _) = recs[3];
    let keep = (off as usize) + len / 2;
    edgecm::journal::Storage::truncate(&mut storage, name, keep as u64).unwrap();
    let j = Journal::open(storage, limits).unwrap();
    assert_eq!(j.positions().get(&1), Some(&file(100)), "before block 2");
    assert_eq!(
        j.next_seq(),
        4,
        "block 2's first records are gone with the torn one"
    );
    assert_eq!(j.source_counts().get(&1), Some(&Some(4)));
    assert!(j.recovery.torn_bytes > 0);
}

/// A full filesystem (something else filled it, or the cap is above the
/// free space): acknowledgements still reach flash (through the reserve),
/// segments are freed as engines drain, appends wait below a low-water
/// mark, and what waited in RAM is written once there is room (contract 4).
#[test]
fn a_full_disk_drains_and_then_takes_appends_again() {
    use edgecm::journal::{MemStorage, ReadPos, Storage};
    let limits = Limits {
        segment_max: 4096,
        bytes_max: 1 << 30,
        engine_events_max: 1 << 30,
    };
    let mut j = Journal::open(MemStorage::new(9), limits).unwrap();
    j.add_engine(0);
    j.sync().unwrap();
    for _ in 0..200 {
        j.append(rec(0b1, 1), &[b'a'; 100]).unwrap();
    }
    j.sync().unwrap();
    let full_at = {
        let st = j.storage();
        st.list()
            .unwrap()
            .iter()
            .map(|n| st.len(n).unwrap())
            .sum::<u64>()
    };
    // The disk is full: new records cannot be written.
    j.storage_mut().capacity = full_at;
    j.append(rec(0b1, 1), &[b'b'; 100]).unwrap();
    let synced = j
        .sync()
        .expect("a full disk is not an error the manager stops on");
    assert_eq!(synced, 200, "the new record waits in RAM");
    assert!(
        matches!(
            j.append(rec(0b1, 1), &[b'c'; 100]),
            Err(edgecm::journal::Full::Bytes)
        ),
        "sources pause while the disk is full"
    );
    // The engine drains: its acknowledgements reach flash and free segments.
    let mut pos = ReadPos::default();
    let mut payload = Vec::new();
    let mut read = 0;
    while let Some(h) = j.read_next(0, &mut pos, &mut payload).unwrap() {
        read += 1;
        j.ack(0, h.end_seq(), 1);
        if read % 50 == 0 {
            j.sync().unwrap();
        }
    }
    // With the room the drain made, the record that waited was written
    // (and read) too.
    assert_eq!(read, 201);
    assert_eq!(j.sync().unwrap(), 201);
    assert_eq!(j.durable_cursor(0), 201, "acknowledgements are on flash");
    // Appends are taken again below the low-water mark.
    j.append(rec(0b1, 1), &[b'd'; 100]).unwrap();
    assert_eq!(j.sync().unwrap(), 202);
    let storage = j.into_storage();
    let mut j = Journal::open(storage, limits).unwrap();
    let mut pos = j.reader(0);
    let mut got = Vec::new();
    while j.read_next(0, &mut pos, &mut payload).unwrap().is_some() {
        got.push(payload[..1].to_vec());
    }
    assert_eq!(
        got.len(),
        1,
        "only the record after the drain is left, once"
    );
}
