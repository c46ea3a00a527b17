//! Mutation roots that steer a task: pause, resume, priority.

use async_graphql::{Context, ID, Object, Result};

use super::ids::{self, Kind};
use super::types::BulkTask;
use super::{Need, caller, state};
use crate::domain::control;
use crate::domain::keys::Scope;

#[derive(Default)]
pub struct ControlMutation;

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
        let s = state(ctx)?;
        let id = ids::decode(Kind::BulkTask, &id)?;
        let task = control::pause(&s.db, &s.events, caller(ctx)?, id, reason).await?;
        Ok(BulkTask(task))
    }

    /// Lets claims hand out the task's items again.
    #[graphql(guard = "Need(Scope::TasksWrite)")]
    async fn resume_bulk_task(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The task.")] id: ID,
        #[graphql(desc = "Why, kept in the audit trail.")] reason: Option<String>,
    ) -> Result<BulkTask> {
        let s = state(ctx)?;
        let id = ids::decode(Kind::BulkTask, &id)?;
        let task = control::resume(&s.db, &s.events, caller(ctx)?, id, reason).await?;
        Ok(BulkTask(task))
    }

    /// Sets the task's priority: claims by type take higher first.
    #[graphql(guard = "Need(Scope::TasksWrite)")]
    async fn set_task_priority(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The task.")] id: ID,
        #[graphql(desc = "-100 to 100.")] priority: i32,
    ) -> Result<BulkTask> {
        let s = state(ctx)?;
        let id = ids::decode(Kind::BulkTask, &id)?;
        let task = control::set_priority(&s.db, &s.events, caller(ctx)?, id, priority).await?;
        Ok(BulkTask(task))
    }
}
