//! The simulated actors. Each runs as its own task, parks at an idle gate before each action,
//! and makes every choice with its own seeded RNG, so its behaviour replays with the seed.
//!
//! - [`User`]: top-ups, cart edits, orders from items and from the cart, cancels, retries of
//!   unanswered requests under the same `Idempotency-Key`, key reuse with another body, and
//!   the life of a card: reveal and redeem (now and then with a wrong PIN, or a brand's code),
//!   return.
//! - [`Admin`]: stock adjustments and overwrites, price and availability changes; batches of
//!   brand codes imported (with duplicates, codes about to expire, batches sent again) and
//!   voided.
//! - [`Worker`]: receives fulfillment messages and handles them one at a time or as a FIFO
//!   batch, in any order across groups; sometimes handles one twice, gives one up without a
//!   word (its visibility will run out), or crashes with deliveries in hand.
//! - [`Operator`]: the reconciler (which expires cards and codes too), the dead-letter listing
//!   and redrive, and now and then a day passing.

use super::client::{self, Answer, Op};
use super::model::{Resolved, SentBatch, World};
use super::rng::SimRng;
use super::sched::ActorCtx;
use giftify_shared::catalogue::VariantUpdate;
use giftify_shared::codes::{BatchRef, CodeRow, FulfillmentSource};
use giftify_shared::idempotency::LEASE;
use giftify_shared::ids::{OrderId, UserId, VariantId};
use giftify_shared::inbox::{Delivery, Settlement};
use giftify_shared::order::{OrderMessage, OrderStatus};
use giftify_shared::ports::Inbox;
use giftify_shared::usecases::{Handled, MessageOutcome, error_chain};
use giftify_shared::vault::{GiftCard, GiftCardStatus, is_giftify_number, normal_number};
use giftify_shared::wallet::PageRequest;
use giftify_shared::{Error, Giftify};
use secrecy::ExposeSecret;
use std::sync::Arc;

/// A brand's code as a supplier's file has it, drawn from the run's seed: a number, a PIN,
/// and mostly no expiry, sometimes a far one, sometimes tomorrow's.
pub fn brand_code(rng: &mut SimRng, today: chrono::NaiveDate) -> CodeRow {
    let expiry = match rng.below(10) {
        0..=2 => Some(today + chrono::Duration::days(1)),
        3..=4 => Some(today + chrono::Duration::days(400)),
        _ => None,
    };
    CodeRow {
        number: format!("SWG{:013}", rng.next_u64() % 10_000_000_000_000),
        pin: Some(format!("{:06}", rng.below(1_000_000))),
        expiry_date: expiry.map(|d| d.to_string()),
    }
}

/// What a client did to a card and what it was told, for the trace.
fn card_note(
    name: &str,
    verb: &str,
    card: &GiftCard,
    result: &Option<giftify_shared::Result<GiftCard>>,
) -> String {
    let told = result
        .as_ref()
        .map(|r| r.as_ref().map(|c| c.status).map_err(client::client_error));
    format!("{name}: {verb} {} → {told:?}", card.id)
}

/// An error no fault explains: the product reports a bug or corrupt data.
fn unexpected(error: &Error) -> bool {
    matches!(error, Error::Internal(_))
}

pub struct User {
    pub ctx: ActorCtx,
    pub giftify: Giftify,
    pub world: Arc<World>,
    pub rng: SimRng,
    /// This user's index in the model.
    pub index: usize,
    pub actions: u32,
    /// How often an order line goes to the first variant.
    pub hot_variant: f64,
}

/// What a user does next.
enum UserAction {
    Send {
        op: Op,
        key: Option<String>,
    },
    /// The same request again under the same key, after an unclear answer.
    Retry {
        key: String,
    },
    /// A finished key with a different body: must be refused as reused.
    Reuse {
        key: String,
    },
    SetCart {
        variant: usize,
        quantity: i64,
    },
    ClearCart,
    View {
        order: OrderId,
    },
    /// Reveal one of the user's cards and redeem it into the user's wallet.
    Redeem {
        pick: u64,
        wrong_pin: bool,
    },
    /// Return one of the user's cards.
    Return {
        pick: u64,
    },
}

impl User {
    pub async fn run(mut self) {
        let _done = self.ctx.finish_guard();
        for _ in 0..self.actions {
            self.ctx.idle().await;
            let action = self.choose();
            self.act(action).await;
        }
    }

    fn choose(&mut self) -> UserAction {
        let (open, racing, resolved, orders) = {
            let model = self.world.model();
            let user = &model.users[self.index];
            (
                user.open_keys(),
                user.racing_keys(),
                user.resolved_keys(),
                user.orders.clone(),
            )
        };
        let rng = &mut self.rng;
        // A second client of the same user retrying a request still in flight (a timeout on
        // one connection, a retry on another): the race the idempotency lease arbitrates.
        if !racing.is_empty() && rng.chance(0.5) {
            return UserAction::Retry {
                key: rng.pick(&racing).clone(),
            };
        }
        // A client that got no clear answer usually retries soon with the same key.
        if !open.is_empty() && rng.chance(0.35) {
            return UserAction::Retry {
                key: rng.pick(&open).clone(),
            };
        }
        let keyed = rng.chance(0.6);
        let variants = self.world.variants.len();
        let op = match rng.below(110) {
            0..=14 => Op::TopUp {
                // Now and then above the per-top-up limit, or enough to hit the wallet cap.
                amount: if rng.chance(0.03) {
                    10_000_001
                } else {
                    rng.between(1_000, 400_000)
                },
            },
            15..=49 => {
                let first = if rng.chance(self.hot_variant) {
                    0
                } else {
                    rng.index(variants)
                };
                // Mostly within the variant's bounds (1–4), now and then beyond them.
                let quantity = if rng.chance(0.05) {
                    5
                } else {
                    rng.between(1, 4) as u32
                };
                let mut lines = vec![(self.world.variants[first].clone(), quantity)];
                if rng.chance(0.3) {
                    let second = (first + 1 + rng.index(variants - 1)) % variants;
                    lines.push((
                        self.world.variants[second].clone(),
                        rng.between(1, 4) as u32,
                    ));
                }
                Op::OrderItems { lines }
            }
            50..=59 => Op::OrderCart,
            // Mostly the latest order, which has the best chance to be still PENDING.
            60..=69 if !orders.is_empty() => Op::Cancel {
                order: if rng.chance(0.6) {
                    orders[orders.len() - 1].clone()
                } else {
                    rng.pick(&orders).clone()
                },
            },
            60..=84 => {
                return UserAction::SetCart {
                    variant: rng.index(variants),
                    quantity: rng.between(0, 3),
                };
            }
            85..=88 => return UserAction::ClearCart,
            89..=93 if !resolved.is_empty() => {
                return UserAction::Reuse {
                    key: rng.pick(&resolved).clone(),
                };
            }
            100..=104 if !orders.is_empty() => {
                return UserAction::Redeem {
                    pick: rng.next_u64(),
                    wrong_pin: rng.chance(0.1),
                };
            }
            105..=109 if !orders.is_empty() => {
                return UserAction::Return {
                    pick: rng.next_u64(),
                };
            }
            _ if !orders.is_empty() => {
                return UserAction::View {
                    order: rng.pick(&orders).clone(),
                };
            }
            _ => return UserAction::ClearCart,
        };
        let key = keyed.then(|| self.world.model().users[self.index].new_key());
        UserAction::Send { op, key }
    }

    async fn act(&mut self, action: UserAction) {
        let user_id = self.world.model().users[self.index].id.clone();
        match action {
            UserAction::Send { op, key } => self.send(op, key).await,
            UserAction::Retry { key } => {
                let op = self.world.model().users[self.index].keys[&key].op.clone();
                self.send(op, Some(key)).await;
            }
            UserAction::Reuse { key } => {
                let (op, first_used) = {
                    let model = self.world.model();
                    let state = &model.users[self.index].keys[&key];
                    (state.op.clone(), state.first_used)
                };
                // Keys are kept 24 h: past that, the other body would be a new request (and
                // move money the client never asked to explain), not a reuse.
                if self.world.clock.peek() - first_used >= chrono::Duration::hours(23) {
                    return;
                }
                let other = match op {
                    Op::TopUp { amount } => Op::TopUp { amount: amount + 1 },
                    _ => Op::TopUp { amount: 1_234 },
                };
                let token = self.rng.token();
                let giftify = self.giftify.clone();
                let result = self
                    .ctx
                    .request(async {
                        client::send(&giftify, &user_id, &other, Some(&key), token).await
                    })
                    .await;
                // The key may have aged past its 24 h while the request ran.
                let fresh = self.world.clock.peek() - first_used < chrono::Duration::hours(23);
                match result {
                    Some(Ok((
                        Answer::Refused {
                            code: "IDEMPOTENCY_KEY_REUSED",
                            ..
                        },
                        _,
                    ))) => {}
                    // The refusal may be lost to a fault like any answer.
                    None | Some(Err(_)) => {}
                    Some(Ok((answer, _))) if fresh => self.world.violation(format!(
                        "{}: key {key} reused with another body was answered {answer:?}, not IDEMPOTENCY_KEY_REUSED",
                        self.ctx.name
                    )),
                    Some(Ok(_)) => {}
                }
            }
            UserAction::SetCart { variant, quantity } => {
                let variant = self.world.variants[variant].clone();
                let giftify = self.giftify.clone();
                let result = self
                    .ctx
                    .request(async {
                        giftify
                            .set_cart_quantity(&user_id, &variant, quantity)
                            .await
                    })
                    .await;
                self.expect_no_bug("cart edit", result.and_then(|r| r.err()));
            }
            UserAction::ClearCart => {
                let giftify = self.giftify.clone();
                let result = self
                    .ctx
                    .request(async { giftify.clear_cart(&user_id).await })
                    .await;
                self.expect_no_bug("cart clear", result.and_then(|r| r.err()));
            }
            UserAction::Redeem { pick, wrong_pin } => {
                self.redeem(&user_id, pick, wrong_pin).await;
            }
            UserAction::Return { pick } => self.return_card(&user_id, pick).await,
            UserAction::View { order } => {
                let giftify = self.giftify.clone();
                let result = self
                    .ctx
                    .request(async { giftify.order_of(&user_id, &order).await })
                    .await;
                match result {
                    Some(Ok(seen)) if seen.id != order || seen.user_id != user_id => {
                        self.world.violation(format!(
                            "{}: asked for {order}, got {}",
                            self.ctx.name, seen.id
                        ));
                    }
                    Some(Err(Error::NotFound(_))) => self.world.violation(format!(
                        "{}: accepted order {order} is not found",
                        self.ctx.name
                    )),
                    Some(Err(error)) => self.expect_no_bug("order view", Some(error)),
                    _ => {}
                }
            }
        }
    }

    /// One of the user's ACTIVE cards that `keep` accepts, read through the user's own
    /// (faulty) ports; `None` when the read failed or there is none.
    async fn some_card(
        &self,
        user: &UserId,
        pick: u64,
        keep: impl Fn(&GiftCard) -> bool,
    ) -> Option<GiftCard> {
        let giftify = self.giftify.clone();
        let page = PageRequest {
            page: 1,
            limit: PageRequest::MAX_LIMIT,
        };
        let listed = self
            .ctx
            .request(async {
                giftify
                    .cards_of_user(user, Some(GiftCardStatus::Active), page)
                    .await
            })
            .await?;
        let cards: Vec<GiftCard> = match listed {
            Ok(page) => page.items.into_iter().filter(|c| keep(c)).collect(),
            Err(error) => {
                self.expect_no_bug("card listing", Some(error));
                return None;
            }
        };
        (!cards.is_empty()).then(|| cards[(pick % cards.len() as u64) as usize].clone())
    }

    /// Reveals a card and redeems it: a Giftify card into the user's wallet, once; a brand's
    /// code is refused whatever it is; a wrong PIN is not found (or throttled).
    async fn redeem(&mut self, user: &UserId, pick: u64, wrong_pin: bool) {
        let Some(card) = self.some_card(user, pick, |_| true).await else {
            return;
        };
        let giftify = self.giftify.clone();
        let revealed = self
            .ctx
            .request(async { giftify.reveal_card(user, &card.order_id, &card.id).await })
            .await;
        let secrets = match revealed {
            Some(Ok((_, secrets))) => secrets,
            Some(Err(error)) => {
                self.expect_no_bug("reveal", Some(error));
                return;
            }
            None => return,
        };
        let number = secrets.number.expose_secret().to_string();
        let pin = if wrong_pin {
            "000000x".to_string()
        } else {
            secrets.pin.expose_secret().to_string()
        };
        // Told by the number itself: the variant may have changed source before it issued.
        let brand = !is_giftify_number(&normal_number(&number));
        let result = self
            .ctx
            .request(async { giftify.redeem_card(user, &number, &pin).await })
            .await;
        let name = &self.ctx.name;
        let mut model = self.world.model();
        model.notes.push(card_note(name, "redeems", &card, &result));
        match result {
            Some(Ok(redeemed)) => {
                if brand
                    || wrong_pin
                    || redeemed.id != card.id
                    || redeemed.status != GiftCardStatus::Redeemed
                    || redeemed.redeemed_by.as_ref() != Some(user)
                {
                    model.violations.push(format!(
                        "{name}: redeeming {} (brand {brand}, wrong PIN {wrong_pin}) answered {redeemed:?}",
                        card.id
                    ));
                }
                model.stats.redeemed += 1;
                model.users[self.index].redeemed.insert(card.id);
            }
            Some(Err(error)) => {
                let expected = match client::client_error(&error) {
                    None => !unexpected(&error),
                    Some((_, "NOT_REDEEMABLE")) => brand,
                    Some((_, "NOT_FOUND")) => wrong_pin,
                    Some((
                        _,
                        "RATE_LIMITED"
                        | "CARD_REDEEMED"
                        | "CARD_EXPIRED"
                        | "CARD_CANCELLED"
                        | "WALLET_LIMIT_EXCEEDED",
                    )) => !brand,
                    Some(_) => false,
                };
                if !expected {
                    model.violations.push(format!(
                        "{name}: redeeming {} (brand {brand}, wrong PIN {wrong_pin}) failed with {}",
                        card.id,
                        error_chain(&error)
                    ));
                }
            }
            None => {}
        }
    }

    /// Returns a card the user never revealed: CANCELLED and refunded, once.
    async fn return_card(&mut self, user: &UserId, pick: u64) {
        let Some(card) = self
            .some_card(user, pick, |c| c.revealed_at.is_none())
            .await
        else {
            return;
        };
        let giftify = self.giftify.clone();
        let result = self
            .ctx
            .request(async { giftify.return_card(user, &card.order_id, &card.id).await })
            .await;
        let name = &self.ctx.name;
        let mut model = self.world.model();
        model.notes.push(card_note(name, "returns", &card, &result));
        match result {
            Some(Ok(returned)) => {
                if returned.id != card.id || returned.status != GiftCardStatus::Cancelled {
                    model.violations.push(format!(
                        "{name}: returning {} answered {returned:?}",
                        card.id
                    ));
                }
                model.stats.returned += 1;
                model.users[self.index].returned.insert(card.id);
            }
            Some(Err(error)) => {
                let expected = match client::client_error(&error) {
                    None => !unexpected(&error),
                    Some((
                        _,
                        "CARD_CANCELLED"
                        | "CARD_REVEALED"
                        | "CARD_REDEEMED"
                        | "CARD_EXPIRED"
                        | "RETURN_WINDOW_CLOSED",
                    )) => true,
                    Some(_) => false,
                };
                if !expected {
                    model.violations.push(format!(
                        "{name}: returning {} failed with {}",
                        card.id,
                        error_chain(&error)
                    ));
                }
            }
            None => {}
        }
    }

    fn expect_no_bug(&self, what: &str, error: Option<Error>) {
        if let Some(error) = error.filter(unexpected) {
            self.world.violation(format!(
                "{}: {what} failed with an internal error: {}",
                self.ctx.name,
                error_chain(&error)
            ));
        }
    }

    /// Sends a money-moving request and records what the client learnt.
    async fn send(&mut self, op: Op, key: Option<String>) {
        let (user_id, attempt) = {
            let mut model = self.world.model();
            model.stats.requests += 1;
            let now = self.world.clock.peek();
            model
                .notes
                .push(format!("{}: sends {op:?} key {key:?}", self.ctx.name));
            let user = &mut model.users[self.index];
            (user.id.clone(), user.begin(&op, key.as_deref(), now))
        };
        let token = self.rng.token();
        // Drawn whatever the answer, so that one answer more or less does not shift the
        // stream of every later choice.
        let poison = self.rng.chance(self.world.profile.poison);
        let giftify = self.giftify.clone();
        let result = self
            .ctx
            .request(async { client::send(&giftify, &user_id, &op, key.as_deref(), token).await })
            .await;
        let in_progress = matches!(
            result,
            Some(Ok((
                Answer::Refused {
                    code: "IDEMPOTENCY_IN_PROGRESS",
                    ..
                },
                _
            )))
        );
        learn(
            &self.world,
            self.index,
            &self.ctx.name,
            Sent {
                attempt,
                op: &op,
                key: key.as_deref(),
            },
            result,
            poison,
        );
        // Told to come back later, the client waits out the holder's lease before it retries,
        // so that its retry may take the key over from a holder that is merely slow.
        if in_progress && self.rng.chance(0.5) {
            self.world
                .clock
                .advance(LEASE + chrono::Duration::seconds(1));
        }
    }
}

/// One request a client sent.
pub struct Sent<'a> {
    pub attempt: u64,
    pub op: &'a Op,
    pub key: Option<&'a str>,
}

/// Records what a client learnt from the answer to `sent` (`None`: the server crashed), and
/// checks the answer against the request. `poison` makes a newly accepted order's handling
/// fail for a while.
pub fn learn(
    world: &World,
    index: usize,
    name: &str,
    sent: Sent<'_>,
    result: Option<giftify_shared::Result<(Answer, bool)>>,
    poison: bool,
) {
    let Sent { attempt, op, key } = sent;
    let mut model = world.model();
    let told = match &result {
        None => "no answer (crash)".to_string(),
        Some(Err(error)) => format!("5xx {}", error_chain(error)),
        Some(Ok((Answer::ToppedUp(txn), replay))) => {
            format!("topped up {} (replay {replay})", txn.id)
        }
        Some(Ok((Answer::Placed(order), replay))) => {
            format!("placed {} (replay {replay})", order.id)
        }
        Some(Ok((Answer::Cancelled(order), replay))) => {
            format!("cancelled {} (replay {replay})", order.id)
        }
        Some(Ok((Answer::Refused { code, .. }, replay))) => format!("{code} (replay {replay})"),
    };
    model
        .notes
        .push(format!("{name}: {op:?} key {key:?} → {told}"));
    if let Some(key) = key {
        model.users[index].returned(key);
    }
    let user_id = model.users[index].id.clone();
    let answer = match result {
        None => {
            model.stats.crashes += 1;
            model.stats.uncertain += 1;
            return;
        }
        Some(Err(error)) => {
            if unexpected(&error) {
                model.violations.push(format!(
                    "{name}: {op:?} failed with an internal error: {}",
                    error_chain(&error)
                ));
            }
            model.stats.uncertain += 1;
            return;
        }
        Some(Ok((answer, replayed))) => {
            if replayed {
                model.stats.replays += 1;
            }
            answer
        }
    };
    let kind = match &answer {
        Answer::ToppedUp(_) => "topped_up",
        Answer::Placed(_) => "placed",
        Answer::Cancelled(_) => "cancelled",
        Answer::Refused { code, .. } => code,
    };
    *model.stats.answers.entry(kind).or_default() += 1;
    let resolved = match (op, &answer) {
        (_, Answer::Refused { code, .. }) if *code == "IDEMPOTENCY_IN_PROGRESS" => {
            // Another attempt of this key holds it: still unknown.
            model.stats.uncertain += 1;
            return;
        }
        (_, Answer::Refused { code, .. }) if *code == "IDEMPOTENCY_KEY_REUSED" => {
            model.violations.push(format!(
                "{name}: the same request under the same key {key:?} was refused as a reuse"
            ));
            return;
        }
        (_, Answer::Refused { code, .. }) => Resolved::Refused(code),
        (Op::TopUp { amount }, Answer::ToppedUp(txn)) => {
            if txn.amount.get() != *amount
                || txn.user_id != user_id
                || txn.kind != giftify_shared::wallet::TransactionType::Credit
            {
                model
                    .violations
                    .push(format!("{name}: top-up of {amount} answered with {txn:?}"));
            }
            model.users[index]
                .credits
                .insert(txn.id.clone(), txn.amount);
            Resolved::Credit(txn.id.clone())
        }
        (Op::OrderItems { .. } | Op::OrderCart, Answer::Placed(order)) => {
            let matches = match op {
                Op::OrderItems { lines } => {
                    order.items.len() == lines.len()
                        && order.items.iter().zip(lines).all(|(line, (variant, qty))| {
                            line.variant_id == *variant && line.requested_quantity == *qty
                        })
                }
                _ => true,
            };
            let total: i64 = order.items.iter().map(|l| l.total_price().get()).sum();
            if !matches || order.user_id != user_id || order.total_amount.get() != total {
                model.violations.push(format!(
                    "{name}: {op:?} answered with an order that does not match: {order:?}"
                ));
            }
            let user = &mut model.users[index];
            if !user.orders.contains(&order.id) {
                user.orders.push(order.id.clone());
                if poison {
                    // Long enough to exhaust its receives and sit in the dead-letter queue.
                    let until = world.clock.peek() + chrono::Duration::minutes(5);
                    world.probe.poison(order.id.clone(), until);
                }
            }
            Resolved::Order(order.id.clone())
        }
        (Op::Cancel { order: asked }, Answer::Cancelled(order)) => {
            if order.id != *asked
                || order.status != OrderStatus::Cancelled
                || order.refund_amount != order.paid_amount
            {
                model
                    .violations
                    .push(format!("{name}: cancel of {asked} answered with {order:?}"));
            }
            Resolved::Cancel(order.id.clone())
        }
        (op, answer) => {
            model
                .violations
                .push(format!("{name}: {op:?} answered with {answer:?}"));
            return;
        }
    };
    let user = &mut model.users[index];
    user.settle(attempt, key);
    if let Some(key) = key {
        let state = user.keys.get_mut(key).expect("the key was recorded");
        match &state.resolved {
            // One key, one outcome: whatever a client is told under a key, every other
            // answer under it must agree.
            Some(before) if *before != resolved => {
                let message = format!(
                    "{name}: key {key} answered {resolved:?} after it had answered {before:?}"
                );
                model.violations.push(message);
            }
            _ => state.resolved = Some(resolved),
        }
    }
}

pub struct Admin {
    pub ctx: ActorCtx,
    pub giftify: Giftify,
    pub world: Arc<World>,
    pub rng: SimRng,
    pub actions: u32,
    /// The most stock an overwrite sets.
    pub max_stock: i64,
}

impl Admin {
    pub async fn run(mut self) {
        let _done = self.ctx.finish_guard();
        for _ in 0..self.actions {
            self.ctx.idle().await;
            let variant = self.rng.pick(&self.world.variants).clone();
            if self.world.is_brand(&variant) && self.rng.chance(0.8) {
                self.manage_codes(&variant).await;
                continue;
            }
            if self.rng.chance(0.05) {
                self.make_brand(&variant).await;
                continue;
            }
            // A brand variant's stock is its pool: setting it is refused (400), never a bug.
            let update = match self.rng.below(10) {
                // Restocking (and the odd write-off) keeps orders coming without ending
                // contention: the stock stays small.
                0..=3 => VariantUpdate {
                    stock_adjustment: Some(self.rng.between(-2, 6)),
                    ..VariantUpdate::default()
                },
                4..=5 => VariantUpdate {
                    stock_quantity: Some(self.rng.between(0, self.max_stock)),
                    ..VariantUpdate::default()
                },
                6..=7 => VariantUpdate {
                    discount_percent: Some(self.rng.between(0, 15)),
                    ..VariantUpdate::default()
                },
                _ => VariantUpdate {
                    is_active: Some(self.rng.chance(0.8)),
                    ..VariantUpdate::default()
                },
            };
            let giftify = self.giftify.clone();
            let result = self
                .ctx
                .request(async {
                    giftify
                        .update_variant(&giftify_shared::audit::Actor::Operator, &variant, update)
                        .await
                })
                .await;
            if let Some(Err(error)) = result
                && unexpected(&error)
            {
                self.world.violation(format!(
                    "admin: variant update failed with an internal error: {}",
                    error_chain(&error)
                ));
            }
        }
    }
}

impl Admin {
    /// Empties a variant and makes it take brand codes: refused (400) once it has issued a
    /// card or taken codes, as a fulfillment may be about to, which must then not take the
    /// codes' stock for its minted cards.
    async fn make_brand(&mut self, variant: &VariantId) {
        let giftify = self.giftify.clone();
        let result = self
            .ctx
            .request(async {
                let empty = VariantUpdate {
                    stock_quantity: Some(0),
                    ..VariantUpdate::default()
                };
                giftify
                    .update_variant(&giftify_shared::audit::Actor::Operator, variant, empty)
                    .await?;
                let switch = VariantUpdate {
                    fulfillment_source: Some(FulfillmentSource::Inventory),
                    ..VariantUpdate::default()
                };
                giftify
                    .update_variant(&giftify_shared::audit::Actor::Operator, variant, switch)
                    .await
            })
            .await;
        let told = result
            .as_ref()
            .map(|r| r.as_ref().map(|_| ()).map_err(|e| error_chain(e)));
        self.world
            .model()
            .notes
            .push(format!("admin: makes {variant} a brand variant → {told:?}"));
        match result {
            Some(Ok(_)) => self.world.mark_brand(variant.clone()),
            Some(Err(error)) if unexpected(&error) => self.world.violation(format!(
                "admin: making {variant} a brand variant failed with an internal error: {}",
                error_chain(&error)
            )),
            _ => {}
        }
    }

    /// A new batch (now and then holding a number sent before), an earlier batch sent again
    /// (it replays; an unfinished one finishes), or a recall of a finished batch.
    async fn manage_codes(&mut self, variant: &VariantId) {
        let (batches, sent_numbers): (Vec<SentBatch>, Vec<String>) = {
            let model = self.world.model();
            let batches: Vec<SentBatch> = model
                .batches
                .iter()
                .filter(|b| b.variant == *variant)
                .cloned()
                .collect();
            let numbers = batches
                .iter()
                .flat_map(|b| b.rows.iter().map(|r| r.number.clone()))
                .collect();
            (batches, numbers)
        };
        let choice = self.rng.below(10);
        let batch = match choice {
            0..=5 => {
                let today = self.world.clock.peek().date_naive();
                let mut rows: Vec<CodeRow> = (0..self.rng.between(1, 4))
                    .map(|_| brand_code(&mut self.rng, today))
                    .collect();
                if !sent_numbers.is_empty() && self.rng.chance(0.3) {
                    rows.push(CodeRow {
                        number: self.rng.pick(&sent_numbers).clone(),
                        ..brand_code(&mut self.rng, today)
                    });
                }
                let batch = SentBatch {
                    variant: variant.clone(),
                    batch_ref: format!("SIM-{}", self.world.model().batches.len()),
                    rows,
                    finished: false,
                    voided: false,
                };
                self.world.model().batches.push(batch.clone());
                batch
            }
            6..=7 if !batches.is_empty() => self.rng.pick(&batches).clone(),
            _ => {
                let finished: Vec<&SentBatch> = batches.iter().filter(|b| b.finished).collect();
                if finished.is_empty() {
                    return;
                }
                let batch = (*self.rng.pick(&finished)).clone();
                self.void(&batch).await;
                return;
            }
        };
        let giftify = self.giftify.clone();
        let result = self
            .ctx
            .request(async {
                giftify
                    .import_codes(
                        &giftify_shared::audit::Actor::Operator,
                        &batch.variant,
                        BatchRef::parse(&batch.batch_ref)?,
                        &batch.rows,
                    )
                    .await
            })
            .await;
        let mut model = self.world.model();
        model.notes.push(format!(
            "admin: imports {} ({} rows) → {:?}",
            batch.batch_ref,
            batch.rows.len(),
            result.as_ref().map(|r| r
                .as_ref()
                .map(|r| (r.imported, r.duplicates, r.invalid))
                .map_err(|e| error_chain(e)))
        ));
        match result {
            Some(Ok(report)) => {
                if report.rows as usize != batch.rows.len()
                    || report.imported + report.duplicates + report.invalid != report.rows
                {
                    model.violations.push(format!(
                        "admin: importing {} answered a report that does not add up: {report:?}",
                        batch.batch_ref
                    ));
                }
                if let Some(sent) = model
                    .batches
                    .iter_mut()
                    .find(|b| b.batch_ref == batch.batch_ref)
                {
                    sent.finished = true;
                }
            }
            // A voided batch that never finished is refused: its codes are withdrawn.
            Some(Err(error)) if unexpected(&error) => model.violations.push(format!(
                "admin: importing {} failed with an internal error: {}",
                batch.batch_ref,
                error_chain(&error)
            )),
            _ => {}
        }
    }

    async fn void(&mut self, batch: &SentBatch) {
        let giftify = self.giftify.clone();
        let result = self
            .ctx
            .request(async {
                giftify
                    .void_code_batch(
                        &giftify_shared::audit::Actor::Operator,
                        &batch.variant,
                        &BatchRef::parse(&batch.batch_ref)?,
                    )
                    .await
            })
            .await;
        let mut model = self.world.model();
        model.notes.push(format!(
            "admin: voids {} → {:?}",
            batch.batch_ref,
            result.as_ref().map(|r| r
                .as_ref()
                .map(|s| (s.available, s.voided))
                .map_err(|e| error_chain(e)))
        ));
        match result {
            Some(Ok(summary)) if summary.available != 0 => model.violations.push(format!(
                "admin: voided {} still has {} codes available",
                batch.batch_ref, summary.available
            )),
            Some(Err(error)) if unexpected(&error) => model.violations.push(format!(
                "admin: voiding {} failed with an internal error: {}",
                batch.batch_ref,
                error_chain(&error)
            )),
            _ => {}
        }
        if let Some(sent) = model
            .batches
            .iter_mut()
            .find(|b| b.batch_ref == batch.batch_ref)
        {
            sent.voided = true;
        }
    }
}

pub struct Worker {
    pub ctx: ActorCtx,
    pub giftify: Giftify,
    pub queue: Arc<dyn Inbox>,
    pub world: Arc<World>,
    pub rng: SimRng,
    /// Deliveries in hand; a crash loses them (their visibility runs out later).
    pub held: Vec<Delivery>,
}

enum WorkerAction {
    Receive(usize),
    Handle { index: usize, keep: bool },
    Batch,
    Abandon(usize),
}

impl Worker {
    pub async fn run(mut self) {
        let _done = self.ctx.finish_guard();
        loop {
            self.ctx.idle().await;
            if self.world.stopping() {
                // What is still in hand stays in flight until its visibility runs out.
                return;
            }
            let action = self.choose();
            let ctx = self.ctx.clone();
            if ctx.request(self.act(action)).await.is_none() {
                self.world.model().stats.crashes += 1;
                self.held.clear();
            }
        }
    }

    fn choose(&mut self) -> WorkerAction {
        // Mostly one message at a time, as a busy worker pool does: a worker that hoards the
        // head of every group leaves the others nothing to race it on.
        let receive = if self.rng.chance(0.7) {
            1
        } else {
            self.rng.between(2, 3) as usize
        };
        let held = self.held.len();
        if held == 0 {
            return WorkerAction::Receive(receive);
        }
        match self.rng.below(100) {
            0..=24 => WorkerAction::Receive(receive),
            25..=74 => WorkerAction::Handle {
                index: self.rng.index(held),
                keep: false,
            },
            75..=82 => WorkerAction::Handle {
                index: self.rng.index(held),
                keep: true,
            },
            83..=93 => WorkerAction::Batch,
            _ => WorkerAction::Abandon(self.rng.index(held)),
        }
    }

    async fn act(&mut self, action: WorkerAction) {
        match action {
            WorkerAction::Receive(max) => {
                if let Ok(got) = self.queue.receive(max, std::time::Duration::ZERO).await {
                    self.held.extend(got);
                }
            }
            WorkerAction::Handle { index, keep } => {
                // A kept delivery is handled again later: a duplicate delivery.
                let delivery = if keep {
                    self.held[index].clone()
                } else {
                    self.held.remove(index)
                };
                self.handle(&delivery, keep).await;
            }
            WorkerAction::Batch => {
                let batch: Vec<Delivery> = std::mem::take(&mut self.held);
                self.handle_batch(&batch).await;
            }
            WorkerAction::Abandon(index) => {
                self.held.remove(index);
            }
        }
    }

    /// One delivery through the core's batch rule; the worker settles it as the core decided,
    /// except that it keeps a delivery to handle it again (a duplicate), and sometimes says
    /// nothing about a failure and lets its visibility time out.
    async fn handle(&mut self, delivery: &Delivery, keep: bool) {
        let message: OrderMessage = match serde_json::from_str(&delivery.body) {
            Ok(message) => message,
            Err(error) => {
                self.world
                    .violation(format!("a delivery has a malformed body: {error}"));
                return;
            }
        };
        let _handling = self.world.probe.handling(&message.order_id);
        let handled = self.giftify.handle_group(&[delivery]).await;
        self.learn(&handled);
        for one in &handled {
            let settle = !keep && (one.settlement.is_ack() || self.rng.chance(0.85));
            if settle {
                // A failed settlement leaves the message in flight until its visibility runs
                // out.
                let _ = settle_on(self.queue.as_ref(), one).await;
            }
        }
    }

    /// The fulfillment Lambda's batch rule, over everything in hand, settled as decided.
    async fn handle_batch(&mut self, batch: &[Delivery]) {
        let outcome = self.giftify.handle_batch(batch).await;
        self.learn(&outcome.handled);
        for one in &outcome.handled {
            let _ = settle_on(self.queue.as_ref(), one).await;
        }
    }

    /// Counts what the core decided, and flags what must never happen.
    fn learn(&self, handled: &[Handled]) {
        let mut model = self.world.model();
        for one in handled {
            match (&one.settlement, one.outcome) {
                (Settlement::Ack, outcome) => {
                    model.stats.messages_handled += 1;
                    if let Some(MessageOutcome::Completed { status, .. }) = outcome
                        && !status.is_final()
                    {
                        model.violations.push(format!(
                            "{}: handling {} completed it in status {status}",
                            self.ctx.name, one.delivery.message_id
                        ));
                    }
                }
                (failed, _) => {
                    model.stats.message_failures += 1;
                    let reason = failed.reason().unwrap_or_default();
                    if reason.starts_with("internal error") {
                        model.violations.push(format!(
                            "{}: message {} failed with an internal error: {reason}",
                            self.ctx.name, one.delivery.message_id
                        ));
                    }
                }
            }
        }
    }
}

/// Carries out one decision on the (faulty) queue port.
async fn settle_on(queue: &dyn Inbox, handled: &Handled) -> giftify_shared::Result<()> {
    let delivery = &handled.delivery;
    match &handled.settlement {
        Settlement::Ack => queue.ack(delivery).await,
        Settlement::RetryLater { reason, delay } => {
            queue.retry_later(delivery, reason, *delay).await
        }
        Settlement::DeadLetter { reason } => queue.dead_letter(delivery, reason).await,
    }
}

pub struct Operator {
    pub ctx: ActorCtx,
    pub giftify: Giftify,
    pub world: Arc<World>,
    pub rng: SimRng,
}

impl Operator {
    pub async fn run(mut self) {
        let _done = self.ctx.finish_guard();
        loop {
            self.ctx.idle().await;
            if self.world.stopping() {
                return;
            }
            let giftify = self.giftify.clone();
            let choice = self.rng.below(10);
            let max = self.rng.between(1, 3) as u32;
            // Now and then a day passes before the reconciler runs: cards and codes expire.
            if choice == 0 && self.rng.chance(0.6) && self.world.pass_a_day() {
                self.world.model().stats.days_passed += 1;
            }
            let world = self.world.clone();
            let result = self
                .ctx
                .request(async {
                    match choice {
                        0..=4 => giftify.reconcile().await.map(|r| {
                            let mut model = world.model();
                            model.stats.cards_expired += r.expired_cards;
                            model.stats.codes_expired += r.expired_codes;
                            (r.requeued, 0)
                        }),
                        5..=7 => giftify
                            .redrive(&giftify_shared::audit::Actor::Operator, max, false, |_| {})
                            .await
                            .map(|r| (0, r.moved.len())),
                        _ => giftify.dead_letters(10).await.map(|_| (0, 0)),
                    }
                })
                .await;
            match result {
                Some(Ok((requeued, redriven))) => {
                    let mut model = self.world.model();
                    model.stats.reconciled += requeued as u64;
                    model.stats.redriven += redriven as u64;
                }
                Some(Err(error)) if unexpected(&error) => self.world.violation(format!(
                    "operator: failed with an internal error: {}",
                    error_chain(&error)
                )),
                _ => {}
            }
        }
    }
}
