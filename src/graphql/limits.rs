//! Charges each validated operation's complexity to the caller's
//! organisation, so that a client sending many heavy queries slows down
//! before the database does. HTTP answers the refusal with 429.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextValidation};
use async_graphql::{ServerError, ValidationResult};

use crate::AppState;
use crate::auth::Auth;
use crate::error::AppError;

pub struct ComplexityBudget;

impl ExtensionFactory for ComplexityBudget {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ComplexityBudget)
    }
}

#[async_trait::async_trait]
impl Extension for ComplexityBudget {
    /// Only an operation that passed validation is charged (a refused one
    /// costs nothing to run); a caller without a valid key is charged to no
    /// one, as nothing but introspection runs for it.
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        let organisation = ctx
            .data_opt::<Auth>()
            .and_then(Auth::principal)
            .map(|p| p.organisation_id);
        if let (Some(organisation), Some(state)) = (organisation, ctx.data_opt::<AppState>())
            && let Err(refusal) = state
                .limits
                .charge_complexity(organisation, result.complexity)
        {
            let mut err = async_graphql::Error::from(AppError::RateLimited(refusal))
                .into_server_error(Default::default());
            err.locations.clear();
            return Err(vec![err]);
        }
        Ok(result)
    }
}
