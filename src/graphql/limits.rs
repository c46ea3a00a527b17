//! Charges each validated operation's complexity to the caller's
//! organisation, so that a client sending many heavy queries slows down
//! before the database does. HTTP answers the refusal with 429.
//!
//! The charge runs on a schema of its own that validates and runs nothing
//! (the executor's gate): the complexity is only known inside validation,
//! and an extension on the schema that executes would put every field on
//! async-graphql's slower path. A small request (a poll, a page) that was
//! validated before is charged what it cost then, without the gate:
//! complexity depends on nothing but the document and the variables.

use std::sync::{Arc, OnceLock};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextValidation,
};
use async_graphql::{Request, Response, ServerError, ValidationResult, Value};
use moka::sync::Cache;

use crate::AppState;
use crate::auth::Auth;
use crate::error::AppError;

pub struct ComplexityGate;

impl ExtensionFactory for ComplexityGate {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ComplexityGate)
    }
}

#[async_trait::async_trait]
impl Extension for ComplexityGate {
    /// Only an operation that passed validation is charged (a refused one
    /// costs nothing to run); a caller without a valid key is charged to no
    /// one, as nothing but introspection runs for it.
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        if let Some(seen) = ctx.data_opt::<Arc<Measured>>() {
            let _ = seen.0.set(result.complexity);
        }
        let organisation = ctx
            .data_opt::<Auth>()
            .and_then(Auth::principal)
            .map(|p| p.organisation_id);
        if let (Some(organisation), Some(state)) = (organisation, ctx.data_opt::<AppState>())
            && let Err(refusal) = state
                .limits
                .charge_complexity(organisation, result.complexity)
        {
            return Err(vec![refused(refusal)]);
        }
        Ok(result)
    }

    /// The gate runs nothing: the operation runs on the executing schema.
    async fn execute(
        &self,
        _ctx: &ExtensionContext<'_>,
        _operation_name: Option<&str>,
        _next: NextExecute<'_>,
    ) -> Response {
        Response::new(async_graphql::Value::Null)
    }
}

fn refused(refusal: crate::limits::RateLimited) -> ServerError {
    let mut err = async_graphql::Error::from(AppError::RateLimited(refusal))
        .into_server_error(Default::default());
    err.locations.clear();
    err
}

/// Where the gate leaves the complexity it validated.
#[derive(Default)]
pub struct Measured(pub OnceLock<usize>);

/// Requests with at most this many values in their variables are remembered.
const SMALL_VARIABLES: usize = 16;

/// Complexities of small requests, by query text, operation and variables.
#[derive(Clone)]
pub struct Complexities(Cache<(Arc<str>, String), usize>);

impl Default for Complexities {
    fn default() -> Self {
        Complexities(
            Cache::builder()
                .weigher(|(query, rest): &(Arc<str>, String), _| {
                    u32::try_from(query.len() + rest.len()).unwrap_or(u32::MAX)
                })
                .max_capacity(4 * 1024 * 1024)
                .build(),
        )
    }
}

impl Complexities {
    /// The key of a small request; none for one with large variables.
    pub fn key(request: &Request) -> Option<(Arc<str>, String)> {
        let mut budget = SMALL_VARIABLES;
        if !request.variables.values().all(|v| small(v, &mut budget)) {
            return None;
        }
        let variables = serde_json::to_string(&request.variables).ok()?;
        let name = request.operation_name.as_deref().unwrap_or("");
        Some((
            Arc::from(request.query.as_str()),
            format!("{name}\n{variables}"),
        ))
    }

    pub fn get(&self, key: &(Arc<str>, String)) -> Option<usize> {
        self.0.get(key)
    }

    pub fn insert(&self, key: (Arc<str>, String), complexity: usize) {
        self.0.insert(key, complexity);
    }
}

fn small(value: &Value, budget: &mut usize) -> bool {
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    match value {
        Value::List(items) => items.iter().all(|v| small(v, budget)),
        Value::Object(fields) => fields.values().all(|v| small(v, budget)),
        _ => true,
    }
}

/// Charges a remembered complexity, as the gate would.
pub fn charge(
    state: &AppState,
    organisation: uuid::Uuid,
    complexity: usize,
) -> Result<(), Vec<ServerError>> {
    state
        .limits
        .charge_complexity(organisation, complexity)
        .map_err(|r| vec![refused(r)])
}
