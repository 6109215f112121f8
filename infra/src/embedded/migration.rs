//! The embedded store as the source of a move to another backend ([`MigrationSource`]): each
//! part read in a stable order of its own key, in one read transaction per page, through the
//! same row decoders the store's ports use.

use super::SqliteStore;
use super::codec::{DbError, DbResult, all, count, id, opt_time, time};
use chrono::{DateTime, NaiveDate, Utc};
use giftify_shared::Result;
use giftify_shared::audit::AuditEntry;
use giftify_shared::codes::BatchRef;
use giftify_shared::events::Event;
use giftify_shared::figures::DayFigures;
use giftify_shared::idempotency::{IdempotencyKey, IdempotencyScope};
use giftify_shared::migration::{
    AccountRecord, BatchRecord, CodeRecord, ExportPage, FeedRecord, KeyRecord, LedgerRecord,
    MigrationSource, Part, Record, RevealRecord,
};
use giftify_shared::user::UserCredentials;
use giftify_shared::vault::RevealAudit;
use rusqlite::{Connection, OptionalExtension, params};

/// Rows of a table with a rowid after the position `after` (a rowid), each with its position:
/// `SELECT <alias>.rowid, <columns> FROM <from>`.
fn by_rowid<T>(
    conn: &Connection,
    from: &str,
    alias: &str,
    columns: &str,
    after: Option<&str>,
    limit: u32,
    decode: impl Fn(&rusqlite::Row) -> DbResult<T>,
) -> DbResult<Vec<(i64, T)>> {
    let after: i64 = after.and_then(|a| a.parse().ok()).unwrap_or(0);
    all(
        conn,
        &format!(
            "SELECT {alias}.rowid AS position, {columns} FROM {from} \
             WHERE {alias}.rowid > ?1 ORDER BY {alias}.rowid LIMIT ?2"
        ),
        params![after, limit],
        |row| Ok((row.get::<_, i64>("position")?, decode(row)?)),
    )
}

fn page(rows: Vec<(i64, Record)>, limit: u32) -> ExportPage {
    let next = match rows.last() {
        Some((position, _)) if rows.len() as u32 >= limit => Some(position.to_string()),
        _ => None,
    };
    ExportPage {
        records: rows.into_iter().map(|(_, record)| record).collect(),
        next,
    }
}

/// Accounts with their whole ledgers, a few accounts a page: an entry's position in its
/// wallet's history is counted within the account, so an account is never split.
fn ledger_page(conn: &Connection, after: Option<&str>, limit: u32) -> DbResult<ExportPage> {
    let mut records = Vec::new();
    let mut last = after.map(str::to_string);
    loop {
        let user: Option<String> = conn
            .query_row(
                "SELECT id FROM users WHERE id > ?1 ORDER BY id LIMIT 1",
                [last.as_deref().unwrap_or("")],
                |row| row.get(0),
            )
            .optional()?;
        let Some(user) = user else {
            return Ok(ExportPage {
                records,
                next: None,
            });
        };
        let entries = all(
            conn,
            &format!(
                "SELECT {} FROM wallet_transactions WHERE user_id = ?1 ORDER BY rowid",
                super::wallet::TRANSACTION_COLUMNS
            ),
            [&user],
            super::wallet::transaction_from_row,
        )?;
        records.extend(entries.into_iter().zip(1..).map(|(transaction, position)| {
            Record::Ledger(LedgerRecord {
                transaction,
                position,
            })
        }));
        last = Some(user);
        if records.len() as u32 >= limit {
            return Ok(ExportPage {
                records,
                next: last,
            });
        }
    }
}

fn figures_page(conn: &Connection, after: Option<&str>, limit: u32) -> DbResult<ExportPage> {
    let days = all(
        conn,
        "SELECT DISTINCT day FROM daily_figures WHERE day > ?1 ORDER BY day LIMIT ?2",
        params![after.unwrap_or(""), limit],
        |row| Ok(row.get::<_, String>(0)?),
    )?;
    let mut records = Vec::new();
    for day in &days {
        let counters = all(
            conn,
            "SELECT counter, value FROM daily_figures WHERE day = ?1",
            [day],
            |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)),
        )?;
        let figures = DayFigures::from_counters(
            counters.iter().map(|(name, value)| (name.as_str(), *value)),
        )?;
        let date: NaiveDate = day.parse().map_err(|_| DbError::corrupt("a figures day"))?;
        records.push(Record::Figures(date, Box::new(figures)));
    }
    let next = match days.last() {
        Some(day) if days.len() as u32 >= limit => Some(day.clone()),
        _ => None,
    };
    Ok(ExportPage { records, next })
}

fn export(
    conn: &Connection,
    part: Part,
    after: Option<&str>,
    limit: u32,
    live_at: DateTime<Utc>,
) -> DbResult<ExportPage> {
    use super::{api_keys, cards, catalogue, codes, orders, users};
    let rows = match part {
        Part::Users => by_rowid(
            conn,
            "users",
            "users",
            &format!(
                "{}, (SELECT COUNT(*) FROM wallet_transactions w WHERE w.user_id = users.id) \
                 AS movements",
                users::USER_COLUMNS
            ),
            after,
            limit,
            |row| {
                Ok(Record::Account(Box::new(AccountRecord {
                    credentials: UserCredentials {
                        user: users::user_from_row(row)?,
                        password_hash: row.get("password_hash")?,
                    },
                    wallet_movements: row.get("movements")?,
                })))
            },
        )?,
        Part::Ledger => return ledger_page(conn, after, limit),
        Part::Products => by_rowid(
            conn,
            "products p",
            "p",
            catalogue::PRODUCT_COLUMNS,
            after,
            limit,
            |row| Ok(Record::Product(Box::new(catalogue::product_from_row(row)?))),
        )?,
        Part::Variants => by_rowid(
            conn,
            "variants v",
            "v",
            catalogue::VARIANT_COLUMNS,
            after,
            limit,
            |row| Ok(Record::Variant(Box::new(catalogue::variant_from_row(row)?))),
        )?,
        Part::CodeBatches => by_rowid(
            conn,
            "code_batches t JOIN variants v ON v.id = t.variant_id",
            "t",
            "t.variant_id, v.product_id, t.batch_ref, t.fingerprint, t.report, t.imported_at, \
             t.voided_at, (SELECT COUNT(*) FROM inventory_codes c \
             WHERE c.variant_id = t.variant_id AND c.batch_ref = t.batch_ref) AS stored",
            after,
            limit,
            |row| {
                let batch_ref: String = row.get("batch_ref")?;
                Ok(Record::CodeBatch(BatchRecord {
                    variant_id: id(row, "variant_id")?,
                    product_id: id(row, "product_id")?,
                    batch_ref: BatchRef::parse(&batch_ref)
                        .map_err(|_| DbError::corrupt("a batch reference"))?,
                    fingerprint: row.get("fingerprint")?,
                    report: row.get("report")?,
                    stored: row.get::<_, i64>("stored")?.unsigned_abs(),
                    imported_at: time(row, "imported_at")?,
                    voided_at: opt_time(row, "voided_at")?,
                }))
            },
        )?,
        Part::Codes => by_rowid(
            conn,
            "inventory_codes",
            "inventory_codes",
            &format!("{}, returned", codes::CODE_COLUMNS),
            after,
            limit,
            |row| {
                Ok(Record::Code(Box::new(CodeRecord {
                    code: codes::code_from_row(row)?,
                    returned: row.get::<_, i64>("returned")? != 0,
                })))
            },
        )?,
        Part::Orders => by_rowid(
            conn,
            "orders",
            "orders",
            orders::ORDER_COLUMNS,
            after,
            limit,
            |row| Ok(Record::Order(Box::new(orders::order_from_row(row)?))),
        )?,
        Part::Cards => by_rowid(
            conn,
            "gift_cards",
            "gift_cards",
            cards::CARD_COLUMNS,
            after,
            limit,
            |row| Ok(Record::Card(Box::new(cards::card_from_row(row)?))),
        )?,
        Part::Reveals => by_rowid(
            conn,
            "gift_card_reveals",
            "gift_card_reveals",
            "id, gift_card_id, order_id, user_id, revealed_at",
            after,
            limit,
            |row| {
                Ok(Record::Reveal(RevealRecord {
                    serial: row.get("id")?,
                    audit: RevealAudit {
                        gift_card_id: id(row, "gift_card_id")?,
                        order_id: id(row, "order_id")?,
                        user_id: id(row, "user_id")?,
                        revealed_at: time(row, "revealed_at")?,
                    },
                }))
            },
        )?,
        Part::IdempotencyKeys => {
            let rows = by_rowid(
                conn,
                "idempotency_keys",
                "idempotency_keys",
                "*",
                after,
                limit,
                |row| {
                    let key: String = row.get("key")?;
                    Ok(KeyRecord {
                        scope: IdempotencyScope {
                            user_id: id(row, "user_id")?,
                            key: IdempotencyKey::parse(&key)
                                .map_err(|_| DbError::corrupt("an idempotency key"))?,
                        },
                        key: super::idempotency::stored_key(row)?,
                        created_at: time(row, "created_at")?,
                    })
                },
            )?;
            // The position counts every row, so a page of expired keys moves on too.
            let next = match rows.last() {
                Some((position, _)) if rows.len() as u32 >= limit => Some(position.to_string()),
                _ => None,
            };
            return Ok(ExportPage {
                records: rows
                    .into_iter()
                    .filter(|(_, record)| record.key.expires_at > live_at)
                    .map(|(_, record)| Record::IdempotencyKey(record))
                    .collect(),
                next,
            });
        }
        Part::ApiKeys => by_rowid(
            conn,
            "api_keys",
            "api_keys",
            api_keys::KEY_COLUMNS,
            after,
            limit,
            |row| Ok(Record::ApiKey(Box::new(api_keys::key_from_row(row)?))),
        )?,
        Part::Webhooks => by_rowid(
            conn,
            "webhook_endpoints",
            "webhook_endpoints",
            "body",
            after,
            limit,
            |row| {
                Ok(Record::Webhook(Box::new(serde_json::from_str(
                    &row.get::<_, String>("body")?,
                )?)))
            },
        )?,
        Part::Audit => by_rowid(
            conn,
            "audit_log",
            "audit_log",
            "body",
            after,
            limit,
            |row| {
                Ok(Record::Audit(Box::new(
                    AuditEntry::from_json(&row.get::<_, String>("body")?)
                        .map_err(DbError::Domain)?,
                )))
            },
        )?,
        Part::Figures => return figures_page(conn, after, limit),
        Part::Events => by_rowid(
            conn,
            "event_feed",
            "event_feed",
            // `position` is the table's rowid, which `by_rowid` reads as the position.
            "body, recorded_at",
            after,
            limit,
            |row| {
                Ok(Record::FeedEvent(Box::new(FeedRecord {
                    event: Event::from_json(&row.get::<_, String>("body")?)?,
                    position: row.get::<_, i64>("position")?.unsigned_abs(),
                    recorded_at: time(row, "recorded_at")?,
                })))
            },
        )?,
    };
    Ok(page(rows, limit))
}

#[async_trait::async_trait]
impl MigrationSource for SqliteStore {
    async fn export(
        &self,
        part: Part,
        after: Option<&str>,
        limit: u32,
        live_at: DateTime<Utc>,
    ) -> Result<ExportPage> {
        let after = after.map(str::to_string);
        self.read(move |conn| export(conn, part, after.as_deref(), limit, live_at))
            .await
    }

    async fn dead_letters(&self) -> Result<u64> {
        self.read(|conn| count(conn, "SELECT COUNT(*) FROM dead_letters", []))
            .await
    }
}
