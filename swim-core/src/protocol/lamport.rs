//! A Lamport clock with a bounded de-duplication window: what orders
//! user events and queries, each on a clock of its own, and delivers each
//! once.
//!
//! Invariants:
//! - the clock never goes backwards, and after witnessing a message at
//!   time `t` it is above `t` (so our next one is ordered after it);
//! - a message is delivered at most once: `(ltime, from)` is remembered
//!   for every message at or above `floor`, and anything below `floor`
//!   is dropped as too old rather than risk a second delivery;
//! - memory is bounded: `seen` holds at most `window` entries (the floor
//!   rises to keep it so).

use alloc::collections::BTreeSet;

use crate::util::name::MemberName;

/// What became of an arriving message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// First sight: deliver it and pass it on.
    New,
    /// Delivered before.
    Duplicate,
    /// Older than the deduplication window.
    TooOld,
    /// Further ahead of our clock than [`MAX_LEAP`]: a forgery meant to
    /// run the clock out of its range, dropped.
    TooFar,
}

/// The furthest ahead of our clock an arriving message may be. Honest
/// clocks differ by the broadcasts one member has not seen yet, far below
/// this; a forged time near the top of the range would otherwise push
/// every clock there for good.
pub(crate) const MAX_LEAP: u64 = 1 << 32;

/// What arrived, by fate.
#[derive(Clone, Debug, Default)]
pub(crate) struct Counters {
    pub(crate) delivered: u64,
    pub(crate) duplicates: u64,
    pub(crate) too_old: u64,
    pub(crate) too_far: u64,
}

/// A Lamport clock and its de-duplication window.
#[derive(Debug)]
pub(crate) struct Lamport {
    clock: u64,
    floor: u64,
    seen: BTreeSet<(u64, MemberName)>,
    window: usize,
    pub(crate) counters: Counters,
}

impl Lamport {
    /// A clock at zero that remembers the last `window` messages.
    pub(crate) fn new(window: u32) -> Self {
        Lamport { clock: 0, floor: 0, seen: BTreeSet::new(), window: window as usize, counters: Counters::default() }
    }

    /// Forgets everything before `ltime` (a member that joins skips the
    /// cluster's past) and moves the clock up to it.
    pub(crate) fn skip_before(&mut self, ltime: u64) {
        self.clock = self.clock.max(ltime);
        self.floor = self.floor.max(ltime);
        while self.seen.first().is_some_and(|(t, _)| *t < self.floor) {
            self.seen.pop_first();
        }
    }

    /// A peer's clock: ours moves up to it (never past the leap a forgery
    /// could make), so that what we stamp next is newer than anything the
    /// peer has seen.
    pub(crate) fn witness(&mut self, ltime: u64) {
        if ltime <= self.clock.saturating_add(MAX_LEAP) {
            self.clock = self.clock.max(ltime);
        } else {
            self.counters.too_far += 1;
        }
    }

    /// Whether `(ltime, from)` would be delivered if it arrived now.
    pub(crate) fn is_new(&self, ltime: u64, from: &MemberName) -> bool {
        ltime >= self.floor && !self.seen.contains(&(ltime, from.clone()))
    }

    /// The Lamport time our next message will carry.
    pub(crate) fn clock(&self) -> u64 {
        self.clock
    }

    /// Stamps a message of ours: its time, remembered as seen.
    pub(crate) fn stamp(&mut self, me: &MemberName) -> u64 {
        let ltime = self.clock;
        self.clock = self.clock.saturating_add(1);
        self.remember(ltime, me.clone());
        ltime
    }

    /// A message arrived: advance the clock past it and decide whether
    /// it is new.
    pub(crate) fn arrive(&mut self, ltime: u64, from: &MemberName) -> Arrival {
        if ltime > self.clock.saturating_add(MAX_LEAP) {
            self.counters.too_far += 1;
            return Arrival::TooFar;
        }
        self.clock = self.clock.max(ltime.saturating_add(1));
        debug_assert!(self.clock > ltime || ltime == u64::MAX, "the clock is past every message it witnessed");
        if ltime < self.floor {
            self.counters.too_old += 1;
            return Arrival::TooOld;
        }
        if self.seen.contains(&(ltime, from.clone())) {
            self.counters.duplicates += 1;
            return Arrival::Duplicate;
        }
        self.remember(ltime, from.clone());
        self.counters.delivered += 1;
        Arrival::New
    }

    fn remember(&mut self, ltime: u64, from: MemberName) {
        self.seen.insert((ltime, from));
        // Everything more than a window behind the clock is too old; and
        // the set never holds more than a window's worth of entries.
        let behind = self.clock.saturating_sub(self.window as u64);
        if behind > self.floor {
            self.floor = behind;
        }
        while self.seen.len() > self.window {
            if let Some((t, _)) = self.seen.pop_first() {
                self.floor = self.floor.max(t.saturating_add(1));
            }
        }
        while self.seen.first().is_some_and(|(t, _)| *t < self.floor) {
            self.seen.pop_first();
        }
        debug_assert!(self.seen.len() <= self.window, "the deduplication set stays within its window");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::config::Config;

    fn name(s: &str) -> MemberName {
        MemberName::new(s).unwrap()
    }

    #[test]
    fn a_broadcast_is_new_once_and_the_clock_moves_past_it() {
        let mut u = Lamport::new(Config::lan().broadcast_window);
        assert_eq!(u.arrive(7, &name("a")), Arrival::New);
        assert_eq!(u.arrive(7, &name("a")), Arrival::Duplicate);
        assert_eq!(u.arrive(7, &name("b")), Arrival::New);
        assert_eq!(u.clock(), 8);
        assert_eq!(u.stamp(&name("me")), 8);
        assert_eq!(u.arrive(8, &name("me")), Arrival::Duplicate);
    }

    #[test]
    fn a_forged_time_cannot_run_the_clock_out() {
        let mut u = Lamport::new(Config::lan().broadcast_window);
        assert_eq!(u.arrive(u64::MAX - 1, &name("x")), Arrival::TooFar);
        assert_eq!(u.clock(), 0, "the clock did not move");
        assert_eq!(u.arrive(MAX_LEAP, &name("x")), Arrival::New);
        assert_eq!(u.clock(), MAX_LEAP + 1);
        assert_eq!(u.arrive(3 * MAX_LEAP, &name("x")), Arrival::TooFar);
        assert_eq!(u.counters.too_far, 2);
    }

    #[test]
    fn the_window_bounds_memory_and_old_broadcasts_are_refused() {
        let mut u = Lamport::new(16);
        for t in 0..100 {
            assert_eq!(u.arrive(t, &name("a")), Arrival::New);
            assert!(u.seen.len() <= 16);
        }
        assert_eq!(u.arrive(50, &name("a")), Arrival::TooOld);
        assert_eq!(u.arrive(99, &name("a")), Arrival::Duplicate);
        // Many senders at one time: the set stays bounded, and what it
        // forgot is refused rather than delivered twice.
        let mut u = Lamport::new(16);
        for i in 0..40 {
            u.arrive(5, &name(&alloc::format!("m{i}")));
        }
        assert!(u.seen.len() <= 16);
        assert_eq!(u.arrive(5, &name("m0")), Arrival::TooOld);
    }
}
