//! auth-api end to end against Cognito in the emulator.

use assetbox_e2e::{Client, jwt_claims};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn register_login_refresh_logout() {
    let api = Client::new();
    let user = api.new_user().await;

    // Tokens live 15 minutes (the template's AccessTokenValidity): a token
    // works after logout until it expires, so that window is kept short.
    let claims = jwt_claims(&user.access_token);
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 15 * 60, "{claims}");

    // The access token works on a protected route and names the user.
    let list = api.get("/api/projects/", Some(&user.access_token)).await;
    assert_eq!(list.status, StatusCode::OK);

    let refreshed = api
        .post(
            "/api/auth/refresh",
            None,
            &json!({ "refresh_token": user.refresh_token }),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{:?}", refreshed.body);
    let new_access = refreshed.body["access_token"].as_str().unwrap().to_owned();
    assert_ne!(new_access, user.access_token);
    assert_eq!(
        api.get("/api/projects/", Some(&new_access)).await.status,
        StatusCode::OK
    );

    // Logout is behind the authorizer.
    assert_eq!(
        api.post("/api/auth/logout", None, &json!({})).await.status,
        StatusCode::UNAUTHORIZED
    );
    let out = api
        .post("/api/auth/logout", Some(&new_access), &json!({}))
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{:?}", out.body);
    let after = api
        .post(
            "/api/auth/refresh",
            None,
            &json!({ "refresh_token": user.refresh_token }),
        )
        .await;
    assert_eq!(
        after.status,
        StatusCode::UNAUTHORIZED,
        "refresh token survived logout"
    );
}

#[tokio::test]
async fn registration_rules() {
    let api = Client::new();
    let user = api.new_user().await;

    // An e-mail that has an account answers like a new one: registration
    // does not tell who has an account. No second account is made and the
    // first keeps its password.
    let fresh = api
        .post(
            "/api/auth/register",
            None,
            &json!({ "email": format!("new-{}@example.com", ulid::Ulid::new()), "password": "another password" }),
        )
        .await;
    let again = api
        .post(
            "/api/auth/register",
            None,
            &json!({ "email": user.email.to_uppercase(), "password": "another password" }),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{:?}", again.body);
    assert_eq!(again.status, fresh.status);
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&again.body), keys(&fresh.body));
    assert_eq!(again.body["email"], user.email.to_lowercase());
    assert_eq!(again.body["confirmed"], fresh.body["confirmed"]);
    let with_new = api
        .post(
            "/api/auth/login",
            None,
            &json!({ "email": user.email, "password": "another password" }),
        )
        .await;
    assert_eq!(with_new.status, StatusCode::UNAUTHORIZED);
    let with_old = api
        .post(
            "/api/auth/login",
            None,
            &json!({ "email": user.email, "password": user.password }),
        )
        .await;
    assert_eq!(with_old.status, StatusCode::OK, "{:?}", with_old.body);

    let bad = api
        .post(
            "/api/auth/register",
            None,
            &json!({ "email": "not-an-email", "password": "short" }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.field_error("email").is_some());
    assert!(bad.field_error("password").is_some());

    let missing = api
        .post("/api/auth/register", None, &json!({ "email": "a@b.io" }))
        .await;
    assert_eq!(missing.field_error("password"), Some("is required"));

    // No account was made for the refused e-mail.
    let login = api
        .post(
            "/api/auth/login",
            None,
            &json!({ "email": "not-an-email", "password": "short" }),
        )
        .await;
    assert_eq!(login.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_read_the_same() {
    let api = Client::new();
    let user = api.new_user().await;
    let wrong = api
        .post(
            "/api/auth/login",
            None,
            &json!({ "email": user.email, "password": "wrong password" }),
        )
        .await;
    let unknown = api
        .post(
            "/api/auth/login",
            None,
            &json!({ "email": "nobody-here@example.com", "password": "wrong password" }),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.body, unknown.body);

    let refresh = api
        .post(
            "/api/auth/refresh",
            None,
            &json!({ "refresh_token": "forged" }),
        )
        .await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED);
}
