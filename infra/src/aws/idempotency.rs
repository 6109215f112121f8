//! Idempotency keys: the claim the core decides, written conditionally, and the commit item
//! every money operation carries.

use super::store::{DynamoStore, Transaction, TxFailure, lost_race_or_error, update};
use crate::aws::item::{Attrs, Item, epoch, item, s, ts};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::DateTime;
use giftify_shared::idempotency::{
    Claim, ClaimDecision, IdempotencyCommit, IdempotencyScope, IdempotentOutcome, NewClaim,
    Refusal, StoredKey, StoredKeyState, decide_claim,
};
use giftify_shared::ids::{OrderId, TransactionId};
use giftify_shared::ports::IdempotencyKeys;
use giftify_shared::{Error, Result};

impl DynamoStore {
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
}

pub(super) fn scope_key(scope: &IdempotencyScope) -> Item {
    item([(
        "scopeKey",
        s(format!("{}#{}", scope.user_id, scope.key.as_str())),
    )])
}

pub(super) fn outcome_value(outcome: &IdempotentOutcome) -> AttributeValue {
    let map = match outcome {
        IdempotentOutcome::ToppedUp(id) => item([("kind", s("TOPPED_UP")), ("id", s(id.as_str()))]),
        IdempotentOutcome::Adjusted(id) => item([("kind", s("ADJUSTED")), ("id", s(id.as_str()))]),
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

/// The outcome kind under which versions before the refusal was a domain value stored HTTP
/// status and bytes.
const LEGACY_RESPONSE: &str = "RESPONSE";

/// `None` for a refusal an earlier version stored as HTTP bytes ([`LEGACY_RESPONSE`]): it
/// counts as expired, since it moved no money and running the request again is safe.
fn outcome_from(raw: &Item) -> Result<Option<IdempotentOutcome>> {
    let a = Attrs::new(raw, "idempotency-keys");
    Ok(Some(match a.s("kind")? {
        "TOPPED_UP" => IdempotentOutcome::ToppedUp(TransactionId::parse(a.s("id")?)?),
        "ADJUSTED" => IdempotentOutcome::Adjusted(TransactionId::parse(a.s("id")?)?),
        "ORDER_PLACED" => IdempotentOutcome::OrderPlaced(OrderId::parse(a.s("id")?)?),
        "ORDER_CANCELLED" => IdempotentOutcome::OrderCancelled(OrderId::parse(a.s("id")?)?),
        "REFUSED" => IdempotentOutcome::Refused(Refusal::from_json(a.s("refusal")?)?),
        LEGACY_RESPONSE => return Ok(None),
        other => {
            return Err(Error::internal(format!(
                "unknown idempotency outcome {other}"
            )));
        }
    }))
}

pub(super) fn stored_key(raw: &Item) -> Result<StoredKey> {
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
                        // A refusal an earlier version stored as HTTP counts as expired too.
                        .condition_expression(
                            "attribute_not_exists(#scopeKey) OR #expiresAt <= :now \
                             OR #outcome.#kind = :legacy",
                        )
                        .set_expression_attribute_names(super::store::names_of(&[
                            "#scopeKey #expiresAt #outcome.#kind",
                        ]))
                        .expression_attribute_values(":now", epoch(claim.now))
                        .expression_attribute_values(":legacy", s(LEGACY_RESPONSE))
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
                    .set_expression_attribute_names(super::store::names_of(&[
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
        let commit = IdempotencyCommit::refused(scope, token, refusal);
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
            .set_expression_attribute_names(super::store::names_of(&["#token #state"]))
            .set_expression_attribute_values(Some(item([
                (":token", s(token)),
                (":in_progress", s("IN_PROGRESS")),
            ])))
            .send()
            .await;
        // A failed condition: someone else holds or finished it, nothing of ours to release.
        result
            .map(|_| ())
            .or_else(|error| lost_race_or_error(error).map_or(Ok(()), Err))
    }
}
