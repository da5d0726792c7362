//! One raw-source's task: decode blocks, route them, append them to the
//! journal (backpressure when it is full), keep reference records.

use super::*;
use crate::journal::plan::{self, Routed, SourceBlock};

pub(super) enum AnySource {
    File(FileSource),
    Connect(ConnectSource),
    Listen(ListenSource),
}

impl AnySource {
    pub(super) async fn next(&mut self) -> Result<Next<'_>, SourceError> {
        match self {
            AnySource::File(s) => s.next().await,
            AnySource::Connect(s) => s.next().await,
            AnySource::Listen(s) => s.next().await,
        }
    }

    pub(super) fn stats(&self) -> Stats {
        match self {
            AnySource::File(s) => s.stats(),
            AnySource::Connect(s) => s.stats(),
            AnySource::Listen(s) => s.stats(),
        }
    }
}

pub(super) fn open_source(
    name: &str,
    fs: &crate::config::FsSource,
    layout: Layout,
    resume: Position,
) -> Result<AnySource, SourceError> {
    Ok(match &fs.fsname {
        FsName::File(_) => {
            let mut s = FileSource::new(name, fs, layout)?;
            s.resume_from(resume)?;
            AnySource::File(s)
        }
        FsName::Connect { .. } => {
            let mut s = ConnectSource::new(name, fs, layout)?;
            s.resume_from(resume);
            AnySource::Connect(s)
        }
        FsName::Listen { .. } => {
            let addr = ListenSource::address(fs).expect("a listen fsname");
            let mut s = ListenSource::bind(name, fs, layout, addr)?;
            s.resume_from(resume);
            AnySource::Listen(s)
        }
    })
}

/// One event of a block, for routing: its field spans in the block buffer.
pub(super) struct Spanned<'a> {
    pub(super) buf: &'a [u8],
    pub(super) spans: &'a [(u32, u32)],
}

impl Keyed for Spanned<'_> {
    fn field_text(&self, index: usize) -> &[u8] {
        match self.spans.get(index) {
            Some(&(s, e)) if s != u32::MAX => &self.buf[s as usize..e as usize],
            _ => &[],
        }
    }
}

/// A running source's block in the making.
pub(super) struct SourceRun {
    pub(super) core: Rc<Core>,
    pub(super) index: u16,
    pub(super) feeds: Vec<Feed>,
    pub(super) engine_ids: crate::route::ids::EngineIds,
    pub(super) block: BlockWriter,
    /// The position before the block's first event, and after its last.
    pub(super) before: Position,
    pub(super) last: Position,
    pub(super) status: Rc<SourceStatus>,
    pub(super) blocksize: u32,
    /// The source's events before the block (None: unknown, after a
    /// version 1 journal), for the records' [`Origin`].
    pub(super) counted: Option<u64>,
}

/// Room for one more event in a record, besides the header.
pub(super) const RECORD_PAYLOAD_MAX: usize =
    crate::journal::RECORD_MAX - crate::journal::record::HEADER_LEN;

impl SourceRun {
    /// Keeps a reference record just appended at `seq` (contract 7).
    pub(super) fn keep_reference(&self, seq: u64, rec: &NewRecord, f: &Feed, payload: &[u8]) {
        let r = crate::journal::reference::RefRecord {
            seq,
            dest: rec.dest.bits(),
            target: rec.target,
            count: rec.count,
            multicast: *f.router.policy() == crate::config::Policy::Multicast,
        };
        let mut store = self.core.shared.reference.borrow_mut();
        let before = store.dropped_events;
        match store.append(&r, payload) {
            Ok(true) => {}
            Ok(false) if before == 0 => log::warn!(
                "reference data: {} holds {} bytes, its cap; further reference events of source '{}' and others are not kept, so engines that get their project later will not receive them again",
                crate::journal::reference::FILE_NAME,
                store.bytes(),
                self.status.name
            ),
            Ok(false) => {}
            Err(e) => log::error!(
                "reference data: cannot keep {} events of source '{}': {e}; engines that get their project later will not receive them again",
                rec.count,
                self.status.name
            ),
        }
    }

    /// Reads until the source ends, fails or is stopped; returns how it ended.
    pub(super) async fn pump(&mut self, mut source: AnySource) -> SourceState {
        let stop = self.status.stop.clone();
        loop {
            // A buffered event is taken by polling the read once, in place:
            // `Stop::or` around every read moved the read's future twice and
            // made a stop listener (about 600 instructions an event).
            let step = {
                let mut next = std::pin::pin!(source.next());
                if stop.is_stopped() {
                    None
                } else {
                    match future::poll_once(next.as_mut()).await {
                        Some(step) => Some(step),
                        None => stop.or(next).await,
                    }
                }
            };
            let Some(step) = step else {
                self.flush().await;
                self.status.stats.set(source.stats());
                return SourceState::Stopped;
            };
            match step {
                Ok(Next::Event(view, pos)) => {
                    let size: usize = view
                        .fields()
                        .map(|f| f.map_or(1, |t| t.len() + 5))
                        .sum::<usize>()
                        + 8;
                    if self.block.count > 0 && self.block.buf.len() + size > RECORD_PAYLOAD_MAX {
                        self.flush().await;
                    }
                    debug_assert!(size <= EVENT_MAX + 1024 * 8);
                    self.block.push(
                        view.opcode.letter() as u8,
                        view.flags.letter() as u8,
                        view.fields(),
                    );
                    self.last = pos;
                    if self.block.count >= self.blocksize {
                        self.status.stats.set(source.stats());
                        self.flush().await;
                        // A file that is always readable never makes this task
                        // wait: let the committer and senders run between blocks.
                        future::yield_now().await;
                    }
                }
                Ok(Next::Idle) => {
                    self.status.stats.set(source.stats());
                    self.flush().await;
                }
                Ok(Next::Finished) => {
                    self.flush().await;
                    self.status.stats.set(source.stats());
                    return SourceState::Finished;
                }
                Err(e) => {
                    log::error!(
                        "{e}; the source stops here, as ESP's does with ignorecsvparseerrors=false: fix the input, or set <property name='ignorecsvparseerrors'>true</property> to skip such lines (counted and logged)"
                    );
                    self.status.error.replace(Some(e.to_string()));
                    self.flush().await;
                    self.status.stats.set(source.stats());
                    return SourceState::Failed;
                }
            }
        }
    }

    /// Routes the block and appends it, waiting for room as long as needed
    /// (backpressure); the block is then empty.
    pub(super) async fn flush(&mut self) {
        if self.block.count == 0 {
            return;
        }
        // Group commit bounds what waits in RAM for a sync: past
        // `commit_bytes`, wait for the committer (which this wakes).
        loop {
            let synced = self.core.room.listen();
            if self.core.shared.journal.borrow().pending_bytes() < self.core.options.commit_bytes {
                break;
            }
            self.core.appended.notify(usize::MAX);
            synced.await;
        }
        // Field spans of every event, for hashing, as the block kept them.
        let nfields = self.block.spans.len() / (self.block.count as usize);
        let block: Vec<Spanned> = (0..self.block.count as usize)
            .map(|k| Spanned {
                buf: &self.block.buf,
                spans: self.block.event_spans(k, nfields),
            })
            .collect();
        let refs: Vec<&Spanned> = block.iter().collect();
        for f in &mut self.feeds {
            let m = self.core.memberships[f.cluster].borrow();
            f.router.route(&m, &refs, &mut f.routes);
        }
        drop(refs);
        drop(block);
        // Every group of every feed, as records in append order
        // (`journal::plan`); on Full, wait for room and retry that record.
        let feeds: Vec<(&Feed, EngineSet, &[u32])> = self
            .feeds
            .iter()
            .flat_map(|f| f.routes.groups().map(move |(set, idx)| (f, set, idx)))
            .collect();
        let routed: Vec<Routed> = feeds
            .iter()
            .map(|&(f, set, events)| Routed {
                target: f.dest,
                dest: self.engine_ids.global(f.cluster, set),
                events,
            })
            .collect();
        let records = plan::source_records(
            &SourceBlock {
                source: self.index,
                count: self.block.count,
                counted: self.counted,
                before: self.before,
                after: self.last,
                time_ms: crate::clock::wall_ms(),
            },
            &routed,
        );
        // Decoded once, only when some record holds a part of the block.
        let whole = self.block.count as usize;
        let evs: Vec<_> = if routed.iter().any(|g| g.events.len() != whole) {
            events(&self.block.buf).flatten().collect()
        } else {
            Vec::new()
        };
        let mut sub = BlockWriter::default();
        let mut paused = false;
        for &(g, rec) in &records {
            let f = feeds[g].0;
            let payload = plan::payload(
                &self.block.buf,
                self.block.count,
                &evs,
                routed[g].events,
                &mut sub,
            );
            loop {
                // Listen before trying, so room made by a sync in between is not missed.
                let room = self.core.room.listen();
                let r = self.core.shared.journal.borrow_mut().append(rec, payload);
                let full = match r {
                    Ok(seq) => {
                        if f.reference {
                            self.keep_reference(seq, &rec, f, payload);
                        }
                        self.core.appended.notify(usize::MAX);
                        break;
                    }
                    Err(full) => full,
                };
                if !paused {
                    paused = true;
                    self.status.state.set(SourceState::Paused);
                    log::info!(
                        "source '{}': paused, {}",
                        self.status.name,
                        match full {
                            Full::Bytes => "the journal is full".to_string(),
                            Full::Engine(e) =>
                                format!("engine slot {e} has -buffersize events unacknowledged"),
                        }
                    );
                }
                // Waits for room even when stopping: accepted input is never dropped.
                crate::clock::wait_for(room, Duration::from_millis(500)).await;
            }
        }
        drop(records);
        if paused {
            log::info!("source '{}': resumed", self.status.name);
            if self.status.state.get() == SourceState::Paused {
                self.status.state.set(SourceState::Running);
            }
        }
        self.status
            .accepted
            .set(self.status.accepted.get() + u64::from(self.block.count));
        if let Some(c) = &mut self.counted {
            *c += u64::from(self.block.count);
        }
        self.block.clear();
        self.before = self.last;
    }
}
