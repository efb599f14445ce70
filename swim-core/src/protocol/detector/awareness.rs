//! Lifeguard's local health multiplier (LHA-Probe, memberlist "awareness").
//!
//! A member that misses acks may be the slow one. The score rises on
//! evidence of our own trouble (a failed probe that peers did not nack,
//! having to refute a suspicion of ourselves) and falls on each successful
//! probe. Probe interval and timeout are scaled by `score + 1`, so an
//! overloaded member probes less and waits longer before it accuses others.

use crate::util::time::Duration;

#[derive(Clone, Debug)]
pub(crate) struct Awareness {
    score: u32,
    max: u32,
}

impl Awareness {
    /// `max` is `awareness_max_multiplier`: the score stays below it.
    pub(crate) fn new(max: u32) -> Self {
        Awareness { score: 0, max: max.max(1) }
    }

    pub(crate) fn score(&self) -> u32 {
        self.score
    }

    /// Moves the score by `delta`, clamped to `0..max`.
    pub(crate) fn apply(&mut self, delta: i64) {
        let next = i64::from(self.score).saturating_add(delta);
        self.score = next.clamp(0, i64::from(self.max - 1)) as u32;
    }

    /// `d * (score + 1)`.
    pub(crate) fn scale(&self, d: Duration) -> Duration {
        d.saturating_mul(u64::from(self.score) + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rises_falls_and_stays_in_bounds() {
        let mut a = Awareness::new(8);
        assert_eq!(a.scale(Duration::from_millis(500)), Duration::from_millis(500));
        a.apply(3);
        assert_eq!(a.score(), 3);
        assert_eq!(a.scale(Duration::from_secs(1)), Duration::from_secs(4));
        a.apply(100);
        assert_eq!(a.score(), 7);
        a.apply(-1);
        assert_eq!(a.score(), 6);
        a.apply(-100);
        assert_eq!(a.score(), 0);
        let mut off = Awareness::new(1);
        off.apply(5);
        assert_eq!(off.score(), 0);
    }
}
