//! Output types, one file per GraphQL type with its connection. They wrap
//! entity models, so the API can change without a migration and the tables
//! without breaking clients.

mod artifact;
mod bulk_task;
mod control;
mod task_item;
mod task_items;
mod webhook_delivery;
mod webhook_endpoint;

use async_graphql::{ID, Interface, SimpleObject};
use serde_json::Value;

pub use artifact::Artifact;
pub use bulk_task::{BulkTask, BulkTaskConnection, TaskCount};
pub use control::{AuditEntry, AuditEntryConnection, FailurePolicy};
pub use task_item::TaskItem;
pub use task_items::{TaskItemConnection, prefetch_items};
pub use webhook_delivery::WebhookDelivery;
pub use webhook_endpoint::{WebhookDeliveryConnection, WebhookEndpoint, WebhookEndpointConnection};

use crate::domain::status::Counters;

/// Anything with a global id; `node(id:)` resolves it.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "Opaque, type-tagged global id."))]
pub enum Node {
    BulkTask(BulkTask),
    TaskItem(TaskItem),
    WebhookEndpoint(WebhookEndpoint),
    WebhookDelivery(WebhookDelivery),
}

fn json(text: &Option<String>) -> Option<Value> {
    text.as_deref().and_then(|t| serde_json::from_str(t).ok())
}

fn task_error(
    code: &Option<String>,
    message: &Option<String>,
    details: &Option<String>,
) -> Option<TaskError> {
    code.as_ref().map(|code| TaskError {
        code: code.clone(),
        message: message.clone().unwrap_or_default(),
        details: json(details),
    })
}

/// Why a task or an item failed.
#[derive(SimpleObject, Clone, Debug)]
pub struct TaskError {
    /// Machine-readable reason, e.g. `LEASE_EXPIRED`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Anything else the reporter attached.
    pub details: Option<Value>,
}

/// How many items of a task are in each status.
#[derive(SimpleObject, Clone, Copy, Debug)]
pub struct TaskCounters {
    /// Every item ever admitted or rejected.
    pub total: i32,
    /// Waiting for a worker.
    pub pending: i32,
    /// Claimed or started.
    pub running: i32,
    /// Done.
    pub succeeded: i32,
    /// Failed after the last attempt.
    pub failed: i32,
    /// Deliberately not processed.
    pub skipped: i32,
    /// Refused at admission.
    pub rejected: i32,
    /// Never ran because the task was cancelled or aborted.
    pub cancelled: i32,
    /// succeeded + failed + skipped + rejected + cancelled; total = pending + running + finished.
    pub finished: i32,
}

impl From<Counters> for TaskCounters {
    fn from(c: Counters) -> Self {
        TaskCounters {
            total: c.total,
            pending: c.pending,
            running: c.running,
            succeeded: c.succeeded,
            failed: c.failed,
            skipped: c.skipped,
            rejected: c.rejected,
            cancelled: c.cancelled,
            finished: c.finished(),
        }
    }
}

/// FAILED and REJECTED items sharing one error code.
#[derive(SimpleObject, Clone, Debug)]
pub struct ErrorCodeCount {
    /// The error code.
    pub code: String,
    /// Items with it.
    pub count: i32,
    /// One of their messages.
    pub sample_message: String,
}
