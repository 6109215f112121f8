//! Accounts: registration (email unique, stored normalised), profiles, logins and the admin.

use super::SqliteStore;
use super::codec::{
    DbError, DbResult, all, enumeration, id, one, opt_date, opt_time, paise, time, ts,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use giftify_shared::Missing;
use giftify_shared::ids::UserId;
use giftify_shared::ports::Users;
use giftify_shared::user::{
    Email, NewUser, ProfileUpdate, Role, StatusChange, User, UserCredentials, UserPage, UserSearch,
    UserStatus,
};
use giftify_shared::{Error, Result};
use rusqlite::{Connection, Row, params};

pub(super) const USER_COLUMNS: &str = "id, email, password_hash, first_name, last_name, phone_number, \
     role, status, wallet_balance, is_email_verified, is_phone_verified, created_at, \
     updated_at, last_login_at, session_epoch, active_on";

pub(super) fn user_from_row(row: &Row) -> DbResult<User> {
    let raw_email: String = row.get("email")?;
    Ok(User {
        id: id(row, "id")?,
        email: Email::stored(&raw_email).map_err(|_| DbError::corrupt("user email"))?,
        first_name: row.get("first_name")?,
        last_name: row.get("last_name")?,
        phone_number: row.get("phone_number")?,
        role: enumeration(row, "role", Role::parse)?,
        status: enumeration(row, "status", UserStatus::parse)?,
        wallet_balance: paise(row, "wallet_balance")?,
        is_email_verified: row.get("is_email_verified")?,
        is_phone_verified: row.get("is_phone_verified")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        last_login_at: opt_time(row, "last_login_at")?,
        session_epoch: row.get("session_epoch")?,
        active_on: opt_date(row, "active_on")?,
    })
}

pub(super) fn user_by_id(conn: &Connection, id: &UserId) -> DbResult<Option<User>> {
    one(
        conn,
        &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
        [id.as_str()],
        user_from_row,
    )
}

fn credentials_by_email(conn: &Connection, email: &Email) -> DbResult<Option<UserCredentials>> {
    one(
        conn,
        &format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?1"),
        [email.as_str()],
        |row| {
            Ok(UserCredentials {
                user: user_from_row(row)?,
                password_hash: row.get("password_hash")?,
            })
        },
    )
}

fn existing_user(conn: &Connection, id: &UserId) -> DbResult<User> {
    user_by_id(conn, id)?.ok_or_else(|| Error::NotFound(Missing::User).into())
}

fn insert_user(conn: &Connection, user: &NewUser) -> DbResult<()> {
    let now = ts(user.now);
    conn.prepare_cached(
        "INSERT INTO users (id, email, password_hash, first_name, last_name, phone_number, \
         role, status, wallet_balance, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'ACTIVE', 0, ?8, ?8)",
    )?
    .execute(params![
        user.id.as_str(),
        user.email.as_str(),
        user.password_hash,
        user.first_name,
        user.last_name,
        user.phone_number,
        user.role.as_str(),
        now,
    ])
    .map_err(DbError::from)
    .map_err(|e| {
        if e.violates(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE, "users.email") {
            DbError::Domain(Error::EmailAlreadyExists)
        } else {
            e
        }
    })?;
    Ok(())
}

#[async_trait]
impl Users for SqliteStore {
    async fn create_user(&self, user: &NewUser) -> Result<User> {
        let user = user.clone();
        self.write(move |conn| {
            insert_user(conn, &user)?;
            existing_user(conn, &user.id)
        })
        .await
    }

    async fn credentials_by_email(&self, email: &Email) -> Result<Option<UserCredentials>> {
        let email = email.clone();
        self.read(move |conn| credentials_by_email(conn, &email))
            .await
    }

    async fn user(&self, id: &UserId) -> Result<Option<User>> {
        let id = id.clone();
        self.read(move |conn| user_by_id(conn, &id)).await
    }

    async fn update_profile(
        &self,
        id: &UserId,
        update: &ProfileUpdate,
        now: DateTime<Utc>,
    ) -> Result<User> {
        let (id, update) = (id.clone(), update.clone());
        self.write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE users SET first_name = COALESCE(?2, first_name), \
                     last_name = COALESCE(?3, last_name), \
                     phone_number = COALESCE(?4, phone_number), updated_at = ?5 \
                     WHERE id = ?1",
                )?
                .execute(params![
                    id.as_str(),
                    update.first_name,
                    update.last_name,
                    update.phone_number,
                    ts(now),
                ])?;
            if changed == 0 {
                return Err(Error::NotFound(Missing::User).into());
            }
            existing_user(conn, &id)
        })
        .await
    }

    async fn record_login(&self, id: &UserId, now: DateTime<Utc>) -> Result<()> {
        let id = id.clone();
        self.write(move |conn| {
            let changed = conn
                .prepare_cached("UPDATE users SET last_login_at = ?2 WHERE id = ?1")?
                .execute(params![id.as_str(), ts(now)])?;
            if changed == 0 {
                return Err(Error::NotFound(Missing::User).into());
            }
            Ok(())
        })
        .await
    }

    async fn make_admin(
        &self,
        id: &UserId,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<User> {
        let (id, password_hash) = (id.clone(), password_hash.to_string());
        self.write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE users SET role = 'ADMIN', password_hash = ?2, updated_at = ?3, \
                     session_epoch = session_epoch + 1 WHERE id = ?1",
                )?
                .execute(params![id.as_str(), password_hash, ts(now)])?;
            if changed == 0 {
                return Err(Error::NotFound(Missing::User).into());
            }
            existing_user(conn, &id)
        })
        .await
    }

    async fn find_users(&self, search: &UserSearch) -> Result<UserPage> {
        let search = search.clone();
        self.read(move |conn| {
            if let Some(email) = &search.email {
                let found = credentials_by_email(conn, email)?.map(|found| found.user);
                return Ok(UserPage::of(found.into_iter().collect(), search.limit));
            }
            let users = all(
                conn,
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id > ?1 ORDER BY id LIMIT ?2"),
                params![
                    search.after.as_ref().map_or("", UserId::as_str),
                    i64::from(search.limit) + 1
                ],
                user_from_row,
            )?;
            Ok(UserPage::of(users, search.limit))
        })
        .await
    }

    async fn change_status(
        &self,
        id: &UserId,
        change: &StatusChange,
        now: DateTime<Utc>,
    ) -> Result<User> {
        let (id, change) = (id.clone(), change.clone());
        self.write(move |conn| {
            if let Some(admin) = &change.while_admin
                && one(
                    conn,
                    "SELECT 1 FROM users WHERE id = ?1 AND role = 'ADMIN' AND status = 'ACTIVE'",
                    [admin.as_str()],
                    |row| Ok(row.get::<_, i64>(0)?),
                )?
                .is_none()
            {
                return Err(Error::AccountSuspended.into());
            }
            let changed = conn
                .prepare_cached(
                    "UPDATE users SET status = ?3, updated_at = ?4, \
                     session_epoch = session_epoch + ?5 WHERE id = ?1 AND status = ?2",
                )?
                .execute(params![
                    id.as_str(),
                    change.from.as_str(),
                    change.to.as_str(),
                    ts(now),
                    i64::from(change.end_sessions)
                ])?;
            if changed == 0 {
                existing_user(conn, &id)?;
                return Err(Error::Conflict("the account's status changed meanwhile").into());
            }
            existing_user(conn, &id)
        })
        .await
    }
}
