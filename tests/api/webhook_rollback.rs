//! A change that rolls back sends no webhook: its delivery row is written in
//! the change's own transaction and goes with it.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{require_postgres, spawn_app_with};
use crate::unavailable::while_table_held;
use crate::webhook_support::Receiver;

#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn a_create_rolled_back_after_writing_its_delivery_row_sends_nothing() {
    require_postgres();
    let app = spawn_app_with(|c| {
        c.webhook_allow_private = true;
        c.webhook_retry_schedule = "1".into();
        c.webhook_poll_ms = 50;
    })
    .await;
    let receiver = Receiver::ok().await;
    let (endpoint, _) = app.endpoint_for(&receiver.url, &["TASK_CREATED"]).await;

    // The create writes its task, its items and its audit entry, then waits
    // to write its delivery row; its connection ends there, and PostgreSQL
    // rolls the whole transaction back.
    let input = json!({ "type": "webhooks.rollback", "items": [{ "payload": {} }] });
    let refused =
        while_table_held(&app, "webhook_deliveries", app.create_error(input.clone())).await;
    assert_eq!(refused, "DATABASE_UNAVAILABLE");
    assert_eq!(app.task_count().await, 0, "nothing of the create is stored");
    assert!(app.deliveries(&endpoint).await.is_empty());

    // The same create, committed: exactly its own delivery arrives, and
    // nothing for the one that rolled back, then or later.
    let created = app.create(input).await;
    let task = created["task"]["id"].as_str().unwrap().to_owned();
    receiver.wait_for(1).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = receiver.received();
    assert_eq!(
        got.len(),
        1,
        "{:#?}",
        got.iter().map(|r| &r.json).collect::<Vec<_>>()
    );
    assert_eq!(got[0].json["type"], "bulk_task.created");
    assert_eq!(got[0].json["data"]["id"], json!(task));
}
