//! Registration, login, tokens, refresh rotation, logout and profiles.

use crate::support::{Backend, PASSWORD, TestApp, unique_email};
use serde_json::json;

async fn register_returns_the_seed_shape_with_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = unique_email("reg");
    let response = app
        .post(
            "/auth/register",
            None,
            json!({"email": email, "password": PASSWORD, "firstName": "Asha", "lastName": "Rao"}),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let data = response.data();
    assert!(data["userId"].as_str().unwrap().starts_with("user_"));
    assert_eq!(data["email"], email);
    assert_eq!(data["firstName"], "Asha");
    assert_eq!(data["lastName"], "Rao");
    assert!(data["accessToken"].as_str().unwrap().split('.').count() == 3);
    assert!(!data["refreshToken"].as_str().unwrap().is_empty());
}

async fn registering_an_email_twice_is_409_whatever_its_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.register("dup").await;
    let response = app
        .post(
            "/auth/register",
            None,
            json!({"email": user.email.to_uppercase(), "password": PASSWORD, "firstName": "B", "lastName": "C"}),
        )
        .await;
    response.assert_error(409, "EMAIL_ALREADY_EXISTS");
}

async fn registration_rejects_bad_input_with_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for body in [
        json!({"email": "not-an-email", "password": PASSWORD, "firstName": "A", "lastName": "B"}),
        json!({"email": unique_email("short"), "password": "short", "firstName": "A", "lastName": "B"}),
        json!({"email": unique_email("missing"), "password": PASSWORD}),
        json!({"email": unique_email("types"), "password": 12345678, "firstName": "A", "lastName": "B"}),
        json!({"email": unique_email("role"), "password": PASSWORD, "firstName": "A", "lastName": "B", "role": "ADMIN"}),
        json!({"email": unique_email("rich"), "password": PASSWORD, "firstName": "A", "lastName": "B", "walletBalance": 100}),
    ] {
        app.post("/auth/register", None, body)
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
}

async fn login_works_and_wrong_passwords_are_401_then_429(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.register("login").await;
    let ok = app
        .post(
            "/auth/login",
            None,
            json!({"email": user.email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(ok.data()["userId"], user.id.as_str());
    assert!(ok.data()["accessToken"].is_string() && ok.data()["refreshToken"].is_string());

    let unknown = app
        .post(
            "/auth/login",
            None,
            json!({"email": unique_email("nobody"), "password": PASSWORD}),
        )
        .await;
    unknown.assert_error(401, "INVALID_CREDENTIALS");

    let mut codes = Vec::new();
    for _ in 0..6 {
        let response = app
            .post(
                "/auth/login",
                None,
                json!({"email": user.email, "password": "wrong password"}),
            )
            .await;
        codes.push(response.status.as_u16());
    }
    assert_eq!(&codes[..4], &[401, 401, 401, 401]);
    assert_eq!(codes[4], 429, "the fifth failure locks the account");
    let locked = app
        .post(
            "/auth/login",
            None,
            json!({"email": user.email, "password": PASSWORD}),
        )
        .await;
    locked.assert_error(429, "RATE_LIMITED");
    assert!(locked.header("retry-after").is_some());
}

async fn protected_endpoints_need_a_valid_bearer_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.get("/users/profile", None)
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.get("/users/profile", Some("not.a.jwt"))
        .await
        .assert_error(401, "UNAUTHORIZED");
    let response = app
        .call(
            axum::http::Method::GET,
            "/users/profile",
            None,
            None,
            &[("authorization", "Basic abc")],
        )
        .await;
    response.assert_error(401, "UNAUTHORIZED");
}

async fn refresh_rotates_and_a_replayed_refresh_token_revokes_the_family(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.register("refresh").await;
    let first = app
        .post(
            "/auth/refresh",
            None,
            json!({"refreshToken": user.refresh_token}),
        )
        .await;
    let rotated = first.data()["refreshToken"].as_str().unwrap().to_string();
    assert_ne!(rotated, user.refresh_token);
    let access = first.data()["accessToken"].as_str().unwrap().to_string();
    assert_eq!(app.get("/users/profile", Some(&access)).await.status, 200);

    // The old token again: reuse. The family dies, including the token just issued.
    app.post(
        "/auth/refresh",
        None,
        json!({"refreshToken": user.refresh_token}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
    app.post("/auth/refresh", None, json!({"refreshToken": rotated}))
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.post("/auth/refresh", None, json!({"refreshToken": "garbage"}))
        .await
        .assert_error(401, "UNAUTHORIZED");
}

async fn logout_revokes_the_refresh_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.register("logout").await;
    let response = app
        .post(
            "/auth/logout",
            Some(&user.token),
            json!({"refreshToken": user.refresh_token}),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    app.post(
        "/auth/refresh",
        None,
        json!({"refreshToken": user.refresh_token}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
}

async fn the_profile_can_be_read_and_updated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.register("profile").await;
    let profile = app.get("/users/profile", Some(&user.token)).await;
    let data = profile.data();
    assert_eq!(data["userId"], user.id.as_str());
    assert_eq!(data["walletBalance"], 0);
    assert_eq!(data["isEmailVerified"], false);
    assert_eq!(data["phoneNumber"], "+919876543210");

    let updated = app
        .put(
            "/users/profile",
            Some(&user.token),
            json!({"lastName": "Smith", "phoneNumber": "+14155550100"}),
        )
        .await;
    assert_eq!(updated.data()["lastName"], "Smith");
    assert_eq!(updated.data()["firstName"], "Asha");
    assert_eq!(
        app.get("/users/profile", Some(&user.token)).await.data()["phoneNumber"],
        "+14155550100"
    );

    app.put(
        "/users/profile",
        Some(&user.token),
        json!({"phoneNumber": "12"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.put(
        "/users/profile",
        Some(&user.token),
        json!({"email": "x@y.in"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
}

crate::on_both_backends!(
    register_returns_the_seed_shape_with_tokens,
    registering_an_email_twice_is_409_whatever_its_case,
    registration_rejects_bad_input_with_400,
    login_works_and_wrong_passwords_are_401_then_429,
    protected_endpoints_need_a_valid_bearer_token,
    refresh_rotates_and_a_replayed_refresh_token_revokes_the_family,
    logout_revokes_the_refresh_token,
    the_profile_can_be_read_and_updated,
);
