//! `edgecm queue`: what is on flash, read without changing anything.

use std::fmt::Write;
use std::io;
use std::path::Path;

use super::{DirStorage, Journal, Position, REROUTED};

/// The report `edgecm queue -state-dir DIR` prints. `now_ms`: the caller's
/// clock. The journal's files sit in the state dir itself, as the daemon
/// writes them.
pub fn report(dir: &Path, now_ms: u64) -> io::Result<String> {
    report_named(dir, now_ms, &Names::default())
}

/// Names for engine slots and raw-source indices (from the config).
#[derive(Debug, Default)]
pub struct Names {
    pub engines: std::collections::BTreeMap<u8, String>,
    pub sources: Vec<String>,
}

/// [`report`] with engines and sources named.
pub fn report_named(dir: &Path, now_ms: u64, names: &Names) -> io::Result<String> {
    if !dir.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{}: no journal here (is -state-dir right?)", dir.display()),
        ));
    }
    let mut j = Journal::inspect(DirStorage::open(dir)?)?;
    let mut s = String::new();
    let w = &mut s;
    let r = j.recovery.clone();
    let _ = writeln!(w, "journal {}", dir.display());
    let _ = writeln!(
        w,
        "  segments {}, records {}, events {}, bytes {}",
        r.segments,
        r.records,
        r.events,
        j.bytes()
    );
    for (name, len) in j.segments() {
        let _ = writeln!(w, "    {name} {len} bytes");
    }
    let _ = writeln!(w, "  next sequence {}", j.next_seq());
    let _ = writeln!(w, "engines (slot: cursor, backlog, oldest unacknowledged):");
    let engines: Vec<(u8, u64)> = j.engines().collect();
    if engines.is_empty() {
        let _ = writeln!(w, "  none yet");
    }
    for (e, cursor) in engines {
        let age = match j.oldest_unacked_ms(e)? {
            Some(t) => format!("{:.1} s old", now_ms.saturating_sub(t) as f64 / 1000.0),
            None => "none".to_string(),
        };
        let who = match names.engines.get(&e) {
            Some(n) => format!("{n} (slot {e})"),
            None => format!("slot {e}"),
        };
        let _ = writeln!(
            w,
            "  {who}: cursor {cursor}, backlog {} events, oldest {age}",
            j.backlog(e)
        );
    }
    let layout = std::fs::read_to_string(dir.join(super::layout::FILE_NAME))
        .ok()
        .and_then(|t| super::layout::Layout::parse(&t).ok());
    let _ = writeln!(w, "sources (raw-source journal id: resume position):");
    if j.positions().is_empty() {
        let _ = writeln!(w, "  none yet");
    }
    for (src, pos) in j.positions().iter().filter(|p| *p.0 != REROUTED) {
        let p = match pos {
            Position::None => "none".to_string(),
            Position::File { dev, ino, offset } => {
                format!("file dev {dev} inode {ino} offset {offset}")
            }
            Position::Socket { seq } => format!("socket sequence {seq}"),
        };
        // The state dir's own names (`layout`) first: ids are not config places.
        let named = layout
            .as_ref()
            .and_then(|l| l.source_name(*src).map(str::to_string))
            .or_else(|| names.sources.get(usize::from(*src)).cloned());
        let who = match named {
            Some(n) => format!("{n} (raw-source {src})"),
            None => format!("raw-source {src}"),
        };
        let _ = writeln!(w, "  {who}: {p}");
    }
    let (records, events, bytes, bad) = super::reference::summary(dir)?;
    let _ = writeln!(
        w,
        "reference data (kept for engines that get their project anew): {records} records, {events} events, {bytes} bytes (at most {})",
        crate::limits::REFERENCE_BYTES_MAX
    );
    let mut damage = Vec::new();
    if bad > 0 {
        damage.push(format!(
            "{bad} bytes at the end of {} do not read (cut at the next start)",
            super::reference::FILE_NAME
        ));
    }
    if r.torn_bytes > 0 {
        damage.push(format!(
            "torn tail of {} bytes in the last segment (cut at the next start)",
            r.torn_bytes
        ));
    }
    for (seg, off, len) in &r.corrupt {
        damage.push(format!(
            "{len} corrupt bytes in {seg} at offset {off} (skipped)"
        ));
    }
    if r.lost_events > 0 {
        damage.push(format!("{} events lost to corruption", r.lost_events));
    }
    if r.cursor_fallback {
        damage.push("a cursor file is damaged; the other one is used".to_string());
    }
    for line in j.damage_log()? {
        damage.push(format!("earlier: {line}"));
    }
    if damage.is_empty() {
        let _ = writeln!(w, "damage: none");
    } else {
        let _ = writeln!(w, "damage:");
        for d in damage {
            let _ = writeln!(w, "  {d}");
        }
    }
    Ok(s)
}
