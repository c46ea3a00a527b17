//! Deadlines: a task still unfinished at its deadline is failed with
//! DEADLINE_EXCEEDED, exactly as `failBulkTask` would, by the server.

use serde_json::json;

use super::audit::{self, Actor, action};
use super::commit::{wind_down, with_task};
use super::now_ms;
use crate::error::{AppError, AppResult};
use crate::events::EventBus;
use crate::store::{Db, deadlines};

/// Task-level error code of a task that missed its deadline.
pub const DEADLINE_EXCEEDED: &str = "DEADLINE_EXCEEDED";
/// Tasks one pass looks at; the next pass takes the rest.
const TASKS_PER_PASS: u64 = 100;

/// Fails the overdue tasks; returns how many it failed. Safe to run on
/// several instances at once: each task is failed holding it exclusively
/// after reading it again, so a task another instance failed first is left alone.
pub async fn fail_overdue(db: &Db, events: &EventBus) -> AppResult<usize> {
    let now = now_ms();
    // The scan crosses organisations; each task is then handled as its own.
    let due = deadlines::overdue(&db.system_reader().await?, now, TASKS_PER_PASS).await?;
    let mut failed = 0;
    for task in due {
        let change = with_task(
            db,
            events,
            task.organisation_id,
            task.id,
            async |tx, task| {
                let due = task.deadline.is_some_and(|d| d <= now);
                if !due
                    || task.status.is_terminal()
                    || task.error_code.is_some()
                    || task.cancel_requested
                {
                    return Ok(false);
                }
                let deadline = task.deadline.unwrap_or(now);
                let when = chrono::DateTime::from_timestamp_millis(deadline)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                    .unwrap_or_default();
                let message = format!("the task was not finished by its deadline, {when}");
                let details = json!({ "deadline": deadline });
                let text = details.to_string();
                let cancelled = wind_down(tx, task, |task| {
                    task.error_code = Some(DEADLINE_EXCEEDED.to_owned());
                    task.error_message = Some(message.clone());
                    task.error_details = Some(text);
                })
                .await?;
                let details = json!({ "deadline": deadline, "cancelledItems": cancelled });
                let (id, at) = (task.id, task.updated_at);
                audit::record(
                    tx,
                    id,
                    at,
                    Actor::System,
                    action::DEADLINE,
                    Some(message),
                    Some(details),
                )
                .await?;
                Ok(true)
            },
        )
        .await;
        match change {
            Ok((_, true)) => failed += 1,
            Ok((_, false)) | Err(AppError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(failed)
}
