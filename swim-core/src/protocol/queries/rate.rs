//! Per-member query rate limits: a token bucket per origin.
//!
//! Invariant: at most `MAX_ORIGINS` buckets; when full, the bucket used
//! longest ago goes (a full bucket is the same as none).

use alloc::collections::BTreeMap;

use crate::util::name::MemberName;
use crate::util::time::Instant;

/// The most origins tracked at once.
const MAX_ORIGINS: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens, in thousandths of a query.
    milli: u64,
    last: Instant,
}

/// Token buckets of `rate` queries per second, a burst of one second's
/// worth, per origin.
#[derive(Debug)]
pub(crate) struct RateLimits {
    rate: u64,
    buckets: BTreeMap<MemberName, Bucket>,
}

impl RateLimits {
    pub(crate) fn new(rate: u32) -> Self {
        RateLimits { rate: u64::from(rate.max(1)), buckets: BTreeMap::new() }
    }

    /// Whether `origin` may start a query at `now` (taking a token if so).
    pub(crate) fn allow(&mut self, now: Instant, origin: &MemberName) -> bool {
        let full = self.rate * 1000;
        if !self.buckets.contains_key(origin) && self.buckets.len() >= MAX_ORIGINS {
            let oldest = self.buckets.iter().min_by_key(|(_, b)| b.last).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.buckets.remove(&k);
            }
        }
        let b = self.buckets.entry(origin.clone()).or_insert(Bucket { milli: full, last: now });
        let elapsed = now.saturating_duration_since(b.last).as_millis();
        b.milli = b.milli.saturating_add(elapsed.saturating_mul(self.rate)).min(full);
        b.last = now;
        debug_assert!(self.buckets.len() <= MAX_ORIGINS, "the buckets stay within their bound");
        let Some(b) = self.buckets.get_mut(origin) else { return false };
        if b.milli >= 1000 {
            b.milli -= 1000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let mut r = RateLimits::new(10);
        let a = MemberName::new("a").unwrap();
        let t = Instant::from_millis(1000);
        assert_eq!((0..20).filter(|_| r.allow(t, &a)).count(), 10);
        assert!(!r.allow(t, &a));
        assert!(r.allow(Instant::from_millis(1100), &a), "a tenth of a second buys one");
        assert!(!r.allow(Instant::from_millis(1100), &a));
        assert!(r.allow(t, &MemberName::new("b").unwrap()), "each origin has its own bucket");
    }

    #[test]
    fn the_buckets_are_bounded() {
        let mut r = RateLimits::new(1);
        for i in 0..(MAX_ORIGINS + 10) {
            r.allow(Instant::from_millis(i as u64), &MemberName::new(&alloc::format!("m{i}")).unwrap());
        }
        assert_eq!(r.buckets.len(), MAX_ORIGINS);
    }
}
