//! A database that does not answer a request's write: the client gets
//! DATABASE_UNAVAILABLE with HTTP 503 and `Retry-After`, nothing of the
//! refused write is stored, and the same request succeeds once the database
//! answers again.

use std::time::Duration;

use reqwest::StatusCode;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

const CREATE: &str =
    "mutation($input: CreateBulkTaskInput!) { createBulkTask(input: $input) { task { id } } }";

/// One connection of the test's own that holds `table` so the server's
/// next write to it cannot proceed.
async fn hold_table(app: &TestApp, table: &str) -> DatabaseConnection {
    let mut options = ConnectOptions::new(app.database_url.clone());
    options.max_connections(1).sqlx_logging(false);
    let holder = Database::connect(options).await.expect("the test connects");
    let hold = if app.database_url.starts_with("postgres") {
        // Writes wait; reads (the server's background jobs) go on.
        format!("BEGIN; LOCK TABLE {table} IN EXCLUSIVE MODE")
    } else {
        // SQLite has one writer: the server's write waits out its busy
        // timeout and gets SQLITE_BUSY.
        "BEGIN IMMEDIATE".to_owned()
    };
    holder
        .execute_unprepared(&hold)
        .await
        .expect("the lock is taken");
    holder
}

/// On PostgreSQL the server's write waits for the lock without end, so the
/// test ends the backends waiting for it the way a database restart or an
/// operator would (SQLSTATE 57P01); on SQLite the busy timeout ends it.
async fn end_waiting_backends(holder: &DatabaseConnection, url: &str) {
    if url.starts_with("postgres") {
        holder
            .execute_unprepared(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))",
            )
            .await
            .expect("pg_terminate_backend runs");
    }
}

/// Runs `request` while `table` is held, ending whatever waits for it (a
/// background job's write may wait too) until `request` is answered; the
/// transaction of a write that waited is rolled back.
pub(crate) async fn while_table_held<T>(
    app: &TestApp,
    table: &str,
    request: impl std::future::Future<Output = T>,
) -> T {
    let holder = hold_table(app, table).await;
    tokio::pin!(request);
    let answer = loop {
        tokio::select! {
            answer = &mut request => break answer,
            _ = tokio::time::sleep(Duration::from_millis(50)) => {
                end_waiting_backends(&holder, &app.database_url).await;
            }
        }
    };
    holder.execute_unprepared("ROLLBACK").await.unwrap();
    holder.close().await.ok();
    answer
}

async fn create(app: &TestApp, accept: &str) -> (StatusCode, Option<String>, Value) {
    let input = json!({ "input": { "type": "unavailable.test", "items": [{ "payload": {} }] } });
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("accept", accept)
        .json(&json!({ "query": CREATE, "variables": input }))
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        status,
        retry_after,
        response.json().await.expect("a JSON body"),
    )
}

#[tokio::test]
async fn a_write_the_database_cannot_take_is_503_with_retry_after_and_stores_nothing() {
    let app = spawn_app().await;
    for accept in ["application/json", "application/graphql-response+json"] {
        let answer = while_table_held(&app, "bulk_tasks", create(&app, accept)).await;
        let (status, retry_after, body) = answer;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{accept}: {body:#}"
        );
        assert_eq!(retry_after.as_deref(), Some("1"), "{accept}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "DATABASE_UNAVAILABLE",
            "{accept}: {body:#}"
        );
        assert_eq!(body["data"], Value::Null, "{accept}: {body:#}");
        let message = body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_lowercase();
        for leak in ["sqlite", "postgres", "bulk_tasks", "terminating"] {
            assert!(
                !message.contains(leak),
                "{accept}: the message leaks {leak:?}: {message}"
            );
        }
    }

    // The database answers again: the same request succeeds, and the two
    // refused creates left nothing behind.
    let (status, _, body) = create(&app, "application/json").await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert!(
        body["data"]["createBulkTask"]["task"]["id"].is_string(),
        "{body:#}"
    );
    let stats = app.data("{ bulkTaskStats { total } }", json!({})).await;
    assert_eq!(stats["bulkTaskStats"]["total"], 1);
}
