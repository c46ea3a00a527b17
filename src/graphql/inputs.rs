//! Input objects and their mapping to the domain's arguments.

use async_graphql::{ID, InputObject};
use serde_json::Value;

use super::enums::{
    BulkTaskOrderField, BulkTaskStatus, ItemOutcome, OrderDirection, TaskItemOrderField,
    TaskItemStatus,
};
use super::ids::{self, Kind};
use super::scalars::DateTime;
use crate::domain::admission::{NewTask, NewTaskItem as DomainItem};
use crate::domain::reports::{ItemError, ItemRef, ItemResult};
use crate::store::items::{ItemFilter, ItemOrder};
use crate::store::tasks::{TaskFilter, TaskOrder};

/// Which tasks to list or count. Conditions combine with AND.
#[derive(InputObject, Clone, Debug, Default)]
pub struct BulkTaskFilter {
    /// Any of these statuses.
    pub status: Option<Vec<BulkTaskStatus>>,
    /// Any of these types.
    #[graphql(name = "type")]
    pub task_type: Option<Vec<String>>,
    /// Terminal (true) or not yet (false).
    pub finished: Option<bool>,
    /// With (true) or without (false) FAILED or REJECTED items.
    pub has_failures: Option<bool>,
    /// Created strictly after.
    pub created_after: Option<DateTime>,
    /// Created strictly before.
    pub created_before: Option<DateTime>,
    /// Changed strictly after.
    pub updated_after: Option<DateTime>,
    /// Started strictly after.
    pub started_after: Option<DateTime>,
    /// Case-insensitive substring of the description or the type.
    pub search: Option<String>,
}

impl From<BulkTaskFilter> for TaskFilter {
    fn from(f: BulkTaskFilter) -> Self {
        TaskFilter {
            status: f.status.map(|l| l.into_iter().map(Into::into).collect()),
            types: f.task_type,
            finished: f.finished,
            has_failures: f.has_failures,
            created_after: f.created_after.map(|t| t.0),
            created_before: f.created_before.map(|t| t.0),
            updated_after: f.updated_after.map(|t| t.0),
            started_after: f.started_after.map(|t| t.0),
            search: f.search.filter(|s| !s.is_empty()),
        }
    }
}

/// How to sort tasks; ties are broken by id.
#[derive(InputObject, Clone, Copy, Debug)]
pub struct BulkTaskOrder {
    /// The sort key.
    pub field: BulkTaskOrderField,
    /// The direction.
    pub direction: OrderDirection,
}

impl From<BulkTaskOrder> for TaskOrder {
    fn from(o: BulkTaskOrder) -> Self {
        TaskOrder {
            field: o.field.into(),
            ascending: o.direction == OrderDirection::Asc,
        }
    }
}

/// Which items of a task to list. Conditions combine with AND.
#[derive(InputObject, Clone, Debug, Default)]
pub struct TaskItemFilter {
    /// Any of these statuses.
    pub status: Option<Vec<TaskItemStatus>>,
    /// The item with this client id.
    pub client_item_id: Option<String>,
    /// Items whose (last) error has this code.
    pub error_code: Option<String>,
}

impl From<TaskItemFilter> for ItemFilter {
    fn from(f: TaskItemFilter) -> Self {
        ItemFilter {
            status: f.status.map(|l| l.into_iter().map(Into::into).collect()),
            client_item_id: f.client_item_id,
            error_code: f.error_code,
        }
    }
}

/// How to sort items; ties are broken by id.
#[derive(InputObject, Clone, Copy, Debug)]
pub struct TaskItemOrder {
    /// The sort key.
    pub field: TaskItemOrderField,
    /// The direction.
    pub direction: OrderDirection,
}

impl From<TaskItemOrder> for ItemOrder {
    fn from(o: TaskItemOrder) -> Self {
        ItemOrder {
            field: o.field.into(),
            ascending: o.direction == OrderDirection::Asc,
        }
    }
}

/// One item to admit.
#[derive(InputObject, Clone, Debug)]
pub struct NewTaskItem {
    /// The producer's own id, unique among the task's accepted items.
    pub client_item_id: Option<String>,
    /// What to process: a JSON object of at most 64 KiB.
    pub payload: Option<Value>,
}

impl From<NewTaskItem> for DomainItem {
    fn from(i: NewTaskItem) -> Self {
        DomainItem {
            client_item_id: i.client_item_id,
            payload: i.payload,
        }
    }
}

/// A new bulk task and its items.
#[derive(InputObject, Clone, Debug)]
pub struct CreateBulkTaskInput {
    /// What kind of operation: `^[a-z][a-z0-9_.:-]{0,63}$`.
    #[graphql(name = "type")]
    pub task_type: String,
    /// Free text for people.
    pub description: Option<String>,
    /// Any JSON object the producer wants to keep with the task.
    pub metadata: Option<Value>,
    /// Sending the same key again returns the first task and creates nothing.
    pub idempotency_key: Option<String>,
    /// Attempts per item, 1 to 100 (default 3).
    pub max_attempts: Option<i32>,
    /// Default true; false to append more items later.
    pub sealed: Option<bool>,
    /// The items, in order.
    pub items: Vec<NewTaskItem>,
}

impl From<CreateBulkTaskInput> for NewTask {
    fn from(i: CreateBulkTaskInput) -> Self {
        NewTask {
            task_type: i.task_type,
            description: i.description,
            metadata: i.metadata,
            idempotency_key: i.idempotency_key,
            max_attempts: i.max_attempts,
            sealed: i.sealed,
            items: i.items.into_iter().map(Into::into).collect(),
        }
    }
}

/// More items for an unsealed task.
#[derive(InputObject, Clone, Debug)]
pub struct AppendTaskItemsInput {
    /// The task.
    pub task_id: ID,
    /// The items, in order; their indexes continue the task's.
    pub items: Vec<NewTaskItem>,
    /// Seal the task after these items.
    pub seal: Option<bool>,
}

/// Why an item failed.
#[derive(InputObject, Clone, Debug)]
pub struct ItemErrorInput {
    /// Machine-readable reason.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Anything else worth keeping.
    pub details: Option<Value>,
}

/// One item's outcome. Name the item by exactly one of `itemId`, `clientItemId` or `index`.
#[derive(InputObject, Clone, Debug)]
pub struct ItemResultInput {
    /// The item's global id.
    pub item_id: Option<ID>,
    /// The item's client id.
    pub client_item_id: Option<String>,
    /// The item's index.
    pub index: Option<i32>,
    /// Required when the item was claimed with a lease.
    pub lease_token: Option<String>,
    /// What happened.
    pub outcome: ItemOutcome,
    /// What the work produced.
    pub result: Option<Value>,
    /// Required for FAILED.
    pub error: Option<ItemErrorInput>,
    /// A FAILED item with attempts left goes back to PENDING.
    pub retryable: Option<bool>,
}

impl From<ItemResultInput> for ItemResult {
    fn from(r: ItemResultInput) -> Self {
        let item = match (r.item_id, r.client_item_id, r.index) {
            (Some(id), None, None) => ids::decode(Kind::TaskItem, &id)
                .map(ItemRef::Id)
                .map_err(|e| e.to_string()),
            (None, Some(c), None) => Ok(ItemRef::ClientId(c)),
            (None, None, Some(i)) => Ok(ItemRef::Index(i)),
            _ => Err("name the item by exactly one of itemId, clientItemId or index".to_owned()),
        };
        ItemResult {
            item,
            lease_token: r.lease_token,
            outcome: r.outcome.into(),
            result: r.result,
            error: r.error.map(|e| ItemError {
                code: e.code,
                message: e.message,
                details: e.details,
            }),
            retryable: r.retryable.unwrap_or(false),
        }
    }
}

/// A batch of outcomes for one task, applied in one transaction.
#[derive(InputObject, Clone, Debug)]
pub struct ReportItemResultsInput {
    /// The task.
    pub task_id: ID,
    /// The outcomes, at most 10000.
    pub results: Vec<ItemResultInput>,
}

/// Which FAILED items to send back to PENDING; all of them when neither list is given.
#[derive(InputObject, Clone, Debug)]
pub struct RetryFailedItemsInput {
    /// The task.
    pub task_id: ID,
    /// Only these items.
    pub item_ids: Option<Vec<ID>>,
    /// Only items whose error has one of these codes.
    pub error_codes: Option<Vec<String>>,
}

/// Aborts a task with a task-level error.
#[derive(InputObject, Clone, Debug)]
pub struct FailBulkTaskInput {
    /// The task.
    pub id: ID,
    /// Machine-readable reason.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Anything else worth keeping.
    pub details: Option<Value>,
}

/// A new webhook endpoint.
#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    /// Where to POST: an http(s) URL.
    pub url: String,
    /// The events to send (at least one).
    pub events: Vec<super::enums::WebhookEvent>,
    /// Only tasks of these types; null for every type.
    pub types: Option<Vec<String>>,
    /// Free text for people.
    pub description: Option<String>,
}

impl From<CreateWebhookEndpointInput> for crate::domain::webhooks::NewEndpoint {
    fn from(i: CreateWebhookEndpointInput) -> Self {
        crate::domain::webhooks::NewEndpoint {
            url: i.url,
            events: i.events.into_iter().map(Into::into).collect(),
            types: i.types,
            description: i.description,
        }
    }
}

/// A change to a webhook endpoint: omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateWebhookEndpointInput {
    /// The endpoint's global id.
    pub id: ID,
    /// A new URL.
    pub url: Option<String>,
    /// A new list of events.
    pub events: Option<Vec<super::enums::WebhookEvent>>,
    /// A new list of task types; null for every type.
    pub types: async_graphql::MaybeUndefined<Vec<String>>,
    /// A new description; null clears it.
    pub description: async_graphql::MaybeUndefined<String>,
    /// Enable (clears `disabledReason`) or disable (gives up deliveries still to be sent).
    pub enabled: Option<bool>,
}

impl From<UpdateWebhookEndpointInput> for crate::domain::webhooks::EndpointChange {
    fn from(i: UpdateWebhookEndpointInput) -> Self {
        crate::domain::webhooks::EndpointChange {
            url: i.url,
            events: i.events.map(|e| e.into_iter().map(Into::into).collect()),
            types: i.types.as_opt_ref().map(|t| t.cloned()),
            description: i.description.as_opt_ref().map(|d| d.cloned()),
            enabled: i.enabled,
        }
    }
}
