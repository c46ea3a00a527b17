//! Organisations and API keys, through HTTP and the real binary only.
//!
//! Two organisations share one server: every query and mutation of the
//! contract is tried across the boundary, and the other organisation's data
//! is read back with its own key to prove nothing changed. Then scopes
//! (FORBIDDEN, nothing changes), unauthenticated callers, the key CLI, and a
//! real `bulkwatch serve` process whose logs must never hold a key or its hash.
//!
//! Subscriptions across the boundary and WebSocket authentication are tested
//! in `subscriptions.rs`; the database-level wall in `row_security.rs`.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{TestApp, key_id, spawn_app};
use crate::ops::{
    APPEND, CANCEL, CLAIM, CREATE, DELETE, FAIL, ITEM, NODE_ID, RENEW, REPORT, RETRY, SEAL,
    TASK_ID, id_of, numbered_items as items,
};

// ---------------------------------------------------------------------------
// Shared helpers of this file
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

/// One organisation's fixture: an unsealed task of its own type, and a
/// sealed task of a type both organisations use, holding one FAILED item
/// (with an error code only this organisation uses), one RUNNING item under
/// a long lease, and two PENDING items.
struct Org {
    name: String,
    key: String,
    /// Sealed, type `shared.type`, idempotency key `same-key`.
    busy: String,
    /// Unsealed, type `<name>.only`, idempotency key `<name>-open-key`.
    open: String,
    failed_item: String,
    running_item: String,
    pending_item: String,
    lease_token: String,
    error_code: String,
    task_cursor: String,
    item_cursor: String,
}

impl Org {
    fn only_type(&self) -> String {
        format!("{}.only", self.name)
    }
}

/// Creates a task as `key` (it must be new); returns its id.
async fn create(app: &TestApp, key: &str, input: Value) -> String {
    let payload = app.as_key(key).create(input).await;
    assert_eq!(payload["created"], true, "{payload:#}");
    id_of(&payload["task"])
}

/// The input of an organisation's busy task (a repeat must be identical).
fn busy_input(name: &str) -> Value {
    json!({ "type": "shared.type", "description": format!("{name} busy"), "idempotencyKey": "same-key",
            "maxAttempts": 1, "items": items(4) })
}

async fn fixture(app: &TestApp, name: &str, key: String) -> Org {
    let error_code = format!("{}_SECRET_FAILURE", name.to_uppercase());
    let open = create(
        app,
        &key,
        json!({ "type": format!("{name}.only"), "description": format!("{name} open"), "sealed": false,
                "idempotencyKey": format!("{name}-open-key"), "items": items(2) }),
    )
    .await;
    let busy = create(app, &key, busy_input(name)).await;
    let claimed = app.data_as(&key,
        CLAIM,
        json!({ "input": { "taskId": busy, "limit": 2, "leaseSeconds": 3600, "workerId": format!("{name}-worker") } }),
    )
    .await;
    let claimed = claimed["claimTaskItems"]["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(claimed.len(), 2, "{claimed:#?}");
    let by_index = |i: i64| {
        claimed
            .iter()
            .find(|c| c["item"]["index"] == i)
            .expect("claimed in index order")
            .clone()
    };
    let (first, second) = (by_index(0), by_index(1));
    let report = app.data_as(&key,
        REPORT,
        json!({ "input": { "taskId": busy, "results": [{
            "itemId": first["item"]["id"], "leaseToken": first["leaseToken"], "outcome": "FAILED",
            "retryable": false, "error": { "code": error_code, "message": format!("{name} failed here") } }] } }),
    )
    .await;
    assert_eq!(report["reportItemResults"]["applied"], 1, "{report:#}");
    let ids = app.as_key(&key).item_ids(&busy).await;
    let cursors = app.data_as(&key,
        "query($id: ID!) { bulkTasks(first: 1) { edges { cursor } } bulkTask(id: $id) { items(first: 1) { edges { cursor } } } }",
        json!({ "id": busy }),
    )
    .await;
    Org {
        name: name.to_owned(),
        busy,
        open,
        failed_item: first["item"]["id"].as_str().unwrap().to_owned(),
        running_item: second["item"]["id"].as_str().unwrap().to_owned(),
        pending_item: ids[3].clone(),
        lease_token: second["leaseToken"].as_str().unwrap().to_owned(),
        error_code,
        task_cursor: cursors["bulkTasks"]["edges"][0]["cursor"]
            .as_str()
            .unwrap()
            .to_owned(),
        item_cursor: cursors["bulkTask"]["items"]["edges"][0]["cursor"]
            .as_str()
            .unwrap()
            .to_owned(),
        key,
    }
}

/// The ids of every task the organisation sees, and of every item of those tasks.
async fn visible_ids(app: &TestApp, key: &str) -> (HashSet<String>, HashSet<String>) {
    let data = app
        .data_as(
            key,
            "{ bulkTasks(first: 20) { nodes { id items(first: 100) { nodes { id } } } } }",
            json!({}),
        )
        .await;
    let mut tasks = HashSet::new();
    let mut items = HashSet::new();
    for task in data["bulkTasks"]["nodes"].as_array().unwrap() {
        tasks.insert(task["id"].as_str().unwrap().to_owned());
        for item in task["items"]["nodes"].as_array().unwrap() {
            items.insert(item["id"].as_str().unwrap().to_owned());
        }
    }
    (tasks, items)
}

/// A page of tasks after a foreign cursor: refused as BAD_CURSOR, or only the caller's own tasks.
fn assert_only_own(
    body: &Value,
    path: &[&str],
    own: &HashSet<String>,
    foreign: &[&String],
    what: &str,
) {
    if body.get("errors").is_some() {
        assert_eq!(
            first_code(body),
            "BAD_CURSOR",
            "{what}: unexpected error: {body:#}"
        );
        return;
    }
    let mut node = &body["data"];
    for step in path {
        node = &node[*step];
    }
    for n in node["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no nodes: {body:#}"))
    {
        let id = n["id"].as_str().unwrap().to_owned();
        assert!(
            !foreign.contains(&&id),
            "{what}: another organisation's object {id} leaked: {body:#}"
        );
        assert!(
            own.contains(&id),
            "{what}: an object the caller does not own came back: {body:#}"
        );
    }
    for edge in node["edges"].as_array().into_iter().flatten() {
        let id = edge["node"]["id"].as_str().unwrap().to_owned();
        assert!(
            own.contains(&id),
            "{what}: edge to a foreign object: {body:#}"
        );
    }
}

// ---------------------------------------------------------------------------
// One organisation attacks another
// ---------------------------------------------------------------------------

/// What an attempt on another organisation's object must get.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// No error, and `null` for the root field: the object does not exist
    /// for the caller.
    Null,
    /// This error code, and no data for the root field.
    Refused(&'static str),
}

const NOT_FOUND: Expect = Expect::Refused("NOT_FOUND");

/// One attempt on the victim's data: the operation, its root field, its
/// variables built from (attacker, victim), and what it must get.
struct Attempt {
    name: &'static str,
    operation: &'static str,
    field: &'static str,
    vars: fn(&Org, &Org) -> Value,
    expect: Expect,
}

/// Every single-object read and every mutation of the contract aimed at the
/// victim's tasks, items and leases.
static ATTEMPTS: &[Attempt] = &[
    // --- Reads by id --------------------------------------------------------
    Attempt {
        name: "bulkTask of the busy task",
        operation: TASK_ID,
        field: "bulkTask",
        vars: |_, v| json!({ "id": v.busy }),
        expect: Expect::Null,
    },
    Attempt {
        name: "bulkTask of the open task",
        operation: TASK_ID,
        field: "bulkTask",
        vars: |_, v| json!({ "id": v.open }),
        expect: Expect::Null,
    },
    Attempt {
        name: "node of the busy task",
        operation: NODE_ID,
        field: "node",
        vars: |_, v| json!({ "id": v.busy }),
        expect: Expect::Null,
    },
    Attempt {
        name: "node of the open task",
        operation: NODE_ID,
        field: "node",
        vars: |_, v| json!({ "id": v.open }),
        expect: Expect::Null,
    },
    Attempt {
        name: "taskItem of the failed item",
        operation: ITEM,
        field: "taskItem",
        vars: |_, v| json!({ "id": v.failed_item }),
        expect: Expect::Null,
    },
    Attempt {
        name: "taskItem of the running item",
        operation: ITEM,
        field: "taskItem",
        vars: |_, v| json!({ "id": v.running_item }),
        expect: Expect::Null,
    },
    Attempt {
        name: "taskItem of the pending item",
        operation: ITEM,
        field: "taskItem",
        vars: |_, v| json!({ "id": v.pending_item }),
        expect: Expect::Null,
    },
    Attempt {
        name: "node of the failed item",
        operation: NODE_ID,
        field: "node",
        vars: |_, v| json!({ "id": v.failed_item }),
        expect: Expect::Null,
    },
    Attempt {
        name: "node of the running item",
        operation: NODE_ID,
        field: "node",
        vars: |_, v| json!({ "id": v.running_item }),
        expect: Expect::Null,
    },
    Attempt {
        name: "node of the pending item",
        operation: NODE_ID,
        field: "node",
        vars: |_, v| json!({ "id": v.pending_item }),
        expect: Expect::Null,
    },
    // --- Appending and sealing ----------------------------------------------
    Attempt {
        name: "append to the open task",
        operation: APPEND,
        field: "appendTaskItems",
        vars: |_, v| json!({ "input": { "taskId": v.open, "items": items(1), "seal": false } }),
        expect: NOT_FOUND,
    },
    Attempt {
        name: "append to the open task and seal it",
        operation: APPEND,
        field: "appendTaskItems",
        vars: |_, v| json!({ "input": { "taskId": v.open, "items": items(1), "seal": true } }),
        expect: NOT_FOUND,
    },
    Attempt {
        name: "seal the open task",
        operation: SEAL,
        field: "sealBulkTask",
        vars: |_, v| json!({ "id": v.open }),
        expect: NOT_FOUND,
    },
    // --- Reports naming the victim's task -------------------------------------
    Attempt {
        name: "report the running item with its real lease token",
        operation: REPORT,
        field: "reportItemResults",
        vars: |_, v| {
            report_input(
                &v.busy,
                json!({ "itemId": v.running_item, "leaseToken": v.lease_token, "outcome": "SUCCEEDED",
                        "result": { "stolen": true } }),
            )
        },
        expect: NOT_FOUND,
    },
    Attempt {
        name: "report the pending item by id",
        operation: REPORT,
        field: "reportItemResults",
        vars: |_, v| {
            report_input(
                &v.busy,
                json!({ "itemId": v.pending_item, "outcome": "SUCCEEDED" }),
            )
        },
        expect: NOT_FOUND,
    },
    Attempt {
        name: "report an item by index",
        operation: REPORT,
        field: "reportItemResults",
        vars: |_, v| report_input(&v.busy, json!({ "index": 2, "outcome": "SKIPPED" })),
        expect: NOT_FOUND,
    },
    Attempt {
        name: "report an item by client id",
        operation: REPORT,
        field: "reportItemResults",
        vars: |_, v| {
            report_input(
                &v.busy,
                json!({ "clientItemId": "item-3", "outcome": "FAILED", "error": { "code": "X", "message": "x" } }),
            )
        },
        expect: NOT_FOUND,
    },
    Attempt {
        name: "report RUNNING by index with the lease token",
        operation: REPORT,
        field: "reportItemResults",
        vars: |_, v| {
            report_input(
                &v.busy,
                json!({ "index": 1, "leaseToken": v.lease_token, "outcome": "RUNNING" }),
            )
        },
        expect: NOT_FOUND,
    },
    // --- Claims by the victim's task id --------------------------------------
    Attempt {
        name: "claim the busy task",
        operation: CLAIM,
        field: "claimTaskItems",
        vars: |_, v| json!({ "input": { "taskId": v.busy, "limit": 10, "leaseSeconds": 60 } }),
        expect: NOT_FOUND,
    },
    Attempt {
        name: "claim the open task",
        operation: CLAIM,
        field: "claimTaskItems",
        vars: |_, v| json!({ "input": { "taskId": v.open, "limit": 10, "leaseSeconds": 60 } }),
        expect: NOT_FOUND,
    },
    Attempt {
        name: "claim the busy task with its type",
        operation: CLAIM,
        field: "claimTaskItems",
        vars: |_, v| json!({ "input": { "taskId": v.busy, "types": ["shared.type"], "limit": 10 } }),
        expect: NOT_FOUND,
    },
    // --- Task-level mutations on both of the victim's tasks -------------------
    Attempt {
        name: "cancel the busy task",
        operation: CANCEL,
        field: "cancelBulkTask",
        vars: |_, v| json!({ "id": v.busy }),
        expect: NOT_FOUND,
    },
    Attempt {
        name: "fail the busy task",
        operation: FAIL,
        field: "failBulkTask",
        vars: |_, v| json!({ "input": { "id": v.busy, "code": "HIJACKED", "message": "not yours" } }),
        expect: NOT_FOUND,
    },
    Attempt {
        name: "retry the busy task",
        operation: RETRY,
        field: "retryFailedItems",
        vars: |_, v| json!({ "input": { "taskId": v.busy } }),
        expect: NOT_FOUND,
    },
    Attempt {
        name: "retry the busy task's failed item by id and code",
        operation: RETRY,
        field: "retryFailedItems",
        vars: |_, v| json!({ "input": { "taskId": v.busy, "itemIds": [v.failed_item], "errorCodes": [v.error_code] } }),
        expect: NOT_FOUND,
    },
    Attempt {
        name: "cancel the open task",
        operation: CANCEL,
        field: "cancelBulkTask",
        vars: |_, v| json!({ "id": v.open }),
        expect: NOT_FOUND,
    },
    Attempt {
        name: "fail the open task",
        operation: FAIL,
        field: "failBulkTask",
        vars: |_, v| json!({ "input": { "id": v.open, "code": "HIJACKED", "message": "not yours" } }),
        expect: NOT_FOUND,
    },
    Attempt {
        name: "retry the open task",
        operation: RETRY,
        field: "retryFailedItems",
        vars: |_, v| json!({ "input": { "taskId": v.open } }),
        expect: NOT_FOUND,
    },
    Attempt {
        name: "retry the open task with the failed item by id and code",
        operation: RETRY,
        field: "retryFailedItems",
        vars: |_, v| json!({ "input": { "taskId": v.open, "itemIds": [v.failed_item], "errorCodes": [v.error_code] } }),
        expect: NOT_FOUND,
    },
    Attempt {
        name: "delete the busy task",
        operation: DELETE,
        field: "deleteBulkTask",
        vars: |_, v| json!({ "id": v.busy }),
        expect: NOT_FOUND,
    },
    Attempt {
        name: "delete the open task",
        operation: DELETE,
        field: "deleteBulkTask",
        vars: |_, v| json!({ "id": v.open }),
        expect: NOT_FOUND,
    },
];

/// The variables of a report of one result on `task`.
fn report_input(task: &str, result: Value) -> Value {
    json!({ "input": { "taskId": task, "results": [result] } })
}

/// Runs every row of `ATTEMPTS` as `attacker` against `victim`.
async fn try_every_attempt(app: &TestApp, attacker: &Org, victim: &Org, who: &str) {
    let key = Some(attacker.key.as_str());
    for attempt in ATTEMPTS {
        let Attempt {
            name,
            operation,
            field,
            vars,
            expect,
        } = attempt;
        let what = format!("{who}: {name}");
        let body = app.post_as(key, operation, vars(attacker, victim)).await;
        match expect {
            Expect::Null => {
                assert!(
                    body.get("errors").is_none(),
                    "{what}: unexpected errors: {body:#}"
                );
                assert!(
                    body["data"][field].is_null(),
                    "{what}: {field} showed a foreign object: {body:#}"
                );
            }
            Expect::Refused(code) => {
                assert_eq!(
                    first_code(&body),
                    *code,
                    "{what}: expected {code}: {body:#}"
                );
                assert!(
                    body.get("data").is_none()
                        || body["data"].is_null()
                        || body["data"][field].is_null(),
                    "{what}: data leaked alongside the {code} error: {body:#}"
                );
            }
        }
    }
}

/// `attacker` tries every query and mutation of the contract on `victim`'s
/// tasks, items, leases, cursors and idempotency keys; `victim`'s state,
/// read back with its own key, must not move.
async fn attack(app: &TestApp, attacker: &Org, victim: &Org) {
    let who = &format!("{} -> {}", attacker.name, victim.name);
    let watched = [victim.busy.clone(), victim.open.clone()];
    let before = snapshot(app, &victim.key, &watched).await;

    try_every_attempt(app, attacker, victim, who).await;
    nodes_show_only_own_objects(app, attacker, victim, who).await;
    let own = listings_and_foreign_cursors_show_only_own_objects(app, attacker, victim, who).await;
    filters_and_stats_count_only_own_tasks(app, attacker, victim, &own, who).await;
    error_summaries_and_failure_reports_stay_apart(app, attacker, victim, who).await;
    own_task_refuses_foreign_items_and_leases(app, attacker, victim, who).await;
    claims_by_type_and_renewals_take_only_own_items(app, attacker, victim, &own, who).await;
    idempotency_keys_are_per_organisation(app, attacker, victim, who).await;

    // Nothing of the victim moved.
    let after = snapshot(app, &victim.key, &watched).await;
    assert_eq!(after, before, "{who}: the victim's data changed");
    // Its lease still works for the owner.
    let renewed = app
        .as_key(&victim.key)
        .renew(&[&victim.lease_token], None)
        .await;
    assert_eq!(
        renewed["renewed"], 1,
        "{who}: the owner lost its lease: {renewed:#}"
    );
}

/// `nodes` answers null for the victim's objects, in place, next to the caller's own.
async fn nodes_show_only_own_objects(app: &TestApp, attacker: &Org, victim: &Org, who: &str) {
    let data = app
        .data_as(
            &attacker.key,
            "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on BulkTask { errorSummary { code } failureReportUrl } } }",
            json!({ "ids": [victim.busy, victim.open, victim.failed_item, victim.running_item, attacker.busy, attacker.failed_item] }),
        )
        .await;
    let nodes = data["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 6, "{who}: {data:#}");
    assert!(
        nodes[..4].iter().all(Value::is_null),
        "{who}: nodes showed foreign objects: {data:#}"
    );
    assert_eq!(
        nodes[4]["id"],
        attacker.busy.as_str(),
        "{who}: own task missing from nodes: {data:#}"
    );
    assert_eq!(
        nodes[5]["id"],
        attacker.failed_item.as_str(),
        "{who}: own item missing from nodes: {data:#}"
    );
}

/// The ids of the tasks and items the attacker sees.
struct Own {
    tasks: HashSet<String>,
    items: HashSet<String>,
}

/// Lists and pages (also after or before the victim's cursors) hold only the
/// caller's own tasks and items; returns those.
async fn listings_and_foreign_cursors_show_only_own_objects(
    app: &TestApp,
    attacker: &Org,
    victim: &Org,
    who: &str,
) -> Own {
    let key = Some(attacker.key.as_str());
    let victim_tasks = [&victim.busy, &victim.open];
    let victim_items = [
        &victim.failed_item,
        &victim.running_item,
        &victim.pending_item,
    ];
    let (own_tasks, own_items) = visible_ids(app, &attacker.key).await;
    assert!(
        own_tasks.contains(&attacker.busy) && own_tasks.contains(&attacker.open),
        "{who}: own tasks not listed"
    );
    for id in victim_tasks {
        assert!(
            !own_tasks.contains(id),
            "{who}: bulkTasks listed a foreign task"
        );
    }
    for id in victim_items {
        assert!(
            !own_items.contains(id),
            "{who}: nested items listed a foreign item"
        );
    }

    let page = "query($after: String, $before: String, $first: Int, $last: Int) { \
         bulkTasks(first: $first, after: $after, last: $last, before: $before) { nodes { id } edges { node { id } } } }";
    for vars in [
        json!({ "first": 100, "after": victim.task_cursor }),
        json!({ "last": 100, "before": victim.task_cursor }),
        json!({ "first": 100, "before": victim.task_cursor }),
    ] {
        let body = app.post_as(key, page, vars.clone()).await;
        assert_only_own(
            &body,
            &["bulkTasks"],
            &own_tasks,
            &victim_tasks,
            &format!("{who}: bulkTasks with a foreign cursor {vars}"),
        );
    }
    let item_page = "query($id: ID!, $after: String) { bulkTask(id: $id) { \
         a: items(first: 100, after: $after) { nodes { id } edges { node { id } } } } }";
    let body = app
        .post_as(
            key,
            item_page,
            json!({ "id": attacker.busy, "after": victim.item_cursor }),
        )
        .await;
    assert_only_own(
        &body,
        &["bulkTask", "a"],
        &own_items,
        &victim_items,
        &format!("{who}: items with a foreign cursor"),
    );
    let item_page_before = "query($id: ID!, $before: String) { bulkTask(id: $id) { \
         a: items(last: 100, before: $before) { nodes { id } edges { node { id } } } } }";
    let body = app
        .post_as(
            key,
            item_page_before,
            json!({ "id": attacker.busy, "before": victim.item_cursor }),
        )
        .await;
    assert_only_own(
        &body,
        &["bulkTask", "a"],
        &own_items,
        &victim_items,
        &format!("{who}: items before a foreign cursor"),
    );
    Own {
        tasks: own_tasks,
        items: own_items,
    }
}

/// Filters naming only the victim's data find nothing; stats over everything
/// equal the sums over the caller's own tasks.
async fn filters_and_stats_count_only_own_tasks(
    app: &TestApp,
    attacker: &Org,
    victim: &Org,
    own: &Own,
    who: &str,
) {
    // Filters naming only the victim's data find nothing.
    let data = app
        .data_as(
            &attacker.key,
            "query($f: BulkTaskFilter) { bulkTasks(first: 100, filter: $f) { totalCount nodes { id } } bulkTaskStats(filter: $f) { total items { total } } }",
        json!({ "f": { "type": [victim.only_type()] } }),
    )
    .await;
    assert_eq!(
        data["bulkTasks"]["totalCount"], 0,
        "{who}: type filter found foreign tasks: {data:#}"
    );
    assert_eq!(
        data["bulkTaskStats"]["total"], 0,
        "{who}: stats counted foreign tasks: {data:#}"
    );
    assert_eq!(
        data["bulkTaskStats"]["items"]["total"], 0,
        "{who}: stats counted foreign items: {data:#}"
    );
    let data = app
        .data_as(
            &attacker.key,
            "query($f: BulkTaskFilter) { bulkTasks(first: 100, filter: $f) { totalCount } bulkTaskStats(filter: $f) { total } }",
        json!({ "f": { "search": format!("{} busy", victim.name) } }),
    )
    .await;
    assert_eq!(
        data["bulkTasks"]["totalCount"], 0,
        "{who}: search found foreign tasks: {data:#}"
    );
    assert_eq!(
        data["bulkTaskStats"]["total"], 0,
        "{who}: search stats counted foreign tasks: {data:#}"
    );
    let data = app
        .data_as(
            &attacker.key,
            "query($f: BulkTaskFilter) { bulkTasks(first: 100, filter: $f) { totalCount nodes { id } } }",
        json!({ "f": { "type": ["shared.type"] } }),
    )
    .await;
    for node in data["bulkTasks"]["nodes"].as_array().unwrap() {
        assert!(
            own.tasks.contains(node["id"].as_str().unwrap()),
            "{who}: shared type showed a foreign task: {data:#}"
        );
    }

    // Stats over everything equal the sums over the caller's own tasks.
    let data = app
        .data_as(
            &attacker.key,
            "{ bulkTasks(first: 100) { totalCount nodes { counters { total failed } } } \
           bulkTaskStats { total byStatus { count } items { total failed } } }",
            json!({}),
        )
        .await;
    let nodes = data["bulkTasks"]["nodes"].as_array().unwrap();
    let sum = |field: &str| {
        nodes
            .iter()
            .map(|n| n["counters"][field].as_i64().unwrap())
            .sum::<i64>()
    };
    assert_eq!(
        data["bulkTaskStats"]["total"], data["bulkTasks"]["totalCount"],
        "{who}: stats total: {data:#}"
    );
    assert_eq!(
        data["bulkTaskStats"]["items"]["total"].as_i64().unwrap(),
        sum("total"),
        "{who}: stats items: {data:#}"
    );
    assert_eq!(
        data["bulkTaskStats"]["items"]["failed"].as_i64().unwrap(),
        sum("failed"),
        "{who}: stats failed: {data:#}"
    );
    let by_status: i64 = data["bulkTaskStats"]["byStatus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["count"].as_i64().unwrap())
        .sum();
    assert_eq!(
        by_status,
        data["bulkTaskStats"]["total"].as_i64().unwrap(),
        "{who}: byStatus: {data:#}"
    );
}

/// The error summary and the failure report of a task hold only its own
/// organisation's failures; the victim's report is 404 to the caller.
async fn error_summaries_and_failure_reports_stay_apart(
    app: &TestApp,
    attacker: &Org,
    victim: &Org,
    who: &str,
) {
    // The error summary of the caller's own task holds only its own codes.
    let data = app
        .data_as(
            &attacker.key,
            "query($id: ID!) { bulkTask(id: $id) { errorSummary { code count } failureReportUrl items(first: 100, filter: { errorCode: \"X\" }) { totalCount } } }",
        json!({ "id": attacker.busy }),
    )
    .await;
    assert_eq!(
        data["bulkTask"]["errorSummary"],
        json!([{ "code": attacker.error_code, "count": 1 }]),
        "{who}: error summary mixes organisations: {data:#}"
    );
    let data = app
        .data_as(
            &attacker.key,
            "query($id: ID!, $code: String) { bulkTask(id: $id) { items(first: 100, filter: { errorCode: $code }) { totalCount } } }",
        json!({ "id": attacker.busy, "code": victim.error_code }),
    )
    .await;
    assert_eq!(
        data["bulkTask"]["items"]["totalCount"], 0,
        "{who}: foreign error code matched: {data:#}"
    );

    // The failure report: 404 for the victim's task, 401 without a key; the
    // caller's own report holds none of the victim's failures.
    let key = Some(attacker.key.as_str());
    let own_url = format!("/reports/{}/failures.ndjson", attacker.busy);
    let victim_url = format!("/reports/{}/failures.ndjson", victim.busy);
    let (status, body) = get_report(app, &victim_url, key).await;
    assert_eq!(status, 404, "{who}: a foreign failure report: {body}");
    assert!(
        !body.contains(&victim.error_code),
        "{who}: the 404 shows foreign data: {body}"
    );
    let (status, body) = get_report(app, &victim_url, None).await;
    assert_eq!(status, 401, "{who}: failure report without a key: {body}");
    let (status, body) = get_report(app, &own_url, key).await;
    assert_eq!(status, 200, "{who}: own failure report: {body}");
    assert!(
        body.contains(&attacker.error_code),
        "{who}: own report lacks own failure: {body}"
    );
    assert!(
        !body.contains(&victim.error_code),
        "{who}: own report shows a foreign failure: {body}"
    );
    let (status, body) = get_report(app, &victim_url, Some(&victim.key)).await;
    assert_eq!(status, 200, "{who}: the owner's failure report: {body}");
    assert!(
        body.contains(&victim.error_code),
        "{who}: the owner's report lacks its failure: {body}"
    );
}

/// Reports and retries on the caller's own task that name the victim's items
/// or lease apply nothing.
async fn own_task_refuses_foreign_items_and_leases(
    app: &TestApp,
    attacker: &Org,
    victim: &Org,
    who: &str,
) {
    let key = Some(attacker.key.as_str());
    // Reports on the caller's own task naming the victim's items or lease.
    let body = app
        .post_as(
            key,
            REPORT,
            json!({ "input": { "taskId": attacker.busy, "results": [
                { "itemId": victim.pending_item, "outcome": "SUCCEEDED" },
                { "itemId": victim.running_item, "leaseToken": victim.lease_token, "outcome": "SUCCEEDED" },
            ] } }),
        )
        .await;
    if body.get("errors").is_some() {
        assert!(
            ["NOT_FOUND", "BAD_USER_INPUT"].contains(&first_code(&body).as_str()),
            "{who}: {body:#}"
        );
    } else {
        let payload = &body["data"]["reportItemResults"];
        assert_eq!(
            payload["applied"], 0,
            "{who}: a foreign item was reported on: {body:#}"
        );
        let codes: Vec<&str> = payload["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["code"].as_str().unwrap())
            .collect();
        assert_eq!(
            codes,
            ["ITEM_NOT_FOUND", "ITEM_NOT_FOUND"],
            "{who}: {body:#}"
        );
    }
    let body = app
        .post_as(
            key,
            REPORT,
            json!({ "input": { "taskId": attacker.busy, "results": [
                { "itemId": attacker.running_item, "leaseToken": victim.lease_token, "outcome": "SUCCEEDED" },
            ] } }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{who}: {body:#}");
    assert_eq!(
        body["data"]["reportItemResults"]["applied"], 0,
        "{who}: a foreign lease token was accepted: {body:#}"
    );
    assert_eq!(
        body["data"]["reportItemResults"]["problems"][0]["code"], "LEASE_MISMATCH",
        "{who}: {body:#}"
    );

    // Retrying on the caller's own task with the victim's item ids touches neither.
    let body = app
        .post_as(
            key,
            RETRY,
            json!({ "input": { "taskId": attacker.busy, "itemIds": [victim.failed_item] } }),
        )
        .await;
    if body.get("errors").is_some() {
        assert!(
            ["NOT_FOUND", "BAD_USER_INPUT"].contains(&first_code(&body).as_str()),
            "{who}: {body:#}"
        );
    } else {
        assert_eq!(
            body["data"]["retryFailedItems"]["counters"]["failed"], 1,
            "{who}: own failed item moved: {body:#}"
        );
    }
}

/// Claims by a type only the victim uses get nothing; a shared type gives only
/// the caller's own items; renewing the victim's lease renews nothing.
async fn claims_by_type_and_renewals_take_only_own_items(
    app: &TestApp,
    attacker: &Org,
    victim: &Org,
    own: &Own,
    who: &str,
) {
    // Claims by types only the victim uses.
    let data = app
        .data_as(
            &attacker.key,
            CLAIM,
            json!({ "input": { "types": [victim.only_type()], "limit": 100 } }),
        )
        .await;
    assert_eq!(
        data["claimTaskItems"]["items"],
        json!([]),
        "{who}: claimed foreign items by type: {data:#}"
    );
    // A shared type claims only the caller's own items (one, to leave some for later).
    let data = app
        .data_as(
            &attacker.key,
            CLAIM,
        json!({ "input": { "types": ["shared.type", victim.only_type()], "limit": 1, "leaseSeconds": 3600 } }),
    )
    .await;
    for claimed in data["claimTaskItems"]["items"].as_array().unwrap() {
        assert!(
            own.tasks
                .contains(claimed["item"]["task"]["id"].as_str().unwrap()),
            "{who}: claimed a foreign item: {data:#}"
        );
        assert!(
            own.items.contains(claimed["item"]["id"].as_str().unwrap()),
            "{who}: claimed a foreign item: {data:#}"
        );
    }

    // Renewing the victim's lease: nothing renewed, the token reported as gone.
    let data = app
        .data_as(
            &attacker.key,
            RENEW,
            json!({ "input": { "leaseTokens": [victim.lease_token], "leaseSeconds": 3000 } }),
        )
        .await;
    assert_eq!(
        data["renewLeases"],
        json!({ "renewed": 0, "expired": [victim.lease_token] }),
        "{who}: {data:#}"
    );
}

/// The shared idempotency key gives the caller's own task back; the victim's
/// own key makes a new task for the caller.
async fn idempotency_keys_are_per_organisation(
    app: &TestApp,
    attacker: &Org,
    victim: &Org,
    who: &str,
) {
    // Idempotency keys are per organisation: the shared one gives the caller's
    // own task back; the victim's own key makes a new task for the caller.
    let data = app
        .data_as(
            &attacker.key,
            CREATE,
            json!({ "input": busy_input(&attacker.name) }),
        )
        .await;
    assert_eq!(data["createBulkTask"]["created"], false, "{who}: {data:#}");
    assert_eq!(
        data["createBulkTask"]["task"]["id"],
        attacker.busy.as_str(),
        "{who}: {data:#}"
    );
    let probe_key = format!("{}-open-key", victim.name);
    let data = app
        .data_as(
            &attacker.key,
            CREATE,
        json!({ "input": { "type": "attacker.probe", "description": "probe", "idempotencyKey": probe_key, "items": items(1) } }),
    )
    .await;
    assert_eq!(
        data["createBulkTask"]["created"], true,
        "{who}: another organisation's idempotency key was honoured: {data:#}"
    );
    assert_ne!(
        data["createBulkTask"]["task"]["id"],
        victim.open.as_str(),
        "{who}: got the victim's task: {data:#}"
    );
}

#[tokio::test]
async fn another_organisations_tasks_items_leases_and_cursors_are_out_of_reach() {
    let app = spawn_app().await;
    let acme_key = app.key_for("acme", ALL_SCOPES);
    let default = fixture(&app, "default", app.admin_key.clone()).await;
    let acme = fixture(&app, "acme", acme_key).await;
    assert_ne!(
        default.busy, acme.busy,
        "the same idempotency key in two organisations made one task"
    );

    attack(&app, &default, &acme).await;
    attack(&app, &acme, &default).await;

    for org in [&default, &acme] {
        assert_counters_consistent_as(&app, &org.key, &org.busy).await;
        assert_counters_consistent_as(&app, &org.key, &org.open).await;
    }
}

/// Stored counters equal those recomputed from the item rows, read with `key`.
async fn assert_counters_consistent_as(app: &TestApp, key: &str, task_id: &str) {
    {
        let data = app.data_as(key,
            &format!("query($id: ID!) {{ bulkTask(id: $id) {{ {COUNTERS} items(first: 100) {{ nodes {{ status }} }} }} }}"),
            json!({ "id": task_id }),
        )
        .await;
        let task = &data["bulkTask"];
        let count = |s: &str| {
            task["items"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|n| n["status"] == s)
                .count() as i64
        };
        let c = &task["counters"];
        for (field, status) in [
            ("pending", "PENDING"),
            ("running", "RUNNING"),
            ("succeeded", "SUCCEEDED"),
            ("failed", "FAILED"),
            ("skipped", "SKIPPED"),
            ("rejected", "REJECTED"),
            ("cancelled", "CANCELLED"),
        ] {
            assert_eq!(
                c[field].as_i64().unwrap(),
                count(status),
                "{field} of {task_id}: {data:#}"
            );
        }
        let total = c["total"].as_i64().unwrap();
        assert_eq!(
            total,
            task["items"]["nodes"].as_array().unwrap().len() as i64,
            "{data:#}"
        );
        assert_eq!(
            total,
            c["pending"].as_i64().unwrap()
                + c["running"].as_i64().unwrap()
                + c["finished"].as_i64().unwrap()
        );
    }
}

#[tokio::test]
async fn the_same_idempotency_key_in_two_organisations_makes_two_tasks() {
    let app = spawn_app().await;
    let acme = app.key_for("acme", ALL_SCOPES);
    let globex = app.key_for("globex", "tasks:write,tasks:read");
    let input = |who: &str| json!({ "input": { "type": "import", "description": who, "idempotencyKey": "order-42", "items": items(3) } });
    let mut ids = Vec::new();
    for (who, key) in [
        ("default", app.admin_key.as_str()),
        ("acme", acme.as_str()),
        ("globex", globex.as_str()),
    ] {
        let data = app.data_as(key, CREATE, input(who)).await;
        assert_eq!(data["createBulkTask"]["created"], true, "{who}: {data:#}");
        assert_eq!(data["createBulkTask"]["task"]["idempotencyKey"], "order-42");
        ids.push(
            data["createBulkTask"]["task"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        3,
        "one task per organisation: {ids:?}"
    );

    // Each repeat returns that organisation's own task, and nobody else's.
    for (i, (who, key)) in [
        ("default", app.admin_key.as_str()),
        ("acme", acme.as_str()),
        ("globex", globex.as_str()),
    ]
    .into_iter()
    .enumerate()
    {
        let data = app.data_as(key, CREATE, input(who)).await;
        assert_eq!(data["createBulkTask"]["created"], false, "{who}: {data:#}");
        assert_eq!(
            data["createBulkTask"]["task"]["id"],
            ids[i].as_str(),
            "{who}: {data:#}"
        );
        let data = app
            .data_as(
                key,
                "{ bulkTasks(first: 100) { totalCount nodes { id description } } }",
                json!({}),
            )
            .await;
        assert_eq!(data["bulkTasks"]["totalCount"], 1, "{who}: {data:#}");
        assert_eq!(
            data["bulkTasks"]["nodes"][0]["id"],
            ids[i].as_str(),
            "{who}: {data:#}"
        );
        assert_eq!(
            data["bulkTasks"]["nodes"][0]["description"], who,
            "{who}: {data:#}"
        );
    }
}

// ---------------------------------------------------------------------------
// Scopes and authentication
// ---------------------------------------------------------------------------

struct Keys {
    /// Every combination of scopes, by its list.
    by_scopes: Vec<(&'static str, String)>,
    revoked: String,
}

impl Keys {
    fn lacking(&self, scope: &str) -> Vec<(&'static str, &str)> {
        self.by_scopes
            .iter()
            .filter(|(s, _)| !s.split(',').any(|x| x == scope))
            .map(|(s, k)| (*s, k.as_str()))
            .collect()
    }

    fn only(&self, scope: &str) -> &str {
        &self.by_scopes.iter().find(|(s, _)| *s == scope).unwrap().1
    }
}

async fn make_keys(app: &TestApp) -> Keys {
    let mut by_scopes = Vec::new();
    for scopes in [
        "tasks:read",
        "tasks:write",
        "items:report",
        "tasks:read,tasks:write",
        "tasks:read,items:report",
        "tasks:write,items:report",
    ] {
        by_scopes.push((scopes, app.key_for("default", scopes)));
    }
    let revoked = app.key_for("default", ALL_SCOPES);
    let id = key_id(&app.cli(&["keys", "list"]), &revoked);
    app.cli(&["keys", "revoke", &id]);
    Keys { by_scopes, revoked }
}

/// The admin's view of `task_ids` and of its lists.
async fn admin_view(app: &TestApp, task_ids: &[String]) -> Value {
    snapshot(app, &app.admin_key, task_ids).await
}

/// Every caller without `scope` is refused and nothing changes; then the key
/// holding only `scope` succeeds; returns its data.
async fn check_scope(
    app: &TestApp,
    keys: &Keys,
    scope: &str,
    field: &str,
    query: &str,
    variables: Value,
    watch: &[String],
) -> Value {
    let before = admin_view(app, watch).await;
    for (scopes, key) in keys.lacking(scope) {
        let body = refused(app, Some(key), query, variables.clone(), field, "FORBIDDEN").await;
        let message = body["errors"][0]["message"].as_str().unwrap_or("");
        assert!(
            message.contains(scope),
            "{field} with [{scopes}]: the message should name {scope}: {body:#}"
        );
    }
    let missing = refused(
        app,
        None,
        query,
        variables.clone(),
        field,
        "UNAUTHENTICATED",
    )
    .await;
    let (revoked_status, revoked) = post_with_header(
        app,
        Some(&format!("Bearer {}", keys.revoked)),
        query,
        variables.clone(),
    )
    .await;
    let unknown_key = format!("bw_{}", "0123456789abcdef".repeat(4));
    let (unknown_status, unknown) = post_with_header(
        app,
        Some(&format!("Bearer {unknown_key}")),
        query,
        variables.clone(),
    )
    .await;
    assert_eq!(
        first_code(&revoked),
        "UNAUTHENTICATED",
        "{field} with a revoked key: {revoked:#}"
    );
    assert_eq!(
        first_code(&unknown),
        "UNAUTHENTICATED",
        "{field} with an unknown key: {unknown:#}"
    );
    assert_eq!(
        (revoked_status, &revoked),
        (unknown_status, &unknown),
        "{field}: revoked and unknown keys are told apart"
    );
    for header in ["Basic xyz", "garbage", "Bearer", "Bearer ", "bw_nothing"] {
        let (_, body) = post_with_header(app, Some(header), query, variables.clone()).await;
        assert_eq!(
            first_code(&body),
            "UNAUTHENTICATED",
            "{field} with Authorization {header:?}: {body:#}"
        );
    }
    assert!(missing["errors"][0]["message"].as_str().is_some());
    assert_eq!(
        admin_view(app, watch).await,
        before,
        "{field}: a refused call changed something"
    );

    let body = app.post_as(Some(keys.only(scope)), query, variables).await;
    assert!(
        body.get("errors").is_none(),
        "{field} with only {scope} failed: {body:#}"
    );
    body["data"].clone()
}

async fn admin_task(app: &TestApp, input: Value) -> String {
    create(app, &app.admin_key, input).await
}

async fn admin_claim(app: &TestApp, task: &str, limit: i64) -> Vec<Value> {
    let data = app
        .data_as(
            &app.admin_key,
            CLAIM,
            json!({ "input": { "taskId": task, "limit": limit, "leaseSeconds": 3600 } }),
        )
        .await;
    data["claimTaskItems"]["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn every_root_field_needs_its_scope_and_a_valid_key() {
    let app = spawn_app().await;
    let keys = make_keys(&app).await;
    let sealed = |n: usize| json!({ "type": "scoped", "items": items(n) });

    // Queries: tasks:read.
    let task = admin_task(&app, sealed(2)).await;
    let item = app.as_key(&app.admin_key).item_ids(&task).await[0].clone();
    let watch = [task.clone()];
    let data = check_scope(
        &app,
        &keys,
        "tasks:read",
        "bulkTask",
        TASK_ID,
        json!({ "id": task }),
        &watch,
    )
    .await;
    assert_eq!(data["bulkTask"]["id"], task.as_str());
    let data = check_scope(
        &app,
        &keys,
        "tasks:read",
        "node",
        NODE_ID,
        json!({ "id": task }),
        &watch,
    )
    .await;
    assert_eq!(data["node"]["id"], task.as_str());
    let data = check_scope(
        &app,
        &keys,
        "tasks:read",
        "nodes",
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
        json!({ "ids": [task, item] }),
        &watch,
    )
    .await;
    assert_eq!(data["nodes"][1]["id"], item.as_str());
    let data = check_scope(
        &app,
        &keys,
        "tasks:read",
        "taskItem",
        "query($id: ID!) { taskItem(id: $id) { id } }",
        json!({ "id": item }),
        &watch,
    )
    .await;
    assert_eq!(data["taskItem"]["id"], item.as_str());
    let data = check_scope(
        &app,
        &keys,
        "tasks:read",
        "bulkTasks",
        "{ bulkTasks(first: 10) { totalCount } }",
        json!({}),
        &watch,
    )
    .await;
    assert_eq!(data["bulkTasks"]["totalCount"], 1);
    let data = check_scope(
        &app,
        &keys,
        "tasks:read",
        "bulkTaskStats",
        "{ bulkTaskStats { total } }",
        json!({}),
        &watch,
    )
    .await;
    assert_eq!(data["bulkTaskStats"]["total"], 1);

    // createBulkTask: tasks:write (the watched lists' totalCount proves nothing was created).
    let data = check_scope(
        &app,
        &keys,
        "tasks:write",
        "createBulkTask",
        CREATE,
        json!({ "input": sealed(2) }),
        &watch,
    )
    .await;
    assert_eq!(data["createBulkTask"]["created"], true);

    // appendTaskItems and sealBulkTask.
    let open = admin_task(
        &app,
        json!({ "type": "scoped", "sealed": false, "items": items(1) }),
    )
    .await;
    let data = check_scope(
        &app,
        &keys,
        "tasks:write",
        "appendTaskItems",
        APPEND,
        json!({ "input": { "taskId": open, "items": [{ "clientItemId": "extra" }], "seal": true } }),
        std::slice::from_ref(&open),
    )
    .await;
    assert_eq!(data["appendTaskItems"]["task"]["counters"]["total"], 2);
    assert_eq!(data["appendTaskItems"]["task"]["sealed"], true);
    let open = admin_task(
        &app,
        json!({ "type": "scoped", "sealed": false, "items": items(1) }),
    )
    .await;
    let data = check_scope(
        &app,
        &keys,
        "tasks:write",
        "sealBulkTask",
        SEAL,
        json!({ "id": open }),
        std::slice::from_ref(&open),
    )
    .await;
    assert_eq!(data["sealBulkTask"]["sealed"], true);

    // cancelBulkTask, failBulkTask, deleteBulkTask.
    let t = admin_task(&app, sealed(2)).await;
    let data = check_scope(
        &app,
        &keys,
        "tasks:write",
        "cancelBulkTask",
        CANCEL,
        json!({ "id": t }),
        std::slice::from_ref(&t),
    )
    .await;
    assert_eq!(data["cancelBulkTask"]["cancelRequested"], true);
    let t = admin_task(&app, sealed(2)).await;
    let data = check_scope(
        &app,
        &keys,
        "tasks:write",
        "failBulkTask",
        FAIL,
        json!({ "input": { "id": t, "code": "ABORTED", "message": "stop" } }),
        std::slice::from_ref(&t),
    )
    .await;
    assert_eq!(data["failBulkTask"]["error"]["code"], "ABORTED");
    let t = admin_task(&app, sealed(2)).await;
    let data = check_scope(
        &app,
        &keys,
        "tasks:write",
        "deleteBulkTask",
        DELETE,
        json!({ "id": t }),
        std::slice::from_ref(&t),
    )
    .await;
    assert_eq!(data["deleteBulkTask"], t.as_str());
    let data = app
        .data_as(&app.admin_key, TASK_ID, json!({ "id": t }))
        .await;
    assert!(data["bulkTask"].is_null(), "deleted: {data:#}");

    // retryFailedItems: a task with one FAILED item.
    let t = admin_task(
        &app,
        json!({ "type": "scoped", "maxAttempts": 1, "items": items(2) }),
    )
    .await;
    let claimed = admin_claim(&app, &t, 1).await;
    app.data_as(&app.admin_key,
        REPORT,
        json!({ "input": { "taskId": t, "results": [{ "itemId": claimed[0]["item"]["id"], "leaseToken": claimed[0]["leaseToken"],
            "outcome": "FAILED", "retryable": false, "error": { "code": "E", "message": "e" } }] } }),
    )
    .await;
    let data = check_scope(
        &app,
        &keys,
        "tasks:write",
        "retryFailedItems",
        RETRY,
        json!({ "input": { "taskId": t } }),
        std::slice::from_ref(&t),
    )
    .await;
    assert_eq!(
        data["retryFailedItems"]["counters"]["failed"], 0,
        "{data:#}"
    );
    assert_eq!(
        data["retryFailedItems"]["counters"]["pending"], 2,
        "{data:#}"
    );

    // claimTaskItems by task and by type.
    let t = admin_task(&app, json!({ "type": "scoped.claim", "items": items(2) })).await;
    let data = check_scope(
        &app,
        &keys,
        "items:report",
        "claimTaskItems",
        CLAIM,
        json!({ "input": { "taskId": t, "limit": 1 } }),
        std::slice::from_ref(&t),
    )
    .await;
    assert_eq!(data["claimTaskItems"]["items"].as_array().unwrap().len(), 1);
    let data = check_scope(
        &app,
        &keys,
        "items:report",
        "claimTaskItems",
        CLAIM,
        json!({ "input": { "types": ["scoped.claim"], "limit": 1 } }),
        std::slice::from_ref(&t),
    )
    .await;
    assert_eq!(data["claimTaskItems"]["items"].as_array().unwrap().len(), 1);

    // renewLeases: the refused calls must not move the lease.
    let t = admin_task(&app, sealed(1)).await;
    let claimed = admin_claim(&app, &t, 1).await;
    let token = claimed[0]["leaseToken"].as_str().unwrap().to_owned();
    let data = check_scope(
        &app,
        &keys,
        "items:report",
        "renewLeases",
        RENEW,
        json!({ "input": { "leaseTokens": [token], "leaseSeconds": 1800 } }),
        std::slice::from_ref(&t),
    )
    .await;
    assert_eq!(data["renewLeases"]["renewed"], 1, "{data:#}");

    // reportItemResults.
    let t = admin_task(&app, sealed(2)).await;
    let data = check_scope(
        &app,
        &keys,
        "items:report",
        "reportItemResults",
        REPORT,
        json!({ "input": { "taskId": t, "results": [{ "index": 0, "outcome": "SUCCEEDED" }, { "clientItemId": "item-1", "outcome": "SKIPPED" }] } }),
        std::slice::from_ref(&t),
    )
    .await;
    assert_eq!(data["reportItemResults"]["applied"], 2, "{data:#}");
}

#[tokio::test]
async fn unauthenticated_callers_get_nothing_but_introspection() {
    let app = spawn_app().await;
    let keys = make_keys(&app).await;
    let task = app.create_task(2).await;

    // Introspection needs no key.
    for key in [None, Some(keys.revoked.as_str())] {
        let body = app
            .post_as(
                key,
                "{ __schema { queryType { name } mutationType { name } } }",
                json!({}),
            )
            .await;
        assert!(
            body.get("errors").is_none(),
            "introspection with {key:?}: {body:#}"
        );
        assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
        assert_eq!(body["data"]["__schema"]["mutationType"]["name"], "Mutation");
    }
    let body = app
        .post_as(
            None,
            "{ __type(name: \"BulkTask\") { name } __typename }",
            json!({}),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body:#}");
    assert_eq!(body["data"]["__type"]["name"], "BulkTask");

    // A data field next to introspection is still refused.
    let body = app
        .post_as(
            None,
            "query($id: ID!) { __typename bulkTask(id: $id) { id } }",
            json!({ "id": task }),
        )
        .await;
    assert_eq!(first_code(&body), "UNAUTHENTICATED", "{body:#}");
    assert!(body["data"]["bulkTask"].is_null(), "{body:#}");

    // Revoked and unknown keys: same status, same body, for a query and a mutation.
    let unknown = format!("bw_{}", "f".repeat(64));
    for (query, vars) in [
        (TASK_ID, json!({ "id": task })),
        (
            "mutation($id: ID!) { cancelBulkTask(id: $id) { id } }",
            json!({ "id": task }),
        ),
    ] {
        let revoked = post_with_header(
            &app,
            Some(&format!("Bearer {}", keys.revoked)),
            query,
            vars.clone(),
        )
        .await;
        let garbage = post_with_header(
            &app,
            Some(&format!("Bearer {unknown}")),
            query,
            vars.clone(),
        )
        .await;
        let not_a_key = post_with_header(&app, Some("Bearer hello"), query, vars.clone()).await;
        assert_eq!(first_code(&revoked.1), "UNAUTHENTICATED", "{:#}", revoked.1);
        assert_eq!(
            revoked, garbage,
            "revoked and unknown keys must be indistinguishable"
        );
        assert_eq!(
            revoked, not_a_key,
            "revoked keys and junk must be indistinguishable"
        );
        let (_, basic) = post_with_header(
            &app,
            Some(&format!("Basic {}", app.admin_key)),
            query,
            vars.clone(),
        )
        .await;
        assert_eq!(
            first_code(&basic),
            "UNAUTHENTICATED",
            "the Basic scheme: {basic:#}"
        );
        let (_, bare) = post_with_header(&app, Some(&app.admin_key), query, vars.clone()).await;
        assert_eq!(
            first_code(&bare),
            "UNAUTHENTICATED",
            "a key without a scheme: {bare:#}"
        );
        let (_, missing) = post_with_header(&app, None, query, vars).await;
        assert_eq!(first_code(&missing), "UNAUTHENTICATED", "{missing:#}");
    }
    // GET runs queries under the same rules.
    let get = |authorization: Option<String>| {
        let mut request = reqwest::Client::new()
            .get(app.url("/graphql"))
            .query(&[("query", "{ bulkTasks { totalCount } }")]);
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        async move {
            let response = request.send().await.expect("request sent");
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.expect("a JSON response"),
            )
        }
    };
    let (_, missing) = get(None).await;
    assert_eq!(
        first_code(&missing),
        "UNAUTHENTICATED",
        "GET without a key: {missing:#}"
    );
    let revoked = get(Some(format!("Bearer {}", keys.revoked))).await;
    assert_eq!(
        first_code(&revoked.1),
        "UNAUTHENTICATED",
        "GET with a revoked key: {:#}",
        revoked.1
    );
    assert_eq!(
        revoked,
        get(Some(format!("Bearer {unknown}"))).await,
        "GET: revoked and unknown keys differ"
    );
    let (_, forbidden) = get(Some(format!("Bearer {}", keys.only("tasks:write")))).await;
    assert_eq!(
        first_code(&forbidden),
        "FORBIDDEN",
        "GET without tasks:read: {forbidden:#}"
    );
    let (_, allowed) = get(Some(format!("Bearer {}", keys.only("tasks:read")))).await;
    assert_eq!(
        allowed["data"]["bulkTasks"]["totalCount"], 1,
        "GET with tasks:read: {allowed:#}"
    );

    // The scheme is case-insensitive; the key itself is not.
    let (_, lower) = post_with_header(
        &app,
        Some(&format!("bearer {}", app.admin_key)),
        "{ bulkTasks { totalCount } }",
        json!({}),
    )
    .await;
    assert!(lower.get("errors").is_none(), "{lower:#}");
    let (_, upper) = post_with_header(
        &app,
        Some(&format!("Bearer {}", app.admin_key.to_uppercase())),
        "{ bulkTasks { totalCount } }",
        json!({}),
    )
    .await;
    assert_eq!(first_code(&upper), "UNAUTHENTICATED", "{upper:#}");

    // Nothing happened to the task.
    let data = app
        .data(
            "query($id: ID!) { bulkTask(id: $id) { status cancelRequested version } }",
            json!({ "id": task }),
        )
        .await;
    assert_eq!(data["bulkTask"]["cancelRequested"], false, "{data:#}");

    // The failure report: 401 without a valid key, 403 without tasks:read.
    let t = admin_task(
        &app,
        json!({ "type": "report", "maxAttempts": 1, "items": items(1) }),
    )
    .await;
    app.data_as(&app.admin_key,
        REPORT,
        json!({ "input": { "taskId": t, "results": [{ "index": 0, "outcome": "FAILED", "error": { "code": "BROKEN", "message": "b" } }] } }),
    )
    .await;
    let url = format!("/reports/{t}/failures.ndjson");
    assert_eq!(get_report(&app, &url, None).await.0, 401);
    let revoked = get_report(&app, &url, Some(&keys.revoked)).await;
    assert_eq!(revoked.0, 401, "{}", revoked.1);
    assert_eq!(
        revoked,
        get_report(&app, &url, Some(&unknown)).await,
        "revoked and unknown keys differ on the report"
    );
    for scopes in ["tasks:write", "items:report", "tasks:write,items:report"] {
        let key = &keys.by_scopes.iter().find(|(s, _)| *s == scopes).unwrap().1;
        let (status, body) = get_report(&app, &url, Some(key)).await;
        assert_eq!(status, 403, "report with [{scopes}]: {body}");
        assert!(!body.contains("BROKEN"), "{body}");
    }
    let (status, body) = get_report(&app, &url, Some(keys.only("tasks:read"))).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("BROKEN"), "{body}");
}

// ---------------------------------------------------------------------------
// The key CLI
// ---------------------------------------------------------------------------

/// Runs the binary on `database_url`; returns (success, stdout, stderr).
fn run_cli(database_url: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_bulkwatch"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the CLI runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn key_line<'a>(list: &'a str, key: &str) -> &'a str {
    list.lines()
        .find(|l| l.contains(&key[..11]))
        .unwrap_or_else(|| panic!("no line for {}:\n{list}", &key[..11]))
}

#[tokio::test]
async fn the_key_cli_lists_without_secrets_and_refuses_bad_input() {
    let app = spawn_app().await;
    let db = app.database_url.as_str();

    let (success, created, stderr) = run_cli(
        db,
        &[
            "keys",
            "create",
            "--org",
            "default",
            "--scopes",
            "tasks:read,items:report",
        ],
    );
    assert!(success, "{stderr}");
    let key = created.trim().to_owned();
    assert!(
        key.starts_with("bw_") && key.len() > 40 && !key.contains(char::is_whitespace),
        "stdout is the key alone: {created:?}"
    );
    assert!(
        !stderr.contains(&key) && !stderr.contains(&key[11..]),
        "the key went to stderr: {stderr}"
    );

    let list = app.cli(&["keys", "list"]);
    let line = key_line(&list, &key);
    assert!(line.contains("default"), "{line}");
    assert!(
        line.contains("tasks:read")
            && line.contains("items:report")
            && !line.contains("tasks:write"),
        "{line}"
    );
    assert!(line.contains("active") && line.contains("never"), "{line}");
    let admin_line = key_line(&list, &app.admin_key);
    assert!(
        admin_line.contains("tasks:read,tasks:write,items:report")
            || admin_line.contains("tasks:write"),
        "{admin_line}"
    );
    for secret in [&key, &app.admin_key] {
        assert!(
            !list.contains(secret.as_str()),
            "keys list shows a secret:\n{list}"
        );
        assert!(
            !list.contains(&secret[11..]),
            "keys list shows the secret part of a key:\n{list}"
        );
        assert!(
            !list.contains(&secret[11..27]),
            "keys list shows part of a secret:\n{list}"
        );
        assert!(
            !list.contains(&sha256_hex(secret)),
            "keys list shows a key hash:\n{list}"
        );
    }

    // Using a key records when; revoking it shows in the list and refuses it.
    // The time is recorded off the request's path, so it may land just after.
    app.data_as(&key, "{ bulkTasks { totalCount } }", json!({}))
        .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut list = app.cli(&["keys", "list"]);
    while key_line(&list, &key).contains("never") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        list = app.cli(&["keys", "list"]);
    }
    assert!(
        !key_line(&list, &key).contains("never"),
        "last used not recorded:\n{list}"
    );
    let id = key_id(&list, &key);
    app.cli(&["keys", "revoke", &id]);
    let list = app.cli(&["keys", "list"]);
    assert!(key_line(&list, &key).contains("revoked"), "{list}");
    assert!(key_line(&list, &app.admin_key).contains("active"), "{list}");
    refused(
        &app,
        Some(&key),
        "{ bulkTasks { totalCount } }",
        json!({}),
        "bulkTasks",
        "UNAUTHENTICATED",
    )
    .await;
    let (success, _, _) = run_cli(db, &["keys", "revoke", &id]);
    assert!(!success, "revoking a revoked key succeeded");

    // Refusals: non-zero exit, no key printed, no key made.
    let lines_before = app.cli(&["keys", "list"]).lines().count();
    for args in [
        &[
            "keys",
            "create",
            "--org",
            "default",
            "--scopes",
            "tasks:read,tasks:admin",
        ][..],
        &["keys", "create", "--org", "default", "--scopes", "admin"],
        &[
            "keys",
            "create",
            "--org",
            "default",
            "--scopes",
            "TASKS:READ",
        ],
        &["keys", "create", "--org", "default", "--scopes", ""],
        &[
            "keys",
            "create",
            "--org",
            "no-such-org",
            "--scopes",
            "tasks:read",
        ],
        &[
            "keys",
            "create",
            "--org",
            "Default",
            "--scopes",
            "tasks:read",
        ],
        &["keys", "revoke", "00000000-0000-0000-0000-000000000000"],
        &["keys", "revoke", "not-a-uuid"],
    ] {
        let (success, stdout, stderr) = run_cli(db, args);
        assert!(!success, "bulkwatch {args:?} succeeded: {stdout}");
        assert!(
            !stdout.contains("bw_") && !stderr.contains("bw_"),
            "bulkwatch {args:?} printed a key: {stdout} {stderr}"
        );
        assert!(
            !stderr.trim().is_empty(),
            "bulkwatch {args:?} failed without saying why"
        );
    }
    assert_eq!(
        app.cli(&["keys", "list"]).lines().count(),
        lines_before,
        "a refused command made a key"
    );

    // Organisations: a second one with the same name is refused.
    app.cli(&["orgs", "create", "acme"]);
    let (success, _, _) = run_cli(db, &["orgs", "create", "acme"]);
    assert!(!success, "a duplicate organisation was created");
    let (success, _, _) = run_cli(db, &["orgs", "create", "default"]);
    assert!(!success, "a second `default` organisation was created");
    // (`key_for` would try to create it again: the org has no key yet.)
    let acme = app
        .cli(&["keys", "create", "--org", "acme", "--scopes", "tasks:read"])
        .trim()
        .to_owned();
    assert!(key_line(&app.cli(&["keys", "list"]), &acme).contains("acme"));
}

// ---------------------------------------------------------------------------
// A real server process: keys never reach the logs or error messages
// ---------------------------------------------------------------------------

struct Server {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    address: String,
    readers: Vec<std::thread::JoinHandle<()>>,
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Server {
    fn start(database_url: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bulkwatch"))
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("BULKWATCH_BIND", "127.0.0.1:0")
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bulkwatch serve starts");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let out_pipe = child.stdout.take().unwrap();
        let err_pipe = child.stderr.take().unwrap();
        let out_buf = stdout.clone();
        let err_buf = stderr.clone();
        let readers = vec![
            std::thread::spawn(move || {
                for line in BufReader::new(out_pipe).lines().map_while(Result::ok) {
                    let mut buf = out_buf.lock().unwrap();
                    buf.push_str(&line);
                    buf.push('\n');
                }
            }),
            std::thread::spawn(move || {
                for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                    let plain = strip_ansi(&line);
                    if let Some(at) = plain.find("address=") {
                        let rest = &plain[at + "address=".len()..];
                        let address: String = rest
                            .chars()
                            .take_while(|c| !c.is_whitespace() && *c != ',')
                            .collect();
                        let _ = tx.send(address.trim_matches('"').to_owned());
                    }
                    let mut buf = err_buf.lock().unwrap();
                    buf.push_str(&line);
                    buf.push('\n');
                }
            }),
        ];
        let address = match rx.recv_timeout(Duration::from_secs(90)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "the server never logged its address; stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        assert!(address.starts_with("127.0.0.1:"), "address {address:?}");
        Server {
            child,
            stdout,
            stderr,
            address: format!("http://{address}"),
            readers,
        }
    }

    /// Stdout once the line holding `needle` (or `wait` passing) has been read.
    fn stdout_after(&self, needle: &str, wait: Duration) -> String {
        let deadline = Instant::now() + wait;
        loop {
            let text = self.stdout.lock().unwrap().clone();
            if text.contains(needle) || Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server and returns everything it wrote to (stdout, stderr).
    fn stop(mut self) -> (String, String) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let out = self.stdout.lock().unwrap().clone();
        let err = self.stderr.lock().unwrap().clone();
        (out, err)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn first_key_in(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == '"' || c == '}' || c == '{')
        .find(|w| w.starts_with("bw_") && w.len() > 20)
        .map(str::to_owned)
}

async fn raw_post(address: &str, authorization: Option<&str>, query: &str) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(format!("{address}/graphql"))
        .json(&json!({ "query": query }));
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn keys_and_their_hashes_never_reach_logs_or_error_messages() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}?mode=rwc", dir.path().join("x.db").display());

    let server = Server::start(&database_url);
    let stdout = server.stdout_after("bw_", Duration::from_secs(10));
    let admin =
        first_key_in(&stdout).unwrap_or_else(|| panic!("no first-start key on stdout:\n{stdout}"));

    // A second key, used while valid, then revoked through the CLI while the server runs.
    let (success, created, stderr) = run_cli(
        &database_url,
        &[
            "keys",
            "create",
            "--org",
            "default",
            "--scopes",
            "tasks:read",
        ],
    );
    assert!(success, "{stderr}");
    let revoked = created.trim().to_owned();
    assert!(
        !stderr.contains(&revoked[11..]),
        "`keys create` wrote the key to stderr: {stderr}"
    );
    let wrong = format!("bw_{}", "0123456789abcdef".repeat(4));
    let unknown_shape = format!("{}{}", &admin[..40], "0".repeat(admin.len() - 40));

    let mut responses = Vec::new();
    let list = "{ bulkTasks { totalCount nodes { id } } }";
    let create_q = r#"mutation { createBulkTask(input: { type: "logs", items: [{ clientItemId: "a" }] }) { task { id } } }"#;
    let (status, body) =
        raw_post(&server.address, Some(&format!("Bearer {admin}")), create_q).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("\"errors\""), "the admin key works: {body}");
    let (_, body) = raw_post(&server.address, Some(&format!("Bearer {revoked}")), list).await;
    assert!(
        !body.contains("\"errors\""),
        "the second key works before revocation: {body}"
    );
    let (_, body) = raw_post(
        &server.address,
        Some(&format!("Bearer {revoked}")),
        create_q,
    )
    .await;
    assert!(
        body.contains("FORBIDDEN"),
        "a read key cannot create: {body}"
    );
    responses.push(body);

    let list_out = run_cli(&database_url, &["keys", "list"]).1;
    let id = key_id(&list_out, &revoked);
    let (success, _, stderr) = run_cli(&database_url, &["keys", "revoke", &id]);
    assert!(success, "{stderr}");

    for authorization in [
        format!("Bearer {revoked}"),
        format!("Bearer {wrong}"),
        format!("Bearer {unknown_shape}"),
        format!("Basic {admin}"),
        format!("Bearer {admin} {revoked}"),
        format!("Bearer {revoked}x"),
        admin.clone(),
        format!("Token {revoked}"),
    ] {
        for query in [list, create_q] {
            let (_, body) = raw_post(&server.address, Some(&authorization), query).await;
            assert!(
                body.contains("UNAUTHENTICATED"),
                "{authorization:?} was not refused: {body}"
            );
            responses.push(body);
        }
        // The failure report route too.
        let response = reqwest::Client::new()
            .get(format!("{}/reports/x/failures.ndjson", server.address))
            .header("Authorization", &authorization)
            .send()
            .await
            .unwrap();
        responses.push(response.text().await.unwrap_or_default());
    }
    // Errors that echo input: a malformed id and a bad cursor, with a valid key.
    for query in [
        r#"{ bulkTask(id: "bw_notanid") { id } }"#,
        r#"{ bulkTasks(after: "bw_notacursor") { totalCount } }"#,
    ] {
        let (_, body) = raw_post(&server.address, Some(&format!("Bearer {admin}")), query).await;
        assert!(body.contains("\"errors\""), "{body}");
        responses.push(body);
    }

    let (_, stderr) = server.stop();
    assert!(
        stderr.contains("127.0.0.1"),
        "stderr was captured:\n{stderr}"
    );
    assert!(
        stderr.contains("UNAUTHENTICATED"),
        "the refused requests were logged:\n{stderr}"
    );
    let secrets = [
        admin.clone(),
        revoked.clone(),
        wrong.clone(),
        unknown_shape.clone(),
    ];
    for secret in &secrets {
        let hash = sha256_hex(secret);
        let checks = [
            (secret.clone(), "the key"),
            (secret[11..].to_owned(), "the secret part of the key"),
            (hash.clone(), "the key's SHA-256"),
            (hash.to_uppercase(), "the key's SHA-256 in upper case"),
            (hash[..32].to_owned(), "half of the key's SHA-256"),
        ];
        for (needle, what) in &checks {
            let leaks: Vec<&str> = stderr
                .lines()
                .filter(|l| l.contains(needle.as_str()))
                .collect();
            assert!(
                leaks.is_empty(),
                "{what} ({}…) appears in the server's logs:\n{}",
                &secret[..11],
                leaks.join("\n")
            );
            for body in &responses {
                assert!(
                    !body.contains(needle.as_str()),
                    "{what} appears in a response to a client: {body}"
                );
            }
        }
    }

    // A restart on the same database makes no new key and prints none.
    let server = Server::start(&database_url);
    std::thread::sleep(Duration::from_millis(500));
    let (status, body) = raw_post(&server.address, Some(&format!("Bearer {admin}")), list).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("totalCount\":1"),
        "the first key still works after a restart: {body}"
    );
    let (stdout, stderr) = server.stop();
    assert!(
        !stdout.contains("bw_"),
        "a restart printed a key:\n{stdout}"
    );
    assert!(
        first_key_in(&stderr).is_none(),
        "a restart logged a key:\n{stderr}"
    );
    let keys = run_cli(&database_url, &["keys", "list"]).1;
    assert_eq!(
        keys.lines().count(),
        3,
        "header, the admin key and the revoked one:\n{keys}"
    );
}
