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
}

impl DeadLetters {
    /// The file in `dir`; it is created on the first letter.
    pub fn new(dir: &Path) -> DeadLetters {
        DeadLetters {
            path: dir.join(FILE_NAME),
            file: None,
            blocks: 0,
            events: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one letter and syncs it to flash.
    pub fn write(&mut self, l: &Letter) -> io::Result<()> {
        if self.file.is_none() {
            self.file = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?,
            );
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
        let f = self.file.as_mut().expect("opened above");
        let r = f.write_all(&entry).and_then(|_| f.sync_data());
        if r.is_err() {
            // Reopen next time; a half-written entry is followed by a whole one.
            self.file = None;
        } else {
            self.blocks += 1;
            self.events += u64::from(l.count);
        }
        r
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
}
