//! Giftify's Lambda glue for queue and schedule triggers: the SQS FIFO batch driver behind the
//! fulfillment Lambda, the webhook dispatcher's batch driver, and the reconciler's schedule
//! handler. Both call the use cases in
//! `giftify-shared`; the local consumers in `giftify-infra` run the same ones.

pub mod dispatcher;
pub mod fulfillment;
pub mod reconciler;
