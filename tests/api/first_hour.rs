//! A newcomer's first hour: the demo workers hand over when one stops, the
//! CLI finds keys by the prefix it shows, startup failures say what to do,
//! and answers keep the order in which fields were asked.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::crash::{bulkwatch, free_port};
use crate::helpers::{spawn_app, spawn_app_with};
use crate::ws::{TRANSPORT, Ws};

const RUNNING_WORKERS: &str = "query($id: ID!) { bulkTask(id: $id) { status \
    items(first: 100, filter: { status: [RUNNING] }) { nodes { workerId } } } }";

#[tokio::test]
async fn a_stopped_demo_workers_items_are_finished_by_the_other() {
    let app = spawn_app_with(|config| config.reaper_interval_ms = 200).await;
    let task = app.create_task(120).await;
    // The first works slowly (it is stopped mid-batch), the second quickly,
    // so the second runs out of items while the first's lease still holds.
    let worker = |name: &str, work_ms: &str| {
        bulkwatch()
            .args([
                "worker-demo",
                "--task",
                &task,
                "--batch",
                "20",
                "--work-ms",
                work_ms,
            ])
            .args(["--lease", "3", "--fail-rate", "0", "--worker-id", name])
            .args(["--url", &app.url("/graphql")])
            .env("BULKWATCH_API_KEY", &app.admin_key)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("a demo worker starts")
    };
    let mut stopped = worker("demo-a", "300");
    let survivor = worker("demo-b", "2");

    // Stop the first worker while it holds a lease, mid-batch.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let data = app.data(RUNNING_WORKERS, json!({ "id": task })).await;
        let holds = data["bulkTask"]["items"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["workerId"] == "demo-a");
        if holds {
            break;
        }
        assert!(Instant::now() < deadline, "demo-a never claimed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stopped.kill().unwrap();
    stopped.wait().unwrap();

    let output = tokio::task::spawn_blocking(move || survivor.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("leased to other workers; waiting"), "{said}");
    let finished = app.task(&task).await;
    assert_eq!(finished["status"], "COMPLETED", "{finished:#}\n{said}");
    assert_eq!(finished["counters"]["succeeded"], 120);
}

#[tokio::test]
async fn the_demo_worker_creates_its_task_and_works_it_to_the_end() {
    let app = spawn_app().await;
    let mut demo = bulkwatch();
    demo.args([
        "worker-demo",
        "--create",
        "30",
        "--batch",
        "10",
        "--work-ms",
        "1",
    ])
    .args(["--fail-rate", "0", "--url", &app.url("/graphql")])
    .env("BULKWATCH_API_KEY", &app.admin_key);
    // The server runs on this test's runtime: wait for the worker off it.
    let output = tokio::task::spawn_blocking(move || demo.output())
        .await
        .unwrap()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{said}");
    let id = said
        .split_whitespace()
        .skip_while(|w| *w != "task")
        .nth(1)
        .expect("the created task's id is printed");
    assert!(
        said.contains("bulkTaskUpdated"),
        "the subscription to paste: {said}"
    );
    let task = app.task(id).await;
    assert_eq!(task["status"], "COMPLETED", "{task:#}");
    assert_eq!(task["counters"]["total"], 30);
}

#[tokio::test]
async fn keys_are_revoked_by_the_prefix_the_list_shows() {
    let app = spawn_app().await;
    let key = app.key_for("default", "tasks:read");
    let prefix = &key[..11];
    let listed = app.cli(&["keys", "list"]);
    assert!(listed.contains(prefix), "{listed}");
    let orgs = app.cli(&["orgs", "list"]);
    assert!(orgs.contains("default"), "{orgs}");

    // A start shorter than the 6 characters revoke takes names no key (an
    // ambiguous one is refused: first_hour_keys.rs).
    let output = bulkwatch()
        .args(["keys", "revoke", "bw_"])
        .env("DATABASE_URL", &app.database_url)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("no active key has the id or prefix \"bw_\""),
        "{said}"
    );

    app.cli(&["keys", "revoke", prefix]);
    let body = app
        .post_as(Some(&key), "{ bulkTasks { totalCount } }", json!({}))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let output = bulkwatch()
        .args(["keys", "revoke", prefix])
        .env("DATABASE_URL", &app.database_url)
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "a revoked key is not revoked twice"
    );

    let output = bulkwatch()
        .args(["keys", "create", "--org", "nowhere"])
        .env("DATABASE_URL", &app.database_url)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("\"nowhere\" not found") && said.contains("orgs create"),
        "{said}"
    );
}

#[tokio::test]
async fn startup_failures_name_the_database_and_the_next_step() {
    let missing = bulkwatch()
        .args(["migrate"])
        .env("DATABASE_URL", "sqlite:///no/such/dir/bulkwatch.db")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert!(
        said.contains("/no/such/dir") && said.contains("does not exist"),
        "{said}"
    );

    let port = free_port();
    let started = Instant::now();
    let refused = bulkwatch()
        .args(["migrate"])
        .env(
            "DATABASE_URL",
            format!("postgres://someone:hunter2@127.0.0.1:{port}/db"),
        )
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(started.elapsed() < Duration::from_secs(10), "fails fast");
    assert!(
        said.contains(&format!("is PostgreSQL running at 127.0.0.1:{port}")),
        "{said}"
    );
    assert!(
        !said.contains("hunter2"),
        "the password is not shown: {said}"
    );

    // A port in use names the address and the setting that moves it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let output = bulkwatch()
        .args(["serve"])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/b.db", dir.path().display()),
        )
        .env("BULKWATCH_BIND", address.to_string())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        said.contains(&address.to_string()) && said.contains("BULKWATCH_BIND"),
        "{said}"
    );
}

/// Where each field name first appears in a response body, after `from`.
fn keys_in_order(body: &str, names: &[&str]) -> Vec<usize> {
    let start = body.find("bulkTask").expect("the root field");
    let body = &body[start..];
    names
        .iter()
        .map(|n| body.find(&format!("\"{n}\"")).expect(n))
        .collect()
}

#[tokio::test]
async fn answers_keep_the_order_fields_were_asked_in() {
    let app = spawn_app().await;
    let task = app.create_task(1).await;
    let query =
        "query($id: ID!) { bulkTask(id: $id) { type status id counters { total pending } } }";
    let asked = ["type", "status", "id", "counters", "total", "pending"];
    let ascending = |at: Vec<usize>| at.windows(2).all(|w| w[0] < w[1]);

    let post = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": query, "variables": { "id": task } }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(ascending(keys_in_order(&post, &asked)), "POST: {post}");

    let get = app
        .client
        .get(app.url("/graphql"))
        .query(&[
            ("query", query),
            ("variables", &json!({ "id": task }).to_string()),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(ascending(keys_in_order(&get, &asked)), "GET: {get}");

    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&app.admin_key).await;
    ws.subscribe(
        "o",
        "subscription($id: ID!) { bulkTaskUpdated(id: $id) { type status id counters { total pending } } }",
        json!({ "id": task }),
    )
    .await;
    ws.next_message().await;
    let frame = ws.last_text.clone();
    assert!(
        ascending(keys_in_order(&frame, &asked)),
        "WebSocket: {frame}"
    );
}

#[tokio::test]
async fn the_watched_tasks_gauge_falls_back_when_subscriptions_end_or_are_refused() {
    let app = spawn_app().await;
    let task = app.create_task(2).await;
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&app.admin_key).await;
    let nowhere = bulkwatch::graphql::ids::encode(
        bulkwatch::graphql::ids::Kind::BulkTask,
        uuid::Uuid::now_v7(),
    )
    .0;
    ws.subscribe(
        "gone",
        "subscription($id: ID!) { bulkTaskUpdated(id: $id) { id } }",
        json!({ "id": nowhere }),
    )
    .await;
    ws.expect_error("gone").await;
    ws.subscribe(
        "live",
        "subscription($id: ID!) { bulkTaskUpdated(id: $id) { id } }",
        json!({ "id": task }),
    )
    .await;
    ws.next_data("live").await;
    // The refused one's hub ends on its own once it found nothing.
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.metric("bulkwatch_watched_tasks").await != 1 {
        assert!(Instant::now() < deadline, "only the live one is watched");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ws.stop("live").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.metric("bulkwatch_watched_tasks").await != 0 {
        assert!(Instant::now() < deadline, "the gauge returns to 0");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
