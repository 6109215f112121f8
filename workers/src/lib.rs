//! Giftify's Lambda glue for queue and schedule triggers: the FIFO batch driver behind the
//! fulfillment Lambda and the reconciler's schedule handler. It arrives with the AWS backend;
//! the embedded stack runs the same use cases through `giftify_infra::consumer`.
