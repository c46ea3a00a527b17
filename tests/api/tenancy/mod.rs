//! Organisations and API keys, through HTTP and the real binary only.
//!
//! Two organisations share one server: every query and mutation of the
//! contract is tried across the boundary, and the other organisation's data
//! is read back with its own key to prove nothing changed. Then scopes
//! (FORBIDDEN, nothing changes), unauthenticated callers, the key CLI, and a
//! real `bulkwatch serve` process whose logs must never hold a key or its hash.
//!
//! The files: `boundary` (one organisation against another), `scopes`
//! (scopes and unauthenticated callers), `keys` (the key CLI and a real
//! server whose logs must hold no key).
//!
//! Subscriptions across the boundary and WebSocket authentication are tested
//! in `subscriptions.rs`; the database-level wall in `row_security.rs`.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

mod boundary;
mod keys;
mod scopes;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{TestApp, key_id, spawn_app};
use crate::ops::{
    APPEND, CANCEL, CLAIM, CREATE, DELETE, FAIL, ITEM, NODE_ID, RENEW, REPORT, RETRY, SEAL,
    TASK_ID, id_of, numbered_items as items,
};

// ---------------------------------------------------------------------------
// Shared helpers of the tenancy tests
// ---------------------------------------------------------------------------

const ALL_SCOPES: &str = "tasks:read,tasks:write,items:report";

const COUNTERS: &str =
    "counters { total pending running succeeded failed skipped rejected cancelled finished }";

/// Everything about a task that a cross-organisation call could change.
fn snapshot_fields() -> String {
    format!(
        "id type description status sealed cancelRequested version idempotencyKey maxAttempts \
         updatedAt finishedAt error {{ code message }} {COUNTERS} \
         errorSummary {{ code count sampleMessage }} failureReportUrl \
         items(first: 100) {{ totalCount nodes {{ id index clientItemId status attempts workerId \
         leaseExpiresAt updatedAt finishedAt result payload error {{ code message }} }} }}"
    )
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `extensions.code` of the first error, or "" when there is none.
fn first_code(body: &Value) -> String {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// Runs a request that must fail with `code`; checks that no data came back
/// for the root field `field`; returns the whole body.
async fn refused(
    app: &TestApp,
    key: Option<&str>,
    query: &str,
    variables: Value,
    field: &str,
    code: &str,
) -> Value {
    let body = app.post_as(key, query, variables).await;
    assert_eq!(
        first_code(&body),
        code,
        "expected {code} for {query}: {body:#}"
    );
    assert!(
        body.get("data").is_none() || body["data"].is_null() || body["data"][field].is_null(),
        "data leaked alongside the {code} error for {query}: {body:#}"
    );
    body
}

/// Runs a request with a raw Authorization header value (or none).
async fn post_with_header(
    app: &TestApp,
    authorization: Option<&str>,
    query: &str,
    variables: Value,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(app.url("/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON response"))
}

async fn get_report(app: &TestApp, path: &str, key: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(app.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// The state of `task_ids` and of the organisation's listings, read with its own key.
async fn snapshot(app: &TestApp, key: &str, task_ids: &[String]) -> Value {
    let fields = snapshot_fields();
    let mut tasks = Vec::new();
    for id in task_ids {
        let data = app
            .data_as(
                key,
                &format!("query($id: ID!) {{ bulkTask(id: $id) {{ {fields} }} }}"),
                json!({ "id": id }),
            )
            .await;
        assert!(
            !data["bulkTask"].is_null(),
            "the owner cannot read its own task {id}"
        );
        tasks.push(data["bulkTask"].clone());
    }
    let lists = app.data_as(key,
        "{ bulkTasks(first: 100) { totalCount nodes { id version } } \
         bulkTaskStats { total byStatus { status count } items { total pending running succeeded failed skipped rejected cancelled finished } } }",
        json!({}),
    )
    .await;
    json!({ "tasks": tasks, "lists": lists })
}

/// Creates a task as `key` (it must be new); returns its id.
async fn create(app: &TestApp, key: &str, input: Value) -> String {
    let payload = app.as_key(key).create(input).await;
    assert_eq!(payload["created"], true, "{payload:#}");
    id_of(&payload["task"])
}
