//! Input objects and their mapping to the domain's arguments.

use async_graphql::{ID, InputObject, MaybeUndefined};
use serde_json::Value;

use super::enums::{
    BulkTaskOrderField, BulkTaskStatus, ItemOutcome, OrderDirection, TaskItemOrderField,
    TaskItemStatus,
};
use super::ids::{self, Kind};
use super::scalars::DateTime;
use crate::domain::admission::{NewTask, NewTaskItem as DomainItem, ProducerRejection};
use crate::domain::policy::{DEFAULT_MIN_FINISHED, FailurePolicy};
use crate::domain::reports::{ItemError, ItemRef, ItemResult};
use crate::domain::results::{NewArtifact, TaskUpdate};
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
    /// A JSON object whose every key and value the task's metadata has;
    /// nested objects match as subsets (`{"campaign": {"id": 7}}`). Values
    /// are scalars or objects, not arrays.
    pub metadata: Option<Value>,
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
            metadata: f.metadata,
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
    /// Refuse the item yourself, with your own code (e.g. `INSUFFICIENT_CREDITS`):
    /// it is stored REJECTED with this error and listed in `rejected`.
    pub reject: Option<ItemErrorInput>,
}

impl From<NewTaskItem> for DomainItem {
    fn from(i: NewTaskItem) -> Self {
        DomainItem {
            client_item_id: i.client_item_id,
            payload: i.payload,
            reject: i.reject.map(|e| ProducerRejection {
                code: e.code,
                message: e.message,
                details: e.details,
            }),
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
    /// Seconds to keep the task after it finishes, then it and its items are
    /// deleted; the server's default (`BULKWATCH_RETENTION_SECONDS`) when
    /// left out, forever when 0.
    pub retain_for: Option<i32>,
    /// The items, in order.
    pub items: Vec<NewTaskItem>,
    /// When to stop the task because too many items fail.
    pub failure_policy: Option<FailurePolicyInput>,
    /// Higher is claimed first among tasks of the same types; -100 to 100.
    #[graphql(default = 0)]
    pub priority: i32,
    /// Items are not claimable before this time.
    pub not_before: Option<DateTime>,
    /// Unfinished at this time, the task is failed with code DEADLINE_EXCEEDED.
    pub deadline: Option<DateTime>,
}

/// When to stop a task whose items keep failing, and which errors never to retry.
#[derive(InputObject, Clone, Debug)]
pub struct FailurePolicyInput {
    /// Fail the task once this many items are FAILED (for good).
    pub max_failed_items: Option<i32>,
    /// ... or once FAILED / finished items exceeds this (0 < r <= 1).
    pub max_failure_ratio: Option<f64>,
    /// The ratio is not judged before this many items are final.
    #[graphql(default = 20)]
    pub min_finished: i32,
    /// FAILED results with these codes never go back to PENDING, whatever `retryable` says.
    pub non_retryable_codes: Option<Vec<String>>,
}

impl From<FailurePolicyInput> for FailurePolicy {
    fn from(p: FailurePolicyInput) -> Self {
        FailurePolicy {
            max_failed_items: p.max_failed_items,
            max_failure_ratio: p.max_failure_ratio,
            min_finished: p.min_finished,
            non_retryable_codes: p.non_retryable_codes.unwrap_or_default(),
        }
    }
}

const _: () = assert!(DEFAULT_MIN_FINISHED == 20, "the GraphQL default above");

impl From<CreateBulkTaskInput> for NewTask {
    fn from(i: CreateBulkTaskInput) -> Self {
        NewTask {
            task_type: i.task_type,
            description: i.description,
            metadata: i.metadata,
            idempotency_key: i.idempotency_key,
            max_attempts: i.max_attempts,
            sealed: i.sealed,
            retain_for: i.retain_for,
            items: i.items.into_iter().map(Into::into).collect(),
            failure_policy: i.failure_policy.map(Into::into),
            priority: Some(i.priority),
            not_before: i.not_before.map(|t| t.0),
            deadline: i.deadline.map(|t| t.0),
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
    /// Only items whose error has one of these codes; without it, codes the
    /// task's failure policy declares non-retryable stay FAILED.
    pub error_codes: Option<Vec<String>>,
    /// Why, kept in the audit trail.
    pub reason: Option<String>,
}

/// Aborts a task with a task-level error.
#[derive(InputObject, Clone, Debug)]
pub struct FailBulkTaskInput {
    /// The task.
    pub id: ID,
    /// Machine-readable reason.
    pub code: String,
    /// Human-readable explanation; the audit trail keeps it as the reason.
    pub message: String,
    /// Anything else worth keeping.
    pub details: Option<Value>,
}

/// A file a task produced, stored elsewhere.
#[derive(InputObject, Clone, Debug)]
pub struct ArtifactInput {
    /// Unique among the task's artifacts, e.g. `failure_report`, `export_file`.
    pub name: String,
    /// Where to fetch it: an http or https URL.
    pub url: String,
    /// Its media type, e.g. `text/csv`.
    pub content_type: Option<String>,
    /// Its size in bytes.
    pub size_bytes: Option<f64>,
}

impl From<ArtifactInput> for NewArtifact {
    fn from(a: ArtifactInput) -> Self {
        NewArtifact {
            name: a.name,
            url: a.url,
            content_type: a.content_type,
            size_bytes: a.size_bytes,
        }
    }
}

/// Changes to a task, running or finished, applied in one transaction.
#[derive(InputObject, Clone, Debug)]
pub struct UpdateBulkTaskInput {
    /// The task.
    pub id: ID,
    /// New free text for people; null clears it.
    pub description: MaybeUndefined<String>,
    /// An RFC 7396 JSON merge patch applied to the metadata: keys set to
    /// null are removed, objects merge key by key, anything else replaces.
    pub metadata_patch: Option<Value>,
    /// What the task handed back (at most 64 KiB of JSON); null clears it.
    pub result: MaybeUndefined<Value>,
    /// Artifacts to add; a name the task already has is refused unless it
    /// is also in `removeArtifacts`.
    pub add_artifacts: Option<Vec<ArtifactInput>>,
    /// Names of artifacts to remove (before adding).
    pub remove_artifacts: Option<Vec<String>>,
}

impl From<UpdateBulkTaskInput> for TaskUpdate {
    fn from(i: UpdateBulkTaskInput) -> Self {
        TaskUpdate {
            description: i.description.into(),
            metadata_patch: i.metadata_patch,
            result: i.result.into(),
            add_artifacts: i
                .add_artifacts
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            remove_artifacts: i.remove_artifacts.unwrap_or_default(),
        }
    }
}
