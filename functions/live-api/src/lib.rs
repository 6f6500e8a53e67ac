//! live-api: the routes of the live WebSocket API. `$connect` (after the
//! authorizer let the token in) records the connection and its owner;
//! `subscribe` / `unsubscribe` (`{"action": "subscribe", "project": "…"}`)
//! follow a project of that owner — another user's project is refused
//! exactly like an unknown one —; `$disconnect` forgets the connection and
//! what it followed. The answer to a subscribe goes back on the socket (the
//! routes have a route response): `{"type": "subscribed", "project": …}` or
//! `{"type": "error", "status": 404, …}`.

use assetbox_shared::config::{self, ConfigError, Settings, vars};
use assetbox_shared::db::Table;
use assetbox_shared::live::{self, Reply, Subscribed, SubscriptionRequest};
use assetbox_shared::{aws, clock, validation};
use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;

pub struct LiveApi {
    table: Table,
}

/// A store failure: API Gateway answers the client 500 (or refuses the
/// connection), nothing half-done stays.
type Failure = lambda_runtime::Error;

fn answer(status: i64, body: Option<String>) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = status;
    response.body = body.map(Body::Text);
    response
}

fn reply(reply: &Reply) -> ApiGatewayProxyResponse {
    answer(
        200,
        Some(serde_json::to_string(reply).expect("a reply serialises")),
    )
}

impl LiveApi {
    pub fn from_settings(
        settings: &dyn Settings,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            table: Table::new(
                aws::dynamodb(sdk),
                config::required(settings, vars::TABLE_NAME)?,
            ),
        })
    }

    pub async fn handle(
        &self,
        request: ApiGatewayWebsocketProxyRequest,
    ) -> Result<ApiGatewayProxyResponse, Failure> {
        let context = &request.request_context;
        let Some(connection) = context.connection_id.as_deref() else {
            return Ok(answer(400, None));
        };
        let now = clock::now().unix_timestamp();
        match context.route_key.as_deref().unwrap_or("$default") {
            "$connect" => {
                let Some(owner) = context
                    .authorizer
                    .fields
                    .get("owner")
                    .and_then(|o| o.as_str())
                    .filter(|o| !o.is_empty())
                else {
                    // Only the authorizer lets anyone this far.
                    return Ok(answer(403, None));
                };
                // API Gateway closes it after two hours; its events stop when
                // the token it came with expires, if that is sooner.
                let token_expires = context
                    .authorizer
                    .fields
                    .get("token_expires")
                    .and_then(|e| e.as_i64().or_else(|| e.as_str()?.parse().ok()))
                    .unwrap_or(i64::MAX);
                let expires = (context.connected_at / 1000 + live::CONNECTION_LIFETIME_SECS)
                    .min(token_expires);
                let at = clock::rfc3339(clock::now());
                self.table
                    .open_connection(connection, owner, &at, expires)
                    .await?;
                Ok(answer(200, None))
            }
            "$disconnect" => {
                self.table.close_connection(connection).await?;
                Ok(answer(200, None))
            }
            route @ ("subscribe" | "unsubscribe") => {
                let Some(project) = project_of(request.body.as_deref()) else {
                    return Ok(reply(&Reply::refused(
                        400,
                        None,
                        "send {\"action\": \"subscribe\", \"project\": \"<project id>\"}",
                    )));
                };
                let Some(open) = self.table.connection(connection, now).await? else {
                    return Ok(reply(&Reply::refused(
                        410,
                        Some(&project),
                        "this connection has ended; connect again",
                    )));
                };
                if route == "unsubscribe" {
                    let done = self
                        .table
                        .unsubscribe(connection, &open.owner, &project, now)
                        .await?;
                    return Ok(reply(&if done {
                        Reply::done("unsubscribed", &project)
                    } else {
                        Reply::refused(409, Some(&project), "a concurrent change; send it again")
                    }));
                }
                let outcome = self
                    .table
                    .subscribe(connection, &open.owner, &project, open.expires, now)
                    .await?;
                Ok(reply(&match outcome {
                    Subscribed::Yes => Reply::done("subscribed", &project),
                    Subscribed::UnknownProject => {
                        Reply::refused(404, Some(&project), "project not found")
                    }
                    Subscribed::TooMany => Reply::refused(
                        409,
                        Some(&project),
                        format!(
                            "a connection follows at most {} projects",
                            live::MAX_SUBSCRIPTIONS
                        ),
                    ),
                    Subscribed::NoConnection => Reply::refused(
                        410,
                        Some(&project),
                        "this connection has ended; connect again",
                    ),
                    Subscribed::Clashed => {
                        Reply::refused(409, Some(&project), "a concurrent change; send it again")
                    }
                }))
            }
            _ => Ok(reply(&Reply::refused(
                400,
                None,
                "unknown action: use \"subscribe\" or \"unsubscribe\"",
            ))),
        }
    }
}

/// The project a subscribe or unsubscribe names: a ULID, as every id (ids
/// go into keys, so nothing else is accepted).
fn project_of(body: Option<&str>) -> Option<String> {
    let request: SubscriptionRequest = serde_json::from_str(body?).ok()?;
    let id = request.project.trim();
    validation::is_ulid(id).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_ids_are_projects() {
        let of = |b: &str| project_of(Some(b));
        assert_eq!(
            of(r#"{"action":"subscribe","project":"01JEXAMP1EPR0JECT000000000"}"#),
            Some("01JEXAMP1EPR0JECT000000000".into())
        );
        assert_eq!(of(r#"{"action":"subscribe","project":"A#B"}"#), None);
        assert_eq!(of(r#"{"action":"subscribe"}"#), None);
        assert_eq!(of("not json"), None);
        assert_eq!(project_of(None), None);
    }
}
