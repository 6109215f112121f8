//! Refresh-token families and login throttling.

use super::store::{DynamoStore, Transaction, TxFailure, check, put, retrying, update};
use crate::aws::item::{Attrs, Item, b, epoch, item, n, s, sdk_error, ts};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use giftify_shared::ids::UserId;
use giftify_shared::ports::{LoginThrottle, Sessions};
use giftify_shared::user::{NewRefreshToken, Rotation, ThrottlePolicy};
use giftify_shared::{Error, Result};

/// Refresh tokens live as `tokenHash` items; each family has one `FAMILY#<id>` item whose
/// `revoked` flag every rotation checks inside its transaction, so revoking a family is one
/// write that no in-flight rotation can slip past.
fn family_key(family: &str) -> Item {
    item([("tokenHash", s(format!("FAMILY#{family}")))])
}

fn token_key(hash: &str) -> Item {
    item([("tokenHash", s(hash))])
}

fn token_item(token: &NewRefreshToken) -> Item {
    item([
        ("tokenHash", s(&token.token_hash)),
        ("familyId", s(&token.family_id)),
        ("userId", s(token.user_id.as_str())),
        ("sessionEpoch", n(i64::from(token.session_epoch))),
        ("expiresAt", epoch(token.expires_at)),
        ("createdAt", ts(token.now)),
    ])
}

impl DynamoStore {
    async fn revoke(&self, family: &str, now: DateTime<Utc>) -> Result<()> {
        self.client
            .update_item()
            .table_name(&self.tables.refresh_tokens)
            .set_key(Some(family_key(family)))
            .update_expression("SET #revoked = :yes, #revokedAt = :now")
            .set_expression_attribute_names(super::store::names_of(&["#revoked #revokedAt"]))
            .set_expression_attribute_values(Some(item([(":yes", b(true)), (":now", ts(now))])))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }
}

#[async_trait]
impl Sessions for DynamoStore {
    async fn start_session(&self, token: &NewRefreshToken) -> Result<()> {
        let family = item([
            ("tokenHash", s(format!("FAMILY#{}", token.family_id))),
            ("userId", s(token.user_id.as_str())),
            ("revoked", b(false)),
            ("expiresAt", epoch(token.expires_at)),
        ]);
        let mut transaction = Transaction::new();
        transaction.push(
            put(
                &self.tables.refresh_tokens,
                family,
                Some("attribute_not_exists(tokenHash)"),
                Item::new(),
            )?,
            Error::internal("a new session family id is taken"),
        );
        transaction.push(
            put(
                &self.tables.refresh_tokens,
                token_item(token),
                Some("attribute_not_exists(tokenHash)"),
                Item::new(),
            )?,
            Error::internal("a new refresh token is taken"),
        );
        self.commit(transaction)
            .await
            .map_err(TxFailure::into_error)
    }

    async fn rotate(
        &self,
        presented_hash: &str,
        replacement: &NewRefreshToken,
    ) -> Result<Rotation> {
        let now = replacement.now;
        let Some(raw) = self
            .get(&self.tables.refresh_tokens, token_key(presented_hash))
            .await?
        else {
            return Ok(Rotation::Invalid);
        };
        let a = Attrs::new(&raw, "refresh-tokens");
        let family = a.s("familyId")?.to_string();
        if a.n("expiresAt")? <= now.timestamp() || family != replacement.family_id {
            return Ok(Rotation::Invalid);
        }
        if a.opt_s("usedAt")?.is_some() {
            self.revoke(&family, now).await?;
            return Ok(Rotation::ReuseDetected);
        }
        let user_id = UserId::parse(a.s("userId")?)?;
        let session_epoch = a.counter("sessionEpoch")?;
        let replacement = &NewRefreshToken {
            session_epoch,
            ..replacement.clone()
        };
        let mut transaction: Transaction<Result<Rotation>> = Transaction::new();
        // Spent a moment ago by a concurrent refresh: the same token twice is reuse.
        transaction.push(
            update(
                &self.tables.refresh_tokens,
                token_key(presented_hash),
                "SET #usedAt = :now",
                Some("attribute_not_exists(#usedAt)"),
                item([(":now", ts(now))]),
            )?,
            Ok(Rotation::ReuseDetected),
        );
        transaction.push(
            check(
                &self.tables.refresh_tokens,
                family_key(&family),
                "#revoked = :no",
                item([(":no", b(false))]),
            )?,
            Ok(Rotation::Invalid),
        );
        transaction.push(
            put(
                &self.tables.refresh_tokens,
                token_item(replacement),
                Some("attribute_not_exists(tokenHash)"),
                Item::new(),
            )?,
            Err(Error::Conflict(
                "the replacement refresh token exists already",
            )),
        );
        match self.commit(transaction).await {
            Ok(()) => Ok(Rotation::Rotated {
                user_id,
                session_epoch,
            }),
            Err(TxFailure::Refused(Ok(Rotation::ReuseDetected))) => {
                self.revoke(&family, now).await?;
                Ok(Rotation::ReuseDetected)
            }
            Err(TxFailure::Refused(refused)) => refused,
            Err(TxFailure::Failed(error)) => Err(error),
        }
    }

    async fn revoke_family(&self, presented_hash: &str) -> Result<()> {
        if let Some(raw) = self
            .get(&self.tables.refresh_tokens, token_key(presented_hash))
            .await?
        {
            let family = Attrs::new(&raw, "refresh-tokens")
                .s("familyId")?
                .to_string();
            self.revoke(&family, self.clock.now()).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl LoginThrottle for DynamoStore {
    async fn locked_until(
        &self,
        account: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>> {
        let Some(raw) = self
            .get(&self.tables.login_throttle, item([("account", s(account))]))
            .await?
        else {
            return Ok(None);
        };
        let until = Attrs::new(&raw, "login-throttle").opt_ts("lockedUntil")?;
        Ok(until.filter(|until| *until > now))
    }

    async fn record_failure(
        &self,
        account: &str,
        policy: &ThrottlePolicy,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>> {
        retrying(|| async {
            let key = item([("account", s(account))]);
            let current = self.get(&self.tables.login_throttle, key.clone()).await?;
            let (failures, window_start, version, locked_until) = match &current {
                Some(raw) => {
                    let a = Attrs::new(raw, "login-throttle");
                    (
                        a.n("failures")?,
                        a.ts("windowStart")?,
                        a.n("version")?,
                        a.opt_ts("lockedUntil")?,
                    )
                }
                None => (0, now, 0, None),
            };
            if let Some(until) = locked_until.filter(|until| *until > now) {
                // Already locked (a login raced the check): the lock stands, unextended. Writing
                // a fresh count here would drop `lockedUntil` and unlock the account.
                return Ok(Some(until));
            }
            let (failures, window_start) = if now - window_start > policy.window {
                (1, now)
            } else {
                (failures + 1, window_start)
            };
            let locks = failures >= i64::from(policy.max_failures);
            let locked_until = locks.then(|| now + policy.lockout);
            let mut record = item([
                ("account", s(account)),
                ("failures", n(if locks { 0 } else { failures })),
                ("windowStart", ts(window_start)),
                ("version", n(version + 1)),
                ("expiresAt", epoch(now + policy.window + policy.lockout)),
            ]);
            if let Some(until) = locked_until {
                record.insert("lockedUntil".into(), ts(until));
            }
            let condition = if current.is_some() {
                "#version = :version"
            } else {
                "attribute_not_exists(#account)"
            };
            let result = self
                .client
                .put_item()
                .table_name(&self.tables.login_throttle)
                .set_item(Some(record))
                .condition_expression(condition)
                .set_expression_attribute_names(super::store::names_of(&[condition]))
                .set_expression_attribute_values(
                    current.is_some().then(|| item([(":version", n(version))])),
                )
                .send()
                .await;
            match result {
                Ok(_) => Ok(locked_until),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    Err(Error::Conflict("concurrent login failure"))
                }
                Err(e) => Err(sdk_error(e)),
            }
        })
        .await
    }

    async fn reset(&self, account: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.tables.login_throttle)
            .set_key(Some(item([("account", s(account))])))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }
}
