//! Registration, login bookkeeping, sessions and profiles. Password hashing and tokens are the
//! API's concern; this layer keeps the rules (throttling, uniqueness, rotation).

use super::Giftify;
use crate::Missing;
use crate::audit::{Actor, AuditAction, AuditEntry};
use crate::ids::UserId;
use crate::user::{
    Email, NewRefreshToken, NewUser, ProfileUpdate, Role, Rotation, User, UserCredentials,
};
use crate::{Error, Result};

/// A registration with a password already hashed by the caller.
#[derive(Clone, Debug)]
pub struct Registration {
    pub email: Email,
    /// The address as typed, to find an account stored under an older normal form; empty
    /// when the caller has only the normal form.
    pub typed_email: String,
    pub password_hash: String,
    pub first_name: String,
    pub last_name: String,
    pub phone_number: Option<String>,
}

impl Giftify {
    /// # Errors
    /// `EmailAlreadyExists` also when an account registered before the NFC rule has this
    /// address in another normalisation form: they are one address.
    pub async fn register(&self, registration: Registration) -> Result<User> {
        if Email::legacy(&registration.typed_email).is_some()
            && self
                .credentials_for_address(&registration.email, &registration.typed_email)
                .await?
                .is_some()
        {
            return Err(Error::EmailAlreadyExists);
        }
        let user = NewUser {
            id: UserId::generate(),
            email: registration.email,
            password_hash: registration.password_hash,
            first_name: registration.first_name,
            last_name: registration.last_name,
            phone_number: registration.phone_number,
            role: Role::User,
            now: self.now(),
        };
        self.ports.users.create_user(&user).await
    }

    /// Carries out what [`admin_step`] decided: creates the admin account, or gives an existing
    /// account the ADMIN role and a new password hash and ends every session it had (its
    /// session epoch goes up, so no refresh token issued before can be rotated again).
    pub async fn set_up_admin(
        &self,
        step: AdminStep,
        email: Email,
        password_hash: String,
    ) -> Result<User> {
        let admin = match &step {
            AdminStep::Create => {
                let admin = NewUser {
                    id: UserId::generate(),
                    email,
                    password_hash,
                    first_name: "Giftify".into(),
                    last_name: "Admin".into(),
                    phone_number: None,
                    role: Role::Admin,
                    now: self.now(),
                };
                self.ports.users.create_user(&admin).await?
            }
            AdminStep::Promote(id) | AdminStep::ResetPassword(id) => {
                self.ports
                    .users
                    .make_admin(id, &password_hash, self.now())
                    .await?
            }
            AdminStep::Nothing(id) => return self.profile(id).await,
        };
        // The operator's doing (`giftify admin …`, or `serve` with the admin variables): the
        // entry says what happened to the account, never the password.
        self.audit(
            AuditEntry::new(
                self.now(),
                &Actor::Operator,
                AuditAction::AdminAccountSetUp,
                admin.id.as_str(),
            )
            .after(serde_json::json!({ "email": admin.email.as_str(), "outcome": step.outcome() })),
        )
        .await;
        Ok(admin)
    }

    /// Counts a login attempt *before* its password is checked, so that a burst of parallel
    /// guesses cannot all slip past a lock that only their own failures would set: every
    /// attempt takes its place in the count atomically, and the attempt that reaches the
    /// policy's limit — like every attempt while the account is locked — is refused with
    /// `RateLimited`, unchecked. A successful login clears the count
    /// ([`Giftify::login_succeeded`]). Unknown emails are counted too, so the lock is no
    /// existence oracle.
    pub async fn begin_login_attempt(&self, email: &Email) -> Result<()> {
        let now = self.now();
        match self
            .ports
            .throttle
            .record_failure(email.as_str(), &self.rules.login_throttle, now)
            .await?
        {
            Some(until) => Err(Error::RateLimited {
                retry_after_secs: retry_after(until, now),
            }),
            None => Ok(()),
        }
    }

    /// The account a typed address belongs to: the one stored under its normal form, else
    /// one registered before addresses were stored in NFC ([`Email::legacy`]).
    pub async fn credentials_for_address(
        &self,
        email: &Email,
        typed: &str,
    ) -> Result<Option<UserCredentials>> {
        if let Some(found) = self.ports.users.credentials_by_email(email).await? {
            return Ok(Some(found));
        }
        match Email::legacy(typed) {
            Some(legacy) => self.ports.users.credentials_by_email(&legacy).await,
            None => Ok(None),
        }
    }

    /// The credentials to verify a login against; call [`Giftify::begin_login_attempt`]
    /// first.
    pub async fn login_credentials(&self, email: &Email) -> Result<Option<UserCredentials>> {
        self.ports.users.credentials_by_email(email).await
    }

    /// Called once the password matched: clears the failure count, and lets the login through
    /// only for an account that may act.
    /// # Errors
    /// [`Error::AccountSuspended`] for a suspended account (the right password earns the
    /// truth); [`Error::InvalidCredentials`] for a deleted one.
    pub async fn login_succeeded(&self, user: &User) -> Result<()> {
        self.ports.throttle.reset(user.email.as_str()).await?;
        match user.status {
            crate::user::UserStatus::Active => {}
            crate::user::UserStatus::Suspended => return Err(Error::AccountSuspended),
            crate::user::UserStatus::Deleted => return Err(Error::InvalidCredentials),
        }
        self.ports.users.record_login(&user.id, self.now()).await
    }

    pub async fn start_session(&self, token: NewRefreshToken) -> Result<()> {
        self.ports.sessions.start_session(&token).await
    }

    /// Spends a refresh token for its successor; a replayed token revokes its family.
    pub async fn rotate_session(
        &self,
        presented_hash: &str,
        replacement: NewRefreshToken,
    ) -> Result<User> {
        match self
            .ports
            .sessions
            .rotate(presented_hash, &replacement)
            .await?
        {
            Rotation::Rotated {
                user_id,
                session_epoch,
            } => {
                let user = match self.active_user(&user_id).await {
                    Ok(user) => user,
                    Err(error) => {
                        // The replacement is stored but will never be handed out: void it.
                        self.ports
                            .sessions
                            .revoke_family(&replacement.token_hash)
                            .await?;
                        return Err(error);
                    }
                };
                if user.session_epoch != session_epoch {
                    // An operator re-keyed or promoted the account after this session began:
                    // the session must not outlive that, nor carry the new role.
                    self.ports
                        .sessions
                        .revoke_family(&replacement.token_hash)
                        .await?;
                    tracing::warn!(user_id = %user.id, "refresh refused: the account's sessions were ended by an operator");
                    return Err(Error::InvalidToken);
                }
                Ok(user)
            }
            Rotation::ReuseDetected => {
                tracing::warn!(family = %replacement.family_id, "refresh token reuse detected; family revoked");
                Err(Error::InvalidToken)
            }
            Rotation::Invalid => Err(Error::InvalidToken),
        }
    }

    pub async fn end_session(&self, presented_hash: &str) -> Result<()> {
        self.ports.sessions.revoke_family(presented_hash).await
    }

    pub async fn profile(&self, id: &UserId) -> Result<User> {
        self.ports
            .users
            .user(id)
            .await?
            .ok_or(Error::NotFound(Missing::User))
    }

    pub async fn update_profile(&self, id: &UserId, update: ProfileUpdate) -> Result<User> {
        self.ports
            .users
            .update_profile(id, &update, self.now())
            .await
    }
}

/// What an operator asks of the admin account (`giftify admin …`, or the start-up admin of
/// `GIFTIFY_ADMIN_EMAIL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminRequest {
    /// A new admin account; an email that is taken is refused.
    Create,
    /// An existing customer account becomes an admin.
    Promote,
    /// An existing admin gets a new password.
    ResetPassword,
    /// At start-up: create the admin when missing, re-key it when its password differs, and
    /// promote a customer account only when `promote_existing` (the operator's explicit
    /// `--promote-existing-admin`): anyone may have registered that email on a live API.
    Ensure { promote_existing: bool },
}

/// What to do to the accounts, as [`admin_step`] decides it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminStep {
    Create,
    Promote(UserId),
    ResetPassword(UserId),
    /// The admin exists with this very password: leave it, and its sessions, alone.
    Nothing(UserId),
}

impl AdminStep {
    /// What the step did, for the operator and the audit log.
    pub fn outcome(&self) -> &'static str {
        match self {
            AdminStep::Create => "created",
            AdminStep::Promote(_) => "promoted; its earlier sessions were ended",
            AdminStep::ResetPassword(_) => "given a new password; its earlier sessions were ended",
            AdminStep::Nothing(_) => "unchanged (it exists with this password)",
        }
    }
}

/// Why an admin request was refused; each names what the operator can do instead.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AdminRefusal {
    #[error(
        "an account with this email exists already; `giftify admin promote` makes it the admin and ends its sessions"
    )]
    EmailTaken,
    #[error("no account has this email; `giftify admin create` makes one")]
    NoSuchAccount,
    #[error(
        "this account is an admin already; `giftify admin reset-password` gives it a new password"
    )]
    AlreadyAdmin,
    #[error("this account is not an admin; `giftify admin promote` makes it one")]
    NotAdmin,
    #[error(
        "a customer account already has the admin email; it is not promoted at start-up, because \
         anyone could have registered it. Check who owns it, then pass --promote-existing-admin \
         (or run `giftify admin promote`)"
    )]
    SquattedEmail,
}

/// Decides an admin request against the account that has the email now, if any, and whether
/// the requested password already matches that account's.
pub fn admin_step(
    request: AdminRequest,
    existing: Option<&User>,
    password_matches: bool,
) -> std::result::Result<AdminStep, AdminRefusal> {
    let admin = existing.map(|user| (user.id.clone(), user.role == Role::Admin));
    match (request, admin) {
        (AdminRequest::Create | AdminRequest::Ensure { .. }, None) => Ok(AdminStep::Create),
        (AdminRequest::Create, Some(_)) => Err(AdminRefusal::EmailTaken),
        (AdminRequest::Promote | AdminRequest::ResetPassword, None) => {
            Err(AdminRefusal::NoSuchAccount)
        }
        (AdminRequest::Promote, Some((_, true))) => Err(AdminRefusal::AlreadyAdmin),
        (AdminRequest::Promote, Some((id, false))) => Ok(AdminStep::Promote(id)),
        (AdminRequest::ResetPassword, Some((_, false))) => Err(AdminRefusal::NotAdmin),
        (AdminRequest::ResetPassword, Some((id, true))) => Ok(AdminStep::ResetPassword(id)),
        (AdminRequest::Ensure { .. }, Some((id, true))) if password_matches => {
            Ok(AdminStep::Nothing(id))
        }
        (AdminRequest::Ensure { .. }, Some((id, true))) => Ok(AdminStep::ResetPassword(id)),
        (
            AdminRequest::Ensure {
                promote_existing: true,
            },
            Some((id, false)),
        ) => Ok(AdminStep::Promote(id)),
        (
            AdminRequest::Ensure {
                promote_existing: false,
            },
            Some((_, false)),
        ) => Err(AdminRefusal::SquattedEmail),
    }
}

pub(super) fn retry_after(
    until: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> u64 {
    (until - now).num_seconds().max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(role: Role) -> User {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("a time");
        User {
            id: UserId::generate(),
            email: Email::parse("boss@giftify.test").expect("an email"),
            first_name: "Boss".into(),
            last_name: "Squatter".into(),
            phone_number: None,
            role,
            status: crate::user::UserStatus::Active,
            wallet_balance: crate::Paise::new(0),
            is_email_verified: false,
            is_phone_verified: false,
            created_at: at,
            updated_at: at,
            last_login_at: None,
            session_epoch: 0,
            active_on: None,
        }
    }

    #[test]
    fn a_customer_with_the_admin_email_is_promoted_only_when_the_operator_says_so() {
        let customer = account(Role::User);
        let ensure = AdminRequest::Ensure {
            promote_existing: false,
        };
        // Even knowing the password does not make a squatter the admin at start-up.
        for matches in [false, true] {
            assert_eq!(
                admin_step(ensure, Some(&customer), matches),
                Err(AdminRefusal::SquattedEmail)
            );
        }
        let explicit = AdminRequest::Ensure {
            promote_existing: true,
        };
        assert_eq!(
            admin_step(explicit, Some(&customer), false),
            Ok(AdminStep::Promote(customer.id.clone()))
        );
        assert_eq!(
            admin_step(AdminRequest::Promote, Some(&customer), false),
            Ok(AdminStep::Promote(customer.id.clone()))
        );
    }

    #[test]
    fn the_start_up_admin_is_created_rekeyed_or_left_alone() {
        let ensure = AdminRequest::Ensure {
            promote_existing: false,
        };
        assert_eq!(admin_step(ensure, None, false), Ok(AdminStep::Create));
        let admin = account(Role::Admin);
        assert_eq!(
            admin_step(ensure, Some(&admin), true),
            Ok(AdminStep::Nothing(admin.id.clone())),
            "a restart with the same password ends no sessions"
        );
        assert_eq!(
            admin_step(ensure, Some(&admin), false),
            Ok(AdminStep::ResetPassword(admin.id.clone()))
        );
    }

    #[test]
    fn each_admin_command_refuses_the_account_it_is_not_for() {
        let (customer, admin) = (account(Role::User), account(Role::Admin));
        assert_eq!(
            admin_step(AdminRequest::Create, Some(&customer), false),
            Err(AdminRefusal::EmailTaken)
        );
        assert_eq!(
            admin_step(AdminRequest::Create, None, false),
            Ok(AdminStep::Create)
        );
        assert_eq!(
            admin_step(AdminRequest::Promote, None, false),
            Err(AdminRefusal::NoSuchAccount)
        );
        assert_eq!(
            admin_step(AdminRequest::Promote, Some(&admin), false),
            Err(AdminRefusal::AlreadyAdmin)
        );
        assert_eq!(
            admin_step(AdminRequest::ResetPassword, Some(&customer), true),
            Err(AdminRefusal::NotAdmin)
        );
        assert_eq!(
            admin_step(AdminRequest::ResetPassword, Some(&admin), true),
            Ok(AdminStep::ResetPassword(admin.id.clone()))
        );
        assert!(
            AdminRefusal::SquattedEmail
                .to_string()
                .contains("--promote-existing-admin")
        );
    }
}
