//! The journal proper: append, group sync, per-engine cursors and reading,
//! reclaim, and recovery. Synchronous: the core task calls it between awaits
//! (regular files are never wrapped in `Async`, ARCHITECTURE §1).
//!
//! Cursors: `cursor[e]` = every sequence below it is acknowledged by engine
//! slot `e` or was never destined to it. A group commit that moves cursors
//! writes a cursor record (every engine's cursor and backlog) ahead of its
//! event records, so one fdatasync makes both durable. The set of engines
//! lives in two alternating checkpoint files, `cursors-a` and `cursors-b`,
//! each with a generation and a CRC, rewritten only when an engine is added
//! or removed (or when a lone cursor record no longer fits the last
//! segment). Recovery takes the valid file with the higher generation (so a
//! damaged newest file falls back to the previous one), then moves each
//! cursor forward by the cursor records it scans. Deleting a segment loses
//! only cursor records whose cursors are at most its end, which every
//! cursor has passed: a cursor below the first segment reads from there.

use std::collections::BTreeMap;
use std::io;

use super::record::{self, Header, Origin, Parsed};
use super::storage::Storage;
use super::{crc, SEGMENT_MAX};
use crate::event::Position;
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
            engine_events_max: crate::limits::DEFAULT_BUFFERSIZE,
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
    /// `(offset, length)` of damaged stretches: readers resume after them.
    damage: Vec<(u64, u64)>,
}

/// Where recoveries that found damage are recorded, one line each, so that
/// `edgecm queue` still tells after the damaged segments were freed.
pub const DAMAGE_LOG: &str = "damage.log";

/// A file of zeros kept in the state dir while there is room: deleted when
/// the filesystem is full, so that acknowledgements (the cursor file) and
/// source positions can always be written and the queue drains (contract 4),
/// made again once there is room.
pub const RESERVE_FILE: &str = "reserve";
pub const RESERVE_BYTES: usize = 256 * 1024;

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
    /// Cursor records read (one per group commit that moved a cursor).
    pub cursor_records: u64,
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
    /// An engine was added or removed: the next sync rewrites the cursor file.
    checkpoint: bool,
    cursor_gen: u64,
    /// Events destined to each engine and not yet acknowledged.
    backlog: BTreeMap<EngineId, u64>,
    /// Latest durable position per raw-source.
    positions: BTreeMap<u16, Position>,
    pending_positions: BTreeMap<u16, Position>,
    /// The source's event count at that position (None: unknown).
    counts: BTreeMap<u16, Option<u64>>,
    pending_counts: BTreeMap<u16, Option<u64>>,
    /// Each source's latest record (its first seq), durable and pending:
    /// reclaim must not delete the segment that holds a source's position
    /// before the positions file has it.
    pos_seq: BTreeMap<u16, u64>,
    pending_pos_seq: BTreeMap<u16, u64>,
    /// What the positions file holds (as last written or read).
    saved_positions: BTreeMap<u16, (Position, Option<u64>)>,
    /// Set when the filesystem filled up: appends are refused (sources
    /// pause) until the journal is below these bytes (a low-water mark, a
    /// quarter under what it held then), while engines drain it.
    full_until: Option<u64>,
    /// The reserve file is there.
    reserve: bool,
    pub recovery: Recovery,
}

/// Where each source stands when the segment that held its latest record
/// is deleted (a source that finished, or has been quiet, while engines
/// caught up): written (write-new, fsync, rename) before such a deletion,
/// read before the segments at recovery, whose records override it. Without
/// it, a finished source would be read again from its start after a restart.
const POSITIONS_FILE: &str = "positions";
const POSITIONS_MAGIC: &[u8; 4] = b"EPOS";

fn encode_positions(p: &BTreeMap<u16, (Position, Option<u64>)>) -> Vec<u8> {
    let mut b = Vec::with_capacity(8 + p.len() * 36);
    b.extend_from_slice(POSITIONS_MAGIC);
    b.push(1);
    b.extend_from_slice(&(p.len() as u16).to_le_bytes());
    for (&src, &(pos, count)) in p {
        b.extend_from_slice(&src.to_le_bytes());
        let (kind, x, y, z) = match pos {
            Position::None => (0u8, 0, 0, 0),
            Position::File { dev, ino, offset } => (1, dev, ino, offset),
            Position::Socket { seq } => (2, seq, 0, 0),
        };
        b.push(kind);
        for v in [x, y, z] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.push(u8::from(count.is_some()));
        b.extend_from_slice(&count.unwrap_or(0).to_le_bytes());
    }
    let c = crc::crc32c(&b);
    b.extend_from_slice(&c.to_le_bytes());
    b
}

fn decode_positions(b: &[u8]) -> Option<BTreeMap<u16, (Position, Option<u64>)>> {
    let (body, tail) = b.split_at(b.len().checked_sub(4)?);
    if crc::crc32c(body).to_le_bytes() != tail || body.get(..5)? != b"EPOS\x01" {
        return None;
    }
    let n = u16::from_le_bytes(body.get(5..7)?.try_into().ok()?) as usize;
    let mut out = BTreeMap::new();
    let mut at = 7;
    for _ in 0..n {
        let e = body.get(at..at + 36)?;
        let u = |i: usize| u64::from_le_bytes(e[i..i + 8].try_into().expect("8 bytes"));
        let pos = match e[2] {
            0 => Position::None,
            1 => Position::File {
                dev: u(3),
                ino: u(11),
                offset: u(19),
            },
            2 => Position::Socket { seq: u(3) },
            _ => return None,
        };
        let count = (e[27] == 1).then(|| u(28));
        out.insert(u16::from_le_bytes([e[0], e[1]]), (pos, count));
        at += 36;
    }
    Some(out)
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
                if source == super::REROUTED || !origin.known() {
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

    /// The lines of [`DAMAGE_LOG`]: every recovery that found damage.
    pub fn damage_log(&mut self) -> io::Result<Vec<String>> {
        if !self.storage.list()?.iter().any(|n| n == DAMAGE_LOG) {
            return Ok(Vec::new());
        }
        let len = self.storage.len(DAMAGE_LOG)? as usize;
        let mut b = vec![0u8; len.min(1 << 20)];
        let n = self.storage.read_at(DAMAGE_LOG, 0, &mut b)?;
        Ok(String::from_utf8_lossy(&b[..n])
            .lines()
            .map(str::to_string)
            .collect())
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
            self.checkpoint = true;
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
        self.checkpoint = true;
        // Count what is queued for it (only here: recovery counted the others).
        let n = self.count_backlog(e)?;
        self.backlog.insert(e, n);
        Ok(())
    }

    /// Events destined to `e` from its cursor on, counted by reading.
    fn count_backlog(&mut self, e: EngineId) -> io::Result<u64> {
        let mut pos = self.reader(e);
        let from = pos.seq;
        let mut buf = Vec::new();
        let mut n = 0;
        while let Some(h) = self.read_next(e, &mut pos, &mut buf)? {
            n += h.end_seq() - h.first_seq.max(from);
        }
        Ok(n)
    }

    /// Stops tracking an engine slot (removed through the admin API): its
    /// cursor is dropped. Re-routing its backlog is the caller's, before this.
    pub fn remove_engine(&mut self, e: EngineId) {
        self.cursors.remove(&e);
        self.backlog.remove(&e);
        self.cursors_dirty = true;
        self.checkpoint = true;
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

    /// Durable resume position per raw-source id (`layout`).
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

    /// The filesystem filled up and the journal drains to its low-water mark.
    pub fn disk_full(&self) -> bool {
        self.full_until.is_some()
    }

    /// The byte cap (`-state-max`).
    pub fn bytes_max(&self) -> u64 {
        self.limits.bytes_max
    }

    /// Bytes appended and not yet written (what the next `sync` writes).
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
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
        if self.bytes() + len > self.limits.bytes_max
            || self.full_until.is_some_and(|lw| self.bytes() + len > lw)
        {
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
        self.pending_pos_seq.insert(source, h.first_seq);
        Ok(h.first_seq)
    }

    /// Writes what `append` buffered and the cursors if they changed, with
    /// one fdatasync, and frees fully acknowledged segments. Returns the
    /// sequence below which everything is durable; only then may events be
    /// reported accepted. On error (ENOSPC, I/O) while writing records, the
    /// segment is cut back to its last durable length and the records stay
    /// pending for the next try: nothing half-written is ever left valid. An
    /// error while writing the cursors comes first and leaves the records
    /// pending too.
    pub fn sync(&mut self) -> io::Result<u64> {
        // An engine added or removed: the cursor file first. An engine added
        // since the last sync must have its cursor on flash before records
        // destined to it are, or a crash in between would leave those records
        // behind its start. (Acks only cover durable data, so persisting them
        // before new records is always safe.)
        if self.checkpoint {
            if let Err(e) = self.write_cursors() {
                if e.raw_os_error() != Some(ENOSPC) {
                    return Err(e);
                }
                // Disk full: free the segments every engine acknowledged (by the
                // cursors in memory: deleting them loses nothing an engine still
                // needs, even if we crash before the cursors reach flash), then retry.
                self.reclaim()?;
                self.with_reserve(|j| j.write_cursors())?;
            }
            self.reclaim()?;
        }
        if self.pending.is_empty() && !self.cursors_dirty {
            return Ok(self.synced_seq);
        }
        // Acks ride in a cursor record ahead of the new records, under the same fdatasync.
        let with_cursors = self.cursors_dirty;
        if let Err(e) = self.write_pending(with_cursors) {
            if e.raw_os_error() != Some(ENOSPC) {
                return Err(e);
            }
            self.reclaim()?;
            if let Err(e) = self.write_pending(with_cursors) {
                if e.raw_os_error() != Some(ENOSPC) {
                    return Err(e);
                }
                return self.drain_full_disk();
            }
        }
        if let Some(lw) = self.full_until {
            if self.bytes() <= lw {
                self.full_until = None;
                log::info!(
                    "journal: below its low-water mark after a full disk; sources read again"
                );
            }
        }
        if !self.reserve && self.full_until.is_none() {
            // Room again: keep the reserve for the next time the disk fills.
            self.reserve = self
                .storage
                .replace(RESERVE_FILE, &[0; RESERVE_BYTES])
                .is_ok();
        }
        self.synced_seq = self.next_seq;
        self.positions.append(&mut self.pending_positions);
        self.counts.append(&mut self.pending_counts);
        self.pos_seq.append(&mut self.pending_pos_seq);
        if with_cursors {
            self.durable_cursors.clone_from(&self.cursors);
            self.cursors_dirty = false;
            self.reclaim()?;
        }
        Ok(self.synced_seq)
    }

    /// The filesystem is full (not the journal's cap): the new records stay
    /// pending (sources pause at the low-water mark), but acknowledgements
    /// are made durable in the cursor file, with the reserve's room if need
    /// be, so engines go on draining and their segments are freed.
    fn drain_full_disk(&mut self) -> io::Result<u64> {
        if self.full_until.is_none() {
            log::warn!(
                "journal: the filesystem is full; sources pause, engines drain the journal ({} bytes) to below {} bytes",
                self.bytes(),
                self.bytes() * 3 / 4
            );
        }
        let lw = self.bytes() * 3 / 4;
        self.full_until = Some(self.full_until.map_or(lw, |old| old.min(lw)));
        if self.cursors_dirty {
            self.with_reserve(|j| j.write_cursors())?;
            self.reclaim()?;
        }
        Ok(self.synced_seq)
    }

    /// Runs `f`; on ENOSPC deletes the reserve file and runs it again.
    fn with_reserve(&mut self, f: impl Fn(&mut Self) -> io::Result<()>) -> io::Result<()> {
        match f(self) {
            Err(e) if e.raw_os_error() == Some(ENOSPC) => {
                if self.reserve {
                    log::warn!("journal: the filesystem is full; using the reserve to record acknowledgements");
                    self.storage.remove(RESERVE_FILE)?;
                    self.reserve = false;
                }
                f(self)
            }
            r => r,
        }
    }

    /// Writes the buffered records, preceded by a cursor record when
    /// `with_cursors`, into the last segment and new ones as they fill, with
    /// one fdatasync per segment touched: a group commit costs one fsync for
    /// records and cursors together. A cursor record that does not fit the
    /// last segment goes to the cursor file instead, so every segment holds
    /// events and its name (its first sequence) is unique.
    fn write_pending(&mut self, with_cursors: bool) -> io::Result<()> {
        let mut cur = Vec::new();
        if with_cursors && !self.cursors.is_empty() {
            let entries: Vec<(EngineId, u64, u64)> = self
                .cursors
                .iter()
                .map(|(&e, &c)| {
                    // The backlog the scan will have counted up to this record.
                    let pending: u64 = self
                        .pending_headers
                        .iter()
                        .filter(|(h, _)| h.dest.contains(e))
                        .map(|(h, _)| u64::from(h.count))
                        .sum();
                    (e, c, self.backlog(e).saturating_sub(pending))
                })
                .collect();
            record::encode_cursors(&entries, &mut cur);
        }
        let max = self.limits.segment_max;
        let fits = move |s: &Segment, len: usize| s.len == 0 || s.len + len as u64 <= max;
        // A commit that does not fit the last segment but fits a new one goes
        // there whole: one fdatasync instead of one per segment.
        let whole = (cur.len() + self.pending.len()) as u64;
        let roll = !self.pending.is_empty()
            && whole <= max
            && self
                .segments
                .last()
                .is_some_and(|s| !fits(s, whole as usize));
        if with_cursors
            && ((!roll && !self.segments.last().is_some_and(|s| fits(s, cur.len())))
                || self.bytes() + cur.len() as u64 > self.limits.bytes_max)
        {
            // A cursor record never opens a segment (a segment's name is its
            // first event's sequence) nor passes the byte cap: the cursor file
            // takes this one.
            self.write_cursors()?;
            cur.clear();
        }
        if self.pending.is_empty() && cur.is_empty() {
            return Ok(());
        }
        // (length, first sequence, end sequence if it holds events), in write order.
        let mut items: Vec<(usize, u64, Option<u64>)> =
            Vec::with_capacity(1 + self.pending_headers.len());
        if !cur.is_empty() {
            items.push((cur.len(), self.synced_seq, None));
        }
        items.extend(
            self.pending_headers
                .iter()
                .map(|(h, l)| (*l, h.first_seq, Some(h.end_seq()))),
        );
        let mut o = 0; // offset in `pending` of the next record to write
        let mut written: Vec<(String, u64, u64)> = Vec::new(); // (segment, length and end_seq before this sync)
        let result = (|| {
            let mut i = 0;
            while i < items.len() {
                if (roll && i == 0) || self.segments.last().is_none_or(|s| !fits(s, items[i].0)) {
                    // Named by its first event's sequence (a cursor record comes first only with events).
                    let first = items[i].1;
                    self.segments.push(Segment {
                        name: segment_name(first),
                        first_seq: first,
                        end_seq: first,
                        len: 0,
                        damage: Vec::new(),
                    });
                }
                // Items up to the segment's room go in one write.
                let seg_idx = self.segments.len() - 1;
                let mut len = self.segments[seg_idx].len;
                let mut j = i;
                let mut end_seq = None;
                while j < items.len()
                    && (j == i || len + items[j].0 as u64 <= self.limits.segment_max)
                {
                    len += items[j].0 as u64;
                    end_seq = items[j].2.or(end_seq);
                    j += 1;
                }
                let seg = &self.segments[seg_idx];
                if !written.iter().any(|w| w.0 == seg.name) {
                    written.push((seg.name.clone(), seg.len, seg.end_seq));
                }
                let name = seg.name.clone();
                let records = items[i..j]
                    .iter()
                    .filter(|it| it.2.is_some())
                    .map(|it| it.0)
                    .sum::<usize>();
                if items[i].2.is_none() {
                    self.storage.append(&name, &cur)?;
                }
                if records > 0 {
                    self.storage.append(&name, &self.pending[o..o + records])?;
                }
                self.storage.sync(&name)?;
                o += records;
                let seg = &mut self.segments[seg_idx];
                seg.len = len;
                if let Some(e) = end_seq {
                    seg.end_seq = e;
                }
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
            let total = match record::peek_len(&head[..n]) {
                Some((record::KIND_CURSORS, total)) => {
                    pos.offset += total as u64;
                    continue;
                }
                Some((_, total)) => total,
                None => {
                    // Damage: resume at the next valid record, not the next segment.
                    pos.offset = self.after_damage(idx, pos.offset)?;
                    continue;
                }
            };
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
                    pos.offset = self.after_damage(idx, pos.offset)?;
                }
            }
        }
    }

    /// Where the damaged stretch of segment `idx` that holds `offset` ends:
    /// the next valid record. Damage recovery did not see (flash that went
    /// bad since) is found by scanning the segment again, once.
    fn after_damage(&mut self, idx: usize, offset: u64) -> io::Result<u64> {
        let within = |d: &[(u64, u64)]| {
            d.iter()
                .find(|&&(o, l)| o <= offset && offset < o + l)
                .map(|&(o, l)| o + l)
        };
        if let Some(end) = within(&self.segments[idx].damage) {
            return Ok(end);
        }
        let name = self.segments[idx].name.clone();
        let len = self.segments[idx].len;
        let storage = &mut self.storage;
        let scan = record::scan_stream(
            |o, b| storage.read_at(&name, o, b),
            len,
            |_, _, _| true,
            |_| {},
        )?;
        self.segments[idx].damage = scan.damage.iter().map(|d| (d.offset, d.len)).collect();
        match within(&self.segments[idx].damage) {
            Some(end) => {
                log::error!(
                    "journal: {name} went bad at byte {offset} since it was written; reading on after the damage"
                );
                Ok(end)
            }
            None => {
                log::error!("journal: {name}: a record at byte {offset} does not read; the rest of the segment is skipped");
                Ok(u64::MAX)
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
        self.checkpoint = false;
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
        let mut n = 0;
        while n + 1 < self.segments.len() && self.segments[n].end_seq <= min {
            n += 1;
        }
        if n == 0 {
            return Ok(());
        }
        // Sources whose latest record goes with these segments: their
        // positions reach the positions file first.
        let kept_from = self.segments[n].first_seq;
        let doomed: Vec<u16> = self
            .pos_seq
            .iter()
            .filter(|&(&src, &seq)| src != super::REROUTED && seq < kept_from)
            .map(|(&src, _)| src)
            .collect();
        let now = |src: &u16| {
            (
                self.positions.get(src).copied().unwrap_or_default(),
                self.counts.get(src).copied().flatten(),
            )
        };
        if doomed
            .iter()
            .any(|src| self.saved_positions.get(src) != Some(&now(src)))
        {
            let all: BTreeMap<u16, (Position, Option<u64>)> = self
                .positions
                .keys()
                .filter(|&&src| src != super::REROUTED)
                .map(|src| (*src, now(src)))
                .collect();
            let bytes = encode_positions(&all);
            self.with_reserve(|j| j.storage.replace(POSITIONS_FILE, &bytes))?;
            self.saved_positions = all;
        }
        for s in self.segments.drain(..n) {
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
