//! Recovery: opening a journal scans every segment, keeps what is valid,
//! skips a damaged record and resumes at the next valid one (counted in
//! `Recovery`), and puts cursors where the newest checkpoint and the cursor
//! records after it say.

use super::*;

/// Reads both cursor files; returns the valid one with the higher generation.
pub(super) fn load_cursors<S: Storage>(
    storage: &mut S,
) -> io::Result<(BTreeMap<EngineId, u64>, u64, bool)> {
    let names = storage.list()?;
    let mut best: Option<(u64, BTreeMap<EngineId, u64>)> = None;
    let mut damaged = false;
    for f in CURSOR_FILES {
        if !names.iter().any(|n| n == f) {
            continue;
        }
        let len = storage.len(f)? as usize;
        let mut b = vec![0u8; len.min(4096)];
        let n = storage.read_at(f, 0, &mut b)?;
        match parse_cursors(&b[..n]) {
            Some((gen, c)) => {
                if best.as_ref().is_none_or(|(g, _)| gen > *g) {
                    best = Some((gen, c));
                }
            }
            None => damaged = true,
        }
    }
    let (gen, cursors) = best.unwrap_or_default();
    Ok((cursors, gen, damaged))
}

pub(super) fn parse_cursors(b: &[u8]) -> Option<(u64, BTreeMap<EngineId, u64>)> {
    if b.len() < 19 || &b[..4] != CURSOR_MAGIC || b[4] != 1 {
        return None;
    }
    let (body, tail) = b.split_at(b.len() - 4);
    if crc::crc32c(body) != u32::from_le_bytes(tail.try_into().ok()?) {
        return None;
    }
    let gen = u64::from_le_bytes(body[5..13].try_into().ok()?);
    let n = u16::from_le_bytes(body[13..15].try_into().ok()?) as usize;
    if body.len() != 15 + n * 9 {
        return None;
    }
    let mut m = BTreeMap::new();
    for k in 0..n {
        let o = 15 + k * 9;
        m.insert(
            body[o],
            u64::from_le_bytes(body[o + 1..o + 9].try_into().ok()?),
        );
    }
    Some((gen, m))
}

impl<S: Storage> Journal<S> {
    pub(super) fn open_mode(
        mut storage: S,
        limits: Limits,
        repair: bool,
    ) -> io::Result<Journal<S>> {
        let mut rec = Recovery::default();
        let (cursors, cursor_gen, fallback) = load_cursors(&mut storage)?;
        rec.cursor_fallback = fallback;
        let mut names: Vec<(u64, String)> = storage
            .list()?
            .into_iter()
            .filter_map(|n| {
                n.strip_suffix(".seg")
                    .and_then(|s| s.parse::<u64>().ok())
                    .map(|s| (s, n.clone()))
            })
            .collect();
        names.sort();
        let mut segments = Vec::new();
        let saved_positions = if storage.list()?.iter().any(|n| n == POSITIONS_FILE) {
            let len = storage.len(POSITIONS_FILE)? as usize;
            let mut b = vec![0u8; len.min(1 << 20)];
            let n = storage.read_at(POSITIONS_FILE, 0, &mut b)?;
            decode_positions(&b[..n]).unwrap_or_default()
        } else {
            BTreeMap::new()
        };
        let mut positions: BTreeMap<u16, Position> =
            saved_positions.iter().map(|(&s, &(p, _))| (s, p)).collect();
        let mut counts: BTreeMap<u16, Option<u64>> =
            saved_positions.iter().map(|(&s, &(_, c))| (s, c)).collect();
        let mut pos_seq = BTreeMap::new();
        let backlog: BTreeMap<EngineId, u64> = cursors.keys().map(|&e| (e, 0)).collect();
        // Both scan callbacks move them: cursor records forward, event records the backlog.
        let cursors = std::cell::RefCell::new(cursors);
        let backlog = std::cell::RefCell::new(backlog);
        let mut cursor_records = 0u64;
        let mut expected: Option<u64> = None;
        let last = names.len().saturating_sub(1);
        // (offset, source, first seq, origin) of the last segment's records.
        let mut tail_records: Vec<(u64, u16, u64, Origin)> = Vec::new();
        for (i, (first, name)) in names.iter().enumerate() {
            let file_len = storage.len(name)?;
            let mut seg = Segment {
                name: name.clone(),
                first_seq: *first,
                end_seq: *first,
                len: 0,
                damage: Vec::new(),
            };
            let mut next = expected.unwrap_or(*first).max(*first);
            let summary = record::scan_stream(
                |o, b| storage.read_at(name, o, b),
                file_len,
                |off, _, h| {
                    if h.first_seq < next {
                        return false; // out of order: not ours to trust (e.g. a record image inside a payload)
                    }
                    rec.lost_events += h.first_seq - next;
                    next = h.end_seq();
                    rec.records += 1;
                    rec.events += u64::from(h.count);
                    positions.insert(h.source, h.position);
                    counts.insert(h.source, count_at_position(&h.origin));
                    pos_seq.insert(h.source, h.first_seq);
                    if i == last {
                        tail_records.push((off, h.source, h.first_seq, h.origin));
                    }
                    let cursors = cursors.borrow();
                    let mut backlog = backlog.borrow_mut();
                    for e in h.dest.iter() {
                        if let Some(&c) = cursors.get(&e) {
                            if h.end_seq() > c {
                                *backlog.entry(e).or_default() += h.end_seq() - c.max(h.first_seq);
                            }
                        }
                    }
                    true
                },
                |rec| {
                    cursor_records += 1;
                    let mut cursors = cursors.borrow_mut();
                    let mut backlog = backlog.borrow_mut();
                    for (e, c, b) in record::cursor_entries(rec) {
                        // Engines not in the cursor file were removed since.
                        if let Some(now) = cursors.get_mut(&e) {
                            if c >= *now {
                                *now = c;
                                backlog.insert(e, b);
                            }
                        }
                    }
                },
            )?;
            for d in &summary.damage {
                if d.tail && i == last {
                    rec.torn_bytes += d.len;
                } else {
                    rec.corrupt.push((name.clone(), d.offset, d.len));
                    seg.damage.push((d.offset, d.len));
                }
            }
            if repair && i == last && summary.valid_end < file_len {
                storage.truncate(name, summary.valid_end)?;
            }
            seg.end_seq = next;
            seg.len = if i == last {
                summary.valid_end
            } else {
                file_len
            };
            expected = Some(next);
            segments.push(seg);
        }
        rec.segments = segments.len();
        rec.cursor_records = cursor_records;
        let mut cursors = cursors.into_inner();
        // A torn tail can leave the first records of a source block without
        // its last one (the one whose position is after the block): the
        // source would resume before the block and journal those events
        // again. They were never synced whole, so never sent: cut the tail
        // back to the first such record and recover again (contract 1).
        if repair && rec.torn_bytes > 0 {
            let mut open_from: BTreeMap<u16, u64> = BTreeMap::new();
            for &(off, source, _, origin) in &tail_records {
                if source == crate::journal::REROUTED || !origin.known() {
                    continue;
                }
                if origin.at_end {
                    open_from.remove(&source);
                } else {
                    open_from.entry(source).or_insert(off);
                }
            }
            if let Some(&cut) = open_from.values().min() {
                let first = tail_records
                    .iter()
                    .find(|r| r.0 == cut)
                    .map(|r| r.2)
                    .unwrap_or(0);
                let seg = segments.last().expect("a torn tail is in a segment");
                if cursors.values().all(|&c| c <= first) {
                    log::warn!(
                        "journal: the torn tail of {} ends inside a block of events; cut back to byte {cut} so that its source reads the block once",
                        seg.name
                    );
                    let cut_bytes = rec.torn_bytes + (seg.len - cut);
                    storage.truncate(&seg.name, cut)?;
                    let mut j = Journal::open_mode(storage, limits, repair)?;
                    j.recovery.torn_bytes += cut_bytes;
                    return Ok(j);
                }
            }
        }
        let backlog = backlog.into_inner();
        if let Some(first) = segments.first().map(|s: &Segment| s.first_seq) {
            // Segments are deleted only once every cursor passed them, and with
            // them the cursor records that said so: nothing below is pending.
            for c in cursors.values_mut() {
                *c = (*c).max(first);
            }
        }
        let next_seq = expected
            .unwrap_or(0)
            .max(cursors.values().copied().max().unwrap_or(0));
        let mut j = Journal {
            storage,
            limits,
            segments,
            next_seq,
            synced_seq: next_seq,
            pending: Vec::new(),
            pending_headers: Vec::new(),
            durable_cursors: cursors.clone(),
            cursors,
            cursors_dirty: false,
            checkpoint: false,
            cursor_gen,
            backlog,
            positions,
            pending_positions: BTreeMap::new(),
            counts,
            pending_counts: BTreeMap::new(),
            pos_seq,
            pending_pos_seq: BTreeMap::new(),
            saved_positions,
            full_until: None,
            reserve: false,
            ahead: Vec::new(),
            recovery: rec,
        };
        if j.recovery.lost_events > 0 {
            // Cursor records' backlogs counted events corruption took: count again.
            let engines: Vec<EngineId> = j.cursors.keys().copied().collect();
            for e in engines {
                let n = j.count_backlog(e)?;
                j.backlog.insert(e, n);
            }
        }
        if repair && !j.recovery.corrupt.is_empty() {
            let r = &j.recovery;
            let line = format!(
                "recovery at sequence {}: {} damaged stretch{} ({} bytes: {}), {} event{} lost\n",
                j.next_seq,
                r.corrupt.len(),
                if r.corrupt.len() == 1 { "" } else { "es" },
                r.corrupt.iter().map(|c| c.2).sum::<u64>(),
                r.corrupt
                    .iter()
                    .map(|(s, o, l)| format!("{s}@{o}+{l}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                r.lost_events,
                if r.lost_events == 1 { "" } else { "s" }
            );
            // Best effort: a full disk must not stop the manager from draining.
            if let Err(e) = j
                .storage
                .append(DAMAGE_LOG, line.as_bytes())
                .and_then(|()| j.storage.sync(DAMAGE_LOG))
            {
                log::warn!("journal: cannot record the damage in {DAMAGE_LOG}: {e}");
            }
        }
        if repair {
            j.reclaim()?;
            j.reserve = j.storage.list()?.iter().any(|n| n == RESERVE_FILE);
            if !j.reserve {
                if let Err(e) = j.storage.replace(RESERVE_FILE, &[0; RESERVE_BYTES]) {
                    if e.raw_os_error() != Some(ENOSPC) {
                        return Err(e);
                    }
                    // Started on a full disk: drain before reading more.
                    j.full_until = Some(j.bytes() * 3 / 4);
                    log::warn!(
                        "journal: the filesystem is full; sources wait until engines drained the journal below {} bytes",
                        j.bytes() * 3 / 4
                    );
                } else {
                    j.reserve = true;
                }
            }
        }
        Ok(j)
    }
}
