//! The audit trail: every change to a task names its actor and reason,
//! newest first; the server is `system`; another organisation reads nothing.

use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};

use crate::helpers::{TestApp, key_id, spawn_app};
use crate::ops::{CANCEL_BECAUSE, DELETE_BECAUSE, id_of, numbered_items};

/// The actor text of `key`: its id and public prefix.
fn actor_of(app: &TestApp, key: &str) -> String {
    let id = key_id(&app.cli(&["keys", "list"]), key);
    format!("key {id} ({})", &key[..11])
}

/// (action, reason) of each entry, newest first.
fn actions(trail: &[Value]) -> Vec<(String, Value)> {
    trail
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["reason"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_mutation_leaves_an_entry_with_its_actor_and_reason() {
    let app = spawn_app().await;
    let key = app.key_for("default", "tasks:read,tasks:write,items:report");
    let operator = app.as_key(&key);
    let actor = actor_of(&app, &key);

    let created = operator
        .create(json!({ "type": "t.audit", "sealed": false, "items": numbered_items(2) }))
        .await;
    let task = id_of(&created["task"]);
    operator
        .append(&task, json!(numbered_items(3)[2..]), None)
        .await;
    operator.seal(&task).await;
    operator.pause(&task, Some("upstream maintenance")).await;
    operator.resume(&task, Some("maintenance over")).await;
    operator.set_priority(&task, 7).await;
    operator
        .report_all(
            &task,
            json!([{ "index": 0, "outcome": "FAILED", "error": { "code": "E", "message": "m" } }]),
        )
        .await;
    operator
        .retry(json!({ "taskId": task, "reason": "the upstream is back" }))
        .await;
    operator
        .data(
            CANCEL_BECAUSE,
            json!({ "id": task, "reason": "customer withdrew" }),
        )
        .await;

    let trail = app.audit_trail(&task).await;
    assert_eq!(
        actions(&trail),
        [
            ("cancel".into(), json!("customer withdrew")),
            ("retry".into(), json!("the upstream is back")),
            ("priority".into(), Value::Null),
            ("resume".into(), json!("maintenance over")),
            ("pause".into(), json!("upstream maintenance")),
            ("seal".into(), Value::Null),
            ("append".into(), Value::Null),
            ("create".into(), Value::Null),
        ],
        "{trail:?}"
    );
    for entry in &trail {
        assert_eq!(entry["actor"], json!(actor), "{entry:#}");
        assert!(!entry.to_string().contains(&key), "no secret in {entry}");
    }
    assert_eq!(trail[1]["details"]["retried"], 1);
    assert_eq!(trail[2]["details"], json!({ "from": 0, "to": 7 }));
    assert_eq!(trail[0]["details"]["cancelledItems"], 3);
    let times: Vec<&str> = trail.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );

    // A fail's message is its reason; a no-op (a second pause) is not recorded.
    let failed = app.create_task(2).await;
    app.pause(&failed, None).await;
    app.pause(&failed, None).await;
    app.fail(json!({ "id": failed, "code": "OPERATOR", "message": "wrong batch" }))
        .await;
    let trail = app.audit_trail(&failed).await;
    assert_eq!(
        actions(&trail),
        [
            ("fail".into(), json!("wrong batch")),
            ("pause".into(), Value::Null),
            ("create".into(), Value::Null),
        ]
    );
    assert_eq!(trail[0]["details"]["code"], "OPERATOR");
}

#[tokio::test]
async fn a_deleted_task_keeps_its_trail_with_the_delete_last() {
    let app = spawn_app().await;
    let task = app.create_task(2).await;
    app.data(
        DELETE_BECAUSE,
        json!({ "id": task, "reason": "created by mistake" }),
    )
    .await;
    assert_eq!(app.task(&task).await, Value::Null);

    // The API reads a trail through its task; the rows stay in the database.
    let db = Database::connect(&app.database_url).await.expect("connect");
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT action, reason FROM audit_entries ORDER BY at, id",
        ))
        .await
        .expect("the trail is readable");
    let rows: Vec<(String, Option<String>)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get("", "action").unwrap(),
                r.try_get("", "reason").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("create".to_owned(), None),
            ("delete".to_owned(), Some("created by mistake".to_owned())),
        ]
    );
}

#[tokio::test]
async fn another_organisation_cannot_read_a_trail() {
    let app = spawn_app().await;
    let task = app.create_task(1).await;
    app.pause(&task, Some("private reason")).await;
    let other = app.key_for("other", "tasks:read,tasks:write");
    let query = "query($id: ID!) { bulkTask(id: $id) { auditTrail { nodes { reason } } } }";
    let data = app.data_as(&other, query, json!({ "id": task })).await;
    assert_eq!(data["bulkTask"], Value::Null);
    let list = "{ bulkTasks { nodes { auditTrail { nodes { reason } } } } }";
    let data = app.data_as(&other, list, json!({})).await;
    assert_eq!(data["bulkTasks"]["nodes"], json!([]));
    let body = app
        .post_as(Some(&other), crate::ops::PAUSE, json!({ "id": task }))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND");
}

#[tokio::test]
async fn trails_of_a_page_of_tasks_cost_one_statement_and_page_by_cursor() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let task = app.create_task(1).await;
        app.pause(&task, None).await;
        app.resume(&task, None).await;
        tasks.push(task);
    }
    let page = |n: usize| {
        format!(
            "{{ bulkTasks(first: {n}) {{ nodes {{ id auditTrail(first: 2) {{ nodes {{ action }} }} }} }} }}"
        )
    };
    let (few, _) = app.cost(&page(2), json!({})).await;
    let (many, data) = app.cost(&page(12), json!({})).await;
    // One statement for every task's trail: 12 tasks cost what 2 cost (a
    // key lookup after the key cache's second may add its statements once).
    assert!(
        many <= few + 2,
        "2 trails: {few} statements, 12 trails: {many}"
    );
    for task in data["bulkTasks"]["nodes"].as_array().unwrap() {
        let actions: Vec<&Value> = task["auditTrail"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["action"])
            .collect();
        assert_eq!(actions, [&json!("resume"), &json!("pause")]);
    }

    let query = "query($id: ID!, $after: String) { bulkTask(id: $id) { \
        auditTrail(first: 2, after: $after) { nodes { action } pageInfo { hasNextPage endCursor } } } }";
    let first = app.data(query, json!({ "id": tasks[0] })).await;
    let trail = &first["bulkTask"]["auditTrail"];
    assert_eq!(trail["pageInfo"]["hasNextPage"], true);
    let after = trail["pageInfo"]["endCursor"].clone();
    let rest = app
        .data(query, json!({ "id": tasks[0], "after": after }))
        .await;
    let trail = &rest["bulkTask"]["auditTrail"];
    assert_eq!(trail["nodes"], json!([{ "action": "create" }]));
    assert_eq!(trail["pageInfo"]["hasNextPage"], false);
}

#[tokio::test]
async fn updates_are_in_the_trail_and_a_pruned_tasks_trail_goes_with_retention() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.retention_seconds = 1;
        c.prune_interval_ms = 100;
    })
    .await;
    let created = app
        .create(json!({ "type": "t.audit", "items": numbered_items(1) }))
        .await;
    let task = id_of(&created["task"]);
    app.update(json!({ "id": task, "result": { "file": "out.csv" }, "metadataPatch": { "a": 1 } }))
        .await;
    let trail = app
        .data(
            "query($id: ID!) { bulkTask(id: $id) { auditTrail { nodes { action actor details } } } }",
            json!({ "id": task }),
        )
        .await;
    let newest = &trail["bulkTask"]["auditTrail"]["nodes"][0];
    assert_eq!(newest["action"], "update", "{trail:#}");
    assert_eq!(newest["actor"], actor_of(&app, &app.admin_key));
    assert_eq!(newest["details"]["result"], true);

    // Finish it: retention removes the task, leaves a `system` entry, and a
    // later sweep removes the deleted task's trail.
    app.report(&task, json!([{ "index": 0, "outcome": "SUCCEEDED" }]))
        .await;
    let db = Database::connect(&app.database_url).await.unwrap();
    let count = |action: &'static str| {
        let db = &db;
        async move {
            let rows = db
                .query_all_raw(Statement::from_string(
                    db.get_database_backend(),
                    format!("SELECT id FROM audit_entries WHERE action = '{action}'"),
                ))
                .await
                .unwrap();
            rows.len()
        }
    };
    let mut saw_retention = false;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        saw_retention |= count("retention").await == 1;
        if app.task(&task).await.is_null() && count("update").await == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the task and its trail are pruned"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        saw_retention,
        "retention wrote its entry before the trail went"
    );
    db.close().await.ok();
}
