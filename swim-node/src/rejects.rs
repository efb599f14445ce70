//! Warnings about packets refused because the sender's key or cluster
//! label does not match ours: the one kind of rejection that points at a
//! set-up to fix rather than at a noisy network, so it is logged at the
//! warn level, at most once per [`REJECT_WARN_INTERVAL`] and reason, with
//! the count of those not warned about in between.

use core::time::Duration;
use std::time::Instant;

use lapswim_core::DecodeError;

/// The least time between two warnings for one reason.
pub const REJECT_WARN_INTERVAL: Duration = Duration::from_secs(10);

/// What a refusal for `reason` says about the sender's set-up, for the
/// reasons a misconfiguration causes; `None` for the others (malformed,
/// truncated, corrupted packets: the network's doing, logged at debug).
pub(crate) fn hint(reason: DecodeError) -> Option<&'static str> {
    Some(match reason {
        DecodeError::Unauthenticated => {
            "refused a packet sealed with a key this node does not hold (wrong key, or one not installed here yet)"
        }
        DecodeError::Sealed => "refused a sealed packet: this node has no key",
        DecodeError::Plaintext => "refused an unsealed packet: this node requires encryption and the sender has no key",
        DecodeError::Label => "refused a packet with another cluster label (another cluster, or a wrong label)",
        _ => return None,
    })
}

/// When each reason was last warned about, and how many refusals since.
#[derive(Debug, Default)]
pub(crate) struct RejectWarnings {
    last: [Option<Instant>; DecodeError::ALL.len()],
    suppressed: [u64; DecodeError::ALL.len()],
}

impl RejectWarnings {
    /// Notes a refusal for `reason` at `now`. `Some(n)` when it is to be
    /// warned about, `n` being the refusals for that reason not warned
    /// about since the last warning; `None` when it is not (a reason
    /// without a [`hint`], or a warning less than [`REJECT_WARN_INTERVAL`]
    /// ago).
    pub(crate) fn note(&mut self, now: Instant, reason: DecodeError) -> Option<u64> {
        hint(reason)?;
        let i = reason.index();
        if self.last[i].is_some_and(|at| now.saturating_duration_since(at) < REJECT_WARN_INTERVAL) {
            self.suppressed[i] += 1;
            return None;
        }
        self.last[i] = Some(now);
        Some(core::mem::take(&mut self.suppressed[i]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_per_interval_and_reason_with_the_count_in_between() {
        let t0 = crate::Clock::read();
        let mut w = RejectWarnings::default();
        assert_eq!(w.note(t0, DecodeError::Unauthenticated), Some(0));
        for i in 1..=5 {
            assert_eq!(w.note(t0 + Duration::from_secs(i), DecodeError::Unauthenticated), None);
        }
        // Another reason has its own allowance.
        assert_eq!(w.note(t0 + Duration::from_secs(1), DecodeError::Label), Some(0));
        assert_eq!(w.note(t0 + REJECT_WARN_INTERVAL, DecodeError::Unauthenticated), Some(5));
        assert_eq!(w.note(t0 + REJECT_WARN_INTERVAL, DecodeError::Unauthenticated), None);
        assert_eq!(w.note(t0 + 2 * REJECT_WARN_INTERVAL, DecodeError::Unauthenticated), Some(1));
    }

    #[test]
    fn only_key_and_label_mismatches_are_warned_about() {
        let mut w = RejectWarnings::default();
        let now = crate::Clock::read();
        for reason in DecodeError::ALL {
            let warned = w.note(now, reason).is_some();
            let mismatch = matches!(
                reason,
                DecodeError::Unauthenticated | DecodeError::Sealed | DecodeError::Plaintext | DecodeError::Label
            );
            assert_eq!(warned, mismatch, "{reason:?}");
        }
    }
}
