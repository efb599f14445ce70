//! The member table: a slab of members with a name index, the list of live
//! members for random choice, and the randomized round-robin probe order.

pub(crate) mod paged;
pub(crate) mod record;
pub(crate) mod topology;

use alloc::vec::Vec;
use core::hash::BuildHasher;

use foldhash::fast::FixedState;
use hashbrown::HashTable;

use crate::protocol::summary::{self, MAX_BUCKETS};
use crate::protocol::table::paged::Paged;
use crate::protocol::table::record::{Claim, Member, MemberState, MemberView};
use crate::util::rng::Random;

/// A stable handle on a table slot. The generation tells a reused slot
/// from the member that held it before, so stale handles (in timers, in
/// probes) resolve to nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct MemberId {
    index: u32,
    generation: u32,
}

impl MemberId {
    /// The update-queue key of this member.
    pub(crate) fn queue_key(self) -> crate::protocol::retransmit::QueueKey {
        crate::protocol::retransmit::QueueKey::Member(self.index)
    }
}

#[derive(Clone, Debug)]
struct Slot {
    generation: u32,
    member: Option<Member>,
}

/// Chooses the next member to probe, and whom to ask for indirect probes.
/// The default is SWIM's randomized round-robin with random helpers;
/// [`Topology`](crate::Topology) probes near members and asks far ones.
pub trait ProbeSelector {
    /// A member became probe-able (`member`: its name, address and
    /// metadata): place it in the order.
    fn insert(&mut self, id: MemberKey, member: &MemberView<'_>, rng: &mut dyn Random);
    /// The next candidate, or `None` when a round has ended (the table then
    /// calls [`ProbeSelector::reset`] with every live member). Members no
    /// longer live are skipped by the table.
    fn next(&mut self) -> Option<MemberKey>;
    /// Starts a new round over `live`.
    fn reset(&mut self, live: &[MemberKey], rng: &mut dyn Random);
    /// Up to `k` members to ask for indirect probes of `target`, into
    /// `out`. The table drops any that are not live (or are the target)
    /// and tops the rest up with random live members; the default leaves
    /// the whole choice to it.
    fn helpers(&mut self, target: MemberKey, k: usize, rng: &mut dyn Random, out: &mut Vec<MemberKey>) {
        let _ = (target, k, rng, out);
    }
    /// Whether the selector wants to see every live member again, with
    /// what our coordinates now say of it, before its next choice: asked
    /// before every choice. The default never does.
    fn wants_review(&self) -> bool {
        false
    }
    /// Every live member as it is now ([`MemberView::coordinate`] and
    /// [`MemberView::rtt`] filled in), after [`ProbeSelector::wants_review`]
    /// said so. The default ignores it.
    fn review(&mut self, live: &[(MemberKey, MemberView<'_>)], rng: &mut dyn Random) {
        let _ = (live, rng);
    }
}

/// An opaque member handle, as seen by a [`ProbeSelector`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberKey(MemberId);

/// SWIM §4.3: probe members in a shuffled order, reshuffle after each full
/// round, and insert newcomers at a random position of the round. Every
/// live member is probed once per round, so detection time is bounded.
#[derive(Clone, Debug, Default)]
pub struct RoundRobin {
    order: Vec<MemberKey>,
    pos: usize,
}

impl RoundRobin {
    /// Places `id` among the members not yet probed this round, so the
    /// newcomer is probed this round; the displaced one moves to the end
    /// and is too.
    pub fn add(&mut self, id: MemberKey, rng: &mut dyn Random) {
        self.order.push(id);
        let last = self.order.len() - 1;
        let at = self.pos + rng.below(self.order.len() - self.pos);
        self.order.swap(at, last);
    }

    /// Makes room for `additional` more members (a table seeded whole).
    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.order.reserve_exact(additional);
    }

    /// Whether this round has handed out every member.
    pub fn is_over(&self) -> bool {
        self.pos >= self.order.len()
    }
}

impl ProbeSelector for RoundRobin {
    fn insert(&mut self, id: MemberKey, _: &MemberView<'_>, rng: &mut dyn Random) {
        self.add(id, rng);
    }

    fn next(&mut self) -> Option<MemberKey> {
        let id = self.order.get(self.pos).copied()?;
        self.pos += 1;
        Some(id)
    }

    fn reset(&mut self, live: &[MemberKey], rng: &mut dyn Random) {
        self.order.clear();
        self.order.extend_from_slice(live);
        rng.shuffle(&mut self.order);
        self.pos = 0;
    }
}

/// Random draws per member wanted before [`Members::random_live`] falls
/// back to a scan. Rejection sampling is O(k) when the cluster is much
/// larger than k, as it usually is; when most draws are refused (k close
/// to the live count, or long exclusions) the scan from a random offset
/// keeps the worst case O(n).
const SAMPLE_TRIES_PER_PICK: usize = 4;

pub(crate) struct Members {
    /// In pages, so a large table does not hold up to twice its size in
    /// spare capacity: the table is one entry per member per member.
    slots: Paged<Slot>,
    free: Vec<u32>,
    /// Slot handles by the hash of their member's name (the names live in
    /// the slots). Never iterated, so its order cannot leak into behaviour;
    /// the seed comes from the injected generator, so peers cannot choose
    /// names that collide.
    by_name: HashTable<u32>,
    /// Slot handles by the hash of their member's address, so a datagram's
    /// sender can be told from a stranger in O(1). Several members may
    /// share an address (a restart, a reclaimed name); lookups check.
    by_addr: HashTable<u32>,
    hasher: FixedState,
    /// Slots of the alive and suspect members (never the local one), in no
    /// useful order.
    live: Vec<u32>,
    probe: Option<alloc::boxed::Box<dyn ProbeSelector + Send>>,
    default_probe: RoundRobin,
    scratch: Vec<MemberKey>,
    /// The member the last [`Members::find`] found: news of a failure
    /// arrives as many copies about one member, and this spares each copy
    /// the two cold reads of the name index.
    last_found: Option<MemberId>,
    /// Every record's hash summed (XOR) in the most buckets a summary has,
    /// kept as claims change: a sync's summary then folds 256 numbers
    /// instead of hashing the whole table (docs/protocol.md §6.5).
    sums: Sums,
}

/// Record hashes summed by bucket, out of [`MAX_BUCKETS`].
type Sums = [u32; MAX_BUCKETS];

/// Adds (or, being XOR, takes away) `name`'s record at `claim` in `sums`.
fn account(sums: &mut Sums, name: &str, claim: Claim) {
    let h = summary::name_hash(name);
    if let Some(b) = sums.get_mut(summary::bucket_of(h, MAX_BUCKETS)) {
        *b ^= summary::record_hash(h, claim) as u32;
    }
}

/// A member open for change. Its claim (state and incarnation) may change
/// through it; when it goes, the table's summary sums follow.
pub(crate) struct MemberMut<'a> {
    member: &'a mut Member,
    sums: &'a mut Sums,
    before: Claim,
}

impl core::ops::Deref for MemberMut<'_> {
    type Target = Member;
    fn deref(&self) -> &Member {
        self.member
    }
}

impl core::ops::DerefMut for MemberMut<'_> {
    fn deref_mut(&mut self) -> &mut Member {
        self.member
    }
}

impl Drop for MemberMut<'_> {
    fn drop(&mut self) {
        let after = self.member.claim();
        if after != self.before {
            account(self.sums, self.member.name.as_str(), self.before);
            account(self.sums, self.member.name.as_str(), after);
        }
    }
}

impl core::fmt::Debug for Members {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Members").field("len", &self.len()).field("live", &self.live.len()).finish()
    }
}

impl Default for Members {
    fn default() -> Self {
        Members::new(0)
    }
}

impl Members {
    /// An empty table whose name hashing is keyed by `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Members {
            slots: Paged::default(),
            free: Vec::new(),
            by_name: HashTable::new(),
            by_addr: HashTable::new(),
            hasher: FixedState::with_seed(seed),
            live: Vec::new(),
            probe: None,
            default_probe: RoundRobin::default(),
            scratch: Vec::new(),
            last_found: None,
            sums: [0; MAX_BUCKETS],
        }
    }

    /// The member in slot `index`, whatever its generation (the indexes
    /// hold slot numbers of occupied slots).
    fn occupant(slots: &Paged<Slot>, index: u32) -> Option<&Member> {
        slots.get(index as usize).and_then(|s| s.member.as_ref())
    }

    fn name_of(slots: &Paged<Slot>, index: u32) -> &str {
        Self::occupant(slots, index).map_or("", |m| m.name.as_str())
    }

    fn addr_of(slots: &Paged<Slot>, index: u32) -> Option<core::net::SocketAddr> {
        Self::occupant(slots, index).map(|m| m.addr.get())
    }

    /// The handle of the member in slot `index` (the indexes only hold
    /// occupied slots).
    fn id_at(&self, index: u32) -> MemberId {
        Self::id_in(&self.slots, index)
    }

    /// Replaces the probe order (see [`ProbeSelector`]).
    pub(crate) fn set_selector(&mut self, selector: alloc::boxed::Box<dyn ProbeSelector + Send>, rng: &mut dyn Random) {
        self.probe = Some(selector);
        self.scratch.clear();
        let slots = &self.slots;
        self.scratch.extend(self.live.iter().map(|&i| MemberKey(Self::id_in(slots, i))));
        if let Some(p) = self.probe.as_mut() {
            p.reset(&self.scratch, rng);
        }
    }

    fn selector(&mut self) -> &mut dyn ProbeSelector {
        match self.probe.as_mut() {
            Some(p) => p.as_mut(),
            None => &mut self.default_probe,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.by_name.len()
    }

    pub(crate) fn live_len(&self) -> usize {
        self.live.len()
    }

    fn member_in(slots: &Paged<Slot>, id: MemberId) -> Option<&Member> {
        slots.get(id.index as usize).filter(|s| s.generation == id.generation).and_then(|s| s.member.as_ref())
    }

    fn id_in(slots: &Paged<Slot>, index: u32) -> MemberId {
        MemberId { index, generation: slots.get(index as usize).map_or(0, |s| s.generation) }
    }

    fn addr_hash(&self, addr: &core::net::SocketAddr) -> u64 {
        hash_addr(&self.hasher, addr)
    }

    /// The slot of the live (alive or suspect) member at `addr`, if any.
    fn live_slot(&self, addr: &core::net::SocketAddr) -> Option<u32> {
        let slots = &self.slots;
        let found = self.by_addr.find(self.addr_hash(addr), |&i| {
            Self::occupant(slots, i).is_some_and(|m| m.addr.is(addr) && m.state.is_live())
        });
        found.copied()
    }

    /// Whether a live (alive or suspect) member is at `addr`.
    pub(crate) fn is_live_at(&self, addr: &core::net::SocketAddr) -> bool {
        self.live_slot(addr).is_some()
    }

    /// The live (alive or suspect) member at `addr`, if any.
    pub(crate) fn live_at(&self, addr: &core::net::SocketAddr) -> Option<MemberId> {
        self.live_slot(addr).map(|i| Self::id_in(&self.slots, i))
    }

    /// Whether `name` is a live member at `addr`.
    pub(crate) fn is_live_member_at(&self, name: &str, addr: core::net::SocketAddr) -> bool {
        self.id_of(name).and_then(|id| self.get(id)).is_some_and(|m| m.state.is_live() && m.addr.is(&addr))
    }

    /// Moves a member to a new address, keeping the address index in step.
    pub(crate) fn set_addr(&mut self, id: MemberId, addr: core::net::SocketAddr) {
        let Some(old) = self.get(id).map(|m| m.addr.get()) else { return };
        if old == addr {
            return;
        }
        let (old_hash, new_hash) = (self.addr_hash(&old), self.addr_hash(&addr));
        if let Ok(entry) = self.by_addr.find_entry(old_hash, |&other| other == id.index) {
            entry.remove();
        }
        if let Some(m) = Self::member_mut(&mut self.slots, id) {
            m.addr = addr.into();
        }
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.by_addr.insert_unique(new_hash, id.index, |&other| {
            Self::addr_of(slots, other).map_or(0, |a| hash_addr(hasher, &a))
        });
    }

    pub(crate) fn id_of(&self, name: &str) -> Option<MemberId> {
        let slots = &self.slots;
        let index = *self.by_name.find(self.hasher.hash_one(name), |&i| Self::name_of(slots, i) == name)?;
        Some(self.id_at(index))
    }

    /// [`Members::id_of`], first trying the member found last.
    pub(crate) fn find(&mut self, name: &str) -> Option<MemberId> {
        if let Some(id) = self.last_found
            && self.get(id).is_some_and(|m| m.name.as_str() == name)
        {
            return Some(id);
        }
        let found = self.id_of(name);
        if found.is_some() {
            self.last_found = found;
        }
        found
    }

    pub(crate) fn get(&self, id: MemberId) -> Option<&Member> {
        Self::member_in(&self.slots, id)
    }

    pub(crate) fn get_mut(&mut self, id: MemberId) -> Option<MemberMut<'_>> {
        let member = Self::member_mut(&mut self.slots, id)?;
        let before = member.claim();
        Some(MemberMut { member, sums: &mut self.sums, before })
    }

    /// A member to change where its claim stays as it is (its address,
    /// its place in the live list).
    fn member_mut(slots: &mut Paged<Slot>, id: MemberId) -> Option<&mut Member> {
        let slot = slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.member.as_mut()
    }

    /// Every record's hash summed in [`MAX_BUCKETS`] buckets, ourselves
    /// not included.
    pub(crate) fn sums(&self) -> &Sums {
        &self.sums
    }

    /// Makes room for `additional` more members at once, so that a table
    /// filled in one go (seeded) neither rehashes its indexes as it grows
    /// nor keeps twice its live list's room.
    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn reserve(&mut self, additional: usize) {
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.by_name.reserve(additional, |&i| hasher.hash_one(Self::name_of(slots, i)));
        self.by_addr.reserve(additional, |&i| Self::addr_of(slots, i).map_or(0, |a| hash_addr(hasher, &a)));
        self.live.reserve_exact(additional);
        if self.probe.is_none() {
            self.default_probe.reserve(additional);
        }
    }

    /// Adds a member not yet in the table.
    pub(crate) fn insert(&mut self, mut member: Member, rng: &mut dyn Random) -> MemberId {
        member.live_pos = None;
        let live = member.state.is_live();
        let hash = self.hasher.hash_one(member.name.as_str());
        let addr_hash = self.addr_hash(&member.addr.get());
        let id = match self.free.pop() {
            Some(index) => match self.slots.get_mut(index as usize) {
                Some(slot) => {
                    slot.generation = slot.generation.wrapping_add(1);
                    slot.member = Some(member);
                    MemberId { index, generation: slot.generation }
                }
                // Free slots are always within the table.
                None => return MemberId { index, generation: u32::MAX },
            },
            None => {
                self.slots.push(Slot { generation: 0, member: Some(member) });
                MemberId { index: (self.slots.len() - 1) as u32, generation: 0 }
            }
        };
        if let Some(m) = Self::member_in(&self.slots, id) {
            account(&mut self.sums, m.name.as_str(), m.claim());
        }
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.by_name.insert_unique(hash, id.index, |&other| hasher.hash_one(Self::name_of(slots, other)));
        self.by_addr.insert_unique(addr_hash, id.index, |&other| {
            Self::addr_of(slots, other).map_or(0, |a| hash_addr(hasher, &a))
        });
        if live {
            self.mark_live(id, rng);
        }
        id
    }

    /// Removes a member (reaping a tombstone).
    pub(crate) fn remove(&mut self, id: MemberId) -> Option<Member> {
        self.unmark_live(id);
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let member = slot.member.take()?;
        account(&mut self.sums, member.name.as_str(), member.claim());
        let hash = self.hasher.hash_one(member.name.as_str());
        if let Ok(entry) = self.by_name.find_entry(hash, |&other| other == id.index) {
            entry.remove();
        }
        let addr_hash = self.addr_hash(&member.addr.get());
        if let Ok(entry) = self.by_addr.find_entry(addr_hash, |&other| other == id.index) {
            entry.remove();
        }
        self.free.push(id.index);
        Some(member)
    }

    /// Sets a member's state, keeping the live list in step.
    pub(crate) fn set_state(&mut self, id: MemberId, state: MemberState, rng: &mut dyn Random) {
        let Some(mut m) = self.get_mut(id) else { return };
        let was_live = m.state.is_live();
        m.state = state;
        drop(m);
        match (was_live, state.is_live()) {
            (false, true) => self.mark_live(id, rng),
            (true, false) => self.unmark_live(id),
            _ => {}
        }
    }

    fn mark_live(&mut self, id: MemberId, rng: &mut dyn Random) {
        let pos = self.live.len() as u32;
        let Some(m) = Self::member_mut(&mut self.slots, id) else { return };
        if m.live_pos.is_some() {
            return;
        }
        m.live_pos = core::num::NonZeroU32::new(pos.saturating_add(1));
        self.live.push(id.index);
        let Some(view) = Self::member_in(&self.slots, id).map(Member::view) else { return };
        match self.probe.as_mut() {
            Some(p) => p.insert(MemberKey(id), &view, rng),
            None => self.default_probe.add(MemberKey(id), rng),
        }
    }

    fn unmark_live(&mut self, id: MemberId) {
        let Some(pos) = Self::member_mut(&mut self.slots, id).and_then(|m| m.live_pos.take()) else {
            return;
        };
        let pos = pos.get() as usize - 1;
        self.live.swap_remove(pos);
        if let Some(&moved) = self.live.get(pos)
            && let Some(m) = self.slots.get_mut(moved as usize).and_then(|s| s.member.as_mut())
        {
            m.live_pos = core::num::NonZeroU32::new(pos as u32 + 1);
        }
    }

    /// The next member to probe, skipping those no longer live; `None` when
    /// no one else is live. `coordinate` tells what our coordinates say of
    /// a member (its coordinate, and the round trip to it), for a selector
    /// that asks.
    pub(crate) fn next_probe_target(
        &mut self,
        rng: &mut dyn Random,
        coordinate: &dyn Fn(MemberId) -> (Option<crate::Coordinate>, Option<core::time::Duration>),
    ) -> Option<MemberId> {
        if self.probe.as_ref().is_some_and(|p| p.wants_review()) {
            let slots = &self.slots;
            let live: Vec<(MemberKey, MemberView<'_>)> = self
                .live
                .iter()
                .filter_map(|&i| {
                    let id = Self::id_in(slots, i);
                    let mut view = Self::member_in(slots, id)?.view();
                    (view.coordinate, view.rtt) = coordinate(id);
                    Some((MemberKey(id), view))
                })
                .collect();
            if let Some(p) = self.probe.as_mut() {
                p.review(&live, rng);
            }
        }
        for _ in 0..2 {
            while let Some(MemberKey(id)) = self.selector().next() {
                if self.get(id).is_some_and(|m| m.state.is_live()) {
                    return Some(id);
                }
            }
            self.scratch.clear();
            let slots = &self.slots;
            self.scratch.extend(self.live.iter().map(|&i| MemberKey(Self::id_in(slots, i))));
            let live = core::mem::take(&mut self.scratch);
            self.selector().reset(&live, rng);
            self.scratch = live;
        }
        None
    }

    /// Up to `k` members to ask for indirect probes of `target`: the
    /// selector's choice, kept to live members other than the target and
    /// topped up at random.
    pub(crate) fn helpers(&mut self, target: MemberId, k: usize, rng: &mut dyn Random, out: &mut Vec<MemberId>) {
        out.clear();
        let mut keys = core::mem::take(&mut self.scratch);
        keys.clear();
        self.selector().helpers(MemberKey(target), k, rng, &mut keys);
        for MemberKey(id) in keys.drain(..) {
            if out.len() < k && id != target && !out.contains(&id) && self.get(id).is_some_and(|m| m.state.is_live()) {
                out.push(id);
            }
        }
        self.scratch = keys;
        if out.is_empty() {
            self.random_live(k, &[target], rng, out);
        } else if out.len() < k {
            let mut exclude = out.clone();
            exclude.push(target);
            let mut more = Vec::new();
            self.random_live(k - out.len(), &exclude, rng, &mut more);
            out.extend(more);
        }
    }

    /// Up to `k` distinct random live members, none of them in `exclude`.
    pub(crate) fn random_live(&self, k: usize, exclude: &[MemberId], rng: &mut dyn Random, out: &mut Vec<MemberId>) {
        out.clear();
        let n = self.live.len();
        if k == 0 || n == 0 {
            return;
        }
        for _ in 0..SAMPLE_TRIES_PER_PICK * k {
            if out.len() == k {
                return;
            }
            let Some(&slot) = self.live.get(rng.below(n)) else { continue };
            let id = self.id_at(slot);
            if !exclude.contains(&id) && !out.contains(&id) {
                out.push(id);
            }
        }
        let start = rng.below(n);
        for i in 0..n {
            if out.len() == k {
                return;
            }
            let Some(&slot) = self.live.get((start + i) % n) else { continue };
            let id = self.id_at(slot);
            if !exclude.contains(&id) && !out.contains(&id) {
                out.push(id);
            }
        }
    }

    /// The member in slot `index`, with its handle.
    pub(crate) fn at_index(&self, index: u32) -> Option<(MemberId, &Member)> {
        let slot = self.slots.get(index as usize)?;
        slot.member.as_ref().map(|m| (MemberId { index, generation: slot.generation }, m))
    }

    /// Every member, in table (slot) order: deterministic, but not sorted.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (MemberId, &Member)> + '_ {
        self.slots.iter().enumerate().filter_map(|(index, slot)| {
            let id = MemberId { index: index as u32, generation: slot.generation };
            slot.member.as_ref().map(|m| (id, m))
        })
    }
}

/// An address hashed as one number. Every datagram looks its sender's
/// address up, and the standard `Hash` of a `SocketAddr` feeds the hasher
/// field by field; equal addresses still hash equal, and the index compares
/// whole addresses.
fn hash_addr(hasher: &FixedState, addr: &core::net::SocketAddr) -> u64 {
    // Fields read one by one from where the address lies: copying it
    // whole first stalls on the caller's narrower stores.
    let key = match addr {
        core::net::SocketAddr::V4(a) => (1 << 64) | (u128::from(a.ip().to_bits()) << 16) | u128::from(a.port()),
        core::net::SocketAddr::V6(a) => a.ip().to_bits() ^ u128::from(a.port()) ^ (u128::from(a.scope_id()) << 16),
    };
    hasher.hash_one(key)
}

#[cfg(test)]
mod tests;

#[cfg(all(test, target_pointer_width = "64"))]
mod size_guard;
