//! The state machine's timer table: every deadline it owns, one place.
//!
//! The runtime only ever sees the earliest one ([`Action::SetTimer`](crate::Action::SetTimer)).
//! Waking early finds nothing due and does nothing.

use alloc::collections::BTreeSet;

use crate::members::MemberId;
use crate::time::Instant;

/// What a deadline is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// Start the next protocol period (and judge the last one's probes).
    ProbeTick,
    /// The direct ping of probe `seq` went unanswered: go indirect.
    ProbeTimeout(u32),
    /// The target of a ping-req we relay (our ping `seq`) stayed silent: nack.
    Relay(u32),
    /// A suspicion may have run out.
    Suspicion(MemberId),
    /// A dead or departed member may be removed from the table.
    Reap(MemberId),
    /// Send queued updates to random members.
    Gossip,
    /// Exchange whole tables with a random member.
    PushPull,
    /// Contact the seeds again.
    JoinRetry,
    /// A graceful leave completes at the latest now.
    LeaveDeadline,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Timers {
    set: BTreeSet<(Instant, Timer)>,
}

impl Timers {
    pub(crate) fn insert(&mut self, at: Instant, t: Timer) {
        self.set.insert((at, t));
    }

    pub(crate) fn remove(&mut self, at: Instant, t: Timer) {
        self.set.remove(&(at, t));
    }

    /// Moves `t` from `old` (if it was set) to `new`.
    pub(crate) fn reschedule(&mut self, old: Option<Instant>, new: Instant, t: Timer) {
        if let Some(old) = old {
            self.remove(old, t);
        }
        self.insert(new, t);
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.set.first().map(|(at, _)| *at)
    }

    /// Removes and returns the earliest timer due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, Timer)> {
        match self.set.first() {
            Some(&(at, _)) if at <= now => self.set.pop_first(),
            _ => None,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_only_what_is_due_in_order() {
        let mut t = Timers::default();
        t.insert(Instant::from_millis(20), Timer::Gossip);
        t.insert(Instant::from_millis(10), Timer::ProbeTick);
        assert_eq!(t.next(), Some(Instant::from_millis(10)));
        assert_eq!(t.pop_due(Instant::from_millis(5)), None);
        assert_eq!(t.pop_due(Instant::from_millis(25)), Some((Instant::from_millis(10), Timer::ProbeTick)));
        t.reschedule(Some(Instant::from_millis(20)), Instant::from_millis(40), Timer::Gossip);
        assert_eq!(t.pop_due(Instant::from_millis(25)), None);
        assert_eq!(t.len(), 1);
    }
}
