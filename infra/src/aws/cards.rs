//! Gift cards: issued cards, sealed, by id and by order; reveals audited.

use super::store::{
    DynamoStore, Transaction, TxFailure, all_pages, lost_race_or_error, names_of, put, retrying,
    update,
};
use crate::aws::item::{Attrs, Item, item, money, n, s, sdk_error, ts};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use giftify_shared::Missing;
use giftify_shared::card_life::{CardReturn, Expiry, Redemption};
use giftify_shared::figures::Tally;
use giftify_shared::ids::{GiftCardId, OrderId, ProductId, UserId, VariantId};
use giftify_shared::ports::GiftCards;
use giftify_shared::vault::{GiftCard, GiftCardStatus, RevealAudit, SealedCard, in_id_order};
use giftify_shared::wallet::{Page, PageRequest};
use giftify_shared::{Error, Result};

/// The audit records of a card's reveals begin with this.
pub(super) const REVEAL_PREFIX: &str = "REVEAL#";

/// The value of `activeCard` on an ACTIVE card (the attribute is absent on any other).
const ACTIVE_CARD: &str = "ACTIVE";

/// The value of `notifyPending` on a card whose event is unsent (absent on any other).
pub(super) const NOTIFY_PENDING: &str = "1";

pub(super) fn card_item(card: &GiftCard) -> Item {
    let mut raw = item([
        ("giftCardId", s(card.id.as_str())),
        ("orderId", s(card.order_id.as_str())),
        ("userId", s(card.user_id.as_str())),
        ("productId", s(card.product_id.as_str())),
        ("variantId", s(card.variant_id.as_str())),
        ("productName", s(&card.product_name)),
        ("variantName", s(&card.variant_name)),
        ("denomination", n(card.denomination)),
        ("giftCardNumber", s(&card.sealed.number_ciphertext)),
        ("giftCardPin", s(&card.sealed.pin_ciphertext)),
        ("giftCardNumberHash", s(&card.sealed.lookup_key)),
        ("last4", s(&card.sealed.last4)),
        ("expiryDate", s(card.expiry_date.to_string())),
        ("status", s(card.status.as_str())),
        ("purchasePrice", money(card.purchase_price)),
        ("issuedAt", ts(card.issued_at)),
        ("createdAt", ts(card.issued_at)),
        ("updatedAt", ts(card.issued_at)),
    ]);
    if card.status == GiftCardStatus::Active {
        raw.insert("activeCard".into(), s(ACTIVE_CARD));
    }
    raw
}

fn card_key(id: &GiftCardId) -> Item {
    item([("giftCardId", s(id.as_str()))])
}

pub(super) fn card_from(raw: &Item) -> Result<GiftCard> {
    let a = Attrs::new(raw, "gift-cards");
    Ok(GiftCard {
        id: GiftCardId::parse(a.s("giftCardId")?)?,
        order_id: OrderId::parse(a.s("orderId")?)?,
        user_id: UserId::parse(a.s("userId")?)?,
        product_id: ProductId::parse(a.s("productId")?)?,
        variant_id: VariantId::parse(a.s("variantId")?)?,
        product_name: a.s("productName")?.to_string(),
        variant_name: a.s("variantName")?.to_string(),
        denomination: a.n("denomination")?,
        sealed: SealedCard {
            number_ciphertext: a.s("giftCardNumber")?.to_string(),
            pin_ciphertext: a.s("giftCardPin")?.to_string(),
            lookup_key: a.s("giftCardNumberHash")?.to_string(),
            last4: a.s("last4")?.to_string(),
        },
        expiry_date: a.parsed("expiryDate", |d| d.parse::<NaiveDate>().ok())?,
        status: a.parsed("status", GiftCardStatus::parse)?,
        purchase_price: a.money("purchasePrice")?,
        issued_at: a.ts("issuedAt")?,
        redeemed_at: a.opt_ts("redeemedAt")?,
        redeemed_by: a.opt_s("redeemedBy")?.map(UserId::parse).transpose()?,
        revealed_at: a.opt_ts("revealedAt")?,
        returned_at: a.opt_ts("returnedAt")?,
        notified_at: a.opt_ts("notifiedAt")?,
    })
}

#[async_trait]
impl GiftCards for DynamoStore {
    /// The user's index copies keys only: the ids come from it newest first, and the cards of
    /// the page from a consistent batch read. A status filter needs each card's status, so it
    /// reads all of the user's cards (a user holds few).
    async fn cards_of_user(
        &self,
        user: &UserId,
        status: Option<GiftCardStatus>,
        page: PageRequest,
    ) -> Result<Page<GiftCard>> {
        let ids: Vec<String> = all_pages!(
            self.client
                .query()
                .table_name(&self.tables.gift_cards)
                .index_name("userId-issuedAt-index")
                .key_condition_expression("#userId = :u")
                .set_expression_attribute_names(names_of(&["#userId"]))
                .expression_attribute_values(":u", s(user.as_str()))
                .scan_index_forward(false)
        )
        .iter()
        .map(|raw| {
            Attrs::new(raw, "gift-cards")
                .s("giftCardId")
                .map(str::to_string)
        })
        .collect::<Result<_>>()?;
        let (offset, limit) = (page.offset() as usize, page.limit as usize);
        let (total, items) = match status {
            Some(status) => {
                let keys = ids.iter().map(|id| item([("giftCardId", s(id))])).collect();
                let matching: Vec<GiftCard> = in_id_order(self.batch_get_cards(keys).await?, &ids)
                    .into_iter()
                    .filter(|c| c.status == status)
                    .collect();
                let total = matching.len();
                (
                    total,
                    matching.into_iter().skip(offset).take(limit).collect(),
                )
            }
            None => {
                let page_ids: Vec<String> = ids.iter().skip(offset).take(limit).cloned().collect();
                let keys = page_ids
                    .iter()
                    .map(|id| item([("giftCardId", s(id))]))
                    .collect();
                (
                    ids.len(),
                    in_id_order(self.batch_get_cards(keys).await?, &page_ids),
                )
            }
        };
        Ok(Page {
            items,
            total: total as u64,
            page: page.page,
            limit: page.limit,
        })
    }

    async fn cards(&self, ids: &[GiftCardId]) -> Result<Vec<GiftCard>> {
        let keys = ids
            .iter()
            .map(|id| item([("giftCardId", s(id.as_str()))]))
            .collect();
        Ok(in_id_order(self.batch_get_cards(keys).await?, ids))
    }

    async fn card(&self, id: &GiftCardId) -> Result<Option<GiftCard>> {
        self.get(
            &self.tables.gift_cards,
            item([("giftCardId", s(id.as_str()))]),
        )
        .await?
        .as_ref()
        .map(card_from)
        .transpose()
    }

    async fn expire_cards(&self, expiry: &Expiry) -> Result<u64> {
        let today = expiry.today;
        let output = self
            .client
            .query()
            .table_name(&self.tables.gift_cards)
            .index_name("activeCard-expiryDate-index")
            .key_condition_expression("#activeCard = :active AND #expiryDate < :today")
            .set_expression_attribute_names(names_of(&["#activeCard #expiryDate"]))
            .expression_attribute_values(":active", s(ACTIVE_CARD))
            .expression_attribute_values(":today", s(today.to_string()))
            .limit(i32::try_from(expiry.limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(sdk_error)?;
        let keys: Vec<Item> = output
            .items
            .unwrap_or_default()
            .iter()
            .map(|raw| {
                let id = Attrs::new(raw, "gift-cards").s("giftCardId")?;
                Ok(card_key(&GiftCardId::parse(id)?))
            })
            .collect::<Result<_>>()?;
        if keys.is_empty() {
            return Ok(0);
        }
        let mut expired = 0;
        for card in self.batch_get_cards(keys).await? {
            // A Giftify card leaves what is owed as it expires, in the same transaction.
            let face = expiry.owed_face(&card.variant_id, card.denomination);
            let expire = || async {
                let mut transaction = Transaction::<()>::new();
                transaction.push(
                    update(
                        &self.tables.gift_cards,
                        card_key(&card.id),
                        "SET #status = :expired REMOVE #activeCard",
                        Some("#status = :active"),
                        item([
                            (":expired", s(GiftCardStatus::Expired.as_str())),
                            (":active", s(GiftCardStatus::Active.as_str())),
                        ]),
                    )?,
                    (),
                );
                transaction.tally(Tally::of_expiry(&card.user_id, today, face))?;
                match self.commit(transaction).await {
                    Ok(()) => Ok(true),
                    // Redeemed or returned meanwhile: not this pass's to expire.
                    Err(TxFailure::Refused(())) => Ok(false),
                    Err(TxFailure::Failed(error)) => Err(error),
                }
            };
            match retrying(expire).await {
                Ok(true) => expired += 1,
                Ok(false) => {}
                // Left ACTIVE for the next pass; the other cards still expire in this one.
                Err(error) => {
                    tracing::warn!(gift_card_id = %card.id, error = %error, "card expiry failed");
                }
            }
        }
        Ok(expired)
    }

    async fn card_by_lookup_key(&self, lookup_key: &str) -> Result<Option<GiftCard>> {
        // The index is eventually consistent; the card is then read consistently by id.
        let output = self
            .client
            .query()
            .table_name(&self.tables.gift_cards)
            .index_name("giftCardNumber-index")
            .key_condition_expression("#giftCardNumberHash = :h")
            .set_expression_attribute_names(names_of(&["#giftCardNumberHash"]))
            .expression_attribute_values(":h", s(lookup_key))
            .limit(1)
            .send()
            .await
            .map_err(sdk_error)?;
        let Some(id) = output
            .items
            .unwrap_or_default()
            .first()
            .map(|raw| {
                Attrs::new(raw, "gift-cards")
                    .s("giftCardId")
                    .map(str::to_string)
            })
            .transpose()?
        else {
            return Ok(None);
        };
        self.card(&GiftCardId::parse(&id)?).await
    }

    async fn redeem(&self, redemption: &Redemption) -> Result<GiftCard> {
        retrying(|| async {
            let card = self
                .card(&redemption.card_id)
                .await?
                .ok_or(Error::NotFound(Missing::GiftCard))?;
            let redeemed = card.redeemed_by_user(&redemption.credit.user, redemption.credit.at)?;
            let mut transaction = Transaction::new();
            transaction.push(
                update(
                    &self.tables.gift_cards,
                    card_key(&card.id),
                    "SET #status = :redeemed, #redeemedAt = :at, #redeemedBy = :by, \
                     #updatedAt = :at, #notifyPending = :pending REMOVE #activeCard",
                    Some("#status = :active"),
                    item([
                        (":redeemed", s(redeemed.status.as_str())),
                        (":active", s(GiftCardStatus::Active.as_str())),
                        (":at", ts(redemption.credit.at)),
                        (":by", s(redemption.credit.user.as_str())),
                        (":pending", s(NOTIFY_PENDING)),
                    ]),
                )?,
                // Redeemed by a concurrent request: read again, and it answers why.
                Error::Conflict("the card changed while it was redeemed"),
            );
            let wallet = self.wallet_state(&redemption.credit.user).await?;
            self.add_movement(&mut transaction, &redemption.credit, &wallet)?;
            self.commit(transaction)
                .await
                .map_err(TxFailure::into_error)?;
            Ok(redeemed)
        })
        .await
    }

    async fn record_reveal(&self, audit: &RevealAudit) -> Result<()> {
        let record = item([
            ("subjectId", s(audit.gift_card_id.as_str())),
            (
                "auditId",
                s(format!(
                    "{REVEAL_PREFIX}{}#{}",
                    crate::aws::item::format_ts(audit.revealed_at),
                    ulid::Ulid::new()
                )),
            ),
            ("kind", s("GIFT_CARD_REVEAL")),
            ("userId", s(audit.user_id.as_str())),
            ("orderId", s(audit.order_id.as_str())),
            ("at", ts(audit.revealed_at)),
        ]);
        let mut transaction = Transaction::<()>::new();
        transaction.push(
            update(
                &self.tables.gift_cards,
                card_key(&audit.gift_card_id),
                "SET #revealedAt = if_not_exists(#revealedAt, :at)",
                Some("attribute_exists(#giftCardId) AND #status <> :cancelled"),
                item([
                    (":at", ts(audit.revealed_at)),
                    (":cancelled", s(GiftCardStatus::Cancelled.as_str())),
                ]),
            )?,
            (),
        );
        transaction.push(put(&self.tables.audit, record, None, Item::new())?, ());
        match self.commit(transaction).await {
            Ok(()) => Ok(()),
            Err(TxFailure::Refused(())) => match self.card(&audit.gift_card_id).await? {
                None => Err(Error::NotFound(Missing::GiftCard)),
                Some(_) => Err(Error::Card(giftify_shared::CardRefusal::Cancelled)),
            },
            Err(TxFailure::Failed(error)) => Err(error),
        }
    }

    async fn reveals_of(&self, card: &GiftCardId) -> Result<Vec<RevealAudit>> {
        let records = all_pages!(
            self.client
                .query()
                .table_name(&self.tables.audit)
                .key_condition_expression("#subjectId = :card AND begins_with(#auditId, :reveal)")
                .set_expression_attribute_names(names_of(&["#subjectId #auditId"]))
                .expression_attribute_values(":card", s(card.as_str()))
                .expression_attribute_values(":reveal", s(REVEAL_PREFIX))
                .consistent_read(true)
        );
        records
            .iter()
            .map(|raw| {
                let a = Attrs::new(raw, "audit");
                Ok(RevealAudit {
                    gift_card_id: GiftCardId::parse(a.s("subjectId")?)?,
                    order_id: OrderId::parse(a.s("orderId")?)?,
                    user_id: UserId::parse(a.s("userId")?)?,
                    revealed_at: a.ts("at")?,
                })
            })
            .collect()
    }

    async fn return_card(&self, r: &CardReturn) -> Result<GiftCard> {
        retrying(|| async {
            let card = self
                .card(&r.card.id)
                .await?
                .ok_or(Error::NotFound(Missing::GiftCard))?;
            let returned = card.returned(r.now)?;
            let mut transaction = Transaction::new();
            // A brand code's number goes back to the pool: the cancelled card gives it up, as
            // on the embedded backend, for a key that is no number's.
            let expression = if r.code.is_some() {
                "SET #status = :cancelled, #updatedAt = :now, #returnedAt = :now, \
                 #notifyPending = :pending, #giftCardNumberHash = :freed REMOVE #activeCard"
            } else {
                "SET #status = :cancelled, #updatedAt = :now, #returnedAt = :now, \
                 #notifyPending = :pending REMOVE #activeCard"
            };
            transaction.push(
                update(
                    &self.tables.gift_cards,
                    card_key(&card.id),
                    expression,
                    Some("#status = :active AND attribute_not_exists(#revealedAt)"),
                    {
                        let mut values = item([
                            (":cancelled", s(returned.status.as_str())),
                            (":active", s(GiftCardStatus::Active.as_str())),
                            (":now", ts(r.now)),
                            (":pending", s(NOTIFY_PENDING)),
                        ]);
                        if r.code.is_some() {
                            values.insert(":freed".into(), s(format!("returned:{}", card.id)));
                        }
                        values
                    },
                )?,
                // Revealed or changed by a concurrent request: read again, and it answers why.
                Error::Conflict("the card changed while it was returned"),
            );
            let wallet = self.wallet_state(&card.user_id).await?;
            self.add_movement(&mut transaction, &r.refund, &wallet)?;
            transaction.tally(Tally::of_return(r))?;
            let back_in_stock = match &r.code {
                Some(code) => {
                    self.code_back_to_pool(&mut transaction, &card, code, r.now)
                        .await?
                }
                None => true,
            };
            if back_in_stock {
                transaction.push(
                    update(
                        &self.tables.product_variants,
                        super::catalogue::variant_key(&card.product_id, &card.variant_id),
                        "SET #stockQuantity = #stockQuantity + :one",
                        Some("attribute_exists(#stockQuantity)"),
                        item([(":one", n(1))]),
                    )?,
                    Error::NotFound(Missing::Variant),
                );
            }
            self.commit(transaction)
                .await
                .map_err(TxFailure::into_error)?;
            Ok(returned)
        })
        .await
    }

    async fn mark_card_notified(&self, card: &GiftCardId, now: DateTime<Utc>) -> Result<()> {
        // Only a card that owes an event has one to mark; for any other the condition fails
        // quietly.
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.gift_cards)
            .set_key(Some(card_key(card)))
            .update_expression("SET #notifiedAt = :now REMOVE #notifyPending")
            .condition_expression(
                "#status IN (:redeemed, :cancelled) AND attribute_not_exists(#notifiedAt)",
            )
            .set_expression_attribute_names(names_of(&["#notifiedAt #notifyPending #status"]))
            .set_expression_attribute_values(Some(item([
                (":now", ts(now)),
                (":redeemed", s(GiftCardStatus::Redeemed.as_str())),
                (":cancelled", s(GiftCardStatus::Cancelled.as_str())),
            ])))
            .send()
            .await;
        result
            .map(|_| ())
            .or_else(|error| lost_race_or_error(error).map_or(Ok(()), Err))
    }

    async fn unnotified_cards(&self, limit: u32) -> Result<Vec<GiftCard>> {
        let output = self
            .client
            .query()
            .table_name(&self.tables.gift_cards)
            .index_name("notifyPending-index")
            .key_condition_expression("#notifyPending = :pending")
            .set_expression_attribute_names(names_of(&["#notifyPending"]))
            .expression_attribute_values(":pending", s(NOTIFY_PENDING))
            .limit(limit as i32)
            .send()
            .await
            .map_err(sdk_error)?;
        // The index lags the table: confirm them with one consistent batch read.
        let keys = output
            .items
            .unwrap_or_default()
            .iter()
            .map(|raw| {
                Ok(card_key(&GiftCardId::parse(
                    Attrs::new(raw, "gift-cards").s("giftCardId")?,
                )?))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut cards = self.batch_get_cards(keys).await?;
        cards.retain(GiftCard::owes_event);
        Ok(cards)
    }
}

impl DynamoStore {
    async fn batch_get_cards(&self, keys: Vec<Item>) -> Result<Vec<GiftCard>> {
        self.batch_get(&self.tables.gift_cards, keys)
            .await?
            .iter()
            .map(card_from)
            .collect()
    }
}
