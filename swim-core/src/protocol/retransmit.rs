//! The piggyback queue: updates waiting to be retransmitted.
//!
//! Each update is keyed (one per member), so a newer update about a member
//! replaces the queued older one. Packets take the least-transmitted
//! updates first, newest first among equals, and an update is dropped
//! once sent `retransmit_mult * ceil(log10(n + 1))` times.
//!
//! An update that is a member's own record (alive, or a departure) is not
//! stored as bytes: it is encoded from the member table each time it is
//! sent ([`Records`]). A joining node queues news of every member at once,
//! and bytes per entry would double what the table itself costs then.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use foldhash::fast::FixedState;
use hashbrown::HashMap;

use crate::wire::{Full, PacketWriter};

/// The smallest message we ever queue, in bytes: a packet with less room
/// than this is full.
const MIN_MESSAGE: usize = 5;

/// How many transmissions an update gets in a cluster of `n` members:
/// `mult * ceil(log10(n + 1))`, in exact integer arithmetic.
pub fn retransmit_limit(mult: u32, n: usize) -> u32 {
    let x = (n as u64).saturating_add(1);
    let mut digits = 0u32;
    let mut pow = 1u64;
    while pow < x {
        pow = pow.saturating_mul(10);
        digits += 1;
    }
    mult.saturating_mul(digits)
}

/// What an update is about: a newer update with the same key replaces the
/// queued one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum QueueKey {
    /// The local member.
    Local,
    /// The member in this table slot.
    Member(u32),
    /// An application broadcast, by arrival order.
    User(u64),
}

impl QueueKey {
    /// The key in eight bytes, for the queue's own maps.
    const fn pack(self) -> u64 {
        match self {
            QueueKey::Local => 0,
            QueueKey::Member(i) => 1 + i as u64,
            QueueKey::User(n) => (1 << 33) + n,
        }
    }

    const fn unpack(k: u64) -> Self {
        match k {
            0 => QueueKey::Local,
            k if k < 1 << 33 => QueueKey::Member((k - 1) as u32),
            k => QueueKey::User(k - (1 << 33)),
        }
    }
}

/// What a queued update sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Payload {
    /// These bytes: one encoded message.
    Bytes(Box<[u8]>),
    /// The member's record as it stands when sent (only for
    /// [`QueueKey::Member`]).
    Record,
}

/// Writes members' records for the queue.
pub(crate) trait Records {
    /// Writes the record of the member in table slot `index` if it takes
    /// at most `room` bytes and fits in `w`; returns the bytes written.
    fn write_record(&self, index: u32, room: usize, w: &mut PacketWriter) -> Result<usize, Unwritten>;
}

/// Why a record was not written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unwritten {
    /// No room for it in this packet.
    Misfit,
    /// There is no such member: the update goes.
    Gone,
}

impl From<Full> for Unwritten {
    fn from(_: Full) -> Self {
        Unwritten::Misfit
    }
}

/// No records: for queues that only hold bytes.
#[cfg(test)]
pub(crate) struct NoRecords;

#[cfg(test)]
impl Records for NoRecords {
    fn write_record(&self, _: u32, _: usize, _: &mut PacketWriter) -> Result<usize, Unwritten> {
        Err(Unwritten::Gone)
    }
}

/// Where an update stands in the queue, in eight bytes: its transmissions
/// in the top 16 bits, then its arrival number inverted, so that ranks sort
/// fewest-sent first and newest first among equals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Rank(u64);

/// Bits of a rank that hold the arrival number.
const AGE_BITS: u32 = 48;
const AGE_MASK: u64 = (1 << AGE_BITS) - 1;

impl Rank {
    /// Arrival numbers wrap after 2^48 updates (centuries at any real
    /// rate); a wrap only misorders, it cannot fail.
    const fn new(sent: u16, age: u64) -> Self {
        Rank(((sent as u64) << AGE_BITS) | (AGE_MASK - (age & AGE_MASK)))
    }

    const fn sent(self) -> u16 {
        (self.0 >> AGE_BITS) as u16
    }

    const fn age(self) -> u64 {
        AGE_MASK - (self.0 & AGE_MASK)
    }
}

/// The queue. A joining node queues news of every member at once, so an
/// entry is kept to what ordering needs: a rank and a key in the order
/// map, a key and an arrival number in the index; bytes only for updates
/// that have them.
#[derive(Clone, Debug)]
pub(crate) struct RetransmitQueue {
    /// Updates in sending order: rank to packed key.
    order: BTreeMap<Rank, u64>,
    /// Each key's arrival number, by packed key. Its rank is found by
    /// trying each transmission count up to `most_sent` (below the
    /// retransmit limit, at most 448 within the configuration's bounds):
    /// the index does not change when an update is sent, which saves a
    /// scattered write per update in every packet filled.
    index: HashMap<u64, u64, FixedState>,
    /// No update in `order` has been sent more often than this.
    most_sent: u16,
    /// The updates that send bytes of their own, by packed key; the rest
    /// are members' records.
    bytes: BTreeMap<u64, Box<[u8]>>,
    next_id: u64,
    picked: Vec<Rank>,
    /// What the packet being filled already holds (packed keys).
    in_packet: Vec<u64>,
}

impl Default for RetransmitQueue {
    fn default() -> Self {
        RetransmitQueue {
            order: BTreeMap::new(),
            index: HashMap::with_hasher(FixedState::with_seed(0)),
            bytes: BTreeMap::new(),
            most_sent: 0,
            next_id: 0,
            picked: Vec::new(),
            in_packet: Vec::new(),
        }
    }
}

/// After this many queued updates in a row that do not fit, the packet is
/// taken as full: the rest of a long queue is not worth scanning.
const MAX_MISFITS: usize = 8;

impl RetransmitQueue {
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Adds every queued update, in sending order, to `d` (a record by
    /// its key: the member's state is digested with the table).
    pub(crate) fn digest(&self, d: &mut crate::api::digest::Digest) {
        for (rank, key) in &self.order {
            d.write_u64(u64::from(rank.sent()));
            d.write_u64(rank.age());
            match self.bytes.get(key) {
                Some(bytes) => d.write_bytes(bytes),
                None => d.write_u64(*key),
            }
        }
    }

    pub(crate) fn contains(&self, key: QueueKey) -> bool {
        self.index.contains_key(&key.pack())
    }

    /// Queues `payload` under `key`, replacing any older update with that
    /// key. Beyond `max` entries the most-sent, oldest one is dropped, but
    /// never the local member's: our own alive or leave must have all its
    /// transmissions (so the queue holds at most `max + 1`).
    pub(crate) fn push(&mut self, key: QueueKey, payload: Payload, max: usize) {
        self.remove(key);
        let age = self.next_id & AGE_MASK;
        let rank = Rank::new(0, age);
        self.next_id += 1;
        let key = key.pack();
        self.index.insert(key, age);
        self.order.insert(rank, key);
        if let Payload::Bytes(bytes) = payload {
            self.bytes.insert(key, bytes);
        }
        let local = QueueKey::Local.pack();
        while self.index.len() > max.max(1) {
            let victim = self.order.iter().rev().find(|&(_, k)| *k != local).map(|(r, k)| (*r, *k));
            let Some((rank, k)) = victim else { break };
            self.forget(rank, k);
        }
    }

    pub(crate) fn remove(&mut self, key: QueueKey) {
        let key = key.pack();
        let Some(&age) = self.index.get(&key) else { return };
        let rank = (0..=self.most_sent).map(|sent| Rank::new(sent, age)).find(|r| self.order.contains_key(r));
        match rank {
            Some(rank) => self.forget(rank, key),
            // Unreachable while the two maps agree; the index must not
            // keep a key the order has lost.
            None => {
                self.index.remove(&key);
            }
        }
    }

    fn forget(&mut self, rank: Rank, key: u64) {
        self.order.remove(&rank);
        self.index.remove(&key);
        self.bytes.remove(&key);
        // A joiner's queue grows to the whole table and then drains: give
        // the index back once it is empty rather than hold its peak.
        if self.index.is_empty() {
            self.most_sent = 0;
            if self.index.capacity() > 0 {
                self.index = HashMap::with_hasher(FixedState::with_seed(0));
            }
        }
    }

    /// Fills `w` with queued updates, fewest-sent first, counting one
    /// transmission for each; updates that reach `limit` leave the queue.
    /// Returns how many were written.
    pub(crate) fn fill(&mut self, w: &mut PacketWriter, limit: u32, records: &dyn Records) -> usize {
        self.fill_upto(w, limit, usize::MAX, true, records)
    }

    /// Like [`RetransmitQueue::fill`], writing at most `max_bytes` bytes.
    /// With `fresh` false it adds to the packet it filled last, skipping
    /// what it already put there. Limits beyond `u16::MAX` count as that.
    pub(crate) fn fill_upto(
        &mut self,
        w: &mut PacketWriter,
        limit: u32,
        max_bytes: usize,
        fresh: bool,
        records: &dyn Records,
    ) -> usize {
        self.picked.clear();
        if fresh {
            self.in_packet.clear();
        }
        // The steady state: nothing queued, and every datagram asks.
        if self.order.is_empty() {
            return 0;
        }
        let mut gone = Vec::new();
        let mut misfits = 0;
        let mut room = max_bytes;
        for (rank, key) in &self.order {
            if w.remaining() < MIN_MESSAGE || room < MIN_MESSAGE || misfits >= MAX_MISFITS {
                break;
            }
            if !fresh && self.in_packet.contains(key) {
                continue;
            }
            let written = match (self.bytes.get(key), QueueKey::unpack(*key)) {
                (Some(bytes), _) if bytes.len() > room => Err(Unwritten::Misfit),
                (Some(bytes), _) => w.push_encoded(bytes).map(|()| bytes.len()).map_err(Unwritten::from),
                (None, QueueKey::Member(index)) => records.write_record(index, room, w),
                (None, _) => Err(Unwritten::Gone),
            };
            match written {
                Ok(len) => {
                    room -= len;
                    self.picked.push(*rank);
                    misfits = 0;
                }
                Err(Unwritten::Misfit) => misfits += 1,
                Err(Unwritten::Gone) => gone.push((*rank, *key)),
            }
        }
        for (rank, key) in gone {
            self.forget(rank, key);
        }
        let limit = u16::try_from(limit).unwrap_or(u16::MAX);
        let picked = core::mem::take(&mut self.picked);
        for &rank in &picked {
            let Some(key) = self.order.remove(&rank) else { continue };
            self.in_packet.push(key);
            let sent = rank.sent().saturating_add(1);
            if sent >= limit {
                self.forget(rank, key);
            } else {
                self.most_sent = self.most_sent.max(sent);
                self.order.insert(Rank::new(sent, rank.age()), key);
            }
        }
        let n = picked.len();
        self.picked = picked;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Message, encode_message};

    fn key(s: &str) -> QueueKey {
        QueueKey::Member(s.bytes().map(u32::from).sum())
    }

    fn dead(n: &str, inc: u32) -> Payload {
        Payload::Bytes(encode_message(&Message::Dead { incarnation: inc, name: n, from: "x" }).into())
    }

    #[test]
    fn limit_is_mult_times_ceil_log10() {
        assert_eq!(retransmit_limit(4, 0), 0);
        assert_eq!(retransmit_limit(4, 1), 4);
        assert_eq!(retransmit_limit(4, 9), 4);
        assert_eq!(retransmit_limit(4, 10), 8);
        assert_eq!(retransmit_limit(4, 99), 8);
        assert_eq!(retransmit_limit(4, 100), 12);
        assert_eq!(retransmit_limit(4, 1000), 16);
    }

    #[test]
    fn updates_stop_after_the_retransmit_limit() {
        let mut q = RetransmitQueue::default();
        q.push(key("a"), dead("a", 1), 100);
        for _ in 0..3 {
            let mut w = PacketWriter::new(1400);
            assert_eq!(q.fill(&mut w, 3, &NoRecords), 1);
        }
        let mut w = PacketWriter::new(1400);
        assert_eq!(q.fill(&mut w, 3, &NoRecords), 0);
        assert!(q.is_empty());
    }

    #[test]
    fn newer_update_supersedes_and_fewest_sent_go_first() {
        let mut q = RetransmitQueue::default();
        q.push(key("a"), dead("a", 1), 100);
        let mut w = PacketWriter::new(1400);
        q.fill(&mut w, 10, &NoRecords);
        q.push(key("b"), dead("b", 1), 100);
        q.push(key("a"), dead("a", 2), 100);
        assert_eq!(q.len(), 2);
        // Both fresh now; the newest ("a" again) comes first.
        let mut w = PacketWriter::new(crate::wire::Layout::PLAIN.overhead() + 7);
        assert_eq!(q.fill(&mut w, 10, &NoRecords), 1);
        let d = w.finish();
        assert_eq!(Payload::Bytes(d[2..d.len() - 4].into()), dead("a", 2));
    }

    #[test]
    fn packing_stays_within_the_budget() {
        let mut q = RetransmitQueue::default();
        for i in 0..500 {
            let n = alloc::format!("member-{i:04}");
            q.push(QueueKey::Member(i), dead(&n, 1), 1000);
        }
        let mut w = PacketWriter::new(1400);
        let n = q.fill(&mut w, 4, &NoRecords);
        let d = w.finish();
        assert!(d.len() <= 1400);
        // Each update is 1 + 1 + 12 + 2 bytes: the packet is nearly full.
        assert_eq!(n, (1400 - 1) / 16);
        assert!(d.len() > 1400 - 16);
    }

    #[test]
    fn our_own_update_is_never_evicted() {
        let mut q = RetransmitQueue::default();
        q.push(QueueKey::Local, dead("me", 1), 1);
        for i in 0..5 {
            let n = alloc::format!("m{i}");
            q.push(QueueKey::Member(i), dead(&n, 1), 1);
            assert!(q.contains(QueueKey::Local));
            assert!(q.len() <= 2);
        }
    }

    #[test]
    fn ranks_sort_fewest_sent_first_then_newest() {
        let mut ranks = [Rank::new(1, 5), Rank::new(0, 2), Rank::new(0, 9), Rank::new(2, 0), Rank::new(1, 7)];
        ranks.sort();
        let order: Vec<(u16, u64)> = ranks.iter().map(|r| (r.sent(), r.age())).collect();
        assert_eq!(order, [(0, 9), (0, 2), (1, 7), (1, 5), (2, 0)]);
        assert_eq!(Rank::new(u16::MAX, AGE_MASK).sent(), u16::MAX);
    }

    #[test]
    fn a_drained_queue_gives_its_index_back() {
        let mut q = RetransmitQueue::default();
        for i in 0..100 {
            q.push(QueueKey::Member(i), dead(&alloc::format!("m{i}"), 1), 1000);
        }
        assert!(q.index.capacity() >= 100);
        while !q.is_empty() {
            let mut w = PacketWriter::new(1400);
            q.fill(&mut w, 3, &NoRecords);
        }
        assert_eq!(q.index.capacity(), 0);
        assert!(q.bytes.is_empty());
    }

    #[test]
    fn an_update_sent_several_times_is_still_replaced() {
        let mut q = RetransmitQueue::default();
        q.push(key("a"), dead("a", 1), 100);
        q.push(key("b"), dead("b", 1), 100);
        for _ in 0..3 {
            let mut w = PacketWriter::new(1400);
            assert_eq!(q.fill(&mut w, 10, &NoRecords), 2);
        }
        q.push(key("a"), dead("a", 2), 100);
        assert_eq!(q.len(), 2);
        assert_eq!(q.order.len(), 2);
        q.remove(key("b"));
        assert_eq!((q.len(), q.order.len()), (1, 1));
        let mut w = PacketWriter::new(1400);
        assert_eq!(q.fill(&mut w, 10, &NoRecords), 1);
        let d = w.finish();
        assert_eq!(Payload::Bytes(d[2..d.len() - 4].into()), dead("a", 2));
    }

    #[test]
    fn the_queue_is_bounded() {
        let mut q = RetransmitQueue::default();
        for i in 0..20 {
            let n = alloc::format!("m{i}");
            q.push(QueueKey::Member(i), dead(&n, 1), 8);
        }
        assert_eq!(q.len(), 8);
    }
}
