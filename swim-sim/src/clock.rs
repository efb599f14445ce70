//! Each simulated node's own clock: the network's virtual time as that
//! node reads it, with an offset and a drift.
//!
//! Real nodes never share a clock: each reads its own monotonic one, which
//! started at another moment and runs a little fast or slow. The protocol
//! must not care (only durations measured on one node matter), and this is
//! how the simulator checks it.

/// Parts per million: a drift of 1,000 ppm gains one ms per second.
const MILLION: i128 = 1_000_000;

/// A monotonic clock that reads `local_at_since` at network time `since`
/// and runs at `1 + ppm / 10^6` times the network's rate from then on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Clock {
    since: u64,
    local_at_since: u64,
    ppm: i32,
}

impl Clock {
    /// The smallest drift accepted: a clock must keep moving forward.
    pub(crate) const MIN_PPM: i32 = -999_999;

    /// What the node reads at network time `t` (not before `since`).
    pub(crate) fn local(&self, t: u64) -> u64 {
        // Most clocks never drift: spare them a 128-bit division, read for
        // every datagram and wake-up.
        if self.ppm == 0 {
            return self.local_at_since.saturating_add(t.saturating_sub(self.since));
        }
        let elapsed = i128::from(t.saturating_sub(self.since));
        let local = elapsed * (MILLION + i128::from(self.ppm)) / MILLION;
        self.local_at_since.saturating_add(u64::try_from(local).unwrap_or(u64::MAX))
    }

    /// The earliest network time at which the node reads `local` or more
    /// (never before `since`).
    pub(crate) fn global(&self, local: u64) -> u64 {
        let Some(ahead) = local.checked_sub(self.local_at_since).filter(|&a| a > 0) else {
            return self.since;
        };
        if self.ppm == 0 {
            return self.since.saturating_add(ahead);
        }
        let rate = MILLION + i128::from(self.ppm);
        let elapsed = (i128::from(ahead) * MILLION + rate - 1) / rate;
        self.since.saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX))
    }

    /// From network time `now` on: the clock jumps `step_ms` forward and
    /// then runs at the new drift. It never goes back.
    pub(crate) fn set(&mut self, now: u64, step_ms: u64, ppm: i32) {
        let local = self.local(now).saturating_add(step_ms);
        *self = Clock { since: now, local_at_since: local, ppm: ppm.max(Self::MIN_PPM) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_untouched_clock_reads_network_time() {
        let c = Clock::default();
        for t in [0, 1, 999, 1 << 40] {
            assert_eq!(c.local(t), t);
            assert_eq!(c.global(t), t);
        }
    }

    #[test]
    fn a_drifting_clock_wakes_at_the_first_moment_it_reads_the_deadline() {
        for ppm in [-500_000, -333, 0, 1, 250, 100_000] {
            let mut c = Clock::default();
            c.set(1_000, 5_000, ppm);
            let mut last = 0;
            for t in 1_000..40_000 {
                let l = c.local(t);
                assert!(l >= last, "monotonic");
                last = l;
                let g = c.global(l);
                assert!(g <= t && c.local(g) >= l, "ppm {ppm}, t {t}");
                assert!(g == c.since || c.local(g - 1) < l, "earliest, ppm {ppm}, t {t}");
            }
        }
    }

    #[test]
    fn a_clock_without_drift_reads_as_the_general_formula_would() {
        // The general formula, which clocks without drift skip.
        let local = |c: &Clock, t: u64| {
            let elapsed = i128::from(t.saturating_sub(c.since)) * (MILLION + i128::from(c.ppm)) / MILLION;
            c.local_at_since.saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX))
        };
        let global = |c: &Clock, l: u64| match l.checked_sub(c.local_at_since).filter(|&a| a > 0) {
            None => c.since,
            Some(ahead) => {
                let rate = MILLION + i128::from(c.ppm);
                let elapsed = (i128::from(ahead) * MILLION + rate - 1) / rate;
                c.since.saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX))
            }
        };
        for (since, step) in [(0, 0), (1_000, 5_000), (7, u64::MAX - 3), (u64::MAX - 9, 2)] {
            let mut c = Clock::default();
            c.set(since, step, 0);
            for t in [0, 1, since, since.saturating_add(1), since.saturating_add(123_456), u64::MAX - 1, u64::MAX] {
                assert_eq!(c.local(t), local(&c, t), "{c:?} at {t}");
                assert_eq!(c.global(t), global(&c, t), "{c:?} reading {t}");
            }
        }
    }

    #[test]
    fn drift_accumulates_at_its_rate() {
        let mut c = Clock::default();
        c.set(0, 0, 10_000);
        assert_eq!(c.local(100_000), 101_000);
        c.set(100_000, 0, -10_000);
        assert_eq!(c.local(200_000), 200_000);
    }
}
