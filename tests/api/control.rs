//! Steering a task: failure policies that stop a doomed task, pause and
//! resume, priorities and scheduled starts in claims, and deadlines.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::ops::{CANCEL_BECAUSE, id_of, numbered_items};

/// Creates a sealed task of `task_type` with `n` items and the extra
/// `CreateBulkTaskInput` fields in `extra`; returns its id.
async fn create_with(app: &TestApp, task_type: &str, n: usize, extra: Value) -> String {
    let mut input = json!({ "type": task_type, "items": numbered_items(n) });
    for (k, v) in extra.as_object().expect("an object") {
        input[k] = v.clone();
    }
    let payload = app.create(input).await;
    assert_eq!(payload["created"], true, "{payload:#}");
    id_of(&payload["task"])
}

fn failed(index: usize, code: &str, retryable: bool) -> Value {
    json!({
        "index": index, "outcome": "FAILED", "retryable": retryable,
        "error": { "code": code, "message": format!("{code} on {index}") },
    })
}

fn succeeded(index: usize) -> Value {
    json!({ "index": index, "outcome": "SUCCEEDED" })
}

/// Claims by type, as a worker of `task_type` would.
async fn claim_type(app: &TestApp, task_type: &str, limit: i64) -> Vec<Value> {
    app.claim(json!({ "types": [task_type], "limit": limit, "leaseSeconds": 60 }))
        .await
}

fn indexes(claimed: &[Value]) -> Vec<i64> {
    claimed
        .iter()
        .map(|c| c["item"]["index"].as_i64().unwrap())
        .collect()
}

fn claimed_task(claimed: &[Value]) -> Vec<String> {
    claimed.iter().map(|c| id_of(&c["item"]["task"])).collect()
}

fn in_one_hour() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()
}

// ---------------------------------------------------------------------------
// Failure policy
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_failure_ratio_waits_for_its_sample_then_stops_the_task() {
    let app = spawn_app().await;
    let policy = json!({ "failurePolicy": { "maxFailureRatio": 0.5, "minFinished": 20 } });
    let task = create_with(&app, "t.ratio", 40, policy).await;
    assert_eq!(
        app.control(&task).await["failurePolicy"],
        json!({ "maxFailedItems": null, "maxFailureRatio": 0.5, "minFinished": 20, "nonRetryableCodes": [] })
    );

    // 1 failed of 1 finished: a ratio of 1, but the sample is too small.
    app.report_all(&task, json!([failed(0, "UPSTREAM", false)]))
        .await;
    let t = app.control(&task).await;
    assert_eq!(t["status"], "RUNNING", "{t:#}");
    assert_eq!(t["error"], Value::Null);

    // 11 failed of 20 finished: above one half.
    let mut results: Vec<Value> = (1..=10).map(|i| failed(i, "UPSTREAM", false)).collect();
    results.extend((11..20).map(succeeded));
    let payload = app.report_all(&task, json!(results)).await;
    let t = &payload["task"];
    assert_eq!(t["status"], "FAILED", "{t:#}");
    assert_eq!(t["error"]["code"], "FAILURE_THRESHOLD_EXCEEDED");
    let message = t["error"]["message"].as_str().unwrap();
    assert!(message.contains("11 of 20"), "{message}");
    assert_eq!(t["error"]["details"]["threshold"], "maxFailureRatio");
    assert_eq!(t["counters"]["cancelled"], 20, "pending items cancelled");
    assert_eq!(t["counters"]["pending"], 0);

    assert!(app.claim_task(&task, 10, 60, "w").await.is_empty());
    assert!(claim_type(&app, "t.ratio", 10).await.is_empty());
    app.assert_counters_consistent(&task).await;

    let trail = app.audit_trail(&task).await;
    assert_eq!(trail[0]["action"], "failure_threshold");
    assert_eq!(trail[0]["actor"], "system");
    assert_eq!(trail[0]["details"]["cancelledItems"], 20);
}

#[tokio::test]
async fn max_failed_items_stops_the_task_and_running_items_still_report() {
    let app = spawn_app().await;
    let policy = json!({ "failurePolicy": { "maxFailedItems": 3 } });
    let task = create_with(&app, "t.count", 10, policy).await;
    let claimed = app.claim_task(&task, 5, 60, "w").await;
    assert_eq!(indexes(&claimed), [0, 1, 2, 3, 4]);
    let token = |i: usize| claimed[i]["leaseToken"].clone();
    let fail = |i: usize| {
        let mut r = failed(i, "BOOM", false);
        r["leaseToken"] = token(i);
        r
    };

    let t = &app.report_all(&task, json!([fail(0), fail(1)])).await["task"];
    assert_eq!(t["status"], "RUNNING");
    let t = &app.report_all(&task, json!([fail(2)])).await["task"];
    assert_eq!(t["status"], "FAILED");
    assert_eq!(t["error"]["code"], "FAILURE_THRESHOLD_EXCEEDED");
    assert_eq!(t["error"]["details"]["maxFailedItems"], 3);
    assert_eq!(t["counters"]["cancelled"], 5);
    assert_eq!(t["counters"]["running"], 2);

    // The two items still running may finish, as after failBulkTask.
    let done: Vec<Value> = (3..5)
        .map(|i| json!({ "index": i, "outcome": "SUCCEEDED", "leaseToken": token(i) }))
        .collect();
    let t = &app.report_all(&task, json!(done)).await["task"];
    assert_eq!(t["status"], "FAILED");
    assert_eq!(t["counters"]["succeeded"], 2);
    let thresholds = app
        .audit_trail(&task)
        .await
        .iter()
        .filter(|e| e["action"] == "failure_threshold")
        .count();
    assert_eq!(thresholds, 1);
    app.assert_counters_consistent(&task).await;
}

#[tokio::test]
async fn a_non_retryable_code_stays_failed_whatever_retryable_says() {
    let app = spawn_app().await;
    let extra =
        json!({ "maxAttempts": 3, "failurePolicy": { "nonRetryableCodes": ["BAD_ICCID"] } });
    let task = create_with(&app, "t.nonretry", 3, extra).await;
    app.report_all(
        &task,
        json!([failed(0, "BAD_ICCID", true), failed(1, "TIMEOUT", true)]),
    )
    .await;
    let items = app.items(&task).await;
    assert_eq!(items[0]["status"], "FAILED", "{:#}", items[0]);
    assert_eq!(items[1]["status"], "PENDING", "{:#}", items[1]);

    // A retry without codes leaves the non-retryable code alone ...
    app.report_all(&task, json!([failed(1, "TIMEOUT", false)]))
        .await;
    let t = app.retry(json!({ "taskId": task })).await;
    assert_eq!(t["counters"]["failed"], 1, "{t:#}");
    assert_eq!(app.items(&task).await[0]["status"], "FAILED");
    // ... a retry that names it overrides the policy.
    let t = app
        .retry(json!({ "taskId": task, "errorCodes": ["BAD_ICCID"] }))
        .await;
    assert_eq!(t["counters"]["failed"], 0, "{t:#}");
    assert_eq!(app.items(&task).await[0]["status"], "PENDING");
    app.assert_counters_consistent(&task).await;
}

#[tokio::test]
async fn failure_policies_and_steering_arguments_are_validated() {
    let app = spawn_app().await;
    // One time for both: `notBefore` at the deadline itself is refused.
    let hour = in_one_hour();
    let cases = [
        json!({ "failurePolicy": { "maxFailureRatio": 0 } }),
        json!({ "failurePolicy": { "maxFailureRatio": 1.5 } }),
        json!({ "failurePolicy": { "maxFailedItems": 0 } }),
        json!({ "failurePolicy": { "minFinished": 0 } }),
        json!({ "failurePolicy": { "nonRetryableCodes": [""] } }),
        json!({ "priority": 101 }),
        json!({ "deadline": "2001-01-01T00:00:00Z" }),
        json!({ "notBefore": hour, "deadline": hour }),
    ];
    for extra in cases {
        let mut input = json!({ "type": "t.invalid", "items": [] });
        for (k, v) in extra.as_object().unwrap() {
            input[k] = v.clone();
        }
        assert_eq!(app.create_error(input).await, "BAD_USER_INPUT", "{extra}");
    }
    let task = app.create_task(1).await;
    let body = app
        .post(
            crate::ops::SET_PRIORITY,
            json!({ "id": task, "priority": -101 }),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
}

// ---------------------------------------------------------------------------
// Pause and resume
// ---------------------------------------------------------------------------

#[tokio::test]
async fn pause_stops_claims_while_running_items_still_report() {
    let app = spawn_app().await;
    let task = app.create_typed("t.pause", 6).await;
    let claimed = app.claim_task(&task, 2, 60, "w").await;

    let t = app.pause(&task, Some("upstream maintenance")).await;
    assert_eq!(
        (t["status"].clone(), t["paused"].clone()),
        (json!("PAUSED"), json!(true))
    );
    assert!(app.claim_task(&task, 10, 60, "w").await.is_empty());
    assert!(claim_type(&app, "t.pause", 10).await.is_empty());

    let done: Vec<Value> = claimed
        .iter()
        .map(|c| json!({ "itemId": c["item"]["id"], "outcome": "SUCCEEDED", "leaseToken": c["leaseToken"] }))
        .collect();
    let t = &app.report_all(&task, json!(done)).await["task"];
    assert_eq!(t["status"], "PAUSED");
    assert_eq!(t["counters"]["succeeded"], 2);

    let t = app.resume(&task, Some("maintenance over")).await;
    assert_eq!(
        (t["status"].clone(), t["paused"].clone()),
        (json!("RUNNING"), json!(false))
    );
    assert_eq!(
        indexes(&claim_type(&app, "t.pause", 10).await),
        [2, 3, 4, 5]
    );
    app.assert_counters_consistent(&task).await;
}

#[tokio::test]
async fn expired_leases_of_a_paused_task_return_to_pending() {
    let app = spawn_app_with(|config| config.reaper_interval_ms = 50).await;
    let task = app.create_typed("t.pause_lease", 2).await;
    app.claim_task(&task, 1, 1, "w").await;
    app.pause(&task, None).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let t = app.control(&task).await;
        if t["counters"]["running"] == 0 {
            assert_eq!(t["counters"]["pending"], 2, "{t:#}");
            assert_eq!(t["status"], "PAUSED");
            break;
        }
        assert!(Instant::now() < deadline, "the lease never expired: {t:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(app.claim_task(&task, 10, 60, "w").await.is_empty());
}

#[tokio::test]
async fn cancel_and_fail_work_on_paused_tasks_and_a_stopped_task_cannot_resume() {
    let app = spawn_app().await;
    let cancelled = app.create_task(3).await;
    app.pause(&cancelled, None).await;
    let data = app
        .data(
            CANCEL_BECAUSE,
            json!({ "id": cancelled, "reason": "not needed" }),
        )
        .await;
    assert_eq!(data["cancelBulkTask"]["status"], "CANCELLED");
    let body = app
        .post(crate::ops::RESUME, json!({ "id": cancelled }))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "INVALID_STATE");

    let failed = app.create_task(3).await;
    app.pause(&failed, None).await;
    let t = app
        .fail(json!({ "id": failed, "code": "OPERATOR", "message": "stopped by hand" }))
        .await;
    assert_eq!(t["status"], "FAILED");
    assert_eq!(t["counters"]["cancelled"], 3);
}

// ---------------------------------------------------------------------------
// Priority and scheduled starts
// ---------------------------------------------------------------------------

#[tokio::test]
async fn claims_by_type_take_the_highest_priority_then_the_oldest() {
    let app = spawn_app().await;
    let oldest = create_with(&app, "t.prio", 2, json!({})).await;
    let urgent = create_with(&app, "t.prio", 2, json!({ "priority": 5 })).await;
    let newest = create_with(&app, "t.prio", 2, json!({})).await;
    let other = create_with(&app, "t.prio_other", 2, json!({ "priority": 50 })).await;
    for expected in [&urgent, &oldest, &newest] {
        let claimed = claim_type(&app, "t.prio", 2).await;
        assert_eq!(claimed_task(&claimed), [expected.clone(), expected.clone()]);
    }

    // Across several types the same order holds, and a changed priority counts at once.
    let late = create_with(&app, "t.prio", 1, json!({})).await;
    assert_eq!(app.set_priority(&late, 100).await["priority"], 100);
    let claimed = app
        .claim(json!({ "types": ["t.prio_other", "t.prio"], "limit": 3 }))
        .await;
    assert_eq!(claimed_task(&claimed), [late, other.clone(), other]);
}

#[tokio::test]
async fn items_scheduled_for_later_are_not_claimable() {
    let app = spawn_app().await;
    let later = create_with(&app, "t.later", 2, json!({ "notBefore": in_one_hour() })).await;
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let due = create_with(
        &app,
        "t.later",
        1,
        json!({ "notBefore": past, "priority": -1 }),
    )
    .await;
    assert!(app.control(&later).await["notBefore"].is_string());

    assert!(app.claim_task(&later, 10, 60, "w").await.is_empty());
    let claimed = claim_type(&app, "t.later", 10).await;
    assert_eq!(claimed_task(&claimed), [due]);
}

// ---------------------------------------------------------------------------
// Deadlines
// ---------------------------------------------------------------------------

/// Waits until `task` has an error; returns the task.
async fn until_failed(app: &TestApp, task: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let t = app.control(task).await;
        if !t["error"].is_null() {
            return t;
        }
        assert!(Instant::now() < deadline, "the task never failed: {t:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn in_one_second() -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339()
}

#[tokio::test]
async fn a_task_unfinished_at_its_deadline_fails() {
    let app = spawn_app_with(|config| config.reaper_interval_ms = 100).await;
    let task = create_with(
        &app,
        "t.deadline",
        3,
        json!({ "deadline": in_one_second() }),
    )
    .await;
    let claimed = app.claim_task(&task, 1, 60, "w").await;

    let t = until_failed(&app, &task).await;
    assert_eq!(t["status"], "FAILED");
    assert_eq!(t["error"]["code"], "DEADLINE_EXCEEDED");
    assert_eq!(t["counters"]["cancelled"], 2);
    // The running item may still report.
    let done =
        json!([{ "index": 0, "outcome": "SUCCEEDED", "leaseToken": claimed[0]["leaseToken"] }]);
    app.report_all(&task, done).await;

    let trail = app.audit_trail(&task).await;
    assert_eq!(trail[0]["action"], "deadline");
    assert_eq!(trail[0]["actor"], "system");
    app.assert_counters_consistent(&task).await;
}

/// Two server instances on one database run the deadline timer at once:
/// every overdue task is failed exactly once.
#[tokio::test]
async fn the_deadline_timer_on_two_instances_fails_each_task_once() {
    let mut database_url = String::new();
    let app = spawn_app_with(|config| {
        config.reaper_interval_ms = 20;
        database_url = config.database_url.clone();
    })
    .await;
    let mut config = bulkwatch::Config::with_database(database_url);
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.db_connections = 4;
    config.reaper_interval_ms = 20;
    let second = bulkwatch::Application::build(config)
        .await
        .expect("the second instance starts");
    tokio::spawn(second.run_until(std::future::pending()));

    let mut tasks = Vec::new();
    for _ in 0..6 {
        let extra = json!({ "deadline": in_one_second() });
        tasks.push(create_with(&app, "t.deadline2", 2, extra).await);
    }
    for task in &tasks {
        until_failed(&app, task).await;
        let deadlines = app
            .audit_trail(task)
            .await
            .iter()
            .filter(|e| e["action"] == "deadline")
            .count();
        assert_eq!(deadlines, 1, "task {task}");
        app.assert_counters_consistent(task).await;
    }
}

// ---------------------------------------------------------------------------
// Concurrency and live updates
// ---------------------------------------------------------------------------

/// Eight workers report failures at once into a task with a threshold: the
/// task fails exactly once, with one audit entry, and its counters equal its
/// item rows.
#[tokio::test]
async fn eight_workers_reporting_failures_fail_the_task_exactly_once() {
    let app = spawn_app().await;
    let policy = json!({ "failurePolicy": { "maxFailedItems": 40 } });
    let task = create_with(&app, "t.race", 400, policy).await;
    let workers = (0..8).map(|w| {
        let (app, task) = (&app, &task);
        async move {
            let mut applied = 0;
            loop {
                let claimed = app.claim_task(task, 5, 60, &format!("w{w}")).await;
                if claimed.is_empty() {
                    return applied;
                }
                let results: Vec<Value> = claimed
                    .iter()
                    .map(|c| json!({
                        "itemId": c["item"]["id"], "leaseToken": c["leaseToken"], "outcome": "FAILED",
                        "error": { "code": "UPSTREAM", "message": "down" },
                    }))
                    .collect();
                applied += app.report_all(task, json!(results)).await["applied"]
                    .as_i64()
                    .unwrap();
            }
        }
    });
    let applied: i64 = futures_util::future::join_all(workers).await.iter().sum();

    let t = app.control(&task).await;
    assert_eq!(t["error"]["code"], "FAILURE_THRESHOLD_EXCEEDED", "{t:#}");
    assert_eq!(t["counters"]["failed"], applied);
    assert!((40..400).contains(&applied), "applied {applied}");
    assert_eq!(t["counters"]["running"], 0);
    let thresholds = app
        .audit_trail(&task)
        .await
        .iter()
        .filter(|e| e["action"] == "failure_threshold")
        .count();
    assert_eq!(thresholds, 1);
    app.assert_counters_consistent(&task).await;
}

/// `bulkTaskUpdated` carries the control fields: a pause reaches watchers.
#[tokio::test]
async fn snapshots_carry_the_control_fields() {
    use crate::ws::{TRANSPORT, Ws};
    let app = spawn_app().await;
    let task = create_with(&app, "t.watch", 2, json!({ "priority": 3 })).await;
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&app.admin_key).await;
    let query = "subscription($id: ID!) { bulkTaskUpdated(id: $id) { version status paused priority deadline \
        failurePolicy { minFinished } } }";
    ws.subscribe("1", query, json!({ "id": task })).await;
    let first = ws.next_data("1").await["bulkTaskUpdated"].clone();
    assert_eq!(first["paused"], false);
    assert_eq!(first["priority"], 3);
    app.pause(&task, Some("look")).await;
    let snapshots = ws.snapshots_until("1", |t| t["paused"] == true).await;
    assert_eq!(snapshots.last().unwrap()["status"], "PAUSED");
}
