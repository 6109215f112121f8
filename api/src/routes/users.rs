//! `/users/profile`: the caller's own profile.

use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, AuthUser};
use crate::response::{Envelope, ok};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use giftify_shared::user::{ProfileUpdate, User, parse_name, parse_phone};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The `/users` routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/users/profile", get(profile).put(update_profile))
}

/// The seed's profile shape.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileData {
    #[schema(example = "user_01HXXXXXXXXXXXXXXXXXXXXXXX")]
    pub user_id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub phone_number: Option<String>,
    /// In paise.
    #[schema(example = 150000)]
    pub wallet_balance: i64,
    pub is_email_verified: bool,
    pub is_phone_verified: bool,
}

impl From<&User> for ProfileData {
    fn from(user: &User) -> Self {
        ProfileData {
            user_id: user.id.to_string(),
            email: user.email.as_str().to_string(),
            first_name: user.first_name.clone(),
            last_name: user.last_name.clone(),
            phone_number: user.phone_number.clone(),
            wallet_balance: user.wallet_balance.get(),
            is_email_verified: user.is_email_verified,
            is_phone_verified: user.is_phone_verified,
        }
    }
}

/// Fields a user may change; absent fields stay as they are. Email, role, status and balance
/// are not accepted here.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateProfileRequest {
    #[schema(example = "John")]
    pub first_name: Option<String>,
    #[schema(example = "Smith")]
    pub last_name: Option<String>,
    #[schema(example = "+919876543210")]
    pub phone_number: Option<String>,
}

/// The caller's profile.
#[utoipa::path(
    get, path = "/users/profile", tag = "users",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The profile", body = Envelope<ProfileData>),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
    )
)]
pub async fn profile(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Envelope<ProfileData>, ApiError> {
    let profile = state.giftify().profile(&user.id).await?;
    Ok(ok(ProfileData::from(&profile)))
}

/// Update the caller's names and phone number.
#[utoipa::path(
    put, path = "/users/profile", tag = "users",
    security(("bearerAuth" = [])),
    request_body = UpdateProfileRequest,
    responses(
        (status = 200, description = "The updated profile", body = Envelope<ProfileData>),
        (status = 400, description = "VALIDATION_ERROR, including fields that may not be changed here", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
    )
)]
pub async fn update_profile(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<UpdateProfileRequest>,
) -> Result<Envelope<ProfileData>, ApiError> {
    let update = ProfileUpdate {
        first_name: body
            .first_name
            .as_deref()
            .map(|name| parse_name("firstName", name))
            .transpose()?,
        last_name: body
            .last_name
            .as_deref()
            .map(|name| parse_name("lastName", name))
            .transpose()?,
        phone_number: body.phone_number.as_deref().map(parse_phone).transpose()?,
    };
    let profile = state.giftify().update_profile(&user.id, update).await?;
    Ok(ok(ProfileData::from(&profile)).with_message("Profile updated"))
}
