//! Mutation roots that steer a task: pause, resume, priority.

use async_graphql::{Context, ID, Object, Result};

use super::ids::{self, Kind};
use super::types::BulkTask;
use super::{Need, caller, state};
use crate::domain::control::{self, Steering};
use crate::domain::keys::Scope;

#[derive(Default)]
pub struct ControlMutation;

/// Applies the change to the task as the caller.
async fn steer(
    ctx: &Context<'_>,
    id: &ID,
    change: Steering,
    reason: Option<String>,
) -> Result<BulkTask> {
    let s = state(ctx)?;
    let id = ids::decode(Kind::BulkTask, id)?;
    let task = control::steer(&s.db, &s.events, caller(ctx)?, id, change, reason).await?;
    Ok(BulkTask(task))
}

#[Object]
impl ControlMutation {
    /// Stops claims from handing out the task's items; RUNNING items may
    /// still report and expired leases still return to PENDING.
    #[graphql(guard = "Need(Scope::TasksWrite)")]
    async fn pause_bulk_task(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The task.")] id: ID,
        #[graphql(desc = "Why, kept in the audit trail.")] reason: Option<String>,
    ) -> Result<BulkTask> {
        steer(ctx, &id, Steering::Pause, reason).await
    }

    /// Lets claims hand out the task's items again.
    #[graphql(guard = "Need(Scope::TasksWrite)")]
    async fn resume_bulk_task(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The task.")] id: ID,
        #[graphql(desc = "Why, kept in the audit trail.")] reason: Option<String>,
    ) -> Result<BulkTask> {
        steer(ctx, &id, Steering::Resume, reason).await
    }

    /// Sets the task's priority: claims by type take higher first.
    #[graphql(guard = "Need(Scope::TasksWrite)")]
    async fn set_task_priority(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The task.")] id: ID,
        #[graphql(desc = "-100 to 100.")] priority: i32,
    ) -> Result<BulkTask> {
        steer(ctx, &id, Steering::Priority(priority), None).await
    }
}
