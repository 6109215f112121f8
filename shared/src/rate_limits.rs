//! Request budgets counted in fixed windows that every API process shares (the count lives in
//! the backend, not in a process): an API key's budget, and each customer's budget for the
//! actions that cost money or guard secrets — registering (per client address), topping up,
//! ordering, revealing and redeeming cards (per account).

use crate::{Error, Result};
use chrono::{DateTime, Duration, DurationRound, Utc};

/// At most `requests` per `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateBudget {
    pub requests: u32,
    pub window: Duration,
}

impl RateBudget {
    pub const fn per(requests: u32, window: Duration) -> Self {
        RateBudget { requests, window }
    }

    /// The window `now` falls in, for what is counted (a key, an action of an account).
    pub fn window_of(&self, counted: &str, now: DateTime<Utc>) -> RateWindow {
        let start = now.duration_trunc(self.window).unwrap_or(now);
        RateWindow {
            bucket: format!("rate#{counted}#{}", start.timestamp()),
            limit: self.requests,
            starts_at: start,
            ends_at: start + self.window,
        }
    }
}

/// One fixed window of one budget, as the core computes it for the store to count in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateWindow {
    /// What is counted, and the window's start.
    pub bucket: String,
    pub limit: u32,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

impl RateWindow {
    /// Whole seconds until the window ends (at least 1), for `Retry-After`.
    pub fn retry_after_secs(&self, now: DateTime<Utc>) -> u64 {
        let millis = u64::try_from((self.ends_at - now).num_milliseconds()).unwrap_or(0);
        millis.div_ceil(1000).max(1)
    }
}

/// An action with a budget per customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitedAction {
    /// Counted per client address: there is no account yet.
    Register,
    TopUp,
    PlaceOrder,
    RevealCard,
    RedeemCard,
}

impl LimitedAction {
    pub const ALL: [LimitedAction; 5] = [
        LimitedAction::Register,
        LimitedAction::TopUp,
        LimitedAction::PlaceOrder,
        LimitedAction::RevealCard,
        LimitedAction::RedeemCard,
    ];

    /// The name in `GIFTIFY_USER_RATE_LIMITS` and in the counted bucket.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitedAction::Register => "register",
            LimitedAction::TopUp => "topup",
            LimitedAction::PlaceOrder => "order",
            LimitedAction::RevealCard => "reveal",
            LimitedAction::RedeemCard => "redeem",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Each limited action's budget; `None` leaves it unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActionLimits([Option<RateBudget>; 5]);

impl Default for ActionLimits {
    /// Generous for a person, tight for a script: 20 registrations per address per hour; per
    /// account, 10 top-ups, 30 orders, 30 reveals and 10 redemptions per minute.
    fn default() -> Self {
        let minute = Duration::minutes(1);
        ActionLimits([
            Some(RateBudget::per(20, Duration::hours(1))),
            Some(RateBudget::per(10, minute)),
            Some(RateBudget::per(30, minute)),
            Some(RateBudget::per(30, minute)),
            Some(RateBudget::per(10, minute)),
        ])
    }
}

impl ActionLimits {
    /// No action limited (load tests: many customers behind one address).
    pub const OFF: ActionLimits = ActionLimits([None; 5]);

    pub fn budget(&self, action: LimitedAction) -> Option<RateBudget> {
        self.0[action.index()]
    }

    /// Reads `off`, or a comma-separated list of `action=REQUESTS/SECONDS` or `action=off`
    /// that changes the defaults it names (`order=120/60,register=off`).
    /// # Errors
    /// [`Error::Validation`] naming what does not parse.
    pub fn parse(spec: &str) -> Result<Self> {
        let spec = spec.trim();
        if spec == "off" {
            return Ok(Self::OFF);
        }
        let mut limits = Self::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = || {
                Error::validation(
                    "GIFTIFY_USER_RATE_LIMITS",
                    format!(
                        "`{part}` is not ACTION=REQUESTS/SECONDS or ACTION=off, with ACTION one of \
                         register, topup, order, reveal, redeem; REQUESTS 1–1000000 and SECONDS \
                         1–86400"
                    ),
                )
            };
            let (name, budget) = part.split_once('=').ok_or_else(bad)?;
            let action = LimitedAction::ALL
                .into_iter()
                .find(|a| a.as_str() == name.trim())
                .ok_or_else(bad)?;
            limits.0[action.index()] = match budget.trim() {
                "off" => None,
                budget => {
                    let (requests, seconds) = budget.split_once('/').ok_or_else(bad)?;
                    let requests: u32 = requests.trim().parse().map_err(|_| bad())?;
                    let seconds: i64 = seconds.trim().parse().map_err(|_| bad())?;
                    if !(1..=1_000_000).contains(&requests) || !(1..=86_400).contains(&seconds) {
                        return Err(bad());
                    }
                    Some(RateBudget::per(requests, Duration::seconds(seconds)))
                }
            };
        }
        Ok(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_changes_the_defaults_it_names_and_refuses_what_does_not_parse() {
        let limits = ActionLimits::parse("order=120/60, register=off").unwrap();
        assert_eq!(
            limits.budget(LimitedAction::PlaceOrder),
            Some(RateBudget::per(120, Duration::seconds(60)))
        );
        assert_eq!(limits.budget(LimitedAction::Register), None);
        assert_eq!(
            limits.budget(LimitedAction::TopUp),
            ActionLimits::default().budget(LimitedAction::TopUp)
        );
        assert_eq!(ActionLimits::parse("off").unwrap(), ActionLimits::OFF);
        for bad in [
            "orders=1/60",
            "order=0/60",
            "order=1/0",
            "order=1",
            "order",
            "order=-1/60",
            "order=1/86401",
        ] {
            assert!(ActionLimits::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn windows_are_fixed_and_tell_when_to_come_back() {
        let budget = RateBudget::per(3, Duration::seconds(10));
        let at = DateTime::from_timestamp(1_700_000_004, 250_000_000).unwrap();
        let window = budget.window_of("order#user_1", at);
        assert_eq!(window.bucket, "rate#order#user_1#1700000000");
        assert_eq!(window.limit, 3);
        assert_eq!(window.retry_after_secs(at), 6);
        assert_eq!(
            budget.window_of("order#user_1", at + Duration::seconds(6)),
            RateWindow {
                bucket: "rate#order#user_1#1700000010".into(),
                limit: 3,
                starts_at: window.ends_at,
                ends_at: window.ends_at + Duration::seconds(10),
            }
        );
    }
}
