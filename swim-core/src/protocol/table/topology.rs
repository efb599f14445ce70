//! Topology-aware probing: probe the members that are near, and ask the
//! far ones to probe indirectly.
//!
//! In a cluster spread over regions, SWIM's uniform choice sends most
//! probes across regions, where round trips are long and links are the
//! first to fail. Probing near members keeps direct probes (and their
//! piggybacked gossip) short; a far member is still probed every
//! `far_every` probes, so a member alone in its region is watched too; and
//! a failed near probe is checked through members of other regions, whose
//! paths to the target do not share our local trouble.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::protocol::coordinates::coordinate::Coordinate;
use crate::protocol::table::record::MemberView;
use crate::protocol::table::{MemberKey, ProbeSelector, RoundRobin};
use crate::util::rng::Random;

/// How far a member is from us, in the application's units (regions
/// apart, a round-trip class, ...).
type Distance = Box<dyn Fn(&MemberView<'_>) -> u32 + Send>;

/// What makes a member near.
enum Near {
    /// The application's distance, at most a radius.
    Distance { distance: Distance, radius: u32 },
    /// The round trip our coordinates estimate, within a radius drawn from
    /// the estimates themselves (see [`Topology::by_round_trip`]).
    RoundTrip,
}

/// A [`ProbeSelector`] that probes near members in randomized round-robin,
/// one far member every `far_every` probes, and asks helpers for indirect
/// probes where they help most.
///
/// Near is either what the application says ([`Topology::new`]: a distance
/// over metadata, at most a radius; far members are the helpers) or what
/// the network coordinates say ([`Topology::by_round_trip`]: no distance to
/// write; helpers near the target).
///
/// ```
/// use lapswim_core::{MemberView, Topology};
/// // Metadata "region=<r>": members of our own region are near.
/// let ours = b"region=eu".to_vec();
/// let selector = Topology::new(move |m: &MemberView<'_>| u32::from(m.meta != ours.as_slice()), 0);
/// # let _ = selector;
/// // Or let the coordinates tell.
/// let selector = Topology::by_round_trip();
/// # let _ = selector;
/// ```
pub struct Topology {
    near_by: Near,
    far_every: u32,
    near: RoundRobin,
    far: RoundRobin,
    /// Whether each member placed so far is far (kept to the live ones at
    /// each new round).
    is_far: BTreeMap<MemberKey, bool>,
    /// The far members of the current round, for helpers.
    far_members: Vec<MemberKey>,
    /// Near probes handed out since the last far one.
    since_far: u32,
    /// Whether any live member is near.
    any_near: bool,
    /// Choices since the last review (by round trip).
    since_review: u32,
    /// The coordinates of the last review, by member, for helpers.
    known: Vec<(MemberKey, Coordinate)>,
}

impl core::fmt::Debug for Topology {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Topology")
            .field("by_round_trip", &matches!(self.near_by, Near::RoundTrip))
            .field("far_every", &self.far_every)
            .field("far", &self.far_members.len())
            .finish_non_exhaustive()
    }
}

/// Near probes between two far ones, by default.
pub const DEFAULT_FAR_EVERY: u32 = 8;

/// Choices between two reviews by round trip: a review is O(n log n), so
/// at one probe a period it costs little even at 10,000 members.
const REVIEW_EVERY: u32 = 32;

/// By round trip, near is within twice the estimate at this quantile (in
/// per mille) of all estimates, and at least 2 ms beyond it: the nearest
/// tenth sets the scale.
const NEAR_QUANTILE: usize = 100;
const NEAR_SLACK_US: u64 = 2_000;

/// Candidates weighed per helper wanted, by round trip.
const HELPER_CANDIDATES: usize = 8;

impl Topology {
    fn with(near_by: Near) -> Self {
        Topology {
            near_by,
            far_every: DEFAULT_FAR_EVERY,
            near: RoundRobin::default(),
            far: RoundRobin::default(),
            is_far: BTreeMap::new(),
            far_members: Vec::new(),
            since_far: 0,
            any_near: false,
            since_review: 0,
            known: Vec::new(),
        }
    }

    /// Members at most `radius` away by `distance` are near.
    pub fn new(distance: impl Fn(&MemberView<'_>) -> u32 + Send + 'static, radius: u32) -> Self {
        Topology::with(Near::Distance { distance: Box::new(distance), radius })
    }

    /// Near and far from the network coordinates (`Config::coordinates`),
    /// with no distance to write: a member is near when the round trip our
    /// coordinates estimate to it is within twice that of the nearest
    /// tenth of the members (and 2 ms beyond it); members with no estimate
    /// yet count as near, so they are probed and placed. Members are
    /// placed again every 32 choices, without breaking the round: every
    /// member is still probed within a round of its lane. Indirect probes go to members
    /// whose coordinates are near the target's. In a network without
    /// shape (every round trip alike) every member is near: the default
    /// round-robin.
    pub fn by_round_trip() -> Self {
        Topology::with(Near::RoundTrip)
    }

    /// Probes a far member once every `n` near probes (`0`: only when no
    /// member is near).
    pub fn with_far_every(mut self, n: u32) -> Self {
        self.far_every = n;
        self
    }

    fn far_now(&self, id: MemberKey) -> bool {
        self.is_far.get(&id).copied().unwrap_or(false)
    }

    /// Places `id` in the lane it now belongs to, if it is not there.
    fn place(&mut self, id: MemberKey, far: bool, rng: &mut dyn Random) {
        if self.is_far.insert(id, far) == Some(far) {
            return;
        }
        // The old lane skips it from now on; the new one takes it in this
        // round, so its wait stays bounded.
        if far {
            self.far.add(id, rng);
            self.far_members.push(id);
        } else {
            self.near.add(id, rng);
            self.any_near = true;
        }
    }
}

impl ProbeSelector for Topology {
    fn insert(&mut self, id: MemberKey, member: &MemberView<'_>, rng: &mut dyn Random) {
        let far = match &self.near_by {
            Near::Distance { distance, radius } => distance(member) > *radius,
            // Placed at the next review; probed as near until then.
            Near::RoundTrip => false,
        };
        self.is_far.remove(&id);
        self.place(id, far, rng);
    }

    fn next(&mut self) -> Option<MemberKey> {
        self.since_review = self.since_review.saturating_add(1);
        if self.far_every > 0 && self.since_far >= self.far_every {
            self.since_far = 0;
            while let Some(id) = self.far.next() {
                if self.far_now(id) {
                    return Some(id);
                }
            }
        }
        while let Some(id) = self.near.next() {
            if !self.far_now(id) {
                self.since_far += 1;
                return Some(id);
            }
        }
        // No near member left this round: a member alone in its region
        // still probes (the far ones), and is probed by them this way.
        if self.any_near {
            return None;
        }
        while let Some(id) = self.far.next() {
            if self.far_now(id) {
                return Some(id);
            }
        }
        None
    }

    fn reset(&mut self, live: &[MemberKey], rng: &mut dyn Random) {
        let (mut near, mut far) = (Vec::new(), Vec::new());
        for &id in live {
            // Every live member was placed by `insert`; one that was not is
            // probed as a near one.
            if self.far_now(id) { far.push(id) } else { near.push(id) }
        }
        let mut sorted = live.to_vec();
        sorted.sort_unstable();
        self.is_far.retain(|id, _| sorted.binary_search(id).is_ok());
        self.any_near = !near.is_empty();
        self.near.reset(&near, rng);
        // The far round goes on where it was, so every far member gets its
        // turn however many near rounds pass.
        if self.far.is_over() {
            self.far.reset(&far, rng);
        }
        self.far_members = far;
    }

    fn helpers(&mut self, target: MemberKey, k: usize, rng: &mut dyn Random, out: &mut Vec<MemberKey>) {
        if matches!(self.near_by, Near::RoundTrip) {
            return self.helpers_near(target, k, rng, out);
        }
        let n = self.far_members.len();
        if n == 0 {
            return;
        }
        for _ in 0..4 * k {
            if out.len() == k {
                break;
            }
            let Some(&id) = self.far_members.get(rng.below(n)) else { continue };
            if id != target && !out.contains(&id) {
                out.push(id);
            }
        }
    }

    fn wants_review(&self) -> bool {
        matches!(self.near_by, Near::RoundTrip) && self.since_review >= REVIEW_EVERY
    }

    fn review(&mut self, live: &[(MemberKey, MemberView<'_>)], rng: &mut dyn Random) {
        self.since_review = 0;
        let mut rtts: Vec<u64> = live.iter().filter_map(|(_, v)| v.rtt).map(|d| d.as_micros() as u64).collect();
        self.known.clear();
        self.known.extend(live.iter().filter_map(|(id, v)| Some((*id, v.coordinate?))));
        self.known.sort_unstable_by_key(|(id, _)| *id);
        if rtts.is_empty() {
            return;
        }
        rtts.sort_unstable();
        let scale = rtts.get(rtts.len() * NEAR_QUANTILE / 1000).copied().unwrap_or(0);
        let radius = (2 * scale).max(scale + NEAR_SLACK_US);
        for (id, v) in live {
            let far = v.rtt.is_some_and(|d| d.as_micros() as u64 > radius);
            self.place(*id, far, rng);
        }
        let is_far = &self.is_far;
        self.far_members.retain(|id| is_far.get(id).copied().unwrap_or(false));
        self.far_members.sort_unstable();
        self.far_members.dedup();
    }
}

impl Topology {
    /// Up to `k` helpers whose coordinates are nearest the target's, among
    /// a random sample; none (the table picks at random) while the
    /// target's coordinate is unknown.
    fn helpers_near(&mut self, target: MemberKey, k: usize, rng: &mut dyn Random, out: &mut Vec<MemberKey>) {
        let Ok(at) = self.known.binary_search_by_key(&target, |(id, _)| *id) else { return };
        let Some(&(_, theirs)) = self.known.get(at) else { return };
        let n = self.known.len();
        let mut candidates: Vec<(core::time::Duration, MemberKey)> = Vec::new();
        for _ in 0..HELPER_CANDIDATES * k {
            let Some(&(id, c)) = self.known.get(rng.below(n)) else { continue };
            if id != target && !candidates.iter().any(|(_, other)| *other == id) {
                candidates.push((c.estimate_rtt(&theirs), id));
            }
        }
        candidates.sort_unstable();
        out.extend(candidates.into_iter().take(k).map(|(_, id)| id));
    }
}
