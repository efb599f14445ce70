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

use crate::protocol::table::record::MemberView;
use crate::protocol::table::{MemberKey, ProbeSelector, RoundRobin};
use crate::util::rng::Random;

/// How far a member is from us, in the application's units (regions
/// apart, a round-trip class, ...).
type Distance = Box<dyn Fn(&MemberView<'_>) -> u32 + Send>;

/// A [`ProbeSelector`] that probes near members (distance at most a
/// radius) in randomized round-robin, one far member every `far_every`
/// probes, and asks far members for indirect probes.
///
/// ```
/// use lapswim_core::{MemberView, Topology};
/// // Metadata "region=<r>": members of our own region are near.
/// let ours = b"region=eu".to_vec();
/// let selector = Topology::new(move |m: &MemberView<'_>| u32::from(m.meta != ours.as_slice()), 0);
/// # let _ = selector;
/// ```
pub struct Topology {
    distance: Distance,
    radius: u32,
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
}

impl core::fmt::Debug for Topology {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Topology")
            .field("radius", &self.radius)
            .field("far_every", &self.far_every)
            .field("far", &self.far_members.len())
            .finish_non_exhaustive()
    }
}

/// Near probes between two far ones, by default.
pub const DEFAULT_FAR_EVERY: u32 = 8;

impl Topology {
    /// Members at most `radius` away by `distance` are near.
    pub fn new(distance: impl Fn(&MemberView<'_>) -> u32 + Send + 'static, radius: u32) -> Self {
        Topology {
            distance: Box::new(distance),
            radius,
            far_every: DEFAULT_FAR_EVERY,
            near: RoundRobin::default(),
            far: RoundRobin::default(),
            is_far: BTreeMap::new(),
            far_members: Vec::new(),
            since_far: 0,
            any_near: false,
        }
    }

    /// Probes a far member once every `n` near probes (`0`: only when no
    /// member is near).
    pub fn with_far_every(mut self, n: u32) -> Self {
        self.far_every = n;
        self
    }
}

impl ProbeSelector for Topology {
    fn insert(&mut self, id: MemberKey, member: &MemberView<'_>, rng: &mut dyn Random) {
        let far = (self.distance)(member) > self.radius;
        self.is_far.insert(id, far);
        if far {
            self.far.add(id, rng);
            self.far_members.push(id);
        } else {
            self.near.add(id, rng);
            self.any_near = true;
        }
    }

    fn next(&mut self) -> Option<MemberKey> {
        if self.far_every > 0 && self.since_far >= self.far_every {
            self.since_far = 0;
            if let Some(id) = self.far.next() {
                return Some(id);
            }
        }
        if let Some(id) = self.near.next() {
            self.since_far += 1;
            return Some(id);
        }
        // No near member left this round: a member alone in its region
        // still probes (the far ones), and is probed by them this way.
        if self.any_near { None } else { self.far.next() }
    }

    fn reset(&mut self, live: &[MemberKey], rng: &mut dyn Random) {
        let (mut near, mut far) = (Vec::new(), Vec::new());
        for &id in live {
            // Every live member was placed by `insert`; one that was not is
            // probed as a near one.
            if self.is_far.get(&id).copied().unwrap_or(false) { far.push(id) } else { near.push(id) }
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
}
