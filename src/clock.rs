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

/// The date (year, month, day) of a day since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`): log lines and dates written for engines.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

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
