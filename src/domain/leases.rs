//! Leases: workers claim pending items for a while, renew while they work,
//! and the reaper takes back what a dead worker held.

use entity::task_item;
use uuid::Uuid;

use super::audit::{self, Actor, action};
use super::commit::{Delta, begin_shared, clock, finish};
use super::status::{Counters, ItemStatus};
use super::{Principal, now_ms};
use crate::error::{AppError, AppResult, bad_input, limit_exceeded};
use crate::events::EventBus;
use crate::store::items::ItemState;
use crate::store::{Db, items, leases};

pub const MAX_CLAIM: i32 = 1_000;
pub const DEFAULT_LEASE_SECONDS: i32 = 60;
pub const MAX_LEASE_SECONDS: i32 = 3_600;
/// Code of the error an item gets when its lease ran out.
pub const LEASE_EXPIRED: &str = "LEASE_EXPIRED";
/// Least time between two heartbeat writes on one task that nothing else
/// writes: renewals and idle reports within it cost no write.
pub const HEARTBEAT_EVERY_MS: i64 = 1_000;
/// Tasks one claim by type looks at.
const TASKS_PER_CLAIM: u64 = 20;

#[derive(Clone, Debug, Default)]
pub struct ClaimRequest {
    pub task_id: Option<Uuid>,
    pub types: Option<Vec<String>>,
    pub limit: i32,
    pub lease_seconds: Option<i32>,
    pub worker_id: Option<String>,
}

/// A claimed item and the token its reports must carry.
pub struct Claimed {
    pub item: task_item::Model,
    pub lease_token: String,
}

fn lease_millis(seconds: Option<i32>) -> AppResult<i64> {
    let seconds = seconds.unwrap_or(DEFAULT_LEASE_SECONDS);
    if !(1..=MAX_LEASE_SECONDS).contains(&seconds) {
        return Err(bad_input(format!(
            "`leaseSeconds` must be between 1 and {MAX_LEASE_SECONDS}"
        )));
    }
    Ok(i64::from(seconds) * 1000)
}

fn new_token() -> String {
    format!("lt_{}", Uuid::new_v4().simple())
}

pub async fn claim(
    db: &Db,
    events: &EventBus,
    who: Principal,
    request: ClaimRequest,
) -> AppResult<Vec<Claimed>> {
    if request.limit < 1 {
        return Err(bad_input("`limit` must be at least 1"));
    }
    if request.limit > MAX_CLAIM {
        return Err(limit_exceeded(format!(
            "`limit` must be at most {MAX_CLAIM}"
        )));
    }
    let lease = lease_millis(request.lease_seconds)?;
    if request.worker_id.as_ref().is_some_and(|w| w.len() > 255) {
        return Err(bad_input("`workerId` must be at most 255 bytes"));
    }
    match (&request.task_id, &request.types) {
        (Some(id), _) => {
            claim_from_task(
                db,
                events,
                who,
                *id,
                request.limit as usize,
                lease,
                &request,
            )
            .await
        }
        (None, Some(types)) if types.len() > 100 => Err(limit_exceeded("at most 100 `types`")),
        (None, Some(types)) if !types.is_empty() => {
            claim_by_type(db, events, who, types, lease, &request).await
        }
        _ => Err(bad_input("name a `taskId` or at least one of `types`")),
    }
}

/// Claims from unfinished tasks of the types, highest priority first and
/// then oldest, task after task, until the limit is met or no task has
/// pending items; paused tasks and tasks scheduled for later are skipped.
async fn claim_by_type(
    db: &Db,
    events: &EventBus,
    who: Principal,
    types: &[String],
    lease: i64,
    request: &ClaimRequest,
) -> AppResult<Vec<Claimed>> {
    let mut claimed = Vec::new();
    let mut tried = std::collections::HashSet::new();
    loop {
        let candidates = leases::claimable_tasks(
            &db.reader(who.organisation_id).await?,
            types,
            now_ms(),
            TASKS_PER_CLAIM,
        )
        .await?;
        let fresh: Vec<Uuid> = candidates
            .into_iter()
            .filter(|id| tried.insert(*id))
            .collect();
        if fresh.is_empty() {
            return Ok(claimed);
        }
        for task_id in fresh {
            let wanted = request.limit as usize - claimed.len();
            match claim_from_task(db, events, who, task_id, wanted, lease, request).await {
                Ok(items) => claimed.extend(items),
                // A task deleted between the listing and the claim is simply gone.
                Err(AppError::NotFound(_)) => {}
                // Leases already committed must reach the worker, or their
                // items would wait for the reaper and lose an attempt.
                Err(e) if !claimed.is_empty() => {
                    tracing::warn!(error = ?e, "claim by type stopped early");
                    return Ok(claimed);
                }
                Err(e) => return Err(e),
            }
            if claimed.len() == request.limit as usize {
                return Ok(claimed);
            }
        }
    }
}

async fn claim_from_task(
    db: &Db,
    events: &EventBus,
    who: Principal,
    task_id: Uuid,
    wanted: usize,
    lease: i64,
    request: &ClaimRequest,
) -> AppResult<Vec<Claimed>> {
    let (tx, task) = begin_shared(db, who.organisation_id, task_id).await?;
    let scheduled_later = task.not_before.is_some_and(|t| t > now_ms());
    if task.cancel_requested
        || task.error_code.is_some()
        || task.pending == 0
        || task.paused
        || scheduled_later
    {
        tx.rollback().await?;
        return Ok(Vec::new());
    }
    let mut rows = leases::pending_items(&tx, task.id, wanted as u64).await?;
    if let Some(types) = &request.types
        && request.task_id.is_some()
        && !types.contains(&task.task_type)
    {
        rows.clear();
    }
    if rows.is_empty() {
        tx.rollback().await?;
        return Ok(Vec::new());
    }
    let now = clock(&task);
    for item in &mut rows {
        item.status = ItemStatus::Running;
        item.attempts += 1;
        item.worker_id = request.worker_id.clone();
        item.lease_token = Some(new_token());
        item.lease_expires_at = Some(now + lease);
        item.started_at = Some(now);
        item.updated_at = now;
    }
    // The rows are locked (SKIP LOCKED), so the write needs no guard.
    let changes: Vec<ItemState> = rows.iter().map(ItemState::from).collect();
    items::apply(&tx, task.id, now, &changes).await?;
    let mut counters = Counters::default();
    counters.shift(ItemStatus::Pending, ItemStatus::Running, rows.len() as i32);
    let delta = Delta {
        counters,
        now,
        items: changes.iter().map(|c| c.idx).collect(),
        heartbeat: true,
    };
    finish(tx, db, events, task.id, delta).await?;
    Ok(rows
        .into_iter()
        .map(|item| {
            let lease_token = item.lease_token.clone().unwrap_or_default();
            Claimed { item, lease_token }
        })
        .collect())
}

pub struct Renewal {
    pub renewed: i32,
    /// Tokens whose lease already ran out or whose item is final: stop working on them.
    pub expired: Vec<String>,
}

pub async fn renew(
    db: &Db,
    who: Principal,
    tokens: Vec<String>,
    seconds: Option<i32>,
) -> AppResult<Renewal> {
    if tokens.len() > MAX_CLAIM as usize {
        return Err(limit_exceeded(format!(
            "at most {MAX_CLAIM} tokens per renewal"
        )));
    }
    let lease = lease_millis(seconds)?;
    let now = now_ms();
    let tx = db.begin(who.organisation_id).await?;
    let renewed = leases::renew(&tx, &tokens, now + lease).await?;
    let mut task_ids: Vec<Uuid> = renewed.iter().map(|(_, task)| *task).collect();
    task_ids.sort_unstable();
    task_ids.dedup();
    leases::heartbeat(&tx, &task_ids, now, now - HEARTBEAT_EVERY_MS).await?;
    tx.commit().await?;
    let live: std::collections::HashSet<&String> = renewed.iter().map(|(t, _)| t).collect();
    let mut seen = std::collections::HashSet::new();
    let expired: Vec<String> = tokens
        .iter()
        .filter(|t| !live.contains(t) && seen.insert(t.as_str()))
        .cloned()
        .collect();
    Ok(Renewal {
        renewed: renewed.len() as i32,
        expired,
    })
}

/// Returns expired RUNNING items to PENDING, or FAILED with LEASE_EXPIRED
/// once their attempts are used up; returns how many it took back. Safe to
/// run on several instances at once, and beside claims and reports: the
/// expired items are locked with SKIP LOCKED, so each is taken back once.
pub async fn reap_expired(db: &Db, events: &EventBus) -> AppResult<usize> {
    let now = now_ms();
    let mut reaped = 0;
    // The scan crosses organisations; each task is then handled as its own.
    let due = leases::tasks_with_expired_leases(&db.system_reader().await?, now, 100).await?;
    for expired in due {
        let (tx, task) = match begin_shared(db, expired.organisation_id, expired.task_id).await {
            Ok(opened) => opened,
            Err(AppError::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        let mut rows: Vec<ItemState> = leases::expired_items(&tx, task.id, now).await?;
        if rows.is_empty() {
            tx.rollback().await?;
            continue;
        }
        let winding_down = task.cancel_requested || task.error_code.is_some();
        let at = clock(&task);
        let mut counters = Counters::default();
        let mut outcomes = [0i32; 3];
        for item in &mut rows {
            let next = if item.attempts >= task.max_attempts {
                ItemStatus::Failed
            } else if winding_down {
                ItemStatus::Cancelled
            } else {
                ItemStatus::Pending
            };
            counters.shift(ItemStatus::Running, next, 1);
            outcomes[match next {
                ItemStatus::Pending => 0,
                ItemStatus::Failed => 1,
                _ => 2,
            }] += 1;
            item.status = next;
            item.error_code = Some(LEASE_EXPIRED.to_owned());
            item.error_message = Some("the worker's lease ran out before it reported".to_owned());
            item.error_details = None;
            item.lease_token = None;
            item.lease_expires_at = None;
            item.finished_at = next.is_final().then_some(at);
        }
        let [returned, failed, cancelled] = outcomes;
        let details = serde_json::json!({
            "returned": returned, "failed": failed, "cancelled": cancelled
        });
        let (id, system) = (task.id, Actor::System);
        audit::record(
            &tx,
            id,
            at,
            system,
            action::LEASE_EXPIRY,
            None,
            Some(details),
        )
        .await?;
        items::apply(&tx, id, at, &rows).await?;
        let delta = Delta {
            counters,
            now: at,
            items: rows.iter().map(|r| r.idx).collect(),
            heartbeat: false,
        };
        finish(tx, db, events, id, delta).await?;
        reaped += rows.len();
    }
    Ok(reaped)
}
