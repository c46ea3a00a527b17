//! Retention: finished tasks are deleted some time after they finish. A
//! task is first marked (from then on no reader or writer sees it, and its
//! subscribers are told it is gone), then its items go in bounded batches,
//! each its own short transaction, and the task row last. Safe with several
//! instances: the mark is one conditional statement, batches skip rows
//! another pruner holds, and a prune that stopped midway is resumed.

use uuid::Uuid;

use super::audit::{self, Actor, action};
use super::now_ms;
use crate::error::AppResult;
use crate::events::{EventBus, TaskEvent};
use crate::store::Db;
use crate::store::retention::{self, DueTask, Expiry};

/// Tasks one sweep looks at.
const TASKS_PER_SWEEP: u64 = 100;

/// How long finished tasks are kept, and how many items go per transaction.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Seconds, for tasks without their own `retainFor`; 0 keeps them forever.
    pub default_seconds: u64,
    pub batch: u64,
}

/// What a sweep deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub tasks: u64,
    pub items: u64,
}

/// When a finished task expires, by its own retention or the default;
/// None when it is kept forever.
pub fn expires_at(finished_at: i64, retain_for: Option<i64>, default_seconds: u64) -> Option<i64> {
    let seconds = retain_for.unwrap_or(i64::try_from(default_seconds).unwrap_or(i64::MAX));
    (seconds > 0).then(|| finished_at.saturating_add(seconds.saturating_mul(1000)))
}

/// Deletes the tasks that are due.
pub async fn prune_due(db: &Db, events: &EventBus, retention: Retention) -> AppResult<Pruned> {
    let now = now_ms();
    let expiry = Expiry {
        now,
        default_cutoff: match i64::try_from(retention.default_seconds) {
            Ok(0) => None,
            Ok(s) => Some(now.saturating_sub(s.saturating_mul(1000))),
            Err(_) => None,
        },
    };
    // The scan crosses organisations; each task is then handled as its own.
    let due = retention::due_tasks(&db.system_reader().await?, expiry, TASKS_PER_SWEEP).await?;
    let mut total = Pruned::default();
    for task in due {
        let pruned = prune(db, events, &task, expiry, retention.batch).await?;
        total.tasks += pruned.tasks;
        total.items += pruned.items;
    }
    // Deleted tasks' trails go once they are as old as retention allows.
    if let Some(cutoff) = expiry.default_cutoff {
        let tx = db.system_begin().await?;
        crate::store::audit::delete_before(&tx, cutoff, retention.batch).await?;
        tx.commit().await?;
    }
    Ok(total)
}

async fn prune(
    db: &Db,
    events: &EventBus,
    task: &DueTask,
    expiry: Expiry,
    batch: u64,
) -> AppResult<Pruned> {
    let org = task.organisation_id;
    if task.pruned_at.is_none() && !mark(db, events, org, task.id, expiry).await? {
        return Ok(Pruned::default());
    }
    let mut items = 0;
    loop {
        let tx = db.begin(org).await?;
        let deleted = retention::delete_items(&tx, task.id, batch).await?;
        tx.commit().await?;
        items += deleted;
        if deleted == 0 {
            break;
        }
        // Let writers queued behind this batch go first.
        tokio::task::yield_now().await;
    }
    let tx = db.begin(org).await?;
    let gone = retention::delete_task(&tx, task.id).await?;
    tx.commit().await?;
    Ok(Pruned {
        tasks: u64::from(gone),
        items,
    })
}

/// Marks the task and tells its subscribers it is gone; false when it is
/// no longer due (reopened, or marked by another instance).
async fn mark(db: &Db, events: &EventBus, org: Uuid, id: Uuid, expiry: Expiry) -> AppResult<bool> {
    let tx = db.begin(org).await?;
    let Some((version, updated_at)) = retention::mark(&tx, id, expiry).await? else {
        tx.rollback().await?;
        return Ok(false);
    };
    let gone = TaskEvent {
        organisation_id: org,
        task_id: id,
        version: version + 1,
        at: expiry.now.max(updated_at),
        items: Some(Vec::new()),
        deleted: true,
        resync: false,
        origin: None,
    };
    let details = serde_json::json!({ "finishedBefore": expiry.now });
    audit::record(
        &tx,
        id,
        gone.at,
        Actor::System,
        action::RETENTION,
        None,
        Some(details),
    )
    .await?;
    let staged = events.stage(&tx, gone).await?;
    tx.commit().await?;
    staged.dispatch();
    Ok(true)
}
