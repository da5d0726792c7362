//! What the rest of the manager sees of a sender and what passes between
//! them: its [`Status`] (watched), the journal and windows ([`Shared`]),
//! the [`Orders`] the core tells it, the [`Report`]s it sends back, and
//! [`Stop`].

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
}

impl Watched {
    pub fn get(&self) -> Status {
        self.status.borrow().clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.borrow_mut());
        self.changed.notify(usize::MAX);
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
}

impl<S: Storage> Shared<S> {
    /// The window of destination id `t`.
    pub fn window(&self, t: usize) -> Option<Rc<Window>> {
        self.windows.borrow().get(t).cloned()
    }
}

/// A sender's failover mode, as the core tells it (`Orders`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Publish to the engine (this manager leads).
    #[default]
    Publish,
    /// Standby: never contact the engine; move the cursor past what the
    /// leader reports delivered.
    Standby,
}

/// What the core tells one sender (`daemon::owner`): its mode, and what the
/// leader reported delivered to its engine, by raw-source (the count below
/// which every event of that source routed to it is acknowledged). A
/// standby trims up to it; a new leader skips it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Orders {
    pub mode: Mode,
    pub delivered: BTreeMap<u16, u64>,
}

impl Orders {
    /// Whether every event of record `h` was reported delivered.
    pub(super) fn delivered(&self, h: &Header) -> bool {
        h.origin.known()
            && h.source != REROUTED
            && self
                .delivered
                .get(&h.source)
                .is_some_and(|&n| h.origin.block_end() <= n)
    }
}

/// A one-slot mailbox: the core puts, the sender takes; a newer message
/// replaces one not taken yet (orders are a state, the latest counts).
#[derive(Debug)]
pub struct Told<T> {
    slot: RefCell<Option<T>>,
    event: Event,
}

impl<T> Default for Told<T> {
    fn default() -> Self {
        Told {
            slot: RefCell::new(None),
            event: Event::new(),
        }
    }
}

impl<T> Told<T> {
    pub fn put(&self, t: T) {
        *self.slot.borrow_mut() = Some(t);
        self.event.notify(usize::MAX);
    }

    pub fn take(&self) -> Option<T> {
        self.slot.borrow_mut().take()
    }

    /// Notified at the next `put`.
    pub fn listen(&self) -> event_listener::EventListener {
        self.event.listen()
    }
}

/// What a sender tells the core (`daemon::owner` wraps it in its message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// The engine's state changed (supervision looks at it).
    Changed(EngineId),
    /// The engine acknowledged events: (raw-source, count below which
    /// every event of it routed here is acknowledged).
    Acked {
        engine: EngineId,
        marks: Vec<(u16, u64)>,
    },
}

/// Where a sender's reports go: true when taken (a full inbox refuses; the
/// sender keeps its marks and tries again).
pub type Reporter = Rc<dyn Fn(Report) -> bool>;

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

    /// Waits for `f` unless stopped first (`None`). A future ready at once
    /// (a source's next buffered event) costs no listener.
    pub async fn or<T>(&self, f: impl std::future::Future<Output = T>) -> Option<T> {
        if self.flag.get() {
            return None;
        }
        let mut f = std::pin::pin!(f);
        if let Some(v) = future::poll_once(f.as_mut()).await {
            return Some(v);
        }
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
