//! The group commit: pending records and cursor records written and synced
//! together (one fdatasync, contract 5), the reserve used on a full disk,
//! cursor checkpoints, and segments reclaimed once every cursor passed them.

use super::*;

impl<S: Storage> Journal<S> {
    /// Writes what `append` buffered and the cursors if they changed, with
    /// one fdatasync, and frees fully acknowledged segments. Returns the
    /// sequence below which everything is durable; only then may events be
    /// reported accepted. On error (ENOSPC, I/O) while writing records, the
    /// segment is cut back to its last durable length and the records stay
    /// pending for the next try: nothing half-written is ever left valid. An
    /// error while writing the cursors comes first and leaves the records
    /// pending too.
    pub fn sync(&mut self) -> io::Result<u64> {
        // An engine added or removed: the cursor file first. An engine added
        // since the last sync must have its cursor on flash before records
        // destined to it are, or a crash in between would leave those records
        // behind its start. (Acks only cover durable data, so persisting them
        // before new records is always safe.)
        if self.checkpoint {
            if let Err(e) = self.write_cursors() {
                if e.raw_os_error() != Some(ENOSPC) {
                    return Err(e);
                }
                // Disk full: free the segments every engine acknowledged (by the
                // cursors in memory: deleting them loses nothing an engine still
                // needs, even if we crash before the cursors reach flash), then retry.
                self.reclaim()?;
                self.with_reserve(|j| j.write_cursors())?;
            }
            self.reclaim()?;
        }
        if self.pending.is_empty() && !self.cursors_dirty {
            return Ok(self.synced_seq);
        }
        // Acks ride in a cursor record ahead of the new records, under the same fdatasync.
        let with_cursors = self.cursors_dirty;
        if let Err(e) = self.write_pending(with_cursors) {
            if e.raw_os_error() != Some(ENOSPC) {
                return Err(e);
            }
            self.reclaim()?;
            if let Err(e) = self.write_pending(with_cursors) {
                if e.raw_os_error() != Some(ENOSPC) {
                    return Err(e);
                }
                return self.drain_full_disk();
            }
        }
        if let Some(lw) = self.full_until {
            if self.bytes() <= lw {
                self.full_until = None;
                log::info!(
                    "journal: below its low-water mark after a full disk; sources read again"
                );
            }
        }
        if !self.reserve && self.full_until.is_none() {
            // Room again: keep the reserve for the next time the disk fills.
            self.reserve = self
                .storage
                .replace(RESERVE_FILE, &[0; RESERVE_BYTES])
                .is_ok();
        }
        self.synced_seq = self.next_seq;
        self.positions.append(&mut self.pending_positions);
        self.counts.append(&mut self.pending_counts);
        self.pos_seq.append(&mut self.pending_pos_seq);
        if with_cursors {
            self.durable_cursors.clone_from(&self.cursors);
            self.cursors_dirty = false;
            self.reclaim()?;
        }
        Ok(self.synced_seq)
    }

    /// The filesystem is full (not the journal's cap): the new records stay
    /// pending (sources pause at the low-water mark), but acknowledgements
    /// are made durable in the cursor file, with the reserve's room if need
    /// be, so engines go on draining and their segments are freed.
    pub(super) fn drain_full_disk(&mut self) -> io::Result<u64> {
        if self.full_until.is_none() {
            log::warn!(
                "journal: the filesystem is full; sources pause, engines drain the journal ({} bytes) to below {} bytes",
                self.bytes(),
                self.bytes() * 3 / 4
            );
        }
        let lw = self.bytes() * 3 / 4;
        self.full_until = Some(self.full_until.map_or(lw, |old| old.min(lw)));
        if self.cursors_dirty {
            self.with_reserve(|j| j.write_cursors())?;
            self.reclaim()?;
        }
        Ok(self.synced_seq)
    }

    /// Runs `f`; on ENOSPC deletes the reserve file and runs it again.
    pub(super) fn with_reserve(
        &mut self,
        f: impl Fn(&mut Self) -> io::Result<()>,
    ) -> io::Result<()> {
        match f(self) {
            Err(e) if e.raw_os_error() == Some(ENOSPC) => {
                if self.reserve {
                    log::warn!("journal: the filesystem is full; using the reserve to record acknowledgements");
                    self.storage.remove(RESERVE_FILE)?;
                    self.reserve = false;
                }
                f(self)
            }
            r => r,
        }
    }

    /// Writes the buffered records, preceded by a cursor record when
    /// `with_cursors`, into the last segment and new ones as they fill, with
    /// one fdatasync per segment touched: a group commit costs one fsync for
    /// records and cursors together. A cursor record that does not fit the
    /// last segment goes to the cursor file instead, so every segment holds
    /// events and its name (its first sequence) is unique.
    pub(super) fn write_pending(&mut self, with_cursors: bool) -> io::Result<()> {
        let mut cur = Vec::new();
        if with_cursors && !self.cursors.is_empty() {
            let entries: Vec<(EngineId, u64, u64)> = self
                .cursors
                .iter()
                .map(|(&e, &c)| {
                    // The backlog the scan will have counted up to this record.
                    let pending: u64 = self
                        .pending_headers
                        .iter()
                        .filter(|(h, _)| h.dest.contains(e))
                        .map(|(h, _)| u64::from(h.count))
                        .sum();
                    (e, c, self.backlog(e).saturating_sub(pending))
                })
                .collect();
            record::encode_cursors(&entries, &mut cur);
        }
        let max = self.limits.segment_max;
        let fits = move |s: &Segment, len: usize| s.len == 0 || s.len + len as u64 <= max;
        // A commit that does not fit the last segment but fits a new one goes
        // there whole: one fdatasync instead of one per segment.
        let whole = (cur.len() + self.pending.len()) as u64;
        let roll = !self.pending.is_empty()
            && whole <= max
            && self
                .segments
                .last()
                .is_some_and(|s| !fits(s, whole as usize));
        if with_cursors
            && ((!roll && !self.segments.last().is_some_and(|s| fits(s, cur.len())))
                || self.bytes() + cur.len() as u64 > self.limits.bytes_max)
        {
            // A cursor record never opens a segment (a segment's name is its
            // first event's sequence) nor passes the byte cap: the cursor file
            // takes this one.
            self.write_cursors()?;
            cur.clear();
        }
        if self.pending.is_empty() && cur.is_empty() {
            return Ok(());
        }
        // (length, first sequence, end sequence if it holds events), in write order.
        let mut items: Vec<(usize, u64, Option<u64>)> =
            Vec::with_capacity(1 + self.pending_headers.len());
        if !cur.is_empty() {
            items.push((cur.len(), self.synced_seq, None));
        }
        items.extend(
            self.pending_headers
                .iter()
                .map(|(h, l)| (*l, h.first_seq, Some(h.end_seq()))),
        );
        let mut o = 0; // offset in `pending` of the next record to write
        let mut written: Vec<(String, u64, u64)> = Vec::new(); // (segment, length and end_seq before this sync)
        let result = (|| {
            let mut i = 0;
            while i < items.len() {
                if (roll && i == 0) || self.segments.last().is_none_or(|s| !fits(s, items[i].0)) {
                    // Named by its first event's sequence (a cursor record comes first only with events).
                    let first = items[i].1;
                    self.segments.push(Segment {
                        name: segment_name(first),
                        first_seq: first,
                        end_seq: first,
                        len: 0,
                        damage: Vec::new(),
                    });
                }
                // Items up to the segment's room go in one write.
                let seg_idx = self.segments.len() - 1;
                let mut len = self.segments[seg_idx].len;
                let mut j = i;
                let mut end_seq = None;
                while j < items.len()
                    && (j == i || len + items[j].0 as u64 <= self.limits.segment_max)
                {
                    len += items[j].0 as u64;
                    end_seq = items[j].2.or(end_seq);
                    j += 1;
                }
                let seg = &self.segments[seg_idx];
                if !written.iter().any(|w| w.0 == seg.name) {
                    written.push((seg.name.clone(), seg.len, seg.end_seq));
                }
                let name = seg.name.clone();
                let records = items[i..j]
                    .iter()
                    .filter(|it| it.2.is_some())
                    .map(|it| it.0)
                    .sum::<usize>();
                if items[i].2.is_none() {
                    self.storage.append(&name, &cur)?;
                }
                if records > 0 {
                    self.storage.append(&name, &self.pending[o..o + records])?;
                }
                self.storage.sync(&name)?;
                o += records;
                let seg = &mut self.segments[seg_idx];
                seg.len = len;
                if let Some(e) = end_seq {
                    seg.end_seq = e;
                }
                i = j;
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                self.pending.clear();
                self.pending_headers.clear();
                Ok(())
            }
            Err(e) => {
                // Cut every segment touched back to its durable length; forget
                // segments this sync created; keep all records pending.
                for (name, before, _) in &written {
                    let _ = self.storage.truncate(name, *before);
                    if *before == 0 {
                        let _ = self.storage.remove(name);
                    }
                }
                self.segments
                    .retain(|s| !written.iter().any(|w| w.0 == s.name && w.1 == 0));
                for s in &mut self.segments {
                    if let Some(w) = written.iter().find(|w| w.0 == s.name) {
                        (s.len, s.end_seq) = (w.1, w.2);
                    }
                }
                Err(e)
            }
        }
    }

    pub(super) fn write_cursors(&mut self) -> io::Result<()> {
        let gen = self.cursor_gen + 1;
        let mut b = Vec::with_capacity(20 + self.cursors.len() * 9);
        b.extend_from_slice(CURSOR_MAGIC);
        b.push(1);
        b.extend_from_slice(&gen.to_le_bytes());
        b.extend_from_slice(&(self.cursors.len() as u16).to_le_bytes());
        for (&e, &c) in &self.cursors {
            b.push(e);
            b.extend_from_slice(&c.to_le_bytes());
        }
        let crc = crc::crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        self.storage.replace(CURSOR_FILES[(gen % 2) as usize], &b)?;
        self.cursor_gen = gen;
        self.cursors_dirty = false;
        self.checkpoint = false;
        self.durable_cursors.clone_from(&self.cursors);
        Ok(())
    }

    /// Deletes segments every cursor has passed (never the current one).
    pub(super) fn reclaim(&mut self) -> io::Result<()> {
        let min = self
            .cursors
            .values()
            .copied()
            .min()
            .unwrap_or(self.synced_seq);
        let mut n = 0;
        while n + 1 < self.segments.len() && self.segments[n].end_seq <= min {
            n += 1;
        }
        if n == 0 {
            return Ok(());
        }
        // Sources whose latest record goes with these segments: their
        // positions reach the positions file first.
        let kept_from = self.segments[n].first_seq;
        let doomed: Vec<u16> = self
            .pos_seq
            .iter()
            .filter(|&(&src, &seq)| src != crate::journal::REROUTED && seq < kept_from)
            .map(|(&src, _)| src)
            .collect();
        let now = |src: &u16| {
            (
                self.positions.get(src).copied().unwrap_or_default(),
                self.counts.get(src).copied().flatten(),
            )
        };
        if doomed
            .iter()
            .any(|src| self.saved_positions.get(src) != Some(&now(src)))
        {
            let all: BTreeMap<u16, (Position, Option<u64>)> = self
                .positions
                .keys()
                .filter(|&&src| src != crate::journal::REROUTED)
                .map(|src| (*src, now(src)))
                .collect();
            let bytes = encode_positions(&all);
            self.with_reserve(|j| j.storage.replace(POSITIONS_FILE, &bytes))?;
            self.saved_positions = all;
        }
        for s in self.segments.drain(..n) {
            self.storage.remove(&s.name)?;
        }
        Ok(())
    }
}
