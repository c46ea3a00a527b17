//! Live updates over WebSocket, like a client: the `graphql-transport-ws`
//! protocol (and the legacy `graphql-ws`) on `/graphql`, its close codes,
//! and the three subscriptions (`bulkTaskUpdated`, `bulkTasksUpdated`,
//! `taskItemsUpdated`).
//!
//! No test sleeps for correctness: every wait is a read with a timeout of a
//! few seconds. Subscriptions without a first event (`bulkTasksUpdated`,
//! `taskItemsUpdated`) are "warmed up": the test makes small changes until
//! the first event shows the subscription is live, then starts the scenario.

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{TestApp, key_id, spawn_app, spawn_app_with};
use crate::ops::{TASK, WATCH_ITEMS, WATCH_TASK, WATCH_TASKS, id_of, numbered_items as items};
use crate::ws::{ConnectOptions, LEGACY, Received, TRANSPORT, WAIT, Ws};

// ---------------------------------------------------------------------------
// Queries and HTTP helpers
// ---------------------------------------------------------------------------

/// Creates a sealed task of `task_type` with `n` items as the admin; returns its id.
async fn create(app: &TestApp, task_type: &str, n: usize) -> String {
    app.create_typed(task_type, n).await
}

/// Creates a sealed task of `task_type` with `items` as `key`; returns its id.
async fn create_as(app: &TestApp, key: &str, task_type: &str, items: Vec<Value>) -> String {
    let payload = app
        .as_key(key)
        .create(json!({ "type": task_type, "items": items }))
        .await;
    id_of(&payload["task"])
}

fn succeeded(index: usize) -> Value {
    json!({ "index": index, "outcome": "SUCCEEDED", "result": { "i": index } })
}

fn failed(index: usize, code: &str) -> Value {
    json!({
        "index": index,
        "outcome": "FAILED",
        "error": { "code": code, "message": format!("{code} on {index}") },
    })
}

/// Reports `results` for `task` as `key`; every result must apply.
async fn report_as(app: &TestApp, key: &str, task: &str, results: Vec<Value>) {
    app.as_key(key).report_all(task, json!(results)).await;
}

async fn report(app: &TestApp, task: &str, results: Vec<Value>) {
    app.report_all(task, json!(results)).await;
}

fn code(error: &Value) -> &str {
    error["extensions"]["code"].as_str().unwrap_or("<no code>")
}

/// A well-formed task id that names no task.
fn unknown_task_id() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("BulkTask:{}", uuid::Uuid::now_v7().simple()))
}

/// A server whose subscriptions coalesce over 50 ms.
async fn spawn_fast_app() -> TestApp {
    spawn_app_with(|c| c.coalesce_ms = 50).await
}

// ---------------------------------------------------------------------------
// Protocol: ping, close codes, both subprotocols
// ---------------------------------------------------------------------------

#[tokio::test]
async fn ping_is_answered_with_pong_before_and_after_init() {
    let app = spawn_app().await;
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.ping(Some(json!({ "n": 1, "s": "before init" }))).await;
    ws.ping(None).await;
    ws.init(&app.admin_key).await;
    ws.ping(Some(json!({ "after": "ack" }))).await;
    // A client's pong (e.g. unsolicited, as a heartbeat) is fine and unanswered.
    ws.send(json!({ "type": "pong", "payload": { "beat": 1 } }))
        .await;
    ws.ping(None).await;
}

#[tokio::test]
async fn invalid_messages_close_with_4400() {
    let app = spawn_app().await;
    let task = create(&app, "ws.invalid", 1).await;
    let subscribe_payload = json!({ "query": WATCH_TASK, "variables": { "id": task } });
    // (what is sent, whether the connection is initialised first)
    let cases: Vec<(&str, Message, bool)> = vec![
        ("not JSON", Message::text("hello"), false),
        (
            "JSON without type",
            Message::text(r#"{"payload":{}}"#),
            false,
        ),
        (
            "a type that is not a string",
            Message::text(r#"{"type":5}"#),
            false,
        ),
        (
            "an unknown type",
            Message::text(r#"{"type":"whatever"}"#),
            false,
        ),
        (
            "an unknown type after ack",
            Message::text(r#"{"type":"whatever"}"#),
            true,
        ),
        (
            "a server message type from the client",
            Message::text(r#"{"type":"next","id":"1","payload":{}}"#),
            true,
        ),
        ("a binary message", Message::binary(b"{}".to_vec()), false),
        (
            "a binary message after ack",
            Message::binary(b"{}".to_vec()),
            true,
        ),
        (
            "subscribe without id",
            Message::text(json!({ "type": "subscribe", "payload": subscribe_payload }).to_string()),
            true,
        ),
        (
            "subscribe without payload",
            Message::text(r#"{"type":"subscribe","id":"1"}"#),
            true,
        ),
    ];
    for (what, message, init) in cases {
        let mut ws = Ws::connect(&app, TRANSPORT).await;
        if init {
            ws.init(&app.admin_key).await;
        }
        ws.send_message(message).await;
        let reason = ws.expect_close(4400).await;
        assert!(!reason.is_empty(), "{what}: the close gives a reason");
        eprintln!("{what}: 4400 {reason:?}");
    }
}

/// PROTOCOL.md: a `subscribe` payload has `query: string`; a message of
/// another format closes the socket with 4400 (as the reference server does).
#[tokio::test]
async fn subscribe_with_a_payload_without_query_closes_with_4400() {
    let app = spawn_app().await;
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&app.admin_key).await;
    ws.send_text(r#"{"type":"subscribe","id":"1","payload":{"variables":{}}}"#)
        .await;
    ws.expect_close(4400).await;
}

#[tokio::test]
async fn subscribe_before_ack_closes_with_4401() {
    let app = spawn_app().await;
    let task = create(&app, "ws.early", 1).await;
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.subscribe("1", WATCH_TASK, json!({ "id": task })).await;
    ws.expect_close(4401).await;
}

#[tokio::test]
async fn refused_connection_init_closes_with_4403() {
    let app = spawn_app().await;
    let revoked = app.key_for("default", "tasks:read");
    let id = key_id(&app.cli(&["keys", "list"]), &revoked);
    app.cli(&["keys", "revoke", &id]);

    let refused = [
        ("no payload", Value::Null),
        ("an empty payload", json!({})),
        (
            "a bad key",
            json!({ "Authorization": "Bearer bw_nonsense_key_1234567890" }),
        ),
        (
            "a key without the Bearer scheme",
            json!({ "Authorization": app.admin_key }),
        ),
        (
            "a revoked key",
            json!({ "Authorization": format!("Bearer {revoked}") }),
        ),
    ];
    for (what, payload) in refused {
        let mut ws = Ws::connect(&app, TRANSPORT).await;
        ws.send_init(payload).await;
        match ws.recv(WAIT).await {
            Some(Received::Closed(Some((4403, _)))) => {}
            other => panic!(
                "{what}: expected close 4403, got {other:?}; trace:\n{}",
                ws.trace()
            ),
        }
    }

    // The legacy protocol says connection_error first, then closes.
    let mut ws = Ws::connect(&app, LEGACY).await;
    ws.send_init(json!({ "Authorization": format!("Bearer {revoked}") }))
        .await;
    let message = ws.next_message().await;
    assert_eq!(
        message["type"],
        json!("connection_error"),
        "trace:\n{}",
        ws.trace()
    );
    ws.expect_close(4403).await;

    // A lower-case key in the payload and a key in the upgrade request are accepted.
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.send_init(json!({ "authorization": format!("Bearer {}", app.admin_key) }))
        .await;
    assert_eq!(ws.next_message().await["type"], json!("connection_ack"));
    let options = ConnectOptions {
        authorization: Some(format!("Bearer {}", app.admin_key)),
        ..Default::default()
    };
    let mut ws = Ws::connect_to(&app.address, TRANSPORT, options).await;
    ws.send_init(json!({})).await;
    assert_eq!(ws.next_message().await["type"], json!("connection_ack"));
}

#[tokio::test]
async fn no_connection_init_closes_with_4408_after_the_wait() {
    let app = spawn_app_with(|c| c.ws_init_timeout_ms = 300).await;
    let started = std::time::Instant::now();
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.expect_close(4408).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "closed after {waited:?}, before the 300 ms wait"
    );

    // Pings do not count as initialisation.
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.ping(None).await;
    ws.expect_close(4408).await;

    // An initialised connection outlives the wait.
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&app.admin_key).await;
    ws.expect_quiet(Duration::from_millis(700)).await;
    ws.ping(None).await;
}

#[tokio::test]
async fn duplicate_active_subscription_id_closes_with_4409() {
    let app = spawn_app().await;
    let task = create(&app, "ws.dup", 2).await;
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&app.admin_key).await;
    ws.subscribe("a", WATCH_TASK, json!({ "id": task })).await;
    ws.next_data("a").await;
    ws.subscribe("a", WATCH_TASK, json!({ "id": task })).await;
    ws.expect_close(4409).await;
}

#[tokio::test]
async fn an_id_may_be_reused_once_its_operation_ended() {
    let app = spawn_fast_app().await;
    let done = create(&app, "ws.reuse", 1).await;
    report(&app, &done, vec![succeeded(0)]).await;
    let running = create(&app, "ws.reuse", 2).await;
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&app.admin_key).await;

    // Ended by the server (a terminal task completes at once).
    ws.subscribe("a", WATCH_TASK, json!({ "id": done })).await;
    let snapshots = ws.snapshots_until_complete("a").await;
    assert_eq!(snapshots.len(), 1, "{snapshots:#?}");
    ws.subscribe("a", WATCH_TASK, json!({ "id": done })).await;
    assert_eq!(ws.snapshots_until_complete("a").await.len(), 1);

    // Ended by the client: nothing more arrives for it, and the id is free.
    ws.subscribe("b", WATCH_TASK, json!({ "id": running }))
        .await;
    ws.next_data("b").await;
    ws.stop("b").await;
    report(&app, &running, vec![succeeded(0), succeeded(1)]).await;
    ws.subscribe("b", WATCH_TASK, json!({ "id": running }))
        .await;
    let snapshots = ws.snapshots_until_complete("b").await;
    assert_eq!(
        snapshots
            .iter()
            .map(|s| s["status"].clone())
            .collect::<Vec<_>>(),
        [json!("COMPLETED")],
        "only the new operation's snapshot: {snapshots:#?}"
    );
    ws.ping(None).await;
}

#[tokio::test]
async fn second_connection_init_closes_with_4429() {
    let app = spawn_app().await;
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&app.admin_key).await;
    ws.send_init(json!({ "Authorization": format!("Bearer {}", app.admin_key) }))
        .await;
    ws.expect_close(4429).await;
}

#[tokio::test]
async fn too_many_subscriptions_close_with_1008() {
    let app = spawn_app_with(|c| c.ws_max_subscriptions = 2).await;
    let task = create(&app, "ws.many", 2).await;
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&app.admin_key).await;
    for id in ["1", "2"] {
        ws.subscribe(id, WATCH_TASK, json!({ "id": task })).await;
        ws.next_data(id).await;
    }
    // An ended operation frees its place.
    ws.stop("1").await;
    ws.subscribe("3", WATCH_TASK, json!({ "id": task })).await;
    ws.next_data("3").await;
    ws.subscribe("4", WATCH_TASK, json!({ "id": task })).await;
    let reason = ws.expect_close(1008).await;
    assert!(!reason.is_empty(), "1008 says why");
}

#[tokio::test]
async fn a_message_larger_than_the_limit_closes_with_1009() {
    let app = spawn_app_with(|c| c.ws_max_message = 1024).await;
    let task = create(&app, "ws.big", 1).await;
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&app.admin_key).await;
    // Just under the limit is fine.
    let padding = " ".repeat(400);
    let query = format!("{}{padding}", WATCH_TASK.to_owned());
    ws.subscribe("small", &query, json!({ "id": task })).await;
    ws.next_data("small").await;
    // Over it closes the connection.
    let padding = " ".repeat(2000);
    let query = format!("{}{padding}", WATCH_TASK.to_owned());
    ws.subscribe("big", &query, json!({ "id": task })).await;
    let reason = ws.expect_close(1009).await;
    assert!(!reason.is_empty(), "1009 says why");
}

#[tokio::test]
async fn legacy_graphql_ws_protocol_happy_path() {
    let app = spawn_fast_app().await;
    let a = create(&app, "ws.legacy", 4).await;
    let b = create(&app, "ws.legacy", 2).await;
    let mut ws = Ws::connect(&app, LEGACY).await;
    ws.skip_ka = false;
    ws.send_init(json!({ "Authorization": format!("Bearer {}", app.admin_key) }))
        .await;
    assert_eq!(ws.next_message().await, json!({ "type": "connection_ack" }));
    assert_eq!(
        ws.next_message().await["type"],
        json!("ka"),
        "a keep-alive follows the ack"
    );
    ws.skip_ka = true;

    // start -> data (current state), data per change, terminal data, complete.
    ws.subscribe("1", WATCH_TASK, json!({ "id": a })).await;
    let first = ws.next_data("1").await["bulkTaskUpdated"].clone();
    assert_eq!(first, app.task(&a).await);
    assert_eq!(first["status"], json!("QUEUED"));
    report(&app, &a, vec![succeeded(0), succeeded(1)]).await;
    ws.snapshots_until("1", |t| t["counters"]["succeeded"] == 2)
        .await;
    report(&app, &a, vec![succeeded(2), succeeded(3)]).await;
    let rest = ws.snapshots_until_complete("1").await;
    let last = rest.last().expect("the terminal snapshot");
    assert_eq!(last["status"], json!("COMPLETED"));
    assert_eq!(*last, app.task(&a).await);

    // stop ends an operation: nothing more arrives for it.
    ws.subscribe("2", WATCH_TASK, json!({ "id": b })).await;
    ws.next_data("2").await;
    ws.stop("2").await;
    report(&app, &b, vec![succeeded(0), succeeded(1)]).await;
    ws.subscribe("3", WATCH_TASK, json!({ "id": b })).await;
    let snapshots = ws.snapshots_until_complete("3").await;
    assert_eq!(snapshots.len(), 1);
    assert_eq!(snapshots[0]["status"], json!("COMPLETED"));
    ws.expect_quiet(Duration::from_millis(300)).await;

    // An error is a single error object.
    ws.subscribe("4", WATCH_TASK, json!({ "id": unknown_task_id() }))
        .await;
    let errors = ws.expect_error("4").await;
    assert_eq!(code(&errors[0]), "NOT_FOUND", "trace:\n{}", ws.trace());

    ws.send(json!({ "type": "connection_terminate" })).await;
    ws.expect_close(1000).await;
}

// ---------------------------------------------------------------------------
// bulkTaskUpdated
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_first_event_is_the_task_as_it_is_now() {
    let app = spawn_fast_app().await;
    let task = create(&app, "ws.first", 5).await;
    report(&app, &task, vec![succeeded(0), failed(1, "E_X")]).await;
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&app.admin_key).await;
    ws.subscribe("t", WATCH_TASK, json!({ "id": task })).await;
    let message = ws.next_message().await;
    assert_eq!(
        message,
        json!({
            "type": "next",
            "id": "t",
            "payload": { "data": { "bulkTaskUpdated": app.task(&task).await } },
        })
    );
    let first = &message["payload"]["data"]["bulkTaskUpdated"];
    assert_eq!(first["status"], json!("RUNNING"));
    assert_eq!(first["counters"]["succeeded"], json!(1));
    assert_eq!(first["counters"]["failed"], json!(1));
    assert_eq!(first["counters"]["pending"], json!(3));
    // No change, no event.
    ws.expect_quiet(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn counters_rise_while_reports_are_applied() {
    let app = spawn_fast_app().await;
    let task = create(&app, "ws.rise", 50).await;
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&app.admin_key).await;
    ws.subscribe("t", WATCH_TASK, json!({ "id": task })).await;
    let mut all = vec![ws.next_data("t").await["bulkTaskUpdated"].clone()];
    assert_eq!(all[0]["counters"]["succeeded"], json!(0));
    for batch in 0..10 {
        let results = (batch * 5..batch * 5 + 5).map(succeeded).collect();
        report(&app, &task, results).await;
        let want = (batch as i64 + 1) * 5;
        let seen = ws
            .snapshots_until("t", |t| t["counters"]["succeeded"] == want)
            .await;
        all.extend(seen);
    }
    ws.expect_complete("t").await;

    ws.assert_versions_increase(&all);
    let succeeded: Vec<i64> = all
        .iter()
        .map(|t| t["counters"]["succeeded"].as_i64().unwrap())
        .collect();
    assert!(
        succeeded.windows(2).all(|w| w[0] < w[1]),
        "counters only rise: {succeeded:?}"
    );
    for t in &all {
        let c = &t["counters"];
        assert_eq!(
            c["total"].as_i64(),
            Some(
                c["pending"].as_i64().unwrap()
                    + c["running"].as_i64().unwrap()
                    + c["finished"].as_i64().unwrap()
            ),
            "total = pending + running + finished in every snapshot: {t:#}"
        );
    }
    let (last, middle) = all.split_last().unwrap();
    assert!(
        middle[1..].iter().all(|t| t["status"] == "RUNNING"),
        "{middle:#?}"
    );
    assert_eq!(last["status"], json!("COMPLETED"));
    assert_eq!(*last, app.task(&task).await);
}

#[tokio::test]
async fn a_thousand_rapid_reports_are_coalesced_and_the_last_event_is_the_final_state() {
    let app = spawn_app_with(|c| c.coalesce_ms = 100).await;
    let n = 1000;
    let task = create(&app, "ws.coalesce", n).await;
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&app.admin_key).await;
    ws.subscribe("t", WATCH_TASK, json!({ "id": task })).await;
    let first = ws.next_data("t").await["bulkTaskUpdated"].clone();
    assert_eq!(first["counters"]["pending"], json!(n));

    let started = std::time::Instant::now();
    let reporter = async {
        for i in 0..n {
            report(&app, &task, vec![succeeded(i)]).await;
        }
    };
    let reader = ws.snapshots_until_complete("t");
    let ((), events) = tokio::join!(reporter, reader);
    eprintln!(
        "{n} reports in {:?} gave {} events after the first",
        started.elapsed(),
        events.len()
    );

    let elapsed = started.elapsed();
    let mut all = vec![first];
    all.extend(events);
    ws.assert_versions_increase(&all);
    // At most one event per 100 ms interval (plus the first and the terminal one)...
    let bound = (elapsed.as_millis() / 100) as usize + 3;
    assert!(
        all.len() <= bound,
        "{} events in {elapsed:?}: more than one per 100 ms",
        all.len()
    );
    // ...so far fewer than one per report (unless the machine is so slow
    // that the reports alone took more than 19 s).
    assert!(
        all.len() < 200 || elapsed > Duration::from_secs(19),
        "{n} reports should be coalesced into far fewer events, got {}",
        all.len()
    );
    let last = all.last().unwrap();
    assert_eq!(last["status"], json!("COMPLETED"));
    assert_eq!(last["counters"]["succeeded"], json!(n));
    assert_eq!(
        *last,
        app.task(&task).await,
        "the last event is the final state"
    );
    let succeeded: Vec<i64> = all
        .iter()
        .map(|t| t["counters"]["succeeded"].as_i64().unwrap())
        .collect();
    assert!(succeeded.windows(2).all(|w| w[0] < w[1]), "{succeeded:?}");
    ws.ping(None).await;
}

#[tokio::test]
async fn terminal_states_are_delivered_then_the_stream_completes() {
    let app = spawn_fast_app().await;
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&app.admin_key).await;

    // Already terminal: one snapshot, then complete.
    let done = create(&app, "ws.terminal", 2).await;
    report(&app, &done, vec![succeeded(0), failed(1, "E_GONE")]).await;
    ws.subscribe("done", WATCH_TASK, json!({ "id": done }))
        .await;
    let snapshots = ws.snapshots_until_complete("done").await;
    assert_eq!(snapshots.len(), 1, "{snapshots:#?}");
    assert_eq!(snapshots[0]["status"], json!("COMPLETED_WITH_FAILURES"));

    // Cancelled.
    let cancelled = create(&app, "ws.terminal", 3).await;
    ws.subscribe("cancel", WATCH_TASK, json!({ "id": cancelled }))
        .await;
    ws.next_data("cancel").await;
    app.cancel(&cancelled).await;
    let snapshots = ws.snapshots_until_complete("cancel").await;
    let last = snapshots.last().expect("a terminal snapshot");
    assert_eq!(last["status"], json!("CANCELLED"));
    assert_eq!(*last, app.task(&cancelled).await);

    // Failed at task level.
    let aborted = create(&app, "ws.terminal", 3).await;
    ws.subscribe("fail", WATCH_TASK, json!({ "id": aborted }))
        .await;
    ws.next_data("fail").await;
    app.fail(json!({ "id": aborted, "code": "E_ABORT", "message": "stop it" }))
        .await;
    let snapshots = ws.snapshots_until_complete("fail").await;
    let last = snapshots.last().expect("a terminal snapshot");
    assert_eq!(last["status"], json!("FAILED"));
    assert_eq!(last["error"]["code"], json!("E_ABORT"));
    assert_eq!(*last, app.task(&aborted).await);

    // Deleted: the stream ends.
    let deleted = create(&app, "ws.terminal", 3).await;
    ws.subscribe("del", WATCH_TASK, json!({ "id": deleted }))
        .await;
    ws.next_data("del").await;
    app.delete(&deleted).await;
    ws.expect_complete("del").await;

    // The item feed of a deleted task ends too.
    let deleted = create(&app, "ws.terminal", 30).await;
    ws.subscribe("delitems", WATCH_ITEMS, json!({ "taskId": deleted }))
        .await;
    warm_up(&app, &mut ws, &deleted, succeeded, 30).await;
    app.delete(&deleted).await;
    loop {
        let message = ws.next_message().await;
        match message["type"].as_str() {
            Some("next") => continue, // a late warm-up event
            _ => {
                assert_eq!(message, json!({ "type": "complete", "id": "delitems" }));
                break;
            }
        }
    }
    ws.ping(None).await;
}

/// Watchers of a task share a hub that stops when its last watcher leaves;
/// a watcher arriving just then must still get a live hub.
#[tokio::test]
async fn resubscribing_quickly_to_the_same_task_keeps_receiving_changes() {
    let app = spawn_app_with(|c| c.coalesce_ms = 1).await;
    let n = 120;
    let task = create(&app, "ws.resubscribe", n + 1).await;
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&app.admin_key).await;
    for i in 0..n {
        let id = format!("s{i}");
        // End the previous operation and start the next one back to back.
        if i > 0 {
            ws.stop(&format!("s{}", i - 1)).await;
        }
        ws.subscribe(&id, WATCH_TASK, json!({ "id": task })).await;
        let first = ws.next_data(&id).await["bulkTaskUpdated"].clone();
        assert_eq!(first["counters"]["succeeded"], json!(i), "{first:#}");
        report(&app, &task, vec![succeeded(i)]).await;
        ws.snapshots_until(&id, |t| t["counters"]["succeeded"] == json!(i + 1))
            .await;
    }
}

/// Identical `bulkTaskUpdated` subscriptions share one execution: each
/// subscriber still gets the current state first, every later state, and
/// its own completion; after the end, a new subscriber starts afresh.
#[tokio::test]
async fn identical_task_watchers_share_one_execution() {
    let app = spawn_fast_app().await;
    let task = create(&app, "ws.shared", 3).await;
    let watch = WATCH_TASK.to_owned();
    let vars = json!({ "id": task });
    let mut a = Ws::connect(&app, TRANSPORT).await;
    let mut b = Ws::connect(&app, LEGACY).await;
    a.init(&app.admin_key).await;
    b.init(&app.admin_key).await;
    a.subscribe("a", &watch, vars.clone()).await;
    b.subscribe("b", &watch, vars.clone()).await;
    let first_a = a.next_data("a").await["bulkTaskUpdated"].clone();
    let first_b = b.next_data("b").await["bulkTaskUpdated"].clone();
    assert_eq!(first_a, first_b);
    assert_eq!(first_a["counters"]["pending"], json!(3));
    // Another selection is another execution.
    a.subscribe(
        "v",
        "subscription($id: ID!) { bulkTaskUpdated(id: $id) { version } }",
        vars.clone(),
    )
    .await;
    a.next_data("v").await;
    assert_eq!(app.metric("bulkwatch_shared_subscriptions").await, 2);

    report(&app, &task, vec![succeeded(0)]).await;
    let done_one = |t: &Value| t["counters"]["succeeded"] == json!(1);
    // `v` shares connection `a`, and its own snapshot of the change may
    // arrive first: the two executions are not ordered with each other.
    let mut seen_a: Vec<Value> = Vec::new();
    while !seen_a.last().is_some_and(done_one) {
        let message = a.next_message().await;
        if message["id"] != "v" {
            seen_a.push(a.data_of(&message, "a")["bulkTaskUpdated"].clone());
        }
    }
    a.assert_versions_increase(&seen_a);
    let seen_b = b.snapshots_until("b", done_one).await;
    assert_eq!(seen_a.last(), seen_b.last());

    // A late joiner starts from the state as it is now.
    let mut c = Ws::connect(&app, TRANSPORT).await;
    c.init(&app.admin_key).await;
    c.subscribe("c", &watch, vars.clone()).await;
    let first_c = c.next_data("c").await["bulkTaskUpdated"].clone();
    assert_eq!(Some(&first_c), seen_a.last());

    // One subscriber leaving ends nothing for the others.
    a.stop("a").await;
    report(&app, &task, vec![succeeded(1)]).await;
    report(&app, &task, vec![failed(2, "BOOM")]).await;
    let end_b = b.snapshots_until_complete("b").await;
    let end_c = c.snapshots_until_complete("c").await;
    let last = app.task(&task).await;
    assert_eq!(last["status"], json!("COMPLETED_WITH_FAILURES"));
    assert_eq!(end_b.last(), Some(&last));
    assert_eq!(end_c.last(), Some(&last));
    b.assert_versions_increase(&end_b);

    // The task moves again after a retry: a new subscriber sees that, not
    // the state the ended execution finished with.
    app.retry(json!({ "taskId": task })).await;
    c.subscribe("c2", &watch, vars).await;
    let fresh = c.next_data("c2").await["bulkTaskUpdated"].clone();
    assert_eq!(fresh["counters"]["pending"], json!(1), "{fresh:#}");
    assert_eq!(fresh, app.task(&task).await);
}

/// Any GraphQL operation may run over `subscribe`: a query gives one result
/// and completes; an invalid document is an `error`.
#[tokio::test]
async fn queries_and_invalid_documents_over_the_socket() {
    let app = spawn_app().await;
    let task = create(&app, "ws.query", 2).await;
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&app.admin_key).await;
    ws.subscribe("q", TASK, json!({ "id": task })).await;
    let data = ws.next_data("q").await;
    assert_eq!(data["bulkTask"], app.task(&task).await);
    ws.expect_complete("q").await;

    ws.subscribe(
        "bad",
        "subscription($id: ID!) { bulkTaskUpdated(id: $id) { noSuchField } }",
        json!({ "id": task }),
    )
    .await;
    let errors = ws.expect_error("bad").await;
    assert!(
        errors[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("noSuchField")),
        "{errors:#?}"
    );
    ws.subscribe("novars", WATCH_TASK, json!({})).await;
    ws.expect_error("novars").await;
    ws.ping(None).await;
}

// ---------------------------------------------------------------------------
// Errors and authorisation on subscribe
// ---------------------------------------------------------------------------

#[tokio::test]
async fn unknown_and_foreign_tasks_are_not_found() {
    let app = spawn_app().await;
    let other = app.key_for("other", "tasks:read,tasks:write");
    let foreign = create_as(&app, &other, "ws.foreign", items(2)).await;
    let mine = create(&app, "ws.mine", 2).await;
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&app.admin_key).await;

    let unknown = unknown_task_id();
    let cases = [
        (
            "unknown task",
            "1",
            WATCH_TASK.to_owned(),
            json!({ "id": unknown }),
        ),
        (
            "another org's task",
            "2",
            WATCH_TASK.to_owned(),
            json!({ "id": foreign }),
        ),
        (
            "unknown task feed",
            "3",
            WATCH_ITEMS.to_owned(),
            json!({ "taskId": unknown }),
        ),
        (
            "another org's task feed",
            "4",
            WATCH_ITEMS.to_owned(),
            json!({ "taskId": foreign }),
        ),
    ];
    for (what, id, query, variables) in cases {
        ws.subscribe(id, &query, variables).await;
        let errors = ws.expect_error(id).await;
        assert_eq!(code(&errors[0]), "NOT_FOUND", "{what}: {errors:#?}");
    }
    ws.subscribe("5", WATCH_TASK, json!({ "id": "not-an-id" }))
        .await;
    let errors = ws.expect_error("5").await;
    assert_eq!(code(&errors[0]), "BAD_USER_INPUT", "{errors:#?}");

    // The connection is still fine, and an errored id is free again.
    ws.subscribe("1", WATCH_TASK, json!({ "id": mine })).await;
    let data = ws.next_data("1").await;
    assert_eq!(data["bulkTaskUpdated"]["id"], json!(mine));

    // The other organisation sees its own task.
    let mut theirs = Ws::connect(&app, TRANSPORT).await;
    theirs.init(&other).await;
    theirs
        .subscribe("x", WATCH_TASK, json!({ "id": foreign }))
        .await;
    assert_eq!(
        theirs.next_data("x").await["bulkTaskUpdated"]["id"],
        json!(foreign)
    );
    theirs
        .subscribe("y", WATCH_TASK, json!({ "id": mine }))
        .await;
    assert_eq!(code(&theirs.expect_error("y").await[0]), "NOT_FOUND");
}

#[tokio::test]
async fn a_key_without_tasks_read_is_forbidden_to_subscribe() {
    let app = spawn_app().await;
    let task = create(&app, "ws.scope", 2).await;
    for scopes in ["tasks:write", "items:report"] {
        let key = app.key_for("default", scopes);
        let mut ws = Ws::connect(&app, TRANSPORT).await;
        ws.init(&key).await;
        let cases = [
            ("1", WATCH_TASK.to_owned(), json!({ "id": task })),
            ("2", WATCH_TASKS.to_owned(), json!({})),
            ("3", WATCH_ITEMS.to_owned(), json!({ "taskId": task })),
        ];
        for (id, query, variables) in cases {
            ws.subscribe(id, &query, variables).await;
            let errors = ws.expect_error(id).await;
            assert_eq!(code(&errors[0]), "FORBIDDEN", "{scopes} {id}: {errors:#?}");
        }
    }
    let reader = app.key_for("default", "tasks:read");
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&reader).await;
    ws.subscribe("1", WATCH_TASK, json!({ "id": task })).await;
    ws.next_data("1").await;
}

// ---------------------------------------------------------------------------
// bulkTasksUpdated
// ---------------------------------------------------------------------------

/// Reports items of `task` one at a time until the subscription `id` yields
/// an event (so it is live); returns that first message and how many items were used.
async fn warm_up(
    app: &TestApp,
    ws: &mut Ws,
    task: &str,
    result: impl Fn(usize) -> Value,
    limit: usize,
) -> (Value, Vec<usize>) {
    let mut used = Vec::new();
    for i in 0..limit {
        report(app, task, vec![result(i)]).await;
        used.push(i);
        if let Some(got) = ws.recv(Duration::from_millis(700)).await {
            match got {
                Received::Message(message) => return (message, used),
                other => panic!("warming up: {other:?}; trace:\n{}", ws.trace()),
            }
        }
    }
    panic!("the subscription never went live; trace:\n{}", ws.trace());
}

#[tokio::test]
async fn bulk_tasks_updated_sees_matching_tasks_of_its_organisation_only() {
    let app = spawn_fast_app().await;
    let other = app.key_for("other", "tasks:read,tasks:write,items:report");
    let warm = create(&app, "dash.watch", 30).await;
    let watched = create(&app, "dash.watch", 3).await;
    let unwatched = create(&app, "dash.other", 3).await;
    let foreign = create_as(&app, &other, "dash.watch", items(3)).await;

    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&app.admin_key).await;
    ws.subscribe(
        "d",
        WATCH_TASKS,
        json!({ "filter": { "type": ["dash.watch"] } }),
    )
    .await;
    let (first, used) = warm_up(&app, &mut ws, &warm, succeeded, 30).await;
    let data = ws.data_of(&first, "d");
    assert_eq!(data["bulkTasksUpdated"]["id"], json!(warm));

    // Changes of a task of another type and of another organisation's task,
    // then of the watched task, to its terminal state.
    report(
        &app,
        &unwatched,
        vec![succeeded(0), succeeded(1), succeeded(2)],
    )
    .await;
    report_as(&app, &other, &foreign, vec![succeeded(0)]).await;
    report_as(&app, &other, &foreign, vec![succeeded(1), succeeded(2)]).await;
    report(&app, &watched, vec![succeeded(0)]).await;
    report(&app, &watched, vec![failed(1, "E_X"), succeeded(2)]).await;
    // Then one more change of the warm-up task, as an end marker.
    let marker = used.len();
    report(&app, &warm, vec![succeeded(marker)]).await;

    let mut seen = Vec::new();
    let mut watched_states = Vec::new();
    loop {
        let data = ws.next_data("d").await["bulkTasksUpdated"].clone();
        let id = data["id"].as_str().unwrap().to_owned();
        assert!(
            id == warm || id == watched,
            "an event of a task outside the filter or organisation: {data:#}; trace:\n{}",
            ws.trace()
        );
        assert_eq!(data["type"], json!("dash.watch"));
        if id == watched {
            watched_states.push(data.clone());
        }
        seen.push(data.clone());
        if id == warm && data["counters"]["succeeded"] == json!(marker + 1) {
            break;
        }
    }
    let last = watched_states.last().expect("the watched task changed");
    assert_eq!(
        last["status"],
        json!("COMPLETED_WITH_FAILURES"),
        "{seen:#?}"
    );
    assert_eq!(last["counters"]["finished"], json!(3));
    let versions: Vec<i64> = watched_states
        .iter()
        .map(|t| t["version"].as_i64().unwrap())
        .collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
}

// ---------------------------------------------------------------------------
// taskItemsUpdated
// ---------------------------------------------------------------------------

/// The indexes `warm_up` reported from the one whose event arrived first.
fn still_expected(first: &Value, used: &[usize]) -> Vec<usize> {
    let index = first["payload"]["data"]["taskItemsUpdated"]["index"]
        .as_u64()
        .unwrap_or_else(|| panic!("an item event: {first}")) as usize;
    let at = used
        .iter()
        .position(|i| *i == index)
        .unwrap_or_else(|| panic!("{index} was not reported: {first}"));
    used[at + 1..].to_vec()
}

#[tokio::test]
async fn item_changes_arrive_in_commit_order() {
    let app = spawn_fast_app().await;
    let task = create(&app, "ws.items", 40).await;
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&app.admin_key).await;
    ws.subscribe("i", WATCH_ITEMS, json!({ "taskId": task }))
        .await;
    let (first, used) = warm_up(&app, &mut ws, &task, succeeded, 20).await;
    let mut expected = still_expected(&first, &used);

    // Not index order: commit order.
    let order: Vec<usize> = (0..20).map(|k| 20 + (k * 7) % 20).collect();
    for &i in &order {
        report(&app, &task, vec![succeeded(i)]).await;
    }
    expected.extend(&order);

    let mut got = Vec::new();
    while got.len() < expected.len() {
        let item = ws.next_data("i").await["taskItemsUpdated"].clone();
        assert_eq!(item["status"], json!("SUCCEEDED"), "{item:#}");
        assert_eq!(item["task"]["id"], json!(task), "{item:#}");
        let index = item["index"].as_u64().unwrap() as usize;
        assert_eq!(item["result"], json!({ "i": index }), "{item:#}");
        got.push(index);
    }
    assert_eq!(got, expected, "items in commit order");
}

#[tokio::test]
async fn item_feed_filters_by_status() {
    let app = spawn_fast_app().await;
    let task = create(&app, "ws.failures", 40).await;
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&app.admin_key).await;
    ws.subscribe(
        "f",
        WATCH_ITEMS,
        json!({ "taskId": task, "status": ["FAILED"] }),
    )
    .await;
    let (first, used) = warm_up(&app, &mut ws, &task, |i| failed(i, "E_WARM"), 20).await;
    let mut expected = still_expected(&first, &used);

    // Started, then failed; succeeded; skipped; failed: only FAILED items show.
    for i in 20..40 {
        match i % 4 {
            0 => {
                report(
                    &app,
                    &task,
                    vec![json!({ "index": i, "outcome": "RUNNING" })],
                )
                .await;
                report(&app, &task, vec![failed(i, "E_LATE")]).await;
                expected.push(i);
            }
            1 => report(&app, &task, vec![succeeded(i)]).await,
            2 => {
                report(
                    &app,
                    &task,
                    vec![json!({ "index": i, "outcome": "SKIPPED" })],
                )
                .await
            }
            _ => {
                report(&app, &task, vec![failed(i, "E_BAD")]).await;
                expected.push(i);
            }
        }
    }

    // The filter applies to an item's status when the feed reads it: an
    // item's RUNNING change read after its FAILED commit shows it as FAILED
    // too, right before its FAILED change. Such adjacent repeats are allowed.
    let last = *expected.last().unwrap();
    let mut got: Vec<usize> = Vec::new();
    while got.last() != Some(&last) {
        let item = ws.next_data("f").await["taskItemsUpdated"].clone();
        assert_eq!(
            item["status"],
            json!("FAILED"),
            "only failed items: {item:#}; trace:\n{}",
            ws.trace()
        );
        got.push(item["index"].as_u64().unwrap() as usize);
    }
    let repeats = got.windows(2).filter(|w| w[0] == w[1]).count();
    got.dedup();
    assert_eq!(got, expected, "{repeats} adjacent repeats removed");
    ws.ping(None).await;
}

#[tokio::test]
async fn a_lagging_item_subscriber_gets_subscriber_lagged_and_is_ended() {
    let app = spawn_app_with(|c| {
        c.item_feed_capacity = 2;
        c.coalesce_ms = 50;
    })
    .await;
    // Big payloads, so that a reader that does not read fills the socket
    // buffers and the server's feed has to wait.
    let blob = "x".repeat(30_000);
    let n = 340;
    let big: Vec<Value> = (0..n)
        .map(
            |i| json!({ "clientItemId": format!("item-{i}"), "payload": { "n": i, "blob": blob } }),
        )
        .collect();
    let task = create_as(&app, &app.admin_key, "ws.lag", big).await;
    drop(blob);

    let options = ConnectOptions {
        recv_buffer: Some(16 * 1024),
        ..Default::default()
    };
    let mut ws = Ws::connect_to(&app.address, TRANSPORT, options).await;
    ws.init(&app.admin_key).await;
    let query =
        "subscription($taskId: ID!) { taskItemsUpdated(taskId: $taskId) { index status payload } }";
    ws.subscribe("lag", query, json!({ "taskId": task })).await;
    let (first, used) = warm_up(&app, &mut ws, &task, succeeded, 20).await;
    assert_eq!(first["type"], json!("next"), "trace:\n{}", ws.trace());
    let mut pending = still_expected(&first, &used).len();

    // Not reading now: one report of 300 big items, then many small ones.
    report(&app, &task, (20..320).map(succeeded).collect()).await;
    for i in 320..n {
        report(&app, &task, vec![succeeded(i)]).await;
    }
    pending += n - 20;

    let mut nexts = 0;
    let errors = loop {
        let message = ws.next_message().await;
        match message["type"].as_str() {
            Some("next") => {
                assert_eq!(message["id"], json!("lag"));
                nexts += 1;
            }
            Some("error") => {
                assert_eq!(message["id"], json!("lag"));
                break message["payload"].clone();
            }
            _ => panic!("unexpected {message}; trace:\n{}", ws.trace()),
        }
    };
    eprintln!("{nexts} item events of {pending} arrived before the error");
    assert!(nexts < pending, "some events were dropped");
    assert_eq!(code(&errors[0]), "SUBSCRIBER_LAGGED", "{errors:#}");
    // The operation ended: its id is free, and the connection still works.
    ws.subscribe("lag", query, json!({ "taskId": task })).await;
    ws.ping(None).await;
}

// ---------------------------------------------------------------------------
// Several server instances (PostgreSQL)
// ---------------------------------------------------------------------------

/// Starts another server instance on `database_url`; returns its address.
async fn start_instance(database_url: String) -> String {
    let mut config = bulkwatch::Config::with_database(database_url);
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.db_connections = 4;
    config.coalesce_ms = 50;
    let app = bulkwatch::Application::build(config)
        .await
        .expect("the second instance starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    address
}

#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn changes_cross_instances_and_survive_a_lost_listener_connection() {
    crate::helpers::require_postgres();
    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    let app = spawn_fast_app().await;
    // The listening instance names its connections, so that the test ends
    // only its LISTEN connection and not those of other tests' servers.
    let name = format!("bw_listen_{}", uuid::Uuid::now_v7().simple());
    let listening = start_instance(format!("{}&application_name={name}", app.database_url)).await;

    // Subscribe on the listening instance, mutate on the other: every change arrives.
    let task = create(&app, "ws.instances", 20).await;
    let mut ws = Ws::connect_to(&listening, TRANSPORT, ConnectOptions::default()).await;
    ws.init(&app.admin_key).await;
    ws.subscribe("t", WATCH_TASK, json!({ "id": task })).await;
    let first = ws.next_data("t").await["bulkTaskUpdated"].clone();
    assert_eq!(first, app.task(&task).await);
    for batch in 0..4 {
        report(
            &app,
            &task,
            (batch * 5..batch * 5 + 5).map(succeeded).collect(),
        )
        .await;
        let want = (batch as i64 + 1) * 5;
        ws.snapshots_until("t", |t| t["counters"]["succeeded"] == want)
            .await;
    }
    ws.expect_complete("t").await;
    assert_eq!(app.task(&task).await["status"], json!("COMPLETED"));

    // Lose the listener's connection, change a watched task to its terminal
    // state meanwhile: the subscriber still gets the terminal state.
    let task = create(&app, "ws.lost", 4).await;
    // The item feed, the dashboard feed and the task, each on a socket of its
    // own. The item feed sends nothing until a change, so a client cannot
    // see when it began: it subscribes first, and the answers the other two
    // wait for give it time to.
    let mut feed = Ws::connect_to(&listening, TRANSPORT, ConnectOptions::default()).await;
    feed.init(&app.admin_key).await;
    feed.subscribe("i", WATCH_ITEMS, json!({ "taskId": task }))
        .await;
    ws.subscribe("u", WATCH_TASK, json!({ "id": task })).await;
    ws.next_data("u").await;
    let mut dashboard = Ws::connect_to(&listening, TRANSPORT, ConnectOptions::default()).await;
    dashboard.init(&app.admin_key).await;
    let filter = json!({ "filter": { "type": ["ws.lost"] } });
    dashboard.subscribe("d", WATCH_TASKS, filter).await;
    report(&app, &task, vec![succeeded(0)]).await;
    ws.snapshots_until("u", |t| t["counters"]["succeeded"] == 1)
        .await;
    let seen = dashboard.next_data("d").await;
    assert_eq!(seen["bulkTasksUpdated"]["counters"]["succeeded"], 1);
    let seen = feed.next_data("i").await;
    assert_eq!(seen["taskItemsUpdated"]["index"], 0);

    let base = std::env::var("BULKWATCH_TEST_DATABASE_URL").unwrap();
    let admin = sea_orm::Database::connect(&base)
        .await
        .expect("postgres answers");
    let killed = admin
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity \
             WHERE query ILIKE 'LISTEN%' AND application_name = $1",
            [name.clone().into()],
        ))
        .await
        .expect("terminate the listener");
    assert_eq!(
        killed.len(),
        1,
        "one LISTEN connection of the listening instance"
    );
    report(
        &app,
        &task,
        vec![succeeded(1), succeeded(2), failed(3, "E_LAST")],
    )
    .await;

    let snapshots = loop {
        let message = ws.next_message_within(Duration::from_secs(15)).await;
        let data = ws.data_of(&message, "u");
        let t = data["bulkTaskUpdated"].clone();
        if t["status"] != "RUNNING" {
            break t;
        }
    };
    assert_eq!(snapshots["status"], json!("COMPLETED_WITH_FAILURES"));
    assert_eq!(snapshots, app.task(&task).await);
    ws.expect_complete("u").await;

    // The two feeds got what was committed while the listener was down:
    // the dashboard the task's terminal state, the item feed every item.
    let terminal = loop {
        let message = dashboard.next_message_within(Duration::from_secs(15)).await;
        let t = dashboard.data_of(&message, "d")["bulkTasksUpdated"].clone();
        if t["status"] == "COMPLETED_WITH_FAILURES" {
            break t;
        }
    };
    assert_eq!(terminal["id"], json!(task));
    // (A resync reads again a few seconds back, so item 0 may come twice.)
    let mut missed = std::collections::BTreeMap::new();
    while !(1..=3).all(|i| missed.contains_key(&i)) {
        let message = feed.next_message_within(Duration::from_secs(15)).await;
        let item = feed.data_of(&message, "i")["taskItemsUpdated"].clone();
        missed.insert(item["index"].as_i64().unwrap(), item["status"].clone());
    }
    missed.remove(&0);
    assert_eq!(
        missed.into_iter().collect::<Vec<_>>(),
        vec![
            (1, json!("SUCCEEDED")),
            (2, json!("SUCCEEDED")),
            (3, json!("FAILED"))
        ]
    );

    // The listener is back: new changes arrive as they happen.
    let task = create(&app, "ws.instances", 2).await;
    ws.subscribe("v", WATCH_TASK, json!({ "id": task })).await;
    ws.next_data("v").await;
    report(&app, &task, vec![succeeded(0)]).await;
    ws.snapshots_until("v", |t| t["counters"]["succeeded"] == 1)
        .await;
    report(&app, &task, vec![succeeded(1)]).await;
    let rest = ws.snapshots_until_complete("v").await;
    assert_eq!(rest.last().unwrap()["status"], json!("COMPLETED"));
    let reconnected = admin
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pid FROM pg_stat_activity WHERE query ILIKE 'LISTEN%' AND application_name = $1",
            [name.into()],
        ))
        .await
        .unwrap();
    assert_eq!(reconnected.len(), 1, "the listener reconnected");
    admin.close().await.ok();
}

// ---------------------------------------------------------------------------
// Shutdown
// ---------------------------------------------------------------------------

/// SIGTERM: open subscriptions get a close frame and the process exits
/// within the shutdown timeout.
#[tokio::test]
async fn sigterm_closes_open_subscriptions_and_the_server_exits() {
    use crate::crash::{bulkwatch, free_port, start_server, wait_ready};
    let (database_url, _dir) = crate::helpers::fresh_database().await;
    let output = bulkwatch()
        .args(["keys", "create", "--org", "default"])
        .env("DATABASE_URL", &database_url)
        .output()
        .unwrap();
    assert!(output.status.success());
    let key = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let port = free_port();
    let mut server = start_server(&database_url, port);
    wait_ready(&crate::helpers::client_with_key(Some(&key)), port).await;
    let app = TestApp::attach(&format!("http://127.0.0.1:{port}"), &key, &database_url);
    let task = app.create_task(2).await;

    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&key).await;
    ws.subscribe(
        "1",
        "subscription($id: ID!) { bulkTaskUpdated(id: $id) { status } }",
        json!({ "id": task }),
    )
    .await;
    assert_eq!(
        ws.next_data("1").await["bulkTaskUpdated"]["status"],
        json!("QUEUED")
    );

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    ws.expect_close(1001).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = server.try_wait().unwrap() {
            assert!(status.success(), "the server exits cleanly: {status}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
