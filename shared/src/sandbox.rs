//! Sandbox outcomes: on a deployment started with `GIFTIFY_SANDBOX=true`, an order whose
//! `metadata.sandbox` names an outcome takes that branch end to end, so an integrator can
//! rehearse every path of their code against real orders, money and events:
//!
//! - `partial`: fulfilment comes one card short (PARTIALLY_FULFILLED, that card refunded); the
//!   order needs at least two cards;
//! - `refund`: nothing can be fulfilled (REFUNDED in full);
//! - `dead-letter`: the first fulfilment attempt fails for good, so the message reaches the
//!   dead-letter queue with the order PROCESSING and its money held; an operator's redrive then
//!   fulfils it normally;
//! - `slow`: fulfilment holds the order PROCESSING for [`SLOW_FULFILMENT`] first.
//!
//! Without the flag, `metadata.sandbox` is refused with a 400, so a production order can never
//! take a rehearsal branch. Everything else — stock, the wallet, the ledger, the events — is
//! real: the sandbox shapes an outcome, it does not fake one.

use crate::labels::Metadata;
use crate::{Error, Result};
use std::time::Duration;

/// The metadata key that asks for an outcome.
pub const SANDBOX_KEY: &str = "sandbox";

/// How long a `slow` order stays PROCESSING before it is fulfilled.
pub const SLOW_FULFILMENT: Duration = Duration::from_secs(3);

/// A rehearsed outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SandboxOutcome {
    Partial,
    Refund,
    DeadLetter,
    Slow,
}

impl SandboxOutcome {
    pub const ALL: [SandboxOutcome; 4] = [
        SandboxOutcome::Partial,
        SandboxOutcome::Refund,
        SandboxOutcome::DeadLetter,
        SandboxOutcome::Slow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SandboxOutcome::Partial => "partial",
            SandboxOutcome::Refund => "refund",
            SandboxOutcome::DeadLetter => "dead-letter",
            SandboxOutcome::Slow => "slow",
        }
    }

    /// The outcome an order's metadata asks for, if it asks for a known one. Used at
    /// fulfilment, where the metadata was checked by [`SandboxOutcome::requested`] at create.
    pub fn of(metadata: &Metadata) -> Option<Self> {
        let asked = metadata.get(SANDBOX_KEY)?;
        Self::ALL.into_iter().find(|o| o.as_str() == asked)
    }

    /// The outcome a new order asks for, checked: only a sandbox deployment takes one, it must
    /// be a known one, and `partial` needs an order of at least two cards.
    /// # Errors
    /// [`Error::Validation`] naming `metadata.sandbox`.
    pub fn requested(metadata: &Metadata, enabled: bool, cards: u32) -> Result<Option<Self>> {
        if metadata.get(SANDBOX_KEY).is_none() {
            return Ok(None);
        }
        let field = format!("metadata.{SANDBOX_KEY}");
        if !enabled {
            return Err(Error::validation(
                field,
                "sandbox outcomes are only taken by a sandbox deployment (GIFTIFY_SANDBOX=true)",
            ));
        }
        let outcome = Self::of(metadata).ok_or_else(|| {
            Error::validation(
                field.clone(),
                "must be one of partial, refund, dead-letter, slow",
            )
        })?;
        if outcome == SandboxOutcome::Partial && cards < 2 {
            return Err(Error::validation(
                field,
                "a partial fulfilment needs an order of at least two cards",
            ));
        }
        Ok(Some(outcome))
    }

    /// The units fulfilment issues per line under this outcome, from what stock allows:
    /// `refund` issues none, `partial` one fewer (from the last line that has any).
    pub fn shape(self, mut units: Vec<u32>) -> Vec<u32> {
        match self {
            SandboxOutcome::Refund => units.iter_mut().for_each(|u| *u = 0),
            SandboxOutcome::Partial => {
                if let Some(last) = units.iter_mut().rev().find(|u| **u > 0) {
                    *last -= 1;
                }
            }
            SandboxOutcome::DeadLetter | SandboxOutcome::Slow => {}
        }
        units
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asking(value: &str) -> Metadata {
        Metadata::parse([(SANDBOX_KEY.to_string(), value.to_string())].into()).unwrap()
    }

    #[test]
    fn only_a_sandbox_deployment_takes_a_known_outcome() {
        assert_eq!(
            SandboxOutcome::requested(&Metadata::default(), false, 1).unwrap(),
            None
        );
        assert!(SandboxOutcome::requested(&asking("refund"), false, 1).is_err());
        assert!(SandboxOutcome::requested(&asking("explode"), true, 1).is_err());
        assert!(SandboxOutcome::requested(&asking("partial"), true, 1).is_err());
        for outcome in SandboxOutcome::ALL {
            assert_eq!(
                SandboxOutcome::requested(&asking(outcome.as_str()), true, 2).unwrap(),
                Some(outcome)
            );
        }
    }

    #[test]
    fn partial_takes_one_unit_from_the_last_line_that_has_any() {
        assert_eq!(SandboxOutcome::Partial.shape(vec![2, 3, 0]), vec![2, 2, 0]);
        assert_eq!(SandboxOutcome::Partial.shape(vec![0, 0]), vec![0, 0]);
        assert_eq!(SandboxOutcome::Refund.shape(vec![2, 3]), vec![0, 0]);
        assert_eq!(SandboxOutcome::Slow.shape(vec![2, 3]), vec![2, 3]);
    }
}
