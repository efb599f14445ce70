//! A member's state and the SWIM precedence rule between updates.

use core::net::SocketAddr;

use crate::util::name::MemberName;
use crate::util::time::Instant;
use crate::wire::Message;

/// What a member is believed to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
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

    /// Whether this claim is newer than `held`, the incarnation we hold for
    /// its member, by more than can happen without a forgery: more than
    /// [`INCARNATION_WINDOW`] for a suspicion, death or departure, more
    /// than twice that for an alive. The member's answer to a claim at
    /// the edge of the window lies one past it, and must still be taken
    /// by peers that never heard the claim.
    pub const fn leaps(self, held: u32) -> bool {
        let window = match self.state {
            MemberState::Alive => INCARNATION_WINDOW.saturating_mul(2),
            _ => INCARNATION_WINDOW,
        };
        newer(self.incarnation, held) && self.incarnation.wrapping_sub(held) > window
    }

    const fn kind(self) -> u8 {
        match self.state {
            MemberState::Alive => 0,
            MemberState::Suspect => 1,
            MemberState::Dead => 2,
            MemberState::Left => 3,
        }
    }
}

/// How far ahead of the incarnation we hold for a member a suspicion or
/// death about it may claim to be and still be believed; an alive may be
/// twice as far (see [`Claim::leaps`]).
///
/// Legitimate gaps are small: a member raises its own incarnation one at
/// a time (a metadata change, or a refutation one past the rumour it
/// answers, and rumours come from records its peers hold), and a peer
/// falls behind only by the changes it missed before the next full-state
/// sync repairs its table. A restarted member starts again from 0, but it
/// outbids its old record by one, so its peers see a gap of one too.
/// 2^16 changes missed between two syncs is far beyond any of these,
/// and far below half the number space, where serial comparison stops
/// telling newer from older.
pub const INCARNATION_WINDOW: u32 = 1 << 16;

/// Whether incarnation `a` is newer than `b`, in serial-number arithmetic
/// (RFC 1982): `a` is newer when it is ahead of `b` by less than half the
/// number space, so `0` is newer than `u32::MAX`. Incarnations never stop
/// at a maximum: whatever a rumour claims, the member can always answer
/// with one that is newer still.
///
/// Two incarnations exactly half the space apart (RFC 1982 leaves them
/// undefined) are ordered by value, the larger newer: every member must
/// rank them the same way, or tables that hold one and hear the other
/// would disagree for good. So for `a != b` exactly one of `newer(a, b)`
/// and `newer(b, a)` holds.
pub const fn newer(a: u32, b: u32) -> bool {
    let ahead = a.wrapping_sub(b);
    ahead != 0 && (ahead < 1 << 31 || (ahead == 1 << 31 && a > b))
}

/// Whether `new` overrides `old`: the SWIM precedence rule.
///
/// - `alive(i)` overrides `alive(j)`, `suspect(j)`, `dead(j)` iff `i > j`;
/// - `suspect(i)` overrides `alive(j)` iff `i >= j`, `suspect(j)` iff `i > j`;
/// - `dead(i)` overrides `alive(j)` and `suspect(j)` iff `i >= j`;
/// - a graceful `left(i)` outranks `dead(i)` so that "left" wins over
///   "failed" whatever order the two arrive in.
///
/// `>` between incarnations is [`newer`]. On any set of claims whose
/// incarnations lie within half the number space (2^31) of each other,
/// this is a strict total order on `(incarnation, alive < suspect < dead <
/// left)`: merging updates by keeping the greatest is idempotent and
/// independent of arrival order.
pub const fn precedes(new: Claim, old: Claim) -> bool {
    newer(new.incarnation, old.incarnation) || (new.incarnation == old.incarnation && new.kind() > old.kind())
}

/// A peer address in 16 bytes: IPv4 inline, the rarer IPv6 boxed. The
/// member table holds one per member per member, so its size counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PeerAddr {
    V4([u8; 4], u16),
    V6(alloc::boxed::Box<core::net::SocketAddrV6>),
}

impl PeerAddr {
    pub(crate) fn get(&self) -> SocketAddr {
        match self {
            PeerAddr::V4(ip, port) => SocketAddr::from((*ip, *port)),
            PeerAddr::V6(a) => SocketAddr::V6(**a),
        }
    }

    /// Whether this is `addr`, without building a `SocketAddr` (the
    /// sender check of every datagram asks).
    pub(crate) fn is(&self, addr: &SocketAddr) -> bool {
        match (self, addr) {
            (PeerAddr::V4(ip, port), SocketAddr::V4(a)) => *ip == a.ip().octets() && *port == a.port(),
            (PeerAddr::V6(ours), SocketAddr::V6(a)) => **ours == *a,
            _ => false,
        }
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(a: SocketAddr) -> Self {
        match a {
            SocketAddr::V4(v4) => PeerAddr::V4(v4.ip().octets(), v4.port()),
            SocketAddr::V6(v6) => PeerAddr::V6(alloc::boxed::Box::new(v6)),
        }
    }
}

/// A member's metadata in one pointer: most members have none (no
/// allocation), and the table holds one per member per member, so the
/// 8 bytes a boxed slice's length would take count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Meta(Option<alloc::boxed::Box<alloc::boxed::Box<[u8]>>>);

impl core::ops::Deref for Meta {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.as_deref().map_or(&[], |b| &**b)
    }
}

impl From<&[u8]> for Meta {
    fn from(bytes: &[u8]) -> Self {
        Meta((!bytes.is_empty()).then(|| alloc::boxed::Box::new(alloc::boxed::Box::from(bytes))))
    }
}

/// One entry of the member table.
#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub(crate) name: MemberName,
    pub(crate) addr: PeerAddr,
    pub(crate) incarnation: u32,
    pub(crate) state: MemberState,
    /// When `state` last changed (for reclaim, reaping, gossip to the dead).
    pub(crate) since: Instant,
    pub(crate) meta: Meta,
    /// The incarnation `meta` (and `addr`) were announced at: an alive of
    /// a newer one brings newer data even when its state claim loses (to
    /// a suspicion of the same incarnation, say), so the data a member
    /// ends with does not depend on the order updates arrived in.
    pub(crate) data_incarnation: u32,
    /// Index in the table's live list, plus one, while alive or suspect
    /// (`NonZeroU32` keeps the option at four bytes).
    pub(crate) live_pos: Option<core::num::NonZeroU32>,
}

impl Member {
    pub(crate) fn claim(&self) -> Claim {
        Claim::new(self.state, self.incarnation)
    }

    /// This member's state as an update message, for a table or a query
    /// answer. `suspect_from` names the accuser of a suspicion, `declarer`
    /// who declared a death; a departure names the member itself.
    pub(crate) fn record<'a>(&'a self, suspect_from: &'a str, declarer: &'a str) -> Message<'a> {
        let (incarnation, name) = (self.incarnation, self.name.as_str());
        match self.state {
            MemberState::Alive => Message::Alive { incarnation, name, addr: self.addr.get(), meta: &self.meta },
            MemberState::Suspect => Message::Suspect { incarnation, name, from: suspect_from },
            MemberState::Dead => Message::Dead { incarnation, name, from: declarer },
            MemberState::Left => Message::Dead { incarnation, name, from: name },
        }
    }

    pub(crate) fn view(&self) -> MemberView<'_> {
        MemberView {
            name: &self.name,
            addr: self.addr.get(),
            state: self.state,
            incarnation: self.incarnation,
            meta: &self.meta,
            is_local: false,
            coordinate: None,
            rtt: None,
        }
    }
}

/// A read-only view of a member, as returned by
/// [`Swim::members`](crate::Swim::members).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
    /// Its network coordinate, if we hold one (docs/protocol.md §6.13).
    pub coordinate: Option<crate::Coordinate>,
    /// The round trip to it: the median of our last probes of it, or
    /// what the coordinates estimate once both ends are sure of theirs;
    /// `None` until then (and with coordinates off).
    pub rtt: Option<core::time::Duration>,
}

impl MemberView<'_> {
    /// The member's tags: empty when its metadata is not a tag encoding
    /// (raw bytes from [`Input::SetMeta`](crate::Input::SetMeta)).
    pub fn tags(&self) -> crate::api::Tags {
        crate::api::Tags::decode(self.meta).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MemberState::*;

    fn c(state: MemberState, inc: u32) -> Claim {
        Claim::new(state, inc)
    }

    #[test]
    fn compact_addresses_round_trip() {
        for a in ["10.1.2.3:7946", "[2001:db8::1]:9000", "[::1]:1"] {
            let a: SocketAddr = a.parse().unwrap();
            assert_eq!(PeerAddr::from(a).get(), a);
        }
        assert_eq!(core::mem::size_of::<PeerAddr>(), 16);
    }

    #[test]
    fn metadata_takes_one_pointer_and_no_allocation_when_empty() {
        assert_eq!(core::mem::size_of::<Meta>(), 8);
        assert_eq!(&*Meta::from(&b""[..]), b"");
        assert!(Meta::from(&b""[..]).0.is_none());
        assert_eq!(&*Meta::from(&b"rack=a"[..]), b"rack=a");
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
            // Serial arithmetic: past the maximum, counting goes on from 0.
            (c(Alive, 0), c(Suspect, u32::MAX), true),
            (c(Suspect, u32::MAX), c(Alive, 0), false),
            (c(Alive, 1 << 30), c(Alive, 0), true),
        ];
        for (new, old, want) in table {
            assert_eq!(precedes(new, old), want, "{new:?} over {old:?}");
        }
    }

    #[test]
    fn incarnations_half_the_space_apart_are_ordered_by_value() {
        for (low, high) in [(0, 1 << 31), (5, (1 << 31) + 5), (0x7fff_ffff, u32::MAX)] {
            assert!(newer(high, low) && !newer(low, high), "{high} over {low}");
            // Every member ranks the pair alike, so tables converge on one.
            assert!(precedes(c(Alive, high), c(Alive, low)) && !precedes(c(Alive, low), c(Alive, high)));
        }
        // Elsewhere serial arithmetic holds either side of the middle.
        assert!(newer((1 << 31) - 1, 0) && !newer(0, (1 << 31) - 1));
        assert!(newer(0, (1 << 31) + 1) && !newer((1 << 31) + 1, 0));
        assert!(!newer(7, 7));
    }

    #[test]
    fn claims_past_the_window_leap() {
        let w = INCARNATION_WINDOW;
        for held in [0, 5, u32::MAX - 3, 1 << 31] {
            for state in [Suspect, Dead, Left] {
                assert!(!c(state, held.wrapping_add(w)).leaps(held));
                assert!(c(state, held.wrapping_add(w + 1)).leaps(held));
            }
            assert!(!c(Alive, held.wrapping_add(2 * w)).leaps(held));
            assert!(c(Alive, held.wrapping_add(2 * w + 1)).leaps(held));
            for state in [Alive, Suspect, Dead, Left] {
                // Half the space ahead leaps whatever the kind; older
                // claims and the record itself never do.
                assert!(c(state, held.wrapping_add((1 << 31) - 1)).leaps(held));
                assert!(!c(state, held.wrapping_sub(w + 1)).leaps(held));
                assert!(!c(state, held).leaps(held));
            }
        }
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn claim() -> impl Strategy<Value = Claim> {
            // A window of incarnations that may straddle the wrap-around.
            (
                prop_oneof![Just(Alive), Just(Suspect), Just(Dead), Just(Left)],
                0u32..4,
                prop_oneof![Just(0u32), Just(u32::MAX - 1)],
            )
                .prop_map(|(s, i, base)| Claim::new(s, base.wrapping_add(i)))
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
            fn newer_is_asymmetric_and_total_on_any_pair(
                a in any::<u32>(),
                apart in prop_oneof![any::<u32>(), Just(1u32 << 31), Just(0u32)],
            ) {
                let b = a.wrapping_add(apart);
                prop_assert!(!(newer(a, b) && newer(b, a)));
                prop_assert_eq!(a != b, newer(a, b) || newer(b, a));
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
