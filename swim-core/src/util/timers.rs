//! A timer table: the deadlines one component owns.
//!
//! Each component keeps its own table of its own timer kinds; the state
//! machine reports only the earliest deadline of all of them
//! ([`Action::SetTimer`](crate::Action::SetTimer)). Waking early finds
//! nothing due and does nothing.

use alloc::collections::BTreeSet;

use crate::util::time::Instant;

/// Deadlines held inline, the earliest ones: a component seldom has more
/// (the detector's next period and a probe timeout), so the earliest
/// deadline, read at every input, is read without following a pointer,
/// and the usual timers come and go without touching the heap.
const NEAR: usize = 4;

/// Deadlines of kind `T`, earliest first (ties in `T`'s order).
#[derive(Clone, Debug)]
pub(crate) struct Timers<T> {
    /// The earliest deadlines, in order: all of them when there are at
    /// most [`NEAR`], else the first [`NEAR`].
    near: heapless::Vec<(Instant, T), NEAR>,
    /// The rest, each later than every one in `near`.
    far: BTreeSet<(Instant, T)>,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers { near: heapless::Vec::new(), far: BTreeSet::new() }
    }
}

impl<T: Ord + Copy> Timers<T> {
    pub(crate) fn insert(&mut self, at: Instant, t: T) {
        let entry = (at, t);
        let pos = self.near.iter().position(|e| *e >= entry).unwrap_or(self.near.len());
        if self.near.get(pos) == Some(&entry) {
            return;
        }
        if pos == self.near.len() && self.near.is_full() {
            self.far.insert(entry);
            return;
        }
        if self.near.is_full()
            && let Some(last) = self.near.pop()
        {
            self.far.insert(last);
        }
        // Room was made above.
        let _ = self.near.insert(pos, entry);
    }

    pub(crate) fn remove(&mut self, at: Instant, t: T) {
        let entry = (at, t);
        match self.near.iter().position(|e| *e == entry) {
            Some(pos) => {
                self.near.remove(pos);
                self.refill();
            }
            None => {
                self.far.remove(&entry);
            }
        }
    }

    /// Moves the earliest of the rest up when `near` has room.
    fn refill(&mut self) {
        if !self.near.is_full()
            && let Some(first) = self.far.pop_first()
        {
            let _ = self.near.push(first);
        }
    }

    /// Moves `t` from `old` to `new`.
    pub(crate) fn reschedule(&mut self, old: Instant, new: Instant, t: T) {
        self.remove(old, t);
        self.insert(new, t);
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.near.first().map(|(at, _)| *at)
    }

    /// Removes and returns the earliest timer due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<T> {
        match self.near.first() {
            Some(&(at, t)) if at <= now => {
                self.near.remove(0);
                self.refill();
                Some(t)
            }
            _ => None,
        }
    }

    pub(crate) fn clear(&mut self) {
        self.near.clear();
        self.far.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.near.len() + self.far.len()
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

    proptest::proptest! {
        /// Inserts, removes and pops in any mix give what an ordered set
        /// gives, in the same order, however many deadlines are held.
        #[test]
        fn behaves_as_an_ordered_set(ops in proptest::collection::vec((0u8..4, 0u64..40, 0u8..3), 0..300)) {
            let mut t = Timers::default();
            let mut model = BTreeSet::new();
            for (op, at, k) in ops {
                let (at, k) = (Instant::from_millis(at), k);
                match op {
                    0 | 1 => {
                        t.insert(at, k);
                        model.insert((at, k));
                    }
                    2 => {
                        t.remove(at, k);
                        model.remove(&(at, k));
                    }
                    _ => {
                        let want = match model.first() {
                            Some(&(first, k)) if first <= at => {
                                model.pop_first();
                                Some(k)
                            }
                            _ => None,
                        };
                        proptest::prop_assert_eq!(t.pop_due(at), want);
                    }
                }
                proptest::prop_assert_eq!(t.next(), model.first().map(|e| e.0));
                proptest::prop_assert_eq!(t.len(), model.len());
            }
        }
    }
}
