//! Charges each validated operation's complexity to the caller's
//! organisation, so that a client sending many heavy queries slows down
//! before the database does. HTTP answers the refusal with 429.
//!
//! The charge runs on a schema of its own that validates and runs nothing
//! (the executor's gate): the complexity is only known inside validation,
//! and an extension on the schema that executes would put every field on
//! async-graphql's slower path. A small request (a poll, a page) that was
//! validated before is charged what it cost then, without the gate
//! (`validated`). A mutation with large variables is charged by the same
//! extension on a schema that then runs it: it resolves few fields, and
//! the gate would need a copy of its variables.

use std::sync::{Arc, OnceLock};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextValidation,
};
use async_graphql::{Response, ServerError, ValidationResult};

use crate::AppState;
use crate::auth::Auth;
use crate::error::AppError;

/// Charges what validation measured; runs the operation only when
/// `executes` (the executor's schema for large mutations), else nothing.
#[derive(Clone, Copy)]
pub struct ComplexityGate {
    pub executes: bool,
}

impl ExtensionFactory for ComplexityGate {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(*self)
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
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if self.executes {
            return next.run(ctx, operation_name).await;
        }
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
