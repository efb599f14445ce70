//! The event queue: items by due time in milliseconds, first in first out
//! at each time (the order of a heap on `(time, sequence)`).
//!
//! Nearly everything is due within a few seconds (a datagram's latency, a
//! node's next wake-up), so those items wait in a ring of one bucket per
//! millisecond: a push appends, a pop takes from the front, and both touch
//! one bucket instead of a heap's path through tens of thousands of
//! entries. Items due further ahead wait in an ordered map and move into
//! the ring, in order, as the ring's first millisecond reaches them. The
//! buckets hold places in one table of items, whose freed places are
//! reused first: a datagram is several times a place's size, and the
//! table, unlike thousands of buckets, stays warm in the cache.

use std::collections::{BTreeMap, VecDeque};

/// Milliseconds the ring covers (a power of two).
const RING: u64 = 4096;

pub(super) struct Calendar<T> {
    /// Bucket `t % RING` holds the places of the items due at `t`, for
    /// `base <= t < base + RING`.
    ring: Vec<VecDeque<u32>>,
    in_ring: usize,
    /// Items due at `base + RING` or later, by time and then by push order.
    later: BTreeMap<(u64, u64), u32>,
    /// The items queued, by place; `None` where free.
    items: Vec<Option<T>>,
    /// Free places in `items`, the latest freed last.
    free: Vec<u32>,
    pushed: u64,
    /// The earliest time an item can be due: nothing is queued before it.
    base: u64,
}

impl<T> Default for Calendar<T> {
    fn default() -> Self {
        Calendar {
            ring: (0..RING).map(|_| VecDeque::new()).collect(),
            in_ring: 0,
            later: BTreeMap::new(),
            items: Vec::new(),
            free: Vec::new(),
            pushed: 0,
            base: 0,
        }
    }
}

impl<T> Calendar<T> {
    fn bucket(&mut self, at: u64) -> &mut VecDeque<u32> {
        // The ring has RING buckets and the index is taken modulo RING.
        &mut self.ring[(at % RING) as usize]
    }

    /// Queues `item` for time `at`, after everything already queued for
    /// that time. Nothing is due before the last item popped, so an `at`
    /// in the past is taken as that time.
    pub(super) fn push(&mut self, at: u64, item: T) {
        let place = match self.free.pop() {
            Some(place) => {
                if let Some(p) = self.items.get_mut(place as usize) {
                    *p = Some(item);
                }
                place
            }
            None => {
                self.items.push(Some(item));
                u32::try_from(self.items.len() - 1).expect("fewer than 2^32 items queued at once")
            }
        };
        let at = at.max(self.base);
        if at - self.base < RING {
            self.bucket(at).push_back(place);
            self.in_ring += 1;
        } else {
            self.pushed += 1;
            self.later.insert((at, self.pushed), place);
        }
    }

    /// The items still queued for the time of the last item popped, in
    /// order.
    pub(super) fn due_with_last(&self) -> impl Iterator<Item = &T> + '_ {
        let bucket = self.ring.get((self.base % RING) as usize);
        bucket.into_iter().flatten().filter_map(|&place| self.items.get(place as usize)?.as_ref())
    }

    /// Takes the item at `place` out, freeing the place.
    fn take(&mut self, place: u32) -> Option<T> {
        let item = self.items.get_mut(place as usize)?.take()?;
        self.free.push(place);
        Some(item)
    }

    /// The earliest item due at or before `until`, with its time.
    pub(super) fn pop_due(&mut self, until: u64) -> Option<(u64, T)> {
        loop {
            if self.base > until {
                return None;
            }
            let base = self.base;
            if let Some(place) = self.bucket(base).pop_front() {
                self.in_ring -= 1;
                // Every place in a bucket holds an item.
                let Some(item) = self.take(place) else { continue };
                return Some((base, item));
            }
            let next = if self.in_ring > 0 { base + 1 } else { self.later.first_key_value().map(|(k, _)| k.0)? };
            if next > until {
                return None;
            }
            self.base = next;
            // What the ring now covers moves in, in order: it was queued
            // before anything pushed for the same time from here on.
            while let Some(entry) = self.later.first_entry() {
                if entry.key().0 >= next + RING {
                    break;
                }
                let ((at, _), place) = entry.remove_entry();
                self.bucket(at).push_back(place);
                self.in_ring += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BinaryHeap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Pops come in the order of a heap on (time, push order), for any
        /// mix of pushes near and far and pops up to any time.
        #[test]
        fn pops_in_time_then_push_order(ops in proptest::collection::vec((0u64..3, 0u64..20_000), 1..400)) {
            let mut cal = Calendar::default();
            let mut heap = BinaryHeap::new();
            let (mut now, mut n) = (0u64, 0u64);
            for (kind, x) in ops {
                if kind < 2 {
                    // Pushes are never in the past, as in the simulator.
                    let at = now + if kind == 0 { x % 7 } else { x };
                    n += 1;
                    cal.push(at, n);
                    heap.push(core::cmp::Reverse((at, n)));
                } else {
                    let until = now + x % 5_000;
                    loop {
                        let want = match heap.peek() {
                            Some(core::cmp::Reverse((at, _))) if *at <= until => heap.pop().map(|r| (r.0.0, r.0.1)),
                            _ => None,
                        };
                        let got = cal.pop_due(until);
                        prop_assert_eq!(got, want);
                        match got {
                            Some((at, _)) => now = at,
                            None => break,
                        }
                    }
                    now = now.max(until);
                }
            }
        }
    }
}
