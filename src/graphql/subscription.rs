//! Subscription roots: each names its stream in `events/` and maps its items.

use std::time::Duration;

use async_graphql::{Context, ID, Result, Subscription};
use futures_util::stream::{Stream, StreamExt};

use super::enums::TaskItemStatus;
use super::ids::{self, Kind};
use super::inputs::BulkTaskFilter;
use super::types::{BulkTask, TaskItem};
use super::{Need, caller, state};
use crate::domain::keys::Scope;
use crate::events;
use crate::store::tasks::TaskFilter;

#[derive(Default)]
pub struct TaskSubscription;

fn coalesce(ctx: &Context<'_>) -> Result<Duration> {
    Ok(Duration::from_millis(state(ctx)?.config.coalesce_ms))
}

#[Subscription]
impl TaskSubscription {
    /// The task as it is now, then a new snapshot after changes (coalesced,
    /// latest wins, `version` never goes back); completes after the terminal state.
    #[graphql(guard = "Need(Scope::TasksRead)")]
    async fn bulk_task_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The task's global id.")] id: ID,
    ) -> Result<impl Stream<Item = BulkTask> + use<>> {
        let (who, s) = (caller(ctx)?, state(ctx)?);
        let task_id = ids::decode(Kind::BulkTask, &id)?;
        let stream = events::task_snapshots(
            &s.db,
            &s.events,
            who.organisation_id,
            task_id,
            coalesce(ctx)?,
        )
        .await?;
        Ok(stream.map(BulkTask))
    }

    /// Every change to the caller's tasks that match the filter, coalesced per task.
    #[graphql(guard = "Need(Scope::TasksRead)")]
    async fn bulk_tasks_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which tasks.")] filter: Option<BulkTaskFilter>,
    ) -> Result<impl Stream<Item = Result<BulkTask>> + use<>> {
        let (who, s) = (caller(ctx)?, state(ctx)?);
        let filter: TaskFilter = filter.map(Into::into).unwrap_or_default();
        filter.check()?;
        let stream = events::task_changes(
            s.db.clone(),
            &s.events,
            who.organisation_id,
            filter,
            coalesce(ctx)?,
        );
        Ok(stream.map(|t| Ok(BulkTask(t?))))
    }

    /// Item-level changes of one task in commit order, e.g. a live feed of
    /// failures. A subscriber that falls behind gets SUBSCRIBER_LAGGED and is ended.
    #[graphql(guard = "Need(Scope::TasksRead)")]
    async fn task_items_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The task's global id.")] task_id: ID,
        #[graphql(desc = "Only items now in one of these statuses.")] status: Option<
            Vec<TaskItemStatus>,
        >,
    ) -> Result<impl Stream<Item = Result<TaskItem>> + use<>> {
        let (who, s) = (caller(ctx)?, state(ctx)?);
        let task_id = ids::decode(Kind::BulkTask, &task_id)?;
        let statuses = status.map(|l| l.into_iter().map(Into::into).collect());
        let stream = events::item_changes(
            s.db.clone(),
            &s.events,
            who.organisation_id,
            task_id,
            statuses,
        )
        .await?;
        Ok(stream.map(|i| Ok(TaskItem::new(i?))))
    }
}
