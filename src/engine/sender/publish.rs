//! Publishing: the next block of journal records for this engine, its
//! request, the answer (acknowledged, rejected to dead letters, retried),
//! and a standby's trimming of what the leader delivered.

use super::*;

impl Sender {
    /// The next block for this engine, or `None` when caught up (then the
    /// cursor is moved past records meant for other engines). A block takes
    /// consecutive records for the same window up to [`REQUEST_BODY_MAX`].
    pub(super) fn next_block<S: Storage>(
        &self,
        shared: &Shared<S>,
        pos: &mut ReadPos,
        payload: &mut Vec<u8>,
    ) -> Result<Option<Block>, String> {
        let mut j = shared.journal.borrow_mut();
        let mut block: Option<Block> = None;
        loop {
            let before = pos.clone();
            let header = j
                .read_next(self.id, pos, payload)
                .map_err(|e| format!("reading the journal: {e}"))?;
            let Some(h) = header else {
                // Never past pipelined requests not answered yet.
                let clear = self.window.is_empty();
                if clear && block.is_none() && j.cursor(self.id).is_some_and(|c| pos.seq > c) {
                    j.ack(self.id, pos.seq, 0);
                    shared.acked.notify(usize::MAX);
                }
                return Ok(block.map(Block::closed));
            };
            if self.orders.delivered(&h) {
                // The leader before us had it delivered.
                if block.is_some() || !self.window.is_empty() {
                    *pos = before;
                    return Ok(block.map(Block::closed));
                }
                self.skip_delivered(shared, &mut j, &h);
                continue;
            }
            let target = usize::from(h.target);
            if let Some(b) = &block {
                let open = Open {
                    target: b.target,
                    transactional: b.transactional,
                    body_len: b.body.len(),
                    first_seq: b.first_seq,
                };
                if !self.sizing.joins(&open, target) {
                    *pos = before;
                    return Ok(block.map(Block::closed));
                }
            }
            let Some(w) = shared.window(target) else {
                if block.is_some() || !self.window.is_empty() {
                    // Sent first; this record is dealt with on the next round.
                    *pos = before;
                    return Ok(block.map(Block::closed));
                }
                log::error!(
                    "engine '{}': journal record at seq {} names destination {target}, which this config does not have; skipped",
                    self.name, h.first_seq
                );
                j.ack(self.id, h.end_seq(), u64::from(h.count));
                continue;
            };
            let b = block.get_or_insert_with(|| {
                let mut body = self.spare_body.take();
                body.clear();
                body.reserve(payload.len() * 4 + 32);
                body.extend_from_slice(b"<events>");
                if w.transactional {
                    body.extend_from_slice(b"<transaction>");
                }
                Block {
                    first_seq: h.first_seq,
                    end_seq: h.first_seq,
                    count: 0,
                    records: 0,
                    start: before.clone(),
                    target,
                    body,
                    marks: Vec::new(),
                    transactional: w.transactional,
                }
            });
            let mark = b.body.len();
            match event_elements(payload, &w, &mut b.body) {
                Ok(_) => {
                    b.end_seq = h.end_seq();
                    b.count += h.count;
                    b.records += 1;
                    if h.origin.known() && h.source != REROUTED {
                        b.marks.push((h.source, h.origin.acked_through(self.id)));
                    }
                }
                Err(_) => {
                    b.body.truncate(mark);
                    if b.count > 0 {
                        *pos = before;
                        return Ok(block.map(Block::closed));
                    }
                    if !self.window.is_empty() {
                        // Skipped once the pipelined requests before it are answered.
                        *pos = before;
                        return Ok(None);
                    }
                    block = None;
                    log::error!(
                        "engine '{}': journal record at seq {} has a damaged payload; skipped",
                        self.name,
                        h.first_seq
                    );
                    j.ack(self.id, h.end_seq(), u64::from(h.count));
                }
            }
        }
    }

    /// Keeps at most `Settings::inflight` answered requests whose
    /// acknowledgement is not on flash: past that, waits for the group
    /// commit that makes the oldest durable (or stop). The engine's answers,
    /// not the commit, set the pace; what a crash sends again stays bounded.
    pub(super) async fn wait_window<S: Storage>(&mut self, shared: &Shared<S>) {
        loop {
            self.prune_durable(shared);
            let gone = shared.journal.borrow().cursor(self.id).is_none();
            let Some(&oldest) = self.undurable.front() else {
                return;
            };
            if gone || self.stop.is_stopped() || self.undurable.len() < self.settings.inflight {
                return;
            }
            self.wait_durable(shared, oldest).await;
        }
    }

    /// Drops the answered requests the group commit made durable.
    pub(super) fn prune_durable<S: Storage>(&mut self, shared: &Shared<S>) {
        let durable = shared.journal.borrow().durable_cursor(self.id);
        while self.undurable.front().is_some_and(|&u| u <= durable) {
            self.undurable.pop_front();
        }
    }

    /// Waits until this engine's cursor on flash covers `upto` (or stop).
    pub(super) async fn wait_durable<S: Storage>(&self, shared: &Shared<S>, upto: u64) {
        loop {
            let l = shared.synced.listen();
            {
                let j = shared.journal.borrow();
                if j.durable_cursor(self.id) >= upto || j.cursor(self.id).is_none() {
                    return;
                }
            }
            if self.stop.or(l).await.is_none() {
                return;
            }
        }
    }

    /// A standby's sender: moves the cursor past what the leader reports
    /// delivered, never contacts the engine; returns when this manager
    /// leads (the engine is then probed and deployed afresh) or stops.
    pub(super) async fn stand_by<S: Storage>(
        &mut self,
        shared: &Shared<S>,
        pos: &mut ReadPos,
        payload: &mut Vec<u8>,
    ) {
        self.link.stand_by();
        self.sync_status();
        log::info!("engine '{}': standing by", self.name);
        loop {
            let synced = shared.synced.listen();
            let told = self.told.listen();
            self.read_told();
            if self.orders.mode != Mode::Standby || self.stop.is_stopped() {
                return;
            }
            {
                let mut j = shared.journal.borrow_mut();
                loop {
                    let before = pos.clone();
                    match j.read_next(self.id, pos, payload) {
                        Ok(Some(h)) if self.orders.delivered(&h) => {
                            self.skip_delivered(shared, &mut j, &h);
                        }
                        Ok(Some(_)) => {
                            *pos = before;
                            break;
                        }
                        Ok(None) => break,
                        Err(e) => {
                            log::error!("engine '{}': reading the journal: {e}", self.name);
                            *pos = before;
                            break;
                        }
                    }
                }
            }
            self.stop.or(future::or(synced, told)).await;
        }
    }

    /// Moves the cursor past record `h`, which the leader reported delivered.
    pub(super) fn skip_delivered<S: Storage>(
        &self,
        shared: &Shared<S>,
        j: &mut Journal<S>,
        h: &Header,
    ) {
        j.ack(self.id, h.end_seq(), u64::from(h.count));
        shared.acked.notify(usize::MAX);
        self.status
            .update(|s| s.skipped_events += u64::from(h.count));
    }

    /// Sends one block; true when it is done with (acknowledged or dead-lettered).
    pub(super) async fn publish<S: Storage>(&mut self, shared: &Shared<S>, b: &Block) -> bool {
        let w = shared.window(b.target).expect("a block's window exists");
        let path = format!("{}{}", self.base(), w.inject_path);
        let r = self.put_xml(&path, &b.body, self.settings.timeout).await;
        match classify(&r) {
            Outcome::Done => {
                self.last_cause = None;
                self.took();
                self.sizing.taken();
                self.acknowledge(shared, b, false);
                true
            }
            Outcome::Rejected { .. } if b.records > 1 => {
                // Find the refused record: send this request's records one by one.
                self.answered();
                self.sizing.refused(b.end_seq);
                log::log!(
                    if self.last_refusal.is_some() {
                        log::Level::Debug
                    } else {
                        log::Level::Info
                    },
                    "engine '{}': refused a request of {} records; sending them one by one",
                    self.name,
                    b.records
                );
                false
            }
            Outcome::Rejected { status, message } => {
                self.answered();
                // ESP's status for "no such project" is not documented
                // (esp-protocol.md §2.3): a refusal goes to the dead
                // letters only once the engine still lists the project.
                let fresh = self
                    .listed_at
                    .is_some_and(|t| t.elapsed() < self.settings.ticktime);
                let check = if fresh {
                    Ok(None)
                } else {
                    self.missing_project(self.settings.timeout).await
                };
                match check {
                    Ok(None) => {}
                    Ok(Some(p)) => {
                        self.project_lost(format!(
                            "refused {} ({message}) and does not list project '{p}'",
                            w.label
                        ))
                        .await;
                        return false;
                    }
                    Err(why) => {
                        let d = self.fail(
                            Happened::SendFailed,
                            format!("refused {} ({message}); {why}", w.label),
                        );
                        self.wait(d).await;
                        return false;
                    }
                }
                if !self
                    .dead_letter(shared, &w, b.first_seq, b.count, status, &message, &b.body)
                    .await
                {
                    return false;
                }
                self.acknowledge(shared, b, true);
                self.refused_last = true;
                true
            }
            Outcome::Lost(why) => self.window_lost(&w, why).await,
            Outcome::Retry(why) => {
                self.sizing.failed(b.records, b.body.len());
                self.retry_later(format!("publishing to {}: {why}", w.label))
                    .await
            }
        }
    }

    /// Writes a refused block to the dead letters; false (after a backoff)
    /// when it cannot be written, so that it is kept and tried again.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn dead_letter<S: Storage>(
        &mut self,
        shared: &Shared<S>,
        w: &crate::engine::encode::Window,
        first_seq: u64,
        count: u32,
        status: u16,
        message: &str,
        body: &[u8],
    ) -> bool {
        let letter = Letter {
            time_ms: crate::clock::wall_ms(),
            engine: &self.name,
            window: &w.label,
            first_seq,
            count,
            status,
            message,
            body,
        };
        let written = shared.dead_letters.borrow_mut().write(&letter);
        if let Err(e) = written {
            // Never acknowledge a refused block that is not on flash.
            log::error!(
                "engine '{}': refused block at seq {first_seq} ({message}) cannot be written to {}: {e}; keeping it",
                self.name,
                shared.dead_letters.borrow().path().display()
            );
            let next = self.link.step(Happened::Stalled, crate::clock::now());
            self.wait(next.wait).await;
            return false;
        }
        // Logged once per window and reason; the counts are in the status.
        let key = format!("{}: {message}", w.label);
        let level = if self.last_refusal.as_deref() == Some(key.as_str()) {
            log::Level::Debug
        } else {
            log::Level::Warn
        };
        log::log!(
            level,
            "engine '{}': refused {count} events for {} (seq {first_seq}): {message}; written to {}{}",
            self.name,
            w.label,
            shared.dead_letters.borrow().path().display(),
            if level == log::Level::Warn {
                " (further refusals for the same reason are counted, not logged)"
            } else {
                ""
            }
        );
        self.last_refusal = Some(key);
        true
    }

    /// The engine does not know window `w` (404): its projects are loaded
    /// again. Always false (the request is to be sent again).
    pub(super) async fn window_lost(
        &mut self,
        w: &crate::engine::encode::Window,
        why: String,
    ) -> bool {
        self.answered();
        self.project_lost(format!("does not know {} ({why})", w.label))
            .await;
        false
    }

    /// Moves the cursor past `b` (the engine took it, or it is in the dead letters).
    pub(super) fn acknowledge<S: Storage>(
        &mut self,
        shared: &Shared<S>,
        b: &Block,
        rejected: bool,
    ) {
        let n = u64::from(b.count);
        shared.journal.borrow_mut().ack(self.id, b.end_seq, n);
        shared.acked.notify(usize::MAX);
        if !b.marks.is_empty() {
            // Reported to the core (the leader reports them to standbys).
            for &(source, through) in &b.marks {
                let v = self.unreported.entry(source).or_insert(0);
                *v = (*v).max(through);
            }
            self.read_told();
        }
        self.status.update(|s| match rejected {
            false => {
                s.acked_events += n;
                s.acked_blocks += 1;
            }
            true => {
                s.rejected_events += n;
                s.rejected_blocks += 1;
            }
        });
    }
}
