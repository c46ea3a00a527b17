//! `WebhookEndpoint` and its connection.

use std::sync::Arc;

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, ID, Object, Result};
use entity::webhook_endpoint;

use super::WebhookDelivery;
use crate::domain::webhooks::{DeliveryStatus, events_of, types_of};
use crate::graphql::connection::{RowCursor, connection, page_cost};
use crate::graphql::enums::{WebhookDeliveryStatus, WebhookEvent};
use crate::graphql::ids::{self, Kind};
use crate::graphql::loaders::RequestLoader;
use crate::graphql::scalars::DateTime;
use crate::graphql::webhook_loaders::{DeliveriesQuery, DeliveryPageKey};
use crate::store::page::{PageArgs, SortValue, Window};
use crate::store::webhook_deliveries::ORDER_TAG;

pub type WebhookEndpointConnection =
    Connection<RowCursor, WebhookEndpoint, EmptyFields, EmptyFields>;
pub type WebhookDeliveryConnection =
    Connection<RowCursor, WebhookDelivery, EmptyFields, EmptyFields>;

/// Where an organisation's task events are POSTed, signed (Standard Webhooks).
#[derive(Clone, Debug)]
pub struct WebhookEndpoint(pub webhook_endpoint::Model);

#[Object]
impl WebhookEndpoint {
    /// Opaque global id.
    pub async fn id(&self) -> ID {
        ids::encode(Kind::WebhookEndpoint, self.0.id)
    }

    /// Where deliveries are POSTed.
    async fn url(&self) -> &str {
        &self.0.url
    }

    /// Free text for people.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// The events sent to this endpoint.
    async fn events(&self) -> Vec<WebhookEvent> {
        events_of(&self.0).into_iter().map(Into::into).collect()
    }

    /// Only tasks of these types; null for every type.
    async fn types(&self) -> Option<Vec<String>> {
        types_of(&self.0)
    }

    /// Whether deliveries are written and sent.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }

    /// When the endpoint was created.
    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }

    /// Why the endpoint is disabled; null while enabled.
    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }

    /// The endpoint's deliveries, newest first.
    #[graphql(complexity = "page_cost(first, None, child_complexity)")]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Deliveries after `after`, at most 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor of the delivery before the page.")] after: Option<String>,
        #[graphql(desc = "Only deliveries in these statuses.")] status: Option<
            Vec<WebhookDeliveryStatus>,
        >,
    ) -> Result<WebhookDeliveryConnection> {
        let page = PageArgs {
            first,
            after,
            ..Default::default()
        };
        // Validate here so a bad cursor is this field's error, not the batch's.
        Window::new(&page, ORDER_TAG, false)?;
        let statuses = status.map(|list| {
            let mut list: Vec<DeliveryStatus> = list.into_iter().map(Into::into).collect();
            list.sort_by_key(|s| s.as_str());
            list.dedup();
            list
        });
        let key = DeliveryPageKey {
            endpoint_id: self.0.id,
            query: Arc::new(DeliveriesQuery { statuses, page }),
        };
        let rows = ctx
            .data::<RequestLoader>()?
            .load_one(key)
            .await?
            .unwrap_or_default();
        Ok(connection(
            &rows,
            EmptyFields,
            |d| RowCursor::new(ORDER_TAG, SortValue::Int(d.created_at), d.id),
            |d| WebhookDelivery(d.clone()),
        ))
    }
}
