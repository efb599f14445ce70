//! Round-trip estimates, for probe timeouts from measurement
//! (`Config::rtt_probe_timeout`): the smoothed round-trip time and its
//! mean deviation, updated as TCP's retransmission timer is (RFC 6298,
//! gains 1/8 and 1/4), in whole milliseconds.

/// One member's round-trip estimate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rtt {
    /// Smoothed round trip, times 8 (ms).
    srtt8: u32,
    /// Mean deviation, times 4 (ms).
    var4: u32,
}

impl Rtt {
    /// The estimate after a first sample of `ms`.
    pub(crate) fn first(ms: u32) -> Self {
        Rtt { srtt8: ms.saturating_mul(8), var4: ms.saturating_mul(2) }
    }

    /// Takes in one more sample of `ms`.
    pub(crate) fn sample(&mut self, ms: u32) {
        let delta = i64::from(ms) - i64::from(self.srtt8 / 8);
        let clamp = |v: i64| u32::try_from(v.max(0)).unwrap_or(u32::MAX);
        self.srtt8 = clamp(i64::from(self.srtt8) + delta);
        self.var4 = clamp(i64::from(self.var4) + delta.abs() - i64::from(self.var4 / 4));
    }

    /// How long to wait for an ack: the smoothed round trip plus four
    /// deviations, at least 1 ms.
    pub(crate) fn timeout_ms(&self) -> u64 {
        (u64::from(self.srtt8 / 8) + u64::from(self.var4)).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_round_trip_converges_to_itself_and_jitter_widens_the_timeout() {
        let mut r = Rtt::first(10);
        assert_eq!(r.timeout_ms(), 10 + 20);
        for _ in 0..100 {
            r.sample(10);
        }
        // Integer gains leave a deviation of a few ms (as in TCP).
        assert!(r.timeout_ms() <= 13, "{r:?}");
        let mut j = Rtt::first(50);
        for k in 0..200u32 {
            j.sample(30 + (k * 7919) % 41);
        }
        // 30..=70 ms: the timeout covers the spread, not just the mean.
        assert!((70..=160).contains(&j.timeout_ms()), "{j:?} {}", j.timeout_ms());
    }

    #[test]
    fn extreme_samples_saturate_without_overflow() {
        let mut r = Rtt::first(u32::MAX);
        r.sample(0);
        r.sample(u32::MAX);
        assert!(r.timeout_ms() >= 1);
    }
}
