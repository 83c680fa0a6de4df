//! The one retry schedule of watchpost: wait `first`, then twice as long each time up to
//! `max`, and start again from `first` after a success (or, for a command that keeps
//! exiting, after a run long enough to count as healthy). SSH hosts, the container
//! engine, log commands and streams all back off with it.

use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
    /// A run at least this long resets the schedule ([`Backoff::after_run`]).
    healthy_after: Option<Duration>,
}

impl Backoff {
    pub const fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            next: first,
            healthy_after: None,
        }
    }

    /// A run that lasted `run` or longer counts as a success for [`Backoff::after_run`].
    pub const fn healthy_after(mut self, run: Duration) -> Backoff {
        self.healthy_after = Some(run);
        self
    }

    /// The wait before the next attempt; the one after it is twice as long (up to `max`).
    pub(crate) fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    /// The wait before restarting something that ran for `ran`: from the start of the
    /// schedule again when that run was healthy.
    pub(crate) fn after_run(&mut self, ran: Duration) -> Duration {
        if self.healthy_after.is_some_and(|healthy| ran >= healthy) {
            self.reset();
        }
        self.next_wait()
    }

    /// After a success: the next failure waits `first` again.
    pub fn reset(&mut self) {
        self.next = self.first;
    }

    /// Straight to the longest wait (a failure that retrying soon will not mend).
    pub(crate) fn give_up_soon(&mut self) {
        self.next = self.max;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn doubles_up_to_the_limit_and_resets() {
        let mut b = Backoff::new(S(1), S(30));
        let waits: Vec<u64> = (0..7).map(|_| b.next_wait().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        b.reset();
        assert_eq!(b.next_wait(), S(1));
        b.give_up_soon();
        assert_eq!(b.next_wait(), S(30));
    }

    #[test]
    fn a_healthy_run_starts_the_schedule_again() {
        let mut b = Backoff::new(S(1), S(30)).healthy_after(S(30));
        assert_eq!(b.after_run(Duration::ZERO), S(1));
        assert_eq!(b.after_run(Duration::ZERO), S(2));
        for _ in 0..10 {
            b.after_run(Duration::ZERO);
        }
        assert_eq!(b.after_run(Duration::ZERO), S(30));
        assert_eq!(b.after_run(S(60)), S(1));
        // Without healthy_after, a long run changes nothing.
        let mut plain = Backoff::new(S(1), S(8));
        plain.next_wait();
        assert_eq!(plain.after_run(S(3600)), S(2));
    }
}
