//! The `Idempotency-Key` protocol (Stripe semantics, DESIGN §5), written once so the API and
//! the fault simulation run the same code: claim the key, run the operation holding it, and
//! settle the key by how the operation went.
//!
//! - **Acquired**: the operation runs with the claim and commits the key in the same atomic
//!   write as its effect (money, an order). A refusal (a 4xx: out of stock, insufficient
//!   balance…) is recorded as the key's outcome so a retry answers it again; a failure of the
//!   service (a 5xx) releases the key so the client may retry.
//! - **Replay**: the key's first outcome: the use case reads what it created and answers
//!   [`Keyed::Replayed`], or answers the recorded refusal again ([`Keyed::RefusedAgain`]);
//!   each driver renders those itself.
//! - **In progress** / **reused**: [`Error::IdempotencyInProgress`] /
//!   [`Error::IdempotencyKeyReused`].
//!
//! A refusal is answered only once it is the key's recorded outcome. The record fails when
//! this request no longer holds the key — its lease ran out while it worked and a retry with
//! the same key took it over — or when the store fails; then the record's error is answered
//! instead. Answering the refusal anyway would give one key two outcomes: the stale request
//! says `OUT_OF_STOCK` while the retry places (and charges for) the order. The fault
//! simulation found exactly that (docs/fault-model.md, "Findings").

use super::{Giftify, OrderRequest, Placed};
use crate::error::{Error, Result};
use crate::idempotency::{Claim, IdempotencyScope, IdempotentOutcome, NewClaim, Refusal};
use crate::ids::{OrderId, UserId};
use crate::labels::OrderLabels;
use crate::order::Order;
use crate::wallet::WalletTransaction;
use std::future::Future;

/// A request sent under an idempotency key.
#[derive(Clone, Debug)]
pub struct KeyedRequest {
    pub scope: IdempotencyScope,
    /// What makes two requests "the same request" (see [`crate::idempotency::fingerprint`]).
    pub fingerprint: String,
    /// A fresh random token that proves to the store which request holds the key.
    pub token: String,
}

/// What the protocol came to, when it is not an error.
#[derive(Debug)]
pub enum KeyedRun<T> {
    /// This request ran the operation, which committed the key with its effect.
    Ran(T),
    /// An earlier request with this key finished it: its outcome.
    Replay(IdempotentOutcome),
}

/// What a keyed use case answers: the first answer again when the key was finished before.
#[derive(Debug)]
pub enum Keyed<T> {
    /// This request ran the use case.
    Ran(T),
    /// An earlier request with this key ran it: its result, read again now.
    Replayed(T),
    /// An earlier request with this key was refused: the same refusal.
    RefusedAgain(Error),
}

impl<T> Keyed<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Keyed<U> {
        match self {
            Keyed::Ran(value) => Keyed::Ran(f(value)),
            Keyed::Replayed(value) => Keyed::Replayed(f(value)),
            Keyed::RefusedAgain(error) => Keyed::RefusedAgain(error),
        }
    }
}

impl Giftify {
    /// Runs `operation` under `request`'s key. `operation` receives the scope and claim token
    /// to commit with. A refusal is recorded as the key's outcome (a [`Refusal`]) before it is
    /// answered.
    pub async fn run_keyed<T, Op, Fut>(
        &self,
        request: KeyedRequest,
        operation: Op,
    ) -> Result<KeyedRun<T>>
    where
        Op: FnOnce(Option<(IdempotencyScope, String)>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let keys = &self.ports.idempotency;
        let claim = NewClaim {
            scope: request.scope.clone(),
            fingerprint: request.fingerprint,
            token: request.token,
            now: self.clock.now(),
        };
        let token = match keys.claim(&claim).await? {
            Claim::Acquired(token) => token,
            Claim::Replay(outcome) => return Ok(KeyedRun::Replay(outcome)),
            Claim::InProgress => return Err(Error::IdempotencyInProgress),
            Claim::KeyReused => return Err(Error::IdempotencyKeyReused),
        };
        let scope = request.scope;
        let error = match operation(Some((scope.clone(), token.clone()))).await {
            Ok(value) => return Ok(KeyedRun::Ran(value)),
            Err(error) => error,
        };
        let Some(refusal) = Refusal::of(&error) else {
            if error.is_service_failure()
                && let Err(release) = keys.release(&scope, &token).await
            {
                tracing::warn!(error = %release, "could not release an idempotency key; it frees itself when its lease ends");
            }
            // In progress: the operation found our lease gone, and the request that took the
            // key over decides.
            return Err(error);
        };
        if let Err(record) = keys.record_refusal(&scope, &token, &refusal).await {
            tracing::info!(refusal = %error, error = %record, "a refusal was not recorded under its key; answering the record's error");
            return Err(record);
        }
        Err(error)
    }

    /// The keyed form of a use case: `run` runs it holding the key; `again` reads the result
    /// an earlier request with this key created.
    pub(super) async fn keyed<T, Run, RunFut, Again, AgainFut>(
        &self,
        request: KeyedRequest,
        run: Run,
        again: Again,
    ) -> Result<Keyed<T>>
    where
        Run: FnOnce(Option<(IdempotencyScope, String)>) -> RunFut,
        RunFut: Future<Output = Result<T>>,
        Again: FnOnce(IdempotentOutcome) -> AgainFut,
        AgainFut: Future<Output = Result<T>>,
    {
        match self.run_keyed(request, run).await? {
            KeyedRun::Ran(value) => Ok(Keyed::Ran(value)),
            KeyedRun::Replay(IdempotentOutcome::Refused(refusal)) => {
                Ok(Keyed::RefusedAgain(refusal.into_error()?))
            }
            KeyedRun::Replay(outcome) => Ok(Keyed::Replayed(again(outcome).await?)),
        }
    }

    /// [`Giftify::top_up`] under an `Idempotency-Key`.
    pub async fn top_up_keyed(
        &self,
        user: &UserId,
        amount: i64,
        description: Option<String>,
        key: KeyedRequest,
    ) -> Result<Keyed<WalletTransaction>> {
        self.keyed(
            key,
            |commit| self.top_up_holding(user, amount, description, commit),
            |outcome| async move {
                match outcome {
                    IdempotentOutcome::ToppedUp(id) => self.transaction(user, &id).await,
                    other => Err(mismatched(&other)),
                }
            },
        )
        .await
    }

    /// [`Giftify::place_order_holding`] under an `Idempotency-Key`.
    pub async fn place_order_keyed(
        &self,
        user: &UserId,
        request: OrderRequest,
        labels: OrderLabels,
        key: KeyedRequest,
    ) -> Result<Keyed<Placed>> {
        self.keyed(
            key,
            |commit| self.place_order_holding(user, request, labels, commit),
            |outcome| async move {
                match outcome {
                    IdempotentOutcome::OrderPlaced(id) => {
                        self.order_of(user, &id).await.map(Placed::Accepted)
                    }
                    other => Err(mismatched(&other)),
                }
            },
        )
        .await
    }

    /// [`Giftify::cancel_order`] under an `Idempotency-Key`.
    pub async fn cancel_order_keyed(
        &self,
        user: &UserId,
        id: &OrderId,
        key: KeyedRequest,
    ) -> Result<Keyed<Order>> {
        self.keyed(
            key,
            |commit| self.cancel_order_holding(user, id, commit),
            |outcome| async move {
                match outcome {
                    IdempotentOutcome::OrderCancelled(id) => self.order_of(user, &id).await,
                    other => Err(mismatched(&other)),
                }
            },
        )
        .await
    }
}

/// A key finished by another kind of operation: the fingerprint names the operation, so this
/// is corrupt data, not a client's mistake.
pub(super) fn mismatched(outcome: &IdempotentOutcome) -> Error {
    Error::internal(format!(
        "an idempotency key holds the outcome of another operation: {outcome:?}"
    ))
}
