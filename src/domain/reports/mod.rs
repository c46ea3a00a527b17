//! Applying item results: transitions, counters and exactly-once accounting.
//!
//! A batch is one transaction. An identical repeat of a final result is a
//! duplicate (counted, no effect); anything else that cannot apply is a
//! problem for that position, and the rest of the batch still applies.

mod judge;

use std::collections::{HashMap, HashSet};

use entity::bulk_task;
use serde_json::Value;
use uuid::Uuid;

use super::Principal;
use super::admission::MAX_JSON_BYTES;
use super::commit::{Delta, begin_shared, clock, finish};
use super::leases::HEARTBEAT_EVERY_MS;
use super::policy::FailurePolicy;
use super::status::ItemStatus;
use crate::error::{AppResult, limit_exceeded};
use crate::events::EventBus;
use crate::store::items::{Expected, ItemState};
use crate::store::{Db, items};
use judge::{Judged, Tally, TaskRules, Verdict, judge, tally};

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

    let (tx, mut task) = begin_shared(db, who.organisation_id, task_id).await?;
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
    let targets: Vec<Option<i32>> = prepared
        .iter()
        .map(|(_, r)| match &r.item {
            ItemRef::Id(id) => by_id.get(id).copied(),
            ItemRef::Index(i) => states.contains_key(i).then_some(*i),
            ItemRef::ClientId(c) => by_client.get(c).copied(),
        })
        .collect();
    let rules = TaskRules {
        max_attempts: task.max_attempts,
        winding_down: task.cancel_requested || task.error_code.is_some(),
        policy: FailurePolicy::of(&task),
    };
    let now = clock(&task);
    let seen: HashMap<i32, Expected> = states.iter().map(|(i, s)| (*i, s.into())).collect();
    let mut judged = judge(&prepared, &targets, &mut states, None, &rules, now);
    let changed = changed_items(&judged);
    let changes: Vec<(Expected, ItemState)> = changed
        .iter()
        .filter_map(|i| Some((seen.get(i)?.clone(), states.get(i)?.clone())))
        .collect();
    let written: HashSet<i32> = items::apply_guarded(&tx, task.id, now, &changes)
        .await?
        .into_iter()
        .collect();
    let lost: HashSet<i32> = changed
        .into_iter()
        .filter(|i| !written.contains(i))
        .collect();
    if !lost.is_empty() {
        // Another writer changed these items after the read: decide their
        // results again from the rows as they now are, locked this time.
        let sorted: Vec<i32> = lost.iter().copied().collect();
        for i in &sorted {
            states.remove(i);
        }
        for s in items::states_locked(&tx, task.id, &sorted).await? {
            states.insert(s.idx, s);
        }
        judged.retain(|j| !j.idx.is_some_and(|i| lost.contains(&i)));
        let again = judge(&prepared, &targets, &mut states, Some(&lost), &rules, now);
        let rewrite: Vec<ItemState> = changed_items(&again)
            .iter()
            .filter_map(|i| states.get(i).cloned())
            .collect();
        items::apply(&tx, task.id, now, &rewrite).await?;
        judged.extend(again);
    }
    let changed = changed_items(&judged);
    let Tally {
        counters,
        applied,
        duplicates,
        problems,
    } = tally(judged, problems);
    if applied > 0 {
        let delta = Delta {
            counters,
            now,
            items: changed,
            heartbeat: true,
        };
        task = finish(tx, db, events, task.id, delta).await?;
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
    Ok(Report {
        task,
        applied,
        duplicates,
        problems,
    })
}

/// The positions the applied verdicts changed, in order, once each.
fn changed_items(judged: &[Judged]) -> Vec<i32> {
    let mut changed: Vec<i32> = judged
        .iter()
        .filter(|j| matches!(j.verdict, Verdict::Applied(_)))
        .filter_map(|j| j.idx)
        .collect();
    changed.sort_unstable();
    changed.dedup();
    changed
}
