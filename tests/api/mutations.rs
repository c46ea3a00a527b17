//! Mutations of the public contract, through HTTP only: create, append, seal,
//! report, cancel, retry, fail and delete, with their error codes.
//! Every scenario ends by recomputing a task's counters from its item rows.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_report, counters, spawn_app};
use crate::ops::{
    APPEND, CANCEL, CREATE, DELETE, FAIL, REPORT, RETRY, SEAL, id_of, numbered_items,
};

// ---------------------------------------------------------------------------
// Shared helpers of this file (the operations themselves are in `ops`)
// ---------------------------------------------------------------------------

fn version(task: &Value) -> i64 {
    task["version"]
        .as_i64()
        .unwrap_or_else(|| panic!("no integer version in {task:#}"))
}

fn progress(task: &Value) -> f64 {
    task["progress"]
        .as_f64()
        .unwrap_or_else(|| panic!("no progress in {task:#}"))
}

fn assert_progress(task: &Value, expected: f64) {
    let p = progress(task);
    assert!(
        (p - expected).abs() < 1e-9,
        "progress {p}, expected {expected}: {task:#}"
    );
}

fn assert_time(value: &Value, what: &str) {
    assert!(
        value.as_str().is_some_and(|s| !s.is_empty()),
        "{what} should be set, got {value}"
    );
}

fn statuses(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["status"].as_str().unwrap().to_owned())
        .collect()
}

/// Creates a task that stays open for appends, with `items`; returns its id.
async fn create_open(app: &TestApp, items: Value) -> String {
    let payload = app
        .create(json!({ "type": "test.items", "sealed": false, "items": items }))
        .await;
    id_of(&payload["task"])
}

/// Asserts the `rejected` list as (index, clientItemId, code), messages non-empty.
fn assert_rejected(payload: &Value, expected: &[(i64, Option<&str>, &str)]) {
    let list = payload["rejected"]
        .as_array()
        .unwrap_or_else(|| panic!("no rejected list: {payload:#}"));
    let got: Vec<(i64, Option<String>, String)> = list
        .iter()
        .map(|r| {
            (
                r["index"].as_i64().unwrap(),
                r["clientItemId"].as_str().map(str::to_owned),
                r["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(i64, Option<String>, String)> = expected
        .iter()
        .map(|(i, c, code)| (*i, c.map(str::to_owned), (*code).to_owned()))
        .collect();
    assert_eq!(got, want, "rejected of {payload:#}");
    for r in list {
        assert!(
            r["message"].as_str().is_some_and(|m| !m.is_empty()),
            "a rejection without message: {r}"
        );
    }
}

// ---------------------------------------------------------------------------
// createBulkTask
// ---------------------------------------------------------------------------

#[tokio::test]
async fn create_bulk_task_returns_a_queued_sealed_task_with_its_items() {
    let app = spawn_app().await;
    let metadata =
        json!({ "owner": "ops", "tags": ["a", "b"], "nested": { "n": 1.5, "ok": true } });
    let payload = app
        .create(json!({
            "type": "links.bulk_create",
            "description": "three links",
            "metadata": metadata,
            "items": [
                { "clientItemId": "a", "payload": { "url": "https://a.example" } },
                { "clientItemId": "b", "payload": { "url": "https://b.example", "n": [1, 2] } },
                { "payload": {} },
            ],
        }))
        .await;

    assert_eq!(payload["created"], json!(true));
    assert_rejected(&payload, &[]);
    let task = &payload["task"];
    assert_eq!(task["type"], json!("links.bulk_create"));
    assert_eq!(task["description"], json!("three links"));
    assert_eq!(task["status"], json!("QUEUED"));
    assert_eq!(task["sealed"], json!(true));
    assert_eq!(task["cancelRequested"], json!(false));
    assert_eq!(task["counters"], counters(&[("pending", 3)]));
    assert_progress(task, 0.0);
    assert_eq!(task["metadata"], metadata);
    assert_eq!(task["maxAttempts"], json!(3));
    assert_eq!(task["idempotencyKey"], Value::Null);
    assert_eq!(task["error"], Value::Null);
    assert_eq!(task["startedAt"], Value::Null);
    assert_eq!(task["finishedAt"], Value::Null);
    assert_time(&task["createdAt"], "createdAt");
    assert_time(&task["updatedAt"], "updatedAt");
    assert!(
        version(task) >= 0,
        "version is a non-negative integer: {task:#}"
    );

    // The stored task reads back exactly as the mutation returned it.
    let id = id_of(task);
    assert_eq!(&app.task(&id).await, task);

    let items = app.items(&id).await;
    assert_eq!(items.len(), 3);
    let expected = [
        (Some("a"), json!({ "url": "https://a.example" })),
        (
            Some("b"),
            json!({ "url": "https://b.example", "n": [1, 2] }),
        ),
        (None, json!({})),
    ];
    for (i, (item, (cid, payload))) in items.iter().zip(expected).enumerate() {
        assert_eq!(item["index"], json!(i), "{item:#}");
        assert_eq!(item["clientItemId"].as_str(), cid, "{item:#}");
        assert_eq!(item["status"], json!("PENDING"), "{item:#}");
        assert_eq!(item["payload"], payload, "{item:#}");
        assert_eq!(item["result"], Value::Null, "{item:#}");
        assert_eq!(item["error"], Value::Null, "{item:#}");
        assert_eq!(item["attempts"], json!(0), "{item:#}");
        assert_eq!(item["finishedAt"], Value::Null, "{item:#}");
    }
    app.assert_counters_consistent(&id).await;
}

#[tokio::test]
async fn create_without_metadata_has_an_empty_object() {
    let app = spawn_app().await;
    let payload = app
        .create(json!({ "type": "export", "items": [{ "payload": { "x": 1 } }] }))
        .await;
    assert_eq!(payload["task"]["metadata"], json!({}));
    assert_eq!(payload["task"]["description"], Value::Null);
    app.assert_counters_consistent(&id_of(&payload["task"]))
        .await;
}

#[tokio::test]
async fn create_rejects_bad_items_and_stores_them_as_rejected() {
    let app = spawn_app().await;
    let big = "x".repeat(70 * 1024);
    let almost = "y".repeat(60 * 1024);
    let payload = app
        .create(json!({
            "type": "sims.bulk_provision",
            "items": [
                { "clientItemId": "a", "payload": { "v": 0 } },
                { "clientItemId": "b", "payload": { "v": 1 } },
                { "clientItemId": "a", "payload": { "v": 2 } },
                { "clientItemId": "big", "payload": { "blob": big } },
                { "clientItemId": "num", "payload": 42 },
                { "clientItemId": "arr", "payload": [1, 2, 3] },
                { "clientItemId": "almost", "payload": { "blob": almost } },
                { "payload": "text" },
            ],
        }))
        .await;

    assert_eq!(payload["created"], json!(true));
    assert_rejected(
        &payload,
        &[
            (2, Some("a"), "DUPLICATE_CLIENT_ITEM_ID"),
            (3, Some("big"), "PAYLOAD_TOO_LARGE"),
            (4, Some("num"), "PAYLOAD_NOT_OBJECT"),
            (5, Some("arr"), "PAYLOAD_NOT_OBJECT"),
            (7, None, "PAYLOAD_NOT_OBJECT"),
        ],
    );
    let task = &payload["task"];
    assert_eq!(
        task["counters"],
        counters(&[("pending", 3), ("rejected", 5)])
    );
    assert_eq!(task["status"], json!("QUEUED"));
    assert_progress(task, 5.0 / 8.0);

    let id = id_of(task);
    let items = app.items(&id).await;
    assert_eq!(
        statuses(&items),
        [
            "PENDING", "PENDING", "REJECTED", "REJECTED", "REJECTED", "REJECTED", "PENDING",
            "REJECTED"
        ]
    );
    let indexes: Vec<i64> = items.iter().map(|i| i["index"].as_i64().unwrap()).collect();
    assert_eq!(indexes, (0..8).collect::<Vec<i64>>());
    // The first occurrence of a duplicated client id is the accepted one.
    assert_eq!(items[0]["clientItemId"], json!("a"));
    assert_eq!(items[0]["payload"], json!({ "v": 0 }));
    assert_eq!(items[2]["clientItemId"], json!("a"));
    let codes: Vec<Value> = items.iter().map(|i| i["error"]["code"].clone()).collect();
    assert_eq!(
        codes,
        [
            Value::Null,
            Value::Null,
            json!("DUPLICATE_CLIENT_ITEM_ID"),
            json!("PAYLOAD_TOO_LARGE"),
            json!("PAYLOAD_NOT_OBJECT"),
            json!("PAYLOAD_NOT_OBJECT"),
            Value::Null,
            json!("PAYLOAD_NOT_OBJECT"),
        ]
    );
    for item in &items[2..6] {
        assert!(
            item["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{item:#}"
        );
    }
    app.assert_counters_consistent(&id).await;
}

#[tokio::test]
async fn a_sealed_task_whose_items_are_all_rejected_is_failed() {
    let app = spawn_app().await;
    let payload = app
        .create(json!({ "type": "test.items", "items": [{ "payload": 1 }, { "payload": [] }] }))
        .await;
    let task = &payload["task"];
    assert_eq!(task["counters"], counters(&[("rejected", 2)]));
    assert_eq!(task["status"], json!("FAILED"));
    assert_eq!(task["error"], Value::Null, "no task-level error: {task:#}");
    assert_time(&task["finishedAt"], "finishedAt");
    assert_progress(task, 1.0);
    app.assert_counters_consistent(&id_of(task)).await;
}

#[tokio::test]
async fn create_validates_the_task_type() {
    let app = spawn_app().await;
    let bad = [
        String::new(),
        "Links".to_owned(),
        "1links".to_owned(),
        "_links".to_owned(),
        "links bulk".to_owned(),
        "links/bulk".to_owned(),
        "linkS".to_owned(),
        format!("a{}", "b".repeat(64)),
    ];
    for ty in &bad {
        let code = app
            .create_error(json!({ "type": ty, "items": [{ "payload": {} }] }))
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "type {ty:?}");
    }
    assert_eq!(app.task_count().await, 0, "a refused create makes no task");

    let good = [
        "a".to_owned(),
        format!("a{}", "b".repeat(63)),
        "x.y:z-w_9".to_owned(),
        "links.bulk_create".to_owned(),
    ];
    for ty in &good {
        let payload = app
            .create(json!({ "type": ty, "items": [{ "payload": {} }] }))
            .await;
        assert_eq!(payload["task"]["type"], json!(ty));
        app.assert_counters_consistent(&id_of(&payload["task"]))
            .await;
    }
    assert_eq!(app.task_count().await, good.len() as i64);
}

#[tokio::test]
async fn create_validates_max_attempts() {
    let app = spawn_app().await;
    for bad in [0, -1, 101, 1000] {
        let code = app
            .create_error(json!({ "type": "test.items", "maxAttempts": bad, "items": [] }))
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "maxAttempts {bad}");
    }
    assert_eq!(app.task_count().await, 0);
    for good in [1, 100] {
        let payload = app
            .create(
                json!({ "type": "test.items", "maxAttempts": good, "items": [{ "payload": {} }] }),
            )
            .await;
        assert_eq!(payload["task"]["maxAttempts"], json!(good));
        app.assert_counters_consistent(&id_of(&payload["task"]))
            .await;
    }
    assert_eq!(app.task_count().await, 2);
}

#[tokio::test]
async fn an_empty_sealed_task_is_completed_at_once() {
    let app = spawn_app().await;
    let payload = app
        .create(json!({ "type": "test.items", "items": [] }))
        .await;
    let task = &payload["task"];
    assert_eq!(task["status"], json!("COMPLETED"));
    assert_eq!(task["sealed"], json!(true));
    assert_eq!(task["counters"], counters(&[]));
    assert_progress(task, 1.0);
    assert_time(&task["finishedAt"], "finishedAt");
    app.assert_counters_consistent(&id_of(task)).await;

    // An empty open task is merely queued.
    let open = app
        .create(json!({ "type": "test.items", "sealed": false, "items": [] }))
        .await;
    let task = &open["task"];
    assert_eq!(task["status"], json!("QUEUED"));
    assert_eq!(task["sealed"], json!(false));
    assert_progress(task, 0.0);
    assert_eq!(task["finishedAt"], Value::Null);
    app.assert_counters_consistent(&id_of(task)).await;
}

#[tokio::test]
async fn same_idempotency_key_and_input_returns_the_first_task() {
    let app = spawn_app().await;
    let input = json!({
        "type": "links.bulk_create",
        "idempotencyKey": "order-42",
        "metadata": { "m": 1 },
        "items": numbered_items(5),
    });
    let first = app.create(input.clone()).await;
    assert_eq!(first["created"], json!(true));
    assert_eq!(first["task"]["idempotencyKey"], json!("order-42"));

    let second = app.create(input).await;
    assert_eq!(second["created"], json!(false));
    assert_eq!(id_of(&second["task"]), id_of(&first["task"]));
    assert_eq!(second["task"]["counters"], counters(&[("pending", 5)]));
    assert_eq!(
        second["task"]["version"], first["task"]["version"],
        "the replay changes nothing"
    );
    assert_eq!(app.task_count().await, 1);
    assert_eq!(app.items(&id_of(&first["task"])).await.len(), 5);
    app.assert_counters_consistent(&id_of(&first["task"])).await;
}

#[tokio::test]
async fn same_idempotency_key_with_other_input_is_a_conflict() {
    let app = spawn_app().await;
    let input = json!({ "type": "test.items", "idempotencyKey": "k", "items": numbered_items(2) });
    let first = app.create(input).await;
    let id = id_of(&first["task"]);

    let other_items =
        json!({ "type": "test.items", "idempotencyKey": "k", "items": numbered_items(3) });
    assert_eq!(app.create_error(other_items).await, "CONFLICT");
    let other_type =
        json!({ "type": "test.other", "idempotencyKey": "k", "items": numbered_items(2) });
    assert_eq!(app.create_error(other_type).await, "CONFLICT");

    assert_eq!(app.task_count().await, 1);
    assert_eq!(app.task(&id).await["counters"], counters(&[("pending", 2)]));

    // Another key is another task.
    let input = json!({ "type": "test.items", "idempotencyKey": "k2", "items": numbered_items(2) });
    let third = app.create(input).await;
    assert_eq!(third["created"], json!(true));
    assert_ne!(id_of(&third["task"]), id);
    assert_eq!(app.task_count().await, 2);
    app.assert_counters_consistent(&id).await;
    app.assert_counters_consistent(&id_of(&third["task"])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_with_one_idempotency_key_make_one_task() {
    let app = spawn_app().await;
    let vars = json!({ "input": { "type": "test.items", "idempotencyKey": "race", "items": numbered_items(50) } });
    let (a, b) = tokio::join!(
        app.post(CREATE, vars.clone()),
        app.post(CREATE, vars.clone())
    );
    assert!(a.get("errors").is_none(), "first create failed: {a:#}");
    assert!(b.get("errors").is_none(), "second create failed: {b:#}");
    let (a, b) = (&a["data"]["createBulkTask"], &b["data"]["createBulkTask"]);
    assert_eq!(id_of(&a["task"]), id_of(&b["task"]));
    let created = [
        a["created"].as_bool().unwrap(),
        b["created"].as_bool().unwrap(),
    ];
    assert_eq!(
        created.iter().filter(|c| **c).count(),
        1,
        "exactly one creates: {created:?}"
    );
    assert_eq!(app.task_count().await, 1);
    let id = id_of(&a["task"]);
    assert_eq!(
        app.task(&id).await["counters"],
        counters(&[("pending", 50)])
    );
    app.assert_counters_consistent(&id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_items_in_one_create() {
    let app = spawn_app().await;
    let items: Vec<Value> = (0..100_000)
        .map(|i| json!({ "payload": { "n": i } }))
        .collect();
    let payload = app
        .create(json!({ "type": "test.large", "items": items }))
        .await;
    assert_eq!(payload["created"], json!(true));
    assert_rejected(&payload, &[]);
    let task = &payload["task"];
    assert_eq!(task["counters"], counters(&[("pending", 100_000)]));
    assert_eq!(task["status"], json!("QUEUED"));
    let id = id_of(task);

    let data = app
        .data(
            "query($id: ID!) { bulkTask(id: $id) { items(first: 1, orderBy: { field: INDEX, direction: DESC }) { \
             totalCount nodes { index payload status } } } }",
            json!({ "id": id }),
        )
        .await;
    let items = &data["bulkTask"]["items"];
    assert_eq!(items["totalCount"], json!(100_000));
    assert_eq!(items["nodes"][0]["index"], json!(99_999));
    assert_eq!(items["nodes"][0]["payload"], json!({ "n": 99_999 }));
    assert_eq!(items["nodes"][0]["status"], json!("PENDING"));
    app.assert_counters_consistent(&id).await;
}

// ---------------------------------------------------------------------------
// appendTaskItems / sealBulkTask
// ---------------------------------------------------------------------------

#[tokio::test]
async fn append_continues_indexes_rejects_duplicates_and_seals() {
    let app = spawn_app().await;
    let created = app
        .create(json!({ "type": "test.items", "sealed": false, "items": [
            { "clientItemId": "a", "payload": { "v": "a" } },
            { "clientItemId": "b", "payload": { "v": "b" } },
        ] }))
        .await;
    let task = &created["task"];
    assert_eq!(task["sealed"], json!(false));
    assert_eq!(task["status"], json!("QUEUED"));
    assert_eq!(task["finishedAt"], Value::Null);
    let id = id_of(task);
    let v0 = version(task);

    let appended = app
        .append(
            &id,
            json!([
                { "clientItemId": "c", "payload": { "v": "c" } },
                { "clientItemId": "a", "payload": { "v": "a again" } },
                { "clientItemId": "d", "payload": { "v": "d" } },
                { "clientItemId": "d", "payload": { "v": "d again" } },
                { "clientItemId": "n", "payload": 7 },
            ]),
            None,
        )
        .await;
    assert_rejected(
        &appended,
        &[
            (3, Some("a"), "DUPLICATE_CLIENT_ITEM_ID"),
            (5, Some("d"), "DUPLICATE_CLIENT_ITEM_ID"),
            (6, Some("n"), "PAYLOAD_NOT_OBJECT"),
        ],
    );
    let task = &appended["task"];
    assert_eq!(task["sealed"], json!(false));
    assert_eq!(
        task["counters"],
        counters(&[("pending", 4), ("rejected", 3)])
    );
    let v1 = version(task);
    assert!(v1 > v0, "append bumps the version: {v0} -> {v1}");

    let sealed = app
        .append(
            &id,
            json!([{ "clientItemId": "e", "payload": { "v": "e" } }]),
            Some(true),
        )
        .await;
    assert_rejected(&sealed, &[]);
    let task = &sealed["task"];
    assert_eq!(task["sealed"], json!(true));
    assert_eq!(task["status"], json!("QUEUED"));
    assert_eq!(
        task["counters"],
        counters(&[("pending", 5), ("rejected", 3)])
    );
    assert!(version(task) > v1);

    let items = app.items(&id).await;
    let got: Vec<(i64, Value, String)> = items
        .iter()
        .map(|i| {
            (
                i["index"].as_i64().unwrap(),
                i["clientItemId"].clone(),
                i["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(i64, Value, String)> = [
        ("a", "PENDING"),
        ("b", "PENDING"),
        ("c", "PENDING"),
        ("a", "REJECTED"),
        ("d", "PENDING"),
        ("d", "REJECTED"),
        ("n", "REJECTED"),
        ("e", "PENDING"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (c, s))| (i as i64, json!(c), (*s).to_owned()))
    .collect();
    assert_eq!(got, want);
    assert_eq!(
        items[0]["payload"],
        json!({ "v": "a" }),
        "the accepted `a` is the first one"
    );
    assert_eq!(items[4]["payload"], json!({ "v": "d" }));

    // A sealed task takes no more items.
    let code = app
        .error_code(
            APPEND,
            json!({ "input": { "taskId": id, "items": [{ "clientItemId": "f", "payload": {} }] } }),
        )
        .await;
    assert_eq!(code, "INVALID_STATE");
    assert_eq!(
        app.task(&id).await["counters"],
        counters(&[("pending", 5), ("rejected", 3)])
    );
    app.assert_counters_consistent(&id).await;
}

#[tokio::test]
async fn appending_to_a_sealed_task_is_invalid_state() {
    let app = spawn_app().await;
    let id = app.create_task(2).await;
    let code = app
        .error_code(
            APPEND,
            json!({ "input": { "taskId": id, "items": [{ "payload": {} }] } }),
        )
        .await;
    assert_eq!(code, "INVALID_STATE");
    let code = app
        .error_code(
            APPEND,
            json!({ "input": { "taskId": id, "items": [{ "payload": {} }], "seal": true } }),
        )
        .await;
    assert_eq!(code, "INVALID_STATE");
    assert_eq!(app.task(&id).await["counters"], counters(&[("pending", 2)]));
    app.assert_counters_consistent(&id).await;
}

#[tokio::test]
async fn an_open_task_stays_running_until_sealed() {
    let app = spawn_app().await;
    let id = create_open(&app, json!(numbered_items(2))).await;
    let done = app
        .report(
            &id,
            json!([
                { "clientItemId": "item-0", "outcome": "SUCCEEDED" },
                { "clientItemId": "item-1", "outcome": "SUCCEEDED" },
            ]),
        )
        .await;
    assert_report(&done, 2, 0, &[]);
    let task = &done["task"];
    assert_eq!(task["counters"], counters(&[("succeeded", 2)]));
    assert_eq!(
        task["status"],
        json!("RUNNING"),
        "every item final but not sealed"
    );
    assert_eq!(task["sealed"], json!(false));
    assert_eq!(task["finishedAt"], Value::Null);
    assert_progress(task, 1.0);
    let before = version(task);

    let sealed = app.seal(&id).await;
    assert_eq!(sealed["sealed"], json!(true));
    assert_eq!(sealed["status"], json!("COMPLETED"));
    assert_time(&sealed["finishedAt"], "finishedAt");
    assert_eq!(sealed["counters"], counters(&[("succeeded", 2)]));
    assert!(version(&sealed) > before, "sealing bumps the version");
    assert_eq!(app.task(&id).await["status"], json!("COMPLETED"));

    let code = app
        .error_code(
            APPEND,
            json!({ "input": { "taskId": id, "items": [{ "payload": {} }] } }),
        )
        .await;
    assert_eq!(code, "INVALID_STATE");
    app.assert_counters_consistent(&id).await;
}

#[tokio::test]
async fn append_with_seal_completes_a_finished_open_task() {
    let app = spawn_app().await;
    let id = create_open(&app, json!(numbered_items(1))).await;
    let done = app
        .report(&id, json!([{ "index": 0, "outcome": "SUCCEEDED" }]))
        .await;
    assert_eq!(done["task"]["status"], json!("RUNNING"));

    // Sealing with no new items ends it; with a new item it would not be.
    let sealed = app.append(&id, json!([]), Some(true)).await;
    assert_eq!(sealed["task"]["sealed"], json!(true));
    assert_eq!(sealed["task"]["status"], json!("COMPLETED"));
    assert_time(&sealed["task"]["finishedAt"], "finishedAt");
    app.assert_counters_consistent(&id).await;

    let id = create_open(&app, json!(numbered_items(1))).await;
    app.report(&id, json!([{ "index": 0, "outcome": "SUCCEEDED" }]))
        .await;
    let sealed = app
        .append(
            &id,
            json!([{ "clientItemId": "late", "payload": {} }]),
            Some(true),
        )
        .await;
    assert_eq!(sealed["task"]["status"], json!("RUNNING"));
    assert_eq!(
        sealed["task"]["counters"],
        counters(&[("pending", 1), ("succeeded", 1)])
    );
    assert_eq!(sealed["task"]["finishedAt"], Value::Null);
    let done = app
        .report(
            &id,
            json!([{ "clientItemId": "late", "outcome": "SUCCEEDED" }]),
        )
        .await;
    assert_eq!(done["task"]["status"], json!("COMPLETED"));
    app.assert_counters_consistent(&id).await;
}

// ---------------------------------------------------------------------------
// reportItemResults
// ---------------------------------------------------------------------------

#[tokio::test]
async fn report_names_items_by_id_client_id_or_index() {
    let app = spawn_app().await;
    let id = app.create_task(4).await;
    let items = app.items(&id).await;
    let item0 = items[0]["id"].as_str().unwrap().to_owned();

    let first = app.report(&id,
        json!([
            { "itemId": item0, "outcome": "SUCCEEDED", "result": { "link": "https://s.example/0", "n": [1, 2] } },
            { "clientItemId": "item-1", "outcome": "SKIPPED" },
            { "index": 2, "outcome": "RUNNING" },
        ]),
    )
    .await;
    assert_report(&first, 3, 0, &[]);
    let task = &first["task"];
    assert_eq!(
        task["counters"],
        counters(&[
            ("pending", 1),
            ("running", 1),
            ("succeeded", 1),
            ("skipped", 1)
        ])
    );
    assert_eq!(task["status"], json!("RUNNING"));
    assert_time(&task["startedAt"], "startedAt");
    assert_eq!(task["finishedAt"], Value::Null);
    assert_progress(task, 0.5);

    let items = app.items(&id).await;
    assert_eq!(
        statuses(&items),
        ["SUCCEEDED", "SKIPPED", "RUNNING", "PENDING"]
    );
    assert_eq!(
        items[0]["result"],
        json!({ "link": "https://s.example/0", "n": [1, 2] })
    );
    assert_eq!(items[0]["error"], Value::Null);
    assert_time(&items[0]["finishedAt"], "item finishedAt");
    assert_time(&items[1]["finishedAt"], "item finishedAt");
    assert_time(&items[2]["startedAt"], "item startedAt");
    assert_eq!(items[2]["finishedAt"], Value::Null);
    assert_eq!(items[3]["startedAt"], Value::Null);

    let details = json!({ "http": 503, "retryAfter": null, "hosts": ["a", "b"] });
    let second = app.report(&id,
        json!([
            { "index": 2, "outcome": "SUCCEEDED", "result": { "ok": true } },
            { "clientItemId": "item-3", "outcome": "FAILED",
              "error": { "code": "UPSTREAM", "message": "the upstream said no", "details": details } },
        ]),
    )
    .await;
    assert_report(&second, 2, 0, &[]);
    let task = &second["task"];
    assert_eq!(
        task["counters"],
        counters(&[("succeeded", 2), ("skipped", 1), ("failed", 1)])
    );
    assert_eq!(task["status"], json!("COMPLETED_WITH_FAILURES"));
    assert_time(&task["finishedAt"], "finishedAt");
    assert_progress(task, 1.0);
    assert_eq!(
        task["error"],
        Value::Null,
        "item failures are no task-level error"
    );

    let items = app.items(&id).await;
    assert_eq!(
        statuses(&items),
        ["SUCCEEDED", "SKIPPED", "SUCCEEDED", "FAILED"]
    );
    assert_eq!(items[2]["result"], json!({ "ok": true }));
    assert_eq!(
        items[3]["error"],
        json!({ "code": "UPSTREAM", "message": "the upstream said no", "details": details })
    );
    assert_time(&items[3]["finishedAt"], "item finishedAt");
    app.assert_counters_consistent(&id).await;
}

#[tokio::test]
async fn task_moves_from_queued_to_running_to_completed_and_version_grows() {
    let app = spawn_app().await;
    let id = app.create_task(2).await;
    let task = app.task(&id).await;
    assert_eq!(task["status"], json!("QUEUED"));
    assert_eq!(task["startedAt"], Value::Null);
    let v0 = version(&task);

    let r1 = app
        .report(&id, json!([{ "index": 0, "outcome": "RUNNING" }]))
        .await;
    assert_report(&r1, 1, 0, &[]);
    assert_eq!(r1["task"]["status"], json!("RUNNING"));
    assert_time(&r1["task"]["startedAt"], "startedAt");
    assert_eq!(r1["task"]["finishedAt"], Value::Null);
    let v1 = version(&r1["task"]);
    assert!(v1 > v0, "{v0} -> {v1}");
    let started_at = r1["task"]["startedAt"].clone();

    let r2 = app
        .report(&id, json!([{ "index": 0, "outcome": "SUCCEEDED" }]))
        .await;
    assert_report(&r2, 1, 0, &[]);
    assert_eq!(r2["task"]["status"], json!("RUNNING"));
    assert_eq!(
        r2["task"]["counters"],
        counters(&[("pending", 1), ("succeeded", 1)])
    );
    let v2 = version(&r2["task"]);
    assert!(v2 > v1, "{v1} -> {v2}");

    let r3 = app
        .report(&id, json!([{ "index": 1, "outcome": "SUCCEEDED" }]))
        .await;
    assert_report(&r3, 1, 0, &[]);
    let task = &r3["task"];
    assert_eq!(task["status"], json!("COMPLETED"));
    assert_eq!(task["counters"], counters(&[("succeeded", 2)]));
    assert_time(&task["finishedAt"], "finishedAt");
    assert_eq!(task["startedAt"], started_at, "startedAt is set once");
    assert_progress(task, 1.0);
    let v3 = version(task);
    assert!(v3 > v2, "{v2} -> {v3}");

    // The read agrees with the mutation's answer.
    assert_eq!(&app.task(&id).await, task);
    app.assert_counters_consistent(&id).await;
}

#[tokio::test]
async fn a_task_whose_items_all_failed_is_failed() {
    let app = spawn_app().await;
    let id = app.create_task(2).await;
    let r = app
        .report(
            &id,
            json!([
                { "index": 0, "outcome": "FAILED", "error": { "code": "E1", "message": "no" } },
                { "index": 1, "outcome": "FAILED", "error": { "code": "E2", "message": "nope" } },
            ]),
        )
        .await;
    assert_report(&r, 2, 0, &[]);
    let task = &r["task"];
    assert_eq!(task["status"], json!("FAILED"));
    assert_eq!(task["counters"], counters(&[("failed", 2)]));
    assert_eq!(task["error"], Value::Null);
    assert_time(&task["finishedAt"], "finishedAt");
    let items = app.items(&id).await;
    assert_eq!(
        items[0]["error"],
        json!({ "code": "E1", "message": "no", "details": null })
    );
    assert_eq!(
        items[1]["error"],
        json!({ "code": "E2", "message": "nope", "details": null })
    );
    app.assert_counters_consistent(&id).await;
}

#[tokio::test]
async fn failed_without_error_is_a_problem_and_the_rest_applies() {
    let app = spawn_app().await;
    let id = app.create_task(3).await;
    let r = app
        .report(
            &id,
            json!([
                { "index": 0, "outcome": "FAILED" },
                { "index": 1, "outcome": "SUCCEEDED" },
                { "index": 2, "outcome": "FAILED", "retryable": true },
            ]),
        )
        .await;
    assert_report(&r, 1, 0, &[(0, "BAD_USER_INPUT"), (2, "BAD_USER_INPUT")]);
    assert_eq!(
        r["task"]["counters"],
        counters(&[("pending", 2), ("succeeded", 1)])
    );
    let items = app.items(&id).await;
    assert_eq!(statuses(&items), ["PENDING", "SUCCEEDED", "PENDING"]);
    assert_eq!(items[0]["error"], Value::Null);
    assert_eq!(items[0]["attempts"], json!(0));
    app.assert_counters_consistent(&id).await;
}

#[tokio::test]
async fn a_result_must_name_exactly_one_item() {
    let app = spawn_app().await;
    let id = app.create_task(3).await;
    let items = app.items(&id).await;
    let item0 = items[0]["id"].as_str().unwrap().to_owned();
    let r = app
        .report(
            &id,
            json!([
                { "outcome": "SUCCEEDED" },
                { "index": 0, "clientItemId": "item-0", "outcome": "SUCCEEDED" },
                { "itemId": item0, "index": 0, "outcome": "SUCCEEDED" },
                { "itemId": item0, "clientItemId": "item-0", "index": 0, "outcome": "SUCCEEDED" },
                { "index": 1, "outcome": "SUCCEEDED" },
            ]),
        )
        .await;
    assert_report(
        &r,
        1,
        0,
        &[
            (0, "BAD_USER_INPUT"),
            (1, "BAD_USER_INPUT"),
            (2, "BAD_USER_INPUT"),
            (3, "BAD_USER_INPUT"),
        ],
    );
    assert_eq!(
        r["task"]["counters"],
        counters(&[("pending", 2), ("succeeded", 1)])
    );
    assert_eq!(
        statuses(&app.items(&id).await),
        ["PENDING", "SUCCEEDED", "PENDING"]
    );
    app.assert_counters_consistent(&id).await;
}

#[tokio::test]
async fn unknown_items_are_problems_with_their_position() {
    let app = spawn_app().await;
    let id = app.create_task(3).await;
    let other = app.create_task(1).await;
    let foreign_item = app.items(&other).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let r = app
        .report(
            &id,
            json!([
                { "index": 0, "outcome": "SUCCEEDED" },
                { "index": 99, "outcome": "SUCCEEDED" },
                { "clientItemId": "no-such-item", "outcome": "SUCCEEDED" },
                { "itemId": foreign_item, "outcome": "SUCCEEDED" },
                { "clientItemId": "item-2", "outcome": "SKIPPED" },
            ]),
        )
        .await;
    assert_report(
        &r,
        2,
        0,
        &[
            (1, "ITEM_NOT_FOUND"),
            (2, "ITEM_NOT_FOUND"),
            (3, "ITEM_NOT_FOUND"),
        ],
    );
    assert_eq!(
        r["task"]["counters"],
        counters(&[("pending", 1), ("succeeded", 1), ("skipped", 1)])
    );
    assert_eq!(
        statuses(&app.items(&id).await),
        ["SUCCEEDED", "PENDING", "SKIPPED"]
    );
    // The other task's item was not touched.
    assert_eq!(statuses(&app.items(&other).await), ["PENDING"]);
    assert_eq!(
        app.task(&other).await["counters"],
        counters(&[("pending", 1)])
    );
    app.assert_counters_consistent(&id).await;
    app.assert_counters_consistent(&other).await;
}

#[tokio::test]
async fn an_identical_repeat_of_a_final_result_is_a_duplicate() {
    let app = spawn_app().await;
    let id = app.create_task(3).await;
    let batch = json!([
        { "index": 0, "outcome": "SUCCEEDED", "result": { "a": 1 } },
        { "clientItemId": "item-1", "outcome": "FAILED", "error": { "code": "E", "message": "bad", "details": { "k": 1 } } },
        { "index": 2, "outcome": "SKIPPED" },
    ]);
    let first = app.report(&id, batch.clone()).await;
    assert_report(&first, 3, 0, &[]);
    let task = first["task"].clone();
    assert_eq!(task["status"], json!("COMPLETED_WITH_FAILURES"));
    let items_before = app.items(&id).await;

    let again = app.report(&id, batch).await;
    assert_report(&again, 0, 3, &[]);
    assert_eq!(
        version(&again["task"]),
        version(&task),
        "a duplicate commits nothing"
    );
    assert_eq!(again["task"]["counters"], task["counters"]);
    assert_eq!(again["task"]["updatedAt"], task["updatedAt"]);
    assert_eq!(app.task(&id).await, task, "the task is unchanged");
    assert_eq!(
        app.items(&id).await,
        items_before,
        "the items are unchanged"
    );

    // The same item named another way is the same repeat.
    let item0 = items_before[0]["id"].as_str().unwrap().to_owned();
    let again = app
        .report(
            &id,
            json!([
                { "itemId": item0, "outcome": "SUCCEEDED", "result": { "a": 1 } },
                { "clientItemId": "item-2", "outcome": "SKIPPED" },
            ]),
        )
        .await;
    assert_report(&again, 0, 2, &[]);
    assert_eq!(version(&again["task"]), version(&task));
    app.assert_counters_consistent(&id).await;
}

#[tokio::test]
async fn a_repeat_within_one_batch_is_a_duplicate() {
    let app = spawn_app().await;
    let id = app.create_task(2).await;
    let r = app
        .report(
            &id,
            json!([
                { "index": 0, "outcome": "SUCCEEDED", "result": { "r": 0 } },
                { "clientItemId": "item-0", "outcome": "SUCCEEDED", "result": { "r": 0 } },
            ]),
        )
        .await;
    assert_report(&r, 1, 1, &[]);
    assert_eq!(
        r["task"]["counters"],
        counters(&[("pending", 1), ("succeeded", 1)])
    );
    app.assert_counters_consistent(&id).await;
}

#[tokio::test]
async fn a_conflicting_result_for_a_final_item_is_refused() {
    let app = spawn_app().await;
    let id = app.create_task(3).await;
    let first = app
        .report(
            &id,
            json!([
                { "index": 0, "outcome": "SUCCEEDED", "result": { "a": 1 } },
                { "index": 1, "outcome": "FAILED", "error": { "code": "E", "message": "bad" } },
            ]),
        )
        .await;
    assert_report(&first, 2, 0, &[]);
    let task = first["task"].clone();
    let items_before = app.items(&id).await;

    let r = app
        .report(
            &id,
            json!([
                { "index": 0, "outcome": "FAILED", "error": { "code": "E", "message": "bad" } },
                { "index": 0, "outcome": "SKIPPED" },
                { "index": 0, "outcome": "RUNNING" },
                { "index": 0, "outcome": "SUCCEEDED", "result": { "a": 2 } },
                { "index": 1, "outcome": "SUCCEEDED" },
                { "index": 1, "outcome": "FAILED", "error": { "code": "OTHER", "message": "bad" } },
                { "index": 2, "outcome": "SUCCEEDED" },
            ]),
        )
        .await;
    assert_report(
        &r,
        1,
        0,
        &[
            (0, "ITEM_ALREADY_FINAL"),
            (1, "ITEM_ALREADY_FINAL"),
            (2, "ITEM_ALREADY_FINAL"),
            (3, "ITEM_ALREADY_FINAL"),
            (4, "ITEM_ALREADY_FINAL"),
            (5, "ITEM_ALREADY_FINAL"),
        ],
    );
    let after = &r["task"];
    assert_eq!(
        after["counters"],
        counters(&[("succeeded", 2), ("failed", 1)])
    );
    assert_eq!(after["status"], json!("COMPLETED_WITH_FAILURES"));
    assert!(version(after) > version(&task));
    let items = app.items(&id).await;
    assert_eq!(items[0], items_before[0], "item 0 is unchanged");
    assert_eq!(items[1], items_before[1], "item 1 is unchanged");
    assert_eq!(items[0]["result"], json!({ "a": 1 }));
    app.assert_counters_consistent(&id).await;
}

#[tokio::test]
async fn a_retryable_failure_goes_back_to_pending_until_attempts_run_out() {
    let app = spawn_app().await;
    let created = app
        .create(json!({ "type": "test.items", "maxAttempts": 2, "items": numbered_items(2) }))
        .await;
    let id = id_of(&created["task"]);
    let v0 = version(&created["task"]);
    let error =
        json!({ "code": "TEMPORARY", "message": "try again later", "details": { "wait": 5 } });

    let r1 = app
        .report(
            &id,
            json!([{ "index": 0, "outcome": "FAILED", "retryable": true, "error": error }]),
        )
        .await;
    assert_report(&r1, 1, 0, &[]);
    assert_eq!(r1["task"]["counters"], counters(&[("pending", 2)]));
    let v1 = version(&r1["task"]);
    assert!(v1 > v0, "{v0} -> {v1}");
    let items = app.items(&id).await;
    assert_eq!(items[0]["status"], json!("PENDING"));
    assert_eq!(items[0]["error"], error, "the last error is kept");
    assert_eq!(items[0]["attempts"], json!(1));
    assert_eq!(items[0]["finishedAt"], Value::Null);

    let r2 = app
        .report(
            &id,
            json!([{ "index": 0, "outcome": "FAILED", "retryable": true, "error": error }]),
        )
        .await;
    assert_report(&r2, 1, 0, &[]);
    assert_eq!(
        r2["task"]["counters"],
        counters(&[("pending", 1), ("failed", 1)])
    );
    assert!(version(&r2["task"]) > v1);
    let items = app.items(&id).await;
    assert_eq!(items[0]["status"], json!("FAILED"), "no attempts left");
    assert_eq!(items[0]["attempts"], json!(2));
    assert_eq!(items[0]["error"], error);
    assert_time(&items[0]["finishedAt"], "item finishedAt");

    let r3 = app
        .report(&id, json!([{ "index": 1, "outcome": "SUCCEEDED" }]))
        .await;
    assert_eq!(r3["task"]["status"], json!("COMPLETED_WITH_FAILURES"));
    app.assert_counters_consistent(&id).await;
}

#[tokio::test]
async fn a_retryable_failure_with_one_attempt_is_final() {
    let app = spawn_app().await;
    let created = app
        .create(json!({ "type": "test.items", "maxAttempts": 1, "items": numbered_items(1) }))
        .await;
    let id = id_of(&created["task"]);
    let r = app.report(&id,
        json!([{ "index": 0, "outcome": "FAILED", "retryable": true, "error": { "code": "T", "message": "m" } }]),
    )
    .await;
    assert_report(&r, 1, 0, &[]);
    assert_eq!(r["task"]["counters"], counters(&[("failed", 1)]));
    assert_eq!(r["task"]["status"], json!("FAILED"));
    let items = app.items(&id).await;
    assert_eq!(items[0]["attempts"], json!(1));
    app.assert_counters_consistent(&id).await;
}

// ---------------------------------------------------------------------------
// cancelBulkTask
// ---------------------------------------------------------------------------

#[tokio::test]
async fn cancel_waits_for_running_items() {
    let app = spawn_app().await;
    let id = create_open(&app, json!(numbered_items(3))).await;
    let r = app
        .report(&id, json!([{ "index": 0, "outcome": "RUNNING" }]))
        .await;
    assert_report(&r, 1, 0, &[]);
    let v0 = version(&r["task"]);

    let task = app.cancel(&id).await;
    assert_eq!(task["status"], json!("CANCELLING"));
    assert_eq!(task["cancelRequested"], json!(true));
    assert_eq!(
        task["counters"],
        counters(&[("running", 1), ("cancelled", 2)])
    );
    assert_eq!(task["finishedAt"], Value::Null);
    let v1 = version(&task);
    assert!(v1 > v0);
    assert_eq!(
        statuses(&app.items(&id).await),
        ["RUNNING", "CANCELLED", "CANCELLED"]
    );

    let r = app
        .report(
            &id,
            json!([{ "index": 0, "outcome": "SUCCEEDED", "result": { "late": true } }]),
        )
        .await;
    assert_report(&r, 1, 0, &[]);
    let task = &r["task"];
    assert_eq!(task["status"], json!("CANCELLED"));
    assert_eq!(
        task["counters"],
        counters(&[("succeeded", 1), ("cancelled", 2)])
    );
    assert_time(&task["finishedAt"], "finishedAt");
    assert!(version(task) > v1);
    let items = app.items(&id).await;
    assert_eq!(statuses(&items), ["SUCCEEDED", "CANCELLED", "CANCELLED"]);
    assert_eq!(items[0]["result"], json!({ "late": true }));

    let code = app
        .error_code(
            APPEND,
            json!({ "input": { "taskId": id, "items": [{ "payload": {} }] } }),
        )
        .await;
    assert_eq!(code, "INVALID_STATE");
    assert_eq!(
        app.task(&id).await["counters"],
        counters(&[("succeeded", 1), ("cancelled", 2)])
    );
    app.assert_counters_consistent(&id).await;
}

#[tokio::test]
async fn cancel_without_running_items_is_immediate() {
    let app = spawn_app().await;
    let id = app.create_task(3).await;
    app.report(&id, json!([{ "index": 1, "outcome": "SUCCEEDED" }]))
        .await;
    let task = app.cancel(&id).await;
    assert_eq!(task["status"], json!("CANCELLED"));
    assert_eq!(task["cancelRequested"], json!(true));
    assert_eq!(
        task["counters"],
        counters(&[("succeeded", 1), ("cancelled", 2)])
    );
    assert_time(&task["finishedAt"], "finishedAt");
    assert_progress(&task, 1.0);
    assert_eq!(
        statuses(&app.items(&id).await),
        ["CANCELLED", "SUCCEEDED", "CANCELLED"]
    );
    app.assert_counters_consistent(&id).await;
}

// ---------------------------------------------------------------------------
// retryFailedItems
// ---------------------------------------------------------------------------

#[tokio::test]
async fn retry_failed_items_by_id_and_by_error_code() {
    let app = spawn_app().await;
    let id = app.create_task(4).await;
    let r = app.report(&id,
        json!([
            { "index": 0, "outcome": "FAILED", "error": { "code": "E1", "message": "one" } },
            { "index": 1, "outcome": "FAILED", "error": { "code": "E2", "message": "two" } },
            { "index": 2, "outcome": "FAILED", "error": { "code": "E1", "message": "one again" } },
            { "index": 3, "outcome": "SUCCEEDED" },
        ]),
    )
    .await;
    assert_report(&r, 4, 0, &[]);
    assert_eq!(r["task"]["status"], json!("COMPLETED_WITH_FAILURES"));
    assert_time(&r["task"]["finishedAt"], "finishedAt");
    let v0 = version(&r["task"]);
    let items = app.items(&id).await;
    let item1 = items[1]["id"].as_str().unwrap().to_owned();

    // By id: only that item.
    let task = app.retry(json!({ "taskId": id, "itemIds": [item1] })).await;
    assert_eq!(
        task["counters"],
        counters(&[("pending", 1), ("failed", 2), ("succeeded", 1)])
    );
    assert_eq!(task["status"], json!("RUNNING"));
    assert_eq!(task["finishedAt"], Value::Null, "no longer terminal");
    let v1 = version(&task);
    assert!(v1 > v0);
    assert_eq!(
        statuses(&app.items(&id).await),
        ["FAILED", "PENDING", "FAILED", "SUCCEEDED"]
    );
    app.assert_counters_consistent(&id).await;

    // By error code: every FAILED item with it.
    let task = app
        .retry(json!({ "taskId": id, "errorCodes": ["E1"] }))
        .await;
    assert_eq!(
        task["counters"],
        counters(&[("pending", 3), ("succeeded", 1)])
    );
    assert_eq!(task["status"], json!("RUNNING"));
    assert_eq!(task["finishedAt"], Value::Null);
    assert!(version(&task) > v1);
    assert_eq!(
        statuses(&app.items(&id).await),
        ["PENDING", "PENDING", "PENDING", "SUCCEEDED"]
    );
    app.assert_counters_consistent(&id).await;

    // The retried items can now succeed, and the task completes cleanly.
    let r = app
        .report(
            &id,
            json!([
                { "index": 0, "outcome": "SUCCEEDED" },
                { "index": 1, "outcome": "SUCCEEDED" },
                { "index": 2, "outcome": "SUCCEEDED" },
            ]),
        )
        .await;
    assert_report(&r, 3, 0, &[]);
    assert_eq!(r["task"]["status"], json!("COMPLETED"));
    assert_eq!(r["task"]["counters"], counters(&[("succeeded", 4)]));
    assert_time(&r["task"]["finishedAt"], "finishedAt");
    app.assert_counters_consistent(&id).await;
}

#[tokio::test]
async fn retry_of_a_failed_task_reopens_it() {
    let app = spawn_app().await;
    let id = app.create_task(1).await;
    let r = app
        .report(
            &id,
            json!([{ "index": 0, "outcome": "FAILED", "error": { "code": "E", "message": "m" } }]),
        )
        .await;
    assert_eq!(r["task"]["status"], json!("FAILED"));
    let task = app
        .retry(json!({ "taskId": id, "errorCodes": ["E"] }))
        .await;
    assert_eq!(task["counters"], counters(&[("pending", 1)]));
    assert!(
        ![
            "FAILED",
            "COMPLETED",
            "COMPLETED_WITH_FAILURES",
            "CANCELLED"
        ]
        .contains(&task["status"].as_str().unwrap())
    );
    assert_eq!(task["finishedAt"], Value::Null);
    app.assert_counters_consistent(&id).await;
}

#[tokio::test]
async fn retrying_a_cancelled_task_is_invalid_state() {
    let app = spawn_app().await;
    let id = app.create_task(2).await;
    app.report(
        &id,
        json!([{ "index": 0, "outcome": "FAILED", "error": { "code": "E", "message": "m" } }]),
    )
    .await;
    let task = app.cancel(&id).await;
    assert_eq!(task["status"], json!("CANCELLED"));
    let items = app.items(&id).await;
    let item0 = items[0]["id"].as_str().unwrap().to_owned();

    let code = app
        .error_code(
            RETRY,
            json!({ "input": { "taskId": id, "itemIds": [item0] } }),
        )
        .await;
    assert_eq!(code, "INVALID_STATE");
    let code = app
        .error_code(
            RETRY,
            json!({ "input": { "taskId": id, "errorCodes": ["E"] } }),
        )
        .await;
    assert_eq!(code, "INVALID_STATE");
    let task = app.task(&id).await;
    assert_eq!(task["status"], json!("CANCELLED"));
    assert_eq!(
        task["counters"],
        counters(&[("failed", 1), ("cancelled", 1)])
    );
    app.assert_counters_consistent(&id).await;
}

// ---------------------------------------------------------------------------
// failBulkTask
// ---------------------------------------------------------------------------

#[tokio::test]
async fn fail_bulk_task_sets_the_error_and_cancels_pending_items() {
    let app = spawn_app().await;
    let id = app.create_task(3).await;
    let r = app
        .report(&id, json!([{ "index": 0, "outcome": "SUCCEEDED" }]))
        .await;
    let v0 = version(&r["task"]);

    let details = json!({ "region": "eu-west", "retryInSeconds": 30 });
    let task = app.fail(json!({ "id": id, "code": "UPSTREAM_DOWN", "message": "the provider is down", "details": details }),
    )
    .await;
    assert_eq!(task["status"], json!("FAILED"));
    assert_eq!(
        task["error"],
        json!({ "code": "UPSTREAM_DOWN", "message": "the provider is down", "details": details })
    );
    assert_eq!(
        task["counters"],
        counters(&[("succeeded", 1), ("cancelled", 2)])
    );
    assert_time(&task["finishedAt"], "finishedAt");
    assert!(version(&task) > v0);
    assert_eq!(
        statuses(&app.items(&id).await),
        ["SUCCEEDED", "CANCELLED", "CANCELLED"]
    );
    assert_eq!(app.task(&id).await, task);
    app.assert_counters_consistent(&id).await;
}

#[tokio::test]
async fn fail_bulk_task_without_details() {
    let app = spawn_app().await;
    let id = create_open(&app, json!(numbered_items(2))).await;
    let task = app
        .fail(json!({ "id": id, "code": "ABORTED", "message": "operator abort" }))
        .await;
    assert_eq!(task["status"], json!("FAILED"));
    assert_eq!(
        task["error"],
        json!({ "code": "ABORTED", "message": "operator abort", "details": null })
    );
    assert_eq!(task["counters"], counters(&[("cancelled", 2)]));
    let code = app
        .error_code(
            APPEND,
            json!({ "input": { "taskId": id, "items": [{ "payload": {} }] } }),
        )
        .await;
    assert_eq!(code, "INVALID_STATE");
    app.assert_counters_consistent(&id).await;
}

// ---------------------------------------------------------------------------
// deleteBulkTask, unknown and malformed ids
// ---------------------------------------------------------------------------

/// Every mutation that names a task, with variables naming `id`, and its name.
fn task_mutations(id: &str, item_id: &str) -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "appendTaskItems",
            APPEND,
            json!({ "input": { "taskId": id, "items": [{ "payload": {} }] } }),
        ),
        ("sealBulkTask", SEAL, json!({ "id": id })),
        (
            "reportItemResults",
            REPORT,
            json!({ "input": { "taskId": id, "results": [{ "index": 0, "outcome": "SUCCEEDED" }] } }),
        ),
        ("cancelBulkTask", CANCEL, json!({ "id": id })),
        (
            "retryFailedItems",
            RETRY,
            json!({ "input": { "taskId": id, "itemIds": [item_id] } }),
        ),
        (
            "retryFailedItems(errorCodes)",
            RETRY,
            json!({ "input": { "taskId": id, "errorCodes": ["E"] } }),
        ),
        (
            "failBulkTask",
            FAIL,
            json!({ "input": { "id": id, "code": "X", "message": "y" } }),
        ),
        ("deleteBulkTask", DELETE, json!({ "id": id })),
    ]
}

#[tokio::test]
async fn delete_bulk_task_removes_it() {
    let app = spawn_app().await;
    let keep = app.create_task(2).await;
    let id = create_open(&app, json!(numbered_items(2))).await;
    let items = app.items(&id).await;
    let item0 = items[0]["id"].as_str().unwrap().to_owned();
    app.assert_counters_consistent(&id).await;

    assert_eq!(app.delete(&id).await, json!(id));

    let data = app
        .data(
            "query($id: ID!, $item: ID!) { bulkTask(id: $id) { id } taskItem(id: $item) { id } }",
            json!({ "id": id, "item": item0 }),
        )
        .await;
    assert_eq!(data["bulkTask"], Value::Null);
    assert_eq!(data["taskItem"], Value::Null);
    assert_eq!(app.task_count().await, 1);

    for (name, query, vars) in task_mutations(&id, &item0) {
        let code = app.error_code(query, vars).await;
        assert_eq!(code, "NOT_FOUND", "{name} on a deleted task");
    }
    // The other task is untouched.
    assert_eq!(
        app.task(&keep).await["counters"],
        counters(&[("pending", 2)])
    );
    app.assert_counters_consistent(&keep).await;
}

#[tokio::test]
async fn deleting_a_task_leaves_the_others_alone() {
    let app = spawn_app().await;
    let a = app
        .create(json!({ "type": "test.items", "items": numbered_items(2) }))
        .await;
    let b = app
        .create(json!({ "type": "test.items", "items": numbered_items(3) }))
        .await;
    let (a, b) = (id_of(&a["task"]), id_of(&b["task"]));
    app.delete(&a).await;
    assert_eq!(app.task_count().await, 1);
    assert_eq!(app.items(&b).await.len(), 3);
    app.assert_counters_consistent(&b).await;
}

#[tokio::test]
async fn malformed_ids_are_bad_user_input() {
    let app = spawn_app().await;
    let real = app.create_task(1).await;
    let real_item = app.items(&real).await[0]["id"].as_str().unwrap().to_owned();
    for bad in ["nope", "", "!!!"] {
        for (name, query, vars) in task_mutations(bad, &real_item) {
            let code = app.error_code(query, vars).await;
            assert_eq!(code, "BAD_USER_INPUT", "{name} with task id {bad:?}");
        }
    }
    // A malformed item id in retryFailedItems on a real task is bad input too.
    let code = app
        .error_code(
            RETRY,
            json!({ "input": { "taskId": real, "itemIds": ["nope"] } }),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert_eq!(
        app.task(&real).await["counters"],
        counters(&[("pending", 1)])
    );
    app.assert_counters_consistent(&real).await;
}
