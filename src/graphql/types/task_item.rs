//! `TaskItem`: one item and its outcome.

use std::sync::Arc;

use async_graphql::{Context, ID, Object, Result};
use entity::{bulk_task, task_item};
use serde_json::Value;

use super::{BulkTask, TaskError, json, task_error};
use crate::error::not_found;
use crate::graphql::enums::TaskItemStatus;
use crate::graphql::ids::{self, Kind};
use crate::graphql::loaders::{RequestLoader, TaskKey};
use crate::graphql::scalars::DateTime;

/// One item of a bulk task and its outcome.
#[derive(Clone, Debug)]
pub struct TaskItem {
    item: task_item::Model,
    /// The task, when the item was reached through it: no second lookup.
    parent: Option<Arc<bulk_task::Model>>,
}

impl TaskItem {
    pub fn new(item: task_item::Model) -> Self {
        TaskItem { item, parent: None }
    }

    pub fn within(item: task_item::Model, parent: Arc<bulk_task::Model>) -> Self {
        TaskItem {
            item,
            parent: Some(parent),
        }
    }
}

#[Object]
impl TaskItem {
    /// Opaque global id.
    pub async fn id(&self) -> ID {
        ids::encode(Kind::TaskItem, self.item.id)
    }

    /// The task the item belongs to.
    async fn task(&self, ctx: &Context<'_>) -> Result<BulkTask> {
        if let Some(parent) = &self.parent {
            return Ok(BulkTask(parent.as_ref().clone()));
        }
        let task = ctx
            .data::<RequestLoader>()?
            .load_one(TaskKey(self.item.task_id))
            .await?;
        Ok(BulkTask(task.ok_or_else(|| not_found("task"))?))
    }

    /// Zero-based position in the submission order.
    async fn index(&self) -> i32 {
        self.item.idx
    }

    /// The producer's own id, unique among the task's accepted items.
    async fn client_item_id(&self) -> Option<&str> {
        self.item.client_item_id.as_deref()
    }

    /// Lifecycle status.
    async fn status(&self) -> TaskItemStatus {
        self.item.status.into()
    }

    /// What the producer submitted.
    async fn payload(&self) -> Option<Value> {
        json(&self.item.payload)
    }

    /// What the worker reported.
    async fn result(&self) -> Option<Value> {
        json(&self.item.result)
    }

    /// Why the item failed or was rejected (the last error, for a retried item).
    async fn error(&self) -> Option<TaskError> {
        task_error(
            &self.item.error_code,
            &self.item.error_message,
            &self.item.error_details,
        )
    }

    /// Times the item was claimed or started.
    async fn attempts(&self) -> i32 {
        self.item.attempts
    }

    /// The worker that holds or held the item.
    async fn worker_id(&self) -> Option<&str> {
        self.item.worker_id.as_deref()
    }

    /// When the current lease runs out.
    async fn lease_expires_at(&self) -> Option<DateTime> {
        DateTime::from_ms(self.item.lease_expires_at)
    }

    /// When the item was admitted.
    async fn created_at(&self) -> DateTime {
        DateTime(self.item.created_at)
    }

    /// When the item last changed.
    async fn updated_at(&self) -> DateTime {
        DateTime(self.item.updated_at)
    }

    /// When work on the item started.
    async fn started_at(&self) -> Option<DateTime> {
        DateTime::from_ms(self.item.started_at)
    }

    /// When the item became final.
    async fn finished_at(&self) -> Option<DateTime> {
        DateTime::from_ms(self.item.finished_at)
    }
}
