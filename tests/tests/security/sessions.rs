//! Sessions under attack: a stolen refresh token replayed after its owner rotated it, many
//! rotations of one token at once, tampered refresh tokens, and password guessing — one at a
//! time and in parallel bursts.

use crate::Attacks;
use crate::support::{Backend, PASSWORD, TestApp, TestUser, unique_email};
use serde_json::json;
use std::sync::Arc;

async fn refresh(app: &TestApp, token: &str) -> crate::support::TestResponse {
    app.post("/auth/refresh", None, json!({"refreshToken": token}))
        .await
}

async fn login(app: &TestApp, email: &str, password: &str) -> crate::support::TestResponse {
    app.post(
        "/auth/login",
        None,
        json!({"email": email, "password": password}),
    )
    .await
}

fn refresh_token_of(response: &crate::support::TestResponse) -> String {
    response.data()["refreshToken"]
        .as_str()
        .expect("refreshToken")
        .to_string()
}

async fn a_replayed_refresh_token_revokes_its_family_and_one_of_many_parallel_rotations_wins(
    backend: Backend,
) {
    let app = Arc::new(TestApp::spawn(backend).await);
    let mut attacks = Attacks::new("refresh tokens", backend);
    let user = app.register("session").await;
    // A second device: its own family, which theft on the first must not touch.
    let laptop = refresh_token_of(&login(&app, &user.email, PASSWORD).await);

    // The owner rotates; the thief replays the old token: the whole family dies, including
    // the owner's fresh token, and the thief learns nothing usable.
    let rotated = refresh_token_of(&refresh(&app, &user.refresh_token).await);
    attacks.tried();
    refresh(&app, &user.refresh_token)
        .await
        .assert_error(401, "UNAUTHORIZED");
    attacks.tried();
    refresh(&app, &rotated)
        .await
        .assert_error(401, "UNAUTHORIZED");
    assert_eq!(
        refresh(&app, &laptop).await.status,
        200,
        "another session family is unaffected"
    );

    // Many rotations of one token at once: at most one wins, and the replays revoke the
    // family, so even the winner's successor is dead.
    let phone = refresh_token_of(&login(&app, &user.email, PASSWORD).await);
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let (app, phone) = (app.clone(), phone.clone());
            tokio::spawn(async move {
                let response = refresh(&app, &phone).await;
                (response.status.as_u16(), response.body)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for racer in racers {
        attacks.tried();
        let (status, body) = racer.await.expect("racer");
        match status {
            200 => winners.push(
                body["data"]["refreshToken"]
                    .as_str()
                    .expect("token")
                    .to_string(),
            ),
            401 => assert_eq!(body["error"]["code"], "UNAUTHORIZED"),
            other => panic!("a parallel rotation answered {other}: {body}"),
        }
    }
    assert!(
        winners.len() <= 1,
        "{} parallel rotations won",
        winners.len()
    );
    for successor in &winners {
        refresh(&app, successor)
            .await
            .assert_error(401, "UNAUTHORIZED");
    }

    // Tampered tokens: another user's id in front, a flipped character, padding, oversize.
    let other = app.register("sessionother").await;
    let fresh = refresh_token_of(&login(&app, &user.email, PASSWORD).await);
    let (_, rest) = fresh.split_once('.').expect("user.family.secret");
    let mut flipped = fresh.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    for tampered in [
        format!("{}.{rest}", other.id),
        String::from_utf8(flipped).expect("ascii"),
        format!("{fresh}="),
        format!("{fresh}.{fresh}"),
        "x".repeat(10_000),
        "user_' OR '1'='1.01HXXXXXXXXXXXXXXXXXXXXXXX.secret".to_string(),
    ] {
        attacks.tried();
        refresh(&app, &tampered)
            .await
            .assert_error(401, "UNAUTHORIZED");
    }
    assert_eq!(
        refresh(&app, &fresh).await.status,
        200,
        "tampered copies do not spend or revoke the real token"
    );

    // Logout kills the family for good.
    let tablet = refresh_token_of(&login(&app, &user.email, PASSWORD).await);
    app.post("/auth/logout", None, json!({"refreshToken": tablet}))
        .await;
    attacks.tried();
    refresh(&app, &tablet)
        .await
        .assert_error(401, "UNAUTHORIZED");
}

/// Logs in `user` with a wrong password; returns the status.
async fn guess(app: &TestApp, email: &str, n: usize) -> u16 {
    login(app, email, &format!("wrong password {n}"))
        .await
        .status
        .as_u16()
}

async fn password_guessing_is_locked_out_sequentially_in_parallel_and_for_unknown_accounts(
    backend: Backend,
) {
    let app = Arc::new(TestApp::spawn(backend).await);
    let mut attacks = Attacks::new("login brute force", backend);

    // One guess at a time: four wrong answers, then locked — the right password included.
    let user = app.register("brute").await;
    let mut statuses = Vec::new();
    for n in 0..6 {
        attacks.tried();
        statuses.push(guess(&app, &user.email, n).await);
    }
    assert_eq!(&statuses[..4], &[401, 401, 401, 401], "{statuses:?}");
    assert_eq!(&statuses[4..], &[429, 429], "{statuses:?}");
    attacks.tried();
    let locked = login(&app, &user.email, PASSWORD).await;
    locked.assert_error(429, "RATE_LIMITED");
    let retry_after: u64 = locked
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=15 * 60).contains(&retry_after), "{retry_after}");

    // The same account spelt differently is the same account.
    let spelt = app.register("spelling").await;
    for (n, email) in [
        spelt.email.to_uppercase(),
        format!("  {}  ", spelt.email),
        spelt.email.to_uppercase(),
        format!("\t{}", spelt.email),
    ]
    .iter()
    .enumerate()
    {
        attacks.tried();
        assert_eq!(guess(&app, email, n).await, 401, "{email}");
    }
    attacks.tried();
    assert_eq!(guess(&app, &spelt.email, 9).await, 429);

    // An attacker who has spent four guesses fires twenty more at once, the right password
    // among them: none may be checked, so none may succeed.
    let burst = app.register("burst").await;
    for n in 0..4 {
        attacks.tried();
        assert_eq!(guess(&app, &burst.email, n).await, 401);
    }
    let guesses: Vec<_> = (0..20)
        .map(|n| {
            let (app, email) = (app.clone(), burst.email.clone());
            tokio::spawn(async move {
                let password = if n == 10 {
                    PASSWORD.to_string()
                } else {
                    format!("parallel guess {n}")
                };
                let response = login(&app, &email, &password).await;
                (response.status.as_u16(), response.body)
            })
        })
        .collect();
    for guess in guesses {
        attacks.tried();
        let (status, body) = guess.await.expect("guess");
        assert_eq!(status, 429, "a parallel guess got through the lock: {body}");
    }

    // A burst on a fresh account: whatever the interleaving, the account ends locked, and no
    // more passwords were checked than the limit allows (each check answers 401 or 200).
    let fresh = app.register("freshburst").await;
    let guesses: Vec<_> = (0..24)
        .map(|n| {
            let (app, email) = (app.clone(), fresh.email.clone());
            tokio::spawn(async move { guess(&app, &email, n).await })
        })
        .collect();
    let mut checked = 0;
    for guess in guesses {
        attacks.tried();
        match guess.await.expect("guess") {
            401 => checked += 1,
            429 => {}
            other => panic!("a parallel guess answered {other}"),
        }
    }
    assert!(checked <= 4, "{checked} parallel guesses were checked");
    attacks.tried();
    login(&app, &fresh.email, PASSWORD)
        .await
        .assert_error(429, "RATE_LIMITED");

    // Unknown accounts lock the same way, so the lock is no existence oracle.
    let nobody = unique_email("nobody");
    let mut statuses = Vec::new();
    for n in 0..5 {
        attacks.tried();
        statuses.push(guess(&app, &nobody, n).await);
    }
    assert_eq!(statuses, vec![401, 401, 401, 401, 429]);

    // Other accounts are unaffected by all of this.
    let bystander: TestUser = app.register("bystander").await;
    assert_eq!(login(&app, &bystander.email, PASSWORD).await.status, 200);
}

crate::on_both_backends!(
    a_replayed_refresh_token_revokes_its_family_and_one_of_many_parallel_rotations_wins,
    password_guessing_is_locked_out_sequentially_in_parallel_and_for_unknown_accounts,
);
