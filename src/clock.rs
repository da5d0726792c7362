//! The manager's clocks and its one way to wait with a deadline.
//!
//! Only shells (`daemon/`, the senders, `main.rs`) read the clock (STYLE 2);
//! what they read is handed to pure code as an argument.

use async_io::Timer;
use futures_lite::future;
use std::future::Future;
use std::time::{Duration, Instant};

/// The monotonic clock, for deadlines and timers. The daemon's tasks, the
/// senders and the sources read it here, so `grep clock::now` lists every
/// place below `main` that does (the CLI's `top` and `demo` time themselves).
pub fn now() -> Instant {
    Instant::now()
}

/// Wall-clock milliseconds since 1970 (records' times, log lines, backlog
/// ages); 0 on a clock set before 1970.
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Awaits `f` until `deadline`: its output, or `None` when the deadline came
/// first (and `f` is dropped).
pub async fn wait_until<F: Future>(f: F, deadline: Instant) -> Option<F::Output> {
    future::or(async { Some(f.await) }, async {
        Timer::at(deadline).await;
        None
    })
    .await
}

/// [`wait_until`] `now + d`.
pub async fn wait_for<F: Future>(f: F, d: Duration) -> Option<F::Output> {
    wait_until(f, Instant::now() + d).await
}

pub use edgecm_wire::source::dates::civil_from_days;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_future_wins_when_it_is_ready() {
        let r = async_io::block_on(wait_for(async { 7 }, Duration::from_secs(60)));
        assert_eq!(r, Some(7));
    }

    #[test]
    fn the_deadline_wins_over_a_future_that_never_ends() {
        let r = async_io::block_on(wait_until(future::pending::<()>(), Instant::now()));
        assert_eq!(r, None);
    }
}
