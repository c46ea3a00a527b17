//! Workers through HTTP only: claim items under a lease, renew it, report
//! with the lease token, and let the reaper take back what a worker dropped.
//! Every scenario ends by recomputing a task's counters from its item rows.
//!
//! No test relies on timing except waiting for a 1-second lease to run out,
//! and that wait polls (up to about 10 s) until the item's state changes.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_report, counters, spawn_app, spawn_app_with};
use crate::ops::{CLAIM, RENEW, REPORT, id_of, numbered_items};

// ---------------------------------------------------------------------------
// Shared helpers of this file
// ---------------------------------------------------------------------------

/// Creates a task of `task_type` with `n` items (`item-i`, `{"n": i}`); returns its id.
async fn create(
    app: &TestApp,
    task_type: &str,
    n: usize,
    max_attempts: i64,
    sealed: bool,
) -> String {
    let input = json!({ "type": task_type, "maxAttempts": max_attempts, "sealed": sealed,
                        "items": numbered_items(n) });
    id_of(&app.create(input).await["task"])
}

/// A SUCCEEDED result for a claimed item, with its lease token.
fn succeeded(claimed: &Value) -> Value {
    json!({
        "itemId": claimed["item"]["id"],
        "leaseToken": claimed["leaseToken"],
        "outcome": "SUCCEEDED",
        "result": { "done": claimed["item"]["index"] },
    })
}

/// A FAILED result for a claimed item, with its lease token.
fn failed(claimed: &Value, code: &str, retryable: bool) -> Value {
    json!({
        "itemId": claimed["item"]["id"],
        "leaseToken": claimed["leaseToken"],
        "outcome": "FAILED",
        "error": { "code": code, "message": format!("{code} happened") },
        "retryable": retryable,
    })
}

fn token(claimed: &Value) -> &str {
    claimed["leaseToken"]
        .as_str()
        .unwrap_or_else(|| panic!("no lease token: {claimed:#}"))
}

fn item_id(claimed: &Value) -> &str {
    claimed["item"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no item id: {claimed:#}"))
}

fn indexes(claimed: &[Value]) -> Vec<i64> {
    claimed
        .iter()
        .map(|c| c["item"]["index"].as_i64().unwrap())
        .collect()
}

fn time(value: &Value) -> DateTime<Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("expected a DateTime, got {value}"));
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}

/// A claimed item as the server shows it right after the claim.
fn assert_freshly_claimed(claimed: &Value, worker: &str, attempts: i64, lease_seconds: i64) {
    let item = &claimed["item"];
    assert_eq!(item["status"], json!("RUNNING"), "{claimed:#}");
    assert_eq!(item["attempts"], json!(attempts), "{claimed:#}");
    assert_eq!(item["workerId"], json!(worker), "{claimed:#}");
    assert!(
        token(claimed).len() >= 16,
        "a lease token should be long and random: {claimed:#}"
    );
    let left = (time(&item["leaseExpiresAt"]) - Utc::now()).num_milliseconds();
    let expected = lease_seconds * 1000;
    assert!(
        left > expected - 10_000 && left <= expected + 2_000,
        "leaseExpiresAt should be about {lease_seconds}s ahead, is {left}ms: {claimed:#}"
    );
    assert!(
        item["startedAt"].is_string(),
        "startedAt should be set: {claimed:#}"
    );
}

/// Polls the item until `done` holds (up to about 10 s); returns it.
async fn wait_for_item(
    app: &TestApp,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let item = app.item(id).await;
        if done(&item) {
            return item;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}: {item:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn status_is(status: &'static str) -> impl Fn(&Value) -> bool {
    move |item: &Value| item["status"] == json!(status)
}

/// A server whose reaper sweeps every 100 ms.
async fn spawn_reaping_app() -> TestApp {
    spawn_app_with(|config| config.reaper_interval_ms = 100).await
}

// ---------------------------------------------------------------------------
// Happy path
// ---------------------------------------------------------------------------

#[tokio::test]
async fn claim_renew_and_report_complete_a_task() {
    let app = spawn_app().await;
    let task = create(&app, "test.items", 5, 3, true).await;

    let first = app.claim_task(&task, 3, 60, "w1").await;
    assert_eq!(indexes(&first), [0, 1, 2], "the oldest items come first");
    for (i, c) in first.iter().enumerate() {
        assert_freshly_claimed(c, "w1", 1, 60);
        assert_eq!(c["item"]["payload"], json!({ "n": i }), "{c:#}");
        assert_eq!(
            c["item"]["clientItemId"],
            json!(format!("item-{i}")),
            "{c:#}"
        );
        assert_eq!(c["item"]["task"]["id"], json!(task), "{c:#}");
    }
    let tokens: HashSet<&str> = first.iter().map(token).collect();
    assert_eq!(tokens.len(), 3, "every claim gets its own token");

    let t = app.task(&task).await;
    assert_eq!(t["status"], json!("RUNNING"));
    assert_eq!(t["counters"], counters(&[("pending", 2), ("running", 3)]));
    // The stored item matches what the claim returned.
    assert_eq!(app.item(item_id(&first[0])).await, first[0]["item"]);
    app.assert_counters_consistent(&task).await;

    let all: Vec<&str> = first.iter().map(token).collect();
    let renewed = app.renew(&all, Some(120)).await;
    assert_eq!(renewed, json!({ "renewed": 3, "expired": [] }));

    let payload = app
        .report(&task, first.iter().map(succeeded).collect())
        .await;
    assert_report(&payload, 3, 0, &[]);
    assert_eq!(
        payload["task"]["counters"],
        counters(&[("pending", 2), ("succeeded", 3)])
    );
    let item = app.item(item_id(&first[1])).await;
    assert_eq!(item["status"], json!("SUCCEEDED"));
    assert_eq!(item["result"], json!({ "done": 1 }));
    assert_eq!(item["attempts"], json!(1));
    assert_eq!(item["workerId"], json!("w1"));
    assert_eq!(
        item["leaseExpiresAt"],
        Value::Null,
        "a finished item holds no lease: {item:#}"
    );
    assert!(item["finishedAt"].is_string(), "{item:#}");
    app.assert_counters_consistent(&task).await;

    let second = app.claim_task(&task, 10, 60, "w2").await;
    assert_eq!(indexes(&second), [3, 4]);
    for c in &second {
        assert_freshly_claimed(c, "w2", 1, 60);
    }
    let payload = app
        .report(&task, second.iter().map(succeeded).collect())
        .await;
    assert_report(&payload, 2, 0, &[]);
    assert_eq!(payload["task"]["status"], json!("COMPLETED"));
    assert_eq!(payload["task"]["counters"], counters(&[("succeeded", 5)]));

    // Nothing is left to claim; an identical repeat of a report is a duplicate.
    assert!(app.claim_task(&task, 10, 60, "w1").await.is_empty());
    let payload = app.report(&task, json!([succeeded(&first[0])])).await;
    assert_report(&payload, 0, 1, &[]);
    assert_eq!(
        app.task(&task).await["counters"],
        counters(&[("succeeded", 5)])
    );
    app.assert_counters_consistent(&task).await;
}

#[tokio::test]
async fn claim_without_lease_seconds_gets_sixty_seconds_and_no_worker_id() {
    let app = spawn_app().await;
    let task = create(&app, "test.items", 2, 3, true).await;
    let claimed = app.claim(json!({ "taskId": task, "limit": 1 })).await;
    assert_eq!(claimed.len(), 1);
    let item = &claimed[0]["item"];
    assert_eq!(item["workerId"], Value::Null, "{item:#}");
    let left = (time(&item["leaseExpiresAt"]) - Utc::now()).num_seconds();
    assert!(
        (50..=61).contains(&left),
        "default lease should be 60 s, is {left} s: {item:#}"
    );
    app.assert_counters_consistent(&task).await;
}

// ---------------------------------------------------------------------------
// Lease tokens on reports
// ---------------------------------------------------------------------------

#[tokio::test]
async fn foreign_missing_and_unknown_tokens_are_lease_mismatch_and_change_nothing() {
    let app = spawn_app().await;
    let task = create(&app, "test.items", 3, 3, true).await;
    let claimed = app.claim_task(&task, 2, 60, "w1").await;
    assert_eq!(indexes(&claimed), [0, 1]);
    let (a, b) = (&claimed[0], &claimed[1]);

    let mut foreign = succeeded(a);
    foreign["leaseToken"] = b["leaseToken"].clone();
    let mut missing = succeeded(a);
    missing.as_object_mut().unwrap().remove("leaseToken");
    let mut unknown = succeeded(b);
    unknown["leaseToken"] = json!("lt_00000000000000000000000000000000");
    let mut null_token = succeeded(b);
    null_token["leaseToken"] = Value::Null;
    // Item 2 was never claimed: it holds no lease, so a token on it is wrong too.
    let unleased = json!({ "index": 2, "leaseToken": token(a), "outcome": "SUCCEEDED" });

    let payload = app
        .report(
            &task,
            json!([foreign, missing, unknown, null_token, unleased]),
        )
        .await;
    assert_report(
        &payload,
        0,
        0,
        &[
            (0, "LEASE_MISMATCH"),
            (1, "LEASE_MISMATCH"),
            (2, "LEASE_MISMATCH"),
            (3, "LEASE_MISMATCH"),
            (4, "LEASE_MISMATCH"),
        ],
    );
    assert_eq!(
        payload["task"]["counters"],
        counters(&[("pending", 1), ("running", 2)])
    );
    for c in [a, b] {
        let item = app.item(item_id(c)).await;
        assert_eq!(item, c["item"], "a refused report changes nothing");
    }
    assert_eq!(app.items(&task).await[2]["status"], json!("PENDING"));
    // The lease is still alive: renewing it works.
    assert_eq!(
        app.renew(&[token(a), token(b)], None).await["renewed"],
        json!(2)
    );
    app.assert_counters_consistent(&task).await;

    // A mixed batch applies the good results and refuses only the bad ones.
    let mut wrong = succeeded(b);
    wrong["leaseToken"] = a["leaseToken"].clone();
    let payload = app.report(&task, json!([succeeded(a), wrong])).await;
    assert_report(&payload, 1, 0, &[(1, "LEASE_MISMATCH")]);
    assert_eq!(
        payload["task"]["counters"],
        counters(&[("pending", 1), ("running", 1), ("succeeded", 1)])
    );
    assert_eq!(app.item(item_id(b)).await["status"], json!("RUNNING"));
    let payload = app.report(&task, json!([succeeded(b)])).await;
    assert_report(&payload, 1, 0, &[]);
    app.assert_counters_consistent(&task).await;
}

#[tokio::test]
async fn a_stale_token_after_expiry_and_reclaim_is_lease_mismatch() {
    let app = spawn_reaping_app().await;
    let task = create(&app, "test.items", 1, 3, true).await;
    let first = app.claim_task(&task, 1, 1, "slow").await;
    assert_eq!(first.len(), 1);
    assert_freshly_claimed(&first[0], "slow", 1, 1);
    let id = item_id(&first[0]).to_owned();

    let item = wait_for_item(&app, &id, "the lease expires", status_is("PENDING")).await;
    assert_eq!(item["error"]["code"], json!("LEASE_EXPIRED"), "{item:#}");
    assert_eq!(item["leaseExpiresAt"], Value::Null, "{item:#}");
    app.assert_counters_consistent(&task).await;

    // The slow worker reports after expiry, before anyone re-claimed: refused.
    let payload = app.report(&task, json!([succeeded(&first[0])])).await;
    assert_report(&payload, 0, 0, &[(0, "LEASE_MISMATCH")]);
    assert_eq!(app.item(&id).await["status"], json!("PENDING"));

    let second = app.claim_task(&task, 1, 60, "fast").await;
    assert_eq!(second.len(), 1);
    assert_eq!(item_id(&second[0]), id);
    assert_freshly_claimed(&second[0], "fast", 2, 60);
    assert_ne!(
        token(&second[0]),
        token(&first[0]),
        "a new claim gets a new token"
    );

    // The slow worker's report and renewal are refused; the item stays with the fast one.
    let payload = app.report(&task, json!([succeeded(&first[0])])).await;
    assert_report(&payload, 0, 0, &[(0, "LEASE_MISMATCH")]);
    assert_eq!(payload["task"]["counters"], counters(&[("running", 1)]));
    let renewed = app.renew(&[token(&first[0])], Some(60)).await;
    assert_eq!(
        renewed,
        json!({ "renewed": 0, "expired": [token(&first[0])] })
    );
    let item = app.item(&id).await;
    assert_eq!(item["status"], json!("RUNNING"));
    assert_eq!(item["workerId"], json!("fast"));
    app.assert_counters_consistent(&task).await;

    let mut fast = succeeded(&second[0]);
    fast["result"] = json!({ "by": "fast" });
    let payload = app.report(&task, json!([fast])).await;
    assert_report(&payload, 1, 0, &[]);
    assert_eq!(payload["task"]["status"], json!("COMPLETED"));
    assert_eq!(app.item(&id).await["result"], json!({ "by": "fast" }));
    // The slow worker's conflicting result for the now final item is refused as well.
    let payload = app.report(&task, json!([succeeded(&first[0])])).await;
    assert_eq!(payload["applied"], json!(0), "{payload:#}");
    assert_eq!(
        payload["problems"].as_array().unwrap().len(),
        1,
        "{payload:#}"
    );
    app.assert_counters_consistent(&task).await;
}

// ---------------------------------------------------------------------------
// Expiry and retries
// ---------------------------------------------------------------------------

#[tokio::test]
async fn expired_leases_go_back_to_pending_then_fail_with_lease_expired_after_the_last_attempt() {
    let app = spawn_reaping_app().await;
    let task = create(&app, "test.items", 2, 2, true).await;

    // Attempt 1 of item 0 runs out.
    let first = app.claim_task(&task, 1, 1, "w1").await;
    assert_eq!(indexes(&first), [0]);
    let id = item_id(&first[0]).to_owned();
    let item = wait_for_item(&app, &id, "attempt 1 expires", status_is("PENDING")).await;
    assert_eq!(item["attempts"], json!(1), "{item:#}");
    assert_eq!(
        item["error"]["code"],
        json!("LEASE_EXPIRED"),
        "the expiry is kept as last error: {item:#}"
    );
    assert_eq!(item["leaseExpiresAt"], Value::Null, "{item:#}");
    assert_eq!(item["finishedAt"], Value::Null, "{item:#}");
    let t = app.task(&task).await;
    assert_eq!(t["counters"], counters(&[("pending", 2)]));
    let renewed = app.renew(&[token(&first[0])], None).await;
    assert_eq!(
        renewed,
        json!({ "renewed": 0, "expired": [token(&first[0])] })
    );
    app.assert_counters_consistent(&task).await;

    // Attempt 2 (the last) runs out too: FAILED for good.
    let second = app.claim_task(&task, 1, 1, "w2").await;
    assert_eq!(
        indexes(&second),
        [0],
        "the returned item is the oldest pending one again"
    );
    assert_freshly_claimed(&second[0], "w2", 2, 1);
    let item = wait_for_item(&app, &id, "attempt 2 expires", status_is("FAILED")).await;
    assert_eq!(item["attempts"], json!(2), "{item:#}");
    assert_eq!(item["error"]["code"], json!("LEASE_EXPIRED"), "{item:#}");
    assert!(
        item["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{item:#}"
    );
    assert!(item["finishedAt"].is_string(), "{item:#}");
    assert_eq!(item["leaseExpiresAt"], Value::Null, "{item:#}");
    assert_eq!(
        app.task(&task).await["counters"],
        counters(&[("pending", 1), ("failed", 1)])
    );
    app.assert_counters_consistent(&task).await;

    // The failed item is never handed out again; the other one is.
    let third = app.claim_task(&task, 10, 60, "w3").await;
    assert_eq!(indexes(&third), [1]);
    let payload = app.report(&task, json!([succeeded(&third[0])])).await;
    assert_report(&payload, 1, 0, &[]);
    assert_eq!(payload["task"]["status"], json!("COMPLETED_WITH_FAILURES"));
    assert_eq!(
        payload["task"]["counters"],
        counters(&[("succeeded", 1), ("failed", 1)])
    );
    assert!(app.claim_task(&task, 10, 60, "w3").await.is_empty());
    app.assert_counters_consistent(&task).await;

    // An operator retries the LEASE_EXPIRED failure: it is claimable again with fresh attempts.
    let retry =
        "mutation($input: RetryFailedItemsInput!) { retryFailedItems(input: $input) { status } }";
    app.data(
        retry,
        json!({ "input": { "taskId": task, "errorCodes": ["LEASE_EXPIRED"] } }),
    )
    .await;
    let again = app.claim_task(&task, 10, 60, "w4").await;
    assert_eq!(indexes(&again), [0]);
    assert_freshly_claimed(&again[0], "w4", 1, 60);
    let payload = app.report(&task, json!([succeeded(&again[0])])).await;
    assert_report(&payload, 1, 0, &[]);
    assert_eq!(payload["task"]["status"], json!("COMPLETED"));
    assert_eq!(payload["task"]["counters"], counters(&[("succeeded", 2)]));
    app.assert_counters_consistent(&task).await;
}

#[tokio::test]
async fn retryable_failures_return_items_to_pending_until_attempts_run_out() {
    let app = spawn_app().await;
    let task = create(&app, "test.items", 2, 2, true).await;
    let first = app.claim_task(&task, 2, 60, "w1").await;
    assert_eq!(indexes(&first), [0, 1]);

    // Item 0 fails retryably (attempt 1 of 2), item 1 fails for good.
    let payload = app
        .report(
            &task,
            json!([
                failed(&first[0], "TIMEOUT", true),
                failed(&first[1], "BAD_TARGET", false)
            ]),
        )
        .await;
    assert_report(&payload, 2, 0, &[]);
    assert_eq!(
        payload["task"]["counters"],
        counters(&[("pending", 1), ("failed", 1)])
    );
    assert_eq!(payload["task"]["status"], json!("RUNNING"));
    let item = app.item(item_id(&first[0])).await;
    assert_eq!(item["status"], json!("PENDING"), "{item:#}");
    assert_eq!(item["attempts"], json!(1), "{item:#}");
    assert_eq!(
        item["error"],
        json!({ "code": "TIMEOUT", "message": "TIMEOUT happened", "details": null }),
        "{item:#}"
    );
    assert_eq!(
        item["leaseExpiresAt"],
        Value::Null,
        "the lease is gone: {item:#}"
    );
    assert_eq!(item["finishedAt"], Value::Null, "{item:#}");
    let item = app.item(item_id(&first[1])).await;
    assert_eq!(item["status"], json!("FAILED"), "{item:#}");
    assert_eq!(item["error"]["code"], json!("BAD_TARGET"), "{item:#}");
    app.assert_counters_consistent(&task).await;

    // The old token is dead: renewal names it, and a second report with it is refused.
    let renewed = app.renew(&[token(&first[0])], None).await;
    assert_eq!(
        renewed,
        json!({ "renewed": 0, "expired": [token(&first[0])] })
    );
    let payload = app.report(&task, json!([succeeded(&first[0])])).await;
    assert_report(&payload, 0, 0, &[(0, "LEASE_MISMATCH")]);
    assert_eq!(
        payload["task"]["counters"],
        counters(&[("pending", 1), ("failed", 1)])
    );

    // Attempt 2 (the last) fails retryably again: now it is final.
    let second = app.claim_task(&task, 2, 60, "w2").await;
    assert_eq!(indexes(&second), [0], "only the retried item is pending");
    assert_freshly_claimed(&second[0], "w2", 2, 60);
    let payload = app
        .report(&task, json!([failed(&second[0], "TIMEOUT_AGAIN", true)]))
        .await;
    assert_report(&payload, 1, 0, &[]);
    assert_eq!(payload["task"]["counters"], counters(&[("failed", 2)]));
    assert_eq!(payload["task"]["status"], json!("FAILED"));
    let item = app.item(item_id(&second[0])).await;
    assert_eq!(item["status"], json!("FAILED"), "{item:#}");
    assert_eq!(item["attempts"], json!(2), "{item:#}");
    assert_eq!(item["error"]["code"], json!("TIMEOUT_AGAIN"), "{item:#}");
    assert!(app.claim_task(&task, 2, 60, "w3").await.is_empty());
    app.assert_counters_consistent(&task).await;
}

// ---------------------------------------------------------------------------
// Which tasks give items
// ---------------------------------------------------------------------------

#[tokio::test]
async fn claims_by_type_take_the_oldest_tasks_first_and_leave_other_types_alone() {
    let app = spawn_app().await;
    // The oldest alpha tasks are cancelled or failed: they never give items.
    let cancelled = create(&app, "t.alpha", 2, 3, true).await;
    app.cancel(&cancelled).await;
    let aborted = create(&app, "t.alpha", 2, 3, true).await;
    app.fail(json!({ "id": aborted, "code": "ABORTED", "message": "stop" }))
        .await;
    let a = create(&app, "t.alpha", 3, 3, true).await;
    let b = create(&app, "t.beta", 2, 3, true).await;
    let c = create(&app, "t.alpha", 4, 3, true).await;

    // One claim spans two tasks: all of the oldest, then the next.
    let claimed = app
        .claim(json!({ "types": ["t.alpha"], "limit": 5, "leaseSeconds": 60, "workerId": "w" }))
        .await;
    let got: Vec<(String, i64)> = claimed
        .iter()
        .map(|x| {
            (
                x["item"]["task"]["id"].as_str().unwrap().to_owned(),
                x["item"]["index"].as_i64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, i64)> = [(&a, 0), (&a, 1), (&a, 2), (&c, 0), (&c, 1)]
        .iter()
        .map(|(t, i)| ((*t).clone(), *i))
        .collect();
    assert_eq!(got, want);
    for x in &claimed {
        assert_freshly_claimed(x, "w", 1, 60);
    }
    assert_eq!(app.task(&a).await["counters"], counters(&[("running", 3)]));
    assert_eq!(
        app.task(&c).await["counters"],
        counters(&[("pending", 2), ("running", 2)])
    );
    let beta = app.task(&b).await;
    assert_eq!(
        beta["counters"],
        counters(&[("pending", 2)]),
        "another type is untouched"
    );
    assert_eq!(beta["status"], json!("QUEUED"));
    assert_eq!(
        app.task(&cancelled).await["counters"],
        counters(&[("cancelled", 2)])
    );
    assert_eq!(
        app.task(&aborted).await["counters"],
        counters(&[("cancelled", 2)])
    );

    // Several types: unknown ones give nothing, the rest comes from the next task.
    let claimed = app
        .claim(json!({ "types": ["t.gamma", "t.alpha"], "limit": 10 }))
        .await;
    let got: Vec<(String, i64)> = claimed
        .iter()
        .map(|x| {
            (
                x["item"]["task"]["id"].as_str().unwrap().to_owned(),
                x["item"]["index"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, [(c.clone(), 2), (c.clone(), 3)]);
    assert!(
        app.claim(json!({ "types": ["t.alpha"], "limit": 10 }))
            .await
            .is_empty()
    );
    assert!(
        app.claim(json!({ "types": ["t.gamma"], "limit": 10 }))
            .await
            .is_empty()
    );

    let beta_claims = app.claim(json!({ "types": ["t.beta"], "limit": 1 })).await;
    assert_eq!(beta_claims.len(), 1);
    assert_eq!(beta_claims[0]["item"]["task"]["id"], json!(b));
    assert_eq!(beta_claims[0]["item"]["index"], json!(0));

    // By id, a cancelled or failed task gives nothing either.
    assert!(app.claim_task(&cancelled, 10, 60, "w").await.is_empty());
    assert!(app.claim_task(&aborted, 10, 60, "w").await.is_empty());
    for t in [&cancelled, &aborted, &a, &b, &c] {
        app.assert_counters_consistent(t).await;
    }
}

#[tokio::test]
async fn an_unsealed_task_gives_items_as_they_are_appended() {
    let app = spawn_app().await;
    let task = create(&app, "t.stream", 2, 3, false).await;

    let first = app
        .claim(json!({ "types": ["t.stream"], "limit": 10, "workerId": "w" }))
        .await;
    assert_eq!(indexes(&first), [0, 1]);
    let payload = app
        .report(&task, first.iter().map(succeeded).collect())
        .await;
    assert_report(&payload, 2, 0, &[]);
    assert_eq!(
        payload["task"]["status"],
        json!("RUNNING"),
        "an unsealed task is not complete"
    );
    assert_eq!(payload["task"]["sealed"], json!(false));
    assert!(app.claim_task(&task, 10, 60, "w").await.is_empty());
    app.assert_counters_consistent(&task).await;

    let items = json!([{ "clientItemId": "late-0", "payload": {} }, { "clientItemId": "late-1", "payload": {} }]);
    let appended = app.append(&task, items, None).await;
    assert_eq!(appended["rejected"], json!([]));
    let second = app.claim_task(&task, 10, 60, "w").await;
    assert_eq!(indexes(&second), [2, 3]);
    assert_eq!(second[0]["item"]["clientItemId"], json!("late-0"));
    let payload = app
        .report(&task, second.iter().map(succeeded).collect())
        .await;
    assert_report(&payload, 2, 0, &[]);
    assert_eq!(payload["task"]["status"], json!("RUNNING"));

    let sealed = app.seal(&task).await;
    assert_eq!(sealed["status"], json!("COMPLETED"));
    assert_eq!(
        app.task(&task).await["counters"],
        counters(&[("succeeded", 4)])
    );
    app.assert_counters_consistent(&task).await;
}

#[tokio::test]
async fn a_deleted_task_is_not_found_by_id_and_gives_nothing_by_type() {
    let app = spawn_app().await;
    let task = create(&app, "t.gone", 2, 3, true).await;
    app.delete(&task).await;
    assert_eq!(
        app.claim_error(json!({ "taskId": task, "limit": 1 })).await,
        "NOT_FOUND"
    );
    assert!(
        app.claim(json!({ "types": ["t.gone"], "limit": 1 }))
            .await
            .is_empty()
    );
}

// ---------------------------------------------------------------------------
// Cancel during work
// ---------------------------------------------------------------------------

#[tokio::test]
async fn cancel_during_work_stops_claims_and_lets_running_items_finish() {
    let app = spawn_app().await;
    let task = create(&app, "t.cancel", 6, 3, true).await;
    let claimed = app.claim_task(&task, 3, 60, "w").await;
    assert_eq!(indexes(&claimed), [0, 1, 2]);

    let cancelled = app.cancel(&task).await;
    assert_eq!(cancelled["status"], json!("CANCELLING"));
    let t = app.task(&task).await;
    assert_eq!(t["cancelRequested"], json!(true));
    assert_eq!(t["counters"], counters(&[("running", 3), ("cancelled", 3)]));
    app.assert_counters_consistent(&task).await;

    // Claims stop at once, by id and by type.
    assert!(app.claim_task(&task, 10, 60, "w").await.is_empty());
    assert!(
        app.claim(json!({ "types": ["t.cancel"], "limit": 10 }))
            .await
            .is_empty()
    );

    // Running items may still report, and are counted.
    let payload = app.report(&task, json!([succeeded(&claimed[0])])).await;
    assert_report(&payload, 1, 0, &[]);
    assert_eq!(payload["task"]["status"], json!("CANCELLING"));
    assert_eq!(
        payload["task"]["counters"],
        counters(&[("running", 2), ("succeeded", 1), ("cancelled", 3)])
    );
    let renewed = app
        .renew(&[token(&claimed[1]), token(&claimed[2])], Some(60))
        .await;
    assert_eq!(
        renewed["renewed"],
        json!(2),
        "live leases of a cancelling task can still be renewed: {renewed:#}"
    );
    // A stale token is still refused while cancelling.
    let mut wrong = succeeded(&claimed[1]);
    wrong["leaseToken"] = claimed[2]["leaseToken"].clone();
    let payload = app.report(&task, json!([wrong])).await;
    assert_report(&payload, 0, 0, &[(0, "LEASE_MISMATCH")]);
    app.assert_counters_consistent(&task).await;

    // A final failure counts as failed; a retryable one cannot run again, so it is cancelled.
    let payload = app
        .report(&task, json!([failed(&claimed[1], "BROKEN", false)]))
        .await;
    assert_report(&payload, 1, 0, &[]);
    assert_eq!(payload["task"]["status"], json!("CANCELLING"));
    let payload = app
        .report(&task, json!([failed(&claimed[2], "TIMEOUT", true)]))
        .await;
    assert_report(&payload, 1, 0, &[]);
    assert_eq!(payload["task"]["status"], json!("CANCELLED"));
    assert_eq!(
        payload["task"]["counters"],
        counters(&[("succeeded", 1), ("failed", 1), ("cancelled", 4)])
    );
    let statuses: Vec<Value> = app
        .items(&task)
        .await
        .iter()
        .map(|i| i["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        [
            json!("SUCCEEDED"),
            json!("FAILED"),
            json!("CANCELLED"),
            json!("CANCELLED"),
            json!("CANCELLED"),
            json!("CANCELLED")
        ]
    );
    assert!(app.claim_task(&task, 10, 60, "w").await.is_empty());
    app.assert_counters_consistent(&task).await;
}

#[tokio::test]
async fn an_expired_lease_of_a_cancelled_task_ends_cancelled() {
    let app = spawn_reaping_app().await;
    let task = create(&app, "t.cancel", 3, 3, true).await;
    let claimed = app.claim_task(&task, 1, 1, "w").await;
    assert_eq!(indexes(&claimed), [0]);
    let cancelled = app.cancel(&task).await;
    assert_eq!(cancelled["status"], json!("CANCELLING"));

    let item = wait_for_item(&app, item_id(&claimed[0]), "the lease expires", |i| {
        i["status"] != json!("RUNNING")
    })
    .await;
    assert_eq!(item["status"], json!("CANCELLED"), "{item:#}");
    assert_eq!(item["leaseExpiresAt"], Value::Null, "{item:#}");
    let t = app.task(&task).await;
    assert_eq!(t["status"], json!("CANCELLED"));
    assert_eq!(t["counters"], counters(&[("cancelled", 3)]));
    let payload = app.report(&task, json!([succeeded(&claimed[0])])).await;
    assert_eq!(
        payload["applied"],
        json!(0),
        "a late report changes nothing: {payload:#}"
    );
    assert_eq!(payload["task"]["counters"], counters(&[("cancelled", 3)]));
    app.assert_counters_consistent(&task).await;
}

// ---------------------------------------------------------------------------
// renewLeases
// ---------------------------------------------------------------------------

#[tokio::test]
async fn renew_leases_extends_live_leases_and_names_the_dead_ones() {
    let app = spawn_app().await;
    let task = create(&app, "test.items", 3, 3, true).await;
    let claimed = app.claim_task(&task, 3, 30, "w").await;
    assert_eq!(claimed.len(), 3);
    let before: Vec<DateTime<Utc>> = claimed
        .iter()
        .map(|c| time(&c["item"]["leaseExpiresAt"]))
        .collect();
    let all: Vec<&str> = claimed.iter().map(token).collect();

    let renewed = app.renew(&all, Some(600)).await;
    assert_eq!(renewed, json!({ "renewed": 3, "expired": [] }));
    for (c, was) in claimed.iter().zip(&before) {
        let item = app.item(item_id(c)).await;
        let now = time(&item["leaseExpiresAt"]);
        assert!(
            now > *was,
            "leaseExpiresAt should move later: {was} -> {now}"
        );
        let left = (now - Utc::now()).num_seconds();
        assert!(
            (590..=601).contains(&left),
            "about 600 s ahead, is {left}: {item:#}"
        );
        assert_eq!(item["status"], json!("RUNNING"));
        assert_eq!(
            item["attempts"],
            json!(1),
            "renewing is not a new attempt: {item:#}"
        );
    }
    app.assert_counters_consistent(&task).await;

    // Without leaseSeconds a renewal gives the default 60 s.
    let renewed = app.renew(&all[..1], None).await;
    assert_eq!(renewed, json!({ "renewed": 1, "expired": [] }));
    let left =
        (time(&app.item(item_id(&claimed[0])).await["leaseExpiresAt"]) - Utc::now()).num_seconds();
    assert!((50..=61).contains(&left), "about 60 s ahead, is {left}");

    // Reported and unknown tokens come back as expired, in the order given.
    let payload = app.report(&task, json!([succeeded(&claimed[0])])).await;
    assert_report(&payload, 1, 0, &[]);
    let unknown = "lt_ffffffffffffffffffffffffffffffff";
    let renewed = app
        .renew(&[all[0], all[1], unknown, all[2]], Some(60))
        .await;
    assert_eq!(
        renewed,
        json!({ "renewed": 2, "expired": [all[0], unknown] })
    );
    assert_eq!(
        app.renew(&[], Some(60)).await,
        json!({ "renewed": 0, "expired": [] })
    );
    // The reported item did not get its lease back.
    let item = app.item(item_id(&claimed[0])).await;
    assert_eq!(item["status"], json!("SUCCEEDED"));
    assert_eq!(item["leaseExpiresAt"], Value::Null, "{item:#}");
    app.assert_counters_consistent(&task).await;
}

// ---------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------

/// Claims batches of 7 until a claim returns nothing, reporting each batch;
/// returns every (item id, index) it was given.
async fn claim_loop(app: &TestApp, task: &str, worker: String) -> Vec<(String, i64)> {
    let mut got = Vec::new();
    loop {
        let batch = app.claim_task(task, 7, 60, &worker).await;
        if batch.is_empty() {
            return got;
        }
        assert!(
            batch.len() <= 7,
            "a claim returned more than its limit: {}",
            batch.len()
        );
        for c in &batch {
            assert_eq!(c["item"]["workerId"], json!(worker), "{c:#}");
            got.push((item_id(c).to_owned(), c["item"]["index"].as_i64().unwrap()));
        }
        let payload = app
            .report(task, batch.iter().map(succeeded).collect())
            .await;
        assert_report(&payload, batch.len() as i64, 0, &[]);
    }
}

#[tokio::test]
async fn eight_concurrent_workers_never_share_an_item_and_claim_each_exactly_once() {
    let app = spawn_app().await;
    let task = create(&app, "t.concurrent", 200, 3, true).await;

    let loops = (0..8).map(|w| claim_loop(&app, &task, format!("worker-{w}")));
    let results = futures_util::future::join_all(loops).await;

    let mut owner: HashMap<String, usize> = HashMap::new();
    for (w, got) in results.iter().enumerate() {
        for (id, _) in got {
            if let Some(other) = owner.insert(id.clone(), w) {
                panic!("item {id} was handed to worker-{other} and worker-{w}");
            }
        }
    }
    let mut all: Vec<i64> = results.iter().flatten().map(|(_, i)| *i).collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..200).collect::<Vec<i64>>(),
        "every item claimed exactly once"
    );
    let busy = results.iter().filter(|r| !r.is_empty()).count();
    eprintln!(
        "{busy} of 8 workers got items: {:?}",
        results.iter().map(Vec::len).collect::<Vec<_>>()
    );

    let t = app.task(&task).await;
    assert_eq!(t["status"], json!("COMPLETED"));
    assert_eq!(t["counters"], counters(&[("succeeded", 200)]));
    app.assert_counters_consistent(&task).await;
}

// ---------------------------------------------------------------------------
// Limits and bad input
// ---------------------------------------------------------------------------

#[tokio::test]
async fn claim_and_renew_refuse_bad_limits_and_input() {
    let app = spawn_app().await;
    let task = create(&app, "t.limits", 3, 3, true).await;

    assert_eq!(
        app.claim_error(json!({ "taskId": task, "limit": 0 })).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.claim_error(json!({ "taskId": task, "limit": -1 }))
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.claim_error(json!({ "taskId": task, "limit": 1001 }))
            .await,
        "LIMIT_EXCEEDED"
    );
    assert_eq!(
        app.claim_error(json!({ "taskId": task, "limit": 1, "leaseSeconds": 0 }))
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.claim_error(json!({ "taskId": task, "limit": 1, "leaseSeconds": 3601 }))
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.claim_error(json!({ "limit": 1 })).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.claim_error(json!({ "types": [], "limit": 1 })).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.claim_error(json!({ "taskId": "not-an-id", "limit": 1 }))
            .await,
        "BAD_USER_INPUT"
    );
    let long_worker = "w".repeat(300);
    assert_eq!(
        app.claim_error(json!({ "taskId": task, "limit": 1, "workerId": long_worker }))
            .await,
        "BAD_USER_INPUT"
    );

    let renew_error = |input: Value| {
        let app = &app;
        async move { app.error_code(RENEW, json!({ "input": input })).await }
    };
    assert_eq!(
        renew_error(json!({ "leaseTokens": ["lt_x"], "leaseSeconds": 0 })).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        renew_error(json!({ "leaseTokens": ["lt_x"], "leaseSeconds": 3601 })).await,
        "BAD_USER_INPUT"
    );
    let many: Vec<String> = (0..1001).map(|i| format!("lt_{i}")).collect();
    assert_eq!(
        renew_error(json!({ "leaseTokens": many })).await,
        "LIMIT_EXCEEDED"
    );

    // Nothing of the refused claims happened.
    let t = app.task(&task).await;
    assert_eq!(t["counters"], counters(&[("pending", 3)]));
    assert_eq!(t["status"], json!("QUEUED"));
    app.assert_counters_consistent(&task).await;

    // The bounds themselves are accepted.
    let claimed = app
        .claim(json!({ "taskId": task, "limit": 1000, "leaseSeconds": 3600 }))
        .await;
    assert_eq!(indexes(&claimed), [0, 1, 2]);
    let left = (time(&claimed[0]["item"]["leaseExpiresAt"]) - Utc::now()).num_seconds();
    assert!(
        (3590..=3601).contains(&left),
        "about an hour ahead, is {left}"
    );
    app.assert_counters_consistent(&task).await;
}

/// POSTs a GraphQL operation to `url`; it must succeed.
async fn gql(client: &reqwest::Client, url: &str, query: &str, variables: Value) -> Value {
    let body: Value = client
        .post(url)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("a JSON response");
    assert!(
        body.get("errors").is_none(),
        "unexpected errors from {url}: {body:#}"
    );
    body["data"].clone()
}

/// Like `claim_loop`, against any server instance.
async fn claim_loop_at(
    client: &reqwest::Client,
    url: &str,
    task: &str,
    worker: String,
) -> Vec<(String, i64)> {
    let mut got = Vec::new();
    loop {
        let input = json!({ "taskId": task, "limit": 7, "leaseSeconds": 60, "workerId": worker });
        let data = gql(client, url, CLAIM, json!({ "input": input })).await;
        let batch = data["claimTaskItems"]["items"].as_array().unwrap().clone();
        if batch.is_empty() {
            return got;
        }
        assert!(
            batch.len() <= 7,
            "a claim returned more than its limit: {}",
            batch.len()
        );
        for c in &batch {
            got.push((item_id(c).to_owned(), c["item"]["index"].as_i64().unwrap()));
        }
        let results: Vec<Value> = batch.iter().map(succeeded).collect();
        let input = json!({ "taskId": task, "results": results });
        let payload =
            gql(client, url, REPORT, json!({ "input": input })).await["reportItemResults"].clone();
        assert_report(&payload, batch.len() as i64, 0, &[]);
    }
}

/// Eight workers, four on each of two server instances sharing one database.
/// Several instances are a PostgreSQL deployment; SQLite (one writer) is not.
#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn eight_workers_on_two_server_instances_never_share_an_item() {
    crate::helpers::require_postgres();
    let mut database_url = String::new();
    let app = spawn_app_with(|config| database_url = config.database_url.clone()).await;
    let mut config = bulkwatch::Config::with_database(database_url);
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.db_connections = 4;
    let second = bulkwatch::Application::build(config)
        .await
        .expect("the second instance starts");
    let second_url = format!("http://127.0.0.1:{}/graphql", second.port());
    tokio::spawn(second.run_until(std::future::pending()));
    let first_url = app.url("/graphql");

    let task = create(&app, "t.concurrent", 200, 3, true).await;
    let loops = (0..8).map(|w| {
        let url = if w % 2 == 0 {
            first_url.clone()
        } else {
            second_url.clone()
        };
        let (client, task) = (&app.client, &task);
        async move { claim_loop_at(client, &url, task, format!("worker-{w}")).await }
    });
    let results = futures_util::future::join_all(loops).await;

    let mut owner: HashMap<String, usize> = HashMap::new();
    for (w, got) in results.iter().enumerate() {
        for (id, _) in got {
            if let Some(other) = owner.insert(id.clone(), w) {
                panic!("item {id} was handed to worker-{other} and worker-{w}");
            }
        }
    }
    let mut all: Vec<i64> = results.iter().flatten().map(|(_, i)| *i).collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..200).collect::<Vec<i64>>(),
        "every item claimed exactly once"
    );
    let per_instance = |parity: usize| {
        results
            .iter()
            .enumerate()
            .filter(|(w, _)| w % 2 == parity)
            .map(|(_, r)| r.len())
            .sum::<usize>()
    };
    eprintln!(
        "first instance handed out {}, second {}",
        per_instance(0),
        per_instance(1)
    );

    let t = app.task(&task).await;
    assert_eq!(t["status"], json!("COMPLETED"));
    assert_eq!(t["counters"], counters(&[("succeeded", 200)]));
    app.assert_counters_consistent(&task).await;
}

// ---------------------------------------------------------------------------
// Tenancy and scopes
// ---------------------------------------------------------------------------

#[tokio::test]
async fn another_organisation_can_neither_claim_nor_renew_nor_report() {
    let app = spawn_app().await;
    let task = create(&app, "t.tenant", 3, 3, true).await;
    let mine = app.claim_task(&task, 1, 60, "mine").await;
    assert_eq!(indexes(&mine), [0]);
    let before = app.item(item_id(&mine[0])).await;

    let other = app.key_for("other", "tasks:read,tasks:write,items:report");
    let as_other = |query: String, variables: Value| {
        let (app, other) = (&app, &other);
        async move { app.post_as(Some(other), &query, variables).await }
    };
    let body = as_other(
        CLAIM.to_owned(),
        json!({ "input": { "taskId": task, "limit": 10 } }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        json!("NOT_FOUND"),
        "{body:#}"
    );
    let body = as_other(
        CLAIM.to_owned(),
        json!({ "input": { "types": ["t.tenant"], "limit": 10 } }),
    )
    .await;
    assert_eq!(
        body["data"]["claimTaskItems"]["items"],
        json!([]),
        "{body:#}"
    );
    let body = as_other(
        RENEW.to_owned(),
        json!({ "input": { "leaseTokens": [token(&mine[0])], "leaseSeconds": 3600 } }),
    )
    .await;
    assert_eq!(
        body["data"]["renewLeases"],
        json!({ "renewed": 0, "expired": [token(&mine[0])] }),
        "{body:#}"
    );
    let input = json!({ "taskId": task, "results": [succeeded(&mine[0])] });
    let body = as_other(REPORT.to_owned(), json!({ "input": input })).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        json!("NOT_FOUND"),
        "{body:#}"
    );

    assert_eq!(
        app.item(item_id(&mine[0])).await,
        before,
        "the other organisation changed nothing"
    );
    assert_eq!(
        app.task(&task).await["counters"],
        counters(&[("pending", 2), ("running", 1)])
    );
    app.assert_counters_consistent(&task).await;
}

#[tokio::test]
async fn claiming_and_renewing_need_the_items_report_scope() {
    let app = spawn_app().await;
    let task = create(&app, "t.scope", 2, 3, true).await;
    let mine = app.claim_task(&task, 1, 60, "mine").await;
    let reader = app.key_for("default", "tasks:read");
    let body = app
        .post_as(
            Some(&reader),
            CLAIM,
            json!({ "input": { "taskId": task, "limit": 1 } }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        json!("FORBIDDEN"),
        "{body:#}"
    );
    let input = json!({ "leaseTokens": [token(&mine[0])] });
    let body = app
        .post_as(Some(&reader), RENEW, json!({ "input": input }))
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        json!("FORBIDDEN"),
        "{body:#}"
    );
    let body = app
        .post_as(
            None,
            CLAIM,
            json!({ "input": { "taskId": task, "limit": 1 } }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        json!("UNAUTHENTICATED"),
        "{body:#}"
    );

    let worker = app.key_for("default", "items:report");
    let body = app
        .post_as(
            Some(&worker),
            CLAIM,
            json!({ "input": { "taskId": task, "limit": 5 } }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body:#}");
    assert_eq!(
        body["data"]["claimTaskItems"]["items"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{body:#}"
    );
    assert_eq!(
        app.task(&task).await["counters"],
        counters(&[("running", 2)])
    );
    app.assert_counters_consistent(&task).await;
}
