//! The GraphQL schema: thin resolvers over the domain and the store.

pub mod anonymous;
pub mod connection;
pub mod control;
pub mod document;
pub mod document_cache;
pub mod enums;
pub mod errors;
pub mod executor;
pub mod ids;
pub mod inputs;
pub mod limits;
pub mod loaders;
pub mod mutation;
pub mod query;
pub mod scalars;
pub mod subscription;
pub mod types;
pub mod validated;
pub mod webhook_inputs;
pub mod webhook_loaders;
pub mod webhooks;
pub mod workers;

use async_graphql::{Context, Guard, MergedObject, MergedSubscription, Schema, SchemaBuilder};

use crate::AppState;
use crate::auth::Auth;
use crate::domain::Principal;
use crate::domain::keys::Scope;
use crate::error::AppError;
use crate::store::Reader;

#[derive(MergedObject, Default)]
pub struct Query(query::TaskQuery, webhooks::WebhookQuery);

#[derive(MergedObject, Default)]
pub struct Mutation(
    mutation::TaskMutation,
    workers::WorkerMutation,
    control::ControlMutation,
    webhooks::WebhookMutation,
);

#[derive(MergedSubscription, Default)]
pub struct Subscription(subscription::TaskSubscription);

pub type BulkwatchSchema = Schema<Query, Mutation, Subscription>;

/// The schema without data: what the server runs and `bulkwatch schema` prints.
pub fn schema_builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .register_output_type::<types::Node>()
}

/// The schema in SDL, as `schema.graphql` holds it.
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}

pub(crate) fn state<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a AppState> {
    ctx.data::<AppState>()
}

/// The guard on every root field: the caller's key must carry the scope.
/// It runs before the resolver, so a caller without access learns nothing
/// about its arguments.
pub(crate) struct Need(pub Scope);

impl Guard for Need {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        ctx.data::<Auth>()?.require(self.0)?;
        Ok(())
    }
}

/// The caller, once a field's guard has let it in.
pub(crate) fn caller(ctx: &Context<'_>) -> async_graphql::Result<Principal> {
    Ok(ctx
        .data::<Auth>()?
        .principal()
        .ok_or_else(|| AppError::Unauthenticated("an API key is required".into()))?)
}

/// A read handle scoped to the caller's organisation.
pub(crate) async fn reader<'a>(ctx: &Context<'a>) -> async_graphql::Result<Reader<'a>> {
    let who = caller(ctx)?;
    Ok(state(ctx)?
        .db
        .reader(who.organisation_id)
        .await
        .map_err(AppError::from)?)
}
