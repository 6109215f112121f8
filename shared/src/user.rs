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

/// A normalised email address with a plausible shape: trimmed, in Unicode NFC, lower-case, and
/// free of control and format characters (zero-width spaces, bidi overrides, …), so two
/// addresses that look alike to a person are one account, not two.
///
/// Accounts registered before the NFC and format-character rules keep their stored address;
/// [`Email::legacy`] finds one whose address was stored in another normalisation form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

/// True for characters that change how text looks or reads without being seen: Unicode
/// control (`Cc`) and format (`Cf`, which holds the zero-width and bidi control characters).
fn is_invisible_control(c: char) -> bool {
    use icu_properties::CodePointMapData;
    use icu_properties::props::{GeneralCategory, GeneralCategoryGroup};
    let category = CodePointMapData::<GeneralCategory>::new().get(c);
    GeneralCategoryGroup::Control.contains(category)
        || GeneralCategoryGroup::Format.contains(category)
}

/// True for a character a reader sees: a letter, digit, punctuation mark or symbol.
fn is_visible(c: char) -> bool {
    use icu_properties::CodePointMapData;
    use icu_properties::props::{GeneralCategory, GeneralCategoryGroup};
    let category = CodePointMapData::<GeneralCategory>::new().get(c);
    [
        GeneralCategoryGroup::Letter,
        GeneralCategoryGroup::Number,
        GeneralCategoryGroup::Punctuation,
        GeneralCategoryGroup::Symbol,
    ]
    .iter()
    .any(|group| group.contains(category))
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self> {
        let raw = raw.trim();
        if raw.chars().any(is_invisible_control) {
            return Err(Error::validation(
                "email",
                "must not contain control or invisible formatting characters",
            ));
        }
        let nfc = icu_normalizer::ComposingNormalizerBorrowed::new_nfc().normalize(raw);
        Self::checked(nfc.to_lowercase())
    }

    /// The address as accounts registered before the NFC rule stored it (trimmed and
    /// lower-cased only), when that differs from [`Email::parse`]'s form.
    pub fn legacy(raw: &str) -> Option<Self> {
        let legacy = Self::checked(raw.trim().to_lowercase()).ok()?;
        (Self::parse(raw).ok()? != legacy).then_some(legacy)
    }

    /// An address read back from storage: it passed the rules of its day, which may be
    /// older than today's.
    pub fn stored(raw: &str) -> Result<Self> {
        Self::checked(raw.to_string())
    }

    fn checked(email: String) -> Result<Self> {
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

/// A person's name part: 1–100 characters with at least one visible character, and no control
/// or invisible formatting characters (zero-width spaces, bidi overrides), except a zero-width
/// joiner or non-joiner between two visible characters, which Indic scripts and emoji need.
/// Names already stored are not re-checked.
pub fn parse_name(field: &str, raw: &str) -> Result<String> {
    let name = raw.trim();
    let chars: Vec<char> = name.chars().collect();
    let invisible_at = |i: usize| {
        let c = chars[i];
        // Zero-width (non-)joiners shape Devanagari conjuncts and emoji sequences: allowed
        // between two visible characters, like every script needs them; anywhere else they
        // only hide.
        let joiner_in_place = matches!(c, '\u{200C}' | '\u{200D}')
            && i > 0
            && i + 1 < chars.len()
            && !is_invisible_control(chars[i - 1])
            && !is_invisible_control(chars[i + 1]);
        is_invisible_control(c) && !joiner_in_place
    };
    if chars.len() > 100
        || (0..chars.len()).any(invisible_at)
        || !chars.iter().any(|&c| is_visible(c))
    {
        return Err(Error::validation(
            field,
            "must be 1 to 100 characters with a visible one, and without control or invisible \
             formatting characters",
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
    /// Raised whenever the account's credentials or role are changed by an operator: a refresh
    /// token started under an earlier epoch is void (see [`Rotation::Rotated`]).
    pub session_epoch: u32,
    /// The last day the account made an authenticated request (UTC), for the daily and
    /// monthly active figures.
    pub active_on: Option<chrono::NaiveDate>,
}

impl User {
    /// What moving this account to `to` (suspending or reactivating it) changes, for the store
    /// to commit on the condition that the account is still as read; `None` when it is `to`
    /// already. A suspension ends every session the account has, so no refresh token outlives
    /// it, and a later reactivation does not bring them back.
    /// # Errors
    /// [`Error::NotFound`] for a deleted account: it has no standing to change.
    pub fn standing_change(&self, to: UserStatus) -> Result<Option<StatusChange>> {
        match (self.status, to) {
            (from, to) if from == to => Ok(None),
            (UserStatus::Deleted, _) | (_, UserStatus::Deleted) => {
                Err(Error::NotFound(crate::Missing::User))
            }
            (from, to) => Ok(Some(StatusChange {
                from,
                to,
                end_sessions: to == UserStatus::Suspended,
                while_admin: None,
            })),
        }
    }
}

/// A change of an account's standing, decided by [`User::standing_change`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusChange {
    pub from: UserStatus,
    pub to: UserStatus,
    /// Raise the account's [`User::session_epoch`], voiding every refresh token it has.
    pub end_sessions: bool,
    /// Commit only while this account is an ACTIVE admin: an admin suspending another admin.
    /// Two admins suspending each other at once then leave one of them active (the second
    /// change finds its admin suspended), never none.
    pub while_admin: Option<UserId>,
}

/// Support's search for accounts: the one with this email, or all of them a page at a time.
#[derive(Clone, Debug)]
pub struct UserSearch {
    pub email: Option<Email>,
    /// Resume after this account (the last one of the previous page).
    pub after: Option<UserId>,
    pub limit: u32,
}

/// A page of accounts; `next` resumes after it, absent on the last page.
#[derive(Clone, Debug)]
pub struct UserPage {
    pub users: Vec<User>,
    pub next: Option<UserId>,
}

impl UserPage {
    /// The page of `found`, which a store read with one more row than `limit` to learn whether
    /// another page follows.
    pub fn of(mut found: Vec<User>, limit: u32) -> Self {
        let limit = limit as usize;
        let more = found.len() > limit;
        found.truncate(limit);
        UserPage {
            next: more
                .then(|| found.last().map(|user| user.id.clone()))
                .flatten(),
            users: found,
        }
    }
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
    /// The account's [`User::session_epoch`] when the family started. A rotation keeps the
    /// stored token's epoch, whatever the replacement says.
    pub session_epoch: u32,
    pub expires_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// What presenting a refresh token led to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The token was valid; it is now spent and its replacement is live. The family's
    /// `session_epoch` is for the core to compare with the account's.
    Rotated { user_id: UserId, session_epoch: u32 },
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
    fn lookalike_emails_are_one_address_or_refused() {
        let plain = Email::parse("asha@x.com").unwrap();
        for lookalike in [
            "asha@x.com\u{200B}",
            "as\u{200D}ha@x.com",
            "\u{202E}asha@x.com",
        ] {
            assert!(Email::parse(lookalike).is_err(), "{lookalike:?} is refused");
        }
        // é precomposed (NFC) and as e + combining acute (NFD) are one address.
        let nfc = Email::parse("ren\u{e9}@x.com").unwrap();
        let nfd = Email::parse("Rene\u{301}@x.com").unwrap();
        assert_eq!(nfc, nfd);
        assert_eq!(
            Email::legacy("rene\u{301}@x.com").unwrap().as_str(),
            "rene\u{301}@x.com"
        );
        assert!(
            Email::legacy("asha@x.com").is_none(),
            "no legacy form when nothing differs"
        );
        assert_ne!(plain, nfc);
    }

    #[test]
    fn names_need_a_visible_character_and_no_invisible_ones() {
        for bad in [
            "\u{200B}",
            "\u{200B}\u{200C}\u{2060}",
            "Asha\u{202E}",
            "\u{301}",
            "Asha\u{200B}Rao",
        ] {
            assert!(parse_name("firstName", bad).is_err(), "{bad:?}");
        }
        assert!(
            parse_name("firstName", "\u{200D}Asha").is_err(),
            "a leading joiner hides"
        );
        for good in ["Asha", "José", "O'Brien", "李", "Nguyễn", "क्ष\u{200d}त्र"] {
            assert_eq!(parse_name("firstName", good).unwrap(), good);
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
