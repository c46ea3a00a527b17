//! How a change to a task is committed: under the task's row lock, with its
//! counters, derived status and version written in the same transaction as
//! the items, and the event delivered only after the commit.

use entity::bulk_task;
use uuid::Uuid;

use super::audit::{self, Actor, action};
use super::now_ms;
use super::outbox;
use super::policy::{FAILURE_THRESHOLD_EXCEEDED, FailurePolicy};
use super::status::{Counters, ItemStatus, derive_status};
use crate::error::{AppResult, invalid_state, not_found};
use crate::events::{EventBus, TaskEvent};
use crate::store::items::ItemState;
use crate::store::{Db, Writer, items, tasks};

/// The time of a change to a locked task: never before its last change, so
/// every row the change writes carries the task's new `updated_at`, even
/// when instances' clocks disagree.
pub(crate) fn clock(task: &bulk_task::Model) -> i64 {
    now_ms().max(task.updated_at)
}

/// Records a committed-to-be change on the task row: counters, derived
/// status and progress, timestamps and a new version.
pub(crate) fn touch(task: &mut bulk_task::Model, c: Counters, now: i64) {
    task.total = c.total;
    task.pending = c.pending;
    task.running = c.running;
    task.succeeded = c.succeeded;
    task.failed = c.failed;
    task.skipped = c.skipped;
    task.rejected = c.rejected;
    task.cancelled = c.cancelled;
    let status = derive_status(
        &c,
        task.sealed,
        task.cancel_requested,
        task.error_code.is_some(),
        task.paused,
    );
    task.status = status;
    task.progress = c.progress(task.sealed);
    if task.started_at.is_none() && c.running + c.succeeded + c.failed + c.skipped > 0 {
        task.started_at = Some(now);
    }
    task.finished_at = if status.is_terminal() {
        task.finished_at.or(Some(now))
    } else {
        None
    };
    task.version += 1;
    task.updated_at = now.max(task.updated_at);
}

/// Writes item changes and the task's new state in `tx`, enforces the
/// task's failure policy on the new counters, commits, and then delivers the
/// change to subscribers.
pub(crate) async fn commit_items(
    tx: Writer,
    events: &EventBus,
    task: &mut bulk_task::Model,
    counters: Counters,
    now: i64,
    changes: &[ItemState],
) -> AppResult<()> {
    items::apply(&tx, task.id, now, changes).await?;
    let was = task.status;
    touch(task, counters, now);
    let stopped = enforce_policy(&tx, task, now).await?;
    tasks::save(&tx, task).await?;
    outbox::record(&tx, task, Some(was)).await?;
    // A stop cancels every pending item: too many to list.
    let indexes = (!stopped).then(|| changes.iter().map(|c| c.idx).collect());
    let staged = events.stage(&tx, event(task, indexes)).await?;
    tx.commit().await?;
    staged.dispatch();
    Ok(())
}

/// The event of a change to `task`; `items` lists the indexes of the items
/// it touched, `None` for "all items changed at the task's `updated_at`".
pub(crate) fn event(task: &bulk_task::Model, items: Option<Vec<i32>>) -> TaskEvent {
    TaskEvent {
        organisation_id: task.organisation_id,
        task_id: task.id,
        version: task.version,
        at: task.updated_at,
        items,
        deleted: false,
        resync: false,
    }
}

/// Runs `change` on the locked task in one transaction; publishes the task
/// after commit when `change` bumped its version.
pub(crate) async fn with_task<T, F>(
    db: &Db,
    events: &EventBus,
    org: Uuid,
    id: Uuid,
    change: F,
) -> AppResult<(bulk_task::Model, T)>
where
    F: AsyncFnOnce(&Writer, &mut bulk_task::Model) -> AppResult<T>,
{
    let tx = db.begin(org).await?;
    let mut task = tasks::lock(&tx, id)
        .await?
        .ok_or_else(|| not_found("task"))?;
    let before = task.version;
    let was = task.status;
    let out = change(&tx, &mut task).await?;
    if task.version != before {
        tasks::save(&tx, &task).await?;
        outbox::record(&tx, &task, Some(was)).await?;
        let staged = events.stage(&tx, event(&task, None)).await?;
        tx.commit().await?;
        staged.dispatch();
    } else {
        tx.rollback().await?;
    }
    Ok((task, out))
}

/// Fails `task` when its counters cross its failure policy's threshold, as
/// `failBulkTask` would, with the server as the actor. The check costs no
/// statement unless it fires; a task already stopping or done is left alone.
/// The items it cancels carry `now`, the time of the change that crossed the
/// threshold, so that one event covers both.
async fn enforce_policy(tx: &Writer, task: &mut bulk_task::Model, now: i64) -> AppResult<bool> {
    if task.failure_policy.is_none()
        || task.error_code.is_some()
        || task.cancel_requested
        || task.status.is_terminal()
    {
        return Ok(false);
    }
    let Some(breach) = FailurePolicy::of(task).and_then(|p| p.breach(&Counters::from_task(task)))
    else {
        return Ok(false);
    };
    let details = breach.details.to_string();
    let cancelled = wind_down_at(tx, task, now, |task| {
        task.error_code = Some(FAILURE_THRESHOLD_EXCEEDED.to_owned());
        task.error_message = Some(breach.message.clone());
        task.error_details = Some(details);
    })
    .await?;
    let mut details = breach.details;
    details["cancelledItems"] = cancelled.into();
    audit::record(
        tx,
        task.id,
        task.updated_at,
        Actor::System,
        action::FAILURE_THRESHOLD,
        Some(breach.message),
        Some(details),
    )
    .await?;
    Ok(true)
}

/// Stops a task from taking new work, for cancel and fail alike: its
/// pending items become CANCELLED, `mark` records why (the cancel flag or
/// the task error), and it is sealed; running items may still report.
/// Returns how many items it cancelled.
pub(crate) async fn wind_down(
    tx: &Writer,
    task: &mut bulk_task::Model,
    mark: impl FnOnce(&mut bulk_task::Model),
) -> AppResult<i32> {
    let now = clock(task);
    wind_down_at(tx, task, now, mark).await
}

async fn wind_down_at(
    tx: &Writer,
    task: &mut bulk_task::Model,
    now: i64,
    mark: impl FnOnce(&mut bulk_task::Model),
) -> AppResult<i32> {
    if task.status.is_terminal() {
        return Err(invalid_state(format!(
            "the task already finished as {}",
            task.status
        )));
    }
    let cancelled = items::cancel_pending(tx, task.id, now).await?;
    let mut counters = Counters::from_task(task);
    counters.shift(ItemStatus::Pending, ItemStatus::Cancelled, cancelled);
    mark(task);
    task.sealed = true;
    touch(task, counters, now);
    Ok(cancelled)
}
