//! A member's state and the SWIM precedence rule between updates.

use alloc::vec::Vec;
use core::net::SocketAddr;

use crate::name::MemberName;
use crate::time::Instant;

/// What a member is believed to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum MemberState {
    /// Answering probes, as far as we know.
    Alive,
    /// Missed a probe; will be declared dead unless it refutes in time.
    Suspect,
    /// Declared failed.
    Dead,
    /// Left the cluster gracefully.
    Left,
}

impl MemberState {
    /// Alive or suspect: still probed and still counted in `n`.
    pub const fn is_live(self) -> bool {
        matches!(self, MemberState::Alive | MemberState::Suspect)
    }
}

/// An update's claim about a member, ranked by [`precedes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Claim {
    /// The claimed state.
    pub state: MemberState,
    /// The incarnation the claim is about.
    pub incarnation: u32,
}

impl Claim {
    /// A claim of `state` at `incarnation`.
    pub const fn new(state: MemberState, incarnation: u32) -> Self {
        Claim { state, incarnation }
    }

    const fn rank(self) -> (u32, u8) {
        let kind = match self.state {
            MemberState::Alive => 0,
            MemberState::Suspect => 1,
            MemberState::Dead => 2,
            MemberState::Left => 3,
        };
        (self.incarnation, kind)
    }
}

/// Whether `new` overrides `old`: the SWIM precedence rule.
///
/// - `alive(i)` overrides `alive(j)`, `suspect(j)`, `dead(j)` iff `i > j`;
/// - `suspect(i)` overrides `alive(j)` iff `i >= j`, `suspect(j)` iff `i > j`;
/// - `dead(i)` overrides `alive(j)` and `suspect(j)` iff `i >= j`;
/// - a graceful `left(i)` outranks `dead(i)` so that "left" wins over
///   "failed" whatever order the two arrive in.
///
/// This is a strict total order on `(incarnation, alive < suspect < dead <
/// left)`: merging updates by keeping the greatest is idempotent and
/// independent of arrival order.
pub const fn precedes(new: Claim, old: Claim) -> bool {
    let (a, b) = (new.rank(), old.rank());
    a.0 > b.0 || (a.0 == b.0 && a.1 > b.1)
}

/// One entry of the member table.
#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub(crate) name: MemberName,
    pub(crate) addr: SocketAddr,
    pub(crate) incarnation: u32,
    pub(crate) state: MemberState,
    /// When `state` last changed (for reclaim, reaping, gossip to the dead).
    pub(crate) since: Instant,
    pub(crate) meta: Vec<u8>,
    /// Index in the table's live list while alive or suspect.
    pub(crate) live_pos: Option<u32>,
    pub(crate) suspicion: Option<alloc::boxed::Box<crate::suspicion::Suspicion>>,
}

impl Member {
    pub(crate) fn claim(&self) -> Claim {
        Claim::new(self.state, self.incarnation)
    }
}

/// A read-only view of a member, as returned by
/// [`Swim::members`](crate::Swim::members).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberView<'a> {
    /// The member's unique name.
    pub name: &'a MemberName,
    /// Where it is reachable.
    pub addr: SocketAddr,
    /// What it is believed to be.
    pub state: MemberState,
    /// Its incarnation number.
    pub incarnation: u32,
    /// Its application metadata.
    pub meta: &'a [u8],
    /// Whether this is the local member.
    pub is_local: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use MemberState::*;

    fn c(state: MemberState, inc: u32) -> Claim {
        Claim::new(state, inc)
    }

    #[test]
    fn precedence_table() {
        // (new, old, overrides?)
        let table = [
            (c(Alive, 2), c(Alive, 1), true),
            (c(Alive, 1), c(Alive, 1), false),
            (c(Alive, 0), c(Alive, 1), false),
            (c(Alive, 2), c(Suspect, 1), true),
            (c(Alive, 1), c(Suspect, 1), false),
            (c(Alive, 2), c(Dead, 1), true),
            (c(Alive, 1), c(Dead, 1), false),
            (c(Alive, 2), c(Left, 1), true),
            (c(Alive, 1), c(Left, 1), false),
            (c(Suspect, 1), c(Alive, 1), true),
            (c(Suspect, 2), c(Alive, 1), true),
            (c(Suspect, 0), c(Alive, 1), false),
            (c(Suspect, 2), c(Suspect, 1), true),
            (c(Suspect, 1), c(Suspect, 1), false),
            (c(Suspect, 1), c(Dead, 1), false),
            (c(Suspect, 2), c(Dead, 1), true),
            (c(Dead, 1), c(Alive, 1), true),
            (c(Dead, 1), c(Alive, 2), false),
            (c(Dead, 1), c(Suspect, 1), true),
            (c(Dead, 0), c(Suspect, 1), false),
            (c(Dead, 1), c(Dead, 1), false),
            (c(Dead, 1), c(Left, 1), false),
            (c(Left, 1), c(Dead, 1), true),
            (c(Left, 1), c(Alive, 1), true),
            (c(Left, 0), c(Alive, 1), false),
        ];
        for (new, old, want) in table {
            assert_eq!(precedes(new, old), want, "{new:?} over {old:?}");
        }
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn claim() -> impl Strategy<Value = Claim> {
            (prop_oneof![Just(Alive), Just(Suspect), Just(Dead), Just(Left)], 0u32..4)
                .prop_map(|(s, i)| Claim::new(s, i))
        }

        fn merge(old: Claim, new: Claim) -> Claim {
            if precedes(new, old) { new } else { old }
        }

        proptest! {
            #[test]
            fn precedence_is_a_strict_order(a in claim(), b in claim(), x in claim()) {
                // Irreflexive, asymmetric, transitive, and total on distinct claims.
                prop_assert!(!precedes(a, a));
                prop_assert!(!(precedes(a, b) && precedes(b, a)));
                if precedes(a, b) && precedes(b, x) {
                    prop_assert!(precedes(a, x));
                }
                if a != b {
                    prop_assert!(precedes(a, b) || precedes(b, a));
                }
            }

            #[test]
            fn merging_is_idempotent_and_order_independent(
                start in claim(),
                updates in proptest::collection::vec(claim(), 0..12),
                seed in any::<u64>(),
            ) {
                let forward = updates.iter().fold(start, |s, u| merge(s, *u));
                let twice = updates.iter().chain(updates.iter()).fold(start, |s, u| merge(s, *u));
                prop_assert_eq!(forward, twice);
                let mut shuffled = updates.clone();
                // A cheap deterministic permutation driven by the seed.
                let mut z = seed;
                for i in (1..shuffled.len()).rev() {
                    z = z.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    shuffled.swap(i, (z >> 33) as usize % (i + 1));
                }
                let other = shuffled.iter().fold(start, |s, u| merge(s, *u));
                prop_assert_eq!(forward, other);
            }
        }
    }
}
