//! Network coordinates: every member places itself in a space where the
//! distance between two members estimates their round trip (Vivaldi, as
//! serf runs it), from the round trips of its own probes and the
//! coordinates their targets send back.
//!
//! The exchange (docs/protocol.md §6.13): a probe that wants the target's
//! coordinate carries the prober's own, and the target answers with its
//! own on the ack. A prober wants it when it holds none for the target, or
//! the one it holds is older than `coordinate_refresh` (sooner while the
//! target was still unsure of it). Every direct ack is a round trip: with
//! the coordinate on the ack, or the one held, it moves ours.
//!
//! Invariants: a peer's coordinate is taken only from a live member at
//! its address, and only if a network could have it (otherwise counted
//! and dropped); held coordinates are bounded by the member table and
//! dropped with their member.

pub(crate) mod coordinate;
pub(crate) mod vivaldi;

use alloc::collections::BTreeMap;

use crate::api::config::Config;
use crate::protocol::coordinates::coordinate::Coordinate;
use crate::protocol::coordinates::vivaldi::{Params, Vivaldi};
use crate::protocol::table::{MemberId, Members};
use crate::util::rng::Random;
use crate::util::time::{Duration, Instant};

/// The most round trips per peer the latency filter keeps.
pub(crate) const MAX_FILTER: usize = 4;

/// A peer whose error estimate is above this is still placing itself:
/// its coordinate is used for less than `coordinate_refresh`, by the
/// square of the ratio (a quarter as long at twice this error). Ours must
/// be below it to call a held coordinate wrong.
const SETTLED: f64 = 0.2;

/// A coordinate whose error estimate is above this places nothing: its
/// member was still placing itself.
const UNSURE: f64 = 0.5;

/// A held coordinate that predicts a round trip off by more than this
/// (relative) is asked for again at the next probe.
const WRONG: f64 = 0.5;

/// Periods between sweeps of the coordinates of members gone.
const SWEEP_PERIODS: u32 = 64;

/// What we hold of one peer: about 50 bytes, for every member whose
/// coordinate we hold.
#[derive(Clone, Copy, Debug)]
struct Peer {
    coordinate: Coordinate,
    learned: Instant,
    /// Its last round trips, in ms, for the latency filter.
    recent: [u16; MAX_FILTER],
    filled: u8,
    next: u8,
    /// It predicted a round trip badly: ask for it again.
    stale: bool,
}

impl Peer {
    fn new(coordinate: Coordinate, learned: Instant) -> Peer {
        Peer { coordinate, learned, recent: [0; MAX_FILTER], filled: 0, next: 0, stale: false }
    }

    /// The median of the round trips held, if any.
    fn median(&self) -> Option<u16> {
        let n = usize::from(self.filled);
        let mut window = self.recent;
        let window = window.get_mut(..n)?;
        window.sort_unstable();
        window.get(n / 2).copied()
    }

    /// Adds a round trip; returns the median of the filter.
    fn filtered(&mut self, ms: u16, size: usize) -> u16 {
        let size = size.clamp(1, MAX_FILTER);
        if let Some(slot) = self.recent.get_mut(usize::from(self.next) % size) {
            *slot = ms;
        }
        self.next = ((usize::from(self.next) + 1) % size) as u8;
        self.filled = (usize::from(self.filled) + 1).min(size) as u8;
        self.median().unwrap_or(ms)
    }
}

/// Counters of the coordinates.
#[derive(Clone, Debug, Default)]
pub(crate) struct Counters {
    pub(crate) updates: u64,
    pub(crate) rejected: u64,
    pub(crate) sent: u64,
}

/// The local coordinate and the ones held of peers.
#[derive(Debug)]
pub(crate) struct Coordinates {
    on: bool,
    refresh: Duration,
    filter: usize,
    vivaldi: Vivaldi,
    own: Coordinate,
    peers: BTreeMap<MemberId, Peer>,
    periods: u32,
    pub(crate) counters: Counters,
}

impl Coordinates {
    pub(crate) fn new(config: &Config) -> Coordinates {
        let vivaldi = Vivaldi::new(Params::new(config));
        Coordinates {
            on: config.coordinates,
            refresh: config.coordinate_refresh,
            filter: config.vivaldi_latency_filter as usize,
            own: Coordinate::from_point(&vivaldi.point),
            vivaldi,
            peers: BTreeMap::new(),
            periods: 0,
            counters: Counters::default(),
        }
    }

    /// Our coordinate, if coordinates are on.
    pub(crate) fn own(&self) -> Option<Coordinate> {
        self.on.then_some(self.own)
    }

    /// The coordinate held for `id`.
    pub(crate) fn of(&self, id: MemberId) -> Option<Coordinate> {
        self.peers.get(&id).map(|p| p.coordinate)
    }

    /// The round trip to `id` as well as we know it: the median of our
    /// last probes of it if we probed it, else what the coordinates
    /// estimate if both ends were sure of theirs (a coordinate learnt
    /// while its member was still placing itself says little).
    pub(crate) fn round_trip(&self, id: MemberId) -> Option<core::time::Duration> {
        let own = self.own()?;
        let peer = self.peers.get(&id)?;
        if let Some(ms) = peer.median() {
            return Some(core::time::Duration::from_millis(u64::from(ms)));
        }
        let sure = own.error() <= UNSURE && peer.coordinate.error() <= UNSURE;
        sure.then(|| own.estimate_rtt(&peer.coordinate))
    }

    /// Whether a probe of `id` now should carry our coordinate and ask
    /// for the target's.
    pub(crate) fn wants(&self, now: Instant, id: MemberId) -> bool {
        if !self.on {
            return false;
        }
        let Some(Peer { coordinate: c, learned, stale, .. }) = self.peers.get(&id) else { return true };
        if *stale {
            return true;
        }
        let age = now.saturating_duration_since(*learned).as_millis() as f64;
        let ratio = SETTLED / c.error().max(SETTLED);
        let settled = ratio * ratio;
        age >= self.refresh.as_millis() as f64 * settled
    }

    /// A coordinate arrived from member `id` (the live member at the
    /// sender's address).
    pub(crate) fn learn(&mut self, now: Instant, id: MemberId, c: Coordinate) {
        if !self.on {
            return;
        }
        self.peers
            .entry(id)
            .and_modify(|p| {
                p.coordinate = c;
                p.learned = now;
                p.stale = false;
            })
            .or_insert_with(|| Peer::new(c, now));
    }

    /// Checks a peer's coordinate from the wire, counting what is refused.
    pub(crate) fn accept(&mut self, vec: &[u8], height: u32, error: u8, adjustment: i32) -> Option<Coordinate> {
        if !self.on {
            return None;
        }
        match Coordinate::from_wire(vec, height, error, adjustment) {
            Ok(c) => Some(c),
            Err(_) => {
                self.counters.rejected += 1;
                None
            }
        }
    }

    /// A direct round trip of `ms` to `id`: with its coordinate (from the
    /// ack, or the one held) it moves ours.
    pub(crate) fn observe(&mut self, id: MemberId, ms: u64, rng: &mut dyn Random) {
        if !self.on {
            return;
        }
        let Some(peer) = self.peers.get_mut(&id) else { return };
        let theirs = peer.coordinate;
        let ms = peer.filtered(u16::try_from(ms).unwrap_or(u16::MAX), self.filter);
        // The clock counts whole milliseconds: a round trip read as 0 was
        // somewhere below one.
        let rtt = if ms == 0 { 0.0005 } else { f64::from(ms) / 1000.0 };
        let theirs = theirs.point();
        // Only a settled coordinate of ours can tell a wrong one of theirs.
        let ours = &self.vivaldi.point;
        peer.stale = ours.error < SETTLED && (ours.estimate(&theirs) - rtt).abs() > WRONG * rtt;
        if self.vivaldi.observe(&theirs, rtt, rng) {
            self.own = Coordinate::from_point(&self.vivaldi.point);
            self.counters.updates += 1;
        }
    }

    /// Drops what we hold of members no longer in the table, every
    /// [`SWEEP_PERIODS`] probe periods.
    pub(crate) fn on_period(&mut self, members: &Members) {
        self.periods = self.periods.wrapping_add(1);
        if self.periods.is_multiple_of(SWEEP_PERIODS) {
            self.peers.retain(|id, _| members.get(*id).is_some());
        }
    }

    /// A coordinate of ours was sent.
    pub(crate) fn sent(&mut self) {
        self.counters.sent += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latency_filter_is_a_running_median() {
        let c = Coordinate::new([0.0; 8], 0.0, 1.5, 0.0).unwrap();
        let mut p = Peer::new(c, Instant::ZERO);
        assert_eq!(p.filtered(10, 3), 10);
        assert_eq!(p.filtered(100, 3), 100);
        assert_eq!(p.filtered(12, 3), 12);
        assert_eq!(p.filtered(11, 3), 12);
        assert_eq!(p.filtered(500, 3), 12);
        assert_eq!(p.filtered(7, 1), 7);
        let mut q = Peer::new(c, Instant::ZERO);
        for ms in 0..100 {
            assert!(q.filtered(ms, 99) <= ms);
        }
    }
}
