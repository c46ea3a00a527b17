//! How a change to a task is committed: its counters, derived status and
//! version written in the same transaction as the items, the task row
//! last, and the event delivered only after the commit.
//!
//! Claims, reports and the reaper hold a task shared and run side by side:
//! item rows decide what counts, and each adds its counter deltas to the
//! task row in one short statement at the end. Every other change holds
//! the task exclusively and sees it at rest.

use entity::bulk_task;
use uuid::Uuid;

use super::audit::{self, Actor, action};
use super::now_ms;
use super::outbox;
use super::policy::{Breach, FAILURE_THRESHOLD_EXCEEDED, FailurePolicy};
use super::status::{Counters, ItemStatus, derive_status};
use crate::error::{AppResult, invalid_state, not_found};
use crate::events::{EventBus, TaskEvent};
use crate::store::tasks::Hold;
use crate::store::{Db, Writer, items, tasks};

/// The time of a change to a task: never before its last change as read.
/// Under the exclusive hold every row the change writes then carries the
/// task's new `updated_at`, even when instances' clocks disagree.
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
    derive(task, now);
    task.version += 1;
    task.updated_at = now.max(task.updated_at);
}

/// Opens a transaction that changes a task's items side by side with
/// others (claims, reports, the reaper) and reads the task. Its rules
/// (pause, cancel, error, attempts, policy) cannot change before the
/// commit: only exclusive holders change them. Its counters can: the
/// change adds deltas with `finish`, which reads them back.
pub(crate) async fn begin_shared(
    db: &Db,
    org: Uuid,
    id: Uuid,
) -> AppResult<(Writer, bulk_task::Model)> {
    let tx = db.begin(org).await?;
    tasks::hold(&tx, id, Hold::Shared).await?;
    match tasks::find(&tx, id).await? {
        Some(task) => Ok((tx, task)),
        None => {
            tx.rollback().await?;
            Err(not_found("task"))
        }
    }
}

/// What a shared change did to its task's items.
pub(crate) struct Delta {
    /// Counter changes, from zero.
    pub counters: Counters,
    /// The change's time, which the items it wrote carry.
    pub now: i64,
    /// The positions it wrote.
    pub items: Vec<i32>,
    /// Whether it records a worker's heartbeat.
    pub heartbeat: bool,
}

/// Ends a shared change whose items are written: adds its deltas to the
/// task row last and briefly, stores what the new counters derive (the
/// terminal transition happens exactly here, once, for whichever change
/// empties the task), stages its webhooks and event, commits, delivers.
/// When the new counters cross the failure policy, the task is then
/// stopped as `failBulkTask` would, and returned stopped.
pub(crate) async fn finish(
    tx: Writer,
    db: &Db,
    events: &EventBus,
    id: Uuid,
    delta: Delta,
) -> AppResult<bulk_task::Model> {
    let Some(mut task) =
        tasks::add_counters(&tx, id, &delta.counters, delta.now, delta.heartbeat).await?
    else {
        tx.rollback().await?;
        return Err(not_found("task"));
    };
    let was = task.clone();
    derive(&mut task, delta.now);
    if task != was {
        tasks::set_derived(&tx, &task).await?;
    }
    outbox::record(&tx, &task, Some(was.status)).await?;
    // The items carry the change's time; the task's may be later, set by a
    // change that committed first.
    let mut change = event(&task, Some(delta.items));
    change.at = delta.now;
    let staged = events.stage(&tx, change).await?;
    tx.commit().await?;
    staged.dispatch();
    if breach(&task).is_some() {
        return enforce_policy(db, events, task).await;
    }
    Ok(task)
}

/// Sets what a task's counters and flags derive: status, progress and the
/// start and finish times.
fn derive(task: &mut bulk_task::Model, now: i64) {
    let c = Counters::from_task(task);
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
        origin: None,
    }
}

/// Runs `change` on the task, held exclusively, in one transaction;
/// publishes the task after commit when `change` bumped its version. The
/// change writes items before `save` writes the task row, in the order
/// every writer keeps.
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
    tasks::hold(&tx, id, Hold::Exclusive).await?;
    let mut task = tasks::find(&tx, id)
        .await?
        .ok_or_else(|| not_found("task"))?;
    let before = task.version;
    let was = task.status;
    let out = change(&tx, &mut task).await?;
    if task.version != before {
        if !tasks::save(&tx, &task).await? {
            tx.rollback().await?;
            return Err(not_found("task"));
        }
        outbox::record(&tx, &task, Some(was)).await?;
        let staged = events.stage(&tx, event(&task, None)).await?;
        tx.commit().await?;
        staged.dispatch();
    } else {
        tx.rollback().await?;
    }
    Ok((task, out))
}

/// The threshold a task's counters cross, when it has a policy and is
/// neither stopping nor done.
fn breach(task: &bulk_task::Model) -> Option<Breach> {
    if task.failure_policy.is_none()
        || task.error_code.is_some()
        || task.cancel_requested
        || task.status.is_terminal()
    {
        return None;
    }
    FailurePolicy::of(task)?.breach(&Counters::from_task(task))
}

/// Fails a task whose counters crossed its failure policy's threshold, as
/// `failBulkTask` would, with the server as the actor, right after the
/// change that crossed it. Held exclusively and judged again, so that of
/// several changes crossing it at once only the first stops the task.
/// Returns the task as it then is.
async fn enforce_policy(
    db: &Db,
    events: &EventBus,
    task: bulk_task::Model,
) -> AppResult<bulk_task::Model> {
    let (org, id) = (task.organisation_id, task.id);
    let (task, ()) = with_task(db, events, org, id, async |tx, task| {
        let Some(breach) = breach(task) else {
            return Ok(());
        };
        let details = breach.details.to_string();
        let cancelled = wind_down(tx, task, |task| {
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
        Ok(())
    })
    .await?;
    Ok(task)
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
