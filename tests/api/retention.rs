//! Retention: finished tasks and their items are deleted some time after
//! they finish, by a pruner that works in bounded batches while everything
//! else keeps going.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};
use crate::ops::{TASK_ID, WATCH_ITEMS, id_of, numbered_items};
use crate::ws::{TRANSPORT, Ws};

/// A server whose pruner sweeps ten times a second.
async fn spawn_pruning_app(retention_seconds: u64) -> TestApp {
    spawn_app_with(|c| {
        c.retention_seconds = retention_seconds;
        c.prune_interval_ms = 100;
        c.prune_batch = 500;
    })
    .await
}

async fn create(app: &TestApp, n: usize, retain_for: Option<i64>) -> String {
    let mut input = json!({ "type": "retention.t", "items": numbered_items(n) });
    if let Some(seconds) = retain_for {
        input["retainFor"] = json!(seconds);
    }
    id_of(&app.create(input).await["task"])
}

async fn finish(app: &TestApp, task: &str, n: usize) {
    let results: Vec<Value> = (0..n)
        .map(|i| json!({ "index": i, "outcome": "SUCCEEDED" }))
        .collect();
    app.report_all(task, json!(results)).await;
}

async fn exists(app: &TestApp, task: &str) -> bool {
    !app.data(TASK_ID, json!({ "id": task })).await["bulkTask"].is_null()
}

/// Waits until `task` is gone; panics after `limit`.
async fn wait_gone(app: &TestApp, task: &str, limit: Duration) {
    let start = Instant::now();
    while exists(app, task).await {
        assert!(
            start.elapsed() < limit,
            "task {task} still there after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn finished_tasks_and_their_items_go_after_their_retention_and_unfinished_ones_stay() {
    let app = spawn_pruning_app(1).await;
    let due = create(&app, 3, None).await;
    let item_ids = app.item_ids(&due).await;
    let running = create(&app, 2, None).await;
    let forever = create(&app, 2, Some(0)).await;
    let longer = create(&app, 2, Some(3_600)).await;
    for t in [&forever, &longer] {
        finish(&app, t, 2).await;
    }
    app.report_all(&running, json!([{ "index": 0, "outcome": "SUCCEEDED" }]))
        .await;

    let before = app.results(&due).await;
    assert_eq!(before["expiresAt"], Value::Null, "null while it runs");
    assert_eq!(
        app.results(&forever).await["expiresAt"],
        Value::Null,
        "0 keeps forever"
    );

    // A live feed of the task ends when it is pruned.
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&app.admin_key).await;
    ws.subscribe("items", WATCH_ITEMS, json!({ "taskId": due }))
        .await;
    let url = app.export_url(&due, "NDJSON", Value::Null).await;

    finish(&app, &due, 3).await;
    let finished = app.results(&due).await;
    let finished_at =
        chrono::DateTime::parse_from_rfc3339(finished["finishedAt"].as_str().unwrap()).unwrap();
    let expires_at =
        chrono::DateTime::parse_from_rfc3339(finished["expiresAt"].as_str().unwrap()).unwrap();
    assert_eq!((expires_at - finished_at).num_milliseconds(), 1_000);
    let longer_expiry = app.results(&longer).await["expiresAt"].clone();
    assert!(longer_expiry.is_string());

    wait_gone(&app, &due, Duration::from_secs(10)).await;
    // The task vanishes for readers when its pruning begins; its items go next.
    wait_metric(&app, "bulkwatch_pruned_tasks_total", 1).await;
    for id in &item_ids {
        assert_eq!(
            app.item(id).await,
            Value::Null,
            "item {id} is gone with its task"
        );
    }
    assert_eq!(app.task_count().await, 3);
    loop {
        match ws.next_message().await {
            m if m["type"] == "complete" => break,
            m if m["type"] == "next" => continue, // the finishing report's items
            other => panic!("expected the feed to complete: {other}"),
        }
    }
    let download = crate::helpers::client_with_key(None)
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 404);
    assert_eq!(app.metric("bulkwatch_pruned_items_total").await, 3);

    // Long past their would-be expiry, the others are all still there.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    for t in [&running, &forever, &longer] {
        assert!(exists(&app, t).await, "task {t} was pruned");
        app.assert_counters_consistent(t).await;
    }
    assert_eq!(app.metric("bulkwatch_pruned_tasks_total").await, 1);

    // A reopened task is not due: a retry makes it run again.
    let reopened = create(&app, 1, Some(1)).await;
    app.report_all(
        &reopened,
        json!([{ "index": 0, "outcome": "FAILED", "error": { "code": "E", "message": "m" } }]),
    )
    .await;
    app.retry(json!({ "taskId": reopened })).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(exists(&app, &reopened).await);
    assert_eq!(app.results(&reopened).await["expiresAt"], Value::Null);
}

/// Waits until the metric `name` reaches `value`; panics after 30 s.
async fn wait_metric(app: &TestApp, name: &str, value: u64) {
    let start = Instant::now();
    while app.metric(name).await < value {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{name} never reached {value}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Items of a finished task, all refused by the producer: a large finished
/// task without reporting every item.
fn rejected_items(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({ "clientItemId": format!("r-{i}"), "payload": { "i": i },
                          "reject": { "code": "NO_CREDITS", "message": "none left" } })
        })
        .collect()
}

/// While a 100,000-item task is pruned, reads and reports of another task
/// keep going; the longest wait of one of those reports is printed.
#[tokio::test]
async fn other_tasks_keep_working_while_a_large_task_is_pruned() {
    let app = spawn_app_with(|c| {
        c.prune_interval_ms = 100;
        c.prune_batch = 1_000;
    })
    .await;
    let busy = create(&app, 20_000, None).await;
    // Selecting no `rejected` list keeps the answer small.
    let big = app
        .data(
            "mutation($input: CreateBulkTaskInput!) { createBulkTask(input: $input) { task { id status } } }",
            json!({ "input": { "type": "retention.big", "retainFor": 2, "items": rejected_items(100_000) } }),
        )
        .await;
    assert_eq!(
        big["createBulkTask"]["task"]["status"], "FAILED",
        "finished at creation"
    );
    let big = id_of(&big["createBulkTask"]["task"]);

    let start = Instant::now();
    let (mut index, mut longest, mut reports, mut while_pruning) = (0usize, Duration::ZERO, 0, 0);
    while app.metric("bulkwatch_pruned_items_total").await < 100_000 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the large task was never pruned"
        );
        let results: Vec<Value> = (index..index + 10)
            .map(|i| json!({ "index": i, "outcome": "SUCCEEDED" }))
            .collect();
        let sent = Instant::now();
        app.report_all(&busy, json!(results)).await;
        assert!(exists(&app, &busy).await);
        let took = sent.elapsed();
        index += 10;
        reports += 1;
        if !exists(&app, &big).await {
            while_pruning += 1;
            longest = longest.max(took);
        }
    }
    eprintln!("{while_pruning} of {reports} reports while pruning; the longest took {longest:?}");
    assert!(while_pruning >= 2, "no report overlapped the pruning");
    assert!(
        longest < Duration::from_secs(5),
        "a report waited {longest:?}"
    );
    assert!(!exists(&app, &big).await);
    app.assert_counters_consistent(&busy).await;
}

/// Two instances prune one database together: every item is deleted once,
/// by one of them, and the task once.
#[tokio::test]
async fn two_instances_prune_together_without_doing_anything_twice() {
    let mut database_url = String::new();
    let app = spawn_app_with(|c| {
        database_url = c.database_url.clone();
        c.prune_interval_ms = 50;
        c.prune_batch = 200;
    })
    .await;
    let mut config = bulkwatch::Config::with_database(database_url.clone());
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.db_connections = 2;
    config.prune_interval_ms = 50;
    config.prune_batch = 200;
    let second = bulkwatch::Application::build(config)
        .await
        .expect("the second instance starts");
    let second_app = TestApp::attach(
        &format!("http://127.0.0.1:{}", second.port()),
        &app.admin_key,
        &database_url,
    );
    tokio::spawn(second.run_until(std::future::pending()));

    let tasks = [
        app.create(
            json!({ "type": "retention.two", "retainFor": 1, "items": rejected_items(6_000) }),
        )
        .await,
        app.create(
            json!({ "type": "retention.two", "retainFor": 1, "items": rejected_items(4_000) }),
        )
        .await,
    ];
    for t in &tasks {
        wait_gone(&app, &id_of(&t["task"]), Duration::from_secs(60)).await;
    }
    let pruned = |name: &'static str| {
        let (a, b) = (&app, &second_app);
        async move { a.metric(name).await + b.metric(name).await }
    };
    // A sweep counts what it did when it ends, shortly after the last delete.
    let start = Instant::now();
    while pruned("bulkwatch_pruned_items_total").await < 10_000
        && start.elapsed() < Duration::from_secs(5)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(pruned("bulkwatch_pruned_tasks_total").await, 2);
    assert_eq!(pruned("bulkwatch_pruned_items_total").await, 10_000);
}
