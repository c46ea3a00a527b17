//! `BulkTask`, its connection and its lazily counted `totalCount`.

use std::sync::Arc;

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, ID, Object, Result};
use entity::bulk_task;
use serde_json::Value;

use super::task_items::{ItemCount, items_query};
use super::{
    Artifact, AuditEntry, AuditEntryConnection, ErrorCodeCount, FailurePolicy, TaskCounters,
    TaskError, TaskItem, TaskItemConnection, json, task_error,
};
use crate::domain::exports::ExportGrant;
use crate::domain::policy;
use crate::domain::status::Counters;
use crate::domain::{now_ms, results, retention};
use crate::error::AppError;
use crate::graphql::connection::{RowCursor, connection, page_cost};
use crate::graphql::enums::{BulkTaskStatus, ExportFormat, TaskItemStatus};
use crate::graphql::ids::{self, Kind};
use crate::graphql::inputs::{TaskItemFilter, TaskItemOrder};
use crate::graphql::loaders::{AuditPageKey, ErrorSummaryKey, ItemPageKey, RequestLoader};
use crate::graphql::scalars::DateTime;
use crate::graphql::{reader, state};
use crate::store::audit;
use crate::store::page::{PageArgs, Window, page_size};
use crate::store::tasks::{self, TaskFilter};

pub type BulkTaskConnection = Connection<RowCursor, BulkTask, TaskCount, EmptyFields>;

/// A bulk operation and the exact count of its items' outcomes.
#[derive(Clone, Debug)]
pub struct BulkTask(pub bulk_task::Model);

/// Items per second measured over a task's run; no figure for a task
/// that has not started, has finished, or has been quiet for a minute.
fn throughput(task: &bulk_task::Model, now: i64) -> Option<f64> {
    let started = task.started_at?;
    let status = task.status;
    let worked = f64::from(task.succeeded + task.failed + task.skipped);
    if status.is_terminal() || now - task.updated_at > 60_000 || worked == 0.0 {
        return None;
    }
    let seconds = ((now - started) as f64 / 1000.0).max(0.001);
    Some(worked / seconds)
}

#[Object]
impl BulkTask {
    /// Opaque global id.
    pub async fn id(&self) -> ID {
        ids::encode(Kind::BulkTask, self.0.id)
    }

    /// What kind of operation, e.g. `sims.bulk_provision`.
    #[graphql(name = "type")]
    async fn task_type(&self) -> &str {
        &self.0.task_type
    }

    /// Free text for people.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// Lifecycle status, derived from the counters.
    async fn status(&self) -> BulkTaskStatus {
        self.0.status.into()
    }

    /// False while the producer may still append items.
    async fn sealed(&self) -> bool {
        self.0.sealed
    }

    /// Whether a cancel was requested.
    async fn cancel_requested(&self) -> bool {
        self.0.cancel_requested
    }

    /// Items per status.
    async fn counters(&self) -> TaskCounters {
        Counters::from_task(&self.0).into()
    }

    /// Grows with every committed change: the larger is the newer snapshot.
    async fn version(&self) -> i32 {
        i32::try_from(self.0.version).unwrap_or(i32::MAX)
    }

    /// finished / total, from 0 to 1 (1 for an empty sealed task).
    async fn progress(&self) -> f64 {
        self.0.progress
    }

    /// Items finished per second while the task runs; null when idle or done.
    async fn throughput(&self) -> Option<f64> {
        throughput(&self.0, now_ms())
    }

    /// When the task should finish at the current throughput; null when unknown.
    async fn estimated_completion_at(&self) -> Option<DateTime> {
        let now = now_ms();
        let rate = throughput(&self.0, now)?;
        if !self.0.sealed {
            return None;
        }
        let left = f64::from(self.0.pending + self.0.running);
        Some(DateTime(now + (left / rate * 1000.0) as i64))
    }

    /// Task-level failure (set by `failBulkTask`), null otherwise.
    async fn error(&self) -> Option<TaskError> {
        task_error(
            &self.0.error_code,
            &self.0.error_message,
            &self.0.error_details,
        )
    }

    /// The producer's metadata object.
    async fn metadata(&self) -> Value {
        json(&Some(self.0.metadata.clone())).unwrap_or(Value::Object(Default::default()))
    }

    /// The key the task was created with, if any.
    async fn idempotency_key(&self) -> Option<&str> {
        self.0.idempotency_key.as_deref()
    }

    /// Attempts an item gets before it FAILS for good.
    async fn max_attempts(&self) -> i32 {
        self.0.max_attempts
    }

    /// Whether claims are paused (`pauseBulkTask`); the status is PAUSED until the task is terminal.
    async fn paused(&self) -> bool {
        self.0.paused
    }

    /// Claims by type take tasks of higher priority first; -100 to 100.
    async fn priority(&self) -> i32 {
        self.0.priority
    }

    /// No item is handed out before this time.
    async fn not_before(&self) -> Option<DateTime> {
        DateTime::from_ms(self.0.not_before)
    }

    /// Unfinished at this time, the task is failed with code DEADLINE_EXCEEDED.
    async fn deadline(&self) -> Option<DateTime> {
        DateTime::from_ms(self.0.deadline)
    }

    /// The failure policy as given at creation; null when none.
    async fn failure_policy(&self) -> Option<FailurePolicy> {
        policy::FailurePolicy::of(&self.0).map(Into::into)
    }

    /// Who changed the task, how and why: newest first.
    #[graphql(complexity = "page_cost(first, None, child_complexity)")]
    async fn audit_trail(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Entries after `after`, at most 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor of the entry before the page.")] after: Option<String>,
    ) -> Result<AuditEntryConnection> {
        let page = PageArgs {
            first,
            after,
            ..Default::default()
        };
        // Validate here so a bad cursor is this field's error, not the batch's.
        Window::new(&page, audit::ORDER_TAG, false)?;
        let key = AuditPageKey {
            task_id: self.0.id,
            page: Arc::new(page),
        };
        let rows = ctx
            .data::<RequestLoader>()?
            .load_one(key)
            .await?
            .unwrap_or_default();
        Ok(connection(
            &rows,
            EmptyFields,
            |e| RowCursor::new(audit::ORDER_TAG, audit::sort_value(e), e.id),
            |e| AuditEntry(e.clone()),
        ))
    }

    /// When the task was created.
    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }

    /// When the task last changed.
    async fn updated_at(&self) -> DateTime {
        DateTime(self.0.updated_at)
    }

    /// When the first item started or finished.
    async fn started_at(&self) -> Option<DateTime> {
        DateTime::from_ms(self.0.started_at)
    }

    /// When the task reached its terminal status.
    async fn finished_at(&self) -> Option<DateTime> {
        DateTime::from_ms(self.0.finished_at)
    }

    /// The task's items, a page at a time.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn items(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Items after `after`, at most 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor of the item before the page.")] after: Option<String>,
        #[graphql(desc = "Items before `before`, at most 100.")] last: Option<i32>,
        #[graphql(desc = "Cursor of the item after the page.")] before: Option<String>,
        #[graphql(desc = "Rows to skip first, for page-number UIs (at most 10000).")]
        offset: Option<i32>,
        #[graphql(desc = "Which items.")] filter: Option<TaskItemFilter>,
        #[graphql(desc = "Sort order; default INDEX ASC.")] order_by: Option<TaskItemOrder>,
    ) -> Result<TaskItemConnection> {
        let page = PageArgs {
            first,
            after,
            last,
            before,
            offset,
        };
        let query = Arc::new(items_query(page, filter, order_by));
        let order = query.order;
        // Validate here so a bad cursor is this field's error, not the batch's.
        Window::new(&query.page, order.tag(), false)?;
        query.filter.check()?;
        let key = ItemPageKey {
            task_id: self.0.id,
            query: query.clone(),
        };
        let rows = ctx
            .data::<RequestLoader>()?
            .load_one(key)
            .await?
            .unwrap_or_default();
        let parent = Arc::new(self.0.clone());
        let extra = ItemCount {
            task_id: self.0.id,
            counters: Counters::from_task(&self.0),
            filter: query.filter.clone(),
        };
        Ok(connection(
            &rows,
            extra,
            |item| RowCursor::new(order.tag(), order.sort_value(item), item.id),
            |item| TaskItem::within(item.clone(), parent.clone()),
        ))
    }

    /// FAILED and REJECTED items grouped by error code, most frequent first.
    async fn error_summary(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Most codes to return, at most 100 (default 10).")] first: Option<i32>,
    ) -> Result<Vec<ErrorCodeCount>> {
        let limit = page_size("first", first)?.unwrap_or(10) as usize;
        if self.0.failed + self.0.rejected == 0 {
            return Ok(Vec::new());
        }
        let rows = ctx
            .data::<RequestLoader>()?
            .load_one(ErrorSummaryKey(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(rows
            .iter()
            .take(limit)
            .map(|r| ErrorCodeCount {
                code: r.code.clone(),
                count: i32::try_from(r.n).unwrap_or(i32::MAX),
                sample_message: r.sample.clone(),
            })
            .collect())
    }

    /// What the task handed back (set with `updateBulkTask`); null until then.
    async fn result(&self) -> Option<Value> {
        json(&self.0.result)
    }

    /// Files the task produced, oldest first.
    async fn artifacts(&self) -> Vec<Artifact> {
        results::artifacts(&self.0)
            .into_iter()
            .map(Artifact)
            .collect()
    }

    /// The latest claim, lease renewal or report on the task (recorded at
    /// most once a second); null when no worker has touched it.
    async fn last_heartbeat_at(&self) -> Option<DateTime> {
        DateTime::from_ms(self.0.last_heartbeat_at)
    }

    /// When the finished task will be deleted with its items; null while it
    /// runs and when it is kept forever.
    async fn expires_at(&self, ctx: &Context<'_>) -> Result<Option<DateTime>> {
        let default = state(ctx)?.config.retention_seconds;
        Ok(self
            .0
            .finished_at
            .and_then(|at| retention::expires_at(at, self.0.retain_for, default))
            .map(DateTime))
    }

    /// A link to download the task's items (all, or those in `status`) in
    /// index order, signed so that it works without an Authorization header
    /// until it expires (15 minutes by default).
    async fn export_url(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The file format.", default_with = "ExportFormat::Csv")]
        format: ExportFormat,
        #[graphql(desc = "Only items in these statuses; all when left out.")] status: Option<
            Vec<TaskItemStatus>,
        >,
    ) -> Result<String> {
        let s = state(ctx)?;
        let statuses = status
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect();
        let ttl = i64::try_from(s.config.export_url_ttl_seconds).unwrap_or(i64::MAX / 2000);
        let grant = ExportGrant {
            organisation_id: self.0.organisation_id,
            task_id: self.0.id,
            format: format.into(),
            statuses: ExportGrant::canonical_statuses(statuses),
            expires: now_ms() / 1000 + ttl,
        };
        Ok(s.signer
            .url(&grant, &ids::encode(Kind::BulkTask, self.0.id).0))
    }

    /// Where to download the FAILED and REJECTED items as NDJSON; null when there are none.
    async fn failure_report_url(&self) -> Option<String> {
        (self.0.failed + self.0.rejected > 0).then(|| {
            format!(
                "/reports/{}/failures.ndjson",
                ids::encode(Kind::BulkTask, self.0.id).0
            )
        })
    }
}

/// The `totalCount` of a task list, counted only when asked for.
pub struct TaskCount {
    pub filter: TaskFilter,
}

#[Object]
impl TaskCount {
    /// Tasks matching the filter, on every page together.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i32> {
        let n = tasks::count(&reader(ctx).await?, &self.filter)
            .await
            .map_err(AppError::from)?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }
}
