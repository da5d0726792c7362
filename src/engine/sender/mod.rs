//! One engine's sender: a task on the core's executor that reads the
//! engine's blocks from the journal at its cursor, publishes them (one
//! request at a time, or pipelined: `pipeline`), and acknowledges them
//! (contract 2); up to `-inflight` answered requests may wait for the group
//! commit that makes their acknowledgement durable (`wait_window`). The
//! state machine it walks is in the module docs of `engine`.
//!
//! The journal is shared with the rest of the core through `Rc<RefCell<..>>`
//! and borrowed only between awaits. A sender waits on [`Shared::synced`],
//! which the group commit notifies after each sync, and on its tick timer;
//! it never polls.

use super::link::{Action, Happened, Link};
use super::sizing::{Open, Sizing};
use super::{classify, Outcome, State, BASES};
use crate::engine::deadletter::{DeadLetters, Letter};
use crate::engine::encode::{event_elements, Window};
use crate::http::client::{Client, HttpError, Response};
use crate::journal::{Header, Journal, ReadPos, Storage, REROUTED};
use crate::route::EngineId;
use async_io::Timer;
use event_listener::Event;
use futures_lite::future;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

mod deploy;
mod pipeline;
mod publish;
mod status;

pub use status::{Mode, Orders, Report, Reporter, Shared, Status, Stop, Told, Watched};

/// `-ticktime`, `-retries`, `-timeout` and the backoff bounds.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub ticktime: Duration,
    pub retries: u32,
    pub timeout: Duration,
    /// `-inflight`: requests sent whose acknowledgement is not on flash
    /// yet, answered or (with `pipeline`) on the wire
    /// (`limits::DEFAULT_INFLIGHT`).
    pub inflight: usize,
    /// `-pipeline`: put up to `inflight` requests on the wire at once
    /// (`sender::pipeline`).
    pub pipeline: bool,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl Settings {
    pub fn new(ticktime_ms: u64, retries: u32, timeout_ms: u64) -> Settings {
        Settings {
            ticktime: Duration::from_millis(ticktime_ms.max(1)),
            retries,
            timeout: Duration::from_millis(timeout_ms.max(1)),
            inflight: crate::limits::DEFAULT_INFLIGHT,
            pipeline: false,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
        }
    }

    /// A heartbeat must answer within the tick (and the time-out).
    fn heartbeat_deadline(&self) -> Duration {
        self.timeout.min(self.ticktime)
    }

    /// Loading a project may take an engine a while.
    fn deploy_deadline(&self) -> Duration {
        self.timeout.max(Duration::from_secs(10))
    }
}

/// A project to load on the engine.
#[derive(Debug)]
pub struct Deploy {
    pub name: String,
    /// The `<project>` element as loaded: without its publisher connectors
    /// (`config::project::without_publishers`).
    pub xml: String,
    /// FNV-1a of `xml`: which version an engine runs (`deployed`).
    pub fingerprint: u64,
    /// Publisher connectors taken out of the project.
    pub publishers_removed: usize,
}

impl Deploy {
    /// The project `xml` (a `<project>` element) to load as `name`, without
    /// its publisher connectors. A project whose XML does not parse (the
    /// config checked it did) is loaded as written.
    pub fn new(name: &str, xml: &str) -> Deploy {
        let (xml, publishers_removed) = crate::config::project::without_publishers(xml)
            .unwrap_or_else(|_| (xml.to_string(), 0));
        Deploy {
            name: name.to_string(),
            fingerprint: crate::config::fingerprint::fingerprint(&xml),
            xml,
            publishers_removed,
        }
    }
}

/// One request's worth: consecutive journal records for this engine and
/// one target window, as one `<events>` body.
struct Block {
    first_seq: u64,
    /// One past the last record's events (records for other engines may
    /// lie between `first_seq` and here).
    end_seq: u64,
    count: u32,
    /// Journal records in it.
    records: u32,
    /// The reader position before its first record.
    start: ReadPos,
    target: usize,
    body: Vec<u8>,
    /// (raw-source, count) acknowledged with it (`Report::Acked`).
    marks: Vec<(u16, u64)>,
    /// One `<transaction>` (the window's source is transactional).
    transactional: bool,
}

pub use crate::limits::REQUEST_BODY_MAX;

/// Syncs the journal at every acknowledgement: the cursor commit for
/// setups without the daemon's group commit (tests, benchmarks). Senders
/// wait for their acknowledgements to be on flash, so something must sync.
pub async fn sync_on_ack<S: Storage>(shared: Rc<Shared<S>>) {
    loop {
        let l = shared.acked.listen();
        if !shared.journal.borrow().cursors_synced() {
            if let Err(e) = shared.dead_letters.borrow_mut().sync() {
                log::error!("dead letters: sync failed: {e}");
            }
            let r = shared.journal.borrow_mut().sync();
            if let Err(e) = r {
                log::error!("journal: sync failed: {e}");
            }
            shared.synced.notify(usize::MAX);
        }
        l.await;
    }
}

impl Block {
    fn closed(mut self) -> Block {
        if self.transactional {
            self.body.extend_from_slice(b"</transaction>");
        }
        self.body.extend_from_slice(b"</events>");
        self
    }
}

pub struct Sender {
    pub id: EngineId,
    pub name: String,
    client: Client,
    /// Health, backoff and heartbeat timing (`engine::link`): this task
    /// does what it asks and reports what happened.
    link: Link,
    settings: Settings,
    projects: Vec<Rc<Deploy>>,
    pub status: Rc<Watched>,
    pub stop: Rc<Stop>,
    /// How large requests grow, and which records go alone after a
    /// refusal (`engine::sizing`).
    sizing: Sizing,
    /// The cause of the last deploy trouble logged (logged once per cause).
    last_cause: Option<String>,
    /// Load the projects even where the engine lists them.
    force_reload: bool,
    /// Global ids of this engine's cluster, as bits (reference data).
    cluster_mask: u64,
    /// Reference data still to send again before anything else.
    replay: Option<Replay>,
    /// The path the REST bases sit under (`<esp-engine url>`), or empty.
    prefix: String,
    /// Projects loaded whose load is recorded once the replay is done.
    loaded: Vec<Rc<Deploy>>,
    /// When the engine last listed every project (a refusal within a tick
    /// of it goes to the dead letters without asking again).
    listed_at: Option<Instant>,
    /// The last block sent was refused and dead-lettered: the next one
    /// need not wait for the group commit (a local write, not a delivery).
    refused_last: bool,
    /// The window and reason of the last refusal logged.
    last_refusal: Option<String>,
    /// What the core last told this sender (its mode, what the leader
    /// delivered); new orders arrive in `told`.
    orders: Orders,
    pub told: Rc<Told<Orders>>,
    /// Where reports go (none: nobody listens, as in tests of one sender).
    reporter: Option<Reporter>,
    /// Acknowledged marks not reported yet (the core's inbox was full).
    unreported: BTreeMap<u16, u64>,
    /// The end seq of each answered request whose acknowledgement is not
    /// on flash yet, oldest first (at most `Settings::inflight`).
    undurable: std::collections::VecDeque<u64>,
    /// Pipelined requests on the wire, oldest first (`pipeline`).
    window: std::collections::VecDeque<Block>,
    /// The last request's body buffer, for the next (given back after an
    /// idle tick): a request costs no allocation of up to 512 KiB.
    spare_body: std::cell::Cell<Vec<u8>>,
    /// After a failure in a window: requests go one at a time until the
    /// cursor reaches this seq.
    alone_until: u64,
}

/// Where an engine's replay of reference data stands.
#[derive(Debug, Clone, Copy)]
struct Replay {
    /// Next record's offset in the reference store.
    offset: u64,
    /// Records from this seq on are still in the journal for this engine:
    /// they come the usual way.
    below: u64,
    sent: u64,
}

impl Sender {
    pub fn new(
        id: EngineId,
        name: &str,
        host: &str,
        ha_port: u16,
        projects: Vec<Rc<Deploy>>,
        settings: Settings,
    ) -> Sender {
        Sender {
            id,
            name: name.to_string(),
            client: Client::new(host, ha_port),
            link: Link::new(
                settings.retries,
                settings.ticktime,
                (settings.backoff_min, settings.backoff_max),
                fastrand::u64(..),
                crate::clock::now(),
            ),
            settings,
            projects,
            status: Rc::new(Watched::default()),
            stop: Rc::new(Stop::default()),
            sizing: Sizing::default(),
            last_cause: None,
            force_reload: false,
            cluster_mask: u64::MAX,
            replay: None,
            loaded: Vec::new(),
            prefix: String::new(),
            listed_at: None,
            refused_last: false,
            last_refusal: None,
            orders: Orders::default(),
            told: Rc::new(Told::default()),
            reporter: None,
            unreported: BTreeMap::new(),
            undurable: std::collections::VecDeque::new(),
            window: std::collections::VecDeque::new(),
            spare_body: std::cell::Cell::default(),
            alone_until: 0,
        }
    }

    /// Reaches the engine over `t` with `auth` (TLS, credentials).
    pub fn reaching_with(
        mut self,
        t: crate::http::client::Transport,
        auth: Option<Rc<crate::auth::Credential>>,
    ) -> Sender {
        let c = std::mem::replace(&mut self.client, Client::new("", 0));
        self.client = c.with_transport(t).with_auth(auth);
        self
    }

    /// Reaches the engine's REST bases under `prefix` (an ingress path), and
    /// connects to `connect` instead of where its host resolves.
    pub fn at(mut self, prefix: &str, connect: Option<(String, u16)>) -> Sender {
        self.prefix = prefix.trim_end_matches('/').to_string();
        let c = std::mem::replace(&mut self.client, Client::new("", 0));
        self.client = c.with_connect(connect);
        self
    }

    /// The engine's cluster holds the global ids whose bits are set in `mask`.
    pub fn in_cluster(mut self, mask: u64) -> Sender {
        self.cluster_mask = mask;
        self
    }

    /// Reports state changes and acknowledgements to `r`.
    pub fn reporting_to(mut self, r: Reporter) -> Sender {
        self.reporter = Some(r);
        self
    }

    fn sync_status(&self) {
        let was = self.status.get().state;
        self.status.update(|s| {
            let h = self.link.health();
            s.state = h.state();
            s.base = h.base;
            s.last_error.clone_from(&h.last_error);
        });
        if self.status.get().state != was {
            // Lost to a full inbox, it is seen at the core's next tick.
            self.report(Report::Changed(self.id));
        }
    }

    fn report(&self, r: Report) -> bool {
        self.reporter.as_ref().is_none_or(|f| f(r))
    }

    /// Takes new orders, if any, and reports marks not reported yet.
    fn read_told(&mut self) {
        if let Some(o) = self.told.take() {
            self.orders = o;
        }
        if !self.unreported.is_empty() {
            let marks = self.unreported.iter().map(|(&s, &n)| (s, n)).collect();
            if self.report(Report::Acked {
                engine: self.id,
                marks,
            }) {
                self.unreported.clear();
            }
        }
    }

    /// Reports a failed request (`failed` is `Happened::ProbeFailed`,
    /// `SendFailed` or `HeartbeatFailed`) to the link, logs it, and returns
    /// the link's wait.
    fn fail(&mut self, failed: fn(String) -> Happened, why: String) -> Option<Duration> {
        let before = self.link.state();
        let next = self.link.step(failed(why.clone()), crate::clock::now());
        if next.became_failed {
            log::error!(
                "engine '{}' ({}): failed after {} failures in a row; last: {why}",
                self.name,
                self.client.authority(),
                self.link.health().misses()
            );
        } else if before != State::Failed {
            log::warn!(
                "engine '{}' ({}): {why}",
                self.name,
                self.client.authority()
            );
        } else {
            log::debug!("engine '{}': still failed: {why}", self.name);
        }
        self.sync_status();
        next.wait
    }

    /// Waits what the link asked for, if anything (or until stopped).
    async fn wait(&self, d: Option<Duration>) {
        if let Some(d) = d {
            self.sleep(d).await;
        }
    }

    async fn sleep(&self, d: Duration) {
        self.stop.or(Timer::after(d)).await;
    }

    async fn get(&mut self, path: &str, deadline: Duration) -> Result<Response, HttpError> {
        self.client.request("GET", path, None, &[], deadline).await
    }

    /// `PUT` an XML body, counting its bytes.
    async fn put_xml(
        &mut self,
        path: &str,
        body: &[u8],
        deadline: Duration,
    ) -> Result<Response, HttpError> {
        let r = self
            .client
            .request("PUT", path, Some("application/xml"), body, deadline)
            .await;
        self.status.update(|s| s.request_bytes += body.len() as u64);
        r
    }

    /// Runs until stopped.
    pub async fn run<S: Storage>(mut self, shared: Rc<Shared<S>>) {
        let mut pos = shared.journal.borrow().reader(self.id);
        let mut payload = Vec::new();
        let mut block: Option<Block> = None;
        let mut seen_synced = 0;
        log::info!(
            "engine '{}' ({}): connecting",
            self.name,
            self.client.authority()
        );
        while !self.stop.is_stopped() {
            self.read_told();
            if self.link.action() != Action::Publish || self.orders.mode == Mode::Standby {
                self.drop_window(&mut pos);
            }
            if self.orders.mode == Mode::Standby {
                self.stand_by(&shared, &mut pos, &mut payload).await;
                continue;
            }
            self.sync_status();
            match self.link.action() {
                Action::Probe => {
                    let failed = self.link.state() == State::Failed;
                    match self.probe().await {
                        Ok(base) => {
                            // Quiet while a deploy keeps failing for the same cause.
                            let quiet = self.last_cause.is_some();
                            if failed && !quiet {
                                log::info!("engine '{}': answers again; redeploying", self.name);
                            }
                            self.link.step(Happened::Probed(base), crate::clock::now());
                            if !quiet {
                                log::info!("engine '{}': REST API at {base}", self.name);
                            }
                        }
                        Err(why) => {
                            let d = self.fail(Happened::ProbeFailed, why);
                            self.wait(d).await;
                        }
                    }
                }
                Action::Deploy => match self.deploy(&shared).await {
                    Ok(loaded) => {
                        if loaded {
                            let below = shared.journal.borrow().cursor(self.id).unwrap_or(0);
                            self.replay = Some(Replay {
                                offset: 0,
                                below,
                                sent: 0,
                            });
                        }
                        self.link.step(Happened::Deployed, crate::clock::now());
                        log::info!("engine '{}': ready", self.name);
                    }
                    Err(why) => {
                        // Logged once per cause (not by `fail`, which logs each).
                        self.deploy_trouble(why.clone());
                        let next = self
                            .link
                            .step(Happened::DeployFailed(why), crate::clock::now());
                        self.sync_status();
                        self.wait(next.wait).await;
                    }
                },
                Action::Publish if self.replay.is_some() => {
                    self.replay_step(&shared).await;
                }
                Action::Publish if block.is_none() && self.pipelining(&shared) => {
                    let seen = shared.journal.borrow().synced_seq();
                    if !self.pipeline_step(&shared, &mut pos, &mut payload).await {
                        self.idle(&shared, seen).await;
                    }
                }
                Action::Publish => {
                    if block.is_none() {
                        seen_synced = shared.journal.borrow().synced_seq();
                        match self.next_block(&shared, &mut pos, &mut payload) {
                            Ok(b) => block = b,
                            Err(why) => {
                                log::error!("engine '{}': {why}", self.name);
                                self.sleep(self.settings.ticktime).await;
                                continue;
                            }
                        }
                    }
                    match &block {
                        Some(b) => {
                            self.refused_last = false;
                            if self.publish(&shared, b).await {
                                let upto = b.end_seq;
                                if let Some(b) = block.take() {
                                    self.spare_body.set(b.body);
                                }
                                // A refused block went to the dead letters, a
                                // local write: the next one need not wait.
                                if !self.refused_last {
                                    self.undurable.push_back(upto);
                                    self.wait_window(&shared).await;
                                }
                            } else if self
                                .sizing
                                .resend_smaller(b.records, b.end_seq, b.body.len())
                            {
                                // Refused, or failed and now too large: read its
                                // records again into smaller requests.
                                pos = b.start.clone();
                                block = None;
                            }
                        }
                        None => self.idle(&shared, seen_synced).await,
                    }
                }
            }
        }
        self.sync_status();
        log::info!("engine '{}': sender stopped", self.name);
    }

    /// A request that failed (5xx, time-out, connection): counted, and
    /// tried again after the backoff. Always false.
    async fn retry_later(&mut self, why: String) -> bool {
        self.status.update(|s| s.failed_requests += 1);
        let d = self.fail(Happened::SendFailed, why);
        self.wait(d).await;
        false
    }

    /// The engine answered (a refusal too).
    fn answered(&mut self) {
        self.link.step(Happened::Answered, crate::clock::now());
    }

    /// The engine took what was sent.
    fn took(&mut self) {
        self.link.step(Happened::Took, crate::clock::now());
    }

    /// Caught up: wait for new blocks; heartbeat when a tick passes without
    /// any answer from the engine.
    async fn idle<S: Storage>(&mut self, shared: &Shared<S>, seen_synced: u64) {
        let due = self.link.poll_at();
        let listener = shared.synced.listen();
        // A sync may have landed since the journal was read: look again.
        if shared.journal.borrow().synced_seq() > seen_synced {
            return;
        }
        if crate::clock::now() < due {
            // Stopped, or a sync landed: back to the loop; the tick passed:
            // heartbeat.
            let woke = self.stop.or(crate::clock::wait_until(listener, due)).await;
            if woke != Some(None) {
                return;
            }
        }
        // Idle for a tick: the spare body goes back to the allocator.
        drop(self.spare_body.take());
        // The heartbeat asks for the projects, not only whether the server
        // answers: an engine that restarted gets its projects back within
        // a tick even when no event flows.
        match self
            .missing_project(self.settings.heartbeat_deadline())
            .await
        {
            Ok(None) => self.answered(),
            Ok(Some(p)) => {
                self.answered();
                self.project_lost(format!("no longer lists project '{p}'"))
                    .await;
            }
            Err(why) => {
                self.fail(Happened::HeartbeatFailed, format!("heartbeat: {why}"));
            }
        }
        // The next heartbeat is a tick after this one.
        self.link.step(Happened::HeartbeatSent, crate::clock::now());
    }
}
