//! The one place where the monotonic clock meets the core's [`Instant`].

use core::time::Duration as StdDuration;
use std::time::Instant as StdInstant;

use lapswim_core::Instant;

/// Maps the process's monotonic clock onto the core's millisecond
/// [`Instant`], counted from the node's start.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: StdInstant,
}

/// How far ahead a deadline the clock cannot express is pushed (it never
/// comes in practice; the core re-arms long before).
const FAR: StdDuration = StdDuration::from_secs(365 * 24 * 3600);

impl Clock {
    /// The process's clock: its zero is the first call, so every node of
    /// one process reads the same time (their traces line up, and their
    /// timers fall on one grid and can share wake-ups).
    pub fn process() -> Self {
        static ORIGIN: std::sync::OnceLock<StdInstant> = std::sync::OnceLock::new();
        Clock { origin: *ORIGIN.get_or_init(Clock::read) }
    }

    /// The first instant at or after `at` on a grid of `slack` ms (`at`
    /// itself when `slack` is 0 or 1).
    pub fn coarsen(at: Instant, slack: u64) -> Instant {
        if slack <= 1 {
            return at;
        }
        let ms = at.as_millis();
        Instant::from_millis(ms.div_ceil(slack).saturating_mul(slack))
    }

    /// The monotonic clock's reading: the one place a node reads it.
    #[expect(clippy::disallowed_methods, reason = "the adapter is where the wall clock is read")]
    pub fn read() -> StdInstant {
        StdInstant::now()
    }

    /// The core's time at `at` (the origin if `at` is earlier).
    pub fn core(&self, at: StdInstant) -> Instant {
        let ms = at.saturating_duration_since(self.origin).as_millis();
        Instant::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    /// The monotonic instant of the core's `at`. A timer armed for it fires
    /// when [`Clock::core`] of [`Clock::read`] has reached `at`, since both
    /// round the same way.
    pub fn std(&self, at: Instant) -> StdInstant {
        let later = StdDuration::from_millis(at.as_millis());
        self.origin.checked_add(later).unwrap_or_else(|| self.origin + FAR)
    }

    /// The origin.
    pub fn origin(&self) -> StdInstant {
        self.origin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_whole_milliseconds() {
        let clock = Clock::process();
        for ms in [0, 1, 999, 86_400_000] {
            let at = Instant::from_millis(ms);
            assert_eq!(clock.core(clock.std(at)), at);
        }
        assert_eq!(clock.core(clock.origin() + StdDuration::from_micros(1_999)), Instant::from_millis(1));
    }

    #[test]
    fn coarsening_rounds_up_onto_the_grid() {
        let c = |ms, slack| Clock::coarsen(Instant::from_millis(ms), slack).as_millis();
        assert_eq!([c(0, 10), c(1, 10), c(10, 10), c(11, 10), c(7, 0), c(7, 1)], [0, 10, 10, 20, 7, 7]);
        // Past the last grid point it saturates rather than wrapping.
        assert_eq!(c(u64::MAX, 10), u64::MAX);
    }

    #[test]
    fn never_panics_at_the_edges() {
        let clock = Clock::process();
        let _ = clock.std(Instant::MAX);
        let earlier = clock.origin().checked_sub(StdDuration::from_secs(1));
        if let Some(earlier) = earlier {
            assert_eq!(clock.core(earlier), Instant::ZERO);
        }
    }
}
