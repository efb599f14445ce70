//! A word-at-a-time FNV-1a hash: the running digest of a member's actions
//! and the fingerprints of keys both use it, so it sits below both.

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a over 8-byte little-endian words, then the remaining bytes one
/// at a time. Not a cryptographic hash: it tells runs apart, it does not
/// resist an adversary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(OFFSET)
    }
}

impl Fnv {
    pub(crate) fn value(self) -> u64 {
        self.0
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.0 ^= u64::from_le_bytes(b);
            self.0 = self.0.wrapping_mul(PRIME);
        }
        for &b in words.remainder() {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(PRIME);
        }
    }
}
