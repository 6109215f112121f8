//! Issued gift cards, stored sealed only (ciphertexts, keyed lookup hash, last four digits),
//! and the audit trail of reveals.

use super::SqliteStore;
use super::codec::{
    DbError, DbResult, all, count, date, day, enumeration, execute, id, one, opt_id, opt_time,
    page_bounds, paise, time, ts,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use giftify_shared::CardRefusal;
use giftify_shared::Missing;
use giftify_shared::card_life::{CardReturn, Expiry, Redemption};
use giftify_shared::codes::FulfillmentSource;
use giftify_shared::figures::Tally;
use giftify_shared::ids::{GiftCardId, UserId, VariantId};
use giftify_shared::ports::GiftCards;
use giftify_shared::vault::{GiftCard, GiftCardStatus, RevealAudit, SealedCard, in_id_order};
use giftify_shared::wallet::{Page, PageRequest};
use giftify_shared::{Error, Paise, Result};
use rusqlite::{Connection, Row, params};

pub(super) const CARD_COLUMNS: &str = "id, order_id, user_id, product_id, variant_id, product_name, \
     variant_name, denomination, number_ciphertext, pin_ciphertext, lookup_key, last4, \
     expiry_date, status, purchase_price, issued_at, redeemed_at, redeemed_by, revealed_at, \
     returned_at, notified_at";

pub(super) fn card_from_row(row: &Row) -> DbResult<GiftCard> {
    Ok(GiftCard {
        id: id(row, "id")?,
        order_id: id(row, "order_id")?,
        user_id: id(row, "user_id")?,
        product_id: id(row, "product_id")?,
        variant_id: id(row, "variant_id")?,
        product_name: row.get("product_name")?,
        variant_name: row.get("variant_name")?,
        denomination: row.get("denomination")?,
        sealed: SealedCard {
            number_ciphertext: row.get("number_ciphertext")?,
            pin_ciphertext: row.get("pin_ciphertext")?,
            lookup_key: row.get("lookup_key")?,
            last4: row.get("last4")?,
        },
        expiry_date: date(row, "expiry_date")?,
        status: enumeration(row, "status", GiftCardStatus::parse)?,
        purchase_price: paise(row, "purchase_price")?,
        issued_at: time(row, "issued_at")?,
        redeemed_at: opt_time(row, "redeemed_at")?,
        redeemed_by: opt_id(row, "redeemed_by")?,
        revealed_at: opt_time(row, "revealed_at")?,
        returned_at: opt_time(row, "returned_at")?,
        notified_at: opt_time(row, "notified_at")?,
    })
}

/// Stores one issued card inside the caller's transaction. Two cards with the same number
/// (same lookup key) cannot both exist: the clash is a `Conflict`, and the retried
/// fulfillment draws new numbers.
pub(super) fn insert_card(conn: &Connection, card: &GiftCard) -> DbResult<()> {
    execute(
        conn,
        "INSERT INTO gift_cards (id, order_id, user_id, product_id, variant_id, product_name, \
         variant_name, denomination, number_ciphertext, pin_ciphertext, lookup_key, last4, \
         expiry_date, status, purchase_price, issued_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        params![
            card.id.as_str(),
            card.order_id.as_str(),
            card.user_id.as_str(),
            card.product_id.as_str(),
            card.variant_id.as_str(),
            card.product_name,
            card.variant_name,
            card.denomination,
            card.sealed.number_ciphertext,
            card.sealed.pin_ciphertext,
            card.sealed.lookup_key,
            card.sealed.last4,
            day(card.expiry_date),
            card.status.as_str(),
            card.purchase_price.get(),
            ts(card.issued_at),
        ],
    )
    .map_err(|e| {
        if e.violates(
            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE,
            "gift_cards.lookup_key",
        ) {
            DbError::Domain(Error::Conflict("a gift card number was issued twice"))
        } else {
            e
        }
    })?;
    Ok(())
}

fn card_by_id(conn: &Connection, id: &GiftCardId) -> DbResult<Option<GiftCard>> {
    one(
        conn,
        &format!("SELECT {CARD_COLUMNS} FROM gift_cards WHERE id = ?1"),
        [id.as_str()],
        card_from_row,
    )
}

fn redeem(conn: &Connection, redemption: &Redemption) -> DbResult<GiftCard> {
    let card = card_by_id(conn, &redemption.card_id)?.ok_or(Error::NotFound(Missing::GiftCard))?;
    let redeemed = card.redeemed_by_user(&redemption.credit.user, redemption.credit.at)?;
    let changed = execute(
        conn,
        "UPDATE gift_cards SET status = ?2, redeemed_at = ?3, redeemed_by = ?4 \
         WHERE id = ?1 AND status = 'ACTIVE'",
        params![
            redeemed.id.as_str(),
            redeemed.status.as_str(),
            redeemed.redeemed_at.map(ts),
            redeemed.redeemed_by.as_ref().map(|u| u.as_str()),
        ],
    )?;
    if changed != 1 {
        return Err(DbError::corrupt(
            "a card changed inside its own transaction",
        ));
    }
    super::wallet::apply(conn, &redemption.credit)?;
    Ok(redeemed)
}

/// The reveal's audit record and the card's first reveal, unless the card was returned.
fn reveal(conn: &Connection, audit: &RevealAudit) -> DbResult<()> {
    let card = card_by_id(conn, &audit.gift_card_id)?.ok_or(Error::NotFound(Missing::GiftCard))?;
    if card.status == GiftCardStatus::Cancelled {
        return Err(Error::Card(CardRefusal::Cancelled).into());
    }
    execute(
        conn,
        "UPDATE gift_cards SET revealed_at = coalesce(revealed_at, ?2) WHERE id = ?1",
        params![audit.gift_card_id.as_str(), ts(audit.revealed_at)],
    )?;
    execute(
        conn,
        "INSERT INTO gift_card_reveals (gift_card_id, order_id, user_id, revealed_at) \
         VALUES (?1, ?2, ?3, ?4)",
        params![
            audit.gift_card_id.as_str(),
            audit.order_id.as_str(),
            audit.user_id.as_str(),
            ts(audit.revealed_at),
        ],
    )?;
    Ok(())
}

fn return_card(conn: &Connection, r: &CardReturn) -> DbResult<GiftCard> {
    let card = card_by_id(conn, &r.card.id)?.ok_or(Error::NotFound(Missing::GiftCard))?;
    let returned = card.returned(r.now)?;
    execute(
        conn,
        "UPDATE gift_cards SET status = ?2, returned_at = ?3 WHERE id = ?1",
        params![
            returned.id.as_str(),
            returned.status.as_str(),
            returned.returned_at.map(ts)
        ],
    )?;
    super::wallet::apply(conn, &r.refund)?;
    super::figures::add_tally(conn, &Tally::of_return(r))?;
    let back_in_stock = match &r.code {
        Some(code) => {
            // The number goes back to the pool: the cancelled card no longer holds it.
            execute(
                conn,
                "UPDATE gift_cards SET lookup_key = 'returned:' || id WHERE id = ?1",
                [card.id.as_str()],
            )?;
            super::codes::back_to_pool(conn, &card.id, code, r.now)?
        }
        None => true,
    };
    let source = if r.code.is_some() {
        FulfillmentSource::Inventory
    } else {
        FulfillmentSource::Generated
    };
    if back_in_stock && !super::catalogue::move_stock(conn, &card.variant_id, 1, source, r.now)? {
        return Err(DbError::corrupt(
            "a returned card's variant changed its source",
        ));
    }
    Ok(returned)
}

#[async_trait]
impl GiftCards for SqliteStore {
    async fn cards_of_user(
        &self,
        user: &UserId,
        status: Option<GiftCardStatus>,
        page: PageRequest,
    ) -> Result<Page<GiftCard>> {
        let user = user.clone();
        let status = status.map(GiftCardStatus::as_str);
        self.read(move |conn| {
            let (limit, offset) = page_bounds(page);
            let total = count(
                conn,
                "SELECT COUNT(*) FROM gift_cards WHERE user_id = ?1 AND (?2 IS NULL OR status = ?2)",
                params![user.as_str(), status],
            )?;
            let items = all(
                conn,
                &format!(
                    "SELECT {CARD_COLUMNS} FROM gift_cards \
                     WHERE user_id = ?1 AND (?2 IS NULL OR status = ?2) \
                     ORDER BY issued_at DESC, id DESC LIMIT ?3 OFFSET ?4"
                ),
                params![user.as_str(), status, limit, offset],
                card_from_row,
            )?;
            Ok(Page {
                items,
                total,
                page: page.page,
                limit: page.limit,
            })
        })
        .await
    }

    async fn expire_cards(&self, expiry: &Expiry) -> Result<u64> {
        let expiry = expiry.clone();
        self.write(move |conn| {
            let due = all(
                conn,
                "SELECT id, user_id, variant_id, denomination FROM gift_cards \
                 WHERE status = 'ACTIVE' AND expiry_date < ?1 LIMIT ?2",
                params![day(expiry.today), expiry.limit],
                |row| {
                    Ok((
                        row.get::<_, String>("id")?,
                        id::<UserId>(row, "user_id")?,
                        id::<VariantId>(row, "variant_id")?,
                        row.get::<_, i64>("denomination")?,
                    ))
                },
            )?;
            // What leaves the Giftify cards owed, by owner (each owner's figures shard).
            let mut faces: std::collections::BTreeMap<UserId, i64> = Default::default();
            for (card, owner, variant, denomination) in &due {
                execute(
                    conn,
                    "UPDATE gift_cards SET status = 'EXPIRED' WHERE id = ?1 AND status = 'ACTIVE'",
                    [card],
                )?;
                *faces.entry(owner.clone()).or_default() +=
                    expiry.owed_face(variant, *denomination).get();
            }
            for (owner, face) in faces {
                let tally = Tally::of_expiry(&owner, expiry.today, Paise::new(face));
                super::figures::add_tally(conn, &tally)?;
            }
            Ok(due.len() as u64)
        })
        .await
    }

    async fn card_by_lookup_key(&self, lookup_key: &str) -> Result<Option<GiftCard>> {
        let key = lookup_key.to_string();
        self.read(move |conn| {
            one(
                conn,
                &format!("SELECT {CARD_COLUMNS} FROM gift_cards WHERE lookup_key = ?1"),
                [key.as_str()],
                card_from_row,
            )
        })
        .await
    }

    async fn redeem(&self, redemption: &Redemption) -> Result<GiftCard> {
        let redemption = redemption.clone();
        self.write(move |conn| redeem(conn, &redemption)).await
    }

    async fn cards(&self, ids: &[GiftCardId]) -> Result<Vec<GiftCard>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<&str> = ids.iter().map(GiftCardId::as_str).collect();
        let wanted = serde_json::to_string(&wanted).map_err(|e| Error::Internal(e.into()))?;
        let found = self
            .read(move |conn| {
                all(
                    conn,
                    &format!(
                        "SELECT {CARD_COLUMNS} FROM gift_cards \
                         WHERE id IN (SELECT value FROM json_each(?1))"
                    ),
                    [wanted.as_str()],
                    card_from_row,
                )
            })
            .await?;
        Ok(in_id_order(found, ids))
    }

    async fn card(&self, id: &GiftCardId) -> Result<Option<GiftCard>> {
        let id = id.clone();
        self.read(move |conn| {
            one(
                conn,
                &format!("SELECT {CARD_COLUMNS} FROM gift_cards WHERE id = ?1"),
                [id.as_str()],
                card_from_row,
            )
        })
        .await
    }

    async fn record_reveal(&self, audit: &RevealAudit) -> Result<()> {
        let audit = audit.clone();
        self.write(move |conn| reveal(conn, &audit)).await
    }

    async fn reveals_of(&self, card: &GiftCardId) -> Result<Vec<RevealAudit>> {
        let card = card.clone();
        self.read(move |conn| {
            all(
                conn,
                "SELECT gift_card_id, order_id, user_id, revealed_at FROM gift_card_reveals \
                 WHERE gift_card_id = ?1 ORDER BY revealed_at, id",
                [card.as_str()],
                |row| {
                    Ok(RevealAudit {
                        gift_card_id: id(row, "gift_card_id")?,
                        order_id: id(row, "order_id")?,
                        user_id: id(row, "user_id")?,
                        revealed_at: time(row, "revealed_at")?,
                    })
                },
            )
        })
        .await
    }

    async fn return_card(&self, card_return: &CardReturn) -> Result<GiftCard> {
        let card_return = card_return.clone();
        self.write(move |conn| return_card(conn, &card_return))
            .await
    }

    async fn mark_card_notified(&self, card: &GiftCardId, now: DateTime<Utc>) -> Result<()> {
        let card = card.clone();
        self.write(move |conn| {
            execute(
                conn,
                "UPDATE gift_cards SET notified_at = ?2 WHERE id = ?1 AND notified_at IS NULL \
                 AND status IN ('REDEEMED', 'CANCELLED')",
                params![card.as_str(), ts(now)],
            )?;
            Ok(())
        })
        .await
    }

    async fn unnotified_cards(&self, limit: u32) -> Result<Vec<GiftCard>> {
        self.read(move |conn| {
            all(
                conn,
                &format!(
                    "SELECT {CARD_COLUMNS} FROM gift_cards \
                     WHERE notified_at IS NULL AND status IN ('REDEEMED', 'CANCELLED') \
                     ORDER BY id LIMIT ?1"
                ),
                [limit],
                card_from_row,
            )
        })
        .await
    }
}
