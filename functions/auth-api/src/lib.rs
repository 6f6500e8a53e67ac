//! auth-api: register, login, refresh and logout, wrapping a Cognito user
//! pool. It never issues tokens itself; API Gateway's JWT authorizer checks
//! what Cognito issued on every other route.

use assetbox_shared::config::{self, ConfigError, Settings, vars};
use assetbox_shared::error::{ApiError, ErrorBody};
use assetbox_shared::http::{ApiJson, created};
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::types::{AttributeType, AuthFlowType};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

pub const EMAIL_MAX_CHARS: usize = 254;
/// Cognito's own ceiling; its pool policy sets the floor (we check 8 too, so a
/// short password is a field error before any network call).
pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 256;

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub user_pool_id: String,
    pub client_id: String,
    /// Confirms users at registration. The product has no e-mail step yet;
    /// with `false`, users must be confirmed by Cognito's own flow.
    pub auto_confirm: bool,
}

impl AuthConfig {
    pub fn from_settings(settings: &dyn Settings) -> Result<Self, ConfigError> {
        Ok(Self {
            user_pool_id: config::required(settings, vars::USER_POOL_ID)?,
            client_id: config::required(settings, vars::USER_POOL_CLIENT_ID)?,
            auto_confirm: config::parsed_or(settings, vars::AUTO_CONFIRM_USERS, true)?,
        })
    }
}

/// The function as it runs, wired from its settings (see catalog-api's `app`).
pub fn app(settings: &dyn Settings, sdk: &aws_config::SdkConfig) -> Result<Router, ConfigError> {
    Ok(router(AuthState {
        cognito: Client::new(sdk),
        config: AuthConfig::from_settings(settings)?,
    }))
}

#[derive(Clone)]
pub struct AuthState {
    pub cognito: Client,
    pub config: AuthConfig,
}

pub fn router(state: AuthState) -> Router {
    Router::new()
        .route("/api/auth/register", post(register))
        .route("/api/auth/login", post(login))
        .route("/api/auth/refresh", post(refresh))
        .route("/api/auth/logout", post(logout))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    paths(register, login, refresh, logout),
    components(schemas(Credentials, Registered, Tokens, RefreshRequest, ErrorBody))
)]
pub struct AuthApiDoc;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// Case and surrounding white space do not matter; at most 254
    /// characters.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// 8–256 characters.
    #[schema(format = Password, min_length = 8, max_length = 256)]
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Registered {
    /// The e-mail as stored: trimmed, lower-case. (The user's id is the
    /// `sub` of the tokens login gives: a registration answers the same for
    /// an e-mail that has an account, so it cannot carry one.)
    #[schema(format = Email)]
    pub email: String,
    /// Whether the account can log in already.
    pub confirmed: bool,
}

/// Tokens for `Authorization: Bearer <access_token>`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Tokens {
    /// The bearer token for every protected route (a JWT).
    pub access_token: String,
    /// A JWT with the user's identity claims (also accepted as bearer token).
    pub id_token: String,
    /// Absent on refresh: the refresh token you sent stays valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Seconds until the access and id tokens expire.
    pub expires_in: i32,
    #[schema(examples("Bearer"))]
    pub token_type: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The `refresh_token` of a login.
    #[schema(max_length = 8192, pattern = r"\S")]
    pub refresh_token: String,
}

impl Credentials {
    /// Normalises the e-mail (trimmed, lower-case) and checks both fields,
    /// collecting every problem into one 400.
    pub fn validate(self) -> Result<(String, String), ApiError> {
        let mut fields = std::collections::BTreeMap::new();
        let email = self.email.trim().to_lowercase();
        if let Err(reason) = check_email(&email) {
            fields.insert("email".to_owned(), reason);
        }
        let chars = self.password.chars().count();
        if !(PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&chars) {
            fields.insert(
                "password".to_owned(),
                format!("must be {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters"),
            );
        }
        if fields.is_empty() {
            Ok((email, self.password))
        } else {
            Err(ApiError::validation(fields))
        }
    }
}

fn check_email(email: &str) -> Result<(), String> {
    let (local, domain) = email
        .rsplit_once('@')
        .ok_or_else(|| "must be an e-mail address".to_owned())?;
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
    if local.is_empty() || !domain_ok || email.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("must be an e-mail address".into());
    }
    if email.chars().count() > EMAIL_MAX_CHARS {
        return Err(format!("must be at most {EMAIL_MAX_CHARS} characters"));
    }
    Ok(())
}

/// Maps Cognito's error codes to our contract. Wrong password and unknown
/// user read the same, so the API does not reveal which e-mails exist.
fn cognito_error<E, R>(err: SdkError<E, R>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = match &err {
        SdkError::ServiceError(service) => service.err().code().map(str::to_owned),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            return ApiError::unavailable(
                aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(&err),
            );
        }
        _ => None,
    };
    match code.as_deref() {
        Some("NotAuthorizedException" | "UserNotFoundException") => {
            ApiError::unauthorized("invalid credentials or token")
        }
        Some("InvalidPasswordException") => {
            ApiError::field("password", "does not meet the password policy")
        }
        // A value Cognito's own rules refuse, e.g. an e-mail address that
        // passed ours but not its format check: the caller's to fix.
        Some("InvalidParameterException") => ApiError::bad_request(
            "the identity provider refused a value of this request (e.g. the e-mail address)",
        ),
        Some("UserNotConfirmedException") => ApiError::forbidden("account is not confirmed yet"),
        Some("TooManyRequestsException" | "LimitExceededException") => {
            ApiError::too_many_requests("too many attempts, retry later")
        }
        _ => ApiError::internal(aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(
            &err,
        )),
    }
}

/// Create an account
///
/// Public. Log in afterwards with the same e-mail and password. An e-mail
/// that already has an account gets the same answer and no second account
/// (the existing one is not changed): registration does not tell who has an
/// account, as login does not.
#[utoipa::path(
    post, path = "/api/auth/register", tag = "auth",
    request_body = Credentials,
    responses(
        (status = 201, description = "The new account.", body = Registered),
        (status = 400, description = "The e-mail or password breaks a rule (`fields` names which), or the body is not valid JSON of this shape.", body = ErrorBody),
        (status = 429, description = "Too many attempts; retry later.", body = ErrorBody),
    )
)]
async fn register(
    State(state): State<AuthState>,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<impl IntoResponse, ApiError> {
    let (email, password) = body.validate()?;
    let signed_up = state
        .cognito
        .sign_up()
        .client_id(&state.config.client_id)
        .username(&email)
        .password(password)
        .user_attributes(
            AttributeType::builder()
                .name("email")
                .value(&email)
                .build()
                .map_err(ApiError::internal)?,
        )
        .send()
        .await;
    let confirmed = match signed_up {
        Ok(signed_up) => {
            if state.config.auto_confirm && !signed_up.user_confirmed {
                state
                    .cognito
                    .admin_confirm_sign_up()
                    .user_pool_id(&state.config.user_pool_id)
                    .username(&email)
                    .send()
                    .await
                    .map_err(cognito_error)?;
            }
            state.config.auto_confirm || signed_up.user_confirmed
        }
        // The same answer as a new account's, and nothing changes.
        Err(err) if err.code() == Some("UsernameExistsException") => state.config.auto_confirm,
        Err(err) => return Err(cognito_error(err)),
    };
    Ok(created(Registered { email, confirmed }))
}

/// Log in
///
/// Public. Exchanges e-mail and password for tokens.
#[utoipa::path(
    post, path = "/api/auth/login", tag = "auth",
    request_body = Credentials,
    responses(
        (status = 200, description = "The tokens.", body = Tokens),
        (status = 400, description = "The e-mail or password breaks a rule, or the body is not valid JSON of this shape.", body = ErrorBody),
        (status = 401, description = "Wrong e-mail or password (which one is not said).", body = ErrorBody),
        (status = 403, description = "The account is not confirmed yet, or signing in needs a step this API does not offer.", body = ErrorBody),
        (status = 429, description = "Too many attempts; retry later.", body = ErrorBody),
    )
)]
async fn login(
    State(state): State<AuthState>,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Json<Tokens>, ApiError> {
    let (email, password) = body.validate()?;
    let out = state
        .cognito
        .initiate_auth()
        .client_id(&state.config.client_id)
        .auth_flow(AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", email)
        .auth_parameters("PASSWORD", password)
        .send()
        .await
        .map_err(cognito_error)?;
    tokens(out.authentication_result)
}

/// Refresh the tokens
///
/// Public. New access and id tokens for a refresh token.
#[utoipa::path(
    post, path = "/api/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens (without `refresh_token`).", body = Tokens),
        (status = 400, description = "`refresh_token` is empty or too long, or the body is not valid JSON of this shape.", body = ErrorBody),
        (status = 401, description = "The refresh token is invalid, expired or revoked.", body = ErrorBody),
        (status = 403, description = "The account cannot sign in (e.g. not confirmed).", body = ErrorBody),
        (status = 429, description = "Too many attempts; retry later.", body = ErrorBody),
    )
)]
async fn refresh(
    State(state): State<AuthState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Json<Tokens>, ApiError> {
    if body.refresh_token.trim().is_empty() || body.refresh_token.len() > 8192 {
        return Err(ApiError::field("refresh_token", "must be a refresh token"));
    }
    let out = state
        .cognito
        .initiate_auth()
        .client_id(&state.config.client_id)
        .auth_flow(AuthFlowType::RefreshTokenAuth)
        .auth_parameters("REFRESH_TOKEN", body.refresh_token)
        .send()
        .await
        .map_err(cognito_error)?;
    tokens(out.authentication_result)
}

/// Log out everywhere
///
/// Revokes all of the user's refresh tokens, on every device.
// The route sits behind the JWT authorizer; the access token is only passed
// on to Cognito, which checks it again.
#[utoipa::path(
    post, path = "/api/auth/logout", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out."),
        (status = 401, description = "The identity provider refused the token (e.g. it is an id token, or was revoked).", body = ErrorBody),
        (status = 429, description = "Too many attempts; retry later.", body = ErrorBody),
    )
)]
async fn logout(
    State(state): State<AuthState>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("missing or invalid bearer token"))?;
    state
        .cognito
        .global_sign_out()
        .access_token(token)
        .send()
        .await
        .map_err(cognito_error)?;
    Ok(StatusCode::NO_CONTENT)
}

fn tokens(
    result: Option<aws_sdk_cognitoidentityprovider::types::AuthenticationResultType>,
) -> Result<Json<Tokens>, ApiError> {
    // No result means Cognito wants a challenge (e.g. a new password), which
    // this API does not offer.
    let result = result
        .ok_or_else(|| ApiError::forbidden("sign-in needs a step this API does not support"))?;
    match (result.access_token, result.id_token) {
        (Some(access_token), Some(id_token)) => Ok(Json(Tokens {
            access_token,
            id_token,
            refresh_token: result.refresh_token,
            expires_in: result.expires_in,
            token_type: result.token_type.unwrap_or_else(|| "Bearer".into()),
        })),
        _ => Err(ApiError::internal("Cognito returned no tokens")),
    }
}

#[cfg(test)]
mod tests {
    use aws_credential_types::Credentials as AwsCredentials;
    use serde_json::Value;

    use super::*;

    /// Runs a sample event through lambda_http's adapter, with Cognito at a
    /// loopback port where nothing listens.
    async fn invoke(event: &str) -> (u16, Value) {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .endpoint_url("http://127.0.0.1:9")
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    AwsCredentials::new("test", "test", None, None, "test"),
                ),
            )
            .build();
        let settings = std::collections::HashMap::from([
            (vars::USER_POOL_ID.to_owned(), "eu-west-1_sample".to_owned()),
            (
                vars::USER_POOL_CLIENT_ID.to_owned(),
                "sampleclientid".to_owned(),
            ),
        ]);
        let service = assetbox_shared::http::service(app(&settings, &sdk).unwrap());
        let event = serde_json::from_str(event).unwrap();
        let response = assetbox_shared::http::invoke(&service, event, "test")
            .await
            .unwrap();
        let response = serde_json::to_value(response).unwrap();
        let body = serde_json::from_str(response["body"].as_str().unwrap_or("null"))
            .unwrap_or(Value::Null);
        (response["statusCode"].as_u64().unwrap() as u16, body)
    }

    #[tokio::test]
    async fn invalid_registration_is_refused_before_calling_cognito() {
        let (status, body) = invoke(include_str!(
            "../../../events/auth-api/register-bad-email.json"
        ))
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["error"]["fields"]["email"],
            "must be an e-mail address"
        );
    }

    #[tokio::test]
    async fn unreachable_cognito_is_a_503_that_names_nothing_internal() {
        let (status, body) = invoke(include_str!("../../../events/auth-api/login.json")).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"]["code"], "unavailable");
        assert!(!body.to_string().contains("127.0.0.1"));
    }

    fn creds(email: &str, password: &str) -> Credentials {
        Credentials {
            email: email.into(),
            password: password.into(),
        }
    }

    #[test]
    fn normalises_email() {
        let (email, _) = creds("  Ada@Example.COM ", "long enough")
            .validate()
            .unwrap();
        assert_eq!(email, "ada@example.com");
    }

    #[test]
    fn collects_every_field_error() {
        let err = creds("nope", "short").validate().unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(err.fields.contains_key("email"));
        assert!(err.fields.contains_key("password"));
    }

    #[test]
    fn rejects_malformed_emails() {
        for bad in [
            "", "@x.io", "a@", "a@b", "a@.io", "a b@x.io", "a@x.io.", "a@x_y.io",
        ] {
            assert!(check_email(bad).is_err(), "{bad:?}");
        }
        assert!(check_email(&format!("{}@x.io", "a".repeat(250))).is_err());
        assert!(check_email("a.b+tag@sub.example.co").is_ok());
    }
}
