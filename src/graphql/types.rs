//! Output types. They wrap entity models, so the API can change without a
//! migration and the tables without breaking clients.

use std::sync::Arc;

use async_graphql::{
    Context, ID, InputType, Interface, Name, Object, Result, SimpleObject, Value as ConstValue,
};
use entity::{bulk_task, task_item};
use serde_json::Value;

use super::connection::{ItemCount, RowCursor, TaskItemConnection, connection, page_cost};
use super::enums::{BulkTaskStatus, TaskItemStatus};
use super::ids::{self, Kind};
use super::inputs::{TaskItemFilter, TaskItemOrder};
use super::loaders::{ErrorSummaryKey, ItemPageKey, ItemsQuery, RequestLoader, TaskKey};
use super::scalars::DateTime;
use crate::domain::now_ms;
use crate::domain::status::Counters;
use crate::error::not_found;
use crate::store::page::{PageArgs, Window};

/// Anything with a global id; `node(id:)` resolves it.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "Opaque, type-tagged global id."))]
pub enum Node {
    BulkTask(BulkTask),
    TaskItem(TaskItem),
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

/// The query a `BulkTask.items` field with these arguments runs.
fn items_query(
    page: PageArgs,
    filter: Option<TaskItemFilter>,
    order_by: Option<TaskItemOrder>,
) -> ItemsQuery {
    ItemsQuery {
        filter: filter.map(Into::into).unwrap_or_default(),
        order: order_by.map(Into::into).unwrap_or_default(),
        page,
    }
}

fn argument<T: InputType>(args: &[(Name, ConstValue)], name: &str) -> Option<T> {
    let value = args
        .iter()
        .find(|(n, _)| n.as_str() == name)
        .map(|(_, v)| v.clone());
    T::parse(value).ok()
}

/// Loads the nested `items` pages a list of tasks is about to resolve, one
/// statement per distinct set of arguments, into the request's loader
/// cache: the statement count of a page then does not depend on how the
/// runtime happens to batch its children.
pub async fn prefetch_items(ctx: &Context<'_>, task_ids: &[uuid::Uuid]) {
    let look = ctx.look_ahead();
    let mut queries = std::collections::HashSet::new();
    for lookahead in [
        look.field("nodes").field("items"),
        look.field("edges").field("node").field("items"),
    ] {
        for field in lookahead.selection_fields() {
            let Ok(args) = field.arguments() else {
                continue;
            };
            let page = PageArgs {
                first: argument(&args, "first").flatten(),
                after: argument(&args, "after").flatten(),
                last: argument(&args, "last").flatten(),
                before: argument(&args, "before").flatten(),
                offset: argument(&args, "offset").flatten(),
            };
            let (Some(filter), Some(order_by)) =
                (argument(&args, "filter"), argument(&args, "orderBy"))
            else {
                continue;
            };
            let query = items_query(page, filter, order_by);
            if Window::new(&query.page, query.order.tag(), false).is_ok() {
                queries.insert(query);
            }
        }
    }
    let Ok(loader) = ctx.data::<RequestLoader>() else {
        return;
    };
    for query in queries {
        let query = Arc::new(query);
        let keys = task_ids.iter().map(|id| ItemPageKey {
            task_id: *id,
            query: query.clone(),
        });
        // Errors surface where the field itself loads.
        let _ = loader.load_many(keys).await;
    }
}

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
    async fn id(&self) -> ID {
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
        #[graphql(desc = "Most codes to return (default 10).")] first: Option<i32>,
    ) -> Result<Vec<ErrorCodeCount>> {
        if self.0.failed + self.0.rejected == 0 {
            return Ok(Vec::new());
        }
        let limit = first.unwrap_or(10).clamp(0, 100) as usize;
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
    async fn id(&self) -> ID {
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
