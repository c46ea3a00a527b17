//! Maps every error to `extensions.code`, in one place, for HTTP and
//! WebSocket alike; turns panics into INTERNAL.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextRequest, NextResolve,
    NextSubscribe, NextValidation, ResolveInfo,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Response, ServerError, ServerResult, ValidationResult, Variables};
use futures_util::FutureExt;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::auth::Auth;
use crate::domain::keys::Scope;
use crate::error::AppError;

pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExtension)
    }
}

struct ErrorCodesExtension;

fn with_code(mut err: ServerError, code: &str) -> ServerError {
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
        return with_code(err, "BAD_USER_INPUT");
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

fn is_limit(message: &str) -> bool {
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

#[async_trait::async_trait]
impl Extension for ErrorCodesExtension {
    /// A caller without a valid key reaches no root field but introspection:
    /// refused before the field's arguments are even read, it learns nothing
    /// from them. (Field guards then check the scope of valid keys.)
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<async_graphql::Value>> {
        // `__schema`, `__type` and `__typename` are introspection, open to all.
        let root = info.path_node.parent.is_none() && !info.name.starts_with("__");
        let unauthenticated = ctx.data::<Auth>().ok().filter(|a| a.principal().is_none());
        if root
            && let Some(auth) = unauthenticated
            && let Err(refused) = auth.require(Scope::TasksRead)
        {
            let mut err = async_graphql::Error::from(refused).into_server_error(Default::default());
            err.locations.clear();
            err.path = vec![async_graphql::PathSegment::Field(
                info.alias.unwrap_or(info.name).to_owned(),
            )];
            return Err(err);
        }
        next.run(ctx, info).await
    }

    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let response = match AssertUnwindSafe(next.run(ctx)).catch_unwind().await {
            Ok(response) => response,
            Err(panic) => {
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
        };
        let mut response = response;
        response.errors = std::mem::take(&mut response.errors)
            .into_iter()
            .map(classify)
            .collect();
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, stream)
            .map(|mut response| {
                response.errors = std::mem::take(&mut response.errors)
                    .into_iter()
                    .map(classify)
                    .collect();
                response
            })
            .boxed()
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await.map_err(|e| {
            // A fragment cycle trips the recursion limit first; it is bad input all the same.
            let cycle = async_graphql::parser::parse_query(query)
                .ok()
                .and_then(|d| super::document::fragment_cycle(&d));
            match cycle {
                Some(name) => with_code(
                    ServerError::new(format!("fragment \"{name}\" spreads itself"), None),
                    "BAD_USER_INPUT",
                ),
                None if is_limit(&e.message) => with_code(e, "LIMIT_EXCEEDED"),
                None => with_code(e, "BAD_USER_INPUT"),
            }
        })?;
        if let Some(name) = super::document::fragment_cycle(&document) {
            let message = format!("fragment \"{name}\" spreads itself");
            return Err(with_code(ServerError::new(message, None), "BAD_USER_INPUT"));
        }
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| {
                    // Refusals of our own (a rate limit) carry their error.
                    if e.source::<AppError>().is_some() {
                        return classify(e);
                    }
                    let code = if is_limit(&e.message) {
                        "LIMIT_EXCEEDED"
                    } else {
                        "BAD_USER_INPUT"
                    };
                    with_code(e, code)
                })
                .collect()
        })
    }
}
