//! GraphQL enums, and their mapping to the domain's.

use async_graphql::Enum;

use crate::domain::exports::ExportFormat as DomainExportFormat;
use crate::domain::reports::Outcome;
use crate::domain::status::{ItemStatus, TaskStatus};
use crate::domain::webhooks::{DeliveryStatus, WebhookEvent as DomainEvent};
use crate::store::items::ItemOrderField;
use crate::store::tasks::TaskOrderField;

/// Sort direction.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderDirection {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

/// Where a bulk task is in its lifecycle; derived from its counters.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkTaskStatus {
    /// No item has started or finished yet.
    Queued,
    /// Some work has started or finished; not every item is final.
    Running,
    /// Cancel requested; claimed items are still finishing.
    Cancelling,
    /// Sealed, every item final, none FAILED or REJECTED.
    Completed,
    /// Sealed, every item final, some failed and some succeeded or were skipped.
    CompletedWithFailures,
    /// Sealed and no item succeeded, or aborted at task level (`error` is set).
    Failed,
    /// Cancel finished: no item is RUNNING any more.
    Cancelled,
    /// Paused and not terminal: claims hand out none of its items until it is resumed.
    Paused,
}

/// Where an item is in its lifecycle.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskItemStatus {
    /// Accepted, waiting for a worker.
    Pending,
    /// Claimed by a worker or reported as started.
    Running,
    /// Done.
    Succeeded,
    /// Failed after its last attempt; `error` says why.
    Failed,
    /// Deliberately not processed.
    Skipped,
    /// Refused at admission, never queued; `error` says why.
    Rejected,
    /// Never ran because the task was cancelled or aborted.
    Cancelled,
}

/// What a worker reports about an item.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Work on the item has started.
    Running,
    /// The item is done.
    Succeeded,
    /// The item failed; `error` is required.
    Failed,
    /// The item was deliberately not processed.
    Skipped,
}

/// Fields bulk tasks can be sorted by.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkTaskOrderField {
    /// Creation time.
    CreatedAt,
    /// Time of the last change.
    UpdatedAt,
    /// Time the task reached its terminal status; unfinished tasks sort as the latest.
    FinishedAt,
    /// Number of items.
    Total,
    /// Number of FAILED items.
    Failed,
    /// Share of final items.
    Progress,
}

/// Fields items can be sorted by.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskItemOrderField {
    /// Position in the submission order.
    Index,
    /// Admission time.
    CreatedAt,
    /// Time of the last change.
    UpdatedAt,
    /// Time the item became final; unfinished items sort as the latest.
    FinishedAt,
}

macro_rules! same_variants {
    ($gql:ident <-> $domain:ident { $($v:ident),* $(,)? }) => {
        impl From<$domain> for $gql {
            fn from(s: $domain) -> Self {
                match s { $($domain::$v => $gql::$v),* }
            }
        }
        impl From<$gql> for $domain {
            fn from(s: $gql) -> Self {
                match s { $($gql::$v => $domain::$v),* }
            }
        }
    };
}

same_variants!(BulkTaskStatus <-> TaskStatus {
    Queued, Running, Cancelling, Completed, CompletedWithFailures, Failed, Cancelled, Paused
});
same_variants!(TaskItemStatus <-> ItemStatus { Pending, Running, Succeeded, Failed, Skipped, Rejected, Cancelled });
same_variants!(ItemOutcome <-> Outcome { Running, Succeeded, Failed, Skipped });
same_variants!(BulkTaskOrderField <-> TaskOrderField { CreatedAt, UpdatedAt, FinishedAt, Total, Failed, Progress });
same_variants!(TaskItemOrderField <-> ItemOrderField { Index, CreatedAt, UpdatedAt, FinishedAt });

/// The file format of an export.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// RFC 4180 comma-separated values with a header row; JSON columns hold JSON text.
    Csv,
    /// One JSON object per line.
    Ndjson,
}

same_variants!(ExportFormat <-> DomainExportFormat { Csv, Ndjson });
/// A change of a task that a webhook endpoint may subscribe to.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookEvent {
    /// The task reached a terminal status (body type `bulk_task.finished`).
    TaskFinished,
    /// The task's status changed (body type `bulk_task.status_changed`).
    TaskStatusChanged,
    /// The task was created (body type `bulk_task.created`).
    TaskCreated,
}

impl From<WebhookEvent> for DomainEvent {
    fn from(e: WebhookEvent) -> Self {
        match e {
            WebhookEvent::TaskFinished => DomainEvent::TaskFinished,
            WebhookEvent::TaskStatusChanged => DomainEvent::TaskStatusChanged,
            WebhookEvent::TaskCreated => DomainEvent::TaskCreated,
        }
    }
}

impl From<DomainEvent> for WebhookEvent {
    fn from(e: DomainEvent) -> Self {
        match e {
            DomainEvent::TaskFinished => WebhookEvent::TaskFinished,
            DomainEvent::TaskStatusChanged => WebhookEvent::TaskStatusChanged,
            DomainEvent::TaskCreated => WebhookEvent::TaskCreated,
        }
    }
}

/// Where a webhook delivery stands.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookDeliveryStatus {
    /// Not attempted yet (or its first attempt is in flight).
    Pending,
    /// The receiver answered 2xx.
    Succeeded,
    /// Every attempt failed, or the endpoint was disabled; no more attempts.
    Failed,
    /// An attempt failed; another comes at `nextAttemptAt`.
    Retrying,
}

impl From<WebhookDeliveryStatus> for DeliveryStatus {
    fn from(s: WebhookDeliveryStatus) -> Self {
        match s {
            WebhookDeliveryStatus::Pending => DeliveryStatus::Pending,
            WebhookDeliveryStatus::Succeeded => DeliveryStatus::Succeeded,
            WebhookDeliveryStatus::Failed => DeliveryStatus::Failed,
            WebhookDeliveryStatus::Retrying => DeliveryStatus::Retrying,
        }
    }
}

impl From<DeliveryStatus> for WebhookDeliveryStatus {
    fn from(s: DeliveryStatus) -> Self {
        match s {
            DeliveryStatus::Pending => WebhookDeliveryStatus::Pending,
            DeliveryStatus::Succeeded => WebhookDeliveryStatus::Succeeded,
            DeliveryStatus::Failed => WebhookDeliveryStatus::Failed,
            DeliveryStatus::Retrying => WebhookDeliveryStatus::Retrying,
        }
    }
}
