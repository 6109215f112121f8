//! The `Idempotency-Key` protocol (Stripe semantics, DESIGN §5), written once so the API and
//! the fault simulation run the same code: claim the key, run the operation holding it, and
//! settle the key by how the operation went.
//!
//! - **Acquired**: the operation runs with the claim and commits the key in the same atomic
//!   write as its effect (money, an order). A refusal (a 4xx: out of stock, insufficient
//!   balance…) is recorded as the key's outcome so a retry answers it again; a failure of the
//!   service (a 5xx) releases the key so the client may retry.
//! - **Replay**: the key's first outcome, for the driver to answer again.
//! - **In progress** / **reused**: [`Error::IdempotencyInProgress`] /
//!   [`Error::IdempotencyKeyReused`].
//!
//! A refusal is answered only once it is the key's recorded outcome. The record fails when
//! this request no longer holds the key — its lease ran out while it worked and a retry with
//! the same key took it over — or when the store fails; then the record's error is answered
//! instead. Answering the refusal anyway would give one key two outcomes: the stale request
//! says `OUT_OF_STOCK` while the retry places (and charges for) the order. The fault
//! simulation found exactly that (docs/fault-model.md, "Findings").

use super::Giftify;
use crate::error::{Error, Result};
use crate::idempotency::{Claim, IdempotencyScope, IdempotentOutcome, NewClaim};
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

/// What a request under a key came to, when it is not an error.
#[derive(Debug)]
pub enum Keyed<T> {
    /// This request ran the operation, which committed the key with its effect.
    Ran(T),
    /// An earlier request with this key finished it: its outcome, to answer again.
    Replay(IdempotentOutcome),
}

impl Giftify {
    /// Runs `operation` under `request`'s key. `operation` receives the scope and claim token
    /// to commit with; `refusal` renders a refusal as the status and body the driver answers
    /// it with, which is what a retry replays.
    pub async fn run_keyed<T, Op, Fut>(
        &self,
        request: KeyedRequest,
        operation: Op,
        refusal: impl FnOnce(&Error) -> (u16, String),
    ) -> Result<Keyed<T>>
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
            Claim::Replay(outcome) => return Ok(Keyed::Replay(outcome)),
            Claim::InProgress => return Err(Error::IdempotencyInProgress),
            Claim::KeyReused => return Err(Error::IdempotencyKeyReused),
        };
        let scope = request.scope;
        let error = match operation(Some((scope.clone(), token.clone()))).await {
            Ok(value) => return Ok(Keyed::Ran(value)),
            Err(error) => error,
        };
        if error.is_service_failure() {
            if let Err(release) = keys.release(&scope, &token).await {
                tracing::warn!(error = %release, "could not release an idempotency key; it frees itself when its lease ends");
            }
            return Err(error);
        }
        if matches!(error, Error::IdempotencyInProgress) {
            // The operation found our lease gone: the request that took the key over decides.
            return Err(error);
        }
        let (status, body) = refusal(&error);
        if let Err(record) = keys.record_response(&scope, &token, status, &body).await {
            tracing::info!(refusal = %error, error = %record, "a refusal was not recorded under its key; answering the record's error");
            return Err(record);
        }
        Err(error)
    }
}
