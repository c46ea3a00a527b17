//! A caller without a valid key reaches no root field but introspection:
//! refused before the field's arguments are even read, it learns nothing
//! from them. (Field guards then check the scope of valid keys.)
//!
//! Only requests without a valid key run on the schema that carries this
//! extension: an extension puts every field of a request on async-graphql's
//! slower path, which keyed requests should not pay for.

use std::sync::Arc;

use async_graphql::ServerResult;
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};

use crate::auth::Auth;
use crate::domain::keys::Scope;

pub struct RootRefusal;

impl ExtensionFactory for RootRefusal {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RootRefusal)
    }
}

#[async_trait::async_trait]
impl Extension for RootRefusal {
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
}
