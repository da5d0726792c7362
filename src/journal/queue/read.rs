//! Reading for the engines: cursors, acknowledgements, and readers that
//! step over damage to the next valid record.

use super::*;
use crate::limits::JOURNAL_READ_AHEAD;

impl<S: Storage> Journal<S> {
    /// Engine `e` acknowledged everything below `upto`, of which `events`
    /// were destined to it. Persisted at the next `sync`.
    pub fn ack(&mut self, e: EngineId, upto: u64, events: u64) {
        let upto = upto.min(self.synced_seq);
        if let Some(c) = self.cursors.get_mut(&e) {
            if upto > *c {
                *c = upto;
                self.cursors_dirty = true;
            }
            if let Some(b) = self.backlog.get_mut(&e) {
                *b = b.saturating_sub(events);
            }
        }
    }

    /// True when every cursor change has reached flash.
    pub fn cursors_synced(&self) -> bool {
        !self.cursors_dirty
    }

    /// Engine `e`'s cursor as last written to flash (0 when never).
    pub fn durable_cursor(&self, e: EngineId) -> u64 {
        self.durable_cursors.get(&e).copied().unwrap_or(0)
    }

    pub fn cursor(&self, e: EngineId) -> Option<u64> {
        self.cursors.get(&e).copied()
    }

    /// A reader position at engine `e`'s cursor.
    pub fn reader(&self, e: EngineId) -> ReadPos {
        ReadPos {
            seq: self.cursor(e).unwrap_or(self.synced_seq),
            ..ReadPos::default()
        }
    }

    /// The next durable record destined to `e` at or after `pos`, its payload
    /// in `payload`. Records for other engines are skipped by reading their
    /// headers only. `None` when `e` is caught up (then `pos.seq` is the
    /// synced end, which the caller may ack when nothing is in flight).
    pub fn read_next(
        &mut self,
        e: EngineId,
        pos: &mut ReadPos,
        payload: &mut Vec<u8>,
    ) -> io::Result<Option<Header>> {
        let found = self
            .segments
            .iter()
            .position(|s| s.first_seq == pos.segment_first);
        let mut idx = match found {
            Some(i) if pos.offset > 0 => i,
            _ => {
                // Fresh, or its segment was freed: start at the segment holding `seq`.
                let Some(i) = self
                    .segments
                    .iter()
                    .rposition(|s| s.first_seq <= pos.seq)
                    .or(if self.segments.is_empty() {
                        None
                    } else {
                        Some(0)
                    })
                else {
                    return Ok(None);
                };
                pos.offset = 0;
                pos.segment_first = self.segments[i].first_seq;
                i
            }
        };
        let mut head = [0u8; record::HEADER_LEN];
        loop {
            if pos.seq >= self.synced_seq {
                return Ok(None);
            }
            let seg = &self.segments[idx];
            if pos.offset >= seg.len {
                if idx + 1 >= self.segments.len() {
                    return Ok(None);
                }
                idx += 1;
                pos.offset = 0;
                pos.segment_first = self.segments[idx].first_seq;
                continue;
            }
            let n = self.read_ahead(e, idx, pos.offset, &mut head)?;
            let total = match record::peek_len(&head[..n]) {
                Some((record::KIND_CURSORS, total)) => {
                    pos.offset += total as u64;
                    continue;
                }
                Some((_, total)) => total,
                None => {
                    // Damage: resume at the next valid record, not the next segment.
                    pos.offset = self.after_damage(idx, pos.offset)?;
                    continue;
                }
            };
            // Peek the header fields without verifying: a skipped record's bytes are
            // never used. A record we return is read whole and its CRC verified.
            let first = u64::from_le_bytes(head[12..20].try_into().expect("8 bytes"));
            let count = u32::from_le_bytes(head[20..24].try_into().expect("4 bytes"));
            let dest = EngineSet::from_bits(u64::from_le_bytes(
                head[24..32].try_into().expect("8 bytes"),
            ));
            let end = first + u64::from(count);
            if end <= pos.seq || !dest.contains(e) {
                pos.offset += total as u64;
                pos.seq = pos.seq.max(end);
                continue;
            }
            payload.resize(total, 0);
            let n = self.read_ahead(e, idx, pos.offset, payload)?;
            match record::parse(&payload[..n]) {
                Parsed::Record { header, len } => {
                    pos.offset += len as u64;
                    pos.seq = header.end_seq();
                    let hl = record::header_len(payload);
                    payload.drain(..hl);
                    payload.truncate(len - hl);
                    return Ok(Some(header));
                }
                _ => {
                    pos.offset = self.after_damage(idx, pos.offset)?;
                }
            }
        }
    }

    /// Reads `buf` from segment `idx` at `offset` for engine `e`, through
    /// its read-ahead: one read of up to `JOURNAL_READ_AHEAD` durable bytes
    /// serves the records after it too. Larger reads go straight through.
    fn read_ahead(
        &mut self,
        e: EngineId,
        idx: usize,
        offset: u64,
        buf: &mut [u8],
    ) -> io::Result<usize> {
        let seg = &self.segments[idx];
        let i = usize::from(e);
        if self.ahead.len() <= i {
            self.ahead.resize_with(i + 1, Ahead::default);
        }
        let a = &mut self.ahead[i];
        let want = buf.len() as u64;
        if a.segment_first == seg.first_seq
            && offset >= a.at
            && offset + want <= a.at + a.data.len() as u64
        {
            let from = (offset - a.at) as usize;
            buf.copy_from_slice(&a.data[from..from + buf.len()]);
            return Ok(buf.len());
        }
        if buf.len() >= JOURNAL_READ_AHEAD {
            return self.storage.read_at(&seg.name, offset, buf);
        }
        // The window keeps durable bytes only: what lies past `len` may
        // still be cut back and written again.
        let span = seg
            .len
            .saturating_sub(offset)
            .min(JOURNAL_READ_AHEAD as u64) as usize;
        a.data.resize(span.max(buf.len()), 0);
        let n = self.storage.read_at(&seg.name, offset, &mut a.data)?;
        let got = n.min(buf.len());
        buf[..got].copy_from_slice(&a.data[..got]);
        a.data.truncate(n.min(span));
        a.segment_first = seg.first_seq;
        a.at = offset;
        Ok(got)
    }

    /// Where the damaged stretch of segment `idx` that holds `offset` ends:
    /// the next valid record. Damage recovery did not see (flash that went
    /// bad since) is found by scanning the segment again, once.
    pub(super) fn after_damage(&mut self, idx: usize, offset: u64) -> io::Result<u64> {
        let within = |d: &[(u64, u64)]| {
            d.iter()
                .find(|&&(o, l)| o <= offset && offset < o + l)
                .map(|&(o, l)| o + l)
        };
        if let Some(end) = within(&self.segments[idx].damage) {
            return Ok(end);
        }
        let name = self.segments[idx].name.clone();
        let len = self.segments[idx].len;
        let storage = &mut self.storage;
        let scan = record::scan_stream(
            |o, b| storage.read_at(&name, o, b),
            len,
            |_, _, _| true,
            |_| {},
        )?;
        self.segments[idx].damage = scan.damage.iter().map(|d| (d.offset, d.len)).collect();
        match within(&self.segments[idx].damage) {
            Some(end) => {
                log::error!(
                    "journal: {name} went bad at byte {offset} since it was written; reading on after the damage"
                );
                Ok(end)
            }
            None => {
                log::error!("journal: {name}: a record at byte {offset} does not read; the rest of the segment is skipped");
                Ok(u64::MAX)
            }
        }
    }
}
