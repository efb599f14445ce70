//! The piggyback queue: updates waiting to be retransmitted.
//!
//! Each update is keyed (one per member), so a newer update about a member
//! replaces the queued older one. Packets take the least-transmitted
//! updates first, newest first among equals, and an update is dropped
//! once sent `retransmit_mult * ceil(log10(n + 1))` times.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::cmp::Reverse;

use crate::wire::PacketWriter;

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

/// Queue order: fewest transmissions first, then newest first.
type Rank = (u32, Reverse<u64>);

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

#[derive(Clone, Debug, Default)]
pub(crate) struct BroadcastQueue {
    /// Updates in sending order, with what they are keyed by.
    order: BTreeMap<Rank, (QueueKey, Box<[u8]>)>,
    /// Where each key's update stands in `order`.
    index: BTreeMap<QueueKey, Rank>,
    next_id: u64,
    picked: Vec<Rank>,
    /// What the packet being filled already holds.
    in_packet: Vec<QueueKey>,
}

/// After this many queued updates in a row that do not fit, the packet is
/// taken as full: the rest of a long queue is not worth scanning.
const MAX_MISFITS: usize = 8;

impl BroadcastQueue {
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Adds every queued update, in sending order, to `d`.
    pub(crate) fn digest(&self, d: &mut crate::digest::Digest) {
        for ((sent, Reverse(age)), (_, bytes)) in &self.order {
            d.write_u64(u64::from(*sent));
            d.write_u64(*age);
            d.write_bytes(bytes);
        }
    }

    pub(crate) fn contains(&self, key: QueueKey) -> bool {
        self.index.contains_key(&key)
    }

    /// Queues `bytes` (one encoded message) under `key`, replacing any
    /// older update with that key. Beyond `max` entries the most-sent,
    /// oldest one is dropped, but never the local member's: our own alive
    /// or leave must have all its transmissions (so the queue holds at most
    /// `max + 1`).
    pub(crate) fn push(&mut self, key: QueueKey, bytes: Vec<u8>, max: usize) {
        self.remove(key);
        let rank = (0, Reverse(self.next_id));
        self.next_id += 1;
        self.index.insert(key, rank);
        self.order.insert(rank, (key, bytes.into_boxed_slice()));
        while self.index.len() > max.max(1) {
            let victim = self.order.iter().rev().find(|(_, (k, _))| *k != QueueKey::Local).map(|(r, (k, _))| (*r, *k));
            let Some((rank, k)) = victim else { break };
            self.order.remove(&rank);
            self.index.remove(&k);
        }
    }

    pub(crate) fn remove(&mut self, key: QueueKey) {
        if let Some(rank) = self.index.remove(&key) {
            self.order.remove(&rank);
        }
    }

    /// Fills `w` with queued updates, fewest-sent first, counting one
    /// transmission for each; updates that reach `limit` leave the queue.
    /// Returns how many were written.
    pub(crate) fn fill(&mut self, w: &mut PacketWriter, limit: u32) -> usize {
        self.fill_upto(w, limit, usize::MAX, true)
    }

    /// Like [`BroadcastQueue::fill`], writing at most `max_bytes` bytes.
    /// With `fresh` false it adds to the packet it filled last, skipping
    /// what it already put there.
    pub(crate) fn fill_upto(&mut self, w: &mut PacketWriter, limit: u32, max_bytes: usize, fresh: bool) -> usize {
        self.picked.clear();
        if fresh {
            self.in_packet.clear();
        }
        let mut misfits = 0;
        let mut room = max_bytes;
        for (rank, (key, bytes)) in &self.order {
            if w.remaining() < MIN_MESSAGE || room < MIN_MESSAGE || misfits >= MAX_MISFITS {
                break;
            }
            if !fresh && self.in_packet.contains(key) {
                continue;
            }
            if bytes.len() > room {
                misfits += 1;
                continue;
            }
            if w.push_encoded(bytes).is_ok() {
                room -= bytes.len();
                self.picked.push(*rank);
                misfits = 0;
            } else {
                misfits += 1;
            }
        }
        let picked = core::mem::take(&mut self.picked);
        for &rank in &picked {
            let Some((key, bytes)) = self.order.remove(&rank) else { continue };
            self.in_packet.push(key);
            let sent = rank.0 + 1;
            if sent >= limit {
                self.index.remove(&key);
            } else {
                let next = (sent, rank.1);
                if let Some(r) = self.index.get_mut(&key) {
                    *r = next;
                }
                self.order.insert(next, (key, bytes));
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

    fn dead(n: &str, inc: u32) -> Vec<u8> {
        encode_message(&Message::Dead { incarnation: inc, name: n, from: "x" })
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
        let mut q = BroadcastQueue::default();
        q.push(key("a"), dead("a", 1), 100);
        for _ in 0..3 {
            let mut w = PacketWriter::new(1400);
            assert_eq!(q.fill(&mut w, 3), 1);
        }
        let mut w = PacketWriter::new(1400);
        assert_eq!(q.fill(&mut w, 3), 0);
        assert!(q.is_empty());
    }

    #[test]
    fn newer_update_supersedes_and_fewest_sent_go_first() {
        let mut q = BroadcastQueue::default();
        q.push(key("a"), dead("a", 1), 100);
        let mut w = PacketWriter::new(1400);
        q.fill(&mut w, 10);
        q.push(key("b"), dead("b", 1), 100);
        q.push(key("a"), dead("a", 2), 100);
        assert_eq!(q.len(), 2);
        // Both fresh now; the newest ("a" again) comes first.
        let mut w = PacketWriter::new(crate::wire::Layout::PLAIN.overhead() + 7);
        assert_eq!(q.fill(&mut w, 10), 1);
        let d = w.finish();
        assert_eq!(&d[2..d.len() - 4], dead("a", 2).as_slice());
    }

    #[test]
    fn packing_stays_within_the_budget() {
        let mut q = BroadcastQueue::default();
        for i in 0..500 {
            let n = alloc::format!("member-{i:04}");
            q.push(QueueKey::Member(i), dead(&n, 1), 1000);
        }
        let mut w = PacketWriter::new(1400);
        let n = q.fill(&mut w, 4);
        let d = w.finish();
        assert!(d.len() <= 1400);
        // Each update is 1 + 1 + 12 + 2 bytes: the packet is nearly full.
        assert_eq!(n, (1400 - 1) / 16);
        assert!(d.len() > 1400 - 16);
    }

    #[test]
    fn our_own_update_is_never_evicted() {
        let mut q = BroadcastQueue::default();
        q.push(QueueKey::Local, dead("me", 1), 1);
        for i in 0..5 {
            let n = alloc::format!("m{i}");
            q.push(QueueKey::Member(i), dead(&n, 1), 1);
            assert!(q.contains(QueueKey::Local));
            assert!(q.len() <= 2);
        }
    }

    #[test]
    fn the_queue_is_bounded() {
        let mut q = BroadcastQueue::default();
        for i in 0..20 {
            let n = alloc::format!("m{i}");
            q.push(QueueKey::Member(i), dead(&n, 1), 8);
        }
        assert_eq!(q.len(), 8);
    }
}
