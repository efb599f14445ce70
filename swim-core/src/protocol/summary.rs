//! Anti-entropy by difference: a summary of the member table, so that a
//! periodic sync sends the records where two tables differ rather than
//! both tables whole (docs/protocol.md §6.5).
//!
//! Every record (ourselves included) falls in one of `count` buckets by a
//! hash of its member's name; a bucket's value is the XOR of its records'
//! hashes over (name, incarnation, state). Two tables that hold the same
//! claims have the same buckets whatever order they learnt them in; a
//! bucket that differs names the records to exchange. The initiator
//! picks the bucket count from its table's size (about
//! [`MEMBERS_PER_BUCKET`] records a bucket, a power of two up to
//! [`MAX_BUCKETS`]) and the answering member sums its own table in as
//! many.
//!
//! The hashes are FNV-1a and a fixed finaliser, so every member, on any
//! platform and any build, sums the same table the same way. They are not
//! a defence against anyone: a member who can send a summary can send
//! records.

use alloc::vec::Vec;

use crate::protocol::table::record::{Claim, MemberState};
use crate::util::fnv::Fnv;

/// The most buckets a summary has: 1 KiB of hashes.
pub(crate) const MAX_BUCKETS: usize = 256;

/// About how many records a bucket sums.
pub(crate) const MEMBERS_PER_BUCKET: usize = 16;

/// Bytes of one bucket's hash on the wire.
pub(crate) const BUCKET_BYTES: usize = 4;

/// The bytes of a difference bitmap for the most buckets.
pub(crate) const MAX_DIFF_BYTES: usize = MAX_BUCKETS / 8;

/// Buckets for a table of `n` records: a power of two, 1 to
/// [`MAX_BUCKETS`].
pub(crate) fn bucket_count(n: usize) -> usize {
    (n / MEMBERS_PER_BUCKET).next_power_of_two().clamp(1, MAX_BUCKETS)
}

/// Whether `count` buckets could come from [`bucket_count`].
pub(crate) fn valid_count(count: usize) -> bool {
    count.is_power_of_two() && count <= MAX_BUCKETS
}

/// The finaliser of MurmurHash3: every input bit reaches every output
/// bit, so neighbouring incarnations land far apart.
const fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A member name's hash: it picks the bucket, and seeds the record's.
pub(crate) fn name_hash(name: &str) -> u64 {
    let mut f = Fnv::default();
    f.write(name.as_bytes());
    mix(f.value())
}

/// The bucket of a name with hash `h`, out of `count` (a power of two).
pub(crate) fn bucket_of(h: u64, count: usize) -> usize {
    // The top bits: the low ones seed the record hash.
    (h >> 56) as usize & (count - 1)
}

/// A record's hash: its name's hash and its claim.
pub(crate) fn record_hash(name_h: u64, claim: Claim) -> u64 {
    let state = match claim.state {
        MemberState::Alive => 0,
        MemberState::Suspect => 1,
        MemberState::Dead => 2,
        MemberState::Left => 3,
    };
    mix(name_h ^ mix(u64::from(claim.incarnation) << 2 | state))
}

/// An event's hash for [`UserData::recent_hash`](crate::protocol::user::UserData::recent_hash):
/// its author's name hash and its Lamport time (an author stamps each
/// time once).
pub(crate) fn event_hash(author_h: u64, ltime: u64) -> u32 {
    mix(author_h ^ mix(ltime)) as u32
}

/// The member and claim an update message makes, as the summary sums it.
pub(crate) fn claim_of<'a>(msg: &crate::wire::Message<'a>) -> Option<(&'a str, Claim)> {
    use crate::wire::Message;
    Some(match *msg {
        Message::Alive { incarnation, name, .. } => (name, Claim::new(MemberState::Alive, incarnation)),
        Message::Suspect { incarnation, name, .. } => (name, Claim::new(MemberState::Suspect, incarnation)),
        Message::Dead { incarnation, name, from } if from == name => (name, Claim::new(MemberState::Left, incarnation)),
        Message::Dead { incarnation, name, .. } => (name, Claim::new(MemberState::Dead, incarnation)),
        _ => return None,
    })
}

/// A table summed in buckets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Summary {
    buckets: Vec<u32>,
}

impl Summary {
    /// The summary of `records` (name and claim each) in `count` buckets.
    pub(crate) fn of<'a>(count: usize, records: impl Iterator<Item = (&'a str, Claim)>) -> Self {
        debug_assert!(valid_count(count));
        let mut buckets = alloc::vec![0u32; count];
        for (name, claim) in records {
            let h = name_hash(name);
            if let Some(b) = buckets.get_mut(bucket_of(h, count)) {
                *b ^= record_hash(h, claim) as u32;
            }
        }
        Summary { buckets }
    }

    /// The summary in `count` buckets of a table already summed in
    /// [`MAX_BUCKETS`] (`sums`), plus `records` not in those sums.
    /// A bucket of `count` takes the name hashes whose top byte's low bits
    /// are its number ([`bucket_of`]), so it is the XOR of the big
    /// buckets with those low bits.
    pub(crate) fn fold<'a>(
        count: usize,
        sums: &[u32; MAX_BUCKETS],
        records: impl Iterator<Item = (&'a str, Claim)>,
    ) -> Self {
        debug_assert!(valid_count(count));
        let mut summary = Summary::of(count, records);
        let mask = count.wrapping_sub(1);
        for (i, &sum) in sums.iter().enumerate() {
            if let Some(b) = summary.buckets.get_mut(i & mask) {
                *b ^= sum;
            }
        }
        summary
    }

    /// The wire form: each bucket's hash, little-endian.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        self.buckets.iter().flat_map(|b| b.to_le_bytes()).collect()
    }

    /// The buckets where this summary and a peer's wire one differ; `None`
    /// when the peer's is not a valid summary of as many buckets.
    pub(crate) fn diff(&self, theirs: &[u8]) -> Option<Diff> {
        if theirs.len() != self.buckets.len() * BUCKET_BYTES {
            return None;
        }
        let mut diff = Diff::none(self.buckets.len())?;
        for (i, (ours, theirs)) in self.buckets.iter().zip(theirs.chunks_exact(BUCKET_BYTES)).enumerate() {
            if ours.to_le_bytes() != theirs {
                diff.mark(i);
            }
        }
        Some(diff)
    }
}

/// The buckets two summaries differ in, as a bitmap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Diff {
    count: usize,
    bits: [u8; MAX_DIFF_BYTES],
}

impl Diff {
    /// No bucket differs, out of `count`.
    pub(crate) fn none(count: usize) -> Option<Self> {
        valid_count(count).then_some(Diff { count, bits: [0; MAX_DIFF_BYTES] })
    }

    /// A bitmap off the wire for `count` buckets, `None` when it is not
    /// one (wrong length, or bits set past the last bucket).
    pub(crate) fn from_bytes(count: usize, bytes: &[u8]) -> Option<Self> {
        let mut diff = Diff::none(count)?;
        if bytes.len() != diff.wire_len() {
            return None;
        }
        for (bits, &b) in diff.bits.iter_mut().zip(bytes) {
            *bits = b;
        }
        let spare = count % 8;
        if spare != 0 && bytes.last().is_some_and(|&b| b >> spare != 0) {
            return None;
        }
        Some(diff)
    }

    fn wire_len(&self) -> usize {
        self.count.div_ceil(8)
    }

    /// The wire form.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.bits.get(..self.wire_len()).unwrap_or(&[])
    }

    /// Marks bucket `i` as differing.
    fn mark(&mut self, i: usize) {
        if let Some(byte) = self.bits.get_mut(i / 8) {
            *byte |= 1 << (i % 8);
        }
    }

    /// How many buckets differ.
    pub(crate) fn differing(&self) -> usize {
        self.bits.iter().map(|b| b.count_ones() as usize).sum()
    }

    /// Whether the record of the member whose name hashes to `h` is in a
    /// differing bucket.
    pub(crate) fn covers(&self, h: u64) -> bool {
        let i = bucket_of(h, self.count);
        self.bits.get(i / 8).is_some_and(|byte| byte & (1 << (i % 8)) != 0)
    }

    /// Whether so much differs that whole tables cost about as little:
    /// more than half the buckets.
    pub(crate) fn mostly(&self) -> bool {
        self.differing() * 2 > self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::String;
    use proptest::prelude::*;

    fn table(n: usize) -> Vec<(String, Claim)> {
        (0..n).map(|i| (format!("node-{i}"), Claim::new(MemberState::Alive, i as u32 % 3))).collect()
    }

    fn summary(count: usize, t: &[(String, Claim)]) -> Summary {
        Summary::of(count, t.iter().map(|(n, c)| (n.as_str(), *c)))
    }

    #[test]
    fn bucket_counts_grow_with_the_table_up_to_the_most() {
        assert_eq!(bucket_count(0), 1);
        assert_eq!(bucket_count(100), 8);
        assert_eq!(bucket_count(1000), 64);
        assert_eq!(bucket_count(10_000), MAX_BUCKETS);
        assert!(valid_count(bucket_count(7)) && !valid_count(3) && !valid_count(512) && !valid_count(0));
    }

    #[test]
    fn the_hashes_are_fixed() {
        // Other builds and platforms must sum tables the same way.
        assert_eq!(name_hash("node-1"), 0x91dd_3f4c_04e1_eb05, "{:#x}", name_hash("node-1"));
        let c = Claim::new(MemberState::Suspect, 7);
        assert_eq!(
            record_hash(name_hash("node-1"), c),
            0x6463_3566_0fea_6e5c,
            "{:#x}",
            record_hash(name_hash("node-1"), c)
        );
    }

    #[test]
    fn one_changed_claim_differs_in_its_bucket_only() {
        let mut t = table(1000);
        let count = bucket_count(t.len());
        let before = summary(count, &t);
        t[17].1 = Claim::new(MemberState::Suspect, t[17].1.incarnation);
        let after = summary(count, &t);
        let diff = after.diff(&before.to_bytes()).expect("same count");
        assert_eq!(diff.differing(), 1);
        assert!(diff.covers(name_hash("node-17")) && !diff.mostly());
        assert_eq!(Diff::from_bytes(count, diff.as_bytes()), Some(diff));
    }

    #[test]
    fn malformed_summaries_and_bitmaps_are_refused() {
        let s = summary(8, &table(100));
        assert!(s.diff(&s.to_bytes()[..28]).is_none());
        assert!(s.diff(&[0; 36]).is_none());
        assert!(Diff::from_bytes(8, &[0, 0]).is_none());
        assert!(Diff::from_bytes(4, &[0x10]).is_none(), "a bit past the last bucket");
        assert!(Diff::from_bytes(3, &[0]).is_none(), "not a power of two");
        assert!(Diff::from_bytes(4, &[0x0f]).is_some_and(|d| d.mostly()));
    }

    proptest! {
        /// The summary depends on the set of claims, not on their order;
        /// a table's summary against itself differs nowhere.
        #[test]
        fn summaries_are_order_free(n in 0usize..300, seed in any::<u64>()) {
            let t = table(n);
            let mut shuffled = t.clone();
            let len = shuffled.len();
            for i in (1..len).rev() {
                shuffled.swap(i, (seed.rotate_left(i as u32) as usize) % (i + 1));
            }
            let count = bucket_count(n);
            let (a, b) = (summary(count, &t), summary(count, &shuffled));
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(a.diff(&b.to_bytes()).map(|d| d.differing()), Some(0));
        }
    }
}
