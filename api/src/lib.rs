//! Giftify HTTP API.
