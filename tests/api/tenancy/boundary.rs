//! One organisation against another: every query and mutation tried across
//! the boundary, and the victim's data read back unchanged.

#[allow(unused_imports)]
use super::*;

// ---------------------------------------------------------------------------
// Each organisation's fixture
// ---------------------------------------------------------------------------

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
    // The table reaches every root field that names one object by id.
    let fields: HashSet<&str> = ATTEMPTS.iter().map(|a| a.field).collect();
    for field in [
        "bulkTask",
        "node",
        "taskItem",
        "appendTaskItems",
        "sealBulkTask",
        "reportItemResults",
        "claimTaskItems",
        "cancelBulkTask",
        "failBulkTask",
        "retryFailedItems",
        "deleteBulkTask",
    ] {
        assert!(fields.contains(field), "no attempt uses {field}");
    }
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
