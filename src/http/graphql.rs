//! GraphQL over HTTP, to the GraphQL-over-HTTP spec: POST (single or
//! batched), GET (queries only), and the WebSocket upgrade on the same path.

use std::sync::atomic::Ordering;
use std::time::Instant;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType,
};
use async_graphql::{BatchRequest, Request, Response as GqlResponse, ServerError};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::response::{is_request_error, respond, wants_graphql_response};
use super::{Http, authenticate, ws};
use crate::auth::Auth;
use crate::error::{AppError, AppResult, bad_input, limit_exceeded};

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

pub(super) async fn graphql_post(
    State(http): State<Http>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> AppResult<Response> {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let limit = http.app.config.body_limit;
            return Err(AppError::TooLarge(format!(
                "the request body is larger than {limit} bytes (BULKWATCH_BODY_LIMIT); \
                 send the items in chunks with appendTaskItems"
            )));
        }
        Err(rejection) => return Err(bad_input(rejection.body_text())),
    };
    if !is_json(&headers) {
        return Err(AppError::UnsupportedMediaType(
            "POST /graphql needs Content-Type: application/json".into(),
        ));
    }
    let batch = parse_body(&body)
        .map_err(|e| bad_input(format!("the body is not a GraphQL request: {e}")))?;
    let graphql_response = wants_graphql_response(&headers);
    let caller = authenticate(&http, &headers).await?;
    admit(&http, caller)?;
    Ok(match batch {
        BatchRequest::Single(request) => {
            let response = single(execute(&http, caller, request).await)?;
            respond(&[response], false, graphql_response)
        }
        BatchRequest::Batch(requests) => {
            let max = http.app.config.max_batch;
            if max == 0 {
                return Err(bad_input(
                    "batched requests are not accepted (BULKWATCH_MAX_BATCH is 0)",
                ));
            }
            if requests.len() > max {
                return Err(limit_exceeded(format!(
                    "at most {max} operations per batch (BULKWATCH_MAX_BATCH)"
                )));
            }
            let mut responses = Vec::with_capacity(requests.len());
            for request in requests {
                responses.push(execute(&http, caller, request).await);
            }
            respond(&responses, true, graphql_response)
        }
    })
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

pub(super) async fn graphql_get_or_upgrade(
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
    graphql_get(http, parts.headers, params)
        .await
        .into_response()
}

/// A browser that opens `/graphql` itself wants a page, not a parse error.
fn is_browser_visit(
    headers: &HeaderMap,
    params: &Result<Query<GetParams>, QueryRejection>,
) -> bool {
    let html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    html && matches!(params, Ok(Query(p)) if p.query.is_none())
}

async fn graphql_get(
    http: Http,
    headers: HeaderMap,
    params: Result<Query<GetParams>, QueryRejection>,
) -> AppResult<Response> {
    if is_browser_visit(&headers, &params) {
        let page = if http.app.config.dashboard {
            "/"
        } else {
            "/graphiql"
        };
        return Ok(Redirect::to(page).into_response());
    }
    let request = params
        .map_err(|e| e.body_text())
        .and_then(|Query(p)| get_request(p))
        .map_err(|e| bad_input(format!("bad query string: {e}")))?;
    if operation_type(&http, &request).is_some_and(|t| t != OperationType::Query) {
        return Err(AppError::MethodNotAllowed(
            "GET runs queries only; send mutations with POST".into(),
        ));
    }
    let caller = authenticate(&http, &headers).await?;
    admit(&http, caller)?;
    let response = single(execute(&http, caller, request).await)?;
    Ok(respond(
        &[response],
        false,
        wants_graphql_response(&headers),
    ))
}

/// The operation a request would run, when its document names one.
fn operation<'d>(
    document: &'d ExecutableDocument,
    request: &Request,
) -> Option<&'d OperationDefinition> {
    let op = match (&document.operations, request.operation_name.as_deref()) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name)?,
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next()?,
        _ => return None,
    };
    Some(&op.node)
}

fn operation_type(http: &Http, request: &Request) -> Option<OperationType> {
    let document = http.graphql.document(&request.query).ok()?;
    operation(&document, request).map(|op| op.ty)
}

/// Required variables the request leaves out: a request error, answered
/// before anything runs.
fn missing_variables(document: &ExecutableDocument, request: &Request) -> Vec<ServerError> {
    let Some(op) = operation(document, request) else {
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
    let started = Instant::now();
    let operation = request.operation_name.clone().unwrap_or_default();
    let response = match http.graphql.document(&request.query) {
        Err(error) => GqlResponse::from_errors(vec![error]),
        Ok(document) => match missing_variables(&document, &request) {
            missing if !missing.is_empty() => GqlResponse::from_errors(missing),
            _ => http.graphql.execute(request, &document, caller).await,
        },
    };
    http.metrics.operations.fetch_add(1, Ordering::Relaxed);
    let codes: Vec<String> = response
        .errors
        .iter()
        .filter_map(
            |e| match e.extensions.as_ref().and_then(|x| x.get("code")) {
                Some(async_graphql::Value::String(code)) => Some(code.clone()),
                _ => None,
            },
        )
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

/// Charges a request to the caller's key and organisation. A caller without
/// a valid key is charged to no one: it is refused anyway.
fn admit(http: &Http, caller: Auth) -> AppResult<()> {
    match caller.principal() {
        Some(principal) => http
            .app
            .limits
            .admit(&principal)
            .map_err(AppError::RateLimited),
        None => Ok(()),
    }
}

/// The response of a request that is one operation; an operation refused
/// for the organisation's complexity budget is the request's answer, 429.
/// (In a batch it stays that operation's error.)
fn single(response: GqlResponse) -> AppResult<GqlResponse> {
    let refusal = response
        .errors
        .iter()
        .find_map(|e| match e.source::<AppError>() {
            Some(AppError::RateLimited(refusal)) => Some(refusal.clone()),
            _ => None,
        });
    match refusal {
        Some(refusal) if is_request_error(&response) => Err(AppError::RateLimited(refusal)),
        _ => Ok(response),
    }
}
