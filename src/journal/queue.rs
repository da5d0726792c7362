//! The journal proper: append, group sync, per-engine cursors and reading,
//! reclaim, and recovery. Synchronous: the core task calls it between awaits
//! (regular files are never wrapped in `Async`, ARCHITECTURE §1).
//!
//! Cursors: `cursor[e]` = every sequence below it is acknowledged by engine
//! slot `e` or was never destined to it. They live in two alternating files,
//! `cursors-a` and `cursors-b`, each with a generation and a CRC; recovery
//! takes the valid one with the higher generation, so a damaged newest file
//! falls back to the previous one (at worst re-sending one group's acks).

use std::collections::BTreeMap;
use std::io;

use super::record::{self, Header, Origin, Parsed, Position};
use super::storage::Storage;
use super::{crc, RECORD_MAX, SEGMENT_MAX};
use crate::route::{EngineId, EngineSet};

/// Caps; reaching one is backpressure, never loss (contract 4).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub segment_max: u64,
    /// Bytes of segments (written and pending) the journal may hold.
    pub bytes_max: u64,
    /// Unacknowledged events per engine (`-buffersize`).
    pub engine_events_max: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            segment_max: SEGMENT_MAX,
            bytes_max: 1 << 30,
            engine_events_max: crate::cli::DEFAULT_BUFFERSIZE,
        }
    }
}

/// What a new record says besides its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewRecord {
    pub dest: EngineSet,
    pub source: u16,
    pub target: u16,
    /// The source's position after the record's last event.
    pub position: Position,
    pub count: u32,
    /// The caller's clock, ms since the Unix epoch (kept for backlog age).
    pub time_ms: u64,
    pub origin: Origin,
}

/// Why `append` refused: pause the sources until acks free room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// This engine has `engine_events_max` events unacknowledged.
    Engine(EngineId),
    /// The journal holds `bytes_max` bytes.
    Bytes,
}

#[derive(Debug, Clone)]
struct Segment {
    name: String,
    first_seq: u64,
    /// One past the last sequence in it (== first_seq when empty).
    end_seq: u64,
    len: u64,
}

/// What recovery found; `edgecm queue` prints it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    pub segments: usize,
    pub records: u64,
    pub events: u64,
    /// Bytes cut from a torn tail of the last segment.
    pub torn_bytes: u64,
    /// `(segment, offset, length)` of corrupt stretches skipped elsewhere.
    pub corrupt: Vec<(String, u64, u64)>,
    /// Events lost to corruption (gaps in the sequence).
    pub lost_events: u64,
    /// A cursor file was damaged and the other one used.
    pub cursor_fallback: bool,
}

/// Where an engine's reader stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadPos {
    /// Sequence after the last record returned or skipped.
    pub seq: u64,
    /// The segment (by its first sequence) and offset reading continues at;
    /// offset 0 means "find the segment again from `seq`".
    segment_first: u64,
    offset: u64,
}

pub struct Journal<S: Storage> {
    storage: S,
    limits: Limits,
    segments: Vec<Segment>,
    next_seq: u64,
    synced_seq: u64,
    /// Encoded records not yet written, and their headers.
    pending: Vec<u8>,
    pending_headers: Vec<(Header, usize)>,
    cursors: BTreeMap<EngineId, u64>,
    /// The cursors as last written to flash.
    durable_cursors: BTreeMap<EngineId, u64>,
    cursors_dirty: bool,
    cursor_gen: u64,
    /// Events destined to each engine and not yet acknowledged.
    backlog: BTreeMap<EngineId, u64>,
    /// Latest durable position per raw-source.
    positions: BTreeMap<u16, Position>,
    pending_positions: BTreeMap<u16, Position>,
    /// The source's event count at that position (None: unknown).
    counts: BTreeMap<u16, Option<u64>>,
    pending_counts: BTreeMap<u16, Option<u64>>,
    pub recovery: Recovery,
}

const ENOSPC: i32 = 28;
const CURSOR_FILES: [&str; 2] = ["cursors-a", "cursors-b"];
const CURSOR_MAGIC: &[u8; 4] = b"ECUR";

fn count_at_position(o: &Origin) -> Option<u64> {
    o.known().then(|| o.at_position())
}

fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.seg")
}

impl<S: Storage> Journal<S> {
    /// Opens the journal in `storage`, recovering what is there: a torn tail
    /// of the last segment is cut off, fully acknowledged segments are freed.
    pub fn open(storage: S, limits: Limits) -> io::Result<Journal<S>> {
        Journal::open_mode(storage, limits, true)
    }

    /// Opens without changing anything on flash (for `edgecm queue`): damage
    /// is reported, not repaired. Do not append to a journal opened this way.
    pub fn inspect(storage: S) -> io::Result<Journal<S>> {
        Journal::open_mode(storage, Limits::default(), false)
    }

    fn open_mode(mut storage: S, limits: Limits, repair: bool) -> io::Result<Journal<S>> {
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
        let mut positions = BTreeMap::new();
        let mut counts = BTreeMap::new();
        let mut backlog: BTreeMap<EngineId, u64> = cursors.keys().map(|&e| (e, 0)).collect();
        let mut expected: Option<u64> = None;
        let last = names.len().saturating_sub(1);
        for (i, (first, name)) in names.iter().enumerate() {
            let file_len = storage.len(name)?;
            let mut seg = Segment {
                name: name.clone(),
                first_seq: *first,
                end_seq: *first,
                len: 0,
            };
            let mut next = expected.unwrap_or(*first).max(*first);
            let summary = record::scan_stream(
                |o, b| storage.read_at(name, o, b),
                file_len,
                |_, _, h| {
                    if h.first_seq < next {
                        return false; // out of order: not ours to trust (e.g. a record image inside a payload)
                    }
                    rec.lost_events += h.first_seq - next;
                    next = h.end_seq();
                    rec.records += 1;
                    rec.events += u64::from(h.count);
                    positions.insert(h.source, h.position);
                    counts.insert(h.source, count_at_position(&h.origin));
                    for e in h.dest.iter() {
                        if let Some(&c) = cursors.get(&e) {
                            if h.end_seq() > c {
                                *backlog.entry(e).or_default() += h.end_seq() - c.max(h.first_seq);
                            }
                        }
                    }
                    true
                },
            )?;
            for d in &summary.damage {
                if d.tail && i == last {
                    rec.torn_bytes += d.len;
                } else {
                    rec.corrupt.push((name.clone(), d.offset, d.len));
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
            cursor_gen,
            backlog,
            positions,
            pending_positions: BTreeMap::new(),
            counts,
            pending_counts: BTreeMap::new(),
            recovery: rec,
        };
        if repair {
            j.reclaim()?;
        }
        Ok(j)
    }

    /// Segment names and valid lengths, oldest first.
    pub fn segments(&self) -> impl Iterator<Item = (&str, u64)> {
        self.segments.iter().map(|s| (s.name.as_str(), s.len))
    }

    /// The append time of the oldest record `e` has not acknowledged.
    pub fn oldest_unacked_ms(&mut self, e: EngineId) -> io::Result<Option<u64>> {
        let mut pos = self.reader(e);
        let mut buf = Vec::new();
        Ok(self.read_next(e, &mut pos, &mut buf)?.map(|h| h.time_ms))
    }

    /// Starts tracking an engine slot: it receives events appended from now on.
    /// An engine that already has a cursor (e.g. a spare that took over a slot)
    /// keeps it.
    pub fn add_engine(&mut self, e: EngineId) {
        if let std::collections::btree_map::Entry::Vacant(v) = self.cursors.entry(e) {
            v.insert(self.next_seq);
            self.backlog.insert(e, 0);
            self.cursors_dirty = true;
        }
    }

    /// Re-registers an engine slot at start-up: it keeps its persisted cursor;
    /// without one (first start, or both cursor files damaged) it starts at
    /// the oldest record, so nothing destined to it is skipped.
    pub fn restore_engine(&mut self, e: EngineId) -> io::Result<()> {
        if self.cursors.contains_key(&e) {
            return Ok(());
        }
        let oldest = self
            .segments
            .first()
            .map(|s| s.first_seq)
            .unwrap_or(self.next_seq);
        self.cursors.insert(e, oldest);
        self.cursors_dirty = true;
        // Count what is queued for it (only here: recovery counted the others).
        let mut pos = self.reader(e);
        let mut buf = Vec::new();
        let mut n = 0;
        while let Some(h) = self.read_next(e, &mut pos, &mut buf)? {
            n += u64::from(h.count);
        }
        self.backlog.insert(e, n);
        Ok(())
    }

    /// Stops tracking an engine slot (removed through the admin API): its
    /// cursor is dropped. Re-routing its backlog is the caller's, before this.
    pub fn remove_engine(&mut self, e: EngineId) {
        self.cursors.remove(&e);
        self.backlog.remove(&e);
        self.cursors_dirty = true;
    }

    pub fn engines(&self) -> impl Iterator<Item = (EngineId, u64)> + '_ {
        self.cursors.iter().map(|(&e, &c)| (e, c))
    }

    /// Events destined to `e` and not yet acknowledged.
    pub fn backlog(&self, e: EngineId) -> u64 {
        self.backlog.get(&e).copied().unwrap_or(0)
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Every event below this sequence is on flash.
    pub fn synced_seq(&self) -> u64 {
        self.synced_seq
    }

    /// Durable resume position per raw-source index.
    pub fn positions(&self) -> &BTreeMap<u16, Position> {
        &self.positions
    }

    /// Latest durable event count per raw-source, at its position in
    /// [`Journal::positions`]; None when unknown (version 1 records).
    pub fn source_counts(&self) -> &BTreeMap<u16, Option<u64>> {
        &self.counts
    }

    /// Bytes of segments, written and pending.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum::<u64>() + self.pending.len() as u64
    }

    /// Bytes appended and not yet written (what the next `sync` writes).
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    pub fn storage(&self) -> &S {
        &self.storage
    }

    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    pub fn into_storage(self) -> S {
        self.storage
    }

    /// Buffers one record. Nothing is durable, and nothing may be reported
    /// accepted, until [`Journal::sync`] returns.
    pub fn append(&mut self, r: NewRecord, payload: &[u8]) -> Result<u64, Full> {
        self.append_inner(r, payload, true)
    }

    /// [`Journal::append`] without the per-engine limit: events re-routed
    /// from a removed engine were accepted already and must find a place.
    pub fn append_rerouted(&mut self, r: NewRecord, payload: &[u8]) -> Result<u64, Full> {
        self.append_inner(r, payload, false)
    }

    /// Bytes `append` may still take before [`Full::Bytes`].
    pub fn room_bytes(&self) -> u64 {
        self.limits.bytes_max.saturating_sub(self.bytes())
    }

    fn append_inner(
        &mut self,
        r: NewRecord,
        payload: &[u8],
        engine_limit: bool,
    ) -> Result<u64, Full> {
        let NewRecord {
            dest,
            source,
            target,
            position,
            count,
            time_ms,
            origin,
        } = r;
        let len = (record::HEADER_LEN + payload.len()) as u64;
        if self.bytes() + len > self.limits.bytes_max {
            return Err(Full::Bytes);
        }
        for e in dest.iter().filter(|_| engine_limit) {
            if self.cursors.contains_key(&e)
                && self.backlog(e) + u64::from(count) > self.limits.engine_events_max
            {
                return Err(Full::Engine(e));
            }
        }
        let h = Header {
            first_seq: self.next_seq,
            count,
            dest,
            source,
            target,
            position,
            time_ms,
            origin,
        };
        let start = self.pending.len();
        record::encode(&h, payload, &mut self.pending);
        self.pending_headers.push((h, self.pending.len() - start));
        self.next_seq = h.end_seq();
        for e in dest.iter() {
            if let Some(b) = self.backlog.get_mut(&e) {
                *b += u64::from(count);
            }
        }
        self.pending_positions.insert(source, position);
        self.pending_counts
            .insert(source, count_at_position(&origin));
        Ok(h.first_seq)
    }

    /// Writes what `append` buffered, fdatasyncs it, then writes the cursors
    /// if they changed and frees fully acknowledged segments. Returns the
    /// sequence below which everything is durable; only then may events be
    /// reported accepted. On error (ENOSPC, I/O) while writing records, the
    /// segment is cut back to its last durable length and the records stay
    /// pending for the next try: nothing half-written is ever left valid. An
    /// error while writing the cursors comes first and leaves the records
    /// pending too.
    pub fn sync(&mut self) -> io::Result<u64> {
        // Cursors first: an engine added since the last sync must have its cursor on
        // flash before records destined to it are, or a crash in between would
        // leave those records behind its start. (Acks only cover durable data, so
        // persisting them before new records is always safe.)
        if self.cursors_dirty {
            if let Err(e) = self.write_cursors() {
                if e.raw_os_error() != Some(ENOSPC) {
                    return Err(e);
                }
                // Disk full: free the segments every engine acknowledged (by the
                // cursors in memory: deleting them loses nothing an engine still
                // needs, even if we crash before the cursors reach flash), then retry.
                self.reclaim()?;
                self.write_cursors()?;
            }
            self.reclaim()?;
        }
        if !self.pending.is_empty() {
            self.write_pending()?;
            self.synced_seq = self.next_seq;
            self.positions.append(&mut self.pending_positions);
            self.counts.append(&mut self.pending_counts);
        }
        Ok(self.synced_seq)
    }

    fn write_pending(&mut self) -> io::Result<()> {
        let mut o = 0;
        let mut written: Vec<(String, u64, u64)> = Vec::new(); // (segment, length and end_seq before this sync)
        let result = (|| {
            let mut i = 0;
            while i < self.pending_headers.len() {
                let need_new = match self.segments.last() {
                    None => true,
                    Some(s) => {
                        s.len + self.pending_headers[i].1 as u64 > self.limits.segment_max
                            && s.len > 0
                    }
                };
                if need_new {
                    let first = self.pending_headers[i].0.first_seq;
                    self.segments.push(Segment {
                        name: segment_name(first),
                        first_seq: first,
                        end_seq: first,
                        len: 0,
                    });
                }
                // Records up to the segment's room go in one write.
                let seg_idx = self.segments.len() - 1;
                let mut end = o;
                let mut len = self.segments[seg_idx].len;
                let mut j = i;
                while j < self.pending_headers.len() {
                    let l = self.pending_headers[j].1 as u64;
                    if len > 0 && len + l > self.limits.segment_max {
                        break;
                    }
                    len += l;
                    end += l as usize;
                    j += 1;
                }
                let seg = &self.segments[seg_idx];
                if !written.iter().any(|w| w.0 == seg.name) {
                    written.push((seg.name.clone(), seg.len, seg.end_seq));
                }
                let name = seg.name.clone();
                self.storage.append(&name, &self.pending[o..end])?;
                self.storage.sync(&name)?;
                let seg = &mut self.segments[seg_idx];
                seg.len = len;
                seg.end_seq = self.pending_headers[j - 1].0.end_seq();
                o = end;
                i = j;
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                self.pending.clear();
                self.pending_headers.clear();
                Ok(())
            }
            Err(e) => {
                // Cut every segment touched back to its durable length; forget
                // segments this sync created; keep all records pending.
                for (name, before, _) in &written {
                    let _ = self.storage.truncate(name, *before);
                    if *before == 0 {
                        let _ = self.storage.remove(name);
                    }
                }
                self.segments
                    .retain(|s| !written.iter().any(|w| w.0 == s.name && w.1 == 0));
                for s in &mut self.segments {
                    if let Some(w) = written.iter().find(|w| w.0 == s.name) {
                        (s.len, s.end_seq) = (w.1, w.2);
                    }
                }
                Err(e)
            }
        }
    }

    /// Engine `e` acknowledged everything below `upto`, of which `events`
    /// were destined to it. Persisted at the next `sync`.
    pub fn ack(&mut self, e: EngineId, upto: u64, events: u64) {
        let upto = upto.min(self.synced_seq);
        if let Some(c) = self.cursors.get_mut(&e) {
            if upto > *c {
                *c = upto;
                self.cursors_dirty = true;
            }
            if let Some(b) = self.backlog.get_mut(&e) {
                *b = b.saturating_sub(events);
            }
        }
    }

    /// True when every cursor change has reached flash.
    pub fn cursors_synced(&self) -> bool {
        !self.cursors_dirty
    }

    /// Engine `e`'s cursor as last written to flash (0 when never).
    pub fn durable_cursor(&self, e: EngineId) -> u64 {
        self.durable_cursors.get(&e).copied().unwrap_or(0)
    }

    pub fn cursor(&self, e: EngineId) -> Option<u64> {
        self.cursors.get(&e).copied()
    }

    /// A reader position at engine `e`'s cursor.
    pub fn reader(&self, e: EngineId) -> ReadPos {
        ReadPos {
            seq: self.cursor(e).unwrap_or(self.synced_seq),
            ..ReadPos::default()
        }
    }

    /// The next durable record destined to `e` at or after `pos`, its payload
    /// in `payload`. Records for other engines are skipped by reading their
    /// headers only. `None` when `e` is caught up (then `pos.seq` is the
    /// synced end, which the caller may ack when nothing is in flight).
    pub fn read_next(
        &mut self,
        e: EngineId,
        pos: &mut ReadPos,
        payload: &mut Vec<u8>,
    ) -> io::Result<Option<Header>> {
        let found = self
            .segments
            .iter()
            .position(|s| s.first_seq == pos.segment_first);
        let mut idx = match found {
            Some(i) if pos.offset > 0 => i,
            _ => {
                // Fresh, or its segment was freed: start at the segment holding `seq`.
                let Some(i) = self
                    .segments
                    .iter()
                    .rposition(|s| s.first_seq <= pos.seq)
                    .or(if self.segments.is_empty() {
                        None
                    } else {
                        Some(0)
                    })
                else {
                    return Ok(None);
                };
                pos.offset = 0;
                pos.segment_first = self.segments[i].first_seq;
                i
            }
        };
        let mut head = [0u8; record::HEADER_LEN];
        loop {
            if pos.seq >= self.synced_seq {
                return Ok(None);
            }
            let seg = &self.segments[idx];
            if pos.offset >= seg.len {
                if idx + 1 >= self.segments.len() {
                    return Ok(None);
                }
                idx += 1;
                pos.offset = 0;
                pos.segment_first = self.segments[idx].first_seq;
                continue;
            }
            let name = seg.name.clone();
            let n = self.storage.read_at(&name, pos.offset, &mut head)?;
            let total = match head.get(4..8) {
                Some(b) if n >= 12 => {
                    12 + u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize
                }
                _ => 0,
            };
            if !(record::HEADER_LEN_V1..=RECORD_MAX).contains(&total) {
                // Damage recovery already reported: skip to the next segment.
                pos.offset = u64::MAX;
                continue;
            }
            // Peek the header fields without verifying: a skipped record's bytes are
            // never used. A record we return is read whole and its CRC verified.
            let first = u64::from_le_bytes(head[12..20].try_into().expect("8 bytes"));
            let count = u32::from_le_bytes(head[20..24].try_into().expect("4 bytes"));
            let dest = EngineSet::from_bits(u64::from_le_bytes(
                head[24..32].try_into().expect("8 bytes"),
            ));
            let end = first + u64::from(count);
            if end <= pos.seq || !dest.contains(e) {
                pos.offset += total as u64;
                pos.seq = pos.seq.max(end);
                continue;
            }
            payload.resize(total, 0);
            let n = self.storage.read_at(&name, pos.offset, payload)?;
            match record::parse(&payload[..n]) {
                Parsed::Record { header, len } => {
                    pos.offset += len as u64;
                    pos.seq = header.end_seq();
                    let hl = record::header_len(payload);
                    payload.drain(..hl);
                    payload.truncate(len - hl);
                    return Ok(Some(header));
                }
                _ => {
                    pos.offset = u64::MAX;
                }
            }
        }
    }

    fn write_cursors(&mut self) -> io::Result<()> {
        let gen = self.cursor_gen + 1;
        let mut b = Vec::with_capacity(20 + self.cursors.len() * 9);
        b.extend_from_slice(CURSOR_MAGIC);
        b.push(1);
        b.extend_from_slice(&gen.to_le_bytes());
        b.extend_from_slice(&(self.cursors.len() as u16).to_le_bytes());
        for (&e, &c) in &self.cursors {
            b.push(e);
            b.extend_from_slice(&c.to_le_bytes());
        }
        let crc = crc::crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        self.storage.replace(CURSOR_FILES[(gen % 2) as usize], &b)?;
        self.cursor_gen = gen;
        self.cursors_dirty = false;
        self.durable_cursors.clone_from(&self.cursors);
        Ok(())
    }

    /// Deletes segments every cursor has passed (never the current one).
    fn reclaim(&mut self) -> io::Result<()> {
        let min = self
            .cursors
            .values()
            .copied()
            .min()
            .unwrap_or(self.synced_seq);
        while self.segments.len() > 1 && self.segments[0].end_seq <= min {
            let s = self.segments.remove(0);
            self.storage.remove(&s.name)?;
        }
        Ok(())
    }
}

/// Reads both cursor files; returns the valid one with the higher generation.
fn load_cursors<S: Storage>(storage: &mut S) -> io::Result<(BTreeMap<EngineId, u64>, u64, bool)> {
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

fn parse_cursors(b: &[u8]) -> Option<(u64, BTreeMap<EngineId, u64>)> {
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
