//! Users, refresh-token sessions and login throttling.

use crate::support::{new_user, now, unique_email, user};
use anyhow::Result;
use chrono::Duration;
use giftify_shared::Error;
use giftify_shared::ids::UserId;
use giftify_shared::ports::Ports;
use giftify_shared::user::{
    Email, NewRefreshToken, ProfileUpdate, Role, Rotation, ThrottlePolicy, UserSearch, UserStatus,
};

pub async fn creating_a_user_with_a_taken_email_fails_and_changes_nothing(
    ports: &Ports,
) -> Result<()> {
    let first = user(ports).await?;
    let shouting = Email::parse(&first.email.as_str().to_uppercase())?;
    let second = new_user(shouting);

    let err = ports.users.create_user(&second).await.unwrap_err();

    assert!(matches!(err, Error::EmailAlreadyExists), "{err:?}");
    assert!(ports.users.user(&second.id).await?.is_none());
    let found = ports
        .users
        .credentials_by_email(&first.email)
        .await?
        .unwrap();
    assert_eq!(found.user.id, first.id);
    Ok(())
}

pub async fn a_new_user_is_active_with_a_zero_balance_and_found_by_email(
    ports: &Ports,
) -> Result<()> {
    let new = new_user(unique_email());
    let created = ports.users.create_user(&new).await?;

    assert_eq!(created.id, new.id);
    assert_eq!(created.email, new.email);
    assert_eq!(created.role, Role::User);
    assert_eq!(created.status, UserStatus::Active);
    assert_eq!(created.wallet_balance.get(), 0);
    assert_eq!(created.created_at, new.now);
    assert_eq!(created.last_login_at, None);
    assert_eq!(ports.wallets.balance(&new.id).await?.get(), 0);
    let credentials = ports.users.credentials_by_email(&new.email).await?.unwrap();
    assert_eq!(credentials.user, created);
    assert_eq!(credentials.password_hash, new.password_hash);
    assert_eq!(ports.users.user(&new.id).await?, Some(created));
    assert!(
        ports
            .users
            .credentials_by_email(&unique_email())
            .await?
            .is_none()
    );
    Ok(())
}

pub async fn a_profile_update_changes_only_the_given_fields(ports: &Ports) -> Result<()> {
    let before = user(ports).await?;
    let later = now() + Duration::seconds(5);
    let update = ProfileUpdate {
        last_name: Some("Iyer".into()),
        ..ProfileUpdate::default()
    };

    let after = ports
        .users
        .update_profile(&before.id, &update, later)
        .await?;

    assert_eq!(after.last_name, "Iyer");
    assert_eq!(after.first_name, before.first_name);
    assert_eq!(after.phone_number, before.phone_number);
    assert_eq!(after.updated_at, later);
    assert_eq!(ports.users.user(&before.id).await?, Some(after));
    Ok(())
}

pub async fn updating_or_logging_in_an_unknown_user_is_not_found(ports: &Ports) -> Result<()> {
    let ghost = UserId::generate();
    let err = ports
        .users
        .update_profile(&ghost, &ProfileUpdate::default(), now())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert!(ports.users.user(&ghost).await?.is_none());

    let known = user(ports).await?;
    let at = now();
    ports.users.record_login(&known.id, at).await?;
    assert_eq!(
        ports.users.user(&known.id).await?.unwrap().last_login_at,
        Some(at)
    );
    Ok(())
}

pub async fn make_admin_promotes_rekeys_and_raises_the_session_epoch(ports: &Ports) -> Result<()> {
    let existing = user(ports).await?;
    assert_eq!(existing.session_epoch, 0, "a new account starts at epoch 0");
    let promoted = ports
        .users
        .make_admin(&existing.id, "new-hash", now())
        .await?;
    assert_eq!(
        promoted.id, existing.id,
        "the account is kept, not replaced"
    );
    assert_eq!(promoted.role, Role::Admin);
    assert_eq!(promoted.session_epoch, 1);
    let credentials = ports
        .users
        .credentials_by_email(&existing.email)
        .await?
        .unwrap();
    assert_eq!(credentials.password_hash, "new-hash");
    assert_eq!(credentials.user.session_epoch, 1);

    let again = ports
        .users
        .make_admin(&existing.id, "newer-hash", now())
        .await?;
    assert_eq!(
        again.session_epoch, 2,
        "every re-key ends the sessions again"
    );

    let missing = ports
        .users
        .make_admin(&UserId::generate(), "hash", now())
        .await;
    assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
    Ok(())
}

pub async fn a_rotation_keeps_the_session_epoch_the_family_started_under(
    ports: &Ports,
) -> Result<()> {
    let owner = user(ports).await?;
    let (t1, t2) = (fresh_hash(), fresh_hash());
    let day = Duration::days(1);
    let mut first = token(&owner.id, "fam-epoch", &t1, day);
    first.session_epoch = 3;
    ports.sessions.start_session(&first).await?;
    // The replacement claims another epoch; the stored one wins.
    let mut second = token(&owner.id, "fam-epoch", &t2, day);
    second.session_epoch = 9;
    let rotated = ports.sessions.rotate(&t1, &second).await?;
    assert_eq!(
        rotated,
        Rotation::Rotated {
            user_id: owner.id.clone(),
            session_epoch: 3
        }
    );
    Ok(())
}

fn token(user: &UserId, family: &str, hash: &str, expires_in: Duration) -> NewRefreshToken {
    let at = now();
    NewRefreshToken {
        token_hash: hash.to_string(),
        family_id: family.to_string(),
        user_id: user.clone(),
        session_epoch: 0,
        expires_at: at + expires_in,
        now: at,
    }
}

fn fresh_hash() -> String {
    format!("hash-{}", UserId::generate().ulid_part())
}

pub async fn rotating_a_refresh_token_spends_it_and_issues_its_successor(
    ports: &Ports,
) -> Result<()> {
    let owner = user(ports).await?;
    let (t1, t2, t3) = (fresh_hash(), fresh_hash(), fresh_hash());
    let day = Duration::days(1);
    ports
        .sessions
        .start_session(&token(&owner.id, "fam-1", &t1, day))
        .await?;

    let first = ports
        .sessions
        .rotate(&t1, &token(&owner.id, "fam-1", &t2, day))
        .await?;
    assert_eq!(
        first,
        Rotation::Rotated {
            user_id: owner.id.clone(),
            session_epoch: 0
        }
    );
    let second = ports
        .sessions
        .rotate(&t2, &token(&owner.id, "fam-1", &t3, day))
        .await?;
    assert_eq!(
        second,
        Rotation::Rotated {
            user_id: owner.id.clone(),
            session_epoch: 0
        }
    );
    Ok(())
}

pub async fn presenting_a_spent_refresh_token_revokes_the_whole_family(
    ports: &Ports,
) -> Result<()> {
    let owner = user(ports).await?;
    let (t1, t2, stolen_next, t3) = (fresh_hash(), fresh_hash(), fresh_hash(), fresh_hash());
    let day = Duration::days(1);
    ports
        .sessions
        .start_session(&token(&owner.id, "fam-1", &t1, day))
        .await?;
    ports
        .sessions
        .rotate(&t1, &token(&owner.id, "fam-1", &t2, day))
        .await?;

    let replay = ports
        .sessions
        .rotate(&t1, &token(&owner.id, "fam-1", &stolen_next, day))
        .await?;

    assert_eq!(replay, Rotation::ReuseDetected);
    let live = ports
        .sessions
        .rotate(&t2, &token(&owner.id, "fam-1", &t3, day))
        .await?;
    assert_eq!(
        live,
        Rotation::Invalid,
        "the family's live token is revoked too"
    );
    let planted = ports
        .sessions
        .rotate(&stolen_next, &token(&owner.id, "fam-1", &fresh_hash(), day))
        .await?;
    assert_eq!(
        planted,
        Rotation::Invalid,
        "the replay's replacement was never stored"
    );
    Ok(())
}

pub async fn unknown_expired_and_revoked_refresh_tokens_are_invalid_and_store_nothing(
    ports: &Ports,
) -> Result<()> {
    let owner = user(ports).await?;
    let day = Duration::days(1);

    let unknown_next = fresh_hash();
    let unknown = ports
        .sessions
        .rotate(
            &fresh_hash(),
            &token(&owner.id, "fam-x", &unknown_next, day),
        )
        .await?;
    assert_eq!(unknown, Rotation::Invalid);

    let expired = fresh_hash();
    ports
        .sessions
        .start_session(&token(&owner.id, "fam-2", &expired, -Duration::seconds(1)))
        .await?;
    let expired_next = fresh_hash();
    let rotation = ports
        .sessions
        .rotate(&expired, &token(&owner.id, "fam-2", &expired_next, day))
        .await?;
    assert_eq!(rotation, Rotation::Invalid);

    let revoked = fresh_hash();
    ports
        .sessions
        .start_session(&token(&owner.id, "fam-3", &revoked, day))
        .await?;
    ports.sessions.revoke_family(&revoked).await?;
    let revoked_next = fresh_hash();
    let rotation = ports
        .sessions
        .rotate(&revoked, &token(&owner.id, "fam-3", &revoked_next, day))
        .await?;
    assert_eq!(rotation, Rotation::Invalid);

    for never_stored in [unknown_next, expired_next, revoked_next] {
        let rotation = ports
            .sessions
            .rotate(
                &never_stored,
                &token(&owner.id, "fam-x", &fresh_hash(), day),
            )
            .await?;
        assert_eq!(rotation, Rotation::Invalid);
    }
    ports.sessions.revoke_family(&fresh_hash()).await?;
    Ok(())
}

pub async fn logout_revokes_only_the_family_of_the_token(ports: &Ports) -> Result<()> {
    let owner = user(ports).await?;
    let day = Duration::days(1);
    let (phone, laptop) = (fresh_hash(), fresh_hash());
    ports
        .sessions
        .start_session(&token(&owner.id, "fam-phone", &phone, day))
        .await?;
    ports
        .sessions
        .start_session(&token(&owner.id, "fam-laptop", &laptop, day))
        .await?;

    ports.sessions.revoke_family(&phone).await?;

    let phone_rotation = ports
        .sessions
        .rotate(&phone, &token(&owner.id, "fam-phone", &fresh_hash(), day))
        .await?;
    assert_eq!(phone_rotation, Rotation::Invalid);
    let laptop_rotation = ports
        .sessions
        .rotate(&laptop, &token(&owner.id, "fam-laptop", &fresh_hash(), day))
        .await?;
    assert_eq!(
        laptop_rotation,
        Rotation::Rotated {
            user_id: owner.id,
            session_epoch: 0
        }
    );
    Ok(())
}

fn policy() -> ThrottlePolicy {
    ThrottlePolicy {
        max_failures: 3,
        window: Duration::minutes(15),
        lockout: Duration::minutes(10),
    }
}

fn account() -> String {
    unique_email().as_str().to_string()
}

pub async fn the_throttle_locks_an_account_after_max_failures_within_the_window(
    ports: &Ports,
) -> Result<()> {
    let (account, t0) = (account(), now());
    let throttle = &ports.throttle;
    assert_eq!(
        throttle.record_failure(&account, &policy(), t0).await?,
        None
    );
    assert_eq!(
        throttle
            .record_failure(&account, &policy(), t0 + Duration::minutes(1))
            .await?,
        None
    );
    assert_eq!(
        throttle
            .locked_until(&account, t0 + Duration::minutes(1))
            .await?,
        None
    );

    let third = t0 + Duration::minutes(2);
    let lock = throttle.record_failure(&account, &policy(), third).await?;
    let until = third + Duration::minutes(10);

    assert_eq!(lock, Some(until));
    assert_eq!(
        throttle
            .locked_until(&account, third + Duration::minutes(9))
            .await?,
        Some(until)
    );
    assert_eq!(
        throttle.locked_until(&account, until).await?,
        None,
        "the lock ends"
    );
    assert_eq!(
        throttle.locked_until(&self::account(), third).await?,
        None,
        "per account"
    );
    assert_eq!(
        throttle
            .record_failure(&account, &policy(), until + Duration::seconds(1))
            .await?,
        None,
        "after the lock a new window starts"
    );
    Ok(())
}

/// A login that passed the lock check just before another locked the account still records
/// its failure: that must neither lift nor extend the lock.
pub async fn a_failure_recorded_while_locked_keeps_the_lock_as_it_is(ports: &Ports) -> Result<()> {
    let (account, t0) = (account(), now());
    let throttle = &ports.throttle;
    let mut lock = None;
    for _ in 0..3 {
        lock = throttle.record_failure(&account, &policy(), t0).await?;
    }
    let until = t0 + Duration::minutes(10);
    assert_eq!(lock, Some(until));
    for minutes in [1, 2, 9] {
        assert_eq!(
            throttle
                .record_failure(&account, &policy(), t0 + Duration::minutes(minutes))
                .await?,
            Some(until),
            "a failure at +{minutes} min while locked"
        );
    }
    assert_eq!(
        throttle
            .locked_until(&account, t0 + Duration::minutes(9))
            .await?,
        Some(until),
        "still locked, not extended"
    );
    Ok(())
}

pub async fn failures_spread_beyond_the_window_do_not_lock(ports: &Ports) -> Result<()> {
    let (account, t0) = (account(), now());
    for minutes in [0, 10, 20, 30, 40] {
        let lock = ports
            .throttle
            .record_failure(&account, &policy(), t0 + Duration::minutes(minutes))
            .await?;
        assert_eq!(lock, None, "failure at +{minutes} min");
    }
    Ok(())
}

pub async fn a_reset_clears_the_failures_of_one_account_only(ports: &Ports) -> Result<()> {
    let (alice, bob, t0) = (account(), account(), now());
    for account in [&alice, &bob] {
        for _ in 0..2 {
            ports
                .throttle
                .record_failure(account, &policy(), t0)
                .await?;
        }
    }

    ports.throttle.reset(&alice).await?;

    assert_eq!(
        ports.throttle.record_failure(&alice, &policy(), t0).await?,
        None
    );
    assert!(
        ports
            .throttle
            .record_failure(&bob, &policy(), t0)
            .await?
            .is_some()
    );
    ports.throttle.reset(&account()).await?;
    Ok(())
}

pub async fn support_pages_through_every_account_once_and_finds_one_by_email(
    ports: &Ports,
) -> Result<()> {
    let mut created = Vec::new();
    for _ in 0..7 {
        created.push(user(ports).await?.id);
    }
    let mut seen = std::collections::HashSet::new();
    let mut after = None;
    loop {
        let page = ports
            .users
            .find_users(&UserSearch {
                email: None,
                after: after.clone(),
                limit: 3,
            })
            .await?;
        assert!(page.users.len() <= 3, "a page holds at most its limit");
        for found in &page.users {
            assert!(seen.insert(found.id.clone()), "{} seen twice", found.id);
        }
        match page.next {
            Some(next) => {
                assert_eq!(Some(&next), page.users.last().map(|u| &u.id));
                after = Some(next);
            }
            None => break,
        }
    }
    for id in &created {
        assert!(seen.contains(id), "{id} was never listed");
    }

    let one = ports.users.user(&created[4]).await?.expect("created");
    let found = ports
        .users
        .find_users(&UserSearch {
            email: Some(one.email.clone()),
            after: None,
            limit: 10,
        })
        .await?;
    assert_eq!(found.users, vec![one]);
    assert_eq!(found.next, None);
    let nobody = ports
        .users
        .find_users(&UserSearch {
            email: Some(unique_email()),
            after: None,
            limit: 10,
        })
        .await?;
    assert!(nobody.users.is_empty() && nobody.next.is_none());
    Ok(())
}

pub async fn a_suspension_is_conditional_on_the_status_read_and_ends_the_sessions(
    ports: &Ports,
) -> Result<()> {
    let account = user(ports).await?;
    let suspend = account
        .standing_change(UserStatus::Suspended)?
        .expect("an active account can be suspended");
    assert!(suspend.end_sessions);
    let suspended = ports
        .users
        .change_status(&account.id, &suspend, now())
        .await?;
    assert_eq!(suspended.status, UserStatus::Suspended);
    assert_eq!(suspended.session_epoch, account.session_epoch + 1);

    // The same decision again was made on a stale read: refused, nothing changes.
    let stale = ports
        .users
        .change_status(&account.id, &suspend, now())
        .await;
    assert!(matches!(stale, Err(Error::Conflict(_))), "{stale:?}");
    assert_eq!(
        ports.users.user(&account.id).await?,
        Some(suspended.clone())
    );

    let reactivate = suspended
        .standing_change(UserStatus::Active)?
        .expect("a suspended account can be reactivated");
    assert!(!reactivate.end_sessions);
    let active = ports
        .users
        .change_status(&account.id, &reactivate, now())
        .await?;
    assert_eq!(active.status, UserStatus::Active);
    assert_eq!(
        active.session_epoch, suspended.session_epoch,
        "the sessions the suspension ended stay ended"
    );
    assert_eq!(active.standing_change(UserStatus::Active)?, None);

    let missing = ports
        .users
        .change_status(&UserId::generate(), &suspend, now())
        .await;
    assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
    Ok(())
}

/// Two admins suspending each other: the second change finds its admin suspended and changes
/// nothing, so one of them stays; a suspension whose admin is active goes through.
pub async fn an_admin_suspends_another_only_while_still_an_active_admin(
    ports: &Ports,
) -> Result<()> {
    let first = ports
        .users
        .make_admin(&user(ports).await?.id, "hash", now())
        .await?;
    let second = ports
        .users
        .make_admin(&user(ports).await?.id, "hash", now())
        .await?;
    let mut suspend_second = second
        .standing_change(UserStatus::Suspended)?
        .expect("an active account can be suspended");
    suspend_second.while_admin = Some(first.id.clone());
    let mut suspend_first = first
        .standing_change(UserStatus::Suspended)?
        .expect("an active account can be suspended");
    suspend_first.while_admin = Some(second.id.clone());

    ports
        .users
        .change_status(&second.id, &suspend_second, now())
        .await?;
    let refused = ports
        .users
        .change_status(&first.id, &suspend_first, now())
        .await;
    assert!(
        matches!(refused, Err(Error::AccountSuspended)),
        "{refused:?}"
    );
    assert_eq!(ports.users.user(&first.id).await?, Some(first.clone()));
    assert_eq!(
        ports.users.user(&second.id).await?.map(|u| u.status),
        Some(UserStatus::Suspended)
    );
    Ok(())
}
