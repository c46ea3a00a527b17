//! Maps every error to `extensions.code`, in one place, for HTTP and
//! WebSocket alike.

use std::sync::Arc;

use async_graphql::{Response, ServerError};

use crate::error::AppError;

pub(crate) fn with_code(mut err: ServerError, code: &str) -> ServerError {
    err.extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
    err
}

fn has_code(err: &ServerError) -> bool {
    err.extensions
        .as_ref()
        .is_some_and(|e| e.get("code").is_some())
}

/// Gives an error its code, and hides what a client must not see.
fn classify(err: ServerError) -> ServerError {
    if has_code(&err) {
        return err;
    }
    let app = err
        .source::<AppError>()
        .or_else(|| err.source::<Arc<AppError>>().map(|a| a.as_ref()));
    let Some(app) = app else {
        // Errors async-graphql raises itself are about the input (a value of
        // the wrong type, an unknown field); ours always carry a source.
        // Those without a path are the document's own: validation, where
        // depth, complexity and the like are limits.
        let code = if err.path.is_empty() && is_limit(&err.message) {
            "LIMIT_EXCEEDED"
        } else {
            "BAD_USER_INPUT"
        };
        return with_code(err, code);
    };
    let code = app.code();
    match app {
        AppError::Internal(cause) => {
            tracing::error!(%cause, path = ?err.path, "internal error");
            let mut hidden = ServerError::new("internal error", None);
            hidden.path = err.path;
            with_code(hidden, code)
        }
        AppError::DatabaseUnavailable(cause) => {
            tracing::error!(%cause, "database unavailable");
            let mut hidden = ServerError::new(app.to_string(), None);
            hidden.path = err.path;
            with_code(hidden, code)
        }
        AppError::RateLimited(refusal) => {
            let wait = refusal.retry_after_secs();
            let mut err = with_code(err, code);
            err.extensions
                .get_or_insert_with(Default::default)
                .set("retryAfter", wait);
            err
        }
        _ => with_code(err, code),
    }
}

pub(crate) fn is_limit(message: &str) -> bool {
    [
        "too complex",
        "nested too deep",
        "too many directives",
        "recursion depth",
        "recursion limit",
        "too large",
    ]
    .iter()
    .any(|m| message.contains(m))
}

/// The response with every error coded, and internal causes hidden.
pub fn classify_response(mut response: Response) -> Response {
    response.errors = std::mem::take(&mut response.errors)
        .into_iter()
        .map(classify)
        .collect();
    response
}

/// The answer to an operation whose resolver panicked.
pub fn panicked(panic: Box<dyn std::any::Any + Send>) -> Response {
    let cause = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(%cause, "a resolver panicked");
    Response::from_errors(vec![with_code(
        ServerError::new("internal error", None),
        "INTERNAL",
    )])
}
