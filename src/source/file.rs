//! A file raw-source (`fsname` a path): read once to its end, or, with
//! `growinginputfile`, followed like `tail -F` across rotation (rename, then a
//! new file under the name) and truncation.
//!
//! Every event leaves with the file's identity (device, inode) and the byte
//! offset right after it; [`FileSource::resume_from`] continues exactly
//! there, also when the file was rotated meanwhile (the old inode is found in
//! the same folder and finished first, then the new file is read).
//!
//! What `tail -F` cannot see, this cannot either: bytes a writer adds to a
//! rotated file after the source moved on to the new one, and bytes written
//! between the last read and a truncation.

use super::watch::Watch;
use super::{Next, Pacer, SourceError, Stats};
use crate::config::fs::{FsName, FsSource};
use crate::event::Position;
use crate::source::{Decoder, Layout, Reader, Step};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A file's identity: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of(meta: &std::fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

#[derive(Debug)]
pub struct FileSource {
    name: String,
    path: PathBuf,
    reader: Reader,
    file: Option<(File, FileId)>,
    follow: bool,
    watch: Option<Watch>,
    ignore_errors: bool,
    pacer: Option<Pacer>,
    max_events: Option<u64>,
    repeat_left: u32,
    stats: Stats,
    /// The open file is at its end and the reader was told so.
    eof: bool,
    /// At that end, switch to the file now under `path` (a rotation).
    switch: bool,
    /// `Next::Idle` was returned since the last event.
    idle_said: bool,
    finished: bool,
    /// Logged once: the followed file does not exist (yet).
    missing_said: bool,
}

impl FileSource {
    /// A source for raw-source `name`, decoding by `layout`. Opens nothing
    /// until the first [`FileSource::next`] (or a resume).
    pub fn new(name: &str, fs: &FsSource, layout: Layout) -> Result<FileSource, SourceError> {
        let FsName::File(path) = &fs.fsname else {
            return Err(SourceError(format!(
                "source '{name}': fsname is not a file"
            )));
        };
        let opts = super::options(fs).map_err(|e| SourceError(format!("source '{name}': {e}")))?;
        Ok(FileSource {
            name: name.to_string(),
            path: path.clone(),
            reader: Reader::new(Decoder::new(layout, opts)),
            file: None,
            follow: fs.growinginputfile,
            watch: None,
            ignore_errors: fs.ignorecsvparseerrors,
            pacer: fs.rate.map(|r| Pacer::new(r, crate::clock::now())),
            max_events: fs.maxevents,
            repeat_left: fs.repeatcount,
            stats: Stats::default(),
            eof: false,
            switch: false,
            idle_said: false,
            finished: false,
            missing_said: false,
        })
    }

    /// Uses `watch` to wait for a followed file (tests choose polling).
    pub fn with_watch(mut self, watch: Watch) -> FileSource {
        self.watch = Some(watch);
        self
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, what: impl std::fmt::Display) -> SourceError {
        SourceError(format!(
            "source '{}': {}: {what}",
            self.name,
            self.path.display()
        ))
    }

    /// Continues right after `pos`, before the first [`FileSource::next`].
    /// `Position::None` (nothing read yet) starts at the beginning.
    pub fn resume_from(&mut self, pos: Position) -> Result<(), SourceError> {
        let Position::File { dev, ino, offset } = pos else {
            return Ok(());
        };
        let want = FileId { dev, ino };
        let current = std::fs::metadata(&self.path).map(|m| FileId::of(&m)).ok();
        if current == Some(want) {
            return self.open_at(&self.path.clone(), offset, false);
        }
        if let Some(old) = self.find_inode(want) {
            log::info!(
                "source '{}': {} was rotated; finishing the old file {} from byte {offset} first",
                self.name,
                self.path.display(),
                old.display()
            );
            return self.open_at(&old, offset, true);
        }
        log::warn!(
            "source '{}': {} is another file now and the one read before (inode {ino}) is gone; \
             reading the new file from its start (events after byte {offset} of the old one were never read)",
            self.name,
            self.path.display()
        );
        Ok(())
    }

    /// A file in `path`'s folder with identity `id` (a rotated name).
    fn find_inode(&self, id: FileId) -> Option<PathBuf> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .find(|e| {
                e.metadata()
                    .is_ok_and(|m| m.is_file() && FileId::of(&m) == id)
            })
            .map(|e| e.path())
    }

    fn open_at(&mut self, path: &Path, offset: u64, rotated: bool) -> Result<(), SourceError> {
        let mut f = File::open(path).map_err(|e| self.err(format!("cannot open: {e}")))?;
        let meta = f.metadata().map_err(|e| self.err(e))?;
        let offset = if meta.len() < offset {
            log::warn!(
                "source '{}': {} is shorter ({} bytes) than the position to resume from (byte {offset}): it was truncated; reading it from its start",
                self.name,
                path.display(),
                meta.len()
            );
            0
        } else {
            offset
        };
        // Errors name a line, also after a resume: count the lines before
        // the offset once (a read of the file up to there, at start only).
        let mut lines = 1u64;
        let mut left = offset;
        let mut buf = vec![0u8; crate::limits::READ_CHUNK];
        while left > 0 {
            let n = f
                .read(&mut buf[..(left as usize).min(crate::limits::READ_CHUNK)])
                .map_err(|e| self.err(e))?;
            if n == 0 {
                break;
            }
            lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
            left -= n as u64;
        }
        f.seek(SeekFrom::Start(offset)).map_err(|e| self.err(e))?;
        self.reader.restart(offset);
        if left == 0 {
            self.reader.set_line(lines);
        }
        self.file = Some((f, FileId::of(&meta)));
        self.eof = false;
        self.switch = rotated;
        Ok(())
    }

    /// Opens the file under `path` from its start. A followed file that does
    /// not exist yet is waited for; a file read once must exist.
    async fn open_current(&mut self) -> Result<(), SourceError> {
        loop {
            match File::open(&self.path) {
                Ok(f) => {
                    let meta = f.metadata().map_err(|e| self.err(e))?;
                    self.reader.restart(0);
                    self.file = Some((f, FileId::of(&meta)));
                    self.eof = false;
                    self.switch = false;
                    self.missing_said = false;
                    return Ok(());
                }
                Err(e) if self.follow && e.kind() == std::io::ErrorKind::NotFound => {
                    if !self.missing_said {
                        log::warn!("{}; waiting for it to appear", self.err("does not exist"));
                        self.missing_said = true;
                    }
                    self.wait().await;
                }
                Err(e) => return Err(self.err(format!("cannot open: {e}"))),
            }
        }
    }

    async fn wait(&mut self) {
        let path = self.path.clone();
        self.watch
            .get_or_insert_with(|| Watch::new(&path))
            .changed()
            .await;
    }

    /// What a followed file at its end has become: `true` when there is
    /// something new to read (appended, rotated or truncated).
    fn look_again(&mut self) -> Result<bool, SourceError> {
        let Some((f, id)) = &mut self.file else {
            return Ok(true);
        };
        let now = std::fs::metadata(&self.path).ok();
        match now {
            Some(m) if FileId::of(&m) != *id => {
                // Rotated: the old file is drained; finish its last line, then switch.
                self.switch = true;
                self.eof = true;
                Ok(true)
            }
            Some(m) if m.len() < self.reader.offset() + self.reader.buffered() as u64 => {
                log::warn!(
                    "source '{}': {} was truncated; reading it again from its start",
                    self.name,
                    self.path.display()
                );
                f.seek(SeekFrom::Start(0))
                    .map_err(|e| SourceError(e.to_string()))?;
                self.reader.restart(0);
                Ok(true)
            }
            Some(m) => Ok(m.len() > self.reader.offset() + self.reader.buffered() as u64),
            // Renamed away and nothing new yet: keep the old file until one appears.
            None => Ok(false),
        }
    }

    /// The next event, with its position; `Idle` once before waiting for
    /// more input (so the caller can flush a partial block); `Finished` at
    /// the end of a file read once (after `repeatcount` more passes) or after
    /// `maxevents`.
    pub async fn next(&mut self) -> Result<Next<'_>, SourceError> {
        loop {
            if self.finished || self.max_events.is_some_and(|m| self.stats.events >= m) {
                self.finished = true;
                return Ok(Next::Finished);
            }
            if self.file.is_none() {
                self.open_current().await?;
            }
            if let Some(p) = &self.pacer {
                if crate::clock::now() < p.poll_at() {
                    async_io::Timer::at(p.poll_at()).await;
                }
            }
            match self.reader.next(self.eof) {
                Step::Event { end } => {
                    self.stats.events += 1;
                    self.idle_said = false;
                    if let Some(p) = &mut self.pacer {
                        p.sent(crate::clock::now());
                    }
                    let (_, id) = self
                        .file
                        .as_ref()
                        .expect("an event comes from an open file");
                    let pos = Position::File {
                        dev: id.dev,
                        ino: id.ino,
                        offset: end,
                    };
                    return Ok(Next::Event(self.reader.event(), pos));
                }
                Step::Error { at, message, .. } => {
                    self.stats.errors += 1;
                    let e = self.err(format!("{at}: {message}"));
                    if !self.ignore_errors {
                        self.finished = true;
                        return Err(e);
                    }
                    log::warn!("{e} (skipped: ignorecsvparseerrors)");
                }
                Step::NeedMore if self.eof => {
                    if self.switch {
                        self.file = None;
                        continue;
                    }
                    if self.repeat_left > 0 {
                        self.repeat_left -= 1;
                        self.file = None;
                        continue;
                    }
                    self.finished = true;
                }
                Step::NeedMore => {
                    let (f, _) = self.file.as_mut().expect("open");
                    let n = self
                        .reader
                        .fill(f)
                        .map_err(|e| self.err(format!("read: {e}")))?;
                    self.stats.bytes += n as u64;
                    if n > 0 {
                        continue;
                    }
                    if !self.follow {
                        self.eof = true;
                        continue;
                    }
                    if self.look_again()? {
                        continue;
                    }
                    if !self.idle_said {
                        self.idle_said = true;
                        return Ok(Next::Idle);
                    }
                    self.wait().await;
                    self.idle_said = false;
                }
            }
        }
    }
}
