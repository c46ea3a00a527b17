//! Steering a running task: pause and resume its claims, change its priority.

use entity::bulk_task;
use serde_json::json;
use uuid::Uuid;

use super::Principal;
use super::admission::check_priority;
use super::audit::{self, action, check_reason};
use super::commit::{clock, touch, with_task};
use super::status::Counters;
use crate::error::{AppResult, invalid_state};
use crate::events::EventBus;
use crate::store::Db;

/// Steering applies to tasks that still take work.
fn ensure_steerable(task: &bulk_task::Model) -> AppResult<()> {
    if task.status.is_terminal() {
        return Err(invalid_state(format!(
            "the task already finished as {}",
            task.status
        )));
    }
    if task.error_code.is_some() || task.cancel_requested {
        return Err(invalid_state("the task is stopping"));
    }
    Ok(())
}

/// A change to how a task's items are handed out.
#[derive(Clone, Copy, Debug)]
pub enum Steering {
    /// Claims hand out none of the task's items until it is resumed; items
    /// already RUNNING still report, and their expired leases still return.
    Pause,
    Resume,
    /// Claims by type take higher priorities first.
    Priority(i32),
}

impl Steering {
    /// Applies the change to a task that still takes work, giving the audit
    /// action and details that record it; `None` where the task is already so.
    fn apply(
        self,
        task: &mut bulk_task::Model,
    ) -> AppResult<Option<(&'static str, Option<serde_json::Value>)>> {
        let unchanged = match self {
            Steering::Pause => task.paused,
            Steering::Resume => !task.paused,
            Steering::Priority(priority) => task.priority == priority,
        };
        if unchanged {
            return Ok(None);
        }
        ensure_steerable(task)?;
        Ok(Some(match self {
            Steering::Pause => {
                task.paused = true;
                (action::PAUSE, None)
            }
            Steering::Resume => {
                task.paused = false;
                (action::RESUME, None)
            }
            Steering::Priority(priority) => {
                let details = json!({ "from": task.priority, "to": priority });
                task.priority = priority;
                (action::PRIORITY, Some(details))
            }
        }))
    }
}

/// Steers the task and records why; a task already so is returned unchanged.
pub async fn steer(
    db: &Db,
    events: &EventBus,
    who: Principal,
    id: Uuid,
    change: Steering,
    reason: Option<String>,
) -> AppResult<bulk_task::Model> {
    check_reason(&reason)?;
    if let Steering::Priority(priority) = change {
        check_priority(priority)?;
    }
    let (task, ()) = with_task(db, events, who.organisation_id, id, async |tx, task| {
        let Some((name, details)) = change.apply(task)? else {
            return Ok(());
        };
        let now = clock(task);
        touch(task, Counters::from_task(task), now);
        Ok(audit::record(tx, task.id, now, who, name, reason, details).await?)
    })
    .await?;
    Ok(task)
}
