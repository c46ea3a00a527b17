//! Deciding what each result of a report does to its item, from the item's
//! row as read: the verdicts, and the changes they make.

use std::collections::{HashMap, HashSet};

use super::{Outcome, Prepared, Problem};
use crate::domain::policy::FailurePolicy;
use crate::domain::status::{Counters, ItemStatus};
use crate::store::items::ItemState;

pub(super) enum Verdict {
    Applied(ItemStatus),
    Duplicate,
    Problem(&'static str, String),
}

/// Whether the task accepts new work (retries) rather than only finishing
/// what runs, and which error codes its policy never retries.
pub(super) struct TaskRules {
    pub max_attempts: i32,
    pub winding_down: bool,
    pub policy: Option<FailurePolicy>,
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
            item.lease_expires_at =
                Some(now + i64::from(crate::domain::leases::MAX_LEASE_SECONDS) * 1000);
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

/// One result's verdict on the item it names (None when it names none).
pub(super) struct Judged {
    pub position: i32,
    pub idx: Option<i32>,
    pub verdict: Verdict,
    /// The item's status before this result, for the counters.
    pub before: ItemStatus,
}

/// Judges the results in order against `states`, changing them as they
/// apply; with `only`, just the results that name those items.
pub(super) fn judge(
    prepared: &[(i32, Prepared)],
    targets: &[Option<i32>],
    states: &mut HashMap<i32, ItemState>,
    only: Option<&HashSet<i32>>,
    rules: &TaskRules,
    now: i64,
) -> Vec<Judged> {
    let mut out = Vec::new();
    for ((position, r), idx) in prepared.iter().zip(targets) {
        if only.is_some_and(|o| !idx.is_some_and(|i| o.contains(&i))) {
            continue;
        }
        let Some(item) = idx.and_then(|i| states.get_mut(&i)) else {
            out.push(Judged {
                position: *position,
                idx: None,
                verdict: Verdict::Problem("ITEM_NOT_FOUND", "no such item in this task".into()),
                before: ItemStatus::Pending,
            });
            continue;
        };
        let before = item.status;
        let verdict = transition(item, r, rules, now);
        out.push(Judged {
            position: *position,
            idx: Some(item.idx),
            verdict,
            before,
        });
    }
    out
}

/// What the verdicts add up to.
#[derive(Default)]
pub(super) struct Tally {
    pub counters: Counters,
    pub applied: i32,
    pub duplicates: i32,
    pub problems: Vec<Problem>,
}

pub(super) fn tally(judged: Vec<Judged>, problems: Vec<Problem>) -> Tally {
    let mut t = Tally {
        problems,
        ..Tally::default()
    };
    for j in judged {
        match j.verdict {
            Verdict::Applied(after) => {
                t.counters.shift(j.before, after, 1);
                t.applied += 1;
            }
            Verdict::Duplicate => t.duplicates += 1,
            Verdict::Problem(code, message) => t.problems.push(Problem {
                position: j.position,
                code,
                message,
            }),
        }
    }
    t.problems.sort_by_key(|p| p.position);
    t
}
