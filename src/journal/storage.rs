//! Where the journal's bytes live: a small trait, the real folder
//! ([`DirStorage`]), and an in-memory twin ([`MemStorage`]) that can crash,
//! tear the last unsynced write, flip bits and run out of space, seeded, so
//! recovery is tested without a power switch (STYLE.md 13).
//!
//! The contract every implementation keeps: after `sync(name)` returns Ok,
//! everything appended to `name` before it survives a crash; after
//! `replace(name, data)` returns Ok, `name` holds `data` across a crash, and
//! before that it holds its old content (never a mix).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub trait Storage {
    /// Names of the files in the journal folder, sorted.
    fn list(&self) -> io::Result<Vec<String>>;
    fn len(&self, name: &str) -> io::Result<u64>;
    /// Reads up to `buf.len()` bytes at `offset`; fewer only at the end of the file.
    fn read_at(&mut self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// Appends to `name`, creating it. On error some prefix of `data` may have
    /// been written: the caller truncates back.
    fn append(&mut self, name: &str, data: &[u8]) -> io::Result<()>;
    /// Makes everything appended to `name` durable (fdatasync).
    fn sync(&mut self, name: &str) -> io::Result<()>;
    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()>;
    fn remove(&mut self, name: &str) -> io::Result<()>;
    /// Atomically and durably replaces `name` with `data` (write a temporary
    /// file, fsync, rename over `name`, fsync the folder).
    fn replace(&mut self, name: &str, data: &[u8]) -> io::Result<()>;
}

/// The journal folder on a real filesystem. Keeps at most one file open for
/// appending (the current segment) and one for reading.
pub struct DirStorage {
    dir: PathBuf,
    writer: Option<(String, File)>,
    reader: Option<(String, File)>,
    /// Bytes written and fsyncs (of files and of the folder) so far, for
    /// the metrics (flash wear) and the benchmarks.
    written: Cell<u64>,
    syncs: Cell<u64>,
}

impl DirStorage {
    /// Opens (creating) the folder.
    pub fn open(dir: &Path) -> io::Result<DirStorage> {
        fs::create_dir_all(dir)?;
        Ok(DirStorage {
            dir: dir.to_path_buf(),
            writer: None,
            reader: None,
            written: Cell::new(0),
            syncs: Cell::new(0),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes written to the folder's files since it was opened.
    pub fn bytes_written(&self) -> u64 {
        self.written.get()
    }

    /// fsync/fdatasync calls since it was opened.
    pub fn syncs(&self) -> u64 {
        self.syncs.get()
    }

    fn count(&self, bytes: usize, syncs: u64) {
        self.written.set(self.written.get() + bytes as u64);
        self.syncs.set(self.syncs.get() + syncs);
    }

    fn writer(&mut self, name: &str) -> io::Result<&mut File> {
        if self.writer.as_ref().map(|w| w.0.as_str()) != Some(name) {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(name))?;
            self.writer = Some((name.to_string(), f));
        }
        Ok(&mut self.writer.as_mut().expect("just set").1)
    }

    fn sync_dir(&self) -> io::Result<()> {
        self.count(0, 1);
        File::open(&self.dir)?.sync_all()
    }
}

impl Storage for DirStorage {
    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for e in fs::read_dir(&self.dir)? {
            let e = e?;
            if e.file_type()?.is_file() {
                names.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    fn len(&self, name: &str) -> io::Result<u64> {
        Ok(fs::metadata(self.dir.join(name))?.len())
    }

    fn read_at(&mut self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if self.reader.as_ref().map(|r| r.0.as_str()) != Some(name) {
            self.reader = Some((name.to_string(), File::open(self.dir.join(name))?));
        }
        let f = &self.reader.as_ref().expect("just set").1;
        let mut n = 0;
        while n < buf.len() {
            // pread: one system call, no seek.
            match std::os::unix::fs::FileExt::read_at(f, &mut buf[n..], offset + n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    fn append(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        self.count(data.len(), 0);
        self.writer(name)?.write_all(data)
    }

    fn sync(&mut self, name: &str) -> io::Result<()> {
        self.count(0, 1);
        let new = self.writer.as_ref().map(|w| w.0.as_str()) != Some(name);
        self.writer(name)?.sync_data()?;
        if new {
            // A segment created since the last folder sync: make its name durable too.
            self.sync_dir()?;
        }
        Ok(())
    }

    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        let f = OpenOptions::new().write(true).open(self.dir.join(name))?;
        f.set_len(len)?;
        self.count(0, 1);
        f.sync_all()
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        if self.writer.as_ref().map(|w| w.0.as_str()) == Some(name) {
            self.writer = None;
        }
        if self.reader.as_ref().map(|r| r.0.as_str()) == Some(name) {
            self.reader = None;
        }
        fs::remove_file(self.dir.join(name))
    }

    fn replace(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        self.count(data.len(), 2);
        replace_file(&self.dir, name, data)
    }
}

/// Atomically and durably replaces `dir/name` with `data`: writes
/// `name.tmp`, fsyncs it, renames it over `name`, fsyncs the folder. The
/// state dir's small files (cursors, deployed projects, added engines).
pub fn replace_file(dir: &Path, name: &str, data: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()
}

/// Space kept free on the state dir's filesystem when the journal's cap is
/// chosen from the free space: room for logs, the cursor files and whatever
/// else shares the flash. A tenth of a filesystem smaller than 640 MiB.
pub const SPACE_RESERVE: u64 = 64 << 20;

/// The default journal cap for `dir` (`-state-max` not given): 1 GiB, or the
/// journal's own segments plus the free space less [`SPACE_RESERVE`],
/// whichever is smaller. Also returns the free bytes and the reserve used.
pub fn default_bytes_max(dir: &Path) -> io::Result<(u64, u64, u64)> {
    let st = rustix::fs::statvfs(dir)?;
    let free = st.f_bavail.saturating_mul(st.f_frsize);
    let total = st.f_blocks.saturating_mul(st.f_frsize);
    let reserve = SPACE_RESERVE.min(total / 10);
    let mut used = 0;
    for e in fs::read_dir(dir)? {
        let e = e?;
        if e.file_name().to_string_lossy().ends_with(".seg") {
            used += e.metadata()?.len();
        }
    }
    let cap = (1u64 << 30).min(used + free.saturating_sub(reserve));
    Ok((cap, free, reserve))
}

/// One in-memory file: what reads see, and the prefix a crash keeps.
#[derive(Debug, Clone, Default)]
struct MemFile {
    data: Vec<u8>,
    durable: usize,
}

/// The in-memory twin. Deterministic for a given seed.
#[derive(Debug, Clone)]
pub struct MemStorage {
    files: BTreeMap<String, MemFile>,
    rng: u64,
    /// Total bytes the "disk" holds; appends past it fail with ENOSPC after
    /// writing what fits.
    pub capacity: u64,
    /// Counts, for write-amplification and fsync figures.
    pub bytes_written: u64,
    pub syncs: u64,
    /// `read_at` calls (each a system call on a real folder).
    pub reads: u64,
}

impl MemStorage {
    pub fn new(seed: u64) -> MemStorage {
        MemStorage {
            files: BTreeMap::new(),
            rng: seed,
            capacity: u64::MAX,
            bytes_written: 0,
            syncs: 0,
            reads: 0,
        }
    }

    fn next_rand(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(1);
        crate::route::hash::splitmix64(self.rng)
    }

    fn used(&self) -> u64 {
        self.files.values().map(|f| f.data.len() as u64).sum()
    }

    /// A power cut: every file keeps its synced prefix; with `tear`, a random
    /// part of the unsynced tail survives too (possibly cut mid-record).
    pub fn crash(&mut self, tear: bool) {
        let names: Vec<String> = self.files.keys().cloned().collect();
        for n in names {
            let r = self.next_rand();
            let f = self.files.get_mut(&n).expect("listed");
            let unsynced = f.data.len() - f.durable;
            let keep = if tear && unsynced > 0 {
                (r % (unsynced as u64 + 1)) as usize
            } else {
                0
            };
            f.data.truncate(f.durable + keep);
            f.durable = f.data.len();
        }
    }

    /// Flips one random bit somewhere in the stored bytes (flash bit rot).
    pub fn flip_random_bit(&mut self) {
        let total = self.used();
        if total == 0 {
            return;
        }
        let mut at = self.next_rand() % total;
        let bit = self.next_rand() % 8;
        for f in self.files.values_mut() {
            if at < f.data.len() as u64 {
                f.data[at as usize] ^= 1 << bit;
                return;
            }
            at -= f.data.len() as u64;
        }
    }

    /// Flips every bit of byte `offset` of file `name` (tests: a damaged
    /// record in the middle of a segment).
    pub fn flip_byte(&mut self, name: &str, offset: usize) {
        if let Some(f) = self.files.get_mut(name) {
            f.data[offset] ^= 0xff;
        }
    }

    /// A file's current bytes (tests).
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(|f| f.data.as_slice())
    }
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{name}: no such file"))
}

impl Storage for MemStorage {
    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.files.keys().cloned().collect())
    }

    fn len(&self, name: &str) -> io::Result<u64> {
        self.files
            .get(name)
            .map(|f| f.data.len() as u64)
            .ok_or_else(|| not_found(name))
    }

    fn read_at(&mut self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.reads += 1;
        let f = self.files.get(name).ok_or_else(|| not_found(name))?;
        let start = (offset as usize).min(f.data.len());
        let n = buf.len().min(f.data.len() - start);
        buf[..n].copy_from_slice(&f.data[start..start + n]);
        Ok(n)
    }

    fn append(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        let room = self.capacity.saturating_sub(self.used()) as usize;
        let n = data.len().min(room);
        self.files
            .entry(name.to_string())
            .or_default()
            .data
            .extend_from_slice(&data[..n]);
        self.bytes_written += n as u64;
        if n < data.len() {
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        Ok(())
    }

    fn sync(&mut self, name: &str) -> io::Result<()> {
        let f = self.files.get_mut(name).ok_or_else(|| not_found(name))?;
        f.durable = f.data.len();
        self.syncs += 1;
        Ok(())
    }

    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        let f = self.files.get_mut(name).ok_or_else(|| not_found(name))?;
        f.data.truncate(len as usize);
        f.durable = f.durable.min(f.data.len());
        Ok(())
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        self.files
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| not_found(name))
    }

    fn replace(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        let old = self
            .files
            .get(name)
            .map(|f| f.data.len() as u64)
            .unwrap_or(0);
        if self.used() - old + data.len() as u64 > self.capacity {
            return Err(io::Error::from_raw_os_error(28));
        }
        self.files.insert(
            name.to_string(),
            MemFile {
                data: data.to_vec(),
                durable: data.len(),
            },
        );
        self.bytes_written += data.len() as u64;
        self.syncs += 2;
        Ok(())
    }
}
