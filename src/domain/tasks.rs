//! Task lifecycle after creation: append, seal, cancel, fail, retry, delete.

use entity::bulk_task;
use serde_json::{Value, json};
use uuid::Uuid;

use super::Principal;
use super::admission::{
    MAX_KEY, MAX_LIST, MAX_TEXT, NewTaskItem, Rejection, admit, check_item_count, count_admitted,
};
use super::audit::{self, action, check_reason};
use super::commit::{clock, event, touch, wind_down, with_task};
use super::policy::FailurePolicy;
use super::status::{Counters, ItemStatus};
use crate::error::{AppResult, bad_input, invalid_state, limit_exceeded, not_found};
use crate::events::EventBus;
use crate::store::tasks::Hold;
use crate::store::{Db, items, tasks};

pub struct Appended {
    pub task: bulk_task::Model,
    pub rejected: Vec<Rejection>,
}

fn ensure_open(task: &bulk_task::Model) -> AppResult<()> {
    if task.error_code.is_some() {
        return Err(invalid_state("the task was failed"));
    }
    if task.cancel_requested {
        return Err(invalid_state("the task was cancelled"));
    }
    Ok(())
}

pub async fn append(
    db: &Db,
    events: &EventBus,
    who: Principal,
    id: Uuid,
    new_items: Vec<NewTaskItem>,
    seal: bool,
) -> AppResult<Appended> {
    check_item_count(new_items.len())?;
    let (task, rejected) = with_task(db, events, who.organisation_id, id, async |tx, task| {
        ensure_open(task)?;
        if task.sealed {
            return Err(invalid_state(
                "the task is sealed; no more items can be appended",
            ));
        }
        let candidates: Vec<String> = new_items
            .iter()
            .filter_map(|i| i.client_item_id.clone())
            .collect();
        let taken = items::taken_client_ids(tx, task.id, &candidates)
            .await?
            .into_iter()
            .collect();
        let now = clock(task);
        let (rows, rejected) = admit(&new_items, task.total, taken, now)?;
        items::insert(tx, task.id, now, &rows).await?;
        let mut counters = Counters::from_task(task);
        count_admitted(&mut counters, &rows);
        let sealing = seal && !task.sealed;
        task.sealed = seal;
        if !rows.is_empty() || sealing {
            touch(task, counters, now);
            let details =
                json!({ "items": rows.len(), "rejected": rejected.len(), "sealed": seal });
            audit::record(tx, task.id, now, who, action::APPEND, None, Some(details)).await?;
        }
        Ok(rejected)
    })
    .await?;
    Ok(Appended { task, rejected })
}

pub async fn seal(
    db: &Db,
    events: &EventBus,
    who: Principal,
    id: Uuid,
) -> AppResult<bulk_task::Model> {
    let (task, ()) = with_task(db, events, who.organisation_id, id, async |tx, task| {
        if !task.sealed {
            task.sealed = true;
            let now = clock(task);
            touch(task, Counters::from_task(task), now);
            audit::record(tx, task.id, now, who, action::SEAL, None, None).await?;
        }
        Ok(())
    })
    .await?;
    Ok(task)
}

pub async fn cancel(
    db: &Db,
    events: &EventBus,
    who: Principal,
    id: Uuid,
    reason: Option<String>,
) -> AppResult<bulk_task::Model> {
    check_reason(&reason)?;
    let (task, ()) = with_task(db, events, who.organisation_id, id, async |tx, task| {
        if task.cancel_requested {
            return Ok(());
        }
        let cancelled = wind_down(tx, task, |task| task.cancel_requested = true).await?;
        let details = json!({ "cancelledItems": cancelled });
        let at = task.updated_at;
        Ok(audit::record(tx, task.id, at, who, action::CANCEL, reason, Some(details)).await?)
    })
    .await?;
    Ok(task)
}

pub struct TaskError {
    pub code: String,
    pub message: String,
    pub details: Option<Value>,
}

pub async fn fail(
    db: &Db,
    events: &EventBus,
    who: Principal,
    id: Uuid,
    error: TaskError,
) -> AppResult<bulk_task::Model> {
    if error.code.is_empty() || error.code.len() > MAX_KEY {
        return Err(bad_input(format!("`code` must be 1 to {MAX_KEY} bytes")));
    }
    if error.message.len() > MAX_TEXT {
        return Err(bad_input(format!(
            "`message` must be at most {MAX_TEXT} bytes"
        )));
    }
    let details = error
        .details
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?;
    let (task, ()) = with_task(db, events, who.organisation_id, id, async |tx, task| {
        let (code, reason) = (error.code.clone(), error.message.clone());
        let cancelled = wind_down(tx, task, |task| {
            task.error_code = Some(error.code);
            task.error_message = Some(error.message);
            task.error_details = details;
        })
        .await?;
        let details = json!({ "code": code, "cancelledItems": cancelled });
        let at = task.updated_at;
        Ok(audit::record(
            tx,
            task.id,
            at,
            who,
            action::FAIL,
            Some(reason),
            Some(details),
        )
        .await?)
    })
    .await?;
    Ok(task)
}

/// Sends FAILED items back to PENDING: those named, or all of them, but
/// for codes the task's policy declares non-retryable unless `error_codes`
/// names them.
pub async fn retry_failed(
    db: &Db,
    events: &EventBus,
    who: Principal,
    id: Uuid,
    item_ids: Option<Vec<Uuid>>,
    error_codes: Option<Vec<String>>,
    reason: Option<String>,
) -> AppResult<bulk_task::Model> {
    check_reason(&reason)?;
    let listed = item_ids.as_ref().map_or(0, Vec::len) + error_codes.as_ref().map_or(0, Vec::len);
    if listed > MAX_LIST {
        return Err(limit_exceeded(format!(
            "at most {MAX_LIST} item ids and error codes"
        )));
    }
    let (task, ()) = with_task(db, events, who.organisation_id, id, async |tx, task| {
        ensure_open(task)?;
        let now = clock(task);
        let kept = match (&error_codes, FailurePolicy::of(task)) {
            (None, Some(policy)) if !policy.non_retryable_codes.is_empty() => {
                Some(policy.non_retryable_codes)
            }
            _ => None,
        };
        let retried = items::retry_failed(
            tx,
            task.id,
            item_ids.as_deref(),
            error_codes.as_deref(),
            kept.as_deref(),
            now,
        )
        .await?;
        if retried > 0 {
            let mut counters = Counters::from_task(task);
            counters.shift(ItemStatus::Failed, ItemStatus::Pending, retried);
            touch(task, counters, now);
            let details = json!({
                "retried": retried,
                "itemIds": item_ids.as_ref().map(Vec::len),
                "errorCodes": error_codes,
            });
            audit::record(tx, task.id, now, who, action::RETRY, reason, Some(details)).await?;
        }
        Ok(())
    })
    .await?;
    Ok(task)
}

/// Deletes a task and its items; its audit trail stays, with this entry last.
pub async fn delete(
    db: &Db,
    events: &EventBus,
    who: Principal,
    id: Uuid,
    reason: Option<String>,
) -> AppResult<()> {
    check_reason(&reason)?;
    let tx = db.begin(who.organisation_id).await?;
    tasks::hold(&tx, id, Hold::Exclusive).await?;
    let task = tasks::find(&tx, id)
        .await?
        .ok_or_else(|| not_found("task"))?;
    // Items before the task row, the order every writer keeps.
    tasks::delete(&tx, id).await?;
    let details = json!({ "type": task.task_type, "total": task.total, "status": task.status });
    let at = clock(&task);
    audit::record(&tx, id, at, who, action::DELETE, reason, Some(details)).await?;
    let mut gone = event(&task, Some(Vec::new()));
    gone.version += 1;
    gone.deleted = true;
    let staged = events.stage(&tx, gone).await?;
    tx.commit().await?;
    staged.dispatch();
    Ok(())
}
