//! Model test (STYLE.md 13): random Append / Sync / Read / Ack / Crash /
//! ENOSPC sequences against a trivial in-memory model, compared after every
//! step. Storage is the in-memory twin, so crashes drop exactly what was not
//! synced (and with a tear, keep a random part of it).

use edgecm::journal::{Journal, Limits, MemStorage, NewRecord, Position, ReadPos, Storage};
use edgecm::route::EngineSet;
use proptest::prelude::*;

const ENGINES: u8 = 3;

#[derive(Debug, Clone)]
enum Op {
    Append {
        dest: u8,
        count: u32,
        fill: u8,
    },
    Sync,
    Read(u8),
    Ack(u8),
    Crash {
        tear: bool,
    },
    /// The next sync finds only `room` free bytes.
    Enospc {
        room: u16,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (1u8..8, 1u32..6, any::<u8>()).prop_map(|(dest, count, fill)| Op::Append { dest, count, fill }),
        3 => Just(Op::Sync),
        4 => (0..ENGINES).prop_map(Op::Read),
        2 => (0..ENGINES).prop_map(Op::Ack),
        1 => any::<bool>().prop_map(|tear| Op::Crash { tear }),
        1 => (0u16..400).prop_map(|room| Op::Enospc { room }),
    ]
}

#[derive(Debug, Clone, PartialEq)]
struct Rec {
    first: u64,
    count: u32,
    dest: u8,
    payload: Vec<u8>,
}

#[derive(Default)]
struct Model {
    durable: Vec<Rec>,
    pending: Vec<Rec>,
    next_seq: u64,
    cursors: [u64; 3],
    persisted: [u64; 3],
    read_seq: [u64; 3],
    unacked: [u64; 3],
}

fn limits() -> Limits {
    // Tiny segments: rolling and reclaim happen every few records.
    Limits {
        segment_max: 400,
        bytes_max: u64::MAX,
        engine_events_max: u64::MAX,
    }
}

fn open(storage: MemStorage) -> Journal<MemStorage> {
    let mut j = Journal::open(storage, limits()).expect("open");
    for e in 0..ENGINES {
        j.restore_engine(e).expect("restore");
    }
    j
}

/// Every durable record destined to `e` from its cursor on, read by a fresh reader.
fn journal_view(j: &mut Journal<MemStorage>, e: u8) -> Vec<(u64, u32, Vec<u8>)> {
    let mut pos = j.reader(e);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while let Some(h) = j.read_next(e, &mut pos, &mut buf).expect("read") {
        out.push((h.first_seq, h.count, buf.clone()));
    }
    out
}

fn model_view(m: &Model, e: u8) -> Vec<(u64, u32, Vec<u8>)> {
    m.durable
        .iter()
        .filter(|r| r.dest & (1 << e) != 0 && r.first + u64::from(r.count) > m.cursors[e as usize])
        .map(|r| (r.first, r.count, r.payload.clone()))
        .collect()
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut j = open(MemStorage::new(1));
    let mut m = Model::default();
    let mut readers: Vec<ReadPos> = (0..ENGINES).map(|e| j.reader(e)).collect();
    let mut buf = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Append { dest, count, fill } => {
                let payload = vec![*fill; *count as usize * 7];
                let rec = NewRecord {
                    dest: EngineSet::from_bits(u64::from(*dest)),
                    source: 0,
                    target: 0,
                    position: Position::Socket {
                        seq: m.next_seq + u64::from(*count),
                    },
                    count: *count,
                    time_ms: step as u64,
                    origin: edgecm::journal::Origin::NONE,
                };
                // No cap in this test: only a full disk (below) makes the
                // journal refuse appends, until engines drained it.
                let first = match j.append(rec, &payload) {
                    Ok(first) => first,
                    Err(edgecm::journal::Full::Bytes) => continue,
                    Err(other) => panic!("step {step}: {other:?}"),
                };
                prop_assert_eq!(first, m.next_seq, "step {}", step);
                m.pending.push(Rec {
                    first,
                    count: *count,
                    dest: *dest,
                    payload,
                });
                m.next_seq += u64::from(*count);
            }
            Op::Sync => {
                let synced = j.sync().expect("sync");
                m.durable.append(&mut m.pending);
                m.persisted = m.cursors;
                prop_assert_eq!(synced, m.next_seq);
            }
            Op::Enospc { room } => {
                let used: u64 = {
                    let st = j.storage();
                    st.list().unwrap().iter().map(|n| st.len(n).unwrap()).sum()
                };
                j.storage_mut().capacity = used + u64::from(*room);
                let r = j.sync();
                j.storage_mut().capacity = u64::MAX;
                match r {
                    Ok(synced) if synced == m.next_seq => {
                        m.durable.append(&mut m.pending);
                        m.persisted = m.cursors;
                    }
                    // A full disk: the records stay pending, the acknowledgements
                    // went to the cursor file (with the reserve's room) so that
                    // engines drain.
                    r => {
                        if let Err(e) = &r {
                            prop_assert_eq!(e.raw_os_error(), Some(28), "only ENOSPC is injected");
                        }
                        // Nothing changes: the records stay pending; whatever was half
                        // written was cut back (a crash later proves it). The cursors may
                        // have reached flash before the records failed.
                        prop_assert!(
                            j.synced_seq()
                                + m.pending.iter().map(|r| u64::from(r.count)).sum::<u64>()
                                == m.next_seq
                        );
                        if j.cursors_synced() {
                            m.persisted = m.cursors;
                        }
                    }
                }
            }
            Op::Read(e) => {
                let i = *e as usize;
                let got = j.read_next(*e, &mut readers[i], &mut buf).expect("read");
                let want = m
                    .durable
                    .iter()
                    .find(|r| r.dest & (1 << e) != 0 && r.first >= m.read_seq[i])
                    .cloned();
                match (got, want) {
                    (Some(h), Some(r)) => {
                        prop_assert_eq!(
                            (h.first_seq, h.count),
                            (r.first, r.count),
                            "step {}",
                            step
                        );
                        prop_assert_eq!(&buf, &r.payload);
                        m.read_seq[i] = r.first + u64::from(r.count);
                        m.unacked[i] += u64::from(r.count);
                    }
                    (None, None) => m.read_seq[i] = readers[i].seq.max(m.read_seq[i]),
                    (g, w) => prop_assert!(
                        false,
                        "step {}: engine {} read {:?}, model {:?}",
                        step,
                        e,
                        g,
                        w
                    ),
                }
            }
            Op::Ack(e) => {
                let i = *e as usize;
                let upto = m.read_seq[i].min(readers[i].seq).max(m.cursors[i]);
                j.ack(*e, upto, m.unacked[i]);
                m.cursors[i] = m.cursors[i].max(upto.min(j.synced_seq()));
                m.unacked[i] = 0;
            }
            Op::Crash { tear } => {
                let mut s = j.into_storage();
                s.crash(*tear);
                j = open(s);
                // A tear may keep whole unsynced records: never reported accepted, but valid.
                let kept = j.next_seq();
                let durable_end = m
                    .durable
                    .last()
                    .map(|r| r.first + u64::from(r.count))
                    .unwrap_or(0);
                let survivors: Vec<Rec> = m
                    .pending
                    .iter()
                    .filter(|r| r.first + u64::from(r.count) <= kept)
                    .cloned()
                    .collect();
                let boundary =
                    durable_end + survivors.iter().map(|r| u64::from(r.count)).sum::<u64>();
                prop_assert_eq!(
                    kept,
                    boundary,
                    "step {}: recovery must end at a record boundary",
                    step
                );
                m.durable.extend(survivors);
                m.pending.clear();
                m.next_seq = kept;
                m.cursors = m.persisted;
                m.read_seq = m.cursors;
                m.unacked = [0; 3];
                readers = (0..ENGINES).map(|e| j.reader(e)).collect();
            }
        }
        for e in 0..ENGINES {
            prop_assert_eq!(
                j.cursor(e),
                Some(m.cursors[e as usize]),
                "step {} cursor {}",
                step,
                e
            );
            let c = m.cursors[e as usize];
            let backlog: u64 = m
                .durable
                .iter()
                .chain(&m.pending)
                .filter(|r| r.dest & (1 << e) != 0)
                .map(|r| (r.first + u64::from(r.count)).saturating_sub(r.first.max(c)))
                .sum();
            prop_assert_eq!(j.backlog(e), backlog, "step {} backlog {}", step, e);
            let jv = journal_view(&mut j, e);
            prop_assert_eq!(
                jv,
                model_view(&m, e),
                "step {} engine {} after {:?}",
                step,
                e,
                op
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_journal_behaves_like_its_model(ops in proptest::collection::vec(op(), 1..80)) {
        run(&ops)?;
    }
}
