//! A GraphQL response as the GraphQL-over-HTTP spec lays it out: the body
//! serialised from the executor's ordered values, and the status it goes with.

use async_graphql::{Response as GqlResponse, ServerError};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::AppError;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// Seconds a client is asked to wait after the database did not answer.
const UNAVAILABLE_RETRY_AFTER: &str = "1";

pub(super) fn wants_graphql_response(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains(GRAPHQL_RESPONSE))
}

/// A request error (the operation never ran): no data, no error with a path.
pub(super) fn is_request_error(response: &GqlResponse) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// A response as the spec lays it out, serialised straight from the
/// executor's ordered values, so fields keep their selection-set order;
/// a request error has no `data` at all.
#[derive(Serialize)]
struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a async_graphql::Value>,
    #[serde(skip_serializing_if = "<[ServerError]>::is_empty")]
    errors: &'a [ServerError],
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    extensions: &'a std::collections::BTreeMap<String, async_graphql::Value>,
}

impl<'a> From<&'a GqlResponse> for Body<'a> {
    fn from(r: &'a GqlResponse) -> Self {
        Body {
            data: (!is_request_error(r)).then_some(&r.data),
            errors: &r.errors,
            extensions: &r.extensions,
        }
    }
}

pub(super) fn respond(responses: &[GqlResponse], batch: bool, graphql_response: bool) -> Response {
    let bodies: Vec<Body> = responses.iter().map(Body::from).collect();
    let json = if batch {
        serde_json::to_string(&bodies)
    } else {
        serde_json::to_string(&bodies[0])
    };
    let body = match json {
        Ok(body) => body,
        Err(e) => {
            return AppError::Internal(format!("serialising a response: {e}")).into_response();
        }
    };
    let content_type = if graphql_response {
        GRAPHQL_RESPONSE
    } else {
        "application/json"
    };
    let mut response = (
        status(responses, batch, graphql_response),
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response();
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(UNAVAILABLE_RETRY_AFTER),
        );
    }
    response
}

/// 503 when the database did not answer a field, on either media type: the
/// answer is incomplete through no fault of the request, and balancers and
/// clients retry a 503 on their own. The spec's "200 for every well-formed
/// request" is a SHOULD; the body is the same GraphQL response either way.
/// Otherwise 400 for a request error under `application/graphql-response+json`
/// and 200 for everything else.
fn status(responses: &[GqlResponse], batch: bool, graphql_response: bool) -> StatusCode {
    if responses.iter().any(database_unavailable) {
        StatusCode::SERVICE_UNAVAILABLE
    } else if graphql_response && !batch && responses.first().is_some_and(is_request_error) {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    }
}

fn database_unavailable(response: &GqlResponse) -> bool {
    response.errors.iter().any(|e| {
        matches!(
            e.extensions.as_ref().and_then(|x| x.get("code")),
            Some(async_graphql::Value::String(code)) if code == "DATABASE_UNAVAILABLE"
        )
    })
}
