//! Reading through the public contract: filters, orders, keyset paging (also
//! across ties on the sort key), ids and nodes, stats, error summaries, and a
//! constant number of SQL statements for a page of tasks with nested items.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

// ---------------------------------------------------------------------------
// Shared helpers of this file
// ---------------------------------------------------------------------------

const TASKS: &str = r#"query($first: Int, $after: String, $last: Int, $before: String, $offset: Int,
                             $filter: BulkTaskFilter, $orderBy: BulkTaskOrder) {
  bulkTasks(first: $first, after: $after, last: $last, before: $before, offset: $offset,
            filter: $filter, orderBy: $orderBy) {
    totalCount
    edges { cursor node { id } }
    nodes {
      id type description status progress
      counters { total failed finished }
      createdAt updatedAt startedAt finishedAt
    }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"#;

const ITEMS: &str = r#"query($id: ID!, $first: Int, $after: String, $last: Int, $before: String, $offset: Int,
                             $filter: TaskItemFilter, $orderBy: TaskItemOrder) {
  bulkTask(id: $id) {
    items(first: $first, after: $after, last: $last, before: $before, offset: $offset,
          filter: $filter, orderBy: $orderBy) {
      totalCount
      edges { cursor node { id } }
      nodes {
        id index clientItemId status attempts
        error { code message }
        createdAt updatedAt finishedAt
      }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
}"#;

fn item(i: usize) -> Value {
    json!({ "clientItemId": format!("item-{i}"), "payload": { "n": i } })
}

fn items(n: usize) -> Vec<Value> {
    (0..n).map(item).collect()
}

/// Creates a sealed task of `ty` with `n` items and returns its id.
async fn create(app: &TestApp, ty: &str, description: Option<&str>, n: usize) -> String {
    let payload = app
        .create(json!({ "type": ty, "description": description, "items": items(n) }))
        .await;
    assert_eq!(payload["created"], true, "{payload:#}");
    assert_eq!(
        payload["task"]["counters"]["total"], n as i64,
        "{payload:#}"
    );
    payload["task"]["id"].as_str().unwrap().to_owned()
}

fn ok(index: usize) -> Value {
    json!({ "index": index, "outcome": "SUCCEEDED" })
}

fn started(index: usize) -> Value {
    json!({ "index": index, "outcome": "RUNNING" })
}

fn skipped(index: usize) -> Value {
    json!({ "index": index, "outcome": "SKIPPED" })
}

fn failed(index: usize, code: &str, message: &str) -> Value {
    json!({ "index": index, "outcome": "FAILED", "error": { "code": code, "message": message } })
}

async fn delete(app: &TestApp, id: &str) {
    assert_eq!(app.delete(id).await, id);
}

/// Separates server timestamps (millisecond precision) of consecutive writes.
async fn tick() {
    tokio::time::sleep(Duration::from_millis(25)).await;
}

/// The `bulkTasks` connection for these variables.
async fn tasks(app: &TestApp, vars: Value) -> Value {
    let conn = app.data(TASKS, vars).await["bulkTasks"].clone();
    check_connection(&conn);
    conn
}

/// The `items` connection of a task for these variables (`id` is added).
async fn task_items(app: &TestApp, task_id: &str, mut vars: Value) -> Value {
    vars["id"] = json!(task_id);
    let data = app.data(ITEMS, vars).await;
    let conn = data["bulkTask"]["items"].clone();
    check_connection(&conn);
    conn
}

/// Edges and nodes agree, and the page's cursors are its first and last edges'.
fn check_connection(conn: &Value) {
    let edges = conn["edges"].as_array().expect("edges");
    let nodes = conn["nodes"].as_array().expect("nodes");
    let edge_ids: Vec<&Value> = edges.iter().map(|e| &e["node"]["id"]).collect();
    let node_ids: Vec<&Value> = nodes.iter().map(|n| &n["id"]).collect();
    assert_eq!(edge_ids, node_ids, "edges and nodes differ: {conn:#}");
    let info = &conn["pageInfo"];
    if edges.is_empty() {
        assert_eq!(info["startCursor"], Value::Null, "{conn:#}");
        assert_eq!(info["endCursor"], Value::Null, "{conn:#}");
    } else {
        assert_eq!(info["startCursor"], edges[0]["cursor"], "{conn:#}");
        assert_eq!(
            info["endCursor"],
            edges[edges.len() - 1]["cursor"],
            "{conn:#}"
        );
    }
    let cursors: BTreeSet<&str> = edges
        .iter()
        .map(|e| e["cursor"].as_str().unwrap())
        .collect();
    assert_eq!(cursors.len(), edges.len(), "cursors repeat: {conn:#}");
}

fn ids(conn: &Value) -> Vec<String> {
    conn["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

fn indexes(conn: &Value) -> Vec<i64> {
    conn["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["index"].as_i64().unwrap())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn order(field: &str, direction: &str) -> Value {
    json!({ "field": field, "direction": direction })
}

fn strs(v: &[&String]) -> Vec<String> {
    v.iter().map(|s| (*s).clone()).collect()
}

fn reversed(v: &[String]) -> Vec<String> {
    v.iter().rev().cloned().collect()
}

fn ts(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(
        value
            .as_str()
            .unwrap_or_else(|| panic!("a DateTime, got {value}")),
    )
    .unwrap()
    .with_timezone(&Utc)
}

/// A moment strictly between two server timestamps at least 2 ms apart.
fn between(a: &Value, b: &Value) -> String {
    let (a, b) = (ts(a), ts(b));
    assert!(
        b - a >= chrono::Duration::milliseconds(2),
        "timestamps too close: {a} {b}"
    );
    (a + (b - a) / 2).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Pages forward through `bulkTasks` (or a task's items) `size` rows at a
/// time, checking pageInfo on every page, and returns every id in order.
async fn page_forward(
    app: &TestApp,
    items_of: Option<&str>,
    base: Value,
    size: i64,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut after = Value::Null;
    for page_no in 0.. {
        assert!(page_no < 200, "paging does not end");
        let mut vars = base.clone();
        vars["first"] = json!(size);
        if !after.is_null() {
            vars["after"] = after.clone();
        }
        let conn = match items_of {
            Some(task_id) => task_items(app, task_id, vars).await,
            None => tasks(app, vars).await,
        };
        let page = ids(&conn);
        let info = &conn["pageInfo"];
        assert_eq!(
            info["hasPreviousPage"],
            page_no > 0,
            "page {page_no}: {conn:#}"
        );
        out.extend(page.iter().cloned());
        if !info["hasNextPage"].as_bool().unwrap() {
            break;
        }
        assert_eq!(
            page.len() as i64,
            size,
            "a page before the last is full: {conn:#}"
        );
        after = info["endCursor"].clone();
    }
    out
}

/// Pages backward from the end, `size` rows at a time; returns every id in
/// display order.
async fn page_backward(
    app: &TestApp,
    items_of: Option<&str>,
    base: Value,
    size: i64,
) -> Vec<String> {
    let mut pages: Vec<Vec<String>> = Vec::new();
    let mut before = Value::Null;
    for page_no in 0.. {
        assert!(page_no < 200, "paging does not end");
        let mut vars = base.clone();
        vars["last"] = json!(size);
        if !before.is_null() {
            vars["before"] = before.clone();
        }
        let conn = match items_of {
            Some(task_id) => task_items(app, task_id, vars).await,
            None => tasks(app, vars).await,
        };
        let page = ids(&conn);
        let info = &conn["pageInfo"];
        assert_eq!(
            info["hasNextPage"],
            page_no > 0,
            "page {page_no} from the end: {conn:#}"
        );
        let more = info["hasPreviousPage"].as_bool().unwrap();
        if more {
            assert_eq!(
                page.len() as i64,
                size,
                "a page after the first is full: {conn:#}"
            );
        }
        before = info["startCursor"].clone();
        pages.push(page);
        if !more {
            break;
        }
    }
    pages.into_iter().rev().flatten().collect()
}

fn assert_no_repeats(list: &[String]) {
    let set: BTreeSet<&String> = list.iter().collect();
    assert_eq!(set.len(), list.len(), "a row repeats: {list:?}");
}

// ---------------------------------------------------------------------------
// Task filters
// ---------------------------------------------------------------------------

/// One task in each status.
struct StatusFixture {
    queued: String,
    running: String,
    completed: String,
    with_failures: String,
    failed: String,
    cancelled: String,
    cancelling: String,
}

impl StatusFixture {
    async fn build(app: &TestApp) -> StatusFixture {
        let queued = create(app, "a.type", None, 2).await;

        let running = create(app, "b.type", None, 2).await;
        app.report_all(&running, json!([started(0)])).await;

        let completed = create(app, "a.type", None, 1).await;
        app.report_all(&completed, json!([ok(0)])).await;

        let with_failures = create(app, "b.type", None, 2).await;
        app.report_all(&with_failures, json!([failed(0, "E1", "boom"), ok(1)]))
            .await;

        let failed_task = create(app, "c.type", None, 1).await;
        app.report_all(&failed_task, json!([failed(0, "E1", "boom")]))
            .await;

        let cancelled = create(app, "c.type", None, 1).await;
        assert_eq!(app.cancel(&cancelled).await["status"], "CANCELLED");

        let cancelling = create(app, "a.type", None, 2).await;
        app.report_all(&cancelling, json!([started(0)])).await;
        assert_eq!(app.cancel(&cancelling).await["status"], "CANCELLING");

        let f = StatusFixture {
            queued,
            running,
            completed,
            with_failures,
            failed: failed_task,
            cancelled,
            cancelling,
        };
        for (id, status) in f.all_with_status() {
            assert_eq!(
                app.task(&id).await["status"],
                status,
                "status of fixture task {id}"
            );
            app.assert_counters_consistent(&id).await;
        }
        f
    }

    fn all_with_status(&self) -> Vec<(String, &'static str)> {
        vec![
            (self.queued.clone(), "QUEUED"),
            (self.running.clone(), "RUNNING"),
            (self.completed.clone(), "COMPLETED"),
            (self.with_failures.clone(), "COMPLETED_WITH_FAILURES"),
            (self.failed.clone(), "FAILED"),
            (self.cancelled.clone(), "CANCELLED"),
            (self.cancelling.clone(), "CANCELLING"),
        ]
    }
}

/// The ids of the tasks matching `filter`, sorted, checking totalCount.
async fn filtered(app: &TestApp, filter: Value) -> Vec<String> {
    let conn = tasks(app, json!({ "first": 100, "filter": filter })).await;
    let found = ids(&conn);
    assert_eq!(
        conn["totalCount"],
        found.len() as i64,
        "totalCount for {filter}: {conn:#}"
    );
    sorted(found)
}

fn set(ids: &[&String]) -> Vec<String> {
    sorted(strs(ids))
}

#[tokio::test]
async fn tasks_filter_by_status_type_finished_and_failures() {
    let app = spawn_app().await;
    let f = StatusFixture::build(&app).await;

    assert_eq!(filtered(&app, json!({})).await.len(), 7);
    assert_eq!(
        filtered(&app, json!({ "status": ["QUEUED", "RUNNING"] })).await,
        set(&[&f.queued, &f.running])
    );
    assert_eq!(
        filtered(&app, json!({ "status": ["CANCELLING"] })).await,
        set(&[&f.cancelling])
    );
    assert_eq!(
        filtered(&app, json!({ "status": ["CANCELLED"] })).await,
        set(&[&f.cancelled])
    );
    assert_eq!(
        filtered(
            &app,
            json!({ "status": ["COMPLETED", "COMPLETED_WITH_FAILURES", "FAILED"] })
        )
        .await,
        set(&[&f.completed, &f.with_failures, &f.failed])
    );

    assert_eq!(
        filtered(&app, json!({ "type": ["a.type"] })).await,
        set(&[&f.queued, &f.completed, &f.cancelling])
    );
    assert_eq!(
        filtered(&app, json!({ "type": ["b.type", "c.type"] })).await,
        set(&[&f.running, &f.with_failures, &f.failed, &f.cancelled])
    );
    assert_eq!(
        filtered(&app, json!({ "type": ["no.such.type"] })).await,
        Vec::<String>::new()
    );

    assert_eq!(
        filtered(&app, json!({ "finished": true })).await,
        set(&[&f.completed, &f.with_failures, &f.failed, &f.cancelled])
    );
    assert_eq!(
        filtered(&app, json!({ "finished": false })).await,
        set(&[&f.queued, &f.running, &f.cancelling])
    );

    assert_eq!(
        filtered(&app, json!({ "hasFailures": true })).await,
        set(&[&f.with_failures, &f.failed])
    );
    assert_eq!(
        filtered(&app, json!({ "hasFailures": false })).await,
        set(&[
            &f.queued,
            &f.running,
            &f.completed,
            &f.cancelled,
            &f.cancelling
        ])
    );

    // Filters combine with AND.
    assert_eq!(
        filtered(&app, json!({ "type": ["a.type"], "finished": true })).await,
        set(&[&f.completed])
    );
    assert_eq!(
        filtered(&app, json!({ "type": ["b.type"], "hasFailures": true, "status": ["COMPLETED_WITH_FAILURES"] }))
            .await,
        set(&[&f.with_failures])
    );
    assert_eq!(
        filtered(&app, json!({ "type": ["c.type"], "status": ["QUEUED"] })).await,
        Vec::<String>::new()
    );

    // Cursors keep the filter: paging a filtered list yields exactly it.
    let base = json!({ "filter": { "finished": true }, "orderBy": order("TOTAL", "DESC") });
    let mut vars = base.clone();
    vars["first"] = json!(100);
    let all = ids(&tasks(&app, vars).await);
    assert_eq!(
        sorted(all.clone()),
        set(&[&f.completed, &f.with_failures, &f.failed, &f.cancelled])
    );
    assert_eq!(page_forward(&app, None, base.clone(), 1).await, all);
    assert_eq!(page_backward(&app, None, base.clone(), 3).await, all);
}

#[tokio::test]
async fn tasks_filter_by_created_updated_and_started_time() {
    let app = spawn_app().await;
    let a = create(&app, "t", None, 2).await;
    tick().await;
    let b = create(&app, "t", None, 2).await;
    tick().await;
    let c = create(&app, "t", None, 2).await;
    tick().await;
    // A starts first, then B; C never starts. A is updated last.
    app.report_all(&a, json!([started(0)])).await;
    tick().await;
    app.report_all(&b, json!([ok(0)])).await;
    tick().await;
    app.report_all(&a, json!([ok(1)])).await;

    let (ta, tb, tc) = (app.task(&a).await, app.task(&b).await, app.task(&c).await);
    assert_eq!(
        tc["startedAt"],
        Value::Null,
        "an untouched task has not started: {tc:#}"
    );

    let ab = between(&ta["createdAt"], &tb["createdAt"]);
    let bc = between(&tb["createdAt"], &tc["createdAt"]);
    assert_eq!(
        filtered(&app, json!({ "createdAfter": ab })).await,
        set(&[&b, &c])
    );
    assert_eq!(
        filtered(&app, json!({ "createdBefore": bc })).await,
        set(&[&a, &b])
    );
    assert_eq!(
        filtered(&app, json!({ "createdAfter": ab, "createdBefore": bc })).await,
        set(&[&b])
    );
    assert_eq!(
        filtered(&app, json!({ "createdAfter": bc, "createdBefore": ab })).await,
        Vec::<String>::new()
    );
    assert_eq!(
        filtered(&app, json!({ "createdAfter": "2000-01-01T00:00:00.000Z" })).await,
        set(&[&a, &b, &c])
    );
    assert_eq!(
        filtered(&app, json!({ "createdBefore": "2000-01-01T00:00:00.000Z" })).await,
        Vec::<String>::new()
    );

    // B was updated after C was created, A after B.
    let updated_c_b = between(&tc["updatedAt"], &tb["updatedAt"]);
    let updated_b_a = between(&tb["updatedAt"], &ta["updatedAt"]);
    assert_eq!(
        filtered(&app, json!({ "updatedAfter": updated_c_b })).await,
        set(&[&a, &b])
    );
    assert_eq!(
        filtered(&app, json!({ "updatedAfter": updated_b_a })).await,
        set(&[&a])
    );

    // Started: A then B; C has no startedAt and never matches.
    let started_a_b = between(&ta["startedAt"], &tb["startedAt"]);
    assert_eq!(
        filtered(&app, json!({ "startedAfter": started_a_b })).await,
        set(&[&b])
    );
    assert_eq!(
        filtered(&app, json!({ "startedAfter": "2000-01-01T00:00:00.000Z" })).await,
        set(&[&a, &b])
    );
}

#[tokio::test]
async fn tasks_filter_by_search_in_description_or_type() {
    let app = spawn_app().await;
    let nightly = create(
        &app,
        "links.bulk_create",
        Some("Nightly import of partner links"),
        1,
    )
    .await;
    let weekly = create(&app, "sims.bulk_provision", Some("weekly reconcile"), 1).await;
    let export = create(&app, "import.export", None, 1).await;

    assert_eq!(
        filtered(&app, json!({ "search": "import" })).await,
        set(&[&nightly, &export])
    );
    assert_eq!(
        filtered(&app, json!({ "search": "reconcile" })).await,
        set(&[&weekly])
    );
    assert_eq!(
        filtered(&app, json!({ "search": "bulk_" })).await,
        set(&[&nightly, &weekly])
    );
    assert_eq!(
        filtered(&app, json!({ "search": "provision" })).await,
        set(&[&weekly])
    );
    assert_eq!(
        filtered(&app, json!({ "search": "partner links" })).await,
        set(&[&nightly])
    );
    assert_eq!(
        filtered(&app, json!({ "search": "nothing like this" })).await,
        Vec::<String>::new()
    );
    // Combined with another filter.
    assert_eq!(
        filtered(
            &app,
            json!({ "search": "import", "type": ["import.export"] })
        )
        .await,
        set(&[&export])
    );
}

/// `search` is a literal substring: LIKE wildcards and quotes match only themselves.
#[tokio::test]
async fn tasks_search_treats_wildcards_and_quotes_literally() {
    let app = spawn_app().await;
    let plain = create(&app, "plain", Some("nothing special here"), 1).await;
    let percent = create(&app, "pct", Some("grew by 100% today"), 1).await;
    let quote = create(&app, "quote", Some("it's O'Brien"), 1).await;

    assert_eq!(
        filtered(&app, json!({ "search": "%" })).await,
        set(&[&percent])
    );
    assert_eq!(
        filtered(&app, json!({ "search": "_" })).await,
        Vec::<String>::new()
    );
    assert_eq!(
        filtered(&app, json!({ "search": "'" })).await,
        set(&[&quote])
    );
    assert_eq!(
        filtered(&app, json!({ "search": "' OR '1'='1" })).await,
        Vec::<String>::new()
    );
    assert_eq!(
        filtered(&app, json!({ "search": "special" })).await,
        set(&[&plain])
    );
}

// ---------------------------------------------------------------------------
// Task orders
// ---------------------------------------------------------------------------

/// Ids in display order for one order of the whole list.
async fn ordered(app: &TestApp, field: &str, direction: &str) -> Vec<String> {
    let conn = tasks(
        app,
        json!({ "first": 100, "orderBy": order(field, direction) }),
    )
    .await;
    ids(&conn)
}

#[tokio::test]
async fn tasks_order_by_every_field_in_both_directions() {
    let app = spawn_app().await;
    // Created in order A, B, C, D; updated in order D, B, A, C.
    let a = create(&app, "t", None, 4).await;
    tick().await;
    let b = create(&app, "t", None, 2).await;
    tick().await;
    let c = create(&app, "t", None, 3).await;
    tick().await;
    let d = create(&app, "t", None, 5).await;
    tick().await;
    app.report_all(&d, json!([failed(0, "E", "m"), failed(1, "E", "m")]))
        .await;
    tick().await;
    app.report_all(&b, json!([ok(0)])).await;
    tick().await;
    app.report_all(&a, json!([failed(0, "E", "m")])).await;
    tick().await;
    app.report_all(
        &c,
        json!([
            failed(0, "E", "m"),
            failed(1, "E", "m"),
            failed(2, "E", "m")
        ]),
    )
    .await;

    // Preconditions: total A4 B2 C3 D5; failed A1 B0 C3 D2; progress A.25 B.5 C1 D.4.
    let expect = [
        (&a, 4, 1, 0.25),
        (&b, 2, 0, 0.5),
        (&c, 3, 3, 1.0),
        (&d, 5, 2, 0.4),
    ];
    for (id, total, failed_n, progress) in expect {
        let t = app.task(id).await;
        assert_eq!(t["counters"]["total"], total, "{t:#}");
        assert_eq!(t["counters"]["failed"], failed_n, "{t:#}");
        assert!(
            (t["progress"].as_f64().unwrap() - progress).abs() < 1e-9,
            "{t:#}"
        );
    }

    let cases: [(&str, Vec<String>); 5] = [
        ("CREATED_AT", strs(&[&a, &b, &c, &d])),
        ("UPDATED_AT", strs(&[&d, &b, &a, &c])),
        ("TOTAL", strs(&[&b, &c, &a, &d])),
        ("FAILED", strs(&[&b, &a, &d, &c])),
        ("PROGRESS", strs(&[&a, &d, &b, &c])),
    ];
    for (field, asc) in cases {
        assert_eq!(ordered(&app, field, "ASC").await, asc, "{field} ASC");
        assert_eq!(
            ordered(&app, field, "DESC").await,
            reversed(&asc),
            "{field} DESC"
        );
    }

    // The default order is UPDATED_AT DESC.
    let conn = tasks(&app, json!({})).await;
    assert_eq!(ids(&conn), strs(&[&c, &a, &b, &d]), "default order");
}

#[tokio::test]
async fn tasks_order_by_finished_at_in_both_directions() {
    let app = spawn_app().await;
    let x = create(&app, "t", None, 1).await;
    let y = create(&app, "t", None, 1).await;
    let z = create(&app, "t", None, 1).await;
    let unfinished = create(&app, "t", None, 2).await;
    app.report_all(&unfinished, json!([ok(0)])).await;
    tick().await;
    app.report_all(&y, json!([ok(0)])).await;
    tick().await;
    app.report_all(&z, json!([failed(0, "E", "m")])).await;
    tick().await;
    app.report_all(&x, json!([ok(0)])).await;

    let finished = [x.clone(), y.clone(), z.clone()];
    let only_finished = |list: Vec<String>| -> Vec<String> {
        assert_eq!(
            sorted(list.clone()),
            sorted(vec![x.clone(), y.clone(), z.clone(), unfinished.clone()])
        );
        list.into_iter()
            .filter(|id| finished.contains(id))
            .collect()
    };
    assert_eq!(
        only_finished(ordered(&app, "FINISHED_AT", "ASC").await),
        strs(&[&y, &z, &x])
    );
    assert_eq!(
        only_finished(ordered(&app, "FINISHED_AT", "DESC").await),
        strs(&[&x, &z, &y])
    );

    // Paging over FINISHED_AT, unfinished task included, loses nothing.
    let all = ordered(&app, "FINISHED_AT", "ASC").await;
    let fwd = page_forward(
        &app,
        None,
        json!({ "orderBy": order("FINISHED_AT", "ASC") }),
        1,
    )
    .await;
    assert_eq!(fwd, all);
    let back = page_backward(
        &app,
        None,
        json!({ "orderBy": order("FINISHED_AT", "ASC") }),
        1,
    )
    .await;
    assert_eq!(back, all);
}

// ---------------------------------------------------------------------------
// Paging
// ---------------------------------------------------------------------------

#[tokio::test]
async fn tasks_paging_across_ties_skips_and_repeats_nothing() {
    let app = spawn_app().await;
    // 25 tasks whose totals take three values: long runs of ties on TOTAL,
    // and all tie on FAILED and PROGRESS (0).
    let mut created = Vec::new();
    for i in 0..25 {
        created.push(create(&app, "tie", None, i % 3 + 1).await);
    }

    for (field, direction) in [
        ("TOTAL", "ASC"),
        ("TOTAL", "DESC"),
        ("FAILED", "DESC"),
        ("PROGRESS", "ASC"),
    ] {
        let base = json!({ "orderBy": order(field, direction) });
        let full = tasks(
            &app,
            json!({ "first": 100, "orderBy": order(field, direction) }),
        )
        .await;
        let all = ids(&full);
        assert_eq!(
            sorted(all.clone()),
            sorted(created.clone()),
            "{field} {direction}: the full list"
        );
        assert_eq!(full["totalCount"], 25);
        assert_eq!(full["pageInfo"]["hasNextPage"], false);
        assert_eq!(full["pageInfo"]["hasPreviousPage"], false);
        if field == "TOTAL" {
            let totals: Vec<i64> = full["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["counters"]["total"].as_i64().unwrap())
                .collect();
            let mut expected = totals.clone();
            expected.sort();
            if direction == "DESC" {
                expected.reverse();
            }
            assert_eq!(totals, expected, "sorted by TOTAL {direction}");
        }

        for size in [1, 4, 7] {
            let fwd = page_forward(&app, None, base.clone(), size).await;
            assert_no_repeats(&fwd);
            assert_eq!(fwd, all, "{field} {direction} forward by {size}");
            let back = page_backward(&app, None, base.clone(), size).await;
            assert_no_repeats(&back);
            assert_eq!(back, all, "{field} {direction} backward by {size}");
        }
    }
}

#[tokio::test]
async fn tasks_page_info_and_cursors_go_back_and_forth() {
    let app = spawn_app().await;
    for i in 0..10 {
        create(&app, "t", None, i % 2 + 1).await;
    }
    let by = json!(order("TOTAL", "ASC"));
    let all = ids(&tasks(&app, json!({ "first": 100, "orderBy": by })).await);

    let p1 = tasks(&app, json!({ "first": 4, "orderBy": by })).await;
    assert_eq!(ids(&p1), all[0..4]);
    assert_eq!(p1["totalCount"], 10);
    assert_eq!(p1["pageInfo"]["hasNextPage"], true);
    assert_eq!(p1["pageInfo"]["hasPreviousPage"], false);

    let p2 = tasks(
        &app,
        json!({ "first": 4, "after": p1["pageInfo"]["endCursor"], "orderBy": by }),
    )
    .await;
    assert_eq!(ids(&p2), all[4..8]);
    assert_eq!(p2["totalCount"], 10, "totalCount ignores the page");
    assert_eq!(p2["pageInfo"]["hasNextPage"], true);
    assert_eq!(p2["pageInfo"]["hasPreviousPage"], true);

    let p3 = tasks(
        &app,
        json!({ "first": 4, "after": p2["pageInfo"]["endCursor"], "orderBy": by }),
    )
    .await;
    assert_eq!(ids(&p3), all[8..10]);
    assert_eq!(p3["pageInfo"]["hasNextPage"], false);
    assert_eq!(p3["pageInfo"]["hasPreviousPage"], true);

    // Back from page 2's start: page 1 again.
    let back = tasks(
        &app,
        json!({ "last": 4, "before": p2["pageInfo"]["startCursor"], "orderBy": by }),
    )
    .await;
    assert_eq!(ids(&back), all[0..4]);
    assert_eq!(back["pageInfo"]["hasPreviousPage"], false);
    assert_eq!(back["pageInfo"]["hasNextPage"], true);
    // Edge cursors work as well as pageInfo's.
    let third_edge = p1["edges"][2]["cursor"].clone();
    let from_edge = tasks(
        &app,
        json!({ "first": 3, "after": third_edge, "orderBy": by }),
    )
    .await;
    assert_eq!(ids(&from_edge), all[3..6]);

    // last without before: the end of the list.
    let tail = tasks(&app, json!({ "last": 3, "orderBy": by })).await;
    assert_eq!(ids(&tail), all[7..10]);
    assert_eq!(tail["pageInfo"]["hasPreviousPage"], true);
    assert_eq!(tail["pageInfo"]["hasNextPage"], false);
    let before_tail = tasks(
        &app,
        json!({ "last": 3, "before": tail["pageInfo"]["startCursor"], "orderBy": by }),
    )
    .await;
    assert_eq!(ids(&before_tail), all[4..7]);
    assert_eq!(before_tail["pageInfo"]["hasNextPage"], true);
    assert_eq!(before_tail["pageInfo"]["hasPreviousPage"], true);

    // Between two cursors.
    let between = tasks(
        &app,
        json!({ "first": 100, "after": p1["pageInfo"]["endCursor"], "before": p3["pageInfo"]["startCursor"], "orderBy": by }),
    )
    .await;
    assert_eq!(ids(&between), all[4..8]);

    // After the last row: an empty page.
    let past = tasks(
        &app,
        json!({ "first": 4, "after": p3["pageInfo"]["endCursor"], "orderBy": by }),
    )
    .await;
    assert_eq!(ids(&past), Vec::<String>::new());
    assert_eq!(past["pageInfo"]["hasNextPage"], false);
    assert_eq!(past["pageInfo"]["startCursor"], Value::Null);
    assert_eq!(past["pageInfo"]["endCursor"], Value::Null);

    // first: 0 is a count-only page.
    let none = tasks(&app, json!({ "first": 0 })).await;
    assert_eq!(ids(&none), Vec::<String>::new());
    assert_eq!(none["totalCount"], 10);
    assert_eq!(none["pageInfo"]["hasNextPage"], true);

    // The default page size is 20 and the largest 100.
    for i in 0..15 {
        create(&app, "t", None, i % 2 + 1).await;
    }
    let default = tasks(&app, json!({})).await;
    assert_eq!(ids(&default).len(), 20);
    assert_eq!(default["totalCount"], 25);
    assert_eq!(default["pageInfo"]["hasNextPage"], true);
    let hundred = tasks(&app, json!({ "first": 100 })).await;
    assert_eq!(ids(&hundred).len(), 25);
    assert_eq!(hundred["pageInfo"]["hasNextPage"], false);
}

#[tokio::test]
async fn tasks_offset_pages() {
    let app = spawn_app().await;
    for _ in 0..7 {
        create(&app, "t", None, 1).await;
        tick().await;
    }
    let by = json!(order("CREATED_AT", "ASC"));
    let all = ids(&tasks(&app, json!({ "first": 100, "orderBy": by })).await);
    assert_eq!(all.len(), 7);

    let page = tasks(&app, json!({ "first": 2, "offset": 2, "orderBy": by })).await;
    assert_eq!(ids(&page), all[2..4]);
    assert_eq!(page["totalCount"], 7);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    assert_eq!(page["pageInfo"]["hasPreviousPage"], true);

    let last = tasks(&app, json!({ "first": 5, "offset": 5, "orderBy": by })).await;
    assert_eq!(ids(&last), all[5..7]);
    assert_eq!(last["pageInfo"]["hasNextPage"], false);

    let beyond = tasks(&app, json!({ "first": 5, "offset": 10000, "orderBy": by })).await;
    assert_eq!(ids(&beyond), Vec::<String>::new());
    assert_eq!(beyond["totalCount"], 7);

    let zero = tasks(&app, json!({ "first": 3, "offset": 0, "orderBy": by })).await;
    assert_eq!(ids(&zero), all[0..3]);
    assert_eq!(zero["pageInfo"]["hasPreviousPage"], false);

    // Offset after a cursor skips from the cursor on.
    let cursor = zero["pageInfo"]["endCursor"].clone();
    let skip = tasks(
        &app,
        json!({ "first": 2, "after": cursor, "offset": 1, "orderBy": by }),
    )
    .await;
    assert_eq!(ids(&skip), all[4..6]);
}

#[tokio::test]
async fn items_paging_across_ties_and_offset() {
    let app = spawn_app().await;
    // 30 items created in one call share createdAt and updatedAt.
    let id = app.create_task(30).await;

    let all_by_index = task_items(&app, &id, json!({ "first": 100 })).await;
    assert_eq!(
        indexes(&all_by_index),
        (0..30).collect::<Vec<i64>>(),
        "default order is INDEX ASC"
    );
    assert_eq!(all_by_index["totalCount"], 30);

    for (field, direction) in [
        ("CREATED_AT", "ASC"),
        ("UPDATED_AT", "DESC"),
        ("INDEX", "DESC"),
        ("FINISHED_AT", "ASC"),
    ] {
        let by = order(field, direction);
        let all = ids(&task_items(&app, &id, json!({ "first": 100, "orderBy": by })).await);
        assert_eq!(
            sorted(all.clone()),
            sorted(ids(&all_by_index)),
            "{field} {direction}"
        );
        for size in [1, 7] {
            let fwd = page_forward(&app, Some(&id), json!({ "orderBy": by }), size).await;
            assert_no_repeats(&fwd);
            assert_eq!(fwd, all, "items {field} {direction} forward by {size}");
            let back = page_backward(&app, Some(&id), json!({ "orderBy": by }), size).await;
            assert_no_repeats(&back);
            assert_eq!(back, all, "items {field} {direction} backward by {size}");
        }
    }

    let page = task_items(&app, &id, json!({ "first": 5, "offset": 10 })).await;
    assert_eq!(indexes(&page), vec![10, 11, 12, 13, 14]);
    assert_eq!(page["totalCount"], 30);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    assert_eq!(page["pageInfo"]["hasPreviousPage"], true);

    // The default order bounds forward pages by position: walk it, skip
    // with a cursor and an offset together, and reach the end exactly.
    for size in [1, 7] {
        let fwd = page_forward(&app, Some(&id), json!({}), size).await;
        assert_eq!(fwd, ids(&all_by_index), "default order forward by {size}");
    }
    let cursor = &page["pageInfo"]["endCursor"];
    let skipped = task_items(
        &app,
        &id,
        json!({ "first": 3, "after": cursor, "offset": 2 }),
    )
    .await;
    assert_eq!(indexes(&skipped), vec![17, 18, 19]);
    assert_eq!(skipped["pageInfo"]["hasNextPage"], true);
    let near_end = task_items(
        &app,
        &id,
        json!({ "first": 5, "after": cursor, "offset": 12 }),
    )
    .await;
    assert_eq!(indexes(&near_end), vec![27, 28, 29]);
    assert_eq!(near_end["pageInfo"]["hasNextPage"], false);

    let tail = task_items(&app, &id, json!({ "last": 4 })).await;
    assert_eq!(indexes(&tail), vec![26, 27, 28, 29]);
    let before = task_items(
        &app,
        &id,
        json!({ "last": 3, "before": tail["pageInfo"]["startCursor"] }),
    )
    .await;
    assert_eq!(indexes(&before), vec![23, 24, 25]);
    let after = task_items(
        &app,
        &id,
        json!({ "first": 3, "after": before["pageInfo"]["endCursor"] }),
    )
    .await;
    assert_eq!(indexes(&after), vec![26, 27, 28]);
}

// ---------------------------------------------------------------------------
// Item filters and orders
// ---------------------------------------------------------------------------

/// A task of 9 items: 0 ok, 1 E1, 2 E2, 3 E1, 4 skipped, 5 E2, 6 E1, 7 pending,
/// 8 rejected at admission (a duplicate client id). Returns (task id, the
/// rejection's code and message).
async fn outcome_fixture(app: &TestApp) -> (String, String, String) {
    let mut list = items(8);
    list.push(json!({ "clientItemId": "item-2", "payload": { "n": 8 } }));
    let payload = app
        .create(json!({ "type": "outcomes", "items": list }))
        .await;
    let rejected = payload["rejected"].as_array().unwrap();
    assert_eq!(
        rejected.len(),
        1,
        "a duplicate client id is rejected: {payload:#}"
    );
    assert_eq!(rejected[0]["index"], 8, "{payload:#}");
    assert_eq!(rejected[0]["clientItemId"], "item-2", "{payload:#}");
    let code = rejected[0]["code"].as_str().unwrap().to_owned();
    let message = rejected[0]["message"].as_str().unwrap().to_owned();
    assert!(code != "E1" && code != "E2");
    let id = payload["task"]["id"].as_str().unwrap().to_owned();
    app.report_all(
        &id,
        json!([
            ok(0),
            failed(1, "E1", "boom one"),
            failed(2, "E2", "boom two"),
            failed(3, "E1", "boom one"),
            skipped(4),
            failed(5, "E2", "boom two"),
            failed(6, "E1", "boom one"),
        ]),
    )
    .await;
    app.assert_counters_consistent(&id).await;
    (id, code, message)
}

async fn item_indexes(app: &TestApp, task_id: &str, filter: Value) -> Vec<i64> {
    let conn = task_items(app, task_id, json!({ "first": 100, "filter": filter })).await;
    let found = indexes(&conn);
    assert_eq!(
        conn["totalCount"],
        found.len() as i64,
        "totalCount for {filter}: {conn:#}"
    );
    found
}

#[tokio::test]
async fn items_filter_by_status_client_id_and_error_code() {
    let app = spawn_app().await;
    let (id, reject_code, _) = outcome_fixture(&app).await;

    let counters = app
        .data("query($id: ID!) { bulkTask(id: $id) { status counters { total pending running succeeded failed skipped rejected cancelled finished } } }", json!({ "id": id }))
        .await;
    assert_eq!(
        counters["bulkTask"]["counters"],
        json!({ "total": 9, "pending": 1, "running": 0, "succeeded": 1, "failed": 5, "skipped": 1,
                "rejected": 1, "cancelled": 0, "finished": 8 })
    );

    assert_eq!(
        item_indexes(&app, &id, json!({})).await,
        (0..9).collect::<Vec<i64>>()
    );
    assert_eq!(
        item_indexes(&app, &id, json!({ "status": ["FAILED"] })).await,
        vec![1, 2, 3, 5, 6]
    );
    assert_eq!(
        item_indexes(&app, &id, json!({ "status": ["PENDING"] })).await,
        vec![7]
    );
    assert_eq!(
        item_indexes(&app, &id, json!({ "status": ["REJECTED"] })).await,
        vec![8]
    );
    assert_eq!(
        item_indexes(&app, &id, json!({ "status": ["SUCCEEDED", "SKIPPED"] })).await,
        vec![0, 4]
    );
    assert_eq!(
        item_indexes(&app, &id, json!({ "status": ["FAILED", "REJECTED"] })).await,
        vec![1, 2, 3, 5, 6, 8]
    );
    assert_eq!(
        item_indexes(&app, &id, json!({ "status": ["RUNNING", "CANCELLED"] })).await,
        Vec::<i64>::new()
    );

    assert_eq!(
        item_indexes(&app, &id, json!({ "clientItemId": "item-3" })).await,
        vec![3]
    );
    assert_eq!(
        item_indexes(&app, &id, json!({ "clientItemId": "item-7" })).await,
        vec![7]
    );
    assert_eq!(
        item_indexes(&app, &id, json!({ "clientItemId": "nope" })).await,
        Vec::<i64>::new()
    );

    assert_eq!(
        item_indexes(&app, &id, json!({ "errorCode": "E1" })).await,
        vec![1, 3, 6]
    );
    assert_eq!(
        item_indexes(&app, &id, json!({ "errorCode": "E2" })).await,
        vec![2, 5]
    );
    assert_eq!(
        item_indexes(&app, &id, json!({ "errorCode": reject_code })).await,
        vec![8]
    );
    assert_eq!(
        item_indexes(&app, &id, json!({ "errorCode": "E3" })).await,
        Vec::<i64>::new()
    );

    assert_eq!(
        item_indexes(
            &app,
            &id,
            json!({ "status": ["FAILED"], "errorCode": "E2" })
        )
        .await,
        vec![2, 5]
    );
    assert_eq!(
        item_indexes(
            &app,
            &id,
            json!({ "status": ["PENDING"], "errorCode": "E2" })
        )
        .await,
        Vec::<i64>::new()
    );
    assert_eq!(
        item_indexes(
            &app,
            &id,
            json!({ "clientItemId": "item-5", "errorCode": "E2" })
        )
        .await,
        vec![5]
    );

    // Cursors keep the filter.
    let base = json!({ "filter": { "status": ["FAILED", "REJECTED"] } });
    let expected: Vec<String> = {
        let mut vars = base.clone();
        vars["first"] = json!(100);
        ids(&task_items(&app, &id, vars).await)
    };
    assert_eq!(expected.len(), 6);
    assert_eq!(
        page_forward(&app, Some(&id), base.clone(), 2).await,
        expected
    );
    assert_eq!(
        page_backward(&app, Some(&id), base.clone(), 4).await,
        expected
    );

    // The items carry their outcome.
    let conn = task_items(&app, &id, json!({ "first": 100 })).await;
    let nodes = conn["nodes"].as_array().unwrap();
    assert_eq!(nodes[1]["status"], "FAILED");
    assert_eq!(
        nodes[1]["error"],
        json!({ "code": "E1", "message": "boom one" })
    );
    assert_eq!(nodes[0]["status"], "SUCCEEDED");
    assert_eq!(nodes[0]["error"], Value::Null);
    assert_eq!(nodes[8]["status"], "REJECTED");
    assert_eq!(nodes[8]["error"]["code"], reject_code.as_str());
    assert_eq!(nodes[7]["status"], "PENDING");
    assert_eq!(nodes[7]["clientItemId"], "item-7");
}

#[tokio::test]
async fn items_order_by_every_field_in_both_directions() {
    let app = spawn_app().await;
    // Items 0,1 created first, 2,3 later, 4 last.
    let payload = app
        .create(json!({ "type": "appended", "sealed": false, "items": [item(0), item(1)] }))
        .await;
    let id = payload["task"]["id"].as_str().unwrap().to_owned();
    tick().await;
    app.append(&id, json!([item(2), item(3)]), None).await;
    tick().await;
    app.append(&id, json!([item(4)]), Some(true)).await;
    tick().await;
    // Finished (and updated) in order 3, 0, 4; 1 and 2 stay pending.
    app.report_all(&id, json!([ok(3)])).await;
    tick().await;
    app.report_all(&id, json!([failed(0, "E", "m")])).await;
    tick().await;
    app.report_all(&id, json!([skipped(4)])).await;

    let by = |field: &str, direction: &str| {
        let app = &app;
        let id = id.clone();
        let by = order(field, direction);
        async move { indexes(&task_items(app, &id, json!({ "first": 100, "orderBy": by })).await) }
    };

    assert_eq!(by("INDEX", "ASC").await, vec![0, 1, 2, 3, 4]);
    assert_eq!(by("INDEX", "DESC").await, vec![4, 3, 2, 1, 0]);
    assert_eq!(by("UPDATED_AT", "ASC").await, vec![1, 2, 3, 0, 4]);
    assert_eq!(by("UPDATED_AT", "DESC").await, vec![4, 0, 3, 2, 1]);

    let group = |i: &i64| match i {
        0 | 1 => 0,
        2 | 3 => 1,
        _ => 2,
    };
    let created_asc = by("CREATED_AT", "ASC").await;
    assert_eq!(
        created_asc.iter().map(group).collect::<Vec<_>>(),
        vec![0, 0, 1, 1, 2],
        "{created_asc:?}"
    );
    let created_desc = by("CREATED_AT", "DESC").await;
    assert_eq!(
        created_desc.iter().map(group).collect::<Vec<_>>(),
        vec![2, 1, 1, 0, 0],
        "{created_desc:?}"
    );

    let finished_only = |list: Vec<i64>| -> Vec<i64> {
        let mut all = list.clone();
        all.sort();
        assert_eq!(all, vec![0, 1, 2, 3, 4]);
        list.into_iter().filter(|i| [0, 3, 4].contains(i)).collect()
    };
    assert_eq!(finished_only(by("FINISHED_AT", "ASC").await), vec![3, 0, 4]);
    assert_eq!(
        finished_only(by("FINISHED_AT", "DESC").await),
        vec![4, 0, 3]
    );
}

// ---------------------------------------------------------------------------
// Ids, nodes and single lookups
// ---------------------------------------------------------------------------

#[tokio::test]
async fn node_and_nodes_resolve_both_types() {
    let app = spawn_app().await;
    let task_id = app.create_task(3).await;
    let items = task_items(&app, &task_id, json!({ "first": 10 })).await;
    let item_id = items["nodes"][1]["id"].as_str().unwrap().to_owned();
    assert_ne!(item_id, task_id);

    // A well-formed id of a deleted task and of one of its items.
    let gone = app.create_task(1).await;
    let gone_item = ids(&task_items(&app, &gone, json!({})).await)[0].clone();
    delete(&app, &gone).await;

    let query = r#"query($t: ID!, $i: ID!, $ids: [ID!]!) {
      t: node(id: $t) { __typename id ... on BulkTask { type counters { total } } }
      i: node(id: $i) { __typename id ... on TaskItem { index clientItemId status payload task { id type } } }
      nodes(ids: $ids) { __typename id ... on BulkTask { type } ... on TaskItem { index } }
    }"#;
    let ids_list = json!([item_id, gone, task_id, gone_item, item_id]);
    let data = app
        .data(
            query,
            json!({ "t": task_id, "i": item_id, "ids": ids_list }),
        )
        .await;
    assert_eq!(
        data["t"],
        json!({ "__typename": "BulkTask", "id": task_id, "type": "test.items", "counters": { "total": 3 } })
    );
    assert_eq!(
        data["i"],
        json!({ "__typename": "TaskItem", "id": item_id, "index": 1, "clientItemId": "item-1", "status": "PENDING",
                "payload": { "n": 1 }, "task": { "id": task_id, "type": "test.items" } })
    );
    assert_eq!(
        data["nodes"],
        json!([
            { "__typename": "TaskItem", "id": item_id, "index": 1 },
            null,
            { "__typename": "BulkTask", "id": task_id, "type": "test.items" },
            null,
            { "__typename": "TaskItem", "id": item_id, "index": 1 },
        ])
    );

    // Missing but well-formed ids are null everywhere.
    let missing = app
        .data(
            "query($t: ID!, $i: ID!) { a: node(id: $t) { id } b: node(id: $i) { id } c: bulkTask(id: $t) { id } d: taskItem(id: $i) { id } }",
            json!({ "t": gone, "i": gone_item }),
        )
        .await;
    assert_eq!(
        missing,
        json!({ "a": null, "b": null, "c": null, "d": null })
    );

    // An empty list of ids is an empty list.
    assert_eq!(
        app.data("{ nodes(ids: []) { id } }", json!({})).await["nodes"],
        json!([])
    );
}

#[tokio::test]
async fn task_item_by_id_with_its_task() {
    let app = spawn_app().await;
    let task_id = app.create_task(4).await;
    app.report_all(&task_id, json!([failed(2, "E9", "broken")]))
        .await;
    let item_id = task_items(&app, &task_id, json!({})).await["nodes"][2]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let data = app
        .data(
            r#"query($id: ID!) { taskItem(id: $id) {
                id index clientItemId status payload result attempts error { code message }
                task { id status counters { total failed } items(first: 1, filter: { status: [FAILED] }) { nodes { id } } }
            } }"#,
            json!({ "id": item_id }),
        )
        .await;
    assert_eq!(
        data["taskItem"],
        json!({
            "id": item_id, "index": 2, "clientItemId": "item-2", "status": "FAILED",
            "payload": { "n": 2 }, "result": null, "attempts": data["taskItem"]["attempts"].clone(),
            "error": { "code": "E9", "message": "broken" },
            "task": { "id": task_id, "status": "RUNNING", "counters": { "total": 4, "failed": 1 },
                      "items": { "nodes": [{ "id": item_id }] } }
        })
    );
}

#[tokio::test]
async fn malformed_ids_are_bad_user_input() {
    let app = spawn_app().await;
    app.create_task(1).await;
    for bad in ["", "not-an-id", "0", "////", "QnVsa1Rhc2s6eA", "\u{1F4A3}"] {
        for query in [
            "query($id: ID!) { bulkTask(id: $id) { id } }",
            "query($id: ID!) { taskItem(id: $id) { id } }",
            "query($id: ID!) { node(id: $id) { id } }",
            "query($id: ID!) { nodes(ids: [$id]) { id } }",
        ] {
            let body = app.post(query, json!({ "id": bad })).await;
            assert_eq!(
                body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
                "{query} with id {bad:?}: {body:#}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Limits and cursors
// ---------------------------------------------------------------------------

#[tokio::test]
async fn page_arguments_are_bounded() {
    let app = spawn_app().await;
    let id = app.create_task(2).await;
    let cases = [
        (json!({ "first": 101 }), "LIMIT_EXCEEDED"),
        (json!({ "first": 2147483647 }), "LIMIT_EXCEEDED"),
        (json!({ "last": 101 }), "LIMIT_EXCEEDED"),
        (json!({ "last": 2147483647 }), "LIMIT_EXCEEDED"),
        (json!({ "first": -1 }), "BAD_USER_INPUT"),
        (json!({ "last": -5 }), "BAD_USER_INPUT"),
        (json!({ "first": -2147483648 }), "BAD_USER_INPUT"),
        (json!({ "first": 1, "last": 1 }), "BAD_USER_INPUT"),
        (json!({ "offset": 10001 }), "LIMIT_EXCEEDED"),
        (json!({ "offset": 2147483647 }), "LIMIT_EXCEEDED"),
        (json!({ "offset": -1 }), "BAD_USER_INPUT"),
    ];
    for (vars, code) in cases {
        assert_eq!(
            app.error_code(TASKS, vars.clone()).await,
            code,
            "bulkTasks {vars}"
        );
        let mut item_vars = vars.clone();
        item_vars["id"] = json!(id);
        assert_eq!(app.error_code(ITEMS, item_vars).await, code, "items {vars}");
    }
    // The bounds themselves are fine.
    for vars in [
        json!({ "first": 100 }),
        json!({ "last": 100 }),
        json!({ "first": 0 }),
        json!({ "offset": 10000 }),
    ] {
        tasks(&app, vars.clone()).await;
        task_items(&app, &id, vars).await;
    }
}

#[tokio::test]
async fn forged_and_foreign_cursors_are_bad_cursor() {
    let app = spawn_app().await;
    let task_id = app.create_task(3).await;
    app.create_task(2).await;

    let by_created = tasks(
        &app,
        json!({ "first": 1, "orderBy": order("CREATED_AT", "ASC") }),
    )
    .await;
    let created_cursor = by_created["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_progress = tasks(
        &app,
        json!({ "first": 1, "orderBy": order("PROGRESS", "ASC") }),
    )
    .await;
    let progress_cursor = by_progress["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let item_page = task_items(&app, &task_id, json!({ "first": 1 })).await;
    let item_cursor = item_page["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_owned();

    // Sanity: the cursors work where they belong.
    let next = tasks(
        &app,
        json!({ "first": 1, "after": created_cursor, "orderBy": order("CREATED_AT", "ASC") }),
    )
    .await;
    assert_eq!(ids(&next).len(), 1);
    let next_item = task_items(&app, &task_id, json!({ "first": 1, "after": item_cursor })).await;
    assert_eq!(indexes(&next_item), vec![1]);

    let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
    let truncated = created_cursor[..created_cursor.len() - 6].to_owned();
    let forged = [
        "not a cursor!".to_owned(),
        "Zm9vYmFy".to_owned(),
        b64("{}"),
        b64("[1,2,3]"),
        b64("null"),
        b64(r#"{"o":"task:TOTAL","v":"x","i":"y"}"#),
        b64(&"A".repeat(5000)),
        truncated,
    ];
    for cursor in &forged {
        for key in ["after", "before"] {
            let mut vars = json!({ "orderBy": order("CREATED_AT", "ASC") });
            vars[key] = json!(cursor);
            assert_eq!(
                app.error_code(TASKS, vars).await,
                "BAD_CURSOR",
                "tasks {key} {cursor:?}"
            );
            let vars = json!({ "id": task_id, key: cursor });
            assert_eq!(
                app.error_code(ITEMS, vars).await,
                "BAD_CURSOR",
                "items {key} {cursor:?}"
            );
        }
    }

    // A cursor minted for another order or list.
    let foreign = [
        (
            TASKS,
            json!({ "after": created_cursor, "orderBy": order("TOTAL", "ASC") }),
        ),
        (
            TASKS,
            json!({ "after": created_cursor, "orderBy": order("PROGRESS", "ASC") }),
        ),
        (
            TASKS,
            json!({ "before": created_cursor, "orderBy": order("UPDATED_AT", "DESC") }),
        ),
        (TASKS, json!({ "after": created_cursor })),
        (
            TASKS,
            json!({ "after": progress_cursor, "orderBy": order("CREATED_AT", "ASC") }),
        ),
        (
            TASKS,
            json!({ "after": item_cursor, "orderBy": order("CREATED_AT", "ASC") }),
        ),
        (ITEMS, json!({ "id": task_id, "after": created_cursor })),
        (
            ITEMS,
            json!({ "id": task_id, "after": item_cursor, "orderBy": order("CREATED_AT", "ASC") }),
        ),
    ];
    for (query, vars) in foreign {
        assert_eq!(
            app.error_code(query, vars.clone()).await,
            "BAD_CURSOR",
            "{vars}"
        );
    }
}

// ---------------------------------------------------------------------------
// Stats and error summaries
// ---------------------------------------------------------------------------

const STATS: &str = r#"query($filter: BulkTaskFilter) { bulkTaskStats(filter: $filter) {
  total
  byStatus { status count }
  items { total pending running succeeded failed skipped rejected cancelled finished }
} }"#;

fn by_status(stats: &Value) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for entry in stats["byStatus"].as_array().unwrap() {
        let status = entry["status"].as_str().unwrap().to_owned();
        let count = entry["count"].as_i64().unwrap();
        assert!(
            out.insert(status, count).is_none(),
            "a status repeats: {stats:#}"
        );
    }
    out.retain(|_, n| *n != 0);
    out
}

#[tokio::test]
async fn bulk_task_stats_count_statuses_and_sum_items() {
    let app = spawn_app().await;
    let empty = app.data(STATS, json!({})).await["bulkTaskStats"].clone();
    assert_eq!(empty["total"], 0);
    assert_eq!(by_status(&empty), BTreeMap::new());
    assert_eq!(
        empty["items"],
        json!({ "total": 0, "pending": 0, "running": 0, "succeeded": 0, "failed": 0, "skipped": 0,
                "rejected": 0, "cancelled": 0, "finished": 0 })
    );

    let _f = StatusFixture::build(&app).await;

    let stats = app.data(STATS, json!({})).await["bulkTaskStats"].clone();
    assert_eq!(stats["total"], 7);
    let expected: BTreeMap<String, i64> = [
        "QUEUED",
        "RUNNING",
        "COMPLETED",
        "COMPLETED_WITH_FAILURES",
        "FAILED",
        "CANCELLED",
        "CANCELLING",
    ]
    .iter()
    .map(|s| (s.to_string(), 1))
    .collect();
    assert_eq!(by_status(&stats), expected);
    assert_eq!(
        stats["items"],
        json!({ "total": 11, "pending": 3, "running": 2, "succeeded": 2, "failed": 2, "skipped": 0,
                "rejected": 0, "cancelled": 2, "finished": 6 })
    );

    let a_type = app
        .data(STATS, json!({ "filter": { "type": ["a.type"] } }))
        .await["bulkTaskStats"]
        .clone();
    assert_eq!(a_type["total"], 3);
    assert_eq!(
        by_status(&a_type),
        [("CANCELLING", 1), ("COMPLETED", 1), ("QUEUED", 1)]
            .iter()
            .map(|(s, n)| (s.to_string(), *n))
            .collect()
    );
    assert_eq!(
        a_type["items"],
        json!({ "total": 5, "pending": 2, "running": 1, "succeeded": 1, "failed": 0, "skipped": 0,
                "rejected": 0, "cancelled": 1, "finished": 2 })
    );

    let finished = app
        .data(
            STATS,
            json!({ "filter": { "finished": true, "hasFailures": true } }),
        )
        .await["bulkTaskStats"]
        .clone();
    assert_eq!(finished["total"], 2);
    assert_eq!(
        by_status(&finished),
        [("COMPLETED_WITH_FAILURES", 1), ("FAILED", 1)]
            .iter()
            .map(|(s, n)| (s.to_string(), *n))
            .collect()
    );
    assert_eq!(finished["items"]["total"], 3);
    assert_eq!(finished["items"]["failed"], 2);
    assert_eq!(finished["items"]["succeeded"], 1);

    // The stats agree with the list under the same filter.
    let listed = tasks(
        &app,
        json!({ "first": 100, "filter": { "type": ["b.type", "c.type"] } }),
    )
    .await;
    let stats_bc = app
        .data(STATS, json!({ "filter": { "type": ["b.type", "c.type"] } }))
        .await["bulkTaskStats"]
        .clone();
    assert_eq!(stats_bc["total"], listed["totalCount"]);
    let sum: i64 = listed["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["counters"]["total"].as_i64().unwrap())
        .sum();
    assert_eq!(stats_bc["items"]["total"], sum);
}

#[tokio::test]
async fn error_summary_groups_failed_and_rejected_by_code() {
    let app = spawn_app().await;
    let (id, reject_code, reject_message) = outcome_fixture(&app).await;

    let query = "query($id: ID!, $first: Int) { bulkTask(id: $id) { errorSummary(first: $first) { code count sampleMessage } } }";
    let all = app.data(query, json!({ "id": id })).await["bulkTask"]["errorSummary"].clone();
    assert_eq!(
        all,
        json!([
            { "code": "E1", "count": 3, "sampleMessage": "boom one" },
            { "code": "E2", "count": 2, "sampleMessage": "boom two" },
            { "code": reject_code, "count": 1, "sampleMessage": reject_message },
        ])
    );
    let top =
        app.data(query, json!({ "id": id, "first": 1 })).await["bulkTask"]["errorSummary"].clone();
    assert_eq!(
        top,
        json!([{ "code": "E1", "count": 3, "sampleMessage": "boom one" }])
    );

    // A task without failures has an empty summary.
    let clean = app.create_task(2).await;
    app.report_all(&clean, json!([ok(0), skipped(1)])).await;
    let none = app.data(query, json!({ "id": clean })).await["bulkTask"]["errorSummary"].clone();
    assert_eq!(none, json!([]));

    // The summary is per task, also when read for a page of tasks.
    let both = app
        .data(
            "{ bulkTasks(first: 10) { nodes { id errorSummary { code count } } } }",
            json!({}),
        )
        .await;
    for node in both["bulkTasks"]["nodes"].as_array().unwrap() {
        let expected = if node["id"] == id.as_str() {
            json!([{ "code": "E1", "count": 3 }, { "code": "E2", "count": 2 }, { "code": reject_code, "count": 1 }])
        } else {
            json!([])
        };
        assert_eq!(node["errorSummary"], expected, "{node:#}");
    }
}

// ---------------------------------------------------------------------------
// SQL statements per request
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_page_of_tasks_with_nested_items_costs_constant_statements() {
    let app = spawn_app().await;
    for i in 0..50 {
        app.create_task(20 + i % 3).await;
    }
    let query = |n: usize| {
        format!(
            "{{ bulkTasks(first: {n}) {{ nodes {{ id counters {{ total }} items(first: 20) {{ nodes {{ id status task {{ id }} }} }} }} }} }}"
        )
    };

    let (fifty, data) = app.cost(&query(50), json!({})).await;
    let nodes = data["bulkTasks"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 50);
    for node in nodes {
        let total = node["counters"]["total"].as_i64().unwrap();
        assert!((20..=22).contains(&total), "{node:#}");
        let items = node["items"]["nodes"].as_array().unwrap();
        assert_eq!(items.len(), 20);
        for item in items {
            assert_eq!(
                item["task"]["id"], node["id"],
                "an item's task is its parent"
            );
            assert_eq!(item["status"], "PENDING");
        }
    }
    let all_items: BTreeSet<&str> = nodes
        .iter()
        .flat_map(|n| n["items"]["nodes"].as_array().unwrap())
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(all_items.len(), 1000, "items are not shared between tasks");

    let (five, data5) = app.cost(&query(5), json!({})).await;
    assert_eq!(data5["bulkTasks"]["nodes"].as_array().unwrap().len(), 5);

    eprintln!("SQL statements: {fifty} for 50 tasks with items, {five} for 5");
    assert!(
        fifty <= 4,
        "50 tasks with nested items cost {fifty} SQL statements, at most 4 expected"
    );
    assert_eq!(
        five, fifty,
        "statements depend on the page size: {five} for 5 tasks, {fifty} for 50"
    );
}
