//! Users: accounts, with one `EMAIL#<email>` item per account for uniqueness.

use super::store::{DynamoStore, Transaction, TxFailure, check, put, update};
use crate::aws::item::{Attrs, Item, b, item, n, s, sdk_error, ts};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use chrono::{DateTime, Utc};
use giftify_shared::Missing;
use giftify_shared::ids::UserId;
use giftify_shared::ports::Users;
use giftify_shared::user::{
    Email, NewUser, ProfileUpdate, Role, StatusChange, User, UserCredentials, UserPage, UserSearch,
    UserStatus,
};
use giftify_shared::{Error, Result};

/// The users table also holds one `EMAIL#<email>` item per account: DynamoDB indexes do not
/// enforce uniqueness, a conditional put of this item does, and a consistent read of it finds
/// the account at login without the eventually consistent email index.
fn email_key(email: &Email) -> Item {
    item([("userId", s(format!("EMAIL#{}", email.as_str())))])
}

pub(super) fn user_key(id: &UserId) -> Item {
    item([("userId", s(id.as_str()))])
}

/// The user an `UpdateItem` conditional on the user's existence returned (`ReturnValue::AllNew`).
fn updated_user(
    result: std::result::Result<
        aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
        aws_sdk_dynamodb::error::SdkError<
            aws_sdk_dynamodb::operation::update_item::UpdateItemError,
        >,
    >,
) -> Result<User> {
    match result {
        Ok(output) => user_from(&output.attributes.unwrap_or_default()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Err(Error::NotFound(Missing::User))
        }
        Err(e) => Err(sdk_error(e)),
    }
}

pub(super) fn user_from(raw: &Item) -> Result<User> {
    let a = Attrs::new(raw, "users");
    Ok(User {
        id: UserId::parse(a.s("userId")?)?,
        email: Email::stored(a.s("email")?)?,
        first_name: a.s("firstName")?.to_string(),
        last_name: a.s("lastName")?.to_string(),
        phone_number: a.opt_s("phoneNumber")?.map(str::to_string),
        role: a.parsed("role", Role::parse)?,
        status: a.parsed("status", UserStatus::parse)?,
        wallet_balance: a.money("walletBalance")?,
        is_email_verified: a.bool("isEmailVerified")?,
        is_phone_verified: a.bool("isPhoneVerified")?,
        created_at: a.ts("createdAt")?,
        updated_at: a.ts("updatedAt")?,
        last_login_at: a.opt_ts("lastLoginAt")?,
        session_epoch: a.counter("sessionEpoch")?,
        active_on: a
            .opt_s("activeOn")?
            .map(|day| {
                day.parse()
                    .map_err(|_| giftify_shared::Error::internal("users.activeOn is not a date"))
            })
            .transpose()?,
    })
}

fn user_item(user: &NewUser) -> Item {
    let mut raw = item([
        ("userId", s(user.id.as_str())),
        ("email", s(user.email.as_str())),
        ("passwordHash", s(&user.password_hash)),
        ("firstName", s(&user.first_name)),
        ("lastName", s(&user.last_name)),
        ("role", s(user.role.as_str())),
        ("status", s(UserStatus::Active.as_str())),
        ("walletBalance", n(0)),
        ("isEmailVerified", b(false)),
        ("isPhoneVerified", b(false)),
        ("createdAt", ts(user.now)),
        ("updatedAt", ts(user.now)),
    ]);
    if let Some(phone) = &user.phone_number {
        raw.insert("phoneNumber".into(), s(phone));
    }
    raw
}

impl DynamoStore {
    pub(super) async fn user_item(&self, id: &UserId) -> Result<Option<Item>> {
        self.get(&self.tables.users, user_key(id)).await
    }
}

#[async_trait]
impl Users for DynamoStore {
    async fn create_user(&self, user: &NewUser) -> Result<User> {
        let mut transaction = Transaction::new();
        transaction.push(
            put(
                &self.tables.users,
                user_item(user),
                Some("attribute_not_exists(userId)"),
                Item::new(),
            )?,
            Error::internal("a new user id is taken"),
        );
        transaction.push(
            put(
                &self.tables.users,
                item([
                    ("userId", s(format!("EMAIL#{}", user.email.as_str()))),
                    ("ownerId", s(user.id.as_str())),
                ]),
                Some("attribute_not_exists(userId)"),
                Item::new(),
            )?,
            Error::EmailAlreadyExists,
        );
        self.commit(transaction)
            .await
            .map_err(TxFailure::into_error)?;
        self.user(&user.id)
            .await?
            .ok_or_else(|| Error::internal("user vanished after create"))
    }

    async fn credentials_by_email(&self, email: &Email) -> Result<Option<UserCredentials>> {
        let Some(guard) = self.get(&self.tables.users, email_key(email)).await? else {
            return Ok(None);
        };
        let owner = UserId::parse(Attrs::new(&guard, "users").s("ownerId")?)?;
        let Some(raw) = self.user_item(&owner).await? else {
            return Ok(None);
        };
        Ok(Some(UserCredentials {
            password_hash: Attrs::new(&raw, "users").s("passwordHash")?.to_string(),
            user: user_from(&raw)?,
        }))
    }

    async fn user(&self, id: &UserId) -> Result<Option<User>> {
        self.user_item(id)
            .await?
            .as_ref()
            .map(user_from)
            .transpose()
    }

    async fn update_profile(
        &self,
        id: &UserId,
        change: &ProfileUpdate,
        now: DateTime<Utc>,
    ) -> Result<User> {
        let mut sets = vec!["#updatedAt = :now"];
        let mut values = item([(":now", ts(now))]);
        for (field, placeholder, value) in [
            ("#firstName = :first", ":first", &change.first_name),
            ("#lastName = :last", ":last", &change.last_name),
            ("#phoneNumber = :phone", ":phone", &change.phone_number),
        ] {
            if let Some(value) = value {
                sets.push(field);
                values.insert(placeholder.into(), s(value));
            }
        }
        let expression = format!("SET {}", sets.join(", "));
        let condition = "attribute_exists(#userId)";
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.users)
            .set_key(Some(user_key(id)))
            .update_expression(&expression)
            .condition_expression(condition)
            .set_expression_attribute_names(super::store::names_of(&[&expression, condition]))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        updated_user(result)
    }

    async fn record_login(&self, id: &UserId, now: DateTime<Utc>) -> Result<()> {
        self.client
            .update_item()
            .table_name(&self.tables.users)
            .set_key(Some(user_key(id)))
            .update_expression("SET #lastLoginAt = :now")
            .condition_expression("attribute_exists(#userId)")
            .set_expression_attribute_names(super::store::names_of(&["#lastLoginAt #userId"]))
            .expression_attribute_values(":now", ts(now))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn make_admin(
        &self,
        id: &UserId,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<User> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.users)
            .set_key(Some(user_key(id)))
            .update_expression(
                "SET #role = :admin, #passwordHash = :hash, #updatedAt = :now \
                 ADD #sessionEpoch :one",
            )
            .condition_expression("attribute_exists(#userId)")
            .set_expression_attribute_names(super::store::names_of(&[
                "#role #passwordHash #updatedAt #sessionEpoch #userId",
            ]))
            .set_expression_attribute_values(Some(item([
                (":admin", s(Role::Admin.as_str())),
                (":hash", s(password_hash)),
                (":now", ts(now)),
                (":one", n(1)),
            ])))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        updated_user(result)
    }

    async fn find_users(&self, search: &UserSearch) -> Result<UserPage> {
        if let Some(email) = &search.email {
            let found = self
                .credentials_by_email(email)
                .await?
                .map(|found| found.user);
            return Ok(UserPage::of(found.into_iter().collect(), search.limit));
        }
        // A page of the table in its own (hash) order, resuming after the previous page's last
        // account; the `EMAIL#` guards are filtered out, so a page may take a few reads.
        let wanted = search.limit as usize + 1;
        let mut found = Vec::with_capacity(wanted);
        let mut start = search.after.as_ref().map(user_key);
        loop {
            let output = self
                .client
                .scan()
                .table_name(&self.tables.users)
                .filter_expression("begins_with(#userId, :account)")
                .expression_attribute_names("#userId", "userId")
                .expression_attribute_values(":account", s(UserId::PREFIX))
                .limit(i32::try_from(wanted - found.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_error)?;
            for raw in output.items() {
                found.push(user_from(raw)?);
            }
            start = output.last_evaluated_key;
            if found.len() >= wanted || start.is_none() {
                break;
            }
        }
        Ok(UserPage::of(found, search.limit))
    }

    async fn change_status(
        &self,
        id: &UserId,
        change: &StatusChange,
        now: DateTime<Utc>,
    ) -> Result<User> {
        // One transaction for every change: the status moves on the condition that it is
        // still the one read and, for an admin suspending an admin, that the admin still is
        // an ACTIVE one (suspensions are rare; the account is read back after).
        let mut transaction = Transaction::new();
        transaction.push(
            update(
                &self.tables.users,
                user_key(id),
                "SET #status = :to, #updatedAt = :now ADD #sessionEpoch :raise",
                Some("#status = :from"),
                item([
                    (":from", s(change.from.as_str())),
                    (":to", s(change.to.as_str())),
                    (":now", ts(now)),
                    (":raise", n(i64::from(change.end_sessions))),
                ]),
            )?,
            Error::Conflict("the account's status changed meanwhile"),
        );
        if let Some(admin) = &change.while_admin {
            transaction.push(
                check(
                    &self.tables.users,
                    user_key(admin),
                    "#status = :active AND #role = :admin",
                    item([
                        (":active", s(UserStatus::Active.as_str())),
                        (":admin", s(Role::Admin.as_str())),
                    ]),
                )?,
                Error::AccountSuspended,
            );
        }
        match self.commit(transaction).await {
            Ok(()) => {}
            // The status condition failed: the account is gone, or its status moved meanwhile.
            Err(TxFailure::Refused(Error::Conflict(_))) if self.user_item(id).await?.is_none() => {
                return Err(Error::NotFound(Missing::User));
            }
            Err(failure) => return Err(failure.into_error()),
        }
        self.user_item(id)
            .await?
            .as_ref()
            .map(user_from)
            .transpose()?
            .ok_or(Error::NotFound(Missing::User))
    }
}
