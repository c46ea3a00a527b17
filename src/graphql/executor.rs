//! Runs GraphQL operations, for HTTP and WebSocket alike.
//!
//! A request goes through three steps, each outside async-graphql's
//! extension chain: its document is parsed once and kept (`DocumentCache`);
//! its complexity is charged to the organisation by a gate schema that
//! validates and runs nothing (`limits`); then it runs on a schema without
//! extensions. async-graphql puts every field on a slower path (a registry
//! lookup, a type name built, a boxed future per extension) as soon as a
//! schema has any extension, and a 50 × 20 task page resolves some 4,000
//! fields. Requests without a valid key run on a schema of their own that
//! refuses every root field but introspection (`anonymous`).
//!
//! Every error leaves here with its code; a panicking resolver is INTERNAL.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, Response, ServerError};
use futures_util::stream::{self, BoxStream};
use futures_util::{FutureExt, StreamExt};

use super::errors::{classify_response, panicked};
use super::limits::{Complexities, Measured};
use super::{BulkwatchSchema, anonymous, limits, loaders, schema_builder};
use crate::AppState;
use crate::auth::Auth;
use crate::config::Config;
use crate::domain::Principal;

#[derive(Clone)]
pub struct Executor {
    state: AppState,
    /// Requests with a valid key.
    run: BulkwatchSchema,
    /// Validates and charges complexity; runs nothing.
    gate: BulkwatchSchema,
    /// Requests without a valid key.
    anonymous: BulkwatchSchema,
    /// What small requests cost when the gate validated them.
    complexities: Complexities,
}

/// The schema with the server's state and request limits.
fn schema(state: &AppState, extension: Option<Extension>) -> BulkwatchSchema {
    let Config {
        max_depth,
        max_complexity,
        max_recursive_depth,
        max_directives,
        introspection,
        ..
    } = state.config;
    let mut builder = schema_builder()
        .limit_depth(max_depth)
        .limit_complexity(max_complexity)
        .limit_recursive_depth(max_recursive_depth)
        .limit_directives(max_directives);
    builder = match extension {
        Some(Extension::Gate) => builder.extension(limits::ComplexityGate),
        Some(Extension::Anonymous) => builder.extension(anonymous::RootRefusal),
        None => builder,
    };
    if !introspection {
        builder = builder.disable_introspection();
    }
    builder.data(state.clone()).finish()
}

enum Extension {
    Gate,
    Anonymous,
}

impl Executor {
    pub fn new(state: AppState) -> Self {
        Executor {
            run: schema(&state, None),
            gate: schema(&state, Some(Extension::Gate)),
            anonymous: schema(&state, Some(Extension::Anonymous)),
            complexities: Complexities::default(),
            state,
        }
    }

    /// The parsed document of a query text.
    pub fn document(&self, query: &str) -> Result<Arc<ExecutableDocument>, ServerError> {
        self.state.documents.parse(query)
    }

    /// Runs one query or mutation whose document `document` parsed from.
    pub async fn execute(
        &self,
        request: Request,
        document: &ExecutableDocument,
        caller: Auth,
    ) -> Response {
        let Some(principal) = caller.principal() else {
            let request = parsed(request, document).data(caller);
            return caught(&self.anonymous, request).await;
        };
        if let Err(errors) = self.charge(&request, document, caller).await {
            return classify_response(Response::from_errors(errors));
        }
        let loader =
            loaders::request_loader(self.state.db.clone(), principal.organisation_id, true);
        let request = parsed(request, document).data(caller).data(loader);
        caught(&self.run, request).await
    }

    /// Runs a subscription (or any operation) over a WebSocket.
    pub fn execute_stream(
        &self,
        request: Request,
        principal: Principal,
    ) -> BoxStream<'static, Response> {
        let this = self.clone();
        let caller = Auth::Valid(principal);
        stream::once(async move {
            let document = match this.document(&request.query) {
                Ok(document) => document,
                Err(error) => return refused(vec![error]),
            };
            if let Err(errors) = this.charge(&request, &document, caller).await {
                return refused(errors);
            }
            let loader =
                loaders::request_loader(this.state.db.clone(), principal.organisation_id, false);
            let request = parsed(request, &document).data(caller).data(loader);
            this.run
                .execute_stream(request)
                .map(classify_response)
                .boxed()
        })
        .flatten()
        .boxed()
    }

    /// Charges the operation's complexity: what it cost before, or what
    /// the gate measures when it validates it.
    async fn charge(
        &self,
        request: &Request,
        document: &ExecutableDocument,
        caller: Auth,
    ) -> Result<(), Vec<ServerError>> {
        let Some(principal) = caller.principal() else {
            return Ok(());
        };
        if !self.state.limits.charges_complexity() {
            return Ok(());
        }
        let key = Complexities::key(request);
        if let Some(complexity) = key.as_ref().and_then(|k| self.complexities.get(k)) {
            return limits::charge(&self.state, principal.organisation_id, complexity);
        }
        let measured = Arc::new(Measured::default());
        let mut gate = Request::new(request.query.clone())
            .variables(request.variables.clone())
            .data(caller);
        gate.operation_name = request.operation_name.clone();
        let response = self
            .gate
            .execute(parsed(gate, document).data(measured.clone()))
            .await;
        if !response.errors.is_empty() {
            return Err(response.errors);
        }
        if let (Some(key), Some(complexity)) = (key, measured.0.get()) {
            self.complexities.insert(key, *complexity);
        }
        Ok(())
    }
}

fn parsed(mut request: Request, document: &ExecutableDocument) -> Request {
    request.set_parsed_query(document.clone());
    request
}

async fn caught(schema: &BulkwatchSchema, request: Request) -> Response {
    match AssertUnwindSafe(schema.execute(request))
        .catch_unwind()
        .await
    {
        Ok(response) => classify_response(response),
        Err(panic) => panicked(panic),
    }
}

fn refused(errors: Vec<ServerError>) -> BoxStream<'static, Response> {
    stream::once(async move { classify_response(Response::from_errors(errors)) }).boxed()
}
