//! Admission: which submitted items a task accepts, and why the others are
//! refused (they are stored REJECTED, so positions stay dense).

use std::collections::HashSet;
use std::sync::LazyLock;

use serde::Serialize;
use serde_json::Value;

use super::policy::FailurePolicy;
use super::status::{Counters, ItemStatus};
use crate::error::{AppResult, bad_input, limit_exceeded};
use crate::store::items::NewItem;

/// Largest payload, metadata or result accepted, in bytes of JSON.
pub const MAX_JSON_BYTES: usize = 64 * 1024;
/// Most items accepted in one create or append.
pub const MAX_ITEMS_PER_CALL: usize = 200_000;
pub const DEFAULT_MAX_ATTEMPTS: i32 = 3;
const MAX_ATTEMPTS_LIMIT: i32 = 100;
pub(crate) const MAX_TEXT: usize = 10_000;
pub(crate) const MAX_KEY: usize = 255;
/// Most entries in a list argument that becomes bind parameters.
pub const MAX_LIST: usize = 10_000;

static TASK_TYPE: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[a-z][a-z0-9_.:-]{0,63}$").expect("a valid pattern"));

#[derive(Clone, Debug, Serialize)]
pub struct NewTaskItem {
    pub client_item_id: Option<String>,
    pub payload: Option<Value>,
    /// The producer's own refusal: the item is stored REJECTED with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject: Option<ProducerRejection>,
}

/// Why the producer refused an item before submitting it, in the
/// producer's own terms (e.g. `INSUFFICIENT_CREDITS`).
#[derive(Clone, Debug, Serialize)]
pub struct ProducerRejection {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

#[derive(Clone, Debug, Serialize)]
pub struct NewTask {
    pub task_type: String,
    pub description: Option<String>,
    pub metadata: Option<Value>,
    pub idempotency_key: Option<String>,
    pub max_attempts: Option<i32>,
    pub sealed: Option<bool>,
    /// Seconds to keep the task once finished; the server's default when None, forever when 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retain_for: Option<i32>,
    pub items: Vec<NewTaskItem>,
    pub failure_policy: Option<FailurePolicy>,
    pub priority: Option<i32>,
    pub not_before: Option<i64>,
    pub deadline: Option<i64>,
}

/// Priorities run from -100 to 100; claims by type take higher first.
pub const PRIORITIES: std::ops::RangeInclusive<i32> = -100..=100;

pub(crate) fn check_priority(priority: i32) -> AppResult<()> {
    if !PRIORITIES.contains(&priority) {
        return Err(bad_input("`priority` must be between -100 and 100"));
    }
    Ok(())
}

/// An item refused at admission; it is stored as REJECTED.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    pub index: i32,
    pub client_item_id: Option<String>,
    pub code: String,
    pub message: String,
}

pub(crate) fn validate(input: &NewTask) -> AppResult<()> {
    if !TASK_TYPE.is_match(&input.task_type) {
        return Err(bad_input(
            "`type` must start with a lower-case letter and use only a-z, 0-9, _ . : - (at most 64 characters)",
        ));
    }
    if input
        .description
        .as_ref()
        .is_some_and(|d| d.len() > MAX_TEXT)
    {
        return Err(bad_input(format!(
            "`description` must be at most {MAX_TEXT} bytes"
        )));
    }
    if let Some(meta) = &input.metadata {
        if !meta.is_object() {
            return Err(bad_input("`metadata` must be a JSON object"));
        }
        if serde_json::to_string(meta)?.len() > MAX_JSON_BYTES {
            return Err(bad_input(format!(
                "`metadata` must be at most {MAX_JSON_BYTES} bytes"
            )));
        }
    }
    if let Some(key) = &input.idempotency_key
        && (key.is_empty() || key.len() > MAX_KEY)
    {
        return Err(bad_input(format!(
            "`idempotencyKey` must be 1 to {MAX_KEY} bytes"
        )));
    }
    if let Some(n) = input.max_attempts
        && !(1..=MAX_ATTEMPTS_LIMIT).contains(&n)
    {
        return Err(bad_input(format!(
            "`maxAttempts` must be between 1 and {MAX_ATTEMPTS_LIMIT}"
        )));
    }
    if input.retain_for.is_some_and(|s| s < 0) {
        return Err(bad_input("`retainFor` must not be negative"));
    }
    if let Some(policy) = &input.failure_policy {
        policy.validate()?;
    }
    if let Some(priority) = input.priority {
        check_priority(priority)?;
    }
    if let Some(deadline) = input.deadline {
        if deadline <= super::now_ms() {
            return Err(bad_input("`deadline` must be in the future"));
        }
        if input.not_before.is_some_and(|t| t >= deadline) {
            return Err(bad_input("`notBefore` must be before `deadline`"));
        }
    }
    check_item_count(input.items.len())
}

pub(crate) fn check_item_count(n: usize) -> AppResult<()> {
    if n > MAX_ITEMS_PER_CALL {
        return Err(limit_exceeded(format!(
            "at most {MAX_ITEMS_PER_CALL} items per call; append the rest with appendTaskItems"
        )));
    }
    Ok(())
}

/// Refuses a producer rejection that could not be stored as an item error.
fn check_rejection(index: i32, r: &ProducerRejection) -> AppResult<Option<String>> {
    if r.code.is_empty() || r.code.len() > MAX_KEY {
        return Err(bad_input(format!(
            "item {index}: `reject.code` must be 1 to {MAX_KEY} bytes"
        )));
    }
    if r.message.len() > MAX_TEXT {
        return Err(bad_input(format!(
            "item {index}: `reject.message` must be at most {MAX_TEXT} bytes"
        )));
    }
    let details = r.details.as_ref().map(serde_json::to_string).transpose()?;
    if details.as_ref().is_some_and(|d| d.len() > MAX_JSON_BYTES) {
        return Err(bad_input(format!(
            "item {index}: `reject.details` must be at most {MAX_JSON_BYTES} bytes"
        )));
    }
    Ok(details)
}

/// Decides which items are admitted; `taken` holds client ids that accepted
/// items of the task already use.
pub(crate) fn admit(
    items: &[NewTaskItem],
    first_index: i32,
    mut taken: HashSet<String>,
    now: i64,
) -> AppResult<(Vec<NewItem>, Vec<Rejection>)> {
    let mut rows = Vec::with_capacity(items.len());
    let mut rejected = Vec::new();
    for (n, item) in items.iter().enumerate() {
        let index = first_index + n as i32;
        let payload = item
            .payload
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?;
        let producer = item
            .reject
            .as_ref()
            .map(|r| check_rejection(index, r).map(|details| (r, details)))
            .transpose()?;
        let checked = match (&item.client_item_id, &item.payload, &payload) {
            (Some(id), _, _) if id.is_empty() || id.len() > MAX_KEY || id.contains('\0') => Some((
                "INVALID_CLIENT_ITEM_ID".to_owned(),
                format!("clientItemId must be 1 to {MAX_KEY} bytes, without NUL"),
            )),
            (_, Some(p), _) if !p.is_object() => Some((
                "PAYLOAD_NOT_OBJECT".to_owned(),
                "payload must be a JSON object".into(),
            )),
            (_, _, Some(text)) if text.len() > MAX_JSON_BYTES => Some((
                "PAYLOAD_TOO_LARGE".to_owned(),
                format!(
                    "payload is {} bytes, the limit is {MAX_JSON_BYTES}",
                    text.len()
                ),
            )),
            (Some(id), _, _) if taken.contains(id) => Some((
                "DUPLICATE_CLIENT_ITEM_ID".to_owned(),
                format!("clientItemId {id:?} is already used by another item of this task"),
            )),
            _ => None,
        };
        // The producer's own refusal comes first: it is why the item is there.
        let refusal = match &producer {
            Some((r, _)) => Some((r.code.clone(), r.message.clone())),
            None => checked,
        };
        let mut row = NewItem {
            id: NewItem::new_id(),
            idx: index,
            client_item_id: item.client_item_id.clone(),
            status: ItemStatus::Pending,
            payload,
            error_code: None,
            error_message: None,
            error_details: None,
            finished_at: None,
        };
        match refusal {
            Some((code, message)) => {
                row.status = ItemStatus::Rejected;
                row.error_code = Some(code.clone());
                row.error_message = Some(message.clone());
                row.error_details = producer.and_then(|(_, details)| details);
                row.finished_at = Some(now);
                rejected.push(Rejection {
                    index,
                    client_item_id: item.client_item_id.clone(),
                    code,
                    message,
                });
            }
            None => {
                if let Some(id) = &item.client_item_id {
                    taken.insert(id.clone());
                }
            }
        }
        rows.push(row);
    }
    Ok((rows, rejected))
}

pub(crate) fn count_admitted(counters: &mut Counters, rows: &[NewItem]) {
    let rejected = rows
        .iter()
        .filter(|r| r.status == ItemStatus::Rejected)
        .count() as i32;
    counters.admit(ItemStatus::Rejected, rejected);
    counters.admit(ItemStatus::Pending, rows.len() as i32 - rejected);
}
