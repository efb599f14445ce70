//! Randomness helpers over the injected generator.

use rand_core::Rng;

/// The randomness the protocol needs, object-safe so selectors can take it.
pub trait Random {
    /// A uniform 64-bit value.
    fn next_u64(&mut self) -> u64;

    /// A uniform value in `0..n` (0 when `n` is 0), by Lemire's
    /// multiply-shift; the bias is below 2^-32 for any `n` we use.
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

impl<R: Rng + ?Sized> Random for R {
    fn next_u64(&mut self) -> u64 {
        Rng::next_u64(self)
    }
}

impl dyn Random + '_ {
    /// Fisher–Yates shuffle through a trait object.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand_core::SeedableRng;

    pub(crate) fn rng(seed: u64) -> rand_xoshiro::Xoshiro256PlusPlus {
        rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed)
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = rng(7);
        let r: &mut dyn Random = &mut r;
        for n in [1usize, 2, 3, 10, 1000] {
            for _ in 0..100 {
                assert!(r.below(n) < n);
            }
        }
        assert_eq!(r.below(0), 0);
    }
}
