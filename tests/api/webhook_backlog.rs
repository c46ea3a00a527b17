//! The webhook dispatcher with a large outbox. Found by fuzzing the API on
//! PostgreSQL: once the outbox had grown from empty to a few thousand open
//! deliveries, each claim ran for minutes, and the writers queued behind
//! its row locks drained the pool until every request got 503.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{require_postgres, spawn_app_with};
use crate::webhook_support::Receiver;

const SEND: &str = "sendTestWebhook(endpointId: $e) { id }";

#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn deliveries_keep_flowing_when_the_outbox_grows_from_empty() {
    require_postgres();
    let receiver = Receiver::ok().await;
    let app = spawn_app_with(|c| {
        c.webhook_allow_private = true;
        // Few connections, so that each runs the claim often while the
        // outbox is small (PostgreSQL settles on a plan after five runs).
        c.db_connections = 2;
        c.webhook_poll_ms = 20;
    })
    .await;
    let (endpoint, _) = app.endpoint_for(&receiver.url, &["TASK_FINISHED"]).await;
    let send_one = format!("mutation($e: ID!) {{ {SEND} }}");
    for n in 1..=40 {
        app.data(&send_one, json!({ "e": endpoint })).await;
        receiver.wait_for(n).await;
    }

    // Then hundreds at once: every one must still reach the receiver soon.
    let fifty: String = (0..50).map(|i| format!(" s{i}: {SEND}")).collect();
    let send_fifty = format!("mutation($e: ID!) {{{fifty} }}");
    for _ in 0..12 {
        app.data(&send_fifty, json!({ "e": endpoint })).await;
    }
    receiver
        .wait_until(Duration::from_secs(30), |got| got.len() >= 640)
        .await;
    let status = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "/readyz answered {status}");
}
