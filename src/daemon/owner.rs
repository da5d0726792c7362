//! The owner: one task holds the manager's control state ([`Control`]:
//! the failover node and progress, the engine slots and their senders, an
//! engine being added, a reload under way) and changes it, one message at a
//! time, as the rest of the manager asks through one bounded inbox of
//! [`ToCore`] (STYLE 4). Nothing else borrows that state.
//!
//! - The admin API's calls arrive as `Admin`; most are answered at once. A
//!   `PUT` of an engine starts its sender and is answered when the engine
//!   is ready or the deploy time passed (the owner looks at every wake).
//! - SIGHUP arrives as `Reload`; a reload is a sequence of steps the owner
//!   walks between messages (an engine to get ready, sources to stop).
//! - Senders report as `Engine` (a state change, events acknowledged) and
//!   are told their mode (`Orders`: publish, or trim up to what the leader
//!   delivered) in a one-slot mailbox each.
//! - Sources report as `Source` when they start or end; the owner opens the
//!   start of those whose orchestration group may start.
//! - Failover messages from other managers come in as admin calls; the
//!   node's ticks are the owner's wakes.
//!
//! Memberships stay in `Core`, written only here and read by the sources to
//! route a block (between awaits). A lost wake-up (a sender's report
//! refused by a full inbox) costs at most a tick: the owner wakes every
//! tick and looks at everything again.

use super::*;
use crate::admin::snapshot::Snapshot;
use crate::admin::Call;
use crate::engine::sender::{Mode, Orders, Report};
use crate::failover::{Acked, Node, Role};

/// Everything that asks the core for something or tells it what happened.
pub enum ToCore {
    /// An admin API request (its reply channel inside).
    Admin(Call),
    /// SIGHUP: read the config again (one waiting absorbs the next).
    Reload,
    /// From a sender.
    Engine(Report),
    /// A source started, finished, or its task ended.
    Source,
    /// A plain snapshot of the state (the demo's progress display).
    Look(async_channel::Sender<Snapshot>),
    /// Shut down: stop sources, drain for the grace period, return.
    Stop,
}

/// The control state, owned by the owner task.
pub struct Control {
    pub(super) node: Node,
    saved: crate::failover::Saved,
    /// What this manager's engines acknowledged, by (engine, raw-source):
    /// the source's event count below which every event routed to the
    /// engine is acknowledged (the leader reports it).
    pub(super) acked: Acked,
    /// The same as reported by the leader (a standby trims by it; a new
    /// leader skips what the old one had delivered).
    pub(super) peer_acked: Acked,
    /// The engine slots and their senders.
    pub(super) engines: Vec<EngineHandle>,
    /// The engine being added (one at a time).
    pub(super) adding: Option<super::engines::Adding>,
    pub(super) reload: Option<super::reload::ReloadRun>,
    /// SIGHUP came during a reload: one more follows.
    pub(super) reload_again: bool,
    /// Reloads applied and refused.
    pub(super) reloads: (u64, u64),
    /// What the last reload did or why it was refused.
    pub(super) last_reload: Option<String>,
    progress: ProgressLine,
}

impl Control {
    pub(super) fn new(node: Node) -> Control {
        Control {
            saved: node.saved(),
            node,
            acked: Acked::new(),
            peer_acked: Acked::new(),
            engines: Vec::new(),
            adding: None,
            reload: None,
            reload_again: false,
            reloads: (0, 0),
            last_reload: None,
            progress: ProgressLine::default(),
        }
    }

    pub(super) fn is_standby(&self) -> bool {
        self.node.role() == Role::Standby
    }

    /// What sender `id` is to do now.
    pub(super) fn orders(&self, id: EngineId) -> Orders {
        Orders {
            mode: if self.is_standby() {
                Mode::Standby
            } else {
                Mode::Publish
            },
            delivered: self
                .peer_acked
                .range((id, 0)..=(id, u16::MAX))
                .map(|(&(_, s), &n)| (s, n))
                .collect(),
        }
    }

    /// Tells every sender its orders (the role or the leader's report
    /// changed).
    pub(super) fn tell_senders(&self) {
        for h in &self.engines {
            h.told.put(self.orders(h.id));
        }
    }
}

/// When the progress line and the orchestration waits are logged next.
#[derive(Default)]
struct ProgressLine {
    /// (accepted, acknowledged) at the last line.
    last: (u64, u64),
    next: Option<Instant>,
    waits_next: Option<Instant>,
}

impl Core {
    /// Where the rest of the manager sends its messages.
    pub fn inbox(&self) -> async_channel::Sender<ToCore> {
        self.inbox.0.clone()
    }

    /// Sends `m` to the owner, waiting for room.
    pub(super) async fn tell(&self, m: ToCore) {
        let _ = self.inbox.0.send(m).await;
    }

    /// A snapshot of the state, from the owner (None once it stopped).
    pub async fn look(&self) -> Option<Snapshot> {
        let (tx, rx) = async_channel::bounded(1);
        self.tell(ToCore::Look(tx)).await;
        rx.recv().await.ok()
    }

    /// The owner task: handles messages until told to stop (or, with
    /// `exit_when_drained`, until everything is delivered), then shuts
    /// down; returns the state as it ended.
    pub(super) async fn own(self: &Rc<Self>, ex: &LocalExecutor<'_>, mut ctl: Control) -> Snapshot {
        let inbox = self.inbox.1.clone();
        let tick = Duration::from_millis(self.options.ticktime_ms.max(1));
        self.start_engines(ex, &mut ctl);
        self.start_sources(ex);
        loop {
            self.settle(ex, &mut ctl);
            if self.options.exit_when_drained && self.drained(&ctl) {
                break;
            }
            let now = crate::clock::now();
            let mut wake =
                (self.started + Duration::from_millis(ctl.node.next_wake())).min(now + tick);
            if let Some(a) = &ctl.adding {
                wake = wake.min(a.deadline);
            }
            for t in [ctl.progress.next, ctl.progress.waits_next]
                .into_iter()
                .flatten()
            {
                wake = wake.min(t);
            }
            // With `exit_when_drained`, syncs (acknowledgements made
            // durable) are worth a look too.
            let synced = self.shared.synced.listen();
            let msg = crate::clock::wait_until(
                future::or(async { inbox.recv().await.ok() }, async {
                    if self.options.exit_when_drained {
                        synced.await;
                    } else {
                        future::pending::<()>().await;
                    }
                    None
                }),
                wake,
            )
            .await
            .flatten();
            match msg {
                None => {}
                Some(ToCore::Stop) => break,
                Some(m) => self.handle(ex, &mut ctl, m),
            }
        }
        self.shutdown(&mut ctl).await;
        self.snapshot(&ctl, false)
    }

    /// One message.
    fn handle(self: &Rc<Self>, ex: &LocalExecutor<'_>, ctl: &mut Control, m: ToCore) {
        match m {
            ToCore::Admin(call) => self.answer_call(ex, ctl, call),
            ToCore::Reload => {
                if ctl.reload.is_some() {
                    ctl.reload_again = true;
                } else {
                    self.begin_reload(ex, ctl);
                }
            }
            ToCore::Engine(Report::Changed(_)) => {}
            ToCore::Engine(Report::Acked { engine, marks }) => {
                for (source, through) in marks {
                    let v = ctl.acked.entry((engine, source)).or_insert(0);
                    *v = (*v).max(through);
                }
            }
            ToCore::Source => {}
            ToCore::Look(tx) => {
                let _ = tx.try_send(self.snapshot(ctl, false));
            }
            ToCore::Stop => {}
        }
    }

    /// After every message and wake: supervision, the engine being added,
    /// orchestration, the reload under way, the failover node, the
    /// progress line.
    fn settle(self: &Rc<Self>, ex: &LocalExecutor<'_>, ctl: &mut Control) {
        self.fail_over(ex, ctl);
        self.check_adding(ex, ctl);
        self.orchestrate();
        self.advance_reload(ex, ctl);
        self.failover_step(ex, ctl, None);
        self.progress(ctl);
    }

    /// Opens the start of every waiting source whose orchestration allows
    /// it (`source::orchestration`).
    fn orchestrate(&self) {
        if self.stop_sources.is_stopped() {
            return;
        }
        for (i, s) in self.sources().iter().enumerate() {
            if s.state.get() == SourceState::Waiting && !s.go.is_open() && self.may_start(i) {
                s.go.open();
            }
        }
    }

    /// Logs a progress line every `-progress-s` while events move (silent
    /// when idle), and what each orchestration group waits for, each minute.
    fn progress(&self, ctl: &mut Control) {
        let now = crate::clock::now();
        let every = self.options.progress;
        let p = &mut ctl.progress;
        let minute = Duration::from_secs(60);
        let waits_next = *p.waits_next.get_or_insert(now + minute);
        if now >= waits_next {
            p.waits_next = Some(now + minute);
            for w in self.orchestration_waits() {
                log::info!("orchestration: {w}");
            }
        }
        if every.is_zero() {
            return;
        }
        let next = *p.next.get_or_insert(now + every);
        if now < next {
            return;
        }
        p.next = Some(now + every);
        let accepted: u64 = self.sources().iter().map(|s| s.accepted.get()).sum();
        let (acked, backlog) = {
            let j = self.shared.journal.borrow();
            ctl.engines.iter().fold((0u64, 0u64), |(a, b), e| {
                (a + e.status.get().acked_events, b + j.backlog(e.id))
            })
        };
        let last = ctl.progress.last;
        let (din, dout) = (accepted - last.0.min(accepted), acked - last.1.min(acked));
        if din > 0 || dout > 0 {
            let secs = every.as_secs_f64();
            log::info!(
                "progress: {:.0} events/s in, {:.0} events/s acknowledged, backlog {backlog} events, journal {} bytes",
                din as f64 / secs,
                dout as f64 / secs,
                self.shared.journal.borrow().bytes()
            );
        }
        ctl.progress.last = (accepted, acked);
    }

    /// The failover node: a message from another manager (`msg`), its
    /// ticks, this manager's progress when it leads; what it must keep is
    /// saved in the state dir.
    pub(super) fn failover_step(
        self: &Rc<Self>,
        ex: &LocalExecutor<'_>,
        ctl: &mut Control,
        msg: Option<crate::failover::Msg>,
    ) {
        let now = self.now_ms();
        let mut outs = Vec::new();
        if let Some(m) = msg {
            outs.extend(ctl.node.step(now, m));
        }
        if ctl.node.role() == Role::Leader {
            for (&(e, s), &n) in ctl.acked.iter() {
                ctl.node.progress(e, s, n);
            }
        }
        if now >= ctl.node.next_wake() {
            outs.extend(ctl.node.tick(now));
        }
        for o in outs {
            self.failover_out(ex, ctl, o);
        }
        let now_saved = ctl.node.saved();
        if now_saved != ctl.saved {
            self.save_node(&now_saved);
            ctl.saved = now_saved;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::sender::Told;
    use crate::failover::Timing;

    const TIMING: Timing = Timing {
        tick_ms: 100,
        retries: 2,
    };

    #[test]
    fn each_sender_is_told_its_mode_and_only_its_engines_marks() {
        let mut ctl = Control::new(Node::standby("127.0.0.1:2", "127.0.0.1:1", 7, TIMING, 0));
        ctl.peer_acked.insert((1, 0), 40);
        ctl.peer_acked.insert((1, 3), 7);
        ctl.peer_acked.insert((2, 0), 99);
        let o = ctl.orders(1);
        assert_eq!(o.mode, Mode::Standby);
        assert_eq!(
            o.delivered.into_iter().collect::<Vec<_>>(),
            [(0, 40), (3, 7)]
        );
        assert!(
            ctl.orders(5).delivered.is_empty(),
            "nothing reported for it"
        );
        let ctl = Control::new(Node::leader("127.0.0.1:1", 7, TIMING, 0));
        assert_eq!(ctl.orders(1).mode, Mode::Publish);
    }

    #[test]
    fn a_mailbox_keeps_the_latest_orders_until_taken() {
        let told = Told::default();
        assert_eq!(told.take(), None::<Orders>);
        let standby = Orders {
            mode: Mode::Standby,
            ..Orders::default()
        };
        told.put(standby.clone());
        told.put(Orders::default());
        assert_eq!(told.take(), Some(Orders::default()), "the later one");
        assert_eq!(told.take(), None, "taken once");
        let l = told.listen();
        told.put(standby);
        assert!(
            futures_lite::future::block_on(crate::clock::wait_for(l, Duration::from_secs(5)))
                .is_some()
        );
    }
}
