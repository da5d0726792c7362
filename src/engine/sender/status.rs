//! What the rest of the manager sees of a sender, and the cells it shares
//! with the core: its [`Status`] (watched), the journal and windows
//! ([`Shared`]), the failover role and progress ([`Failover`]), and [`Stop`].

use super::*;

/// What the rest of the manager sees of an engine.
#[derive(Debug, Clone)]
pub struct Status {
    pub state: State,
    pub base: Option<&'static str>,
    pub acked_events: u64,
    pub acked_blocks: u64,
    pub rejected_events: u64,
    pub rejected_blocks: u64,
    /// Publish attempts that will be retried.
    pub failed_requests: u64,
    /// Project loads (adopted and kept projects are not loads).
    pub deploys: u64,
    /// Loads refused, and projects the engine lost again before any event
    /// was taken (a deploy that does not take).
    pub deploy_failures: u64,
    pub request_bytes: u64,
    pub last_error: Option<String>,
    /// Events not sent because the leader reported them delivered.
    pub skipped_events: u64,
    /// Reference events sent again after a load.
    pub reference_resent: u64,
}

impl Default for Status {
    fn default() -> Status {
        Status {
            state: State::Connecting,
            base: None,
            acked_events: 0,
            acked_blocks: 0,
            rejected_events: 0,
            rejected_blocks: 0,
            failed_requests: 0,
            deploys: 0,
            deploy_failures: 0,
            request_bytes: 0,
            last_error: None,
            skipped_events: 0,
            reference_resent: 0,
        }
    }
}

/// An engine's [`Status`], and an event notified at every change (progress
/// displays and tests wait on it instead of polling).
#[derive(Debug, Default)]
pub struct Watched {
    status: RefCell<Status>,
    changed: Event,
    /// Also notified at every change (the core watches all engines with one).
    also: Option<Rc<Event>>,
}

impl Watched {
    /// A status whose changes also notify `also`.
    pub fn notifying(also: Rc<Event>) -> Watched {
        Watched {
            also: Some(also),
            ..Watched::default()
        }
    }

    pub fn get(&self) -> Status {
        self.status.borrow().clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.borrow_mut());
        self.changed.notify(usize::MAX);
        if let Some(e) = &self.also {
            e.notify(usize::MAX);
        }
    }

    /// Waits until `pred` holds, or `deadline` passes (false).
    pub async fn wait_for(&self, pred: impl Fn(&Status) -> bool, deadline: Instant) -> bool {
        loop {
            let l = self.changed.listen();
            if pred(&self.status.borrow()) {
                return true;
            }
            if crate::clock::wait_until(l, deadline).await.is_none() {
                return pred(&self.status.borrow());
            }
        }
    }
}

/// What the senders share with the core.
pub struct Shared<S: Storage> {
    /// The journal, on the measured data path: sources append, senders read
    /// and ack, the committer syncs. The rule: borrow it for one call and
    /// drop the borrow before any `await` (everything runs on one thread,
    /// so a borrow held across an await would make the next task's borrow
    /// panic). Its calls are synchronous and never wait for an engine.
    pub journal: RefCell<Journal<S>>,
    /// Notified after every journal sync (new blocks are readable).
    pub synced: Event,
    /// Notified after every acknowledgement (cursors to persist).
    pub acked: Event,
    pub dead_letters: RefCell<DeadLetters>,
    /// Which project versions this manager loaded on which engine.
    pub deployed: RefCell<crate::engine::deployed::Deployed>,
    /// Reference data kept for engines that get their projects anew.
    pub reference: RefCell<crate::journal::reference::Reference>,
    /// Target windows by destination id (the journal's `target`,
    /// `journal::layout`). Only ever appended to (a reload adds maps; ids
    /// are never reused), so a window once looked up stays right.
    pub windows: RefCell<Vec<Rc<Window>>>,
    pub failover: Failover,
}

impl<S: Storage> Shared<S> {
    /// The window of destination id `t`.
    pub fn window(&self, t: usize) -> Option<Rc<Window>> {
        self.windows.borrow().get(t).cloned()
    }
}

/// What senders and the failover shell share (`failover` module docs).
#[derive(Debug, Default)]
pub struct Failover {
    /// This manager's role (the failover node's, set by its shell): as a
    /// standby, senders trim what the leader reports and publish nothing.
    pub role: Cell<crate::failover::Role>,
    /// Notified when `role` changes.
    pub role_changed: Event,
    /// What this manager's engines acknowledged, by (engine, raw-source):
    /// the source's event count below which every event routed to the
    /// engine is acknowledged (senders raise it; the leader reports it).
    pub acked: RefCell<crate::failover::Acked>,
    /// Notified when `acked` grows.
    pub progress: Event,
    /// The same as reported by the leader (a standby trims by it; a new
    /// leader skips what the old one had delivered).
    pub peer_acked: RefCell<crate::failover::Acked>,
    /// Notified when `peer_acked` grows.
    pub peer_progress: Event,
}

impl Failover {
    /// A standby publishes nothing.
    pub fn is_standby(&self) -> bool {
        self.role.get() == crate::failover::Role::Standby
    }

    /// Whether the leader reported every event of record `h` acknowledged
    /// by engine `e`.
    pub(super) fn peer_has(&self, e: EngineId, h: &Header) -> bool {
        h.origin.known()
            && h.source != REROUTED
            && self
                .peer_acked
                .borrow()
                .get(&(e, h.source))
                .is_some_and(|&n| h.origin.block_end() <= n)
    }
}

/// Stops a sender between two steps (engine removed, shutdown).
#[derive(Debug, Default)]
pub struct Stop {
    flag: Cell<bool>,
    event: Event,
}

impl Stop {
    pub fn stop(&self) {
        self.flag.set(true);
        self.event.notify(usize::MAX);
    }

    pub fn is_stopped(&self) -> bool {
        self.flag.get()
    }

    /// Waits for `f` unless stopped first (`None`).
    pub async fn or<T>(&self, f: impl std::future::Future<Output = T>) -> Option<T> {
        let l = self.event.listen();
        if self.flag.get() {
            return None;
        }
        future::or(async { Some(f.await) }, async {
            l.await;
            None
        })
        .await
    }
}
