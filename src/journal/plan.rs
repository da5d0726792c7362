//! The records a routed block becomes, in the order they are appended: pure
//! (the source task and the re-routing of a removed engine's queue do the
//! appending, this decides what is appended).
//!
//! A source block split by routing into several records carries the source
//! position reached after the block only on its last record, and that
//! record holds the block's last event; the others carry the position
//! before the block. A power cut that keeps only the first records of a
//! block therefore resumes before the block, and its events are read again
//! (duplicates, never loss: contract 1). Each record's [`Origin`] says which
//! source events it holds, counted the same way by every manager reading the
//! same source (failover), and for which engines it is the block's last
//! record (`closes`).

use super::block::{BlockWriter, EventRef};
use super::{NewRecord, Origin, REROUTED};
use crate::event::Position;
use crate::route::{EngineId, EngineSet};

/// One group routing made: events `events` (indices into the block) go to
/// engines `dest` (the journal's global ids) through destination `target`.
#[derive(Debug, Clone, Copy)]
pub struct Routed<'a> {
    pub target: u16,
    pub dest: EngineSet,
    pub events: &'a [u32],
}

/// A block of a source's events.
#[derive(Debug, Clone, Copy)]
pub struct SourceBlock {
    /// The source's journal id.
    pub source: u16,
    /// Events in the block.
    pub count: u32,
    /// The source's events before the block, when counted (a file read from
    /// its start; failover needs the count), else None.
    pub counted: Option<u64>,
    /// Where the source stood before the block and after it.
    pub before: Position,
    pub after: Position,
    pub time_ms: u64,
}

/// The records of source block `b` routed into `groups`: (the group's index
/// in `groups`, its record), in append order.
pub fn source_records(b: &SourceBlock, groups: &[Routed]) -> Vec<(usize, NewRecord)> {
    let mut order: Vec<usize> = (0..groups.len()).collect();
    // The record carrying the position after the block is the last one
    // appended, and holds the block's last event (so its origin's count at
    // that position is the block's end).
    let last_event = b.count.checked_sub(1);
    if let Some(k) = order
        .iter()
        .rposition(|&g| groups[g].events.last().copied() == last_event)
    {
        let g = order.remove(k);
        order.push(g);
    }
    let n = order.len();
    order
        .iter()
        .enumerate()
        .map(|(k, &g)| {
            let at_end = k + 1 == n;
            let later = order[k + 1..]
                .iter()
                .fold(EngineSet::EMPTY, |a, &l| a.union(groups[l].dest));
            let origin = match b.counted {
                Some(start) => Origin {
                    block_start: start,
                    block_len: b.count,
                    at_end,
                    closes: groups[g].dest.minus(later),
                },
                None => Origin::NONE,
            };
            let rec = NewRecord {
                dest: groups[g].dest,
                source: b.source,
                target: groups[g].target,
                position: if at_end { b.after } else { b.before },
                count: groups[g].events.len() as u32,
                time_ms: b.time_ms,
                origin,
            };
            (g, rec)
        })
        .collect()
}

/// The records that events queued for engine `gone` (a record read back
/// with `dest` and `time_ms`) become when routed again into `groups`:
/// engines that had the record already keep it, so they are left out, and a
/// group left with no engine is no record.
pub fn rerouted_records(
    dest: EngineSet,
    time_ms: u64,
    gone: EngineId,
    groups: &[Routed],
) -> Vec<(usize, NewRecord)> {
    let had = dest.minus(EngineSet::from_bits(1 << gone));
    groups
        .iter()
        .enumerate()
        .filter_map(|(g, r)| {
            let dest = r.dest.minus(had);
            (!dest.is_empty()).then_some((
                g,
                NewRecord {
                    dest,
                    source: REROUTED,
                    target: r.target,
                    position: Position::None,
                    count: r.events.len() as u32,
                    time_ms,
                    origin: Origin::NONE,
                },
            ))
        })
        .collect()
}

/// The payload of a record holding events `idx` of a block: the block
/// itself when it holds them all, else those events written into `sub`.
/// `evs` are the block's events decoded (only needed for a part).
pub fn payload<'b>(
    block: &'b [u8],
    count: u32,
    evs: &[EventRef<'_>],
    idx: &[u32],
    sub: &'b mut BlockWriter,
) -> &'b [u8] {
    if idx.len() == count as usize {
        return block;
    }
    sub.clear();
    for &i in idx {
        let e = &evs[i as usize];
        sub.push(e.opcode, e.flags, e.fields());
    }
    &sub.buf
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[EngineId]) -> EngineSet {
        let mut s = EngineSet::EMPTY;
        for &i in ids {
            s.insert(i);
        }
        s
    }

    fn routed<'a>(target: u16, dest: &[EngineId], events: &'a [u32]) -> Routed<'a> {
        Routed {
            target,
            dest: set(dest),
            events,
        }
    }

    fn block(count: u32, counted: Option<u64>) -> SourceBlock {
        SourceBlock {
            source: 3,
            count,
            counted,
            before: Position::Socket { seq: 10 },
            after: Position::Socket {
                seq: 10 + u64::from(count),
            },
            time_ms: 77,
        }
    }

    #[test]
    fn a_block_routed_whole_is_one_record_with_the_position_after_it() {
        let all = [0, 1, 2];
        let groups = [routed(5, &[0, 1], &all)];
        let r = source_records(&block(3, Some(100)), &groups);
        assert_eq!(r.len(), 1);
        let (g, rec) = r[0];
        assert_eq!(
            (g, rec.source, rec.target, rec.count, rec.time_ms),
            (0, 3, 5, 3, 77)
        );
        assert_eq!(rec.position, Position::Socket { seq: 13 });
        assert_eq!(
            rec.origin,
            Origin {
                block_start: 100,
                block_len: 3,
                at_end: true,
                closes: set(&[0, 1]),
            }
        );
    }

    #[test]
    fn the_record_with_the_last_event_goes_last_and_alone_carries_the_position_after() {
        // Hash routing: events 0 and 3 to engine 0, 1 and 2 to engine 1;
        // a second map sends all four to engine 2.
        let (a, b, all) = ([0, 3], [1, 2], [0, 1, 2, 3]);
        let groups = [
            routed(0, &[0], &a),
            routed(0, &[1], &b),
            routed(1, &[2], &all),
        ];
        let r = source_records(&block(4, Some(0)), &groups);
        let order: Vec<usize> = r.iter().map(|x| x.0).collect();
        assert_eq!(
            order,
            vec![0, 1, 2],
            "the last group holding event 3 is last"
        );
        let before = Position::Socket { seq: 10 };
        assert_eq!((r[0].1.position, r[1].1.position), (before, before));
        assert_eq!(r[2].1.position, Position::Socket { seq: 14 });
        assert!(r.iter().all(|x| x.1.origin.block_len == 4));
        assert_eq!(
            r.iter().map(|x| x.1.origin.at_end).collect::<Vec<_>>(),
            vec![false, false, true]
        );
        // Each record closes the block for its engines: none comes later.
        assert_eq!(r[0].1.origin.closes, set(&[0]));
        assert_eq!(r[2].1.origin.closes, set(&[2]));

        // Event 3 (the last) is in the first group: it moves to the end, and
        // the record before it does not close the block for engine 0, which
        // gets a later record.
        let groups = [routed(0, &[0], &a), routed(0, &[1, 0], &b)];
        let r = source_records(&block(4, Some(0)), &groups);
        assert_eq!(r.iter().map(|x| x.0).collect::<Vec<_>>(), vec![1, 0]);
        assert_eq!(
            r[0].1.origin.closes,
            set(&[1]),
            "engine 0 gets a later record"
        );
        assert_eq!(r[1].1.origin.closes, set(&[0]));
        assert_eq!(r[1].1.position, Position::Socket { seq: 14 });
    }

    #[test]
    fn an_uncounted_source_has_no_origin() {
        let all = [0];
        let groups = [routed(0, &[0], &all)];
        let r = source_records(&block(1, None), &groups);
        assert_eq!(r[0].1.origin, Origin::NONE);
    }

    #[test]
    fn rerouted_records_skip_engines_that_had_them() {
        let (a, b) = ([0], [1]);
        // The record went to engines 1 (gone) and 2; routed again, event 0
        // goes to engine 2 (which has it) and event 1 to engines 3 and 2.
        let groups = [routed(4, &[2], &a), routed(4, &[3, 2], &b)];
        let r = rerouted_records(set(&[1, 2]), 55, 1, &groups);
        assert_eq!(r.len(), 1);
        let (g, rec) = r[0];
        assert_eq!(
            (g, rec.dest, rec.source, rec.count),
            (1, set(&[3]), REROUTED, 1)
        );
        assert_eq!(
            (rec.position, rec.time_ms, rec.origin),
            (Position::None, 55, Origin::NONE)
        );
    }

    #[test]
    fn a_part_of_a_block_is_written_anew_and_the_whole_is_the_block() {
        let mut w = BlockWriter::default();
        for v in [b"a".as_slice(), b"b", b"c"] {
            w.push(b'i', b'n', [Some(v)].into_iter());
        }
        let evs: Vec<_> = super::super::block::events(&w.buf).flatten().collect();
        let mut sub = BlockWriter::default();
        assert_eq!(
            payload(&w.buf, 3, &evs, &[0, 1, 2], &mut sub),
            w.buf.as_slice()
        );
        let part = payload(&w.buf, 3, &evs, &[2], &mut sub).to_vec();
        let got: Vec<_> = super::super::block::events(&part).flatten().collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].fields().next(), Some(Some(b"c".as_slice())));
    }
}
