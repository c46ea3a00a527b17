//! The HTTP surface: GraphQL over HTTP (POST and GET) to the
//! GraphQL-over-HTTP spec, over WebSocket, GraphiQL, health, readiness and metrics.

mod fanout;
mod ws;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_graphql::parser::types::{DocumentOperations, OperationDefinition, OperationType};
use async_graphql::{BatchRequest, Request, Response as GqlResponse, ServerError};
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;

use crate::AppState;
use crate::auth::{self, Auth};
use crate::domain::keys::Scope;
use crate::graphql::{self, BulkwatchSchema};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

#[derive(Clone)]
struct Http {
    schema: BulkwatchSchema,
    app: AppState,
    metrics: Arc<Metrics>,
    /// Turns true when the server stops: open WebSockets close.
    shutdown: tokio::sync::watch::Receiver<bool>,
    ws_connections: Arc<std::sync::atomic::AtomicUsize>,
    /// `bulkTaskUpdated` executions shared by identical subscriptions.
    fanout: Arc<fanout::Fanout>,
}

#[derive(Default)]
struct Metrics {
    operations: AtomicU64,
    failed_operations: AtomicU64,
}

pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,async_graphql=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn router(http: Http) -> Router {
    let app = http.app.clone();
    let mut router = Router::new()
        .route("/graphql", get(graphql_get_or_upgrade).post(graphql_post))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/reports/{id}/failures.ndjson", get(failure_report));
    if app.config.graphiql {
        router = router.route("/", get(graphiql));
    }
    router
        .layer(DefaultBodyLimit::max(app.config.body_limit))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a request handler panicked");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "internal error",
            )
        }))
        .with_state(http)
}

pub async fn serve(
    listener: TcpListener,
    app: AppState,
    signal: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let timeout = app.config.shutdown_timeout();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let http = Http {
        schema: graphql::build(app.clone()),
        metrics: Arc::default(),
        app,
        shutdown,
        ws_connections: Arc::default(),
        fanout: Arc::default(),
    };
    let sockets = http.ws_connections.clone();
    let mut stopping = stop.subscribe();
    let server = axum::serve(listener, router(http)).with_graceful_shutdown(async move {
        signal.await;
        let _ = stop.send(true);
    });
    let result = tokio::select! {
        result = server => result,
        _ = async { let _ = stopping.wait_for(|s| *s).await; tokio::time::sleep(timeout).await } => {
            tracing::warn!("shutdown timeout reached; dropping open connections");
            Ok(())
        }
    };
    // WebSockets left the server's bookkeeping at upgrade: give them a
    // moment to send their close frames.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    while sockets.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    result
}

fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

fn wants_graphql_response(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains(GRAPHQL_RESPONSE))
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let media = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media == "application/json" || media == "application/graphql+json"
}

/// Resolves the request's API key; the answer when the database cannot.
async fn authenticate(http: &Http, headers: &HeaderMap) -> Result<Auth, Response> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    auth::authenticate(&http.app.db, value).await.map_err(|e| {
        tracing::error!(error = ?e, "authentication");
        error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "DATABASE_UNAVAILABLE",
            "the database is unavailable, try again",
        )
    })
}

/// A single request or a batch. Deciding by the first byte spares serde's
/// untagged-enum buffering, which copies a 100k-item create once more.
fn parse_body(body: &[u8]) -> serde_json::Result<BatchRequest> {
    let batch = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    if batch {
        serde_json::from_slice(body).map(BatchRequest::Batch)
    } else {
        serde_json::from_slice(body).map(BatchRequest::Single)
    }
}

async fn graphql_post(
    State(http): State<Http>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let limit = http.app.config.body_limit;
            let message = format!("the request body is larger than {limit} bytes");
            return error_response(StatusCode::PAYLOAD_TOO_LARGE, "LIMIT_EXCEEDED", &message);
        }
        Err(rejection) => {
            return error_response(rejection.status(), "BAD_USER_INPUT", &rejection.body_text());
        }
    };
    if !is_json(&headers) {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BAD_USER_INPUT",
            "POST /graphql needs Content-Type: application/json",
        );
    }
    let batch = match parse_body(&body) {
        Ok(b) => b,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                &format!("the body is not a GraphQL request: {e}"),
            );
        }
    };
    let graphql_response = wants_graphql_response(&headers);
    let caller = match authenticate(&http, &headers).await {
        Ok(a) => a,
        Err(response) => return response,
    };
    match batch {
        BatchRequest::Single(request) => {
            let response = execute(&http, caller, request).await;
            respond(&[response], false, graphql_response)
        }
        BatchRequest::Batch(requests) => {
            let max = http.app.config.max_batch;
            if max == 0 {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "BAD_USER_INPUT",
                    "batched requests are not accepted",
                );
            }
            if requests.len() > max {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "LIMIT_EXCEEDED",
                    &format!("at most {max} operations per batch"),
                );
            }
            let mut responses = Vec::with_capacity(requests.len());
            for request in requests {
                responses.push(execute(&http, caller, request).await);
            }
            respond(&responses, true, graphql_response)
        }
    }
}

/// The parameters of a GET request, as the GraphQL-over-HTTP spec names them.
#[derive(serde::Deserialize)]
struct GetParams {
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

fn get_request(params: GetParams) -> Result<Request, String> {
    let json = |text: Option<String>, what: &str| -> Result<_, String> {
        text.map(|t| serde_json::from_str(&t).map_err(|e| format!("`{what}` is not JSON: {e}")))
            .transpose()
    };
    let mut request = Request::new(params.query.unwrap_or_default());
    request.operation_name = params.operation_name;
    if let Some(variables) = json(params.variables, "variables")? {
        request.variables = async_graphql::Variables::from_json(variables);
    }
    if let Some(serde_json::Value::Object(map)) = json(params.extensions, "extensions")? {
        for (k, v) in map {
            let value = async_graphql::Value::from_json(v).map_err(|e| e.to_string())?;
            request.extensions.insert(k, value);
        }
    }
    Ok(request)
}

async fn graphql_get_or_upgrade(
    State(http): State<Http>,
    request: axum::extract::Request,
) -> Response {
    use axum::extract::FromRequestParts;
    let (mut parts, _) = request.into_parts();
    let upgrading = parts
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if upgrading {
        return match axum::extract::ws::WebSocketUpgrade::from_request_parts(&mut parts, &http)
            .await
        {
            Ok(upgrade) => ws::upgrade(http, parts.headers, upgrade),
            Err(rejection) => rejection.into_response(),
        };
    }
    let params = Query::<GetParams>::from_request_parts(&mut parts, &http).await;
    graphql_get(http, parts.headers, params).await
}

async fn graphql_get(
    http: Http,
    headers: HeaderMap,
    params: Result<Query<GetParams>, QueryRejection>,
) -> Response {
    let request = match params
        .map_err(|e| e.body_text())
        .and_then(|Query(p)| get_request(p))
    {
        Ok(r) => r,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                &format!("bad query string: {e}"),
            );
        }
    };
    if operation_type(&request).is_some_and(|t| t != OperationType::Query) {
        let mut response = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "BAD_USER_INPUT",
            "GET runs queries only; send mutations with POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let caller = match authenticate(&http, &headers).await {
        Ok(a) => a,
        Err(response) => return response,
    };
    let response = execute(&http, caller, request).await;
    respond(&[response], false, wants_graphql_response(&headers))
}

/// The operation a request would run, when its query parses.
fn operation(request: &Request) -> Option<OperationDefinition> {
    let document = async_graphql::parser::parse_query(&request.query).ok()?;
    match (document.operations, request.operation_name.as_deref()) {
        (DocumentOperations::Single(op), _) => Some(op.node),
        (DocumentOperations::Multiple(mut ops), Some(name)) => ops.remove(name).map(|op| op.node),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.into_values().next().map(|op| op.node)
        }
        _ => None,
    }
}

fn operation_type(request: &Request) -> Option<OperationType> {
    operation(request).map(|op| op.ty)
}

/// Required variables the request leaves out: a request error, answered
/// before anything runs.
fn missing_variables(request: &Request) -> Vec<ServerError> {
    if !request.query.contains('$') {
        return Vec::new();
    }
    let Some(op) = operation(request) else {
        return Vec::new();
    };
    op.variable_definitions
        .iter()
        .filter(|def| !def.node.var_type.node.nullable && def.node.default_value.is_none())
        .filter(|def| {
            let value = request.variables.get(&def.node.name.node);
            value.is_none() || value == Some(&async_graphql::Value::Null)
        })
        .map(|def| {
            let message = format!(
                "variable ${} of type {} is required",
                def.node.name.node, def.node.var_type.node
            );
            let mut err = ServerError::new(message, Some(def.pos));
            err.extensions
                .get_or_insert_with(Default::default)
                .set("code", "BAD_USER_INPUT");
            err
        })
        .collect()
}

async fn execute(http: &Http, caller: Auth, request: Request) -> GqlResponse {
    let missing = missing_variables(&request);
    if !missing.is_empty() {
        return GqlResponse::from_errors(missing);
    }
    let started = Instant::now();
    let operation = request.operation_name.clone().unwrap_or_default();
    // Without a valid key no root field runs, and the loader sees no organisation.
    let organisation = caller
        .principal()
        .map(|p| p.organisation_id)
        .unwrap_or_default();
    let loader = graphql::loaders::request_loader(http.app.db.clone(), organisation, true);
    let response = http.schema.execute(request.data(caller).data(loader)).await;
    http.metrics.operations.fetch_add(1, Ordering::Relaxed);
    let codes: Vec<String> = response
        .errors
        .iter()
        .filter_map(|e| {
            e.extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .map(|c| c.to_string())
        })
        .collect();
    if !codes.is_empty() {
        http.metrics
            .failed_operations
            .fetch_add(1, Ordering::Relaxed);
    }
    tracing::info!(
        target: "bulkwatch::request",
        operation = %operation,
        ms = started.elapsed().as_millis() as u64,
        outcome = if codes.is_empty() { "ok" } else { "error" },
        errors = %codes.join(","),
    );
    response
}

/// A request error (the operation never ran): no data, no error with a path.
fn is_request_error(response: &GqlResponse) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

fn respond(responses: &[GqlResponse], batch: bool, graphql_response: bool) -> Response {
    let bodies: Vec<Value> = responses
        .iter()
        .map(|r| {
            let mut body = serde_json::to_value(r).unwrap_or_else(|_| json!({}));
            if is_request_error(r)
                && let Some(map) = body.as_object_mut()
            {
                map.remove("data");
            }
            body
        })
        .collect();
    let body = if batch {
        Value::Array(bodies)
    } else {
        bodies.into_iter().next().unwrap_or_default()
    };
    let (status, content_type) = if graphql_response {
        let failed = !batch && responses.first().is_some_and(is_request_error);
        (
            if failed {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            },
            GRAPHQL_RESPONSE,
        )
    } else {
        (StatusCode::OK, "application/json")
    };
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body.to_string(),
    )
        .into_response()
}

/// GraphiQL, with a fetcher that also runs subscriptions with the key
/// from its Headers tab.
async fn graphiql() -> Html<&'static str> {
    Html(include_str!("graphiql.html"))
}

async fn readyz(State(http): State<Http>) -> Response {
    match http.app.db.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

async fn metrics(State(http): State<Http>) -> Response {
    let m = &http.metrics;
    let body = format!(
        "# HELP bulkwatch_sql_statements_total SQL statements issued.\n\
         # TYPE bulkwatch_sql_statements_total counter\n\
         bulkwatch_sql_statements_total {}\n\
         # HELP bulkwatch_graphql_operations_total GraphQL operations executed.\n\
         # TYPE bulkwatch_graphql_operations_total counter\n\
         bulkwatch_graphql_operations_total {}\n\
         # HELP bulkwatch_graphql_failed_operations_total GraphQL operations that returned errors.\n\
         # TYPE bulkwatch_graphql_failed_operations_total counter\n\
         bulkwatch_graphql_failed_operations_total {}\n\
         # HELP bulkwatch_watched_tasks Tasks with live subscribers on this instance.\n\
         # TYPE bulkwatch_watched_tasks gauge\n\
         bulkwatch_watched_tasks {}\n\
         # HELP bulkwatch_websockets Open WebSocket connections.\n\
         # TYPE bulkwatch_websockets gauge\n\
         bulkwatch_websockets {}\n\
         # HELP bulkwatch_shared_subscriptions Task subscriptions executing once for all their identical subscribers.\n\
         # TYPE bulkwatch_shared_subscriptions gauge\n\
         bulkwatch_shared_subscriptions {}\n",
        http.app.db.statements(),
        m.operations.load(Ordering::Relaxed),
        m.failed_operations.load(Ordering::Relaxed),
        http.app.events.watched_tasks(),
        http.ws_connections.load(Ordering::Relaxed),
        http.fanout.running(),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn failure_report(
    State(http): State<Http>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let caller = match authenticate(&http, &headers).await {
        Ok(a) => a,
        Err(response) => return response,
    };
    let who = match caller {
        Auth::Valid(p) if p.scopes.contains(Scope::TasksRead) => p,
        Auth::Valid(_) => {
            return error_response(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                "the API key lacks the tasks:read scope",
            );
        }
        _ => {
            return error_response(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "a valid API key is required",
            );
        }
    };
    let Ok(task_id) = graphql::ids::decode(graphql::ids::Kind::BulkTask, &id) else {
        return error_response(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", "not a task id");
    };
    let report = async {
        let db = http.app.db.reader(who.organisation_id).await?;
        crate::store::items::failures_ndjson(&db, task_id).await
    }
    .await;
    match report {
        Ok(Some(body)) => ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response(),
        Ok(None) => error_response(StatusCode::NOT_FOUND, "NOT_FOUND", "task not found"),
        Err(e) => {
            tracing::error!(error = %e, "failure report");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "internal error",
            )
        }
    }
}
