//! Runs GraphQL operations, for HTTP and WebSocket alike.
//!
//! A request goes through three steps, each outside async-graphql's
//! extension chain: its document is parsed once and kept (`DocumentCache`);
//! its complexity is charged to the organisation by a gate schema that
//! validates and runs nothing (`limits`; a mutation with large variables
//! is charged on a schema that also runs it); then it runs on a schema without
//! extensions, one that skips the validation rules when the request is
//! known to pass them (`validated`). async-graphql puts every field on a slower path (a registry
//! lookup, a type name built, a boxed future per extension) as soon as a
//! schema has any extension, and a 50 × 20 task page resolves some 4,000
//! fields. Requests without a valid key run on a schema of their own that
//! refuses every root field but introspection (`anonymous`).
//!
//! Every error leaves here with its code; a panicking resolver is INTERNAL.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::{Request, Response, ServerError, ValidationMode};
use futures_util::stream::{self, BoxStream};
use futures_util::{FutureExt, StreamExt};

use super::errors::{classify_response, panicked};
use super::limits::Measured;
use super::validated::{self, Validated};
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
    /// Requests with a valid key that are known to pass validation: it
    /// measures depth and complexity only.
    fast: BulkwatchSchema,
    /// Validates and charges complexity; runs nothing.
    gate: BulkwatchSchema,
    /// Validates, charges and runs: mutations with large variables, which
    /// the gate would need a copy of (a 1,000-result report, whole).
    charging: BulkwatchSchema,
    /// Requests without a valid key.
    anonymous: BulkwatchSchema,
    /// Small requests that validated, and what they cost.
    validated: Validated,
}

/// The schema with the server's state and request limits.
fn schema(state: &AppState, extension: Option<Extension>, mode: ValidationMode) -> BulkwatchSchema {
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
        .limit_directives(max_directives)
        .validation_mode(mode);
    builder = match extension {
        Some(Extension::Gate) => builder.extension(limits::ComplexityGate { executes: false }),
        Some(Extension::Charging) => builder.extension(limits::ComplexityGate { executes: true }),
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
    Charging,
    Anonymous,
}

impl Executor {
    pub fn new(state: AppState) -> Self {
        Executor {
            run: schema(&state, None, ValidationMode::Strict),
            fast: schema(&state, None, ValidationMode::Fast),
            gate: schema(&state, Some(Extension::Gate), ValidationMode::Strict),
            charging: schema(&state, Some(Extension::Charging), ValidationMode::Strict),
            anonymous: schema(&state, Some(Extension::Anonymous), ValidationMode::Strict),
            validated: Validated::default(),
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
        let key = Validated::key(&request);
        let loader =
            loaders::request_loader(self.state.db.clone(), principal.organisation_id, true);
        // A mutation of few fields, with variables too large to remember:
        // charged as it validates, on the schema that runs it. The extension
        // slows each field a little; a copy of the variables for the gate
        // would cost more.
        if key.is_none()
            && self.state.limits.charges_complexity()
            && is_mutation(document, request.operation_name.as_deref())
        {
            let request = parsed(request, document).data(caller).data(loader);
            return caught(&self.charging, request).await;
        }
        let valid = match self.charge(&request, document, caller, key.clone()).await {
            Err(errors) => return classify_response(Response::from_errors(errors)),
            Ok(valid) => valid,
        };
        let request = parsed(request, document).data(caller).data(loader);
        if valid {
            return caught(&self.fast, request).await;
        }
        let response = caught(&self.run, request).await;
        // Validation errors are the request's own and carry no path.
        if let Some(key) = key
            && response.errors.iter().all(|e| !e.path.is_empty())
        {
            self.validated.insert(key, None);
        }
        response
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
            let valid = match this.charge(&request, &document, caller, None).await {
                Err(errors) => return refused(errors),
                Ok(valid) => valid,
            };
            let loader =
                loaders::request_loader(this.state.db.clone(), principal.organisation_id, false);
            let request = parsed(request, &document).data(caller).data(loader);
            let schema = if valid { &this.fast } else { &this.run };
            schema
                .execute_stream(request)
                .map(classify_response)
                .boxed()
        })
        .flatten()
        .boxed()
    }

    /// Charges the operation's complexity: what it cost before, or what
    /// the gate measures when it validates it. `Ok(true)` when the request
    /// is known to pass validation.
    async fn charge(
        &self,
        request: &Request,
        document: &ExecutableDocument,
        caller: Auth,
        key: Option<validated::Key>,
    ) -> Result<bool, Vec<ServerError>> {
        let Some(principal) = caller.principal() else {
            return Ok(false);
        };
        let seen = key.as_ref().and_then(|k| self.validated.get(k));
        if !self.state.limits.charges_complexity() {
            return Ok(seen.is_some());
        }
        if let Some(Some(complexity)) = seen {
            limits::charge(&self.state, principal.organisation_id, complexity)?;
            return Ok(true);
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
        if let Some(key) = key {
            self.validated.insert(key, measured.0.get().copied());
        }
        Ok(true)
    }
}

/// Whether the operation the request names is a mutation.
fn is_mutation(document: &ExecutableDocument, name: Option<&str>) -> bool {
    let operation = match (&document.operations, name) {
        (DocumentOperations::Single(operation), _) => Some(operation),
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name),
        // One named operation runs without its name being given.
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next()
        }
        (DocumentOperations::Multiple(_), None) => None,
    };
    operation.is_some_and(|o| o.node.ty == OperationType::Mutation)
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
