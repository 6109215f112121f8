//! Users, refresh-token families, login throttling, idempotency keys and the health check.

use super::{DynamoStore, Transaction, TxFailure, check, put, retrying, update};
use crate::aws::item::{Attrs, Item, b, epoch, item, n, s, sdk_error, ts};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};
use giftify_shared::Missing;
use giftify_shared::idempotency::{
    Claim, ClaimDecision, IdempotencyCommit, IdempotencyScope, IdempotentOutcome, NewClaim,
    Refusal, StoredKey, StoredKeyState, decide_claim,
};
use giftify_shared::ids::{OrderId, TransactionId, UserId};
use giftify_shared::ledger::Movement;
use giftify_shared::ports::{Health, IdempotencyKeys, LoginThrottle, Sessions, Users};
use giftify_shared::user::{
    Email, NewRefreshToken, NewUser, ProfileUpdate, Role, Rotation, ThrottlePolicy, User,
    UserCredentials, UserStatus,
};
use giftify_shared::wallet::WalletTransaction;
use giftify_shared::{Error, Paise, Result};

/// A wallet as read before an optimistic write.
#[derive(Clone, Copy, Debug)]
pub(super) struct WalletState {
    pub balance: Paise,
    /// Movements so far; each movement's record carries the sequence number it produced.
    pub sequence: i64,
}

impl WalletState {
    pub fn next(&self) -> i64 {
        self.sequence + 1
    }
}

/// The users table also holds one `EMAIL#<email>` item per account: DynamoDB indexes do not
/// enforce uniqueness, a conditional put of this item does, and a consistent read of it finds
/// the account at login without the eventually consistent email index.
fn email_key(email: &Email) -> Item {
    item([("userId", s(format!("EMAIL#{}", email.as_str())))])
}

fn user_key(id: &UserId) -> Item {
    item([("userId", s(id.as_str()))])
}

/// The user an `UpdateItem` conditional on the user's existence returned (`ReturnValue::AllNew`).
fn updated_user(
    result: std::result::Result<
        aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
        aws_sdk_dynamodb::error::SdkError<
            aws_sdk_dynamodb::operation::update_item::UpdateItemError,
        >,
    >,
) -> Result<User> {
    match result {
        Ok(output) => user_from(&output.attributes.unwrap_or_default()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Err(Error::NotFound(Missing::User))
        }
        Err(e) => Err(sdk_error(e)),
    }
}

pub(super) fn user_from(raw: &Item) -> Result<User> {
    let a = Attrs::new(raw, "users");
    Ok(User {
        id: UserId::parse(a.s("userId")?)?,
        email: Email::stored(a.s("email")?)?,
        first_name: a.s("firstName")?.to_string(),
        last_name: a.s("lastName")?.to_string(),
        phone_number: a.opt_s("phoneNumber")?.map(str::to_string),
        role: a.parsed("role", Role::parse)?,
        status: a.parsed("status", UserStatus::parse)?,
        wallet_balance: a.money("walletBalance")?,
        is_email_verified: a.bool("isEmailVerified")?,
        is_phone_verified: a.bool("isPhoneVerified")?,
        created_at: a.ts("createdAt")?,
        updated_at: a.ts("updatedAt")?,
        last_login_at: a.opt_ts("lastLoginAt")?,
        session_epoch: a.counter("sessionEpoch")?,
    })
}

fn user_item(user: &NewUser) -> Item {
    let mut raw = item([
        ("userId", s(user.id.as_str())),
        ("email", s(user.email.as_str())),
        ("passwordHash", s(&user.password_hash)),
        ("firstName", s(&user.first_name)),
        ("lastName", s(&user.last_name)),
        ("role", s(user.role.as_str())),
        ("status", s(UserStatus::Active.as_str())),
        ("walletBalance", n(0)),
        ("isEmailVerified", b(false)),
        ("isPhoneVerified", b(false)),
        ("createdAt", ts(user.now)),
        ("updatedAt", ts(user.now)),
    ]);
    if let Some(phone) = &user.phone_number {
        raw.insert("phoneNumber".into(), s(phone));
    }
    raw
}

impl DynamoStore {
    pub(super) async fn user_item(&self, id: &UserId) -> Result<Option<Item>> {
        self.get(&self.tables.users, user_key(id)).await
    }

    /// The current balance, read consistently; `NotFound` for an unknown user.
    pub(super) async fn current_balance(&self, id: &UserId) -> Result<Paise> {
        Ok(self.wallet_state(id).await?.balance)
    }

    /// The balance and the wallet's sequence number (how many movements it has had).
    pub(super) async fn wallet_state(&self, id: &UserId) -> Result<WalletState> {
        let raw = self
            .user_item(id)
            .await?
            .ok_or(Error::NotFound(Missing::User))?;
        let a = Attrs::new(&raw, "users");
        Ok(WalletState {
            balance: a.money("walletBalance")?,
            sequence: a.opt_n("walletSequence")?.unwrap_or(0),
        })
    }

    /// The transaction item that moves a wallet from `state` to `new` on the condition that no
    /// other movement happened since `state` was read. The condition is on the sequence, not
    /// the balance, so a balance that went away and came back (A→B→A) cannot slip through.
    pub(super) fn balance_update(
        &self,
        id: &UserId,
        state: &WalletState,
        new: Paise,
        now: DateTime<Utc>,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem> {
        let condition = if state.sequence == 0 {
            "attribute_exists(#userId) AND attribute_not_exists(#walletSequence)"
        } else {
            "#walletSequence = :sequence"
        };
        let mut values = item([
            (":new", n(new.get())),
            (":next", n(state.sequence + 1)),
            (":now", ts(now)),
        ]);
        if state.sequence != 0 {
            values.insert(":sequence".into(), n(state.sequence));
        }
        update(
            &self.tables.users,
            user_key(id),
            "SET #walletBalance = :new, #walletSequence = :next, #updatedAt = :now",
            Some(condition),
            values,
        )
    }

    /// Adds the item that finishes an idempotency key to `transaction`: refused with
    /// `IdempotencyInProgress` when the token no longer holds the key.
    pub(super) fn add_idempotency_commit(
        &self,
        transaction: &mut Transaction,
        commit: &IdempotencyCommit,
    ) -> Result<()> {
        transaction.push(
            update(
                &self.tables.idempotency_keys,
                scope_key(&commit.scope),
                "SET #state = :done, #outcome = :outcome REMOVE #token, #leaseUntil",
                Some("#state = :in_progress AND #token = :token"),
                item([
                    (":done", s("DONE")),
                    (":in_progress", s("IN_PROGRESS")),
                    (":token", s(&commit.token)),
                    (":outcome", outcome_value(&commit.outcome)),
                ]),
            )?,
            Error::IdempotencyInProgress,
        );
        Ok(())
    }

    /// Adds a movement the core decided to `transaction`: the balance from the wallet as read
    /// (refused as a conflict, to read again, if the wallet moved since) and the record.
    /// Returns the record as committed.
    pub(super) fn add_movement(
        &self,
        transaction: &mut Transaction,
        movement: &Movement,
        wallet: &WalletState,
    ) -> Result<WalletTransaction> {
        let after = movement.balance_after(wallet.balance)?;
        transaction.push(
            self.balance_update(&movement.user, wallet, after, movement.at)?,
            Error::Conflict("the wallet moved since it was read"),
        );
        let record = movement.record(after);
        transaction.push(
            self.transaction_record(&record, wallet.next())?,
            Error::internal("a new wallet transaction id is taken"),
        );
        Ok(record)
    }
}

#[async_trait]
impl Users for DynamoStore {
    async fn create_user(&self, user: &NewUser) -> Result<User> {
        let mut transaction = Transaction::new();
        transaction.push(
            put(
                &self.tables.users,
                user_item(user),
                Some("attribute_not_exists(userId)"),
                Item::new(),
            )?,
            Error::internal("a new user id is taken"),
        );
        transaction.push(
            put(
                &self.tables.users,
                item([
                    ("userId", s(format!("EMAIL#{}", user.email.as_str()))),
                    ("ownerId", s(user.id.as_str())),
                ]),
                Some("attribute_not_exists(userId)"),
                Item::new(),
            )?,
            Error::EmailAlreadyExists,
        );
        self.commit(transaction)
            .await
            .map_err(TxFailure::into_error)?;
        self.user(&user.id)
            .await?
            .ok_or_else(|| Error::internal("user vanished after create"))
    }

    async fn credentials_by_email(&self, email: &Email) -> Result<Option<UserCredentials>> {
        let Some(guard) = self.get(&self.tables.users, email_key(email)).await? else {
            return Ok(None);
        };
        let owner = UserId::parse(Attrs::new(&guard, "users").s("ownerId")?)?;
        let Some(raw) = self.user_item(&owner).await? else {
            return Ok(None);
        };
        Ok(Some(UserCredentials {
            password_hash: Attrs::new(&raw, "users").s("passwordHash")?.to_string(),
            user: user_from(&raw)?,
        }))
    }

    async fn user(&self, id: &UserId) -> Result<Option<User>> {
        self.user_item(id)
            .await?
            .as_ref()
            .map(user_from)
            .transpose()
    }

    async fn update_profile(
        &self,
        id: &UserId,
        change: &ProfileUpdate,
        now: DateTime<Utc>,
    ) -> Result<User> {
        let mut sets = vec!["#updatedAt = :now"];
        let mut values = item([(":now", ts(now))]);
        for (field, placeholder, value) in [
            ("#firstName = :first", ":first", &change.first_name),
            ("#lastName = :last", ":last", &change.last_name),
            ("#phoneNumber = :phone", ":phone", &change.phone_number),
        ] {
            if let Some(value) = value {
                sets.push(field);
                values.insert(placeholder.into(), s(value));
            }
        }
        let expression = format!("SET {}", sets.join(", "));
        let condition = "attribute_exists(#userId)";
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.users)
            .set_key(Some(user_key(id)))
            .update_expression(&expression)
            .condition_expression(condition)
            .set_expression_attribute_names(super::names_of(&[&expression, condition]))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        updated_user(result)
    }

    async fn record_login(&self, id: &UserId, now: DateTime<Utc>) -> Result<()> {
        self.client
            .update_item()
            .table_name(&self.tables.users)
            .set_key(Some(user_key(id)))
            .update_expression("SET #lastLoginAt = :now")
            .condition_expression("attribute_exists(#userId)")
            .set_expression_attribute_names(super::names_of(&["#lastLoginAt #userId"]))
            .expression_attribute_values(":now", ts(now))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn make_admin(
        &self,
        id: &UserId,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<User> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.users)
            .set_key(Some(user_key(id)))
            .update_expression(
                "SET #role = :admin, #passwordHash = :hash, #updatedAt = :now \
                 ADD #sessionEpoch :one",
            )
            .condition_expression("attribute_exists(#userId)")
            .set_expression_attribute_names(super::names_of(&[
                "#role #passwordHash #updatedAt #sessionEpoch #userId",
            ]))
            .set_expression_attribute_values(Some(item([
                (":admin", s(Role::Admin.as_str())),
                (":hash", s(password_hash)),
                (":now", ts(now)),
                (":one", n(1)),
            ])))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        updated_user(result)
    }
}

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
            .set_expression_attribute_names(super::names_of(&["#revoked #revokedAt"]))
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
        let mut transaction = Transaction::new();
        // Spent a moment ago by a concurrent refresh: the same token twice is reuse.
        transaction.push(
            update(
                &self.tables.refresh_tokens,
                token_key(presented_hash),
                "SET #usedAt = :now",
                Some("attribute_not_exists(#usedAt)"),
                item([(":now", ts(now))]),
            )?,
            Rotation::ReuseDetected,
        );
        transaction.push(
            check(
                &self.tables.refresh_tokens,
                family_key(&family),
                "#revoked = :no",
                item([(":no", b(false))]),
            )?,
            Rotation::Invalid,
        );
        transaction.push(
            put(
                &self.tables.refresh_tokens,
                token_item(replacement),
                Some("attribute_not_exists(tokenHash)"),
                Item::new(),
            )?,
            Rotation::Invalid,
        );
        match self.commit(transaction).await {
            Ok(()) => Ok(Rotation::Rotated {
                user_id,
                session_epoch,
            }),
            Err(TxFailure::Refused(Rotation::ReuseDetected)) => {
                self.revoke(&family, now).await?;
                Ok(Rotation::ReuseDetected)
            }
            Err(TxFailure::Refused(refused)) => Ok(refused),
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
                .set_expression_attribute_names(super::names_of(&[condition]))
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

fn scope_key(scope: &IdempotencyScope) -> Item {
    item([(
        "scopeKey",
        s(format!("{}#{}", scope.user_id, scope.key.as_str())),
    )])
}

fn outcome_value(outcome: &IdempotentOutcome) -> AttributeValue {
    let map = match outcome {
        IdempotentOutcome::ToppedUp(id) => item([("kind", s("TOPPED_UP")), ("id", s(id.as_str()))]),
        IdempotentOutcome::OrderPlaced(id) => {
            item([("kind", s("ORDER_PLACED")), ("id", s(id.as_str()))])
        }
        IdempotentOutcome::OrderCancelled(id) => {
            item([("kind", s("ORDER_CANCELLED")), ("id", s(id.as_str()))])
        }
        IdempotentOutcome::Refused(refusal) => {
            item([("kind", s("REFUSED")), ("refusal", s(refusal.to_json()))])
        }
    };
    AttributeValue::M(map)
}

/// `None` for a refusal an earlier version stored as HTTP bytes (kind `RESPONSE`): it counts as
/// expired, since it moved no money and running the request again is safe.
fn outcome_from(raw: &Item) -> Result<Option<IdempotentOutcome>> {
    let a = Attrs::new(raw, "idempotency-keys");
    Ok(Some(match a.s("kind")? {
        "TOPPED_UP" => IdempotentOutcome::ToppedUp(TransactionId::parse(a.s("id")?)?),
        "ORDER_PLACED" => IdempotentOutcome::OrderPlaced(OrderId::parse(a.s("id")?)?),
        "ORDER_CANCELLED" => IdempotentOutcome::OrderCancelled(OrderId::parse(a.s("id")?)?),
        "REFUSED" => IdempotentOutcome::Refused(Refusal::from_json(a.s("refusal")?)?),
        "RESPONSE" => return Ok(None),
        other => {
            return Err(Error::internal(format!(
                "unknown idempotency outcome {other}"
            )));
        }
    }))
}

/// `None` when a conditional write lost to another writer (read again), else the error.
fn lost_race_or_error<E, R>(error: aws_sdk_dynamodb::error::SdkError<E, R>) -> Option<Error>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let lost = error
        .as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|code| code == "ConditionalCheckFailedException");
    (!lost).then(|| sdk_error(error))
}

fn stored_key(raw: &Item) -> Result<StoredKey> {
    let a = Attrs::new(raw, "idempotency-keys");
    let mut expires_at = DateTime::from_timestamp(a.n("expiresAt")?, 0)
        .ok_or_else(|| Error::internal("corrupt idempotency expiry"))?;
    let state = match a.s("state")? {
        "DONE" => match outcome_from(
            a.map("outcome")?
                .ok_or_else(|| Error::internal("finished key without outcome"))?,
        )? {
            Some(outcome) => StoredKeyState::Done(outcome),
            None => {
                expires_at = DateTime::UNIX_EPOCH;
                StoredKeyState::Done(IdempotentOutcome::Refused(Refusal::IdempotencyKeyReused))
            }
        },
        "IN_PROGRESS" => StoredKeyState::InProgress {
            token: a.s("token")?.to_string(),
            lease_until: a.ts("leaseUntil")?,
        },
        other => return Err(Error::internal(format!("idempotency key state {other}"))),
    };
    Ok(StoredKey {
        fingerprint: a.s("fingerprint")?.to_string(),
        state,
        expires_at,
    })
}

#[async_trait]
impl IdempotencyKeys for DynamoStore {
    /// Reads the key's record, asks the core what the claim means, and writes what it decided
    /// conditionally; a claim that loses a race to another reads again (three times at most,
    /// then it is in progress).
    async fn claim(&self, claim: &NewClaim) -> Result<Claim> {
        let key = scope_key(&claim.scope);
        for _ in 0..3 {
            let stored = self
                .get(&self.tables.idempotency_keys, key.clone())
                .await?
                .as_ref()
                .map(stored_key)
                .transpose()?;
            let decision = decide_claim(stored.as_ref(), claim);
            let written = match &decision {
                ClaimDecision::Insert(lease) => {
                    let mut record = key.clone();
                    record.extend(item([
                        ("fingerprint", s(&claim.fingerprint)),
                        ("state", s("IN_PROGRESS")),
                        ("token", s(&lease.token)),
                        ("leaseUntil", ts(lease.lease_until)),
                        ("createdAt", ts(claim.now)),
                        ("expiresAt", epoch(lease.expires_at)),
                    ]));
                    // No live record: none at all, or one that expired (the core's rule in
                    // whole seconds: expires_at ≤ now ⟺ expiresAt ≤ ⌊now⌋).
                    self.client
                        .put_item()
                        .table_name(&self.tables.idempotency_keys)
                        .set_item(Some(record))
                        .condition_expression(
                            "attribute_not_exists(#scopeKey) OR #expiresAt <= :now",
                        )
                        .set_expression_attribute_names(super::names_of(&["#scopeKey #expiresAt"]))
                        .expression_attribute_values(":now", epoch(claim.now))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(lost_race_or_error)
                }
                ClaimDecision::TakeOver { from, lease } => self
                    .client
                    .update_item()
                    .table_name(&self.tables.idempotency_keys)
                    .set_key(Some(key.clone()))
                    .update_expression(
                        "SET #token = :token, #leaseUntil = :lease, #expiresAt = :expires",
                    )
                    .condition_expression("#token = :old AND #state = :in_progress")
                    .set_expression_attribute_names(super::names_of(&[
                        "#token #leaseUntil #expiresAt #state",
                    ]))
                    .set_expression_attribute_values(Some(item([
                        (":token", s(&lease.token)),
                        (":lease", ts(lease.lease_until)),
                        (":expires", epoch(lease.expires_at)),
                        (":old", s(from)),
                        (":in_progress", s("IN_PROGRESS")),
                    ])))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(lost_race_or_error),
                ClaimDecision::Replay(_) | ClaimDecision::InProgress | ClaimDecision::Reused => {
                    Ok(())
                }
            };
            match written {
                Ok(()) => return Ok(decision.answer(claim)),
                Err(None) => continue,
                Err(Some(error)) => return Err(error),
            }
        }
        Ok(Claim::InProgress)
    }

    async fn record_refusal(
        &self,
        scope: &IdempotencyScope,
        token: &str,
        refusal: &Refusal,
    ) -> Result<()> {
        let commit = IdempotencyCommit {
            scope: scope.clone(),
            token: token.to_string(),
            outcome: IdempotentOutcome::Refused(refusal.clone()),
        };
        let mut transaction = Transaction::new();
        self.add_idempotency_commit(&mut transaction, &commit)?;
        self.commit(transaction)
            .await
            .map_err(TxFailure::into_error)
    }

    async fn release(&self, scope: &IdempotencyScope, token: &str) -> Result<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.tables.idempotency_keys)
            .set_key(Some(scope_key(scope)))
            .condition_expression("#token = :token AND #state = :in_progress")
            .set_expression_attribute_names(super::names_of(&["#token #state"]))
            .set_expression_attribute_values(Some(item([
                (":token", s(token)),
                (":in_progress", s("IN_PROGRESS")),
            ])))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Someone else holds or finished it: nothing of ours to release.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_error(e)),
        }
    }
}

#[async_trait]
impl Health for DynamoStore {
    async fn check(&self) -> Result<()> {
        self.client
            .describe_table()
            .table_name(&self.tables.users)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }
}
