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

mod commit;
mod read;
mod recover;

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
pub use crate::limits::RESERVE_BYTES;

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
    /// Each engine's read-ahead (`limits::JOURNAL_READ_AHEAD`), by engine id.
    ahead: Vec<Ahead>,
    pub recovery: Recovery,
}

/// A stretch of a segment's durable bytes an engine's reader read in one
/// go: the records after the one it asked for come from RAM, not from a
/// seek and a read each. Durable bytes never change (a failed commit cuts
/// back to the durable length, and segments are named by their first
/// sequence, never twice), so the copy cannot go stale.
#[derive(Debug, Default)]
struct Ahead {
    /// The segment's first sequence (its name) and the offset of `data[0]`.
    segment_first: u64,
    at: u64,
    data: Vec<u8>,
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
        // A peek for status and metrics: the sender's read-ahead, further
        // on, stays where it is instead of being refilled at the cursor.
        let i = usize::from(e);
        let kept = self.ahead.get_mut(i).map(std::mem::take);
        let read = self.read_next(e, &mut pos, &mut buf);
        if let Some(k) = kept {
            self.ahead[i] = k;
        }
        Ok(read?.map(|h| h.time_ms))
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

    /// Gives back the group-commit buffer (up to `-commit-bytes`, 1 MiB by
    /// default) when nothing waits in it: an idle manager holds no such
    /// buffer, and the next burst grows it again. False when records wait.
    pub fn release_buffer(&mut self) -> bool {
        if !self.pending.is_empty() {
            return false;
        }
        self.pending = Vec::new();
        self.pending_headers = Vec::new();
        self.ahead = Vec::new();
        true
    }

    /// Bytes the group-commit buffer holds reserved.
    pub fn buffer_capacity(&self) -> usize {
        self.pending.capacity()
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
}
