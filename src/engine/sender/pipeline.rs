//! Pipelined publishing (`-pipeline`): up to `-inflight` requests on one
//! connection at once, their answers read in order (RFC 9112 §9.3.2), so a
//! round trip no longer caps a backlog's drain at one request per trip.
//!
//! Only what is done in order is acknowledged: the first answer that is
//! not a 2xx (a refusal, a 5xx, a time-out, a lost connection) drops the
//! connection and the rest of the window; its block is read again and sent
//! alone by the one-at-a-time path, which knows refusals, backoff and
//! redeploys, and the requests behind it follow it again. The engine may
//! have taken some of those already: with `-pipeline`, one failure can send
//! up to `-inflight` − 1 requests twice and deliver them before the failed
//! one (README, contract 2). Without it nothing here runs.

use super::*;

impl Sender {
    /// Whether the next requests go pipelined: `-pipeline`, no reference
    /// data to send again first, and not while the one-at-a-time path
    /// works through what a failure in a window left.
    pub(super) fn pipelining<S: Storage>(&self, shared: &Shared<S>) -> bool {
        self.settings.pipeline
            && self.replay.is_none()
            && shared
                .journal
                .borrow()
                .cursor(self.id)
                .is_some_and(|c| c >= self.alone_until)
    }

    /// Gives up the window (a failure, a stop, a change of mode): reading
    /// goes on from its first block, and the connection is dropped with
    /// the answers outstanding.
    pub(super) fn drop_window(&mut self, pos: &mut ReadPos) {
        if let Some(first) = self.window.front() {
            *pos = first.start.clone();
            self.alone_until = self.window.back().map_or(0, |b| b.end_seq);
            self.window.clear();
            self.client.close();
        }
    }

    /// One step: fills the window with requests, then reads one answer.
    /// False when there is nothing to send and nothing outstanding (the
    /// caller idles).
    pub(super) async fn pipeline_step<S: Storage>(
        &mut self,
        shared: &Shared<S>,
        pos: &mut ReadPos,
        payload: &mut Vec<u8>,
    ) -> bool {
        // What a crash may send again stays within -inflight requests: on
        // the wire, or answered and waiting for the group commit.
        self.prune_durable(shared);
        while self.window.len() + self.undurable.len() < self.settings.inflight {
            let b = match self.next_block(shared, pos, payload) {
                Ok(Some(b)) => b,
                Ok(None) => break,
                Err(why) => {
                    log::error!("engine '{}': {why}", self.name);
                    break;
                }
            };
            let w = shared.window(b.target).expect("a block's window exists");
            let path = format!("{}{}", self.base(), w.inject_path);
            let r = self
                .client
                .send_pipelined(
                    "PUT",
                    &path,
                    Some("application/xml"),
                    &b.body,
                    self.settings.timeout,
                )
                .await;
            self.status
                .update(|s| s.request_bytes += b.body.len() as u64);
            let mut b = b;
            self.spare_body.set(std::mem::take(&mut b.body));
            self.window.push_back(b);
            if let Err(e) = r {
                log::debug!(
                    "engine '{}': pipelined request to {}: {e}",
                    self.name,
                    w.label
                );
                self.drop_window(pos);
                return true;
            }
        }
        if self.window.is_empty() {
            if self.undurable.len() >= self.settings.inflight {
                self.wait_window(shared).await;
                return true;
            }
            return false;
        }
        let r = self.client.receive(self.settings.timeout).await;
        match classify(&r) {
            Outcome::Done => {
                let b = self.window.pop_front().expect("not empty");
                self.last_cause = None;
                self.took();
                self.sizing.taken();
                self.acknowledge(shared, &b, false);
                self.undurable.push_back(b.end_seq);
                self.prune_durable(shared);
            }
            _ => {
                log::debug!(
                    "engine '{}': a pipelined request was not taken ({}); it and the {} behind it are sent again, the first alone",
                    self.name,
                    match &r {
                        Ok(resp) => format!("{}", resp.status),
                        Err(e) => e.to_string(),
                    },
                    self.window.len() - 1
                );
                self.drop_window(pos);
            }
        }
        true
    }
}
