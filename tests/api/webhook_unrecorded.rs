//! An endpoint's answer the database would not record for a moment: the
//! dispatcher records it once the database answers again, so the endpoint,
//! which already took the request, does not get it a second time when the
//! claim runs out half a minute later.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::spawn_app_with;
use crate::unavailable::while_table_held;
use crate::webhook_support::Receiver;

#[tokio::test]
async fn an_answer_the_database_refused_to_record_is_recorded_when_it_answers_again() {
    // The first request is answered after a second: time to take the
    // deliveries table away from the server while the endpoint holds it.
    let receiver = Receiver::start(|_, nth| {
        let delay = if nth == 0 { 1_000 } else { 0 };
        (200, Duration::from_millis(delay))
    })
    .await;
    let app = spawn_app_with(|c| {
        c.webhook_allow_private = true;
        c.webhook_poll_ms = 20;
    })
    .await;
    let (endpoint, _) = app.endpoint_for(&receiver.url, &["TASK_FINISHED"]).await;
    app.data(
        "mutation($e: ID!) { sendTestWebhook(endpointId: $e) { id } }",
        json!({ "e": endpoint }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Long enough for the answer's record to fail: on PostgreSQL its
    // backend is ended while it waits, on SQLite the busy timeout (10 s)
    // runs out.
    let hold = if app.database_url.starts_with("postgres") {
        Duration::from_millis(1_500)
    } else {
        Duration::from_millis(11_000)
    };
    while_table_held(&app, "webhook_deliveries", tokio::time::sleep(hold)).await;

    // The claim runs for 31 s; the record is due well before.
    let deadline = Instant::now() + Duration::from_secs(8);
    let delivery = loop {
        let list = app.deliveries(&endpoint).await;
        if list.len() == 1 && list[0]["status"] == "SUCCEEDED" {
            break list[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the answer was not recorded: {list:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(delivery["attempts"], 1, "{delivery:#}");
    assert_eq!(delivery["lastResponseStatus"], 200, "{delivery:#}");
    assert_eq!(receiver.received().len(), 1, "the endpoint got it once");
}
