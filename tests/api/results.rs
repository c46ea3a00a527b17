//! What a task hands back: `updateBulkTask` (merge-patched metadata, a
//! result, artifacts), filters on metadata, producer rejections with the
//! producer's own codes, and the workers' heartbeat on the task.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, counters, spawn_app, spawn_app_with};
use crate::ops::{WATCH_TASK, WATCH_TASKS, id_of, numbered_items};
use crate::ws::{TRANSPORT, Ws};

async fn create_with_metadata(app: &TestApp, metadata: Value) -> String {
    let payload = app
        .create(json!({ "type": "results.meta", "metadata": metadata, "items": numbered_items(2) }))
        .await;
    id_of(&payload["task"])
}

async fn finish(app: &TestApp, task: &str, n: usize) {
    let results: Vec<Value> = (0..n)
        .map(|i| json!({ "index": i, "outcome": "SUCCEEDED" }))
        .collect();
    app.report_all(task, json!(results)).await;
}

fn artifact(name: &str, url: &str) -> Value {
    json!({ "name": name, "url": url, "contentType": "text/csv", "sizeBytes": 1234.0 })
}

// ---------------------------------------------------------------------------
// updateBulkTask
// ---------------------------------------------------------------------------

#[tokio::test]
async fn update_merge_patches_metadata_sets_result_and_artifacts_in_one_version() {
    let app = spawn_app().await;
    let task = create_with_metadata(
        &app,
        json!({
            "campaign_id": "c-1",
            "credits": { "reserved": 100, "consumed": 0, "hold": "h-1" },
            "note": "drop me",
        }),
    )
    .await;
    let before = app.results(&task).await;
    assert_eq!(before["result"], Value::Null);
    assert_eq!(before["artifacts"], json!([]));

    let after = app
        .update(json!({
            "id": task,
            "description": "export of the wallet",
            "metadataPatch": {
                "credits": { "consumed": 40, "refunded": 5, "hold": null },
                "note": null,
                "template_id": 7,
            },
            "result": "Wallet_Export-12345.csv",
            "addArtifacts": [
                artifact("export_file", "https://files.example.com/Wallet_Export-12345.csv"),
                { "name": "failure_report", "url": "http://files.example.com/f.csv" },
            ],
        }))
        .await;
    // RFC 7396: null removes a key, objects merge key by key, the rest replaces.
    assert_eq!(
        after["metadata"],
        json!({
            "campaign_id": "c-1",
            "credits": { "reserved": 100, "consumed": 40, "refunded": 5 },
            "template_id": 7,
        })
    );
    assert_eq!(after["result"], json!("Wallet_Export-12345.csv"));
    assert_eq!(after["description"], "export of the wallet");
    assert_eq!(after["version"], before["version"].as_i64().unwrap() + 1);
    let artifacts = after["artifacts"].as_array().unwrap();
    assert_eq!(artifacts.len(), 2);
    assert_eq!(artifacts[0]["name"], "export_file");
    assert_eq!(artifacts[0]["contentType"], "text/csv");
    assert_eq!(artifacts[0]["sizeBytes"], 1234.0);
    assert!(artifacts[0]["createdAt"].is_string());
    assert_eq!(artifacts[1]["contentType"], Value::Null);
    assert_eq!(
        app.results(&task).await,
        after,
        "a read shows what the update returned"
    );

    // Results usually arrive at the end: a finished task takes updates too,
    // and a removed name can be added again in the same call.
    finish(&app, &task, 2).await;
    let done = app
        .update(json!({
            "id": task,
            "description": null,
            "result": { "rows": 2, "file": "w.csv" },
            "removeArtifacts": ["export_file", "not-there"],
            "addArtifacts": [artifact("export_file", "https://files.example.com/v2.csv")],
        }))
        .await;
    assert_eq!(done["status"], "COMPLETED");
    assert_eq!(done["description"], Value::Null);
    assert_eq!(done["result"], json!({ "rows": 2, "file": "w.csv" }));
    let names: Vec<&str> = done["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["failure_report", "export_file"]);
    assert_eq!(
        done["artifacts"][1]["url"],
        "https://files.example.com/v2.csv"
    );
    assert_eq!(
        done["metadata"], after["metadata"],
        "left alone when not patched"
    );
    assert_eq!(done["finishedAt"], app.results(&task).await["finishedAt"]);

    let cleared = app.update(json!({ "id": task, "result": null })).await;
    assert_eq!(cleared["result"], Value::Null);
}

#[tokio::test]
async fn update_refuses_bad_artifacts_patches_and_results() {
    let app = spawn_app().await;
    let task = create_with_metadata(&app, json!({})).await;
    app.update(json!({ "id": task, "addArtifacts": [artifact("a", "https://x.example/a")] }))
        .await;
    let big = "x".repeat(70 * 1024);
    let refused = [
        json!({ "id": task, "addArtifacts": [artifact("b", "ftp://x.example/b")] }),
        json!({ "id": task, "addArtifacts": [artifact("b", "javascript:alert(1)")] }),
        json!({ "id": task, "addArtifacts": [artifact("b", "not a url")] }),
        json!({ "id": task, "addArtifacts": [artifact("a", "https://x.example/again")] }),
        json!({ "id": task, "addArtifacts": [artifact("c", "https://x.example/1"), artifact("c", "https://x.example/2")] }),
        json!({ "id": task, "addArtifacts": [artifact("", "https://x.example/1")] }),
        json!({ "id": task, "addArtifacts": [{ "name": "d", "url": "https://x.example/d", "sizeBytes": -1.0 }] }),
        json!({ "id": task, "metadataPatch": [1, 2] }),
        json!({ "id": task, "metadataPatch": { "big": big } }),
        json!({ "id": task, "result": { "big": big } }),
    ];
    for input in refused {
        assert_eq!(
            app.update_error(input.clone()).await,
            "BAD_USER_INPUT",
            "{input}"
        );
    }
    let task_now = app.results(&task).await;
    assert_eq!(
        task_now["artifacts"].as_array().unwrap().len(),
        1,
        "nothing applied"
    );
    assert_eq!(task_now["metadata"], json!({}));

    let other = app.key_for("other", "tasks:read,tasks:write");
    let as_other = app.as_key(&other);
    assert_eq!(
        as_other
            .update_error(json!({ "id": task, "result": 1 }))
            .await,
        "NOT_FOUND"
    );
    let reader = app.key_for("default", "tasks:read");
    assert_eq!(
        app.as_key(&reader)
            .update_error(json!({ "id": task, "result": 1 }))
            .await,
        "FORBIDDEN"
    );
}

#[tokio::test]
async fn subscribers_see_an_update() {
    let app = spawn_app_with(|c| c.coalesce_ms = 50).await;
    let task = create_with_metadata(&app, json!({ "credits": { "reserved": 10 } })).await;
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&app.admin_key).await;
    ws.subscribe("1", WATCH_TASK, json!({ "id": task })).await;
    let first = ws.next_data("1").await["bulkTaskUpdated"].clone();
    app.update(json!({ "id": task, "metadataPatch": { "credits": { "consumed": 3 } } }))
        .await;
    let next = ws.next_data("1").await["bulkTaskUpdated"].clone();
    assert_eq!(next["version"], first["version"].as_i64().unwrap() + 1);
    assert_eq!(
        next["metadata"],
        json!({ "credits": { "reserved": 10, "consumed": 3 } })
    );
}

// ---------------------------------------------------------------------------
// Metadata filters
// ---------------------------------------------------------------------------

const FILTERED: &str = "query($filter: BulkTaskFilter) { \
    bulkTasks(first: 100, filter: $filter, orderBy: { field: CREATED_AT, direction: ASC }) { \
    totalCount nodes { id } } bulkTaskStats(filter: $filter) { total items { total } } }";

async fn matching(app: &TestApp, metadata: Value) -> Vec<String> {
    let data = app
        .data(FILTERED, json!({ "filter": { "metadata": metadata } }))
        .await;
    let ids: Vec<String> = data["bulkTasks"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(data["bulkTasks"]["totalCount"], ids.len() as i64);
    assert_eq!(
        data["bulkTaskStats"]["total"],
        ids.len() as i64,
        "stats filter alike"
    );
    assert_eq!(
        data["bulkTaskStats"]["items"]["total"],
        2 * ids.len() as i64
    );
    ids
}

#[tokio::test]
async fn tasks_filter_by_metadata_with_nested_objects_as_subsets() {
    let app = spawn_app().await;
    let a = create_with_metadata(
        &app,
        json!({ "campaign_id": "c-1", "template": { "id": 7, "kind": "sms" }, "live": true, "n": 1 }),
    )
    .await;
    let b = create_with_metadata(
        &app,
        json!({ "campaign_id": "c-2", "template": { "id": 7, "kind": "mail", "x": {} }, "live": false }),
    )
    .await;
    let c = create_with_metadata(
        &app,
        json!({ "custom_object_id": "o-9", "n": "1", "gone": null }),
    )
    .await;
    let other = app.key_for("other", "tasks:read,tasks:write");
    let foreign = app
        .as_key(&other)
        .create(
            json!({ "type": "results.meta", "metadata": { "campaign_id": "c-1" }, "items": [] }),
        )
        .await;
    assert_eq!(foreign["created"], true);

    assert_eq!(
        matching(&app, json!({ "campaign_id": "c-1" })).await,
        vec![a.clone()]
    );
    assert_eq!(
        matching(&app, json!({ "template": { "id": 7 } })).await,
        [a.clone(), b.clone()]
    );
    assert_eq!(
        matching(&app, json!({ "template": { "id": 7, "kind": "mail" } })).await,
        vec![b.clone()]
    );
    assert_eq!(
        matching(&app, json!({ "template": { "x": {} } })).await,
        vec![b.clone()]
    );
    assert_eq!(
        matching(&app, json!({ "live": true })).await,
        vec![a.clone()]
    );
    assert_eq!(
        matching(&app, json!({ "live": false })).await,
        vec![b.clone()]
    );
    // Types count: the number 1 is not the string "1".
    assert_eq!(matching(&app, json!({ "n": 1 })).await, vec![a.clone()]);
    assert_eq!(matching(&app, json!({ "n": "1" })).await, vec![c.clone()]);
    assert_eq!(
        matching(&app, json!({ "gone": null })).await,
        vec![c.clone()]
    );
    assert_eq!(
        matching(&app, json!({ "template": { "id": 8 } })).await,
        Vec::<String>::new()
    );
    assert_eq!(
        matching(&app, json!({ "template": 7 })).await,
        Vec::<String>::new()
    );
    assert_eq!(
        matching(&app, json!({})).await,
        [a.clone(), b.clone(), c.clone()]
    );

    // An updated task matches by its new metadata.
    app.update(json!({ "id": c, "metadataPatch": { "campaign_id": "c-1" } }))
        .await;
    assert_eq!(
        matching(&app, json!({ "campaign_id": "c-1" })).await,
        [a, c]
    );

    for bad in [
        json!([1]),
        json!({ "tags": ["x"] }),
        json!("c-1"),
        json!({ "a\"b": 1 }),
    ] {
        let body = app
            .post(FILTERED, json!({ "filter": { "metadata": bad } }))
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{bad}: {body:#}"
        );
    }
}

#[tokio::test]
async fn bulk_tasks_updated_follows_only_tasks_whose_metadata_matches() {
    let app = spawn_app_with(|c| c.coalesce_ms = 50).await;
    let wanted = create_with_metadata(&app, json!({ "campaign_id": "c-1" })).await;
    let unwanted = create_with_metadata(&app, json!({ "campaign_id": "c-2" })).await;
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&app.admin_key).await;
    let filter = json!({ "metadata": { "campaign_id": "c-1" } });
    ws.subscribe("1", WATCH_TASKS, json!({ "filter": filter }))
        .await;
    // The subscription has no first event: change the matching task until one shows it is live.
    let mut live = None;
    for i in 0..2 {
        app.report_all(&unwanted, json!([{ "index": i, "outcome": "SUCCEEDED" }]))
            .await;
        app.report_all(&wanted, json!([{ "index": i, "outcome": "SUCCEEDED" }]))
            .await;
        if let Some(crate::ws::Received::Message(m)) = ws.recv(Duration::from_millis(700)).await {
            live = Some(m);
            break;
        }
    }
    let first = ws.data_of(&live.expect("the subscription went live"), "1");
    assert_eq!(first["bulkTasksUpdated"]["id"], wanted);
    ws.expect_quiet(Duration::from_millis(500)).await;
}

// ---------------------------------------------------------------------------
// Producer rejections
// ---------------------------------------------------------------------------

#[tokio::test]
async fn items_the_producer_rejects_keep_its_code_in_counters_payload_and_error_summary() {
    let app = spawn_app().await;
    let insufficient = json!({
        "code": "INSUFFICIENT_CREDITS",
        "message": "needs 3 credits, 1 left",
        "details": { "needed": 3, "left": 1 },
    });
    let input = json!({
        "type": "results.reject",
        "idempotencyKey": "rejecting-1",
        "items": [
            { "clientItemId": "a", "payload": { "n": 0 } },
            { "clientItemId": "b", "payload": { "n": 1 }, "reject": insufficient },
            { "clientItemId": "c", "payload": { "n": 2 }, "reject": insufficient },
            { "clientItemId": "a", "payload": { "n": 3 } },
        ],
    });
    let created = app.create(input.clone()).await;
    let rejected = json!([
        { "index": 1, "clientItemId": "b", "code": "INSUFFICIENT_CREDITS", "message": "needs 3 credits, 1 left" },
        { "index": 2, "clientItemId": "c", "code": "INSUFFICIENT_CREDITS", "message": "needs 3 credits, 1 left" },
        { "index": 3, "clientItemId": "a", "code": "DUPLICATE_CLIENT_ITEM_ID",
          "message": created["rejected"][2]["message"] },
    ]);
    assert_eq!(created["rejected"], rejected);
    let task = id_of(&created["task"]);
    assert_eq!(
        created["task"]["counters"],
        counters(&[("pending", 1), ("rejected", 3)])
    );

    // A repeat under the same key answers the same, codes included.
    let again = app.create(input).await;
    assert_eq!(again["created"], false);
    assert_eq!(again["rejected"], rejected);

    // The rejected client id stays free for an accepted item, appended later.
    let unsealed = app
        .create(
            json!({ "type": "results.reject", "sealed": false, "items": [
            { "clientItemId": "x", "reject": { "code": "NO_QUOTA", "message": "no quota" } },
        ] }),
        )
        .await;
    let open = id_of(&unsealed["task"]);
    let appended = app
        .append(
            &open,
            json!([
                { "clientItemId": "x", "payload": {} },
                { "clientItemId": "y", "reject": { "code": "NO_QUOTA", "message": "still none" } },
            ]),
            Some(true),
        )
        .await;
    assert_eq!(
        appended["rejected"],
        json!([{ "index": 2, "clientItemId": "y", "code": "NO_QUOTA", "message": "still none" }])
    );
    assert_eq!(
        appended["task"]["counters"],
        counters(&[("pending", 1), ("rejected", 2)])
    );

    let summary = app
        .data(
            "query($id: ID!) { bulkTask(id: $id) { errorSummary { code count sampleMessage } \
             items(filter: { status: [REJECTED] }) { nodes { index status error { code message details } } } } }",
            json!({ "id": task }),
        )
        .await;
    let mut codes: Vec<(String, i64)> = summary["bulkTask"]["errorSummary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["code"].as_str().unwrap().to_owned(),
                c["count"].as_i64().unwrap(),
            )
        })
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        [
            ("DUPLICATE_CLIENT_ITEM_ID".to_owned(), 1),
            ("INSUFFICIENT_CREDITS".to_owned(), 2)
        ]
    );
    let items = &summary["bulkTask"]["items"]["nodes"];
    assert_eq!(
        items[0]["error"],
        json!({
            "code": "INSUFFICIENT_CREDITS",
            "message": "needs 3 credits, 1 left",
            "details": { "needed": 3, "left": 1 },
        })
    );
    app.assert_counters_consistent(&task).await;

    let refused = app
        .create_error(json!({ "type": "results.reject", "items": [
            { "reject": { "code": "", "message": "no code" } },
        ] }))
        .await;
    assert_eq!(refused, "BAD_USER_INPUT");
}

// ---------------------------------------------------------------------------
// Heartbeat
// ---------------------------------------------------------------------------

async fn heartbeat(app: &TestApp, task: &str) -> Option<String> {
    app.results(task).await["lastHeartbeatAt"]
        .as_str()
        .map(str::to_owned)
}

#[tokio::test]
async fn claims_renewals_and_reports_record_a_heartbeat_at_most_once_a_second() {
    let app = spawn_app().await;
    let task = app.create_task(4).await;
    assert_eq!(heartbeat(&app, &task).await, None, "no worker yet");

    let claimed = app.claim_task(&task, 2, 60, "w1").await;
    let after_claim = heartbeat(&app, &task)
        .await
        .expect("a claim is a heartbeat");
    let token = claimed[0]["leaseToken"].as_str().unwrap().to_owned();

    // Within a second, a renewal and an idle report write nothing.
    app.renew(&[&token], Some(60)).await;
    let idle = json!([{ "index": 3, "outcome": "RUNNING", "leaseToken": "lt_wrong" }]);
    app.report(&task, idle.clone()).await;
    assert_eq!(
        heartbeat(&app, &task).await.as_deref(),
        Some(after_claim.as_str())
    );

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    app.renew(&[&token], Some(60)).await;
    let after_renewal = heartbeat(&app, &task).await.unwrap();
    assert!(
        after_renewal > after_claim,
        "{after_renewal} after {after_claim}"
    );

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let payload = app.report(&task, idle).await;
    assert_eq!(payload["applied"], 0);
    let after_idle_report = heartbeat(&app, &task).await.unwrap();
    assert!(after_idle_report > after_renewal);

    let done = json!([{ "index": 0, "outcome": "SUCCEEDED", "leaseToken": token }]);
    app.report_all(&task, done).await;
    assert!(heartbeat(&app, &task).await.unwrap() >= after_idle_report);
}
