//! Response and query types shared by several resources: pagination, the status and type
//! enums as the API documents them, and the plain `{message}` payload.
//!
//! The enums mirror the core's with exhaustive `From` impls, so a new core variant fails to
//! compile here until the API decides how to show it.

use crate::error::ApiError;
use crate::extract::parse_int;
use giftify_shared::labels::ClientReference;
use giftify_shared::order::OrderStatus;
use giftify_shared::wallet::{Page, PageRequest, TransactionType};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The seed's `pagination` block.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    pub page: u32,
    pub limit: u32,
    pub total: u64,
    pub has_next: bool,
}

impl<T> From<&Page<T>> for Pagination {
    fn from(page: &Page<T>) -> Self {
        Pagination {
            page: page.page,
            limit: page.limit,
            total: page.total,
            has_next: page.has_next(),
        }
    }
}

/// `{"message": …}`, for actions with nothing else to return.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MessageData {
    pub message: String,
}

impl MessageData {
    /// A message payload.
    pub fn new(message: impl Into<String>) -> Self {
        MessageData {
            message: message.into(),
        }
    }
}

/// Where a variant's cards come from: `INVENTORY` — brand codes imported in batches (stock is
/// the number of available codes); `GENERATED` — Giftify's own stored-value cards, minted at
/// issue and redeemable into a wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = FulfillmentSource)]
pub enum FulfillmentSourceDto {
    Inventory,
    Generated,
}

impl From<giftify_shared::codes::FulfillmentSource> for FulfillmentSourceDto {
    fn from(source: giftify_shared::codes::FulfillmentSource) -> Self {
        match source {
            giftify_shared::codes::FulfillmentSource::Inventory => FulfillmentSourceDto::Inventory,
            giftify_shared::codes::FulfillmentSource::Generated => FulfillmentSourceDto::Generated,
        }
    }
}

impl From<FulfillmentSourceDto> for giftify_shared::codes::FulfillmentSource {
    fn from(source: FulfillmentSourceDto) -> Self {
        match source {
            FulfillmentSourceDto::Inventory => giftify_shared::codes::FulfillmentSource::Inventory,
            FulfillmentSourceDto::Generated => giftify_shared::codes::FulfillmentSource::Generated,
        }
    }
}

/// An order's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = OrderStatus)]
pub enum OrderStatusDto {
    Pending,
    Processing,
    Fulfilled,
    PartiallyFulfilled,
    Refunded,
    Cancelled,
}

impl From<OrderStatus> for OrderStatusDto {
    fn from(status: OrderStatus) -> Self {
        match status {
            OrderStatus::Pending => OrderStatusDto::Pending,
            OrderStatus::Processing => OrderStatusDto::Processing,
            OrderStatus::Fulfilled => OrderStatusDto::Fulfilled,
            OrderStatus::PartiallyFulfilled => OrderStatusDto::PartiallyFulfilled,
            OrderStatus::Refunded => OrderStatusDto::Refunded,
            OrderStatus::Cancelled => OrderStatusDto::Cancelled,
        }
    }
}

/// The direction of a wallet transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = TransactionType)]
pub enum TransactionTypeDto {
    Credit,
    Debit,
    Refund,
    /// A Giftify card's face value, redeemed into the wallet.
    Redeem,
    /// An admin's balance correction: the one type whose `amount` is signed (negative takes
    /// from the balance); its description is the admin's reason.
    Adjustment,
}

impl From<TransactionType> for TransactionTypeDto {
    fn from(kind: TransactionType) -> Self {
        match kind {
            TransactionType::Credit => TransactionTypeDto::Credit,
            TransactionType::Debit => TransactionTypeDto::Debit,
            TransactionType::Refund => TransactionTypeDto::Refund,
            TransactionType::Redeem => TransactionTypeDto::Redeem,
            TransactionType::Adjustment => TransactionTypeDto::Adjustment,
        }
    }
}

/// `?page&limit&status` of the order lists. Fields are read as text and parsed here, so each
/// bad value is a 400 that names its parameter.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderListQuery {
    /// 1-based page number (default 1).
    #[param(value_type = Option<i64>, minimum = 1, example = 1)]
    pub page: Option<String>,
    /// Page size, 1–100 (default 10).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100, example = 10)]
    pub limit: Option<String>,
    /// Only orders in this status.
    #[param(value_type = Option<OrderStatusDto>)]
    pub status: Option<String>,
}

impl OrderListQuery {
    /// The page request and status filter; 400 on any bad value.
    pub fn parse(&self) -> Result<(PageRequest, Option<OrderStatus>), ApiError> {
        let page = page_request(self.page.as_deref(), self.limit.as_deref(), 10)?;
        let status = self
            .status
            .as_deref()
            .map(|raw| {
                OrderStatus::parse(raw).ok_or_else(|| {
                    ApiError::validation(
                        "status",
                        "must be one of PENDING, PROCESSING, FULFILLED, PARTIALLY_FULFILLED, REFUNDED, CANCELLED",
                    )
                })
            })
            .transpose()?;
        Ok((page, status))
    }
}

/// `?page&limit&status&clientReference` of the caller's own orders.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct UserOrderListQuery {
    /// 1-based page number (default 1).
    #[param(value_type = Option<i64>, minimum = 1, example = 1)]
    pub page: Option<String>,
    /// Page size, 1–100 (default 10).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100, example = 10)]
    pub limit: Option<String>,
    /// Only orders in this status.
    #[param(value_type = Option<OrderStatusDto>)]
    pub status: Option<String>,
    /// Only the order with this client reference.
    #[param(value_type = Option<String>, example = "po-2026-0042")]
    pub client_reference: Option<String>,
}

impl UserOrderListQuery {
    /// The page request, status filter and reference; 400 on any bad value.
    pub fn parse(
        &self,
    ) -> Result<(PageRequest, Option<OrderStatus>, Option<ClientReference>), ApiError> {
        let (page, status) = OrderListQuery {
            page: self.page.clone(),
            limit: self.limit.clone(),
            status: self.status.clone(),
        }
        .parse()?;
        let reference = self
            .client_reference
            .as_deref()
            .map(ClientReference::parse)
            .transpose()?;
        Ok((page, status, reference))
    }
}

/// A page request from raw `page` and `limit` parameters.
pub fn page_request(
    page: Option<&str>,
    limit: Option<&str>,
    default_limit: u32,
) -> Result<PageRequest, ApiError> {
    Ok(PageRequest::new(
        parse_int("page", page)?,
        parse_int("limit", limit)?,
        default_limit,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_queries_parse_and_name_bad_parameters() {
        let query = OrderListQuery {
            page: Some("2".into()),
            limit: Some("5".into()),
            status: Some("FULFILLED".into()),
        };
        let (page, status) = query.parse().expect("valid");
        assert_eq!((page.page, page.limit), (2, 5));
        assert_eq!(status, Some(OrderStatus::Fulfilled));
        let (page, status) = OrderListQuery::default().parse().expect("defaults");
        assert_eq!((page.page, page.limit, status), (1, 10, None));

        for (query, field) in [
            (
                OrderListQuery {
                    page: Some("abc".into()),
                    ..Default::default()
                },
                "page",
            ),
            (
                OrderListQuery {
                    page: Some("0".into()),
                    ..Default::default()
                },
                "page",
            ),
            (
                OrderListQuery {
                    limit: Some("1000".into()),
                    ..Default::default()
                },
                "limit",
            ),
            (
                OrderListQuery {
                    status: Some("SHIPPED".into()),
                    ..Default::default()
                },
                "status",
            ),
        ] {
            let error = query.parse().expect_err("invalid");
            let body: serde_json::Value = serde_json::from_str(&error.render().body).expect("json");
            assert_eq!(body["error"]["details"]["field"], field);
        }
    }
}
