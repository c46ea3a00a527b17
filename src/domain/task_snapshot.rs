//! The task as a webhook carries it: the same fields, names and `version`
//! a subscriber of `bulkTaskUpdated` sees, so a receiver can order and
//! deduplicate by `version`, and a dashboard and a webhook never disagree.

use chrono::{SecondsFormat, TimeZone, Utc};
use entity::bulk_task;
use serde_json::{Value, json};

use super::status::Counters;
use crate::graphql::ids::{self, Kind};
use crate::store::items::ErrorCount;

/// Error codes a snapshot lists, most frequent first.
pub const ERROR_SUMMARY_LIMIT: usize = 10;

/// RFC 3339 in UTC with milliseconds, as the `DateTime` scalar writes it.
pub fn rfc3339(ms: i64) -> Value {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true)),
        None => Value::Null,
    }
}

fn json_text(text: Option<&str>) -> Value {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

/// The snapshot of `task`; `errors` are its FAILED and REJECTED items by
/// code (any order). Every field a webhook carries is added here, once.
pub fn snapshot(task: &bulk_task::Model, errors: &[ErrorCount]) -> Value {
    let c = Counters::from_task(task);
    let mut summary: Vec<&ErrorCount> = errors.iter().collect();
    summary.sort_by(|a, b| b.n.cmp(&a.n).then_with(|| a.code.cmp(&b.code)));
    let summary: Vec<Value> = summary
        .into_iter()
        .take(ERROR_SUMMARY_LIMIT)
        .map(|e| json!({ "code": e.code, "count": e.n, "sampleMessage": e.sample }))
        .collect();
    let error = task.error_code.as_ref().map(|code| {
        json!({
            "code": code,
            "message": task.error_message.clone().unwrap_or_default(),
            "details": json_text(task.error_details.as_deref()),
        })
    });
    json!({
        "id": ids::encode(Kind::BulkTask, task.id).0,
        "type": task.task_type,
        "description": task.description,
        "status": task.status.as_str(),
        "sealed": task.sealed,
        "cancelRequested": task.cancel_requested,
        "counters": {
            "total": c.total, "pending": c.pending, "running": c.running,
            "succeeded": c.succeeded, "failed": c.failed, "skipped": c.skipped,
            "rejected": c.rejected, "cancelled": c.cancelled, "finished": c.finished(),
        },
        "version": task.version,
        "progress": task.progress,
        "error": error,
        "metadata": json_text(Some(&task.metadata)),
        "result": json_text(task.result.as_deref()),
        "paused": task.paused,
        "priority": task.priority,
        "createdAt": rfc3339(task.created_at),
        "updatedAt": rfc3339(task.updated_at),
        "startedAt": task.started_at.map(rfc3339),
        "finishedAt": task.finished_at.map(rfc3339),
        "errorSummary": summary,
    })
}
