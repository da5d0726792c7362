//! The group commit (contract 5).

use super::*;

/// How long the committer has nothing to do before it gives back the
/// commit buffer (a burst that pauses for less keeps it).
const IDLE_RELEASE: Duration = Duration::from_secs(1);

impl Core {
    /// Group commit: syncs appended records and cursor changes, at most
    /// `commit_every` after the first change, or sooner once `commit_bytes`
    /// wait, but never sooner than `commit_every` (at most
    /// `limits::COMMIT_SPACING`) after the last commit began: however fast
    /// events come, commits stay at 1000 / `-commit-ms` a second (sources
    /// pause at `commit_bytes` meanwhile), so fsyncs keep to the flash budget.
    pub(super) async fn committer(self: Rc<Self>) {
        let mut failures = 0u32;
        // The commit buffer was given back since the last commit.
        let mut released = false;
        let mut last_began: Option<Instant> = None;
        loop {
            let l = self.appended.listen();
            let a = self.shared.acked.listen();
            let (pending, cursors) = {
                let j = self.shared.journal.borrow();
                (j.next_seq() > j.synced_seq(), !j.cursors_synced())
            };
            if !pending && !cursors {
                if released {
                    future::or(l, a).await;
                } else if crate::clock::wait_for(future::or(l, a), IDLE_RELEASE)
                    .await
                    .is_none()
                {
                    // Idle: the commit buffer goes back to the allocator.
                    released = self.shared.journal.borrow_mut().release_buffer();
                }
                continue;
            }
            released = false;
            let due = crate::clock::now() + self.options.commit_every;
            loop {
                if self.shared.journal.borrow().pending_bytes() >= self.options.commit_bytes {
                    let spacing = self.options.commit_every.min(crate::limits::COMMIT_SPACING);
                    if let Some(at) = last_began.map(|b| b + spacing) {
                        Timer::at(at.min(due)).await;
                    }
                    break;
                }
                let l = self.appended.listen();
                if crate::clock::wait_until(l, due).await.is_none() {
                    break;
                }
            }
            last_began = Some(crate::clock::now());
            // Dead letters and reference data first: an acknowledgement of a
            // refused block is never on flash before its letter, and whatever
            // the journal holds, the reference store holds too.
            let r = self.shared.dead_letters.borrow_mut().sync();
            let r = r.and_then(|()| self.shared.reference.borrow_mut().sync());
            let r = r.and_then(|()| self.shared.journal.borrow_mut().sync().map(|_| ()));
            match r {
                Ok(()) => {
                    if failures > 0 {
                        log::info!("journal: syncing works again");
                    }
                    failures = 0;
                    self.shared.synced.notify(usize::MAX);
                    self.room.notify(usize::MAX);
                    let held = {
                        let j = self.shared.journal.borrow();
                        j.next_seq() > j.synced_seq()
                    };
                    if held {
                        // The filesystem is full: records wait in RAM while
                        // engines drain. Try again after an acknowledgement
                        // (or a moment), not in a loop that starves them.
                        let a = self.shared.acked.listen();
                        crate::clock::wait_for(a, Duration::from_millis(200)).await;
                    }
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures.is_power_of_two() {
                        log::error!(
                            "journal: sync failed ({failures} in a row), events stay in RAM and sources pause: {e}"
                        );
                    }
                    Timer::after(Duration::from_millis(100 * u64::from(failures.min(50)))).await;
                }
            }
        }
    }
}
