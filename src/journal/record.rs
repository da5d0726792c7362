//! Encoding and scanning records (format in `journal/mod.rs`). Pure: bytes in,
//! records and damage out; the recovery shell reads the files.

use std::io;

use super::crc;
use super::RECORD_MAX;
use crate::event::Position;
use crate::route::{EngineId, EngineSet};

pub const MAGIC: u16 = 0xec0a;
pub const VERSION: u8 = 2;
pub const KIND_EVENTS: u8 = 1;
/// A cursor record: every engine's cursor and backlog at a group commit.
pub const KIND_CURSORS: u8 = 2;
/// Bytes per engine in a cursor record: slot, cursor, backlog.
const CURSOR_ENTRY: usize = 17;
/// At most one entry per engine slot ([`EngineSet`] has 64).
const CURSOR_ENTRIES_MAX: usize = 64;
pub const HEADER_LEN: usize = 96;
/// Version 1 records (no [`Origin`]) are still read.
pub const HEADER_LEN_V1: usize = 72;
/// Bytes before the body: magic, version, kind, body_len, crc.
const PREFIX_LEN: usize = 12;

/// The `source` of records holding events re-routed from a removed engine:
/// they carry no source position ([`Position::None`]).
pub const REROUTED: u16 = u16::MAX;

/// Which of its source's events a record holds, counted the same way by
/// every manager reading the same source (failover, ARCHITECTURE §5): the
/// record's events come from the source block of `block_len` events that
/// follow the source's first `block_start` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Origin {
    pub block_start: u64,
    /// 0: the count is unknown (re-routed events, version 1 records).
    pub block_len: u32,
    /// `position` is the one after the block (else: before it).
    pub at_end: bool,
    /// The engines this is the block's last record for.
    pub closes: EngineSet,
}

impl Origin {
    /// No known source count.
    pub const NONE: Origin = Origin {
        block_start: 0,
        block_len: 0,
        at_end: false,
        closes: EngineSet::EMPTY,
    };

    pub fn known(&self) -> bool {
        self.block_len > 0
    }

    /// The source's event count after the block.
    pub fn block_end(&self) -> u64 {
        self.block_start + u64::from(self.block_len)
    }

    /// The source's event count at the record's `position`.
    pub fn at_position(&self) -> u64 {
        if self.at_end {
            self.block_end()
        } else {
            self.block_start
        }
    }

    /// Once engine `e` acknowledged this record, every event of the source
    /// below this count that was routed to `e` is acknowledged by it.
    pub fn acked_through(&self, e: crate::route::EngineId) -> u64 {
        if self.closes.contains(e) {
            self.block_end()
        } else {
            self.block_start
        }
    }
}

/// A record's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub first_seq: u64,
    pub count: u32,
    pub dest: EngineSet,
    pub source: u16,
    pub target: u16,
    pub position: Position,
    /// Append time, ms since the Unix epoch (the caller's clock).
    pub time_ms: u64,
    pub origin: Origin,
}

impl Header {
    pub fn end_seq(&self) -> u64 {
        self.first_seq + u64::from(self.count)
    }
}

/// Appends one record (header + payload) to `out`.
/// Panics if the record would exceed [`RECORD_MAX`]: callers split first.
pub fn encode(h: &Header, payload: &[u8], out: &mut Vec<u8>) {
    let total = HEADER_LEN + payload.len();
    assert!(
        total <= RECORD_MAX,
        "record of {total} bytes exceeds RECORD_MAX: split it"
    );
    assert!(h.count >= 1, "a record holds at least one event");
    let start = out.len();
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.push(VERSION);
    out.push(KIND_EVENTS);
    out.extend_from_slice(&((total - PREFIX_LEN) as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]); // crc, filled below
    out.extend_from_slice(&h.first_seq.to_le_bytes());
    out.extend_from_slice(&h.count.to_le_bytes());
    out.extend_from_slice(&h.dest.bits().to_le_bytes());
    out.extend_from_slice(&h.source.to_le_bytes());
    out.extend_from_slice(&h.target.to_le_bytes());
    let (kind, a, b, c) = match h.position {
        Position::None => (0u8, 0, 0, 0),
        Position::File { dev, ino, offset } => (1, dev, ino, offset),
        Position::Socket { seq } => (2, seq, 0, 0),
    };
    out.push(kind);
    out.extend_from_slice(&[0; 3]);
    for v in [a, b, c, h.time_ms, h.origin.block_start] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&h.origin.block_len.to_le_bytes());
    out.push(u8::from(h.origin.at_end));
    out.extend_from_slice(&[0; 3]);
    out.extend_from_slice(&h.origin.closes.bits().to_le_bytes());
    out.extend_from_slice(payload);
    let crc = record_crc(&out[start..]);
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
}

/// Appends one cursor record holding `(slot, cursor, backlog)` for each engine.
/// Panics on no entries or more than 64 (callers hold at most 64 slots).
pub fn encode_cursors(entries: &[(EngineId, u64, u64)], out: &mut Vec<u8>) {
    assert!(
        (1..=CURSOR_ENTRIES_MAX).contains(&entries.len()),
        "a cursor record holds 1 to 64 engines"
    );
    let start = out.len();
    let body = 2 + entries.len() * CURSOR_ENTRY;
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.push(VERSION);
    out.push(KIND_CURSORS);
    out.extend_from_slice(&(body as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for &(e, c, b) in entries {
        out.push(e);
        out.extend_from_slice(&c.to_le_bytes());
        out.extend_from_slice(&b.to_le_bytes());
    }
    let crc = record_crc(&out[start..]);
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
}

/// The `(slot, cursor, backlog)` entries of the valid cursor record `rec`
/// (exactly the bytes [`Parsed::Cursors`] measured).
pub fn cursor_entries(rec: &[u8]) -> impl Iterator<Item = (EngineId, u64, u64)> + '_ {
    rec[PREFIX_LEN + 2..]
        .chunks_exact(CURSOR_ENTRY)
        .map(|c| (c[0], u64_at(c, 1), u64_at(c, 9)))
}

/// Total length of the record whose first 12 bytes are `prefix`, if its
/// kind and length field are plausible (CRC not checked): what a reader
/// that skips records needs.
pub fn peek_len(prefix: &[u8]) -> Option<(u8, usize)> {
    if prefix.len() < PREFIX_LEN || u16_at(prefix, 0) != MAGIC {
        return None;
    }
    let total = PREFIX_LEN + u32_at(prefix, 4) as usize;
    let (min, max) = match (prefix[2], prefix[3]) {
        (VERSION, KIND_EVENTS) => (HEADER_LEN, RECORD_MAX),
        (1, KIND_EVENTS) => (HEADER_LEN_V1, RECORD_MAX),
        (VERSION, KIND_CURSORS) => (
            PREFIX_LEN + 2 + CURSOR_ENTRY,
            PREFIX_LEN + 2 + CURSOR_ENTRIES_MAX * CURSOR_ENTRY,
        ),
        _ => return None,
    };
    (min..=max).contains(&total).then_some((prefix[3], total))
}

fn record_crc(rec: &[u8]) -> u32 {
    crc::extend(crc::crc32c(&rec[..8]), &rec[PREFIX_LEN..])
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}

/// What lies at the start of a byte slice.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A valid record of `len` bytes.
    Record { header: Header, len: usize },
    /// A valid cursor record of `len` bytes (read it with [`cursor_entries`]).
    Cursors { len: usize },
    /// The slice ends before the record does (a torn tail if nothing follows).
    Incomplete,
    /// Not a valid record here (bad magic, version, length, CRC or fields).
    Invalid,
}

/// Parses the record at the start of `b`.
pub fn parse(b: &[u8]) -> Parsed {
    if b.len() < PREFIX_LEN {
        return if b.is_empty() || b[..b.len().min(2)] == MAGIC.to_le_bytes()[..b.len().min(2)] {
            Parsed::Incomplete
        } else {
            Parsed::Invalid
        };
    }
    let Some((kind, len)) = peek_len(b) else {
        return Parsed::Invalid;
    };
    if b.len() < len {
        return Parsed::Incomplete;
    }
    let rec = &b[..len];
    if record_crc(rec) != u32_at(rec, 8) {
        return Parsed::Invalid;
    }
    if kind == KIND_CURSORS {
        return if len == PREFIX_LEN + 2 + u16_at(rec, 12) as usize * CURSOR_ENTRY {
            Parsed::Cursors { len }
        } else {
            Parsed::Invalid
        };
    }
    let count = u32_at(rec, 20);
    let position = match rec[36] {
        0 => Position::None,
        1 => Position::File {
            dev: u64_at(rec, 40),
            ino: u64_at(rec, 48),
            offset: u64_at(rec, 56),
        },
        2 => Position::Socket {
            seq: u64_at(rec, 40),
        },
        _ => return Parsed::Invalid,
    };
    if count == 0 {
        return Parsed::Invalid;
    }
    let origin = if header_len(rec) == HEADER_LEN {
        Origin {
            block_start: u64_at(rec, 72),
            block_len: u32_at(rec, 80),
            at_end: rec[84] != 0,
            closes: EngineSet::from_bits(u64_at(rec, 88)),
        }
    } else {
        Origin::NONE
    };
    Parsed::Record {
        header: Header {
            first_seq: u64_at(rec, 12),
            count,
            dest: EngineSet::from_bits(u64_at(rec, 24)),
            source: u16_at(rec, 32),
            target: u16_at(rec, 34),
            position,
            time_ms: u64_at(rec, 64),
            origin,
        },
        len,
    }
}

/// The payload of a valid record of `len` bytes at the start of `b`.
pub fn payload(b: &[u8], len: usize) -> &[u8] {
    &b[header_len(b)..len]
}

/// The header length of the (valid) record at the start of `b`.
pub fn header_len(b: &[u8]) -> usize {
    if b[2] == 1 {
        HEADER_LEN_V1
    } else {
        HEADER_LEN
    }
}

/// A stretch of a segment that holds no valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    pub offset: u64,
    pub len: u64,
    /// True when nothing valid follows in the scanned bytes: a torn tail.
    pub tail: bool,
}

/// The result of scanning one segment's bytes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// `(offset, length, header)` of every valid record, in file order.
    pub records: Vec<(u64, usize, Header)>,
    pub damage: Vec<Damage>,
    /// Where valid data ends: the length to truncate a torn segment to.
    pub valid_end: u64,
}

/// What [`scan_stream`] found besides the records it handed out.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ScanEnd {
    pub damage: Vec<Damage>,
    /// Where valid data ends: the length to truncate a torn segment to.
    pub valid_end: u64,
}

/// Scans a segment of `len` bytes read through `read_at(offset, buf)`, with a
/// window of at most 2 × RECORD_MAX bytes (bounded RAM, whatever the segment
/// size). Calls `on(offset, length, header)` for each valid event record; `on`
/// returns false to count a record as damage (e.g. out of sequence). Calls
/// `on_cursors(record)` with each valid cursor record's bytes. After an
/// invalid byte it looks for the next valid record (resync), so a corrupt
/// record in the middle costs only itself. A file that ends early (shrank
/// while being read) is scanned up to where it ends.
pub fn scan_stream(
    mut read_at: impl FnMut(u64, &mut [u8]) -> io::Result<usize>,
    len: u64,
    mut on: impl FnMut(u64, usize, &Header) -> bool,
    mut on_cursors: impl FnMut(&[u8]),
) -> io::Result<ScanEnd> {
    let mut buf = vec![0u8; (2 * RECORD_MAX).min(len as usize)];
    let mut base = 0u64; // file offset of buf[0]
    let mut filled = read_at(0, &mut buf)?;
    let mut end = if filled < buf.len() {
        filled as u64
    } else {
        len
    };
    let mut p = 0usize;
    let mut out = ScanEnd::default();
    let mut bad_from: Option<u64> = None;
    loop {
        let at_eof = base + filled as u64 >= end;
        if p >= filled && at_eof {
            break;
        }
        if !at_eof && filled - p < RECORD_MAX {
            buf.copy_within(p..filled, 0);
            base += p as u64;
            filled -= p;
            p = 0;
            let n = read_at(base + filled as u64, &mut buf[filled..])?;
            if n == 0 {
                end = base + filled as u64;
            }
            filled += n;
            continue;
        }
        let off = base + p as u64;
        let valid = match parse(&buf[p..filled]) {
            Parsed::Record { header, len } if on(off, len, &header) => Some(len),
            Parsed::Cursors { len } => {
                on_cursors(&buf[p..p + len]);
                Some(len)
            }
            _ => None,
        };
        match valid {
            Some(len) => {
                if let Some(from) = bad_from.take() {
                    out.damage.push(Damage {
                        offset: from,
                        len: off - from,
                        tail: false,
                    });
                }
                p += len;
                out.valid_end = off + len as u64;
            }
            None => {
                bad_from.get_or_insert(off);
                p += 1;
            }
        }
    }
    if let Some(from) = bad_from {
        out.damage.push(Damage {
            offset: from,
            len: end - from,
            tail: true,
        });
    }
    Ok(out)
}

/// Scans a whole segment image in memory (the same scanner recovery uses).
pub fn scan(b: &[u8]) -> Scan {
    let mut records = Vec::new();
    let read_at = |off: u64, buf: &mut [u8]| -> io::Result<usize> {
        let start = (off as usize).min(b.len());
        let n = buf.len().min(b.len() - start);
        buf[..n].copy_from_slice(&b[start..start + n]);
        Ok(n)
    };
    let end = scan_stream(
        read_at,
        b.len() as u64,
        |off, len, h| {
            records.push((off, len, *h));
            true
        },
        |_| {},
    )
    .expect("reading a slice cannot fail");
    Scan {
        records,
        damage: end.damage,
        valid_end: end.valid_end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(seq: u64, count: u32) -> Header {
        Header {
            first_seq: seq,
            count,
            dest: EngineSet::from_bits(0b101),
            source: 2,
            target: 7,
            position: Position::File {
                dev: 0x803,
                ino: 1234,
                offset: 99,
            },
            time_ms: 1_790_000_000_000,
            origin: Origin {
                block_start: 5_000_000_000,
                block_len: 64,
                at_end: true,
                closes: EngineSet::from_bits(0b100),
            },
        }
    }

    fn image(n: usize) -> (Vec<u8>, Vec<(u64, usize)>) {
        let mut out = Vec::new();
        let mut spans = Vec::new();
        let mut seq = 0;
        for i in 0..n {
            let start = out.len();
            let payload = vec![i as u8; i * 13 % 200];
            encode(&header(seq, i as u32 + 1), &payload, &mut out);
            spans.push((start as u64, out.len() - start));
            seq += i as u64 + 1;
        }
        (out, spans)
    }

    #[test]
    fn records_round_trip_with_their_positions() {
        let mut out = Vec::new();
        for pos in [
            Position::None,
            Position::Socket { seq: 42 },
            Position::File {
                dev: 1,
                ino: 2,
                offset: 3,
            },
        ] {
            let h = Header {
                position: pos,
                ..header(10, 3)
            };
            out.clear();
            encode(&h, b"payload", &mut out);
            assert_eq!(
                parse(&out),
                Parsed::Record {
                    header: h,
                    len: out.len()
                }
            );
            assert_eq!(payload(&out, out.len()), b"payload");
        }
    }

    /// A version 1 record (72-byte header, no origin), as version 1 wrote it.
    fn encode_v1(h: &Header, payload: &[u8]) -> Vec<u8> {
        let mut v2 = Vec::new();
        encode(h, payload, &mut v2);
        let mut out = v2[..HEADER_LEN_V1].to_vec();
        out[2] = 1;
        out[4..8]
            .copy_from_slice(&((HEADER_LEN_V1 + payload.len() - PREFIX_LEN) as u32).to_le_bytes());
        out.extend_from_slice(payload);
        let crc = record_crc(&out);
        out[8..12].copy_from_slice(&crc.to_le_bytes());
        out
    }

    #[test]
    fn version_1_records_are_read_without_an_origin() {
        let h = header(10, 3);
        let b = encode_v1(&h, b"old payload");
        assert_eq!(
            parse(&b),
            Parsed::Record {
                header: Header {
                    origin: Origin::NONE,
                    ..h
                },
                len: b.len()
            }
        );
        assert_eq!(payload(&b, b.len()), b"old payload");
        let mut img = b.clone();
        encode(&h, b"new", &mut img);
        assert_eq!(scan(&img).records.len(), 2);
    }

    #[test]
    fn an_origin_says_what_an_engine_acknowledged() {
        let o = header(0, 1).origin;
        assert_eq!(o.block_end(), 5_000_000_064);
        assert_eq!(o.at_position(), 5_000_000_064);
        assert_eq!(o.acked_through(2), 5_000_000_064, "engine 2: block closed");
        assert_eq!(
            o.acked_through(0),
            5_000_000_000,
            "engine 0: more records of the block follow"
        );
        assert!(!Origin::NONE.known());
    }

    #[test]
    fn a_clean_image_scans_to_all_records_and_no_damage() {
        let (img, spans) = image(20);
        let s = scan(&img);
        assert!(s.damage.is_empty());
        assert_eq!(s.valid_end, img.len() as u64);
        let got: Vec<(u64, usize)> = s.records.iter().map(|r| (r.0, r.1)).collect();
        assert_eq!(got, spans);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn a_torn_tail_is_never_valid_and_every_whole_record_survives(cut in 0usize..3000) {
            let (img, spans) = image(20);
            let cut = cut.min(img.len());
            let s = scan(&img[..cut]);
            let whole = spans.iter().take_while(|(o, l)| (*o as usize + l) <= cut).count();
            prop_assert_eq!(s.records.len(), whole);
            prop_assert_eq!(s.valid_end as usize, spans[..whole].last().map(|(o, l)| *o as usize + l).unwrap_or(0));
            prop_assert!(s.damage.iter().all(|d| d.tail));
        }

        #[test]
        fn flipped_bits_never_yield_a_damaged_record_as_valid(flips in proptest::collection::vec((0usize..3000, 0u8..8), 1..6)) {
            let (clean, spans) = image(20);
            let mut img = clean.clone();
            for (at, bit) in &flips {
                let at = at % img.len();
                img[at] ^= 1 << bit;
            }
            for (o, len, _) in scan(&img).records {
                let (o, len) = (o as usize, len);
                // A record reported valid is byte for byte one of the records written.
                prop_assert!(spans.contains(&(o as u64, len)), "invented a record at {}", o);
                prop_assert_eq!(&img[o..o + len], &clean[o..o + len]);
            }
        }
    }

    #[test]
    fn segments_larger_than_the_scan_window_scan_the_same_across_refills() {
        // Six 200 KiB records: 1.2 MB, several refills of the 512 KiB window.
        let mut img = Vec::new();
        let mut spans = Vec::new();
        for i in 0..6u64 {
            let start = img.len();
            encode(&header(i, 1), &vec![i as u8; 200 * 1024], &mut img);
            spans.push((start as u64, img.len() - start));
        }
        let clean = scan(&img);
        assert_eq!(
            clean.records.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
            spans
        );
        assert!(clean.damage.is_empty());
        let (o, len) = spans[3];
        img[o as usize + 1000] ^= 1;
        let s = scan(&img);
        assert_eq!(s.records.len(), 5);
        assert_eq!(
            s.damage,
            vec![Damage {
                offset: o,
                len: len as u64,
                tail: false
            }]
        );
        let torn = scan(&img[..img.len() - 10]);
        assert_eq!(torn.valid_end, spans[4].0 + spans[4].1 as u64);
        assert!(torn.damage.last().unwrap().tail);
    }

    #[test]
    fn a_corrupt_record_in_the_middle_costs_only_itself() {
        let (mut img, spans) = image(10);
        let (o, _) = spans[4];
        img[o as usize + 30] ^= 0xff;
        let s = scan(&img);
        assert_eq!(s.records.len(), 9);
        assert_eq!(
            s.damage,
            vec![Damage {
                offset: o,
                len: spans[4].1 as u64,
                tail: false
            }]
        );
        assert_eq!(s.valid_end, img.len() as u64);
    }
}
