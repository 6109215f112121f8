//! Where a variant's cards come from, and the brand codes that admins import into a sealed
//! inventory.
//!
//! A brand accepts only the codes it issued, so a brand variant is fulfilled from codes bought
//! from the brand ([`FulfillmentSource::Inventory`]); Giftify's own stored-value cards are minted
//! at issue ([`FulfillmentSource::Generated`]). The rules of an import live here, once: the shape
//! of a row, the normal form of a number (what its keyed lookup hash is taken over), and the
//! report an import answers with. A store only says which numbers it already holds.

use crate::ids::{GiftCardId, ProductId, VariantId};
use crate::vault::{CardVault, SealedCard, is_giftify_number, normal_number};
use crate::{Error, Result};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;

/// Where the cards of a variant come from. Chosen when the variant is created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FulfillmentSource {
    /// Brand codes imported by admins; stock is the number of available codes.
    Inventory,
    /// Giftify's own stored-value cards, minted at issue and redeemable into a wallet.
    #[default]
    Generated,
}

impl FulfillmentSource {
    pub fn as_str(self) -> &'static str {
        match self {
            FulfillmentSource::Inventory => "INVENTORY",
            FulfillmentSource::Generated => "GENERATED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "INVENTORY" => Some(FulfillmentSource::Inventory),
            "GENERATED" => Some(FulfillmentSource::Generated),
            _ => None,
        }
    }
}

/// Where a code without expiry sorts in a pool: after every real date.
pub const NO_EXPIRY: NaiveDate = NaiveDate::from_ymd_opt(9999, 12, 31).expect("a valid date");

/// The most codes one import request may carry.
pub const MAX_CODES_PER_IMPORT: usize = 10_000;

/// A batch's reference, the admin's own name for a purchase from a brand (an invoice number):
/// 1 to 64 characters of letters, digits, `.`, `_` and `-`. Unique per variant; importing the
/// same reference again answers the first import.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BatchRef(String);

impl BatchRef {
    pub fn parse(raw: &str) -> Result<Self> {
        let ok = (1..=64).contains(&raw.len())
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok {
            Ok(BatchRef(raw.to_string()))
        } else {
            Err(Error::validation(
                "batchRef",
                "must be 1 to 64 letters, digits, '.', '_' or '-'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BatchRef {
    type Error = Error;
    fn try_from(raw: String) -> Result<Self> {
        BatchRef::parse(&raw)
    }
}

impl From<BatchRef> for String {
    fn from(r: BatchRef) -> String {
        r.0
    }
}

impl fmt::Display for BatchRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The refusal of an import into a variant whose source changed since the core read it.
pub fn source_changed() -> Error {
    Error::validation(
        "variantId",
        "this variant no longer takes codes (its source changed)",
    )
}

/// One row of an import as the admin sent it. Its `Debug` never shows the number or PIN.
#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CodeRow {
    pub number: String,
    #[serde(default)]
    pub pin: Option<String>,
    #[serde(default)]
    pub expiry_date: Option<String>,
}

impl fmt::Debug for CodeRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeRow { .. }")
    }
}

/// Why a row was not imported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RowProblem {
    /// Not 6 to 32 letters and digits (spaces and dashes aside).
    InvalidNumber,
    /// In Giftify's own number range (`GFY` and 16 digits).
    ReservedNumber,
    /// Not 4 to 16 letters and digits.
    InvalidPin,
    /// Not a `YYYY-MM-DD` date.
    InvalidExpiryDate,
    /// Expires on or before the day of the import.
    Expired,
    /// The number is held already: earlier in this batch, in another batch, or by an issued card.
    Duplicate,
}

impl RowProblem {
    fn is_duplicate(self) -> bool {
        self == RowProblem::Duplicate
    }
}

/// A row that was not imported: its number (1 = the first code, not counting a CSV header) and
/// why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefusedRow {
    pub row: u32,
    pub reason: RowProblem,
}

/// What a code is doing now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CodeState {
    /// In the pool, counted in the variant's stock.
    Available,
    /// Issued as a card.
    Allocated,
    /// Withdrawn with its batch (a supplier recall).
    Voided,
    /// Passed its expiry date while in the pool.
    Expired,
}

impl CodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            CodeState::Available => "AVAILABLE",
            CodeState::Allocated => "ALLOCATED",
            CodeState::Voided => "VOIDED",
            CodeState::Expired => "EXPIRED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "AVAILABLE" => Some(CodeState::Available),
            "ALLOCATED" => Some(CodeState::Allocated),
            "VOIDED" => Some(CodeState::Voided),
            "EXPIRED" => Some(CodeState::Expired),
            _ => None,
        }
    }
}

/// A brand code in the inventory, sealed. Its id becomes the id of the card it is issued as,
/// so the sealed secrets (bound to that id) move to the card unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InventoryCode {
    pub id: GiftCardId,
    pub variant_id: VariantId,
    pub product_id: ProductId,
    pub batch_ref: BatchRef,
    pub sealed: SealedCard,
    /// The brand's expiry; `None` when the brand gave none.
    pub expiry_date: Option<NaiveDate>,
    pub state: CodeState,
    pub imported_at: DateTime<Utc>,
    /// The code's row in its import (1-based), for the report.
    pub row: u32,
}

impl InventoryCode {
    /// The date that sorts a pool first-expiring first; a code without expiry sorts last, as
    /// 9999-12-31 (which also sorts last as text, the way the stores index it).
    pub fn expiry_order(&self) -> NaiveDate {
        self.expiry_date.unwrap_or(NO_EXPIRY)
    }
}

/// An import as the core decided it: the sealed codes that passed validation (distinct among
/// themselves), and the rows refused before any store was asked.
#[derive(Clone, Debug)]
pub struct CodeImport {
    pub variant_id: VariantId,
    pub product_id: ProductId,
    pub batch_ref: BatchRef,
    pub rows: u32,
    pub codes: Vec<InventoryCode>,
    pub refused: Vec<RefusedRow>,
    /// A keyed digest of the rows as sent: the same batch reference with other rows is
    /// refused ([`Error::IdempotencyKeyReused`]) rather than mixed into the batch.
    pub fingerprint: String,
    pub now: DateTime<Utc>,
}

impl CodeImport {
    /// Validates and seals the rows. Never fails on a bad row: it is refused in the report.
    /// # Errors
    /// [`Error::Validation`] when there are no rows or more than [`MAX_CODES_PER_IMPORT`].
    pub fn plan(
        vault: &CardVault,
        variant_id: VariantId,
        product_id: ProductId,
        batch_ref: BatchRef,
        rows: &[CodeRow],
        now: DateTime<Utc>,
    ) -> Result<CodeImport> {
        if rows.is_empty() || rows.len() > MAX_CODES_PER_IMPORT {
            return Err(Error::validation(
                "codes",
                format!("an import carries 1 to {MAX_CODES_PER_IMPORT} codes"),
            ));
        }
        let today = now.date_naive();
        let mut sent = Vec::new();
        for row in rows {
            for field in [
                row.number.as_str(),
                row.pin.as_deref().unwrap_or(""),
                row.expiry_date.as_deref().unwrap_or(""),
            ] {
                sent.extend_from_slice(&(field.len() as u64).to_be_bytes());
                sent.extend_from_slice(field.as_bytes());
            }
        }
        let fingerprint = vault.keyed_digest(&sent);
        let mut seen = HashSet::new();
        let mut codes = Vec::new();
        let mut refused = Vec::new();
        for (row, raw) in (1u32..).zip(rows) {
            match checked_row(raw, today) {
                Err(reason) => refused.push(RefusedRow { row, reason }),
                Ok((number, pin, expiry_date)) => {
                    let lookup = vault.lookup_key(&number);
                    if !seen.insert(lookup) {
                        refused.push(RefusedRow {
                            row,
                            reason: RowProblem::Duplicate,
                        });
                        continue;
                    }
                    let id = GiftCardId::generate();
                    codes.push(InventoryCode {
                        sealed: vault.seal(&id, &number, pin.as_deref().unwrap_or(""))?,
                        id,
                        variant_id: variant_id.clone(),
                        product_id: product_id.clone(),
                        batch_ref: batch_ref.clone(),
                        expiry_date,
                        state: CodeState::Available,
                        imported_at: now,
                        row,
                    });
                }
            }
        }
        Ok(CodeImport {
            variant_id,
            product_id,
            batch_ref,
            rows: rows.len() as u32,
            codes,
            refused,
            fingerprint,
            now,
        })
    }

    /// The report once the store has said which codes it already held (`held`: their rows).
    pub fn report(&self, held: &[u32]) -> ImportReport {
        let mut refused = self.refused.clone();
        refused.extend(held.iter().map(|&row| RefusedRow {
            row,
            reason: RowProblem::Duplicate,
        }));
        refused.sort_by_key(|r| r.row);
        let duplicates = refused.iter().filter(|r| r.reason.is_duplicate()).count() as u32;
        ImportReport {
            batch_ref: self.batch_ref.clone(),
            variant_id: self.variant_id.clone(),
            rows: self.rows,
            imported: self.codes.len() as u32 - held.len() as u32,
            duplicates,
            invalid: refused.len() as u32 - duplicates,
            refused,
            imported_at: self.now,
        }
    }
}

/// A valid row in normal form, or why it is refused.
fn checked_row(
    row: &CodeRow,
    today: NaiveDate,
) -> std::result::Result<(String, Option<String>, Option<NaiveDate>), RowProblem> {
    let number = row.number.trim();
    let normal = normal_number(number);
    if !(6..=32).contains(&normal.len()) || !normal.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(RowProblem::InvalidNumber);
    }
    if is_giftify_number(&normal) {
        return Err(RowProblem::ReservedNumber);
    }
    let pin = match row.pin.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(pin)
            if (4..=16).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            Some(pin.to_string())
        }
        Some(_) => return Err(RowProblem::InvalidPin),
    };
    let expiry = match row.expiry_date.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(date) => {
            let date = NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .map_err(|_| RowProblem::InvalidExpiryDate)?;
            if date <= today {
                return Err(RowProblem::Expired);
            }
            Some(date)
        }
    };
    Ok((normal, pin, expiry))
}

/// What an import did. Stored with its batch: the same reference sent again answers this.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    pub batch_ref: BatchRef,
    pub variant_id: VariantId,
    /// Rows received.
    pub rows: u32,
    /// Codes added to the pool (and to the variant's stock).
    pub imported: u32,
    /// Rows refused because the number is held already.
    pub duplicates: u32,
    /// Rows refused for their shape.
    pub invalid: u32,
    /// Every refused row, by row number.
    pub refused: Vec<RefusedRow>,
    pub imported_at: DateTime<Utc>,
}

/// Counts of a batch's codes by state, as the batch listing shows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchSummary {
    pub batch_ref: BatchRef,
    pub variant_id: VariantId,
    pub imported_at: DateTime<Utc>,
    pub available: u64,
    pub allocated: u64,
    /// Codes that came back from a returned card (counted in `available` again).
    pub returned: u64,
    pub voided: u64,
    pub expired: u64,
    /// The earliest expiry among the batch's available codes.
    pub earliest_expiry: Option<NaiveDate>,
    pub voided_at: Option<DateTime<Utc>>,
}

impl BatchSummary {
    /// A batch with nothing counted yet.
    pub fn new(
        batch_ref: BatchRef,
        variant_id: VariantId,
        imported_at: DateTime<Utc>,
        voided_at: Option<DateTime<Utc>>,
    ) -> Self {
        BatchSummary {
            batch_ref,
            variant_id,
            imported_at,
            available: 0,
            allocated: 0,
            returned: 0,
            voided: 0,
            expired: 0,
            earliest_expiry: None,
            voided_at,
        }
    }

    /// Counts one code of the batch; `returned` says whether it came back from a card.
    pub fn count(&mut self, state: CodeState, expiry: Option<NaiveDate>, returned: bool) {
        match state {
            CodeState::Available => {
                self.available += 1;
                if let Some(expiry) = expiry {
                    self.earliest_expiry =
                        Some(self.earliest_expiry.map_or(expiry, |e| e.min(expiry)));
                }
            }
            CodeState::Allocated => self.allocated += 1,
            CodeState::Voided => self.voided += 1,
            CodeState::Expired => self.expired += 1,
        }
        if returned {
            self.returned += 1;
        }
    }
}

/// Splits a CSV import (`number,pin,expiryDate` header, RFC 4180 quoting) into rows.
/// # Errors
/// [`Error::Validation`] when the header is not the expected one, a quote is unbalanced or a
/// line has another number of fields: the file is refused whole rather than half-read.
pub fn parse_csv(text: &str) -> Result<Vec<CodeRow>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = csv_records(text)?.into_iter();
    let header: Vec<String> = records
        .next()
        .unwrap_or_default()
        .into_iter()
        .map(|h| h.trim().to_string())
        .collect();
    if header != ["number", "pin", "expiryDate"] {
        return Err(Error::validation(
            "csv",
            "the first line must be the header `number,pin,expiryDate`",
        ));
    }
    records
        .enumerate()
        .filter(|(_, fields)| !(fields.len() == 1 && fields[0].trim().is_empty()))
        .map(|(i, mut fields)| {
            if fields.len() != 3 {
                return Err(Error::validation(
                    "csv",
                    format!("data line {} must have 3 fields", i + 1),
                ));
            }
            let expiry = fields.pop().filter(|f| !f.trim().is_empty());
            let pin = fields.pop().filter(|f| !f.trim().is_empty());
            let number = fields.pop().unwrap_or_default();
            Ok(CodeRow {
                number,
                pin,
                expiry_date: expiry,
            })
        })
        .collect()
}

/// RFC 4180 records: fields split on commas, `"…"` quoting with `""` for a quote, CRLF or LF.
fn csv_records(text: &str) -> Result<Vec<Vec<String>>> {
    let mut records = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                fields.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut fields));
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(Error::validation("csv", "a quoted field is not closed"));
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        records.push(fields);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::CardKey;

    fn row(number: &str, pin: Option<&str>, expiry: Option<&str>) -> CodeRow {
        CodeRow {
            number: number.into(),
            pin: pin.map(Into::into),
            expiry_date: expiry.map(Into::into),
        }
    }

    #[test]
    fn an_import_refuses_bad_rows_and_repeats_without_failing() {
        let vault = CardVault::new(&CardKey::generate());
        let now = "2026-12-06T10:00:00Z".parse().unwrap();
        let rows = [
            row("AMZN-1234-5678", Some("1234"), Some("2027-12-31")),
            row("amzn 1234 5678", None, None),
            row("12", None, None),
            row("GFY1234567812345678", None, None),
            row("VALID-0001", Some("12"), None),
            row("VALID-0002", None, Some("31/12/2027")),
            row("VALID-0003", None, Some("2026-12-06")),
            row("VALID-0004", None, None),
        ];
        let plan = CodeImport::plan(
            &vault,
            VariantId::generate(),
            ProductId::generate(),
            BatchRef::parse("INV-1").unwrap(),
            &rows,
            now,
        )
        .unwrap();
        assert_eq!(plan.codes.len(), 2);
        assert_eq!(
            plan.codes[0].expiry_date,
            NaiveDate::from_ymd_opt(2027, 12, 31)
        );
        let report = plan.report(&[8]);
        assert_eq!(
            (report.imported, report.duplicates, report.invalid),
            (1, 2, 5)
        );
        let reasons: Vec<_> = report.refused.iter().map(|r| (r.row, r.reason)).collect();
        assert_eq!(
            reasons,
            [
                (2, RowProblem::Duplicate),
                (3, RowProblem::InvalidNumber),
                (4, RowProblem::ReservedNumber),
                (5, RowProblem::InvalidPin),
                (6, RowProblem::InvalidExpiryDate),
                (7, RowProblem::Expired),
                (8, RowProblem::Duplicate),
            ]
        );
        let sealed = &plan.codes[0].sealed;
        assert_eq!(sealed.lookup_key, vault.lookup_key("AMZN12345678"));
        assert!(
            !format!("{plan:?}{rows:?}").contains("5678-"),
            "no secrets in Debug"
        );
    }

    #[test]
    fn csv_imports_follow_rfc_4180_and_refuse_a_wrong_header() {
        let rows = parse_csv(
            "\u{feff}number,pin,expiryDate\r\nA1B2C3D4,1234,2027-01-01\r\n\"X,\"\"Y\"\"\",,\n\nZZZZZZ,,",
        )
        .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].expiry_date.as_deref(), Some("2027-01-01"));
        assert_eq!(rows[1].number, "X,\"Y\"");
        assert_eq!(
            (rows[1].pin.as_deref(), rows[2].pin.as_deref()),
            (None, None)
        );
        assert!(parse_csv("code,pin\nA,B").is_err());
        assert!(parse_csv("number,pin,expiryDate\nA,B").is_err());
        assert!(parse_csv("number,pin,expiryDate\n\"A,,").is_err());
    }

    #[test]
    fn batch_references_are_bounded_identifiers() {
        assert!(BatchRef::parse("INV-2026.12_01").is_ok());
        assert!(BatchRef::parse("").is_err());
        assert!(BatchRef::parse("a b").is_err());
        assert!(BatchRef::parse(&"x".repeat(65)).is_err());
    }
}
