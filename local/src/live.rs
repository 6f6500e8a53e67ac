//! The live WebSocket API, locally: API Gateway's side of a WebSocket API
//! on loopback. `$connect` runs the template's Lambda authorizer on the
//! token in the query string (none → 401, denied → 403), then the
//! `$connect` route's function (a non-2xx answer refuses the upgrade);
//! each text frame is routed by its `action` (else `$default`), and the
//! function's body comes back on the socket when the route has a route
//! response; a close runs `$disconnect`. The management API the push
//! function calls through the real SDK is served under the stage:
//! `POST|GET|DELETE /<stage>/@connections/<id>` (410 `GoneException` for
//! a connection that is not open). Not emulated: the 10-minute idle and
//! 2-hour limits, and frame size limits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use aws_lambda_events::encodings::Body as LambdaBody;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::functions::LocalFunction;
use crate::gateway::BoundFunction;
use crate::template::WebSocketApi;

struct OpenConnection {
    sender: mpsc::UnboundedSender<Message>,
    connected_at_ms: i64,
    source_ip: String,
    last_active_ms: i64,
}

pub struct LiveGateway {
    api: WebSocketApi,
    api_id: String,
    functions: HashMap<String, Arc<BoundFunction>>,
    connections: Mutex<HashMap<String, OpenConnection>>,
    /// The pool's public keys, served for the authorizer (moto's own JWKS
    /// route fails in server mode).
    jwks: String,
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// An id like API Gateway's (`L0SM9cOFvHcCIhw=`).
fn connection_id() -> String {
    let bytes: [u8; 10] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn text_of(response: &ApiGatewayProxyResponse) -> Option<String> {
    match response.body.as_ref()? {
        LambdaBody::Text(t) => Some(t.clone()),
        LambdaBody::Binary(b) => String::from_utf8(b.clone()).ok(),
        _ => None,
    }
}

impl LiveGateway {
    pub fn new(
        api: WebSocketApi,
        functions: &HashMap<String, Arc<BoundFunction>>,
        jwks: String,
    ) -> anyhow::Result<Self> {
        let mut bound = HashMap::new();
        for route in api.routes.values() {
            for name in [
                Some(&route.function),
                route.authorizer.as_ref().map(|a| &a.function),
            ]
            .into_iter()
            .flatten()
            {
                let function = functions
                    .get(name)
                    .ok_or_else(|| anyhow::anyhow!("live route of unknown function {name}"))?;
                bound.insert(name.clone(), function.clone());
            }
        }
        Ok(Self {
            api,
            api_id: "live0local".into(),
            functions: bound,
            connections: Mutex::default(),
            jwks,
        })
    }

    fn request_context(
        &self,
        route_key: &str,
        event_type: &str,
        connection: &str,
        connected_at_ms: i64,
        source_ip: &str,
    ) -> Value {
        let now = now_ms();
        json!({
            "routeKey": route_key,
            "eventType": event_type,
            "connectionId": connection,
            "connectedAt": connected_at_ms,
            "requestTimeEpoch": now,
            "requestId": ulid::Ulid::new().to_string(),
            "messageDirection": "IN",
            "apiId": self.api_id,
            "stage": self.api.stage,
            "domainName": "127.0.0.1",
            "identity": {"sourceIp": source_ip},
        })
    }

    /// Runs a route's function on an event; `None` when it failed (API
    /// Gateway answers the client with an internal error then).
    async fn invoke_route(&self, route_key: &str, event: Value) -> Option<ApiGatewayProxyResponse> {
        let route = self.api.routes.get(route_key)?;
        let bound = self.functions.get(&route.function)?;
        let LocalFunction::WebSocket(api) = &bound.function else {
            tracing::error!(
                function = bound.name,
                "a live route's function takes no WebSocket events"
            );
            return None;
        };
        let request = serde_json::from_value(event).ok()?;
        match tokio::time::timeout(bound.timeout, api.handle(request)).await {
            Ok(Ok(response)) => Some(response),
            Ok(Err(e)) => {
                tracing::warn!(function = bound.name, error = %e, "live route failed");
                None
            }
            Err(_) => {
                tracing::warn!(function = bound.name, "live route timed out");
                None
            }
        }
    }

    /// Runs `$connect`'s authorizer: the context to hand the route, or the
    /// status that refuses the connection.
    async fn authorize(
        &self,
        query: &HashMap<String, String>,
        headers: &HeaderMap,
        context: &Value,
    ) -> Result<Option<Value>, StatusCode> {
        let Some(spec) = self
            .api
            .routes
            .get("$connect")
            .and_then(|r| r.authorizer.as_ref())
        else {
            return Ok(None);
        };
        let Some(token) = query.get(&spec.token_parameter).filter(|t| !t.is_empty()) else {
            return Err(StatusCode::UNAUTHORIZED);
        };
        let bound = self
            .functions
            .get(&spec.function)
            .ok_or(StatusCode::INTERNAL_SERVER_ERROR)?;
        let LocalFunction::Authorizer(authorizer) = &bound.function else {
            return Err(StatusCode::INTERNAL_SERVER_ERROR);
        };
        let header_map: serde_json::Map<String, Value> = headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), json!(v.to_str().ok()?))))
            .collect();
        let event = json!({
            "type": "REQUEST",
            "methodArn": format!(
                "arn:aws:execute-api:{}:{}:{}/{}/$connect",
                crate::provision::REGION, crate::provision::ACCOUNT_ID, self.api_id, self.api.stage
            ),
            "headers": header_map,
            "queryStringParameters": {spec.token_parameter.clone(): token},
            "requestContext": context,
        });
        let request =
            serde_json::from_value(event).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        let response = match tokio::time::timeout(bound.timeout, authorizer.handle(request)).await {
            Ok(Ok(response)) => response,
            _ => return Err(StatusCode::INTERNAL_SERVER_ERROR),
        };
        if !live_authorizer::allows(&response) {
            return Err(StatusCode::FORBIDDEN);
        }
        let mut fields = match response.context {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        fields.insert("principalId".into(), json!(response.principal_id));
        Ok(Some(Value::Object(fields)))
    }

    /// A frame from the client: route it, answer when the route does.
    async fn on_message(
        &self,
        connection: &str,
        connected_at_ms: i64,
        text: &str,
    ) -> Option<String> {
        let action = serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| v.get("action").and_then(Value::as_str).map(str::to_owned));
        let route_key = action
            .filter(|a| self.api.routes.contains_key(a))
            .unwrap_or_else(|| "$default".to_owned());
        let route = self.api.routes.get(&route_key)?;
        let event = json!({
            "requestContext": self.request_context(&route_key, "MESSAGE", connection, connected_at_ms, "127.0.0.1"),
            "body": text,
            "isBase64Encoded": false,
        });
        let answers = route.answers;
        let response = self.invoke_route(&route_key, event).await;
        if !answers {
            return None;
        }
        Some(match response {
            Some(r) => text_of(&r).unwrap_or_default(),
            None => {
                json!({"message": "Internal server error", "connectionId": connection}).to_string()
            }
        })
    }

    async fn on_close(&self, connection: &str, connected_at_ms: i64) {
        self.connections
            .lock()
            .expect("connections")
            .remove(connection);
        let event = json!({
            "requestContext": self.request_context("$disconnect", "DISCONNECT", connection, connected_at_ms, "127.0.0.1"),
            "isBase64Encoded": false,
        });
        self.invoke_route("$disconnect", event).await;
    }
}

async fn connect(
    State(gateway): State<Arc<LiveGateway>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let connection = connection_id();
    let connected_at_ms = now_ms();
    let context = gateway.request_context(
        "$connect",
        "CONNECT",
        &connection,
        connected_at_ms,
        "127.0.0.1",
    );
    let authorizer = match gateway.authorize(&query, &headers, &context).await {
        Ok(found) => found,
        Err(status) => {
            let message = if status == StatusCode::UNAUTHORIZED {
                "Unauthorized"
            } else {
                "Forbidden"
            };
            return (status, axum::Json(json!({ "message": message }))).into_response();
        }
    };
    let mut context = context;
    if let Some(fields) = authorizer {
        context["authorizer"] = fields;
    }
    let event = json!({
        "requestContext": context,
        "queryStringParameters": query,
        "isBase64Encoded": false,
    });
    match gateway.invoke_route("$connect", event).await {
        Some(r) if (200..300).contains(&r.status_code) => {}
        Some(r) => {
            return StatusCode::from_u16(r.status_code as u16)
                .unwrap_or(StatusCode::FORBIDDEN)
                .into_response();
        }
        None => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
    // `$connect` ran: an upgrade that fails after it must still run
    // `$disconnect`, or the connection's item would stay.
    let failed = (gateway.clone(), connection.clone());
    upgrade
        .on_failed_upgrade(move |_| {
            tokio::spawn(async move {
                let (gateway, connection) = failed;
                gateway.on_close(&connection, connected_at_ms).await;
            });
        })
        .on_upgrade(move |socket| serve(gateway, socket, connection, connected_at_ms))
}

async fn serve(
    gateway: Arc<LiveGateway>,
    socket: WebSocket,
    connection: String,
    connected_at_ms: i64,
) {
    use futures_util::{SinkExt, StreamExt};
    let (mut sink, mut stream) = socket.split();
    let (sender, mut outbox) = mpsc::unbounded_channel::<Message>();
    gateway.connections.lock().expect("connections").insert(
        connection.clone(),
        OpenConnection {
            sender: sender.clone(),
            connected_at_ms,
            source_ip: "127.0.0.1".into(),
            last_active_ms: connected_at_ms,
        },
    );
    let writer = tokio::spawn(async move {
        while let Some(message) = outbox.recv().await {
            let closing = matches!(message, Message::Close(_));
            if sink.send(message).await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    });
    while let Some(Ok(message)) = stream.next().await {
        let text = match message {
            Message::Text(text) => text.to_string(),
            Message::Binary(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Message::Close(_) => break,
            _ => continue,
        };
        match gateway
            .connections
            .lock()
            .expect("connections")
            .get_mut(&connection)
        {
            Some(open) => open.last_active_ms = now_ms(),
            // Deleted through the management API: nothing more is routed.
            None => break,
        }
        if let Some(answer) = gateway
            .on_message(&connection, connected_at_ms, &text)
            .await
        {
            let _ = sender.send(Message::Text(answer.into()));
        }
    }
    gateway.on_close(&connection, connected_at_ms).await;
    drop(sender);
    writer.abort();
}

fn gone() -> Response {
    (
        StatusCode::GONE,
        [("x-amzn-ErrorType", "GoneException")],
        axum::Json(json!({"message": "the connection is not open"})),
    )
        .into_response()
}

/// `PostToConnection`.
async fn post_to_connection(
    State(gateway): State<Arc<LiveGateway>>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let sender = gateway
        .connections
        .lock()
        .expect("connections")
        .get(&id)
        .map(|c| c.sender.clone());
    let Some(sender) = sender else {
        return gone();
    };
    let message = match String::from_utf8(body.to_vec()) {
        Ok(text) => Message::Text(text.into()),
        Err(e) => Message::Binary(e.into_bytes().into()),
    };
    match sender.send(message) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(_) => gone(),
    }
}

/// `DeleteConnection`: the socket is closed (and `$disconnect` runs).
async fn delete_connection(
    State(gateway): State<Arc<LiveGateway>>,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let open = gateway.connections.lock().expect("connections").remove(&id);
    match open {
        Some(open) => {
            let _ = open.sender.send(Message::Close(None));
            StatusCode::NO_CONTENT.into_response()
        }
        None => gone(),
    }
}

/// `GetConnection`.
async fn get_connection(
    State(gateway): State<Arc<LiveGateway>>,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let connections = gateway.connections.lock().expect("connections");
    let Some(open) = connections.get(&id) else {
        return gone();
    };
    let iso = |ms: i64| {
        time::OffsetDateTime::from_unix_timestamp(ms / 1000)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
    };
    axum::Json(json!({
        "connectedAt": iso(open.connected_at_ms),
        "lastActiveAt": iso(open.last_active_ms),
        "identity": {"sourceIp": open.source_ip, "userAgent": ""},
    }))
    .into_response()
}

async fn jwks(State(gateway): State<Arc<LiveGateway>>) -> Response {
    ([("content-type", "application/json")], gateway.jwks.clone()).into_response()
}

/// Where the local authorizer fetches the pool's keys.
pub const JWKS_PATH: &str = "/_local/cognito/jwks.json";

pub fn router(gateway: Arc<LiveGateway>) -> axum::Router {
    let stage = format!("/{}", gateway.api.stage);
    axum::Router::new()
        .route(&stage, get(connect))
        .route(
            "/{stage}/@connections/{id}",
            axum::routing::post(post_to_connection)
                .delete(delete_connection)
                .get(get_connection),
        )
        .route(JWKS_PATH, get(jwks))
        .with_state(gateway)
}
