//! Webhooks as a receiver sees them: signed deliveries of the snapshot a
//! subscriber sees, retried on a schedule, refused for private addresses,
//! kept per organisation, in version order per task.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};
use crate::ops::{WATCH_TASK, id_of};
use crate::webhook_support::{DELIVERY, Receiver};
use crate::ws::{TRANSPORT, Ws};

/// A server that may send to the loopback receiver, with retries in
/// fractions of a second.
async fn spawn_webhook_app(schedule: &str) -> TestApp {
    let schedule = schedule.to_owned();
    spawn_app_with(move |c| {
        c.webhook_allow_private = true;
        c.webhook_retry_schedule = schedule;
        c.webhook_poll_ms = 50;
        c.webhook_timeout_ms = 1_000;
    })
    .await
}

fn ids_of(received: &[crate::webhook_support::Received]) -> Vec<String> {
    let mut ids: Vec<String> = received.iter().map(|r| r.id.clone()).collect();
    ids.dedup();
    ids
}

#[tokio::test]
async fn a_finished_task_delivers_one_signed_task_finished_with_the_version_a_subscriber_saw() {
    let app = spawn_webhook_app("1").await;
    let receiver = Receiver::ok().await;
    let (endpoint, secret) = app.endpoint_for(&receiver.url, &["TASK_FINISHED"]).await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    let task = app.create_task(2).await;

    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&app.admin_key).await;
    ws.subscribe("1", WATCH_TASK, json!({ "id": task })).await;
    ws.next_data("1").await;
    app.finish_task(&task, 2).await;
    let snapshots = ws.snapshots_until_complete("1").await;
    let seen = snapshots.last().expect("the terminal snapshot").clone();

    let received = receiver.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received_later = receiver.received();
    assert_eq!(received_later.len(), 1, "one delivery: {received_later:#?}");
    let hook = &received[0];
    hook.verify(&secret)
        .expect("a valid Standard Webhooks signature");
    assert!(hook.id.starts_with("msg_"), "{}", hook.id);
    assert!(
        hook.verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .is_err(),
        "another secret does not verify"
    );
    assert_eq!(hook.json["type"], json!("bulk_task.finished"));
    let data = &hook.json["data"];
    assert_eq!(data["id"], json!(task));
    assert_eq!(
        data["version"], seen["version"],
        "the version a subscriber saw"
    );
    assert_eq!(data["status"], json!("COMPLETED"));
    assert_eq!(data["counters"], seen["counters"]);
    assert_eq!(data["errorSummary"], json!([]));
    let current = app.task(&task).await;
    for field in [
        "type",
        "status",
        "version",
        "progress",
        "createdAt",
        "updatedAt",
        "finishedAt",
        "metadata",
    ] {
        assert_eq!(data[field], current[field], "{field} as the API shows it");
    }

    let deliveries = app
        .wait_deliveries(&endpoint, 1, |d| d["status"] == "SUCCEEDED")
        .await;
    let delivery = &deliveries[0];
    assert_eq!(delivery["event"], json!("TASK_FINISHED"));
    assert_eq!(delivery["attempts"], json!(1));
    assert_eq!(delivery["lastResponseStatus"], json!(200));
    assert_eq!(delivery["taskVersion"], seen["version"]);
    assert_eq!(delivery["task"]["id"], json!(task));
    assert!(delivery["deliveredAt"].is_string() && delivery["nextAttemptAt"].is_null());
    assert!(
        app.metric("bulkwatch_webhook_attempts_total{result=\"success\"}")
            .await
            >= 1,
        "/metrics counts the attempt"
    );
    // The backlog is read every few seconds: it drains to 0.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.metric("bulkwatch_webhook_outbox_backlog").await != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the backlog did not drain"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_receiver_failing_twice_gets_three_attempts_with_growing_gaps() {
    let app = spawn_webhook_app("0.4,1.2,5").await;
    let receiver =
        Receiver::start(|_, nth| (if nth < 2 { 500 } else { 200 }, Duration::ZERO)).await;
    let (endpoint, secret) = app.endpoint_for(&receiver.url, &["TASK_FINISHED"]).await;
    let task = app.create_task(1).await;
    app.finish_task(&task, 1).await;

    let got = receiver.wait_for(3).await;
    assert_eq!(ids_of(&got).len(), 1, "one webhook-id for every attempt");
    for r in &got {
        r.verify(&secret).expect("every attempt is signed");
    }
    let first_gap = got[1].at - got[0].at;
    let second_gap = got[2].at - got[1].at;
    assert!(
        first_gap >= Duration::from_millis(300) && second_gap > first_gap,
        "gaps grow: {first_gap:?} then {second_gap:?}"
    );
    let deliveries = app
        .wait_deliveries(&endpoint, 1, |d| d["status"] == "SUCCEEDED")
        .await;
    assert_eq!(deliveries[0]["attempts"], json!(3));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 3, "no attempt after the success");
}

#[tokio::test]
async fn a_receiver_that_times_out_fails_after_the_schedule() {
    let app = spawn_webhook_app("0.2").await;
    let receiver = Receiver::start(|_, _| (200, Duration::from_secs(3))).await;
    let (endpoint, _) = app.endpoint_for(&receiver.url, &["TASK_FINISHED"]).await;
    let task = app.create_task(1).await;
    app.finish_task(&task, 1).await;

    let deliveries = app
        .wait_deliveries(&endpoint, 1, |d| d["status"] == "FAILED")
        .await;
    let d = &deliveries[0];
    assert_eq!(d["attempts"], json!(2), "{d:#}");
    assert!(d["lastResponseStatus"].is_null(), "{d:#}");
    assert!(
        d["lastError"].as_str().unwrap().contains("timed out"),
        "{d:#}"
    );
    let took = d["lastDurationMs"].as_i64().unwrap();
    assert!(
        (900..2_500).contains(&took),
        "stopped at the timeout: {took} ms"
    );
    assert!(d["nextAttemptAt"].is_null());
}

#[tokio::test]
async fn private_addresses_are_refused_without_the_allow_flag() {
    let app = spawn_app_with(|c| {
        c.webhook_retry_schedule = "5".into();
        c.webhook_poll_ms = 50;
    })
    .await;
    let receiver = Receiver::ok().await;
    for url in [
        receiver.url.clone(),
        "http://10.0.0.7/hook".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[::1]/hook".to_owned(),
        "ftp://example.com/hook".to_owned(),
    ] {
        let (code, message) = app
            .create_endpoint_error(json!({ "url": url, "events": ["TASK_FINISHED"] }))
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "{url}: {message}");
    }
    // A name is checked on the address it resolves to, when sending.
    let by_name = format!("http://localhost:{}/hook", receiver.port);
    let (endpoint, _) = app.endpoint_for(&by_name, &["TASK_FINISHED"]).await;
    let task = app.create_task(1).await;
    app.finish_task(&task, 1).await;
    let deliveries = app
        .wait_deliveries(&endpoint, 1, |d| d["status"] == "RETRYING")
        .await;
    let error = deliveries[0]["lastError"].as_str().unwrap();
    assert!(
        error.contains("refused") && error.contains("loopback"),
        "{error}"
    );
    assert!(deliveries[0]["lastResponseStatus"].is_null());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        receiver.received().is_empty(),
        "nothing reached the receiver"
    );
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one_and_tests_and_redeliveries_keep_the_id() {
    let app = spawn_webhook_app("1").await;
    let receiver = Receiver::ok().await;
    let (endpoint, old) = app.endpoint_for(&receiver.url, &["TASK_CREATED"]).await;
    let rotated = app
        .data(
            "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret endpoint { id } } }",
            json!({ "id": endpoint }),
        )
        .await["rotateWebhookSecret"]
        .clone();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(rotated["endpoint"]["id"], json!(endpoint));

    let test = app
        .data(
            &format!("mutation($id: ID!) {{ sendTestWebhook(endpointId: $id) {{ {DELIVERY} }} }}"),
            json!({ "id": endpoint }),
        )
        .await["sendTestWebhook"]
        .clone();
    assert_eq!(test["status"], json!("PENDING"));
    assert!(test["task"].is_null());
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].json["type"], json!("webhook.test"));
    got[0].verify(&new).expect("signed with the new secret");
    got[0]
        .verify(&old)
        .expect("and, for a day, with the old one");
    let signatures = got[0].headers["webhook-signature"].to_str().unwrap();
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    for secret in [&new, &old] {
        let entry = got[0].signature_by_hand(secret).unwrap();
        assert!(
            signatures.split(' ').any(|e| e == entry),
            "one entry per secret, as computed by hand: {entry} in {signatures}"
        );
    }

    let again = app
        .data(
            &format!("mutation($id: ID!) {{ redeliverWebhook(deliveryId: $id) {{ {DELIVERY} }} }}"),
            json!({ "id": test["id"] }),
        )
        .await["redeliverWebhook"]
        .clone();
    assert_ne!(again["id"], test["id"], "a new delivery");
    let got = receiver.wait_for(2).await;
    assert_eq!(got[1].id, got[0].id, "the same webhook-id");
    assert_eq!(got[1].body, got[0].body, "the same body");
    got[1].verify(&new).unwrap();
    app.wait_deliveries(&endpoint, 2, |d| d["status"] == "SUCCEEDED")
        .await;
}

#[tokio::test]
async fn an_endpoint_failing_every_delivery_for_long_enough_is_disabled() {
    let app = spawn_app_with(|c| {
        c.webhook_allow_private = true;
        c.webhook_retry_schedule = "0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2".into();
        c.webhook_poll_ms = 50;
        c.webhook_disable_after_secs = 1;
    })
    .await;
    let receiver = Receiver::start(|_, _| (503, Duration::ZERO)).await;
    let (endpoint, _) = app.endpoint_for(&receiver.url, &["TASK_FINISHED"]).await;
    let task = app.create_task(1).await;
    app.finish_task(&task, 1).await;
    let deliveries = app
        .wait_deliveries(&endpoint, 1, |d| d["status"] == "FAILED")
        .await;
    let seen = app.endpoint(&endpoint).await;
    assert_eq!(seen["enabled"], json!(false), "{seen:#}");
    assert!(
        seen["disabledReason"].as_str().unwrap().contains("failed"),
        "{seen:#}"
    );
    let attempts = deliveries[0]["attempts"].as_i64().unwrap();
    assert!((3..=10).contains(&attempts), "{attempts}");
    assert_eq!(deliveries[0]["lastResponseStatus"], json!(503));

    // A disabled endpoint gets no new deliveries; enabling it clears the reason.
    let other = app.create_task(1).await;
    app.finish_task(&other, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.deliveries(&endpoint).await.len(), 1);
    let enabled = app
        .data(
            "mutation($input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $input) { enabled disabledReason } }",
            json!({ "input": { "id": endpoint, "enabled": true } }),
        )
        .await;
    assert_eq!(
        enabled["updateWebhookEndpoint"],
        json!({ "enabled": true, "disabledReason": null })
    );
}

#[tokio::test]
async fn endpoints_deliveries_and_events_stay_within_their_organisation() {
    let app = spawn_webhook_app("1").await;
    let scopes = "tasks:read,tasks:write,items:report,webhooks:manage";
    let a = app.as_key(&app.key_for("org-a", scopes));
    let b = app.as_key(&app.key_for("org-b", scopes));
    let (receiver_a, receiver_b) = (Receiver::ok().await, Receiver::ok().await);
    let (endpoint_a, _) = a
        .endpoint_for(&receiver_a.url, &["TASK_FINISHED", "TASK_CREATED"])
        .await;
    let (endpoint_b, _) = b
        .endpoint_for(&receiver_b.url, &["TASK_FINISHED", "TASK_CREATED"])
        .await;

    let task = a.create_task(1).await;
    a.finish_task(&task, 1).await;
    let got = receiver_a.wait_for(2).await;
    assert!(got.iter().all(|r| r.json["data"]["id"] == json!(task)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        receiver_b.received().is_empty(),
        "org A's task reached org B"
    );

    let delivery = a.deliveries(&endpoint_a).await[0]["id"].clone();
    let list = b
        .data("{ webhookEndpoints { nodes { id } } }", json!({}))
        .await;
    assert_eq!(
        list["webhookEndpoints"]["nodes"],
        json!([{ "id": endpoint_b }])
    );
    let node = b
        .data(
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            json!({ "ids": [endpoint_a, delivery] }),
        )
        .await;
    assert_eq!(node["nodes"], json!([null, null]));
    for (query, variables) in [
        (
            "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }",
            json!({ "id": endpoint_a }),
        ),
        (
            "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }",
            json!({ "id": endpoint_a }),
        ),
        (
            "mutation($id: ID!) { sendTestWebhook(endpointId: $id) { id } }",
            json!({ "id": endpoint_a }),
        ),
        (
            "mutation($id: ID!) { redeliverWebhook(deliveryId: $id) { id } }",
            json!({ "id": delivery }),
        ),
        (
            "mutation($input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $input) { id } }",
            json!({ "input": { "id": endpoint_a, "url": receiver_b.url } }),
        ),
    ] {
        assert_eq!(b.error_code(query, variables).await, "NOT_FOUND", "{query}");
    }
    assert_eq!(a.endpoint(&endpoint_a).await["url"], json!(receiver_a.url));

    // Without the scope: FORBIDDEN, even for the organisation's own endpoints.
    let reader = app.as_key(&app.key_for("org-a", "tasks:read,tasks:write"));
    assert_eq!(
        reader
            .error_code("{ webhookEndpoints { nodes { id } } }", json!({}))
            .await,
        "FORBIDDEN"
    );
    assert_eq!(
        reader
            .error_code(
                "query($id: ID!) { node(id: $id) { id } }",
                json!({ "id": endpoint_a })
            )
            .await,
        "FORBIDDEN"
    );
}

#[tokio::test]
async fn one_task_is_delivered_in_version_order_even_when_an_older_snapshot_is_retried() {
    let app = spawn_webhook_app("0.5").await;
    // The first message (the task's first status change) fails once.
    let first = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let seen_first = first.clone();
    let receiver = Receiver::start(move |id, nth| {
        let mut first = seen_first.lock().unwrap();
        let first = first.get_or_insert_with(|| id.to_owned());
        (
            if *first == id && nth == 0 { 500 } else { 200 },
            Duration::ZERO,
        )
    })
    .await;
    let (endpoint, _) = app
        .endpoint_for(&receiver.url, &["TASK_STATUS_CHANGED", "TASK_FINISHED"])
        .await;
    let task = app.create_task(2).await;
    app.report_all(&task, json!([{ "index": 0, "outcome": "RUNNING" }]))
        .await;
    app.finish_task(&task, 2).await;

    let got = receiver
        .wait_until(Duration::from_secs(20), |r| {
            r.iter().filter(|r| r.accepted).count() >= 3
        })
        .await;
    let accepted: Vec<&Value> = got.iter().filter(|r| r.accepted).map(|r| &r.json).collect();
    let versions: Vec<i64> = accepted
        .iter()
        .map(|j| j["data"]["version"].as_i64().unwrap())
        .collect();
    assert!(
        versions.windows(2).all(|w| w[0] <= w[1]),
        "versions arrive in order: {versions:?}"
    );
    assert_eq!(accepted[0]["data"]["status"], json!("RUNNING"));
    assert!(!got[0].accepted, "the first attempt failed");
    let types: Vec<&str> = accepted
        .iter()
        .map(|j| j["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"bulk_task.finished"), "{types:?}");
    app.wait_deliveries(&endpoint, 3, |d| d["status"] == "SUCCEEDED")
        .await;
}

#[tokio::test]
async fn two_instances_on_one_database_send_each_attempt_once() {
    let app = spawn_webhook_app("1").await;
    let mut config = bulkwatch::Config::with_database(app.database_url.clone());
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.db_connections = 4;
    config.webhook_allow_private = true;
    config.webhook_poll_ms = 50;
    let second = bulkwatch::Application::build(config).await.unwrap();
    tokio::spawn(second.run_until(std::future::pending()));

    let receiver = Receiver::ok().await;
    let (endpoint, _) = app.endpoint_for(&receiver.url, &["TASK_FINISHED"]).await;
    let tasks = 40;
    for _ in 0..tasks {
        let task = app.create_task(1).await;
        app.finish_task(&task, 1).await;
    }
    let got = receiver.wait_for(tasks).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_later = receiver.received();
    assert_eq!(got_later.len(), got.len(), "no extra sends");
    let mut ids = ids_of(&got_later);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), tasks, "one message per finish, each sent once");
    let deliveries = app.deliveries(&endpoint).await;
    assert!(
        deliveries.iter().all(|d| d["attempts"] == json!(1)),
        "{deliveries:#?}"
    );
    let _ = id_of(&deliveries[0]);
}
