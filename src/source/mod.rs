//! Sources: ESP's fs raw-sources (file and socket), decoded into events laid
//! out by the target window's schema, each with the position that lets a
//! restart resume right after it (ARCHITECTURE.md contract 1).
//!
//! Pure parts ([`decode`], [`value`], the three formats, [`reader`]) need no
//! IO; [`file`] and [`socket`] do the reading.

pub use edgecm_wire::source::{csv, dates, decode, json, layout, reader, value, xml};
pub mod orchestration;
pub mod preflight;
pub mod socket;

pub use decode::{Decoder, EventView, Layout, Options};
pub use reader::{decode_all, OwnedEvent, Reader, Step, Where};
pub mod file;
pub mod watch;

pub use file::{FileId, FileSource};
pub use socket::{ConnectSource, ListenSource};

use std::fmt;
use std::time::{Duration, Instant};

/// Where a source stands, for logs, the admin API and the demo's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceState {
    Waiting,
    Running,
    /// Paused by backpressure.
    Paused,
    Finished,
    Failed,
    Stopped,
}

impl SourceState {
    pub fn name(self) -> &'static str {
        match self {
            SourceState::Waiting => "waiting",
            SourceState::Running => "running",
            SourceState::Paused => "paused",
            SourceState::Finished => "finished",
            SourceState::Failed => "failed",
            SourceState::Stopped => "stopped",
        }
    }
}

/// What a source yields.
#[derive(Debug)]
pub enum Next<'a> {
    /// An event and the position right after it.
    Event(EventView<'a>, crate::event::Position),
    /// Nothing to read now; the next call waits for input. Said once per
    /// pause, so the caller can hand a partial block on.
    Idle,
    /// The input ended (a file read once) or `maxevents` was reached: the
    /// adapter state "finished" of orchestration.
    Finished,
}

/// A source that cannot go on: it names the source, where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError(pub String);

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SourceError {}

/// Counters a source keeps, for logs and the admin API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub events: u64,
    /// Input that was not an event (skipped with `ignorecsvparseerrors`).
    pub errors: u64,
    pub bytes: u64,
}

/// `rate`: events spread evenly, one every `1/rate` s. Falling behind (a
/// pause in the input) does not earn a burst afterwards. Pure: the source
/// waits until [`Pacer::poll_at`] and reports each event with its time.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    next: Instant,
}

impl Pacer {
    pub fn new(per_second: f64, now: Instant) -> Pacer {
        Pacer {
            interval: Duration::from_secs_f64(1.0 / per_second.max(1e-6)),
            next: now,
        }
    }

    /// When the next event may go.
    pub fn poll_at(&self) -> Instant {
        self.next
    }

    /// An event went at `now`.
    pub fn sent(&mut self, now: Instant) {
        self.next = self.next.max(now) + self.interval;
    }
}

/// The fuzz harness (fuzz/ and a property test run it): decodes arbitrary
/// bytes as `fstype` with a schema of every field type, fed in pieces whose
/// sizes come from the input, and checks what must hold whatever the bytes:
/// no panic, offsets that only move forward and stay inside the input, the
/// same events whatever the pieces, bounded buffers. Returns the events.
pub fn fuzz_stream(fstype: crate::config::fs::FsType, data: &[u8]) -> usize {
    use crate::config::project::Schema;
    let schema = Schema::parse_compact(
        "id*:int64,i:int32,d:double,m:money,s:string,t:date,st:stamp,b:blob,a:array(dbl),ai:array(i32)",
    )
    .expect("fixed schema");
    let run = |chunk: usize| {
        let mut opts = Options::new(fstype);
        if data.first().is_some_and(|b| b & 1 == 1) {
            opts.dates = Some(value::DateFormat::parse("%Y-%m-%d %H:%M:%S").expect("fixed format"));
        }
        let mut r = Reader::new(Decoder::new(Layout::new(&schema, false, false), opts));
        let mut fed = 0;
        let mut seen = Vec::new();
        let mut last = 0;
        loop {
            let eof = fed == data.len();
            loop {
                let (end, ok) = match r.next(eof) {
                    Step::Event { end } => {
                        let e = r.event();
                        assert_eq!(e.len(), schema.fields.len());
                        (end, true)
                    }
                    Step::Error { end, .. } => (end, false),
                    Step::NeedMore => break,
                };
                assert!(
                    end > last && end <= fed as u64,
                    "offset {end} after {last}, fed {fed}"
                );
                last = end;
                seen.push((end, ok));
            }
            if eof {
                return seen;
            }
            let n = r
                .fill_with(|b| {
                    let n = chunk.min(b.len()).min(data.len() - fed);
                    b[..n].copy_from_slice(&data[fed..fed + n]);
                    Ok(n)
                })
                .expect("in-memory read");
            assert!(n > 0 || r.buffered() >= crate::limits::EVENT_MAX);
            fed += n;
        }
    };
    let whole = run(usize::MAX);
    let piece = 1 + usize::from(data.get(1).copied().unwrap_or(0) % 13);
    // Long inputs in larger pieces: XML and JSON rescan a partial event on
    // each read, so byte-sized pieces of a 600 KB input would take minutes
    // under emulation (CSV resumes its search, see `Decoder::frame`).
    let piece = if data.len() > 65_536 {
        piece * 4096
    } else {
        piece
    };
    let pieces = run(piece);
    assert_eq!(whole, pieces, "events depend on how the input was split");
    whole.iter().filter(|(_, ok)| *ok).count()
}

/// How a fs raw-source's properties decode its events.
pub fn options(fs: &crate::config::fs::FsSource) -> Result<Options, String> {
    let dates = fs
        .dateformat
        .as_deref()
        .map(value::DateFormat::parse)
        .transpose()?;
    Ok(Options {
        fstype: fs.fstype,
        delimiter: fs.csvfielddelimiter,
        opcode_column: !fs.addcsvopcode,
        fixed_flags: fs.addcsvflags.map(|f| match f {
            crate::config::fs::CsvFlags::Normal => crate::event::Flags::Normal,
            crate::config::fs::CsvFlags::PartialUpdate => crate::event::Flags::PartialUpdate,
        }),
        header: fs.header,
        upsert: fs.publishwithupsert,
        dates,
        epoch_dates: false,
        engine_dates: Some(match fs.engine_dateformat.as_deref() {
            None => value::EngineDates::Epoch,
            Some(f) => value::EngineDates::Format(
                value::DateFormat::parse(f).map_err(|e| format!("-engine-dateformat: {e}"))?,
            ),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pacer_spreads_events_and_a_pause_earns_no_burst() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let mut p = Pacer::new(10.0, t);
        assert_eq!(p.poll_at(), t);
        p.sent(t);
        p.sent(t + ms(100));
        assert_eq!(p.poll_at(), t + ms(200));
        // Five seconds without input: the next event goes a tenth of a
        // second after the one that ended the pause, not at once.
        p.sent(t + ms(5_000));
        assert_eq!(p.poll_at(), t + ms(5_100));
    }
}
