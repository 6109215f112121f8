//! The consumer side of the orders queue, in the domain's terms: a [`Delivery`] of a message,
//! and what the core decides becomes of it ([`Settlement`]). The rule that decides lives in
//! [`crate::Giftify::handle_batch`]; the [`crate::ports::Inbox`] port carries it out on the
//! SQLite queue or on SQS, and the one worker loop in `giftify-infra` (or the fulfillment
//! Lambda) drives both.

use crate::Error;
use rand::Rng;
use std::time::Duration;

/// One delivery of a queued message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub message_id: String,
    /// Proves that this delivery, not an earlier one of the same message, settles it.
    pub receipt: String,
    /// The message group: one user's orders, handled in order.
    pub group_id: String,
    /// 1 on the first delivery.
    pub receive_count: u32,
    /// The body as sent; it is parsed by the handler, so a malformed body fails like any
    /// other poison message instead of breaking the receive.
    pub body: String,
}

/// What becomes of a delivery, decided by the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// Handled: delete the message.
    Ack,
    /// A failure worth retrying: deliver the message again after `delay`. The queue moves it to
    /// the dead-letter queue once its receives are spent.
    RetryLater { reason: String, delay: Duration },
    /// A failure that no retry can cure (a body that is no order message, an order that does
    /// not exist, a bug): to the dead-letter queue now, where an operator looks at it, rather
    /// than through every receive first.
    DeadLetter { reason: String },
}

impl Settlement {
    pub fn is_ack(&self) -> bool {
        matches!(self, Settlement::Ack)
    }

    /// Why the delivery failed, unless it did not.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Settlement::Ack => None,
            Settlement::RetryLater { reason, .. } | Settlement::DeadLetter { reason } => {
                Some(reason)
            }
        }
    }
}

/// How long a failed message waits before it is delivered again: `base × 2^(receives − 1)`,
/// capped at `max`, with "equal jitter" (half fixed, half random) so that failures of many
/// groups do not retry in lockstep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    pub fn delay(&self, receive_count: u32) -> Duration {
        let exponent = receive_count.saturating_sub(1).min(20);
        let nominal = self.base.saturating_mul(1 << exponent).min(self.max);
        let half = nominal / 2;
        half + half.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
    }

    /// The settlement of a failed delivery: retryable failures are tried again after the
    /// backoff, anything else is dead-lettered now.
    pub fn settle_failure(&self, error: &Error, reason: String, receive_count: u32) -> Settlement {
        if error.is_retryable() {
            Settlement::RetryLater {
                reason,
                delay: self.delay(receive_count),
            }
        } else {
            Settlement::DeadLetter { reason }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_per_receive_within_their_jitter_and_cap() {
        let policy = RetryPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
        };
        for receives in 1..=12 {
            let nominal = Duration::from_secs(1 << (receives - 1)).min(policy.max);
            let delay = policy.delay(receives);
            assert!(
                delay >= nominal / 2 && delay <= nominal,
                "{receives}: {delay:?}"
            );
        }
        let zero = RetryPolicy {
            base: Duration::ZERO,
            ..policy
        };
        assert_eq!(zero.delay(3), Duration::ZERO);
    }

    #[test]
    fn only_retryable_failures_are_tried_again() {
        let policy = RetryPolicy::default();
        let retry = policy.settle_failure(&Error::Conflict("stock"), "stock".into(), 1);
        assert!(matches!(retry, Settlement::RetryLater { .. }));
        let dead = policy.settle_failure(&Error::internal("bug"), "bug".into(), 1);
        assert_eq!(
            dead,
            Settlement::DeadLetter {
                reason: "bug".into()
            }
        );
        assert_eq!(dead.reason(), Some("bug"));
        assert!(Settlement::Ack.is_ack() && Settlement::Ack.reason().is_none());
    }
}
