//! Users, their profile and role.

use crate::ids::UserId;
use crate::{Error, Paise, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "USER",
            Role::Admin => "ADMIN",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "USER" => Some(Role::User),
            "ADMIN" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserStatus {
    Active,
    Suspended,
    Deleted,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "ACTIVE",
            UserStatus::Suspended => "SUSPENDED",
            UserStatus::Deleted => "DELETED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ACTIVE" => Some(UserStatus::Active),
            "SUSPENDED" => Some(UserStatus::Suspended),
            "DELETED" => Some(UserStatus::Deleted),
            _ => None,
        }
    }
}

/// A normalised (trimmed, lower-case) email address with a plausible shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self> {
        let email = raw.trim().to_lowercase();
        let valid = email.len() <= 254
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && local.len() <= 64
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
            })
            && !email
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == ',')
            && email.matches('@').count() == 1;
        if valid {
            Ok(Email(email))
        } else {
            Err(Error::validation("email", "must be a valid email address"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A person's name part: 1–100 characters, no control characters.
pub fn parse_name(field: &str, raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Error::validation(
            field,
            "must be 1 to 100 characters without control characters",
        ));
    }
    Ok(name.to_string())
}

/// An E.164-like phone number: `+` and 8–15 digits.
pub fn parse_phone(raw: &str) -> Result<String> {
    let phone = raw.trim();
    let digits = phone.strip_prefix('+').unwrap_or("");
    if (8..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) {
        Ok(phone.to_string())
    } else {
        Err(Error::validation(
            "phoneNumber",
            "must be in international format, e.g. +919876543210",
        ))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub first_name: String,
    pub last_name: String,
    pub phone_number: Option<String>,
    pub role: Role,
    pub status: UserStatus,
    pub wallet_balance: Paise,
    pub is_email_verified: bool,
    pub is_phone_verified: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

/// A user together with their password hash, for login only.
#[derive(Clone, Debug)]
pub struct UserCredentials {
    pub user: User,
    pub password_hash: String,
}

#[derive(Clone, Debug)]
pub struct NewUser {
    pub id: UserId,
    pub email: Email,
    pub password_hash: String,
    pub first_name: String,
    pub last_name: String,
    pub phone_number: Option<String>,
    pub role: Role,
    pub now: DateTime<Utc>,
}

/// Fields a user may change on their own profile; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ProfileUpdate {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone_number: Option<String>,
}

/// A refresh token as stored: only its SHA-256 hash, never the token itself.
#[derive(Clone, Debug)]
pub struct NewRefreshToken {
    pub token_hash: String,
    pub family_id: String,
    pub user_id: UserId,
    pub expires_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// What presenting a refresh token led to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The token was valid; it is now spent and its replacement is live.
    Rotated { user_id: UserId },
    /// The token had already been spent: someone replayed it, so its whole family is revoked.
    ReuseDetected,
    /// Unknown, expired or revoked.
    Invalid,
}

/// Login throttling: after `max_failures` failed logins within `window`, the account is locked
/// for `lockout`.
#[derive(Clone, Copy, Debug)]
pub struct ThrottlePolicy {
    pub max_failures: u32,
    pub window: chrono::Duration,
    pub lockout: chrono::Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            max_failures: 5,
            window: chrono::Duration::minutes(15),
            lockout: chrono::Duration::minutes(15),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Alice@Example.COM ").unwrap().as_str(),
            "alice@example.com"
        );
        for bad in [
            "",
            "a",
            "a@b",
            "@b.com",
            "a@.com",
            "a@b.com.",
            "a b@c.com",
            "a@b@c.com",
            "a@b..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn names_and_phones_are_checked() {
        assert_eq!(parse_name("firstName", " Asha ").unwrap(), "Asha");
        assert!(parse_name("firstName", "").is_err());
        assert!(parse_name("firstName", "a\u{0}b").is_err());
        assert!(parse_name("firstName", &"x".repeat(101)).is_err());
        assert_eq!(parse_phone("+919876543210").unwrap(), "+919876543210");
        assert!(parse_phone("9876543210").is_err());
        assert!(parse_phone("+91abc").is_err());
    }
}
