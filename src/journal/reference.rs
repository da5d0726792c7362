//! Reference data kept for engines that join later (ARCHITECTURE §2,
//! contract 7): the journal records of the maps that orchestration orders
//! before others, and of every multicast map, copied as they are appended to
//! `{state-dir}/reference`, kept after every engine acknowledged them (the
//! journal frees its segments as usual), and sent again, in order, to an
//! engine that gets its project anew, before anything else.
//!
//! Format: records appended one after the other, each
//!
//! | bytes | field |
//! |---|---|
//! | 2 | magic `ER` |
//! | 4 | payload length, LE |
//! | 4 | CRC-32C of the next 23 bytes and the payload, LE |
//! | 8 | first journal seq of the record, LE |
//! | 8 | engine set it was routed to (global ids), LE |
//! | 2 | destination index (the journal's `target`), LE |
//! | 4 | events, LE |
//! | 1 | 1 when the map multicasts (every engine of its cluster wants it) |
//! | n | the payload, in the journal's block format |
//!
//! Written without a sync of its own: the group commit syncs it before the
//! journal, so every reference record in a synced journal is on flash too.
//! On open, a torn or damaged tail is cut, and records the journal does not
//! hold (written, then lost with the unsynced journal tail) are dropped, so
//! a source that reads them again does not keep them twice. Bounded by
//! [`crate::limits::REFERENCE_BYTES_MAX`].

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "reference";
const MAGIC: &[u8; 2] = b"ER";
/// Magic, length and CRC, then the fields the CRC covers.
const HEAD: usize = 2 + 4 + 4;
const FIELDS: usize = 8 + 8 + 2 + 4 + 1;
pub const HEADER_LEN: usize = HEAD + FIELDS;

/// One kept record's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefRecord {
    pub seq: u64,
    pub dest: u64,
    pub target: u16,
    pub count: u32,
    pub multicast: bool,
}

impl RefRecord {
    /// Whether engine `id` of the cluster whose global ids are the bits of
    /// `cluster` would have been sent this record.
    pub fn wanted_by(&self, id: u8, cluster: u64) -> bool {
        (self.multicast && self.dest & cluster != 0) || self.dest & (1u64 << id) != 0
    }
}

/// The reference store.
#[derive(Debug)]
pub struct Reference {
    file: Option<File>,
    path: Option<PathBuf>,
    /// The store in RAM when there is no file (tests, benchmarks).
    mem: Vec<u8>,
    bytes: u64,
    max: u64,
    unsynced: bool,
    pub events: u64,
    pub records: u64,
    /// Reference events not kept: past the cap.
    pub dropped_events: u64,
    /// Bytes cut at open (a torn tail or damage), and records dropped as
    /// not in the journal.
    pub cut_bytes: u64,
}

fn encode(r: &RefRecord, payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    let fields = out.len();
    out.extend_from_slice(&r.seq.to_le_bytes());
    out.extend_from_slice(&r.dest.to_le_bytes());
    out.extend_from_slice(&r.target.to_le_bytes());
    out.extend_from_slice(&r.count.to_le_bytes());
    out.push(u8::from(r.multicast));
    out.extend_from_slice(payload);
    let crc = super::crc::crc32c(&out[fields..]);
    out[at..at + 4].copy_from_slice(&crc.to_le_bytes());
}

/// The record at the start of `b` and its total length, if whole and intact.
fn decode(b: &[u8]) -> Option<(RefRecord, usize)> {
    if b.len() < HEADER_LEN || &b[..2] != MAGIC {
        return None;
    }
    let len = u32::from_le_bytes(b[2..6].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(b[6..10].try_into().ok()?);
    let total = HEADER_LEN.checked_add(len)?;
    if b.len() < total || super::crc::crc32c(&b[HEAD..total]) != crc {
        return None;
    }
    let f = &b[HEAD..];
    let u64_at = |i: usize| u64::from_le_bytes(f[i..i + 8].try_into().expect("8 bytes"));
    Some((
        RefRecord {
            seq: u64_at(0),
            dest: u64_at(8),
            target: u16::from_le_bytes([f[16], f[17]]),
            count: u32::from_le_bytes(f[18..22].try_into().expect("4 bytes")),
            multicast: f[22] == 1,
        },
        total,
    ))
}

/// What `dir/reference` holds, read without changing it (`edgecm queue`):
/// (records, events, intact bytes, bytes after them that do not read).
pub fn summary(dir: &Path) -> io::Result<(u64, u64, u64, u64)> {
    let data = match std::fs::read(dir.join(FILE_NAME)) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let (mut records, mut events, mut at) = (0, 0, 0);
    while let Some((h, n)) = decode(&data[at..]) {
        records += 1;
        events += u64::from(h.count);
        at += n;
    }
    Ok((records, events, at as u64, (data.len() - at) as u64))
}

impl Reference {
    /// A store in RAM only.
    pub fn memory(max: u64) -> Reference {
        Reference {
            file: None,
            path: None,
            mem: Vec::new(),
            bytes: 0,
            max,
            unsynced: false,
            events: 0,
            records: 0,
            dropped_events: 0,
            cut_bytes: 0,
        }
    }

    /// Opens `dir/reference`, keeping the intact records below `journal_end`
    /// (the journal's next seq after recovery).
    pub fn open(dir: &Path, max: u64, journal_end: u64) -> io::Result<Reference> {
        let path = dir.join(FILE_NAME);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut r = Reference::memory(max);
        let mut at = 0;
        while let Some((h, n)) = decode(&data[at..]) {
            if h.seq >= journal_end {
                break;
            }
            r.events += u64::from(h.count);
            r.records += 1;
            at += n;
        }
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        if at < data.len() {
            r.cut_bytes = (data.len() - at) as u64;
            file.set_len(at as u64)?;
            file.sync_data()?;
        }
        r.bytes = at as u64;
        r.file = Some(file);
        r.path = Some(path);
        Ok(r)
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Keeps a record; false when it would pass the cap (then counted in
    /// `dropped_events`, and the caller warns).
    pub fn append(&mut self, r: &RefRecord, payload: &[u8]) -> io::Result<bool> {
        let len = (HEADER_LEN + payload.len()) as u64;
        if self.bytes + len > self.max {
            self.dropped_events += u64::from(r.count);
            return Ok(false);
        }
        let mut buf = Vec::with_capacity(len as usize);
        encode(r, payload, &mut buf);
        match &mut self.file {
            Some(f) => f.write_all(&buf)?,
            None => self.mem.extend_from_slice(&buf),
        }
        self.bytes += len;
        self.events += u64::from(r.count);
        self.records += 1;
        self.unsynced = true;
        Ok(true)
    }

    /// Syncs what was appended since the last sync.
    pub fn sync(&mut self) -> io::Result<()> {
        if let (true, Some(f)) = (self.unsynced, &self.file) {
            f.sync_data()?;
        }
        self.unsynced = false;
        Ok(())
    }

    /// The record at `offset` (its payload in `payload`) and the offset of
    /// the next one; None at the end.
    pub fn read_at(
        &self,
        offset: u64,
        payload: &mut Vec<u8>,
    ) -> io::Result<Option<(RefRecord, u64)>> {
        if offset >= self.bytes {
            return Ok(None);
        }
        let mut head = [0u8; HEADER_LEN];
        self.read_exact_at(&mut head, offset)?;
        let len = u32::from_le_bytes(head[2..6].try_into().expect("4 bytes")) as usize;
        let mut whole = Vec::with_capacity(HEADER_LEN + len);
        whole.extend_from_slice(&head);
        whole.resize(HEADER_LEN + len, 0);
        self.read_exact_at(&mut whole[HEADER_LEN..], offset + HEADER_LEN as u64)?;
        let (r, n) = decode(&whole).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("reference record at byte {offset} is damaged"),
            )
        })?;
        payload.clear();
        payload.extend_from_slice(&whole[HEADER_LEN..n]);
        Ok(Some((r, offset + n as u64)))
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        match &self.file {
            Some(f) => f.read_exact_at(buf, offset),
            None => {
                let s = offset as usize;
                let src = self
                    .mem
                    .get(s..s + buf.len())
                    .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
                buf.copy_from_slice(src);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64) -> RefRecord {
        RefRecord {
            seq,
            dest: 0b110,
            target: 3,
            count: 2,
            multicast: true,
        }
    }

    #[test]
    fn kept_read_back_torn_tail_and_unjournaled_records_cut() {
        let dir = std::env::temp_dir().join(format!("edgecm-ref-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut r = Reference::open(&dir, 1 << 20, 0).unwrap();
        for seq in [0, 2, 4] {
            assert!(r
                .append(&rec(seq), format!("payload{seq}").as_bytes())
                .unwrap());
        }
        r.sync().unwrap();
        drop(r);
        // A torn tail: half a record more.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.join(FILE_NAME))
            .unwrap();
        f.write_all(b"ER\x05\x00").unwrap();
        drop(f);
        // The journal holds seqs below 4 only: the third record goes too.
        let r = Reference::open(&dir, 1 << 20, 4).unwrap();
        assert_eq!((r.records, r.events), (2, 4));
        let mut p = Vec::new();
        let (h, next) = r.read_at(0, &mut p).unwrap().unwrap();
        assert_eq!((h, p.as_slice()), (rec(0), &b"payload0"[..]));
        let (h, next) = r.read_at(next, &mut p).unwrap().unwrap();
        assert_eq!((h.seq, p.as_slice()), (2, &b"payload2"[..]));
        assert!(r.read_at(next, &mut p).unwrap().is_none());
        assert!(r.cut_bytes > 4);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_cap_holds_and_counts_what_it_refused() {
        let mut r = Reference::memory(2 * (HEADER_LEN as u64 + 8));
        assert!(r.append(&rec(0), b"12345678").unwrap());
        assert!(r.append(&rec(2), b"12345678").unwrap());
        assert!(!r.append(&rec(4), b"12345678").unwrap());
        assert_eq!((r.records, r.dropped_events), (2, 2));
    }

    #[test]
    fn who_wants_a_record() {
        let mut h = rec(0);
        h.dest = 0b0110_0000;
        assert!(
            h.wanted_by(4, 0b1111_0000),
            "multicast: every engine of the cluster"
        );
        assert!(!h.wanted_by(8, 0b1_0000_0000), "not another cluster's");
        h.multicast = false;
        assert!(h.wanted_by(5, 0b1111_0000));
        assert!(
            !h.wanted_by(4, 0b1111_0000),
            "hash: only the engines it went to"
        );
    }
}
