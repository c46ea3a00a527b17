//! Applying item results: transitions, counters and exactly-once accounting.
//!
//! A batch is one transaction. An identical repeat of a final result is a
//! duplicate (counted, no effect); anything else that cannot apply is a
//! problem for that position, and the rest of the batch still applies.

use std::collections::HashMap;

use entity::bulk_task;
use serde_json::Value;
use uuid::Uuid;

use super::Principal;
use super::admission::MAX_JSON_BYTES;
use super::commit::{clock, commit_items};
use super::leases::HEARTBEAT_EVERY_MS;
use super::policy::FailurePolicy;
use super::status::{Counters, ItemStatus};
use crate::error::{AppResult, limit_exceeded, not_found};
use crate::events::EventBus;
use crate::store::items::ItemState;
use crate::store::{Db, items, tasks};

/// Most results in one report.
pub const MAX_RESULTS_PER_CALL: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemRef {
    Id(Uuid),
    ClientId(String),
    Index(i32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Running,
    Succeeded,
    Failed,
    Skipped,
}

impl Outcome {
    fn status(self) -> ItemStatus {
        match self {
            Outcome::Running => ItemStatus::Running,
            Outcome::Succeeded => ItemStatus::Succeeded,
            Outcome::Failed => ItemStatus::Failed,
            Outcome::Skipped => ItemStatus::Skipped,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ItemError {
    pub code: String,
    pub message: String,
    pub details: Option<Value>,
}

/// One result as the worker sent it. `item` is an error message when the
/// result did not name exactly one item.
#[derive(Clone, Debug)]
pub struct ItemResult {
    pub item: Result<ItemRef, String>,
    pub lease_token: Option<String>,
    pub outcome: Outcome,
    pub result: Option<Value>,
    pub error: Option<ItemError>,
    pub retryable: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub position: i32,
    pub code: &'static str,
    pub message: String,
}

pub struct Report {
    pub task: bulk_task::Model,
    pub applied: i32,
    pub duplicates: i32,
    pub problems: Vec<Problem>,
}

/// A result ready to apply: its JSON encoded once, up front.
struct Prepared {
    item: ItemRef,
    lease_token: Option<String>,
    outcome: Outcome,
    result: Option<String>,
    error: Option<(String, String, Option<String>)>,
    retryable: bool,
}

fn prepare(r: ItemResult) -> Result<Prepared, (&'static str, String)> {
    let bad = |m: &str| ("BAD_USER_INPUT", m.to_owned());
    let item = r.item.map_err(|m| bad(&m))?;
    let result = r
        .result
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| bad(&e.to_string()))?;
    if result.as_ref().is_some_and(|t| t.len() > MAX_JSON_BYTES) {
        return Err(bad("result is larger than 64 KiB"));
    }
    let error = match (&r.error, r.outcome) {
        (None, Outcome::Failed) => return Err(bad("a FAILED result needs an error")),
        (Some(e), _) if e.code.is_empty() => return Err(bad("error.code must not be empty")),
        (Some(e), _) => {
            let details = e
                .details
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| bad(&e.to_string()))?;
            if details.as_ref().is_some_and(|t| t.len() > MAX_JSON_BYTES)
                || e.message.len() > MAX_JSON_BYTES
            {
                return Err(bad("error is larger than 64 KiB"));
            }
            Some((e.code.clone(), e.message.clone(), details))
        }
        (None, _) => None,
    };
    Ok(Prepared {
        item,
        lease_token: r.lease_token,
        outcome: r.outcome,
        result,
        error,
        retryable: r.retryable,
    })
}

enum Verdict {
    Applied(ItemStatus),
    Duplicate,
    Problem(&'static str, String),
}

/// Whether the task accepts new work (retries) rather than only finishing
/// what runs, and which error codes its policy never retries.
struct TaskRules {
    max_attempts: i32,
    winding_down: bool,
    policy: Option<FailurePolicy>,
}

impl TaskRules {
    fn retries(&self, error: &Option<(String, String, Option<String>)>) -> bool {
        match (&self.policy, error) {
            (Some(policy), Some((code, _, _))) => !policy.is_non_retryable(code),
            _ => true,
        }
    }
}

fn transition(item: &mut ItemState, r: &Prepared, rules: &TaskRules, now: i64) -> Verdict {
    let current = item.status;
    if current.is_final() {
        let same = current == r.outcome.status()
            && item.result == r.result
            && match &r.error {
                None => item.error_code.is_none() || current != ItemStatus::Failed,
                Some((code, message, details)) => {
                    item.error_code.as_ref() == Some(code)
                        && item.error_message.as_ref() == Some(message)
                        && item.error_details == *details
                }
            };
        return if same
            && matches!(
                current,
                ItemStatus::Succeeded | ItemStatus::Failed | ItemStatus::Skipped
            ) {
            Verdict::Duplicate
        } else {
            Verdict::Problem(
                "ITEM_ALREADY_FINAL",
                format!("the item is already {current}"),
            )
        };
    }
    if item.lease_token != r.lease_token {
        return Verdict::Problem(
            "LEASE_MISMATCH",
            match &item.lease_token {
                Some(_) => "the lease token is missing, stale or belongs to another claim".into(),
                None => "the item holds no lease (it may have expired)".into(),
            },
        );
    }
    let attempts = if current == ItemStatus::Pending {
        item.attempts + 1
    } else {
        item.attempts
    };
    match r.outcome {
        Outcome::Running if current == ItemStatus::Running => Verdict::Duplicate,
        Outcome::Running => {
            item.status = ItemStatus::Running;
            item.attempts = attempts;
            item.started_at = Some(now);
            // Without a claim there is no lease to renew; the item still
            // comes back to PENDING if its worker never reports again.
            item.lease_expires_at = Some(now + i64::from(super::leases::MAX_LEASE_SECONDS) * 1000);
            Verdict::Applied(ItemStatus::Running)
        }
        outcome => {
            let retry = outcome == Outcome::Failed
                && r.retryable
                && attempts < rules.max_attempts
                && rules.retries(&r.error);
            let next = match (retry, rules.winding_down) {
                (true, false) => ItemStatus::Pending,
                (true, true) => ItemStatus::Cancelled,
                (false, _) => outcome.status(),
            };
            item.status = next;
            item.attempts = attempts;
            item.result = r.result.clone();
            (item.error_code, item.error_message, item.error_details) = match &r.error {
                Some((c, m, d)) => (Some(c.clone()), Some(m.clone()), d.clone()),
                None => (None, None, None),
            };
            item.lease_token = None;
            item.lease_expires_at = None;
            item.started_at = item.started_at.or(Some(now));
            item.finished_at = next.is_final().then_some(now);
            Verdict::Applied(next)
        }
    }
}

pub async fn report(
    db: &Db,
    events: &EventBus,
    who: Principal,
    task_id: Uuid,
    results: Vec<ItemResult>,
) -> AppResult<Report> {
    if results.len() > MAX_RESULTS_PER_CALL {
        return Err(limit_exceeded(format!(
            "at most {MAX_RESULTS_PER_CALL} results per call"
        )));
    }
    let mut problems = Vec::new();
    let mut prepared = Vec::with_capacity(results.len());
    for (position, r) in results.into_iter().enumerate() {
        match prepare(r) {
            Ok(p) => prepared.push((position as i32, p)),
            Err((code, message)) => problems.push(Problem {
                position: position as i32,
                code,
                message,
            }),
        }
    }
    let (mut ids, mut indexes, mut client_ids) = (Vec::new(), Vec::new(), Vec::new());
    for (_, p) in &prepared {
        match &p.item {
            ItemRef::Id(id) => ids.push(*id),
            ItemRef::Index(i) => indexes.push(*i),
            ItemRef::ClientId(c) => client_ids.push(c.clone()),
        }
    }

    let tx = db.begin(who.organisation_id).await?;
    let mut task = tasks::lock(&tx, task_id)
        .await?
        .ok_or_else(|| not_found("task"))?;
    let loaded = items::states(&tx, task.id, &ids, &indexes, &client_ids).await?;
    let mut states: HashMap<i32, ItemState> = HashMap::with_capacity(loaded.len());
    let (mut by_id, mut by_client) = (HashMap::new(), HashMap::new());
    for s in loaded {
        by_id.insert(s.id, s.idx);
        if let Some(c) = &s.client_item_id {
            by_client.insert(c.clone(), s.idx);
        }
        states.insert(s.idx, s);
    }
    let rules = TaskRules {
        max_attempts: task.max_attempts,
        winding_down: task.cancel_requested || task.error_code.is_some(),
        policy: FailurePolicy::of(&task),
    };
    let now = clock(&task);
    let mut counters = Counters::from_task(&task);
    let (mut applied, mut duplicates) = (0, 0);
    let mut changed = Vec::new();
    for (position, r) in &prepared {
        let idx = match &r.item {
            ItemRef::Id(id) => by_id.get(id).copied(),
            ItemRef::Index(i) => states.contains_key(i).then_some(*i),
            ItemRef::ClientId(c) => by_client.get(c).copied(),
        };
        let Some(item) = idx.and_then(|i| states.get_mut(&i)) else {
            problems.push(Problem {
                position: *position,
                code: "ITEM_NOT_FOUND",
                message: "no such item in this task".into(),
            });
            continue;
        };
        let before = item.status;
        match transition(item, r, &rules, now) {
            Verdict::Applied(after) => {
                counters.shift(before, after, 1);
                applied += 1;
                changed.push(item.idx);
            }
            Verdict::Duplicate => duplicates += 1,
            Verdict::Problem(code, message) => problems.push(Problem {
                position: *position,
                code,
                message,
            }),
        }
    }
    if applied > 0 {
        changed.sort_unstable();
        changed.dedup();
        let changes: Vec<ItemState> = changed.iter().filter_map(|i| states.remove(i)).collect();
        task.last_heartbeat_at = Some(now);
        commit_items(tx, events, &mut task, counters, now, &changes).await?;
    } else if task
        .last_heartbeat_at
        .is_none_or(|at| at < now - HEARTBEAT_EVERY_MS)
    {
        // Nothing changed, but the worker is alive: worth a write once a second.
        crate::store::leases::heartbeat(&tx, &[task.id], now, now - HEARTBEAT_EVERY_MS).await?;
        tx.commit().await?;
        task.last_heartbeat_at = Some(now);
    } else {
        tx.rollback().await?;
    }
    problems.sort_by_key(|p| p.position);
    Ok(Report {
        task,
        applied,
        duplicates,
        problems,
    })
}
