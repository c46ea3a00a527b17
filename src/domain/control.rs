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

/// Sets or clears the pause; a task already so is returned unchanged.
async fn set_paused(
    db: &Db,
    events: &EventBus,
    who: Principal,
    id: Uuid,
    paused: bool,
    reason: Option<String>,
) -> AppResult<bulk_task::Model> {
    check_reason(&reason)?;
    let (task, ()) = with_task(db, events, who.organisation_id, id, async |tx, task| {
        if task.paused == paused {
            return Ok(());
        }
        ensure_steerable(task)?;
        task.paused = paused;
        let now = clock(task);
        touch(task, Counters::from_task(task), now);
        let name = if paused {
            action::PAUSE
        } else {
            action::RESUME
        };
        Ok(audit::record(tx, task.id, now, who, name, reason, None).await?)
    })
    .await?;
    Ok(task)
}

/// Claims hand out none of the task's items until it is resumed; items
/// already RUNNING still report, and their expired leases still return.
pub async fn pause(
    db: &Db,
    events: &EventBus,
    who: Principal,
    id: Uuid,
    reason: Option<String>,
) -> AppResult<bulk_task::Model> {
    set_paused(db, events, who, id, true, reason).await
}

pub async fn resume(
    db: &Db,
    events: &EventBus,
    who: Principal,
    id: Uuid,
    reason: Option<String>,
) -> AppResult<bulk_task::Model> {
    set_paused(db, events, who, id, false, reason).await
}

pub async fn set_priority(
    db: &Db,
    events: &EventBus,
    who: Principal,
    id: Uuid,
    priority: i32,
) -> AppResult<bulk_task::Model> {
    check_priority(priority)?;
    let (task, ()) = with_task(db, events, who.organisation_id, id, async |tx, task| {
        if task.priority == priority {
            return Ok(());
        }
        ensure_steerable(task)?;
        let details = json!({ "from": task.priority, "to": priority });
        task.priority = priority;
        let now = clock(task);
        touch(task, Counters::from_task(task), now);
        Ok(audit::record(tx, task.id, now, who, action::PRIORITY, None, Some(details)).await?)
    })
    .await?;
    Ok(task)
}
