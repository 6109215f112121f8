//! Access tokens an attacker can make: `alg: none`, algorithm confusion, wrong keys, expired,
//! wrong audience or issuer, missing claims, and genuine tokens with edited claims. Every one
//! must be a 401 on a customer endpoint and on an admin endpoint.

use crate::support::{Backend, TestApp};
use crate::{Attacks, jwt_secret};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use giftify_api::auth::TokenService;
use giftify_shared::ids::UserId;
use giftify_shared::user::Role;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Sha256, Sha384, Sha512};

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("json"))
}

/// How a forged token is signed.
enum Signer<'a> {
    Unsigned,
    Hs256(&'a [u8]),
    Hs384(&'a [u8]),
    Hs512(&'a [u8]),
    Garbage,
}

fn forge(header: Value, claims: &Value, signer: Signer<'_>) -> String {
    let input = format!("{}.{}", b64(&header), b64(claims));
    let signature = match signer {
        Signer::Unsigned => Vec::new(),
        Signer::Hs256(key) => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key");
            mac.update(input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Signer::Hs384(key) => {
            let mut mac = Hmac::<Sha384>::new_from_slice(key).expect("any key");
            mac.update(input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Signer::Hs512(key) => {
            let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("any key");
            mac.update(input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Signer::Garbage => b"not a signature at all".to_vec(),
    };
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn hs256() -> Value {
    json!({"alg": "HS256", "typ": "JWT"})
}

/// Claims as the service issues them, for `sub` with `role`, valid ten more minutes.
fn claims(sub: &str, role: &str) -> Value {
    let now = Utc::now().timestamp();
    json!({
        "sub": sub, "role": role, "iss": "giftify", "aud": "giftify-api",
        "iat": now, "exp": now + 600, "jti": "forged"
    })
}

fn with(mut claims: Value, field: &str, value: Value) -> Value {
    claims[field] = value;
    claims
}

fn without(mut claims: Value, field: &str) -> Value {
    claims.as_object_mut().expect("object").remove(field);
    claims
}

/// Replaces the payload of a genuine token, keeping its header and signature.
fn tampered(genuine: &str, claims: &Value) -> String {
    let parts: Vec<&str> = genuine.split('.').collect();
    format!("{}.{}.{}", parts[0], b64(claims), parts[2])
}

async fn forged_confused_expired_and_tampered_access_tokens_are_all_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut attacks = Attacks::new("access tokens", backend);
    let user = app.register("jwt").await;
    let victim = app.register("jwtvictim").await;
    let secret = jwt_secret(&app);
    let key = secret.as_bytes();
    let attacker_key = b"attacker-chosen-key-0123456789abcdef";

    // The forger is right: a token it signs with the real key and HS256 is accepted, so every
    // refusal below is the server's doing, not a malformed test token.
    let control = forge(hs256(), &claims(&user.id, "USER"), Signer::Hs256(key));
    assert_eq!(app.get("/wallet/balance", Some(&control)).await.status, 200);

    let mine = claims(&user.id, "USER");
    let mut forged: Vec<(&str, String)> = vec![
        (
            "alg none",
            forge(
                json!({"alg": "none", "typ": "JWT"}),
                &mine,
                Signer::Unsigned,
            ),
        ),
        (
            "alg None",
            forge(json!({"alg": "None"}), &mine, Signer::Unsigned),
        ),
        (
            "alg NONE",
            forge(json!({"alg": "NONE"}), &mine, Signer::Unsigned),
        ),
        (
            "alg nOnE",
            forge(json!({"alg": "nOnE"}), &mine, Signer::Unsigned),
        ),
        (
            "alg none, signed anyway",
            forge(json!({"alg": "none"}), &mine, Signer::Hs256(key)),
        ),
        (
            "no alg at all",
            forge(json!({"typ": "JWT"}), &mine, Signer::Hs256(key)),
        ),
        (
            "HS384 with the real key",
            forge(json!({"alg": "HS384"}), &mine, Signer::Hs384(key)),
        ),
        (
            "HS512 with the real key",
            forge(json!({"alg": "HS512"}), &mine, Signer::Hs512(key)),
        ),
        // Algorithm confusion: an asymmetric algorithm, MAC'd with the HMAC secret used as if
        // it were the public key.
        (
            "RS256 confusion",
            forge(json!({"alg": "RS256"}), &mine, Signer::Hs256(key)),
        ),
        (
            "RS512 confusion",
            forge(json!({"alg": "RS512"}), &mine, Signer::Hs512(key)),
        ),
        (
            "ES256 confusion",
            forge(json!({"alg": "ES256"}), &mine, Signer::Hs256(key)),
        ),
        (
            "PS256 confusion",
            forge(json!({"alg": "PS256"}), &mine, Signer::Hs256(key)),
        ),
        (
            "EdDSA confusion",
            forge(json!({"alg": "EdDSA"}), &mine, Signer::Hs256(key)),
        ),
        (
            "wrong key",
            forge(hs256(), &mine, Signer::Hs256(attacker_key)),
        ),
        ("empty key", forge(hs256(), &mine, Signer::Hs256(b""))),
        (
            "kid pointing at an empty file",
            forge(
                json!({"alg": "HS256", "kid": "../../../../dev/null"}),
                &mine,
                Signer::Hs256(b""),
            ),
        ),
        (
            "embedded jwk with the attacker's key",
            forge(
                json!({"alg": "HS256", "jwk": {"kty": "oct", "k": URL_SAFE_NO_PAD.encode(attacker_key)}}),
                &mine,
                Signer::Hs256(attacker_key),
            ),
        ),
        (
            "jku to the attacker's keys",
            forge(
                json!({"alg": "HS256", "jku": "http://127.0.0.1:9/jwks.json"}),
                &mine,
                Signer::Hs256(attacker_key),
            ),
        ),
        ("garbage signature", forge(hs256(), &mine, Signer::Garbage)),
        (
            "wrong audience",
            forge(
                hs256(),
                &with(mine.clone(), "aud", json!("someone-else")),
                Signer::Hs256(key),
            ),
        ),
        (
            "audience list without ours",
            forge(
                hs256(),
                &with(mine.clone(), "aud", json!(["a", "b"])),
                Signer::Hs256(key),
            ),
        ),
        (
            "wrong issuer",
            forge(
                hs256(),
                &with(mine.clone(), "iss", json!("evil")),
                Signer::Hs256(key),
            ),
        ),
        (
            "no exp",
            forge(hs256(), &without(mine.clone(), "exp"), Signer::Hs256(key)),
        ),
        (
            "no iss",
            forge(hs256(), &without(mine.clone(), "iss"), Signer::Hs256(key)),
        ),
        (
            "no aud",
            forge(hs256(), &without(mine.clone(), "aud"), Signer::Hs256(key)),
        ),
        (
            "no sub",
            forge(hs256(), &without(mine.clone(), "sub"), Signer::Hs256(key)),
        ),
        (
            "exp as a string",
            forge(
                hs256(),
                &with(mine.clone(), "exp", json!("99999999999")),
                Signer::Hs256(key),
            ),
        ),
        (
            "role SUPERUSER",
            forge(
                hs256(),
                &with(mine.clone(), "role", json!("SUPERUSER")),
                Signer::Hs256(key),
            ),
        ),
        (
            "role lower-case admin",
            forge(
                hs256(),
                &with(mine.clone(), "role", json!("admin")),
                Signer::Hs256(key),
            ),
        ),
        (
            "sub not a user id",
            forge(
                hs256(),
                &with(mine.clone(), "sub", json!("admin")),
                Signer::Hs256(key),
            ),
        ),
        (
            "sub with SQL",
            forge(
                hs256(),
                &with(mine.clone(), "sub", json!("user_' OR '1'='1")),
                Signer::Hs256(key),
            ),
        ),
        // Genuine tokens with edited claims, keeping the original signature.
        (
            "role USER→ADMIN, original signature",
            tampered(&user.token, &claims(&user.id, "ADMIN")),
        ),
        (
            "sub → another user, original signature",
            tampered(&user.token, &claims(&victim.id, "USER")),
        ),
        (
            "exp extended, original signature",
            tampered(
                &user.token,
                &with(
                    mine.clone(),
                    "exp",
                    json!(Utc::now().timestamp() + 86_400 * 365),
                ),
            ),
        ),
        (
            "signature stripped",
            format!("{}.", user.token.rsplit_once('.').expect("jwt").0),
        ),
        ("signature of another token", {
            let (head, _) = user.token.rsplit_once('.').expect("jwt");
            format!("{head}.{}", victim.token.rsplit_once('.').expect("jwt").1)
        }),
        ("four segments", format!("{}.extra", user.token)),
        (
            "two segments",
            user.token.split('.').take(2).collect::<Vec<_>>().join("."),
        ),
        ("not base64", "!!!.@@@.###".to_string()),
    ];
    forged.push(("empty string", String::new()));

    for (label, token) in &forged {
        for path in ["/wallet/balance", "/admin/inventory"] {
            attacks.tried();
            let response = app.get(path, Some(token)).await;
            assert_eq!(response.status, 401, "{label} on {path}: {}", response.body);
            assert_eq!(response.code(), "UNAUTHORIZED", "{label} on {path}");
            assert!(response.header("www-authenticate").is_some(), "{label}");
        }
    }

    // Expired, though correctly signed: TOKEN_EXPIRED, so the client knows to refresh.
    let expired = forge(
        hs256(),
        &with(mine.clone(), "exp", json!(Utc::now().timestamp() - 120)),
        Signer::Hs256(key),
    );
    let issued_long_ago = TokenService::new(&secret.clone().into())
        .issue_at(
            &UserId::parse(&user.id).expect("user id"),
            Role::User,
            0,
            Utc::now() - chrono::Duration::minutes(16),
        )
        .expect("token");
    for (label, token) in [
        ("expired", expired),
        ("issued 16 minutes ago", issued_long_ago),
    ] {
        attacks.tried();
        app.get("/wallet/balance", Some(&token))
            .await
            .assert_error(401, "TOKEN_EXPIRED");
        let _ = label;
    }

    // Authorization headers that are not a bearer token.
    for header in [
        "Bearer",
        "Bearer ",
        "Basic YWRtaW46YWRtaW4=",
        "Token abc",
        &format!("Bearer {} extra", user.token),
        &format!("Bearer{}", user.token),
    ] {
        attacks.tried();
        let response = app
            .call(
                axum::http::Method::GET,
                "/wallet/balance",
                None,
                None,
                &[("authorization", header)],
            )
            .await;
        response.assert_error(401, "UNAUTHORIZED");
    }

    // Even a correctly signed ADMIN token (a leaked key) does not make a customer an admin:
    // admin access re-reads the account's role.
    attacks.tried();
    let leaked_key_admin = forge(hs256(), &claims(&user.id, "ADMIN"), Signer::Hs256(key));
    app.get("/admin/inventory", Some(&leaked_key_admin))
        .await
        .assert_error(403, "FORBIDDEN");
    // A customer's own genuine token is 403 on admin endpoints, never 200.
    for path in ["/admin/inventory", "/admin/orders", "/admin/analytics"] {
        attacks.tried();
        app.get(path, Some(&user.token))
            .await
            .assert_error(403, "FORBIDDEN");
    }
}

crate::on_both_backends!(forged_confused_expired_and_tampered_access_tokens_are_all_refused);
