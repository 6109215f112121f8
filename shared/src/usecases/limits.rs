//! Customers' budgets for the actions that cost money or guard secrets.

use super::Giftify;
use crate::rate_limits::{LimitedAction, RateWindow};
use crate::{Error, Result};
use chrono::{DateTime, Utc};

impl Giftify {
    /// Counts one `action` by `who` (an account id; the client's address for a registration)
    /// against its budget. Every attempt counts, refused or replayed alike: the budget limits
    /// what a client may ask, not what it gets.
    /// # Errors
    /// [`Error::RateLimited`] with the seconds until the window ends, once the budget of the
    /// window is spent.
    pub async fn spend_budget(&self, action: LimitedAction, who: &str) -> Result<()> {
        let Some(budget) = self.rules.user_limits.budget(action) else {
            return Ok(());
        };
        let now = self.now();
        self.count_in(
            &budget.window_of(&format!("{}#{who}", action.as_str()), now),
            now,
        )
        .await
    }

    /// Counts one request in `window`.
    /// # Errors
    /// [`Error::RateLimited`] when the window holds its limit already.
    pub(super) async fn count_in(&self, window: &RateWindow, now: DateTime<Utc>) -> Result<()> {
        if self.ports.rate_limits.count_request(window).await? {
            Ok(())
        } else {
            Err(Error::RateLimited {
                retry_after_secs: window.retry_after_secs(now),
            })
        }
    }
}
