//! `WebhookDelivery`: one message to one endpoint and how its attempts went.

use async_graphql::{Context, ID, Object, Result};
use entity::webhook_delivery;

use super::BulkTask;
use crate::domain::webhooks::{DeliveryStatus, WebhookEvent as DomainEvent};
use crate::graphql::enums::{WebhookDeliveryStatus, WebhookEvent};
use crate::graphql::ids::{self, Kind};
use crate::graphql::loaders::{RequestLoader, TaskKey};
use crate::graphql::scalars::DateTime;

/// One message to one endpoint: every attempt of it carries the same
/// `webhook-id`, and a redelivery too.
#[derive(Clone, Debug)]
pub struct WebhookDelivery(pub webhook_delivery::Model);

#[Object]
impl WebhookDelivery {
    /// Opaque global id.
    pub async fn id(&self) -> ID {
        ids::encode(Kind::WebhookDelivery, self.0.id)
    }

    /// What happened (a test delivery shows the endpoint's first event).
    async fn event(&self) -> WebhookEvent {
        DomainEvent::parse(&self.0.event)
            .unwrap_or(DomainEvent::TaskFinished)
            .into()
    }

    /// The task the message is about; null for a test delivery or a deleted task.
    async fn task(&self, ctx: &Context<'_>) -> Result<Option<BulkTask>> {
        let Some(task_id) = self.0.task_id else {
            return Ok(None);
        };
        Ok(ctx
            .data::<RequestLoader>()?
            .load_one(TaskKey(task_id))
            .await?
            .map(BulkTask))
    }

    /// The task's `version` in the message: a receiver keeps the largest.
    async fn task_version(&self) -> i32 {
        i32::try_from(self.0.task_version).unwrap_or(i32::MAX)
    }

    /// Where the delivery stands.
    async fn status(&self) -> WebhookDeliveryStatus {
        DeliveryStatus::parse(&self.0.status)
            .unwrap_or(DeliveryStatus::Pending)
            .into()
    }

    /// Attempts made so far (one in flight included).
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }

    /// When the next attempt is due; null once SUCCEEDED or FAILED.
    async fn next_attempt_at(&self) -> Option<DateTime> {
        DateTime::from_ms(self.0.next_attempt_at)
    }

    /// The HTTP status of the last answer; null when there was none.
    async fn last_response_status(&self) -> Option<i32> {
        self.0.last_response_status
    }

    /// The start (at most 1 KiB) of the last answer's body.
    async fn last_response_body(&self) -> Option<&str> {
        self.0.last_response_body.as_deref()
    }

    /// Why the last attempt failed: a timeout, a refused address, a non-2xx answer.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }

    /// How long the last attempt took, in milliseconds.
    async fn last_duration_ms(&self) -> Option<i32> {
        self.0.last_duration_ms
    }

    /// When the delivery was written (the change's commit).
    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }

    /// When a receiver answered 2xx.
    async fn delivered_at(&self) -> Option<DateTime> {
        DateTime::from_ms(self.0.delivered_at)
    }
}
