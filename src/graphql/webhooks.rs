//! Webhook roots: endpoints and their deliveries, all under `webhooks:manage`.

use async_graphql::{Context, ID, Object, Result, SimpleObject};

use super::connection::{RowCursor, connection, page_cost};
use super::ids::{self, Kind};
use super::types::{WebhookDelivery, WebhookEndpoint, WebhookEndpointConnection};
use super::webhook_inputs::{CreateWebhookEndpointInput, UpdateWebhookEndpointInput};
use super::{Need, caller, reader, state};
use crate::domain::keys::Scope;
use crate::domain::webhooks::{self, WithSecret};
use crate::store::page::{PageArgs, SortValue, Window};
use crate::store::webhooks::{ORDER_TAG, page};

#[derive(Default)]
pub struct WebhookQuery;

#[derive(Default)]
pub struct WebhookMutation;

/// An endpoint with its signing secret, shown this once.
#[derive(SimpleObject)]
pub struct CreateWebhookEndpointPayload {
    /// The endpoint.
    pub endpoint: WebhookEndpoint,
    /// The signing secret (`whsec_...`): verify `webhook-signature` with it. Not shown again.
    pub secret: String,
}

impl From<WithSecret> for CreateWebhookEndpointPayload {
    fn from(w: WithSecret) -> Self {
        CreateWebhookEndpointPayload {
            endpoint: WebhookEndpoint(w.endpoint),
            secret: w.secret,
        }
    }
}

#[Object]
impl WebhookQuery {
    /// The organisation's webhook endpoints, oldest first.
    #[graphql(
        guard = "Need(Scope::WebhooksManage)",
        complexity = "page_cost(first, None, child_complexity)"
    )]
    async fn webhook_endpoints(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Endpoints after `after`, at most 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor of the endpoint before the page.")] after: Option<String>,
    ) -> Result<WebhookEndpointConnection> {
        let args = PageArgs {
            first,
            after,
            ..Default::default()
        };
        let window = Window::new(&args, ORDER_TAG, false)?;
        let rows = page(&reader(ctx).await?, &window).await?;
        Ok(connection(
            &rows,
            async_graphql::connection::EmptyFields,
            |e| RowCursor::new(ORDER_TAG, SortValue::Int(e.created_at), e.id),
            |e| WebhookEndpoint(e.clone()),
        ))
    }
}

#[Object]
impl WebhookMutation {
    /// Adds an endpoint; its signing secret is in the answer, and only there.
    #[graphql(guard = "Need(Scope::WebhooksManage)")]
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint.")] input: CreateWebhookEndpointInput,
    ) -> Result<CreateWebhookEndpointPayload> {
        let state = state(ctx)?;
        let allow_private = state.config.webhook_allow_private;
        Ok(
            webhooks::create(&state.db, caller(ctx)?, input.into(), allow_private)
                .await?
                .into(),
        )
    }

    /// Changes an endpoint.
    #[graphql(guard = "Need(Scope::WebhooksManage)")]
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to change.")] input: UpdateWebhookEndpointInput,
    ) -> Result<WebhookEndpoint> {
        let state = state(ctx)?;
        let id = ids::decode(Kind::WebhookEndpoint, &input.id)?;
        let allow_private = state.config.webhook_allow_private;
        let endpoint =
            webhooks::update(&state.db, caller(ctx)?, id, input.into(), allow_private).await?;
        Ok(WebhookEndpoint(endpoint))
    }

    /// Deletes an endpoint and its delivery log.
    #[graphql(guard = "Need(Scope::WebhooksManage)")]
    async fn delete_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint's global id.")] id: ID,
    ) -> Result<bool> {
        let id = ids::decode(Kind::WebhookEndpoint, &id)?;
        webhooks::delete(&state(ctx)?.db, caller(ctx)?, id).await?;
        Ok(true)
    }

    /// A new signing secret; the old one keeps signing beside it for 24 hours.
    #[graphql(guard = "Need(Scope::WebhooksManage)")]
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint's global id.")] id: ID,
    ) -> Result<CreateWebhookEndpointPayload> {
        let id = ids::decode(Kind::WebhookEndpoint, &id)?;
        Ok(webhooks::rotate(&state(ctx)?.db, caller(ctx)?, id)
            .await?
            .into())
    }

    /// Sends a delivery's message again (same `webhook-id` and body) as a new delivery.
    #[graphql(guard = "Need(Scope::WebhooksManage)")]
    async fn redeliver_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The delivery's global id.")] delivery_id: ID,
    ) -> Result<WebhookDelivery> {
        let id = ids::decode(Kind::WebhookDelivery, &delivery_id)?;
        let delivery = webhooks::redeliver(&state(ctx)?.db, caller(ctx)?, id).await?;
        Ok(WebhookDelivery(delivery))
    }

    /// Sends a signed `webhook.test` message to the endpoint.
    #[graphql(guard = "Need(Scope::WebhooksManage)")]
    async fn send_test_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint's global id.")] endpoint_id: ID,
    ) -> Result<WebhookDelivery> {
        let id = ids::decode(Kind::WebhookEndpoint, &endpoint_id)?;
        let delivery = webhooks::send_test(&state(ctx)?.db, caller(ctx)?, id).await?;
        Ok(WebhookDelivery(delivery))
    }
}
