//! A timer table: the deadlines one component owns.
//!
//! Each component keeps its own table of its own timer kinds; the state
//! machine reports only the earliest deadline of all of them
//! ([`Action::SetTimer`](crate::Action::SetTimer)). Waking early finds
//! nothing due and does nothing.

use alloc::collections::BTreeSet;

use crate::util::time::Instant;

/// Deadlines of kind `T`, earliest first (ties in `T`'s order).
#[derive(Clone, Debug)]
pub(crate) struct Timers<T> {
    set: BTreeSet<(Instant, T)>,
    /// The earliest deadline in `set`, kept beside it: the state machine
    /// asks every component for its next deadline after every input, and
    /// in a large simulation each tree's root is a cache miss away.
    first: Option<Instant>,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers { set: BTreeSet::new(), first: None }
    }
}

impl<T: Ord + Copy> Timers<T> {
    pub(crate) fn insert(&mut self, at: Instant, t: T) {
        self.set.insert((at, t));
        self.first = Some(self.first.map_or(at, |f| f.min(at)));
    }

    pub(crate) fn remove(&mut self, at: Instant, t: T) {
        if self.set.remove(&(at, t)) && self.first == Some(at) {
            self.refresh();
        }
    }

    fn refresh(&mut self) {
        self.first = self.set.first().map(|(at, _)| *at);
    }

    /// Moves `t` from `old` to `new`.
    pub(crate) fn reschedule(&mut self, old: Instant, new: Instant, t: T) {
        self.remove(old, t);
        self.insert(new, t);
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.first
    }

    /// Removes and returns the earliest timer due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<T> {
        match self.first {
            Some(at) if at <= now => {
                let popped = self.set.pop_first().map(|(_, t)| t);
                self.refresh();
                popped
            }
            _ => None,
        }
    }

    pub(crate) fn clear(&mut self) {
        self.set.clear();
        self.first = None;
    }

    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    enum T {
        A,
        B,
    }

    #[test]
    fn pops_only_what_is_due_in_order() {
        let mut t = Timers::default();
        t.insert(Instant::from_millis(20), T::B);
        t.insert(Instant::from_millis(10), T::A);
        assert_eq!(t.next(), Some(Instant::from_millis(10)));
        assert_eq!(t.pop_due(Instant::from_millis(5)), None);
        assert_eq!(t.pop_due(Instant::from_millis(25)), Some(T::A));
        t.reschedule(Instant::from_millis(20), Instant::from_millis(40), T::B);
        assert_eq!(t.pop_due(Instant::from_millis(25)), None);
        assert_eq!(t.len(), 1);
        t.clear();
        assert_eq!(t.next(), None);
    }

    #[test]
    fn the_kept_earliest_deadline_follows_every_change() {
        // Inserts, removals, reschedules and pops in a fixed pseudo-random
        // mix; after each, the kept deadline is the set's own first.
        let mut t = Timers::default();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..5_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = Instant::from_millis(x % 64);
            let kind = if x & 0x100 == 0 { T::A } else { T::B };
            match (x >> 10) % 5 {
                0 | 1 => t.insert(at, kind),
                2 => t.remove(at, kind),
                3 => t.reschedule(at, Instant::from_millis((x >> 20) % 64), kind),
                _ => {
                    let _ = t.pop_due(Instant::from_millis((x >> 30) % 64));
                }
            }
            assert_eq!(t.next(), t.set.first().map(|(at, _)| *at));
        }
    }
}
