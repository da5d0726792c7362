//! A sender's link to its engine as a pure machine (STYLE 1-3): the sender
//! (the shell) does the IO — probe, deploy, publish, heartbeat — and
//! reports what happened with [`Link::step`] and the time it happened; the
//! link answers how long to wait before the next step and whether the
//! engine just became Failed. [`Link::action`] says what the shell does
//! next and [`Link::poll_at`] when a heartbeat is due. Nothing here reads a
//! clock or sleeps, and the backoff's jitter comes from a seed, so every
//! path is a unit test.
//!
//! The states are [`Health`]'s (see the picture in the module above); the
//! link adds the timing: the retry backoff, the heartbeat a tick after the
//! last answer, and "a deploy that does not take backs off" (after a load,
//! the backoff keeps growing until the engine took an event).

use super::{Backoff, Health, State};
use std::time::{Duration, Instant};

/// What happened on the link, as the shell saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Happened {
    /// A probe found the engine's REST base.
    Probed(&'static str),
    /// A probe got no answer or an error.
    ProbeFailed(String),
    /// Every project is on the engine (loaded, kept or adopted).
    Deployed,
    /// A deploy failed.
    DeployFailed(String),
    /// A publish or heartbeat answered (a refusal too: the engine is alive).
    Answered,
    /// The engine took a block (acknowledged it).
    Took,
    /// A publish failed (5xx, time-out, connection) and will be retried.
    SendFailed(String),
    /// A heartbeat failed.
    HeartbeatFailed(String),
    /// A heartbeat went out (whatever came back): the next is a tick later.
    HeartbeatSent,
    /// The engine no longer has its projects.
    Lost,
    /// Something on our side failed (a dead letter not written): try again
    /// after the backoff.
    Stalled,
}

/// What the link asks of the shell after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Next {
    /// Wait this long before the next request (None: go on).
    pub wait: Option<Duration>,
    /// This step made the engine Failed (log it once).
    pub became_failed: bool,
}

/// What the shell does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Find the REST base (`GET server` under each base).
    Probe,
    /// Get every project onto the engine.
    Deploy,
    /// Publish (or re-send reference data); heartbeat when idle past
    /// [`Link::poll_at`].
    Publish,
}

#[derive(Debug, Clone)]
pub struct Link {
    health: Health,
    retries: u32,
    backoff: Backoff,
    ticktime: Duration,
    /// When the engine last answered (or a heartbeat last went out).
    last_answer: Instant,
    /// Projects were loaded and the engine took no event since: answers do
    /// not reset the backoff, and losing the project again waits it.
    fresh_deploy: bool,
}

impl Link {
    /// `retries` failures in a row make the engine Failed; heartbeats every
    /// `ticktime`; retries wait `backoff_min` doubling to `backoff_max`,
    /// jittered from `seed`.
    pub fn new(
        retries: u32,
        ticktime: Duration,
        backoff: (Duration, Duration),
        seed: u64,
        now: Instant,
    ) -> Link {
        Link {
            health: Health::new(retries),
            retries,
            backoff: Backoff::seeded(backoff.0, backoff.1, seed),
            ticktime,
            last_answer: now,
            fresh_deploy: false,
        }
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    pub fn state(&self) -> State {
        self.health.state()
    }

    /// Projects were loaded and the engine took no event since.
    pub fn fresh_deploy(&self) -> bool {
        self.fresh_deploy
    }

    pub fn action(&self) -> Action {
        match self.state() {
            State::Connecting | State::Failed => Action::Probe,
            State::Deploying => Action::Deploy,
            State::Ready | State::Failing => Action::Publish,
        }
    }

    /// When a heartbeat is due: a tick after the last answer.
    pub fn poll_at(&self) -> Instant {
        self.last_answer + self.ticktime
    }

    /// Standing by: the engine is probed and deployed afresh when this
    /// manager leads again.
    pub fn stand_by(&mut self) {
        self.health = Health::new(self.retries);
    }

    /// Applies what happened at `now`.
    pub fn step(&mut self, happened: Happened, now: Instant) -> Next {
        let mut next = Next {
            wait: None,
            became_failed: false,
        };
        match happened {
            Happened::Probed(base) => {
                self.health.probed(base);
                self.last_answer = now;
            }
            Happened::ProbeFailed(why) => {
                // A failed engine is probed once a tick; one that never
                // answered yet, after the backoff.
                let failed = self.state() == State::Failed;
                next.became_failed = self.health.failed(why);
                next.wait = Some(if failed {
                    self.ticktime
                } else {
                    self.backoff.next_delay()
                });
            }
            Happened::Deployed => {
                self.health.deployed();
                self.fresh_deploy = true;
                self.last_answer = now;
            }
            Happened::DeployFailed(why) | Happened::SendFailed(why) => {
                next.became_failed = self.health.failed(why);
                next.wait = Some(self.backoff.next_delay());
            }
            Happened::Took => {
                self.fresh_deploy = false;
                self.answered(now);
            }
            Happened::Answered => self.answered(now),
            Happened::HeartbeatFailed(why) => {
                next.became_failed = self.health.failed(why);
                self.last_answer = now;
            }
            Happened::HeartbeatSent => self.last_answer = now,
            Happened::Lost => {
                self.health.lost();
                if self.fresh_deploy {
                    next.wait = Some(self.backoff.next_delay());
                }
            }
            Happened::Stalled => next.wait = Some(self.backoff.next_delay()),
        }
        next
    }

    /// The engine answered: the backoff starts over, except while a fresh
    /// deploy has not taken an event yet (a deploy that does not take
    /// backs off).
    fn answered(&mut self, now: Instant) {
        self.health.answered();
        if !self.fresh_deploy {
            self.backoff.reset();
        }
        self.last_answer = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(200);
    const MIN: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(30);

    fn link(now: Instant) -> Link {
        Link::new(3, TICK, (MIN, MAX), 7, now)
    }

    fn wait(n: Next) -> Duration {
        n.wait.expect("a wait")
    }

    #[test]
    fn probe_failures_back_off_then_fail_then_probe_once_a_tick() {
        let t = Instant::now();
        let mut l = link(t);
        assert_eq!(l.action(), Action::Probe);
        let a = wait(l.step(Happened::ProbeFailed("refused".into()), t));
        let b = wait(l.step(Happened::ProbeFailed("refused".into()), t));
        assert!(a <= MIN && b <= 2 * MIN && b >= MIN, "{a:?} {b:?}");
        let n = l.step(Happened::ProbeFailed("refused".into()), t);
        assert!(n.became_failed && l.state() == State::Failed);
        let n = l.step(Happened::ProbeFailed("refused".into()), t);
        assert_eq!((n.wait, n.became_failed), (Some(TICK), false));
        assert_eq!(l.health().last_error.as_deref(), Some("refused"));
    }

    #[test]
    fn a_probe_then_a_deploy_make_it_ready() {
        let t = Instant::now();
        let mut l = link(t);
        assert_eq!(l.step(Happened::Probed("/SASESP"), t).wait, None);
        assert_eq!(
            (l.action(), l.health().base),
            (Action::Deploy, Some("/SASESP"))
        );
        l.step(Happened::Deployed, t);
        assert_eq!((l.state(), l.action()), (State::Ready, Action::Publish));
    }

    #[test]
    fn a_deploy_that_does_not_take_backs_off_until_an_event_is_taken() {
        let t = Instant::now();
        let mut l = link(t);
        l.step(Happened::Probed("/SASESP"), t);
        let mut last = Duration::ZERO;
        for _ in 0..5 {
            l.step(Happened::Deployed, t);
            // Answers do not reset the backoff while nothing was taken...
            l.step(Happened::Answered, t);
            let w = wait(l.step(Happened::Lost, t));
            assert_eq!(l.state(), State::Deploying);
            assert!(
                w >= last / 2,
                "the backoff keeps growing: {w:?} after {last:?}"
            );
            last = w;
        }
        assert!(last >= 4 * MIN, "{last:?}");
        // ...and once the engine took an event, a lost project redeploys at once.
        l.step(Happened::Deployed, t);
        l.step(Happened::Took, t);
        assert_eq!(l.step(Happened::Lost, t).wait, None);
        // The backoff started over.
        assert!(wait(l.step(Happened::Stalled, t)) <= MIN);
    }

    #[test]
    fn publish_failures_make_it_failing_then_failed_and_an_answer_heals_it() {
        let t = Instant::now();
        let mut l = link(t);
        l.step(Happened::Probed("/SASESP"), t);
        l.step(Happened::Deployed, t);
        l.step(Happened::Took, t);
        assert!(l.step(Happened::SendFailed("503".into()), t).wait.is_some());
        assert_eq!(l.state(), State::Failing);
        l.step(Happened::Answered, t);
        assert_eq!((l.state(), l.health().misses()), (State::Ready, 0));
        l.step(Happened::SendFailed("503".into()), t);
        l.step(Happened::HeartbeatFailed("time-out".into()), t);
        let n = l.step(Happened::SendFailed("503".into()), t);
        assert!(n.became_failed);
        assert_eq!(l.action(), Action::Probe);
    }

    #[test]
    fn a_heartbeat_is_due_a_tick_after_the_last_answer() {
        let t = Instant::now();
        let mut l = link(t);
        assert_eq!(l.poll_at(), t + TICK);
        let later = t + Duration::from_secs(5);
        l.step(Happened::Answered, later);
        assert_eq!(l.poll_at(), later + TICK);
        l.step(Happened::HeartbeatSent, later + TICK);
        assert_eq!(l.poll_at(), later + 2 * TICK);
        // A failed request is no answer: the heartbeat stays due.
        l.step(Happened::SendFailed("reset".into()), later + 3 * TICK);
        assert_eq!(l.poll_at(), later + 2 * TICK);
    }

    #[test]
    fn the_same_seed_gives_the_same_waits() {
        let t = Instant::now();
        let (mut a, mut b) = (link(t), link(t));
        let mut c = Link::new(3, TICK, (MIN, MAX), 8, t);
        let (mut wa, mut wb, mut wc) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..6 {
            wa.push(a.step(Happened::Stalled, t).wait);
            wb.push(b.step(Happened::Stalled, t).wait);
            wc.push(c.step(Happened::Stalled, t).wait);
        }
        assert_eq!(wa, wb);
        assert_ne!(wa, wc);
    }
}
