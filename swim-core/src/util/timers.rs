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
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers { set: BTreeSet::new() }
    }
}

impl<T: Ord + Copy> Timers<T> {
    pub(crate) fn insert(&mut self, at: Instant, t: T) {
        self.set.insert((at, t));
    }

    pub(crate) fn remove(&mut self, at: Instant, t: T) {
        self.set.remove(&(at, t));
    }

    /// Moves `t` from `old` to `new`.
    pub(crate) fn reschedule(&mut self, old: Instant, new: Instant, t: T) {
        self.remove(old, t);
        self.insert(new, t);
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.set.first().map(|(at, _)| *at)
    }

    /// Removes and returns the earliest timer due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<T> {
        match self.set.first() {
            Some(&(at, _)) if at <= now => self.set.pop_first().map(|(_, t)| t),
            _ => None,
        }
    }

    pub(crate) fn clear(&mut self) {
        self.set.clear();
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
}
