//! The transactional outbox: a change that fires webhooks writes one
//! delivery row per matching endpoint in its own transaction, so a
//! committed change always gets its deliveries and a rolled-back one never
//! does. The dispatcher (`jobs::webhooks`) sends them after the commit.

use entity::bulk_task;
use serde_json::json;
use uuid::Uuid;

use super::status::TaskStatus;
use super::task_snapshot::{rfc3339, snapshot};
use super::webhooks::{DeliveryStatus, WebhookEvent, message_id};
use crate::store::webhook_deliveries::NewDelivery;
use crate::store::{Writer, items, webhook_deliveries, webhooks};

/// The events a change fires: `before` is the task's status before the
/// change, `None` for a task just created.
fn fired(task: &bulk_task::Model, before: Option<TaskStatus>) -> Vec<WebhookEvent> {
    let after = task.status;
    let mut events = Vec::new();
    match before {
        None => events.push(WebhookEvent::TaskCreated),
        Some(was) if was != after => events.push(WebhookEvent::TaskStatusChanged),
        Some(_) => return events,
    }
    if after.is_terminal() && !before.is_some_and(TaskStatus::is_terminal) {
        events.push(WebhookEvent::TaskFinished);
    }
    events
}

/// Writes the deliveries that the change of `task` (saved in `tx`, not yet
/// committed) fires. Costs nothing for a change that keeps the status, and
/// one statement for one that changes it but has no endpoint to go to.
pub(crate) async fn record(
    tx: &Writer,
    task: &bulk_task::Model,
    before: Option<TaskStatus>,
) -> Result<(), sea_orm::DbErr> {
    let events = fired(task, before);
    if events.is_empty() {
        return Ok(());
    }
    let endpoints = webhooks::enabled(tx).await?;
    let wanted = |event: WebhookEvent| {
        endpoints
            .iter()
            .filter(move |e| super::webhooks::subscribes(e, event, &task.task_type))
    };
    if events.iter().all(|e| wanted(*e).next().is_none()) {
        return Ok(());
    }
    let errors = if task.failed + task.rejected > 0 {
        items::error_counts(tx, &[task.id]).await?
    } else {
        Vec::new()
    };
    let data = snapshot(task, &errors);
    let mut rows = Vec::new();
    for event in events {
        let body = json!({
            "type": event.message_type(),
            "timestamp": rfc3339(task.updated_at),
            "data": data,
        })
        .to_string();
        for endpoint in wanted(event) {
            rows.push(NewDelivery {
                id: Uuid::now_v7(),
                endpoint_id: endpoint.id,
                message_id: message_id(),
                event,
                task_id: Some(task.id),
                task_version: task.version,
                body: body.clone(),
                status: DeliveryStatus::Pending,
                created_at: task.updated_at,
            });
        }
    }
    webhook_deliveries::insert(tx, &rows).await
}
