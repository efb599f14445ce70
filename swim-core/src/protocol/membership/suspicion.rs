//! Lifeguard's dynamic suspicion timeout (LHA-Suspicion).
//!
//! A suspicion starts with a long timeout, `max`, and shrinks towards `min`
//! as independent members confirm it, so a lone (possibly overloaded)
//! accuser cannot fail a healthy member quickly, while a real failure seen
//! by many is confirmed fast:
//!
//! ```text
//! min     = suspicion_mult * max(1, log10(n)) * probe_interval
//! max     = suspicion_max_timeout_mult * min
//! timeout = max(min, max - (max - min) * ln(c + 1) / ln(k + 1))
//! ```
//!
//! with `c` confirmations so far and `k = suspicion_mult - 2` expected
//! (0 when the cluster is too small to supply them, which starts at `min`).

use alloc::vec::Vec;

use crate::util::name::MemberName;
use crate::util::time::{Duration, Instant};

/// The minimum suspicion timeout for a cluster of `n` members.
///
/// `log10` is taken of `max(1, n)` and floored at 1, as memberlist does, so
/// small clusters get `suspicion_mult` probe intervals. The scale is kept
/// to a thousandth, which reproduces memberlist's figures to the
/// millisecond (n = 16: 4 816 ms at the LAN defaults).
pub fn suspicion_min(suspicion_mult: u32, n: usize, probe_interval: Duration) -> Duration {
    let scale = libm::log10((n.max(1)) as f64).max(1.0);
    let milli_scale = (scale * 1000.0) as u64;
    let ms = u64::from(suspicion_mult).saturating_mul(milli_scale).saturating_mul(probe_interval.as_millis()) / 1000;
    Duration::from_millis(ms)
}

/// The suspicion timeout after `c` of `k` expected confirmations.
pub fn suspicion_timeout(min: Duration, max: Duration, k: u32, c: u32) -> Duration {
    if k == 0 || max <= min {
        return min;
    }
    let frac = libm::log(f64::from(c.min(k)) + 1.0) / libm::log(f64::from(k) + 1.0);
    let span = (max.as_millis() - min.as_millis()) as f64;
    let raw = max.as_millis() as f64 - frac * span;
    let ms = if raw.is_finite() && raw > 0.0 { raw as u64 } else { 0 };
    Duration::from_millis(ms.max(min.as_millis()))
}

/// A running suspicion of one member at one incarnation.
#[derive(Clone, Debug)]
pub(crate) struct Suspicion {
    pub(crate) incarnation: u32,
    pub(crate) started: Instant,
    pub(crate) min: Duration,
    pub(crate) max: Duration,
    /// Confirmations expected.
    pub(crate) k: u32,
    /// Every distinct accuser so far, the first one included; only the
    /// later ones count as confirmations.
    pub(crate) accusers: Vec<MemberName>,
    pub(crate) deadline: Instant,
    /// Last-chance checks sent so far (see [`Suspicion::wake_at`]).
    pub(crate) checks: u32,
    /// Last-chance checks to make before the deadline.
    pub(crate) planned: u32,
    /// When the suspicion's timer is set for (a check or the deadline).
    pub(crate) timer_at: Instant,
    /// Last-chance checks over streams still open: the deadline waits for
    /// them (each ends by its own deadline).
    pub(crate) awaiting: u8,
    /// Whether a member that is no accuser has already put its deadline
    /// off once, to give the accusers' checks their time.
    pub(crate) deferred: bool,
    /// Whether an accuser is known to have declared the suspect already
    /// (a peer's table listed it dead): there is no verdict left to wait
    /// for past the deadline.
    pub(crate) declared_elsewhere: bool,
    /// Whether the last query over a stream, at the end of that wait, has
    /// been made.
    pub(crate) final_query: bool,
    /// Whether the declaration has already been put off by a moment to
    /// read what arrived with its wake-up.
    pub(crate) settled: bool,
    /// When the suspect, heard from directly, was last told of the
    /// suspicion by us.
    pub(crate) told_at: Option<Instant>,
}

/// How long a last-chance check over a stream may hold a declaration, in
/// protocol periods: a pause of a few seconds is common in managed
/// runtimes and must not make a live member dead. Members that hold a
/// suspicion without evidence of their own wait as long again past their
/// deadline, for the accusers' verdict.
pub(crate) const CHECK_WAIT_PERIODS: u64 = 5;

/// The shortest such hold, whatever the protocol period: a pause of the
/// whole process lasts seconds, not periods, so a short period (the `fast`
/// preset's 500 ms) must not shorten the time a paused suspect has to
/// answer. A host that is gone is found out by the connect timeout first.
pub(crate) const CHECK_WAIT_FLOOR: Duration = Duration::from_millis(6_000);

/// How long a last-chance check over a stream may hold a declaration, and
/// how long a member without evidence of its own waits past its deadline.
pub(crate) fn check_wait(probe_interval: Duration) -> Duration {
    probe_interval.saturating_mul(CHECK_WAIT_PERIODS).max(CHECK_WAIT_FLOOR)
}

impl Suspicion {
    pub(crate) fn new(
        incarnation: u32,
        first_accuser: MemberName,
        now: Instant,
        min: Duration,
        max: Duration,
        k: u32,
        planned: u32,
    ) -> Self {
        let accusers = alloc::vec![first_accuser];
        Suspicion {
            incarnation,
            started: now,
            min,
            max,
            k,
            accusers,
            deadline: now + suspicion_timeout(min, max, k, 0),
            checks: 0,
            planned,
            timer_at: now,
            awaiting: 0,
            deferred: false,
            declared_elsewhere: false,
            final_query: false,
            settled: false,
            told_at: None,
        }
    }

    /// When to wake next for this suspicion: for each remaining
    /// last-chance check `i` (of `planned`) at `deadline - (planned - i) *
    /// spacing`, then at the deadline. The checks give a member that missed
    /// a refutation a last chance to hear it; a dead suspect is still
    /// declared at the same deadline as without them.
    pub(crate) fn wake_at(&self, spacing: Duration) -> Instant {
        if self.checks < self.planned {
            let before = spacing.saturating_mul(u64::from(self.planned - self.checks));
            let at = Instant::from_millis(self.deadline.as_millis().saturating_sub(before.as_millis()));
            return at.max(self.started);
        }
        self.deadline
    }

    /// Independent confirmations counted so far.
    pub(crate) fn confirmations(&self) -> u32 {
        (self.accusers.len() as u32).saturating_sub(1)
    }

    /// A connection to the suspect was refused by its host at `now`: its
    /// process is gone. The deadline comes `window` from now, or as soon
    /// after as the remaining last-chance checks (spaced by `spacing`)
    /// allow, if that is earlier than it was.
    pub(crate) fn not_listening(&mut self, now: Instant, window: Duration, spacing: Duration) {
        let room = now + spacing.saturating_mul(u64::from(self.planned.saturating_sub(self.checks)));
        self.deadline = (now + window).max(room).min(self.deadline);
    }

    /// Records `from` as an accuser at `now`. Returns whether it was a
    /// new, counted confirmation, which moves the deadline earlier, but
    /// never so early that the remaining last-chance checks (spaced by
    /// `spacing`) could not run and be answered first.
    pub(crate) fn confirm(&mut self, from: &str, now: Instant, spacing: Duration) -> bool {
        if self.confirmations() >= self.k || self.accusers.iter().any(|a| a.as_str() == from) {
            return false;
        }
        let Ok(name) = MemberName::new(from) else { return false };
        self.accusers.push(name);
        let shrunk = self.started + suspicion_timeout(self.min, self.max, self.k, self.confirmations());
        let room = now + spacing.saturating_mul(u64::from(self.planned.saturating_sub(self.checks)));
        self.deadline = shrunk.max(room).min(self.deadline);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(1);

    #[test]
    fn minimum_grows_with_log_of_cluster_size() {
        assert_eq!(suspicion_min(4, 0, T), Duration::from_millis(4000));
        assert_eq!(suspicion_min(4, 1, T), Duration::from_millis(4000));
        assert_eq!(suspicion_min(4, 16, T), Duration::from_millis(4816));
        assert_eq!(suspicion_min(4, 100, T), Duration::from_millis(8000));
        assert_eq!(suspicion_min(4, 1000, T), Duration::from_millis(12000));
    }

    #[test]
    fn confirmations_shrink_the_timeout_to_the_minimum() {
        let min = suspicion_min(4, 100, T);
        let max = min.saturating_mul(6);
        let k = 2;
        assert_eq!(suspicion_timeout(min, max, k, 0), Duration::from_millis(48_000));
        // ln(2)/ln(3) of the way from max to min.
        assert_eq!(suspicion_timeout(min, max, k, 1), Duration::from_millis(22_762));
        assert_eq!(suspicion_timeout(min, max, k, 2), Duration::from_millis(8_000));
        assert_eq!(suspicion_timeout(min, max, k, 9), Duration::from_millis(8_000));
        // Too few members to expect confirmations: start at the minimum.
        assert_eq!(suspicion_timeout(min, max, 0, 0), min);
    }

    #[test]
    fn only_distinct_accusers_confirm() {
        let me = MemberName::new("a").unwrap();
        let min = Duration::from_secs(8);
        let mut s = Suspicion::new(1, me, Instant::from_millis(1000), min, min.saturating_mul(6), 2, 2);
        assert_eq!(s.deadline, Instant::from_millis(49_000));
        let (now, spacing) = (Instant::from_millis(2000), Duration::from_millis(500));
        assert!(!s.confirm("a", now, spacing));
        assert!(s.confirm("b", now, spacing));
        assert!(!s.confirm("b", now, spacing));
        assert_eq!(s.deadline, Instant::from_millis(1000 + 22_762));
        assert!(s.confirm("c", now, spacing));
        assert_eq!(s.deadline, Instant::from_millis(9000));
        assert!(!s.confirm("d", now, spacing), "confirmations beyond k are not counted");
        assert_eq!(s.confirmations(), 2);
    }

    #[test]
    fn a_late_confirmation_leaves_room_for_the_last_checks() {
        let me = MemberName::new("a").unwrap();
        let min = Duration::from_secs(8);
        let mut s = Suspicion::new(1, me, Instant::ZERO, min, min.saturating_mul(6), 1, 2);
        // At 20 s, the shrunk deadline (8 s) is already past: the checks
        // still get their second each.
        assert!(s.confirm("b", Instant::from_millis(20_000), Duration::from_millis(500)));
        assert_eq!(s.deadline, Instant::from_millis(21_000));
        assert_eq!(s.wake_at(Duration::from_millis(500)), Instant::from_millis(20_000));
    }
}
