//! HTTP end-to-end tests: the router `giftify serve` runs, over a real SQLite database, with
//! the real queue drained by the same per-message handler the worker uses.

mod accounts;
mod admin;
mod api_keys;
mod auth;
mod caching;
mod cards;
mod cart;
mod codes;
mod concurrency;
mod feed;
mod finance;
mod invariants;
mod meta;
mod operating;
mod orders;
mod redelivery;
mod references;
mod restart;
mod sandbox;
mod support;
mod wallet;
mod webhooks;
