//! How large a sender's publish request grows (pure; the sender assembles
//! requests from journal records and asks this).
//!
//! - A request holds consecutive records for one target window, never more
//!   than one transactional record, and grows by whole records while its
//!   body is under [`Sizing::max`] (at most `REQUEST_BODY_MAX`).
//! - A request of several records that the engine refuses is sent again one
//!   record per request, up to its end, so that only the refused record goes
//!   to the dead letters.
//! - A request of several records that fails (time-out, 5xx) makes the next
//!   ones half its size: a slow engine that times out on large requests gets
//!   smaller ones instead of the same one again; each success doubles the
//!   size back up to the maximum.

use crate::limits::REQUEST_BODY_MAX;

/// The request being assembled, as far as joining it is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Open {
    pub target: usize,
    pub transactional: bool,
    pub body_len: usize,
    pub first_seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    max: usize,
    /// Records before this sequence go one per request (after a refusal).
    split_until: u64,
}

impl Default for Sizing {
    fn default() -> Sizing {
        Sizing {
            max: REQUEST_BODY_MAX,
            split_until: 0,
        }
    }
}

impl Sizing {
    /// The body size a request grows to now.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Whether a record for window `target` may join request `open`.
    pub fn joins(&self, open: &Open, target: usize) -> bool {
        open.target == target
            && !open.transactional
            && open.body_len < self.max
            && open.first_seq >= self.split_until
    }

    /// The engine took a request.
    pub fn taken(&mut self) {
        self.max = (self.max * 2).min(REQUEST_BODY_MAX);
    }

    /// The engine refused a request of several records ending at `end_seq`.
    pub fn refused(&mut self, end_seq: u64) {
        self.split_until = end_seq;
    }

    /// A request of `records` records and `body_len` bytes failed.
    pub fn failed(&mut self, records: u32, body_len: usize) {
        if records > 1 {
            self.max = (body_len / 2).max(1);
        }
    }

    /// After a request that was not done with: whether its records are read
    /// again into smaller requests (refused, or now too large), rather than
    /// the same request sent again.
    pub fn resend_smaller(&self, records: u32, end_seq: u64, body_len: usize) -> bool {
        records > 1 && (end_seq <= self.split_until || body_len > self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(first_seq: u64, body_len: usize) -> Open {
        Open {
            target: 1,
            transactional: false,
            body_len,
            first_seq,
        }
    }

    #[test]
    fn a_request_grows_by_records_of_its_window_up_to_the_maximum() {
        let s = Sizing::default();
        assert!(s.joins(&open(0, 100), 1));
        assert!(!s.joins(&open(0, 100), 2), "another window");
        assert!(!s.joins(&open(0, REQUEST_BODY_MAX), 1), "full");
        let t = Open {
            transactional: true,
            ..open(0, 100)
        };
        assert!(
            !s.joins(&t, 1),
            "a transactional record is a request of its own"
        );
    }

    #[test]
    fn a_refused_request_is_sent_again_one_record_at_a_time_to_its_end() {
        let mut s = Sizing::default();
        // Records 100..=140 in one request of 5 records: refused.
        s.refused(141);
        assert!(s.resend_smaller(5, 141, 4096));
        // Read again: records up to there go alone...
        assert!(!s.joins(&open(100, 800), 1));
        assert!(!s.joins(&open(132, 800), 1));
        // ...and after it, requests grow again.
        assert!(s.joins(&open(141, 800), 1));
        assert!(
            !s.resend_smaller(1, 120, 800),
            "a single record is sent as it is"
        );
    }

    #[test]
    fn a_failed_large_request_halves_the_next_ones_and_successes_double_back() {
        let mut s = Sizing::default();
        s.failed(8, 400_000);
        assert_eq!(s.max(), 200_000);
        assert!(
            s.resend_smaller(8, 10, 400_000),
            "too large now: read again"
        );
        assert!(!s.joins(&open(0, 200_000), 1));
        s.failed(1, 200_000);
        assert_eq!(s.max(), 200_000, "one record cannot be made smaller");
        for _ in 0..4 {
            s.taken();
        }
        assert_eq!(s.max(), REQUEST_BODY_MAX);
    }
}
