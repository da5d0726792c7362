//! The dead-letter file: blocks an engine refused (HTTP 4xx), kept beside
//! the journal with the engine's message so nothing is dropped silently
//! (contract 3).
//!
//! `{state-dir}/dead-letters.xml` is a sequence of elements, one per refused
//! block, appended and synced before the block is acknowledged:
//!
//! ```text
//! <dead-letter time-ms="1795000000000" engine="esp1" window="p/cq/w" first-seq="1200" count="50" status="400">
//!   <message>HTTP 400: field 'price' (double): "x" is not a number</message>
//!   <events>...the request body as sent...</events>
//! </dead-letter>
//! ```
//! The `<events>` element is the exact body that was refused, so an operator
//! can fix it and inject it by hand (`PUT .../state?value=injected`).

use super::encode::escape;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "dead-letters.xml";
const ROTATED_NAME: &str = "dead-letters.1.xml";

/// One refused block.
#[derive(Debug, Clone, Copy)]
pub struct Letter<'a> {
    pub time_ms: u64,
    pub engine: &'a str,
    pub window: &'a str,
    pub first_seq: u64,
    pub count: u32,
    pub status: u16,
    pub message: &'a str,
    pub body: &'a [u8],
}

#[derive(Debug)]
pub struct DeadLetters {
    path: PathBuf,
    file: Option<File>,
    /// Blocks and events written since start.
    pub blocks: u64,
    pub events: u64,
    /// Bytes in the current file.
    pub bytes: u64,
    /// Times the file reached [`crate::limits::DEAD_LETTERS_MAX`] and was
    /// renamed to `dead-letters.1.xml` (the one before is then deleted).
    pub rotations: u64,
    /// Written since the last [`DeadLetters::sync`].
    unsynced: bool,
    max: u64,
}

impl DeadLetters {
    /// The file in `dir`; it is created on the first letter.
    pub fn new(dir: &Path) -> DeadLetters {
        DeadLetters {
            path: dir.join(FILE_NAME),
            file: None,
            blocks: 0,
            events: 0,
            bytes: 0,
            rotations: 0,
            unsynced: false,
            max: crate::limits::DEAD_LETTERS_MAX,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's cap (tests).
    pub fn with_max(mut self, max: u64) -> DeadLetters {
        self.max = max;
        self
    }

    /// The file the current one is renamed to when it reaches its cap.
    pub fn rotated_path(&self) -> PathBuf {
        self.path.with_file_name(ROTATED_NAME)
    }

    /// Appends one letter; [`DeadLetters::sync`] makes it durable (the group
    /// commit calls it before the journal's sync, so an acknowledgement of
    /// a refused block is never on flash before its letter).
    pub fn write(&mut self, l: &Letter) -> io::Result<()> {
        if self.file.is_none() {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.bytes = f.metadata()?.len();
            self.file = Some(f);
        }
        let mut entry = format!(
            "<dead-letter time-ms=\"{}\" engine=\"{}\" window=\"{}\" first-seq=\"{}\" count=\"{}\" status=\"{}\">\n  <message>{}</message>\n  ",
            l.time_ms,
            escape(l.engine),
            escape(l.window),
            l.first_seq,
            l.count,
            l.status,
            escape(l.message)
        )
        .into_bytes();
        entry.extend_from_slice(l.body);
        entry.extend_from_slice(b"\n</dead-letter>\n");
        if self.bytes > 0 && self.bytes + entry.len() as u64 > self.max {
            self.rotate()?;
        }
        let f = self.file.as_mut().expect("opened above");
        let r = f.write_all(&entry);
        if r.is_err() {
            // Reopen next time; a half-written entry is followed by a whole one.
            self.file = None;
        } else {
            self.blocks += 1;
            self.events += u64::from(l.count);
            self.bytes += entry.len() as u64;
            self.unsynced = true;
        }
        r
    }

    /// Syncs what was written since the last sync.
    pub fn sync(&mut self) -> io::Result<()> {
        if let (true, Some(f)) = (self.unsynced, &self.file) {
            f.sync_data()?;
        }
        self.unsynced = false;
        Ok(())
    }

    /// The file reached its cap: it becomes `dead-letters.1.xml` (the one
    /// before that is deleted) and a new one starts.
    fn rotate(&mut self) -> io::Result<()> {
        self.sync()?;
        let old = self.rotated_path();
        if old.exists() {
            log::warn!(
                "dead letters: {} reached {} bytes; {} (the letters before it) is deleted to make room",
                self.path.display(),
                self.max,
                old.display()
            );
        }
        std::fs::rename(&self.path, &old)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        self.file = Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?,
        );
        self.bytes = 0;
        self.rotations += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_append_and_parse_back() {
        let dir = std::env::temp_dir().join(format!("edgecm-dl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut d = DeadLetters::new(&dir);
        for seq in [0, 3] {
            d.write(&Letter {
                time_ms: 1,
                engine: "e<1>",
                window: "p/cq/w",
                first_seq: seq,
                count: 3,
                status: 400,
                message: "bad & worse",
                body: b"<events><event><opcode>i</opcode></event></events>",
            })
            .unwrap();
        }
        let text = std::fs::read_to_string(d.path()).unwrap();
        let all = format!("<all>{text}</all>");
        let doc = roxmltree::Document::parse(&all).unwrap();
        let letters: Vec<_> = doc
            .root_element()
            .children()
            .filter(|n| n.is_element())
            .collect();
        assert_eq!(letters.len(), 2);
        assert_eq!(letters[1].attribute("first-seq"), Some("3"));
        assert_eq!(letters[0].attribute("engine"), Some("e<1>"));
        assert_eq!((d.blocks, d.events), (2, 6));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_file_rotates_at_its_cap_and_keeps_one_before_it() {
        let dir = std::env::temp_dir().join(format!("edgecm-dl-cap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut d = DeadLetters::new(&dir).with_max(1000);
        let body = [b'x'; 300];
        for seq in 0..10 {
            d.write(&Letter {
                time_ms: 1,
                engine: "e",
                window: "p/cq/w",
                first_seq: seq,
                count: 1,
                status: 400,
                message: "no",
                body: &body,
            })
            .unwrap();
            d.sync().unwrap();
            assert!(d.bytes <= 1000, "{}", d.bytes);
        }
        assert!(d.rotations >= 3, "{}", d.rotations);
        let now = std::fs::metadata(d.path()).unwrap().len();
        let before = std::fs::metadata(d.rotated_path()).unwrap().len();
        assert!(now <= 1000 && before <= 1000);
        let files = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(files, 2, "the file and the one before it, no more");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
