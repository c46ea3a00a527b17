//! Mutation roots: each field parses its input, calls the domain, maps the answer.

use async_graphql::{Context, ID, Object, Result, SimpleObject};

use super::ids::{self, Kind};
use super::inputs::{
    AppendTaskItemsInput, CreateBulkTaskInput, FailBulkTaskInput, ReportItemResultsInput,
    RetryFailedItemsInput, UpdateBulkTaskInput,
};
use super::types::BulkTask;
use super::{Need, caller, state};
use crate::domain::admission::Rejection;
use crate::domain::keys::Scope;
use crate::domain::{create, reports, results, tasks};

#[derive(Default)]
pub struct TaskMutation;

/// An item refused at admission; it is stored as REJECTED.
#[derive(SimpleObject)]
pub struct RejectedItem {
    /// The item's index.
    pub index: i32,
    /// The item's client id.
    pub client_item_id: Option<String>,
    /// Why: DUPLICATE_CLIENT_ITEM_ID, PAYLOAD_TOO_LARGE, PAYLOAD_NOT_OBJECT,
    /// INVALID_CLIENT_ITEM_ID, or the producer's own code from `reject`.
    pub code: String,
    /// Why, for people.
    pub message: String,
}

fn rejected(list: Vec<Rejection>) -> Vec<RejectedItem> {
    list.into_iter()
        .map(|r| RejectedItem {
            index: r.index,
            client_item_id: r.client_item_id,
            code: r.code,
            message: r.message,
        })
        .collect()
}

/// The result of `createBulkTask`.
#[derive(SimpleObject)]
pub struct CreateBulkTaskPayload {
    /// The task (the first one, for a repeated idempotency key).
    pub task: BulkTask,
    /// False when the idempotency key returned an existing task.
    pub created: bool,
    /// Items refused at admission.
    pub rejected: Vec<RejectedItem>,
}

/// The result of `appendTaskItems`.
#[derive(SimpleObject)]
pub struct AppendTaskItemsPayload {
    /// The task after the append.
    pub task: BulkTask,
    /// Items refused at admission.
    pub rejected: Vec<RejectedItem>,
}

/// A result that was refused.
#[derive(SimpleObject)]
pub struct ReportProblem {
    /// Its position in `results`.
    pub position: i32,
    /// Why: ITEM_NOT_FOUND, ITEM_ALREADY_FINAL, LEASE_MISMATCH, BAD_USER_INPUT.
    pub code: String,
    /// Why, for people.
    pub message: String,
}

/// The result of `reportItemResults`.
#[derive(SimpleObject)]
pub struct ReportItemResultsPayload {
    /// The task after the batch.
    pub task: BulkTask,
    /// Results that changed an item.
    pub applied: i32,
    /// Identical repeats of an already-applied final result.
    pub duplicates: i32,
    /// Results refused; the others still applied.
    pub problems: Vec<ReportProblem>,
}

fn task_id(id: &ID) -> Result<uuid::Uuid> {
    Ok(ids::decode(Kind::BulkTask, id)?)
}

#[Object]
impl TaskMutation {
    /// Creates a task with its items in one call.
    #[graphql(guard = "Need(Scope::TasksWrite)")]
    async fn create_bulk_task(
        &self,
        ctx: &Context<'_>,
        input: CreateBulkTaskInput,
    ) -> Result<CreateBulkTaskPayload> {
        let s = state(ctx)?;
        let out = create::create(&s.db, &s.events, caller(ctx)?, input.into()).await?;
        Ok(CreateBulkTaskPayload {
            task: BulkTask(out.task),
            created: out.created,
            rejected: rejected(out.rejected),
        })
    }

    /// Adds items to an unsealed task, and seals it when asked.
    #[graphql(guard = "Need(Scope::TasksWrite)")]
    async fn append_task_items(
        &self,
        ctx: &Context<'_>,
        input: AppendTaskItemsInput,
    ) -> Result<AppendTaskItemsPayload> {
        let s = state(ctx)?;
        let id = task_id(&input.task_id)?;
        let items = input.items.into_iter().map(Into::into).collect();
        let out = tasks::append(
            &s.db,
            &s.events,
            caller(ctx)?,
            id,
            items,
            input.seal.unwrap_or(false),
        )
        .await?;
        Ok(AppendTaskItemsPayload {
            task: BulkTask(out.task),
            rejected: rejected(out.rejected),
        })
    }

    /// Declares that no more items will come.
    #[graphql(guard = "Need(Scope::TasksWrite)")]
    async fn seal_bulk_task(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The task.")] id: ID,
    ) -> Result<BulkTask> {
        let s = state(ctx)?;
        Ok(BulkTask(
            tasks::seal(&s.db, &s.events, caller(ctx)?, task_id(&id)?).await?,
        ))
    }

    /// Applies a batch of item outcomes in one transaction.
    #[graphql(guard = "Need(Scope::ItemsReport)")]
    async fn report_item_results(
        &self,
        ctx: &Context<'_>,
        input: ReportItemResultsInput,
    ) -> Result<ReportItemResultsPayload> {
        let s = state(ctx)?;
        let id = task_id(&input.task_id)?;
        let results = input.results.into_iter().map(Into::into).collect();
        let out = reports::report(&s.db, &s.events, caller(ctx)?, id, results).await?;
        Ok(ReportItemResultsPayload {
            task: BulkTask(out.task),
            applied: out.applied,
            duplicates: out.duplicates,
            problems: out
                .problems
                .into_iter()
                .map(|p| ReportProblem {
                    position: p.position,
                    code: p.code.into(),
                    message: p.message,
                })
                .collect(),
        })
    }

    /// Changes a task's description, metadata (merge patch), result and
    /// artifacts in one transaction, running or finished; bumps its version.
    #[graphql(guard = "Need(Scope::TasksWrite)")]
    async fn update_bulk_task(
        &self,
        ctx: &Context<'_>,
        input: UpdateBulkTaskInput,
    ) -> Result<BulkTask> {
        let s = state(ctx)?;
        let id = task_id(&input.id)?;
        Ok(BulkTask(
            results::update(&s.db, &s.events, caller(ctx)?, id, input.into()).await?,
        ))
    }

    /// Cancels a task: pending items become CANCELLED; running ones may finish.
    #[graphql(guard = "Need(Scope::TasksWrite)")]
    async fn cancel_bulk_task(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The task.")] id: ID,
        #[graphql(desc = "Why, kept in the audit trail.")] reason: Option<String>,
    ) -> Result<BulkTask> {
        let s = state(ctx)?;
        Ok(BulkTask(
            tasks::cancel(&s.db, &s.events, caller(ctx)?, task_id(&id)?, reason).await?,
        ))
    }

    /// Sends FAILED items back to PENDING with a fresh round of attempts.
    #[graphql(guard = "Need(Scope::TasksWrite)")]
    async fn retry_failed_items(
        &self,
        ctx: &Context<'_>,
        input: RetryFailedItemsInput,
    ) -> Result<BulkTask> {
        let s = state(ctx)?;
        let id = task_id(&input.task_id)?;
        let item_ids = input
            .item_ids
            .map(|list| {
                list.iter()
                    .map(|i| ids::decode(Kind::TaskItem, i))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let task = tasks::retry_failed(
            &s.db,
            &s.events,
            caller(ctx)?,
            id,
            item_ids,
            input.error_codes,
            input.reason,
        )
        .await?;
        Ok(BulkTask(task))
    }

    /// Aborts a task with a task-level error; pending items become CANCELLED.
    #[graphql(guard = "Need(Scope::TasksWrite)")]
    async fn fail_bulk_task(
        &self,
        ctx: &Context<'_>,
        input: FailBulkTaskInput,
    ) -> Result<BulkTask> {
        let s = state(ctx)?;
        let id = task_id(&input.id)?;
        let error = tasks::TaskError {
            code: input.code,
            message: input.message,
            details: input.details,
        };
        Ok(BulkTask(
            tasks::fail(&s.db, &s.events, caller(ctx)?, id, error).await?,
        ))
    }

    /// Deletes a task and its items; returns its id. Its audit trail is kept.
    #[graphql(guard = "Need(Scope::TasksWrite)")]
    async fn delete_bulk_task(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The task.")] id: ID,
        #[graphql(desc = "Why, kept in the audit trail.")] reason: Option<String>,
    ) -> Result<ID> {
        let s = state(ctx)?;
        tasks::delete(&s.db, &s.events, caller(ctx)?, task_id(&id)?, reason).await?;
        Ok(id)
    }
}
