//! `/admin/variants/{variantId}/code-batches`: brand codes imported into an INVENTORY
//! variant's sealed pool, the batch listing, and the void of a batch (a supplier recall).
//! No answer here ever carries a code: only counts, row numbers and reasons.

use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{AdminUser, ApiPath, ApiQuery, parse_id};
use crate::response::{Envelope, ok};
use crate::wire_time::timestamp;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, header};
use axum::routing::{get, post};
use giftify_shared::codes::{
    BatchRef, BatchSummary, CodeRow, ImportReport, MAX_CODES_PER_IMPORT, RowProblem, parse_csv,
};
use giftify_shared::ids::VariantId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Largest import body, in bytes: 10,000 rows of the longest number (32), PIN (16) and a date
/// take about 1 MB as JSON; twice that leaves room for whitespace and quoting. Every other
/// route keeps [`crate::extract::BODY_LIMIT`].
pub const IMPORT_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// The code batch routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/admin/variants/{variantId}/code-batches",
            get(batches)
                .post(import)
                .layer(DefaultBodyLimit::max(IMPORT_BODY_LIMIT)),
        )
        .route(
            "/admin/variants/{variantId}/code-batches/{batchRef}/void",
            post(void),
        )
}

/// Whether a request may carry an import-sized body (see [`IMPORT_BODY_LIMIT`]).
pub fn takes_import_body(method: &axum::http::Method, path: &str) -> bool {
    method == axum::http::Method::POST
        && path.starts_with("/admin/variants/")
        && path.ends_with("/code-batches")
}

/// One brand code. The number is 6–32 letters and digits (spaces and dashes are ignored);
/// the PIN 4–16 letters and digits; the expiry a future `YYYY-MM-DD`. No `Debug`: it holds
/// a code's secrets.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CodeRowDto {
    #[schema(example = "AQ4X9QZ5FD8VZ9")]
    pub number: String,
    #[schema(example = "482913")]
    pub pin: Option<String>,
    #[schema(example = "2027-12-31", format = Date)]
    pub expiry_date: Option<String>,
}

/// A batch of codes as JSON. The same codes may be sent as `text/csv` (header
/// `number,pin,expiryDate`) with `?batchRef=` in the query. No `Debug`: it holds codes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImportCodesRequest {
    /// Your reference for the purchase (1–64 letters, digits, `.`, `_`, `-`); sending the same
    /// reference again answers the first import.
    #[schema(example = "AMZ-INV-2026-1204")]
    pub batch_ref: String,
    /// 1 to 10,000 codes.
    pub codes: Vec<CodeRowDto>,
}

/// `?batchRef=` of a CSV import.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// The batch reference of a `text/csv` import.
    pub batch_ref: Option<String>,
}

/// A row that was not imported.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefusedRowView {
    /// 1 = the first code (a CSV header is not counted).
    pub row: u32,
    /// INVALID_NUMBER, RESERVED_NUMBER (Giftify's own `GFY` range), INVALID_PIN,
    /// INVALID_EXPIRY_DATE, EXPIRED, or DUPLICATE (held by this batch, another batch, or an
    /// issued card).
    #[schema(example = "DUPLICATE")]
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportReportView {
    pub batch_ref: String,
    pub variant_id: String,
    pub rows: u32,
    /// Codes added to the pool and to the variant's stock.
    pub imported: u32,
    pub duplicates: u32,
    pub invalid: u32,
    pub refused: Vec<RefusedRowView>,
    #[schema(format = DateTime)]
    pub imported_at: String,
}

fn reason(problem: RowProblem) -> String {
    serde_json::to_value(problem)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl From<ImportReport> for ImportReportView {
    fn from(r: ImportReport) -> Self {
        ImportReportView {
            batch_ref: r.batch_ref.to_string(),
            variant_id: r.variant_id.to_string(),
            rows: r.rows,
            imported: r.imported,
            duplicates: r.duplicates,
            invalid: r.invalid,
            refused: r
                .refused
                .into_iter()
                .map(|row| RefusedRowView {
                    row: row.row,
                    reason: reason(row.reason),
                })
                .collect(),
            imported_at: timestamp(r.imported_at),
        }
    }
}

/// A batch and its codes counted by state.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchView {
    pub batch_ref: String,
    pub variant_id: String,
    #[schema(format = DateTime)]
    pub imported_at: String,
    pub available: u64,
    pub allocated: u64,
    /// Codes that came back from a returned card (also counted as available).
    pub returned: u64,
    pub voided: u64,
    pub expired: u64,
    /// The earliest expiry among the available codes.
    #[schema(format = Date)]
    pub earliest_expiry: Option<String>,
    #[schema(format = DateTime)]
    pub voided_at: Option<String>,
}

impl From<&BatchSummary> for BatchView {
    fn from(b: &BatchSummary) -> Self {
        BatchView {
            batch_ref: b.batch_ref.to_string(),
            variant_id: b.variant_id.to_string(),
            imported_at: timestamp(b.imported_at),
            available: b.available,
            allocated: b.allocated,
            returned: b.returned,
            voided: b.voided,
            expired: b.expired,
            earliest_expiry: b.earliest_expiry.map(|d| d.to_string()),
            voided_at: b.voided_at.map(timestamp),
        }
    }
}

/// The batches of a variant.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchesData {
    pub batches: Vec<BatchView>,
}

/// The media type of a request, lower case, without parameters.
fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The batch reference and rows of a JSON or CSV import.
fn import_request(
    headers: &HeaderMap,
    query: ImportQuery,
    body: &[u8],
) -> Result<(BatchRef, Vec<CodeRow>), ApiError> {
    match media_type(headers).as_str() {
        "text/csv" => {
            let batch_ref = query.batch_ref.ok_or_else(|| {
                ApiError::validation("batchRef", "a CSV import names its batch in ?batchRef=")
            })?;
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::validation("body", "the CSV file must be UTF-8"))?;
            Ok((BatchRef::parse(&batch_ref)?, parse_csv(text)?))
        }
        "application/json" => {
            let mut deserializer = serde_json::Deserializer::from_slice(body);
            let request: ImportCodesRequest = serde_path_to_error::deserialize(&mut deserializer)
                .map_err(|e| {
                ApiError::validation(
                    e.path().to_string().trim_start_matches('.'),
                    "does not match the import request's shape",
                )
            })?;
            if query.batch_ref.is_some() {
                return Err(ApiError::validation(
                    "batchRef",
                    "a JSON import names its batch in the body",
                ));
            }
            let rows = request
                .codes
                .into_iter()
                .map(|row| CodeRow {
                    number: row.number,
                    pin: row.pin,
                    expiry_date: row.expiry_date,
                })
                .collect();
            Ok((BatchRef::parse(&request.batch_ref)?, rows))
        }
        _ => Err(ApiError::validation(
            "Content-Type",
            "must be application/json or text/csv",
        )),
    }
}

/// Import brand codes into an INVENTORY variant (JSON, or CSV with `?batchRef=`), up to
/// 10,000 per request and 2 MiB of body. Each row is validated and sealed; bad rows and numbers
/// held already are refused by row number, the rest join the pool and the variant's stock in
/// the same step. The same batch reference sent again answers the first import.
#[utoipa::path(
    post, path = "/admin/variants/{variantId}/code-batches", tag = "admin",
    security(("bearerAuth" = [])),
    params(("variantId" = String, Path, description = "var_…"), ImportQuery),
    request_body(content(
        (ImportCodesRequest = "application/json"),
        (String = "text/csv", example = "number,pin,expiryDate\nAQ4X9QZ5FD8VZ9,482913,2027-12-31\n"),
    )),
    responses(
        (status = 200, description = "The import's report", body = Envelope<ImportReportView>),
        (status = 400, description = "VALIDATION_ERROR: a GENERATED variant, no rows or more than 10,000, a bad batch reference, CSV header or media type", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: not an admin", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND: no such variant", body = ErrorEnvelope),
        (status = 413, description = "PAYLOAD_TOO_LARGE: over 2 MiB", body = ErrorEnvelope),
        (status = 422, description = "IDEMPOTENCY_KEY_REUSED: this batch reference was imported before with other rows", body = ErrorEnvelope),
    )
)]
pub async fn import(
    State(state): State<AppState>,
    admin: AdminUser,
    ApiPath(variant_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ImportQuery>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Envelope<ImportReportView>, ApiError> {
    let variant_id: VariantId = parse_id("variantId", &variant_id)?;
    let body = body.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge {
                limit_bytes: IMPORT_BODY_LIMIT,
            }
        } else {
            ApiError::validation("body", "The request body could not be read")
        }
    })?;
    let (batch_ref, rows) = import_request(&headers, query, &body)?;
    if rows.len() > MAX_CODES_PER_IMPORT {
        return Err(ApiError::validation(
            "codes",
            format!("an import carries 1 to {MAX_CODES_PER_IMPORT} codes"),
        ));
    }
    let report = state
        .giftify()
        .import_codes(&admin.actor(), &variant_id, batch_ref, &rows)
        .await?;
    tracing::info!(
        variant_id = %report.variant_id,
        batch_ref = %report.batch_ref,
        imported = report.imported,
        duplicates = report.duplicates,
        invalid = report.invalid,
        "code batch imported"
    );
    Ok(ok(ImportReportView::from(report)).with_message("Codes imported"))
}

/// A variant's code batches, oldest first, with their codes counted by state.
#[utoipa::path(
    get, path = "/admin/variants/{variantId}/code-batches", tag = "admin",
    security(("bearerAuth" = [])),
    params(("variantId" = String, Path, description = "var_…")),
    responses(
        (status = 200, description = "The batches", body = Envelope<BatchesData>),
        (status = 400, description = "VALIDATION_ERROR: a malformed variant id", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: not an admin", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND: no such variant", body = ErrorEnvelope),
    )
)]
pub async fn batches(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiPath(variant_id): ApiPath<String>,
) -> Result<Envelope<BatchesData>, ApiError> {
    let variant_id: VariantId = parse_id("variantId", &variant_id)?;
    let batches = state.giftify().code_batches(&variant_id).await?;
    Ok(ok(BatchesData {
        batches: batches.iter().map(BatchView::from).collect(),
    }))
}

/// Withdraw a batch's codes that are not yet issued (a supplier recall): they leave the pool
/// and the stock; issued cards are not touched. Voiding again changes nothing.
#[utoipa::path(
    post, path = "/admin/variants/{variantId}/code-batches/{batchRef}/void", tag = "admin",
    security(("bearerAuth" = [])),
    params(
        ("variantId" = String, Path, description = "var_…"),
        ("batchRef" = String, Path, description = "The batch reference"),
    ),
    responses(
        (status = 200, description = "The batch after the void", body = Envelope<BatchView>),
        (status = 400, description = "VALIDATION_ERROR: a malformed id or reference", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: not an admin", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND: no such batch", body = ErrorEnvelope),
    )
)]
pub async fn void(
    State(state): State<AppState>,
    admin: AdminUser,
    ApiPath((variant_id, batch_ref)): ApiPath<(String, String)>,
) -> Result<Envelope<BatchView>, ApiError> {
    let variant_id: VariantId = parse_id("variantId", &variant_id)?;
    let batch_ref = BatchRef::parse(&batch_ref)?;
    let batch = state
        .giftify()
        .void_code_batch(&admin.actor(), &variant_id, &batch_ref)
        .await?;
    tracing::info!(variant_id = %variant_id, batch_ref = %batch_ref, voided = batch.voided, "code batch voided");
    Ok(ok(BatchView::from(&batch)).with_message("Batch voided"))
}
