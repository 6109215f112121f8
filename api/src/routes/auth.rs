//! `/auth`: registration, login, refresh-token rotation and logout.

use crate::AppState;
use crate::auth::{
    check_password_rules, issue_refresh_token, logout_hash, new_family_id, parse_refresh_token,
};
use crate::dto::MessageData;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ClientAddress};
use crate::response::{Envelope, no_store, ok};
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use giftify_shared::Error as CoreError;
use giftify_shared::rate_limits::LimitedAction;
use giftify_shared::usecases::Registration;
use giftify_shared::user::{Email, User, parse_name, parse_phone};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The `/auth` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
        .route("/auth/logout", post(logout))
}

/// A new account. No `Debug`: it holds a password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegisterRequest {
    #[schema(example = "user@example.com")]
    pub email: String,
    /// 8 to 128 characters.
    #[schema(format = Password, min_length = 8, max_length = 128)]
    pub password: String,
    #[schema(example = "John", max_length = 100)]
    pub first_name: String,
    #[schema(example = "Doe", max_length = 100)]
    pub last_name: String,
    /// International format, e.g. `+919876543210`.
    #[schema(example = "+919876543210")]
    pub phone_number: Option<String>,
}

/// Credentials. No `Debug`: it holds a password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoginRequest {
    #[schema(example = "user@example.com")]
    pub email: String,
    #[schema(format = Password)]
    pub password: String,
}

/// A refresh token, to rotate or to revoke. No `Debug`: it is a credential.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// The account and a new session, after registration or login.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthData {
    #[schema(example = "user_01HXXXXXXXXXXXXXXXXXXXXXXX")]
    pub user_id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// JWT (HS256), valid 15 minutes; send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Opaque, valid 30 days, single use: `POST /auth/refresh` rotates it.
    pub refresh_token: String,
}

/// A rotated session.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
}

/// A started session: the access token and the refresh token to hand out.
struct Session {
    access_token: String,
    refresh_token: SecretString,
}

impl AuthData {
    fn new(user: &User, session: Session) -> Self {
        AuthData {
            user_id: user.id.to_string(),
            email: user.email.as_str().to_string(),
            first_name: user.first_name.clone(),
            last_name: user.last_name.clone(),
            access_token: session.access_token,
            refresh_token: session.refresh_token.expose_secret().to_string(),
        }
    }
}

/// Starts a new refresh-token family for `user` and issues its first pair.
async fn start_session(state: &AppState, user: &User) -> Result<Session, ApiError> {
    let giftify = state.giftify();
    let issued = issue_refresh_token(
        &user.id,
        &new_family_id(),
        user.session_epoch,
        giftify.clock.now(),
    );
    giftify.start_session(issued.record).await?;
    Ok(Session {
        access_token: state
            .tokens()
            .issue(&user.id, user.role, user.session_epoch)?,
        refresh_token: issued.token,
    })
}

/// Register a new user and start a session.
#[utoipa::path(
    post, path = "/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 200, description = "Registered; the session's tokens", body = Envelope<AuthData>),
        (status = 400, description = "VALIDATION_ERROR: bad email, password rules (8–128 characters), names, phone, or unknown fields", body = ErrorEnvelope),
        (status = 409, description = "EMAIL_ALREADY_EXISTS", body = ErrorEnvelope),
        (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorEnvelope),
        (status = 429, description = "RATE_LIMITED: too many registrations from this address (GIFTIFY_USER_RATE_LIMITS); see Retry-After", body = ErrorEnvelope,
            headers(("Retry-After" = i64, description = "Seconds until the budget's window ends"))),
    )
)]
pub async fn register(
    State(state): State<AppState>,
    client: ClientAddress,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<Response, ApiError> {
    state
        .giftify()
        .spend_budget(LimitedAction::Register, &client.0)
        .await?;
    let email = Email::parse(&body.email)?;
    check_password_rules(&body.password)?;
    let first_name = parse_name("firstName", &body.first_name)?;
    let last_name = parse_name("lastName", &body.last_name)?;
    let phone_number = body.phone_number.as_deref().map(parse_phone).transpose()?;
    let password_hash = state
        .passwords()
        .hash(SecretString::from(body.password))
        .await?;
    let user = state
        .giftify()
        .register(Registration {
            email,
            typed_email: body.email,
            password_hash,
            first_name,
            last_name,
            phone_number,
        })
        .await?;
    let session = start_session(&state, &user).await?;
    Ok(no_store(ok(AuthData::new(&user, session))))
}

/// Log in with email and password and start a session.
///
/// Five attempts within 15 minutes without a success lock the account for 15 minutes: the
/// fifth and every attempt while locked answer 429 with `Retry-After`, without the password
/// being checked. Attempts are counted before the password is checked, so parallel guesses
/// get no more checks than sequential ones. Unknown emails take as long to reject as wrong
/// passwords, and lock the same way.
#[utoipa::path(
    post, path = "/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in; the session's tokens", body = Envelope<AuthData>),
        (status = 400, description = "VALIDATION_ERROR", body = ErrorEnvelope),
        (status = 401, description = "INVALID_CREDENTIALS", body = ErrorEnvelope),
        (status = 403, description = "ACCOUNT_SUSPENDED: the right password for a suspended account", body = ErrorEnvelope),
        (status = 429, description = "RATE_LIMITED, with `Retry-After`", body = ErrorEnvelope),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let email = Email::parse(&body.email)?;
    let giftify = state.giftify();
    // Counted before the password is checked (and refused once the account is locked), so a
    // burst of parallel guesses gets no more checks than sequential ones.
    giftify.begin_login_attempt(&email).await?;
    let credentials = giftify.credentials_for_address(&email, &body.email).await?;
    let (hash, user) = match credentials {
        Some(credentials) => (Some(credentials.password_hash), Some(credentials.user)),
        None => (None, None),
    };
    let matches = state
        .passwords()
        .verify(SecretString::from(body.password), hash)
        .await?;
    let user = match user {
        Some(user) if matches => user,
        _ => return Err(CoreError::InvalidCredentials.into()),
    };
    giftify.login_succeeded(&user).await?;
    let session = start_session(&state, &user).await?;
    Ok(no_store(ok(AuthData::new(&user, session))))
}

/// Exchange a refresh token for a new pair.
///
/// Each refresh token works once. Presenting a spent one again is treated as theft: the whole
/// session family is revoked, including the token that replaced it.
#[utoipa::path(
    post, path = "/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "The new pair; the presented token is spent", body = Envelope<TokenPair>),
        (status = 400, description = "VALIDATION_ERROR", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED: unknown, expired, revoked or reused token", body = ErrorEnvelope),
        (status = 403, description = "ACCOUNT_SUSPENDED: the account was suspended; its sessions are ended", body = ErrorEnvelope),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Response, ApiError> {
    let presented = parse_refresh_token(&body.refresh_token).ok_or(CoreError::InvalidToken)?;
    let giftify = state.giftify();
    let replacement = issue_refresh_token(
        &presented.user_id,
        &presented.family_id,
        0,
        giftify.clock.now(),
    );
    let user = giftify
        .rotate_session(&presented.hash, replacement.record)
        .await?;
    Ok(no_store(ok(TokenPair {
        access_token: state
            .tokens()
            .issue(&user.id, user.role, user.session_epoch)?,
        refresh_token: replacement.token.expose_secret().to_string(),
    })))
}

/// Log out: revoke the session family of a refresh token.
///
/// Always succeeds, whether or not the token was known, so it reveals nothing. Access tokens
/// already issued stay valid until they expire (at most 15 minutes).
#[utoipa::path(
    post, path = "/auth/logout", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "The session family is revoked", body = Envelope<MessageData>),
        (status = 400, description = "VALIDATION_ERROR", body = ErrorEnvelope),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Envelope<MessageData>, ApiError> {
    if let Some(hash) = logout_hash(&body.refresh_token) {
        state.giftify().end_session(&hash).await?;
    }
    Ok(ok(MessageData::new("Logged out")))
}
