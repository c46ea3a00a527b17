//! The server is killed with SIGKILL while four worker processes claim and
//! report a 20,000-item task; at the end every item is final, counted once,
//! and no outcome a worker saw acknowledged is missing.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{TestApp, client_with_key, fresh_database};
use crate::ops::id_of;

const ITEMS: usize = 20_000;
const WORKERS: usize = 4;
const KILLS: usize = 5;

pub(crate) fn bulkwatch() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bulkwatch"));
    command.env("RUST_LOG", "warn");
    command
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn start_server(database_url: &str, port: u16) -> Child {
    bulkwatch()
        .args(["serve"])
        .env("DATABASE_URL", database_url)
        .env("BULKWATCH_BIND", format!("127.0.0.1:{port}"))
        .env("BULKWATCH_REAPER_INTERVAL_MS", "200")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts")
}

pub(crate) async fn wait_ready(client: &reqwest::Client, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        assert!(Instant::now() < deadline, "the server did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A pseudo-random duration from the clock, so kills land at varied moments.
fn jitter(min_ms: u64, max_ms: u64) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    Duration::from_millis(min_ms + u64::from(nanos) % (max_ms - min_ms))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_server_loses_and_double_counts_nothing() {
    let (database_url, dir) = fresh_database().await;
    let dir = dir.unwrap_or_else(|| tempfile::tempdir().unwrap());
    let output = bulkwatch()
        .args(["keys", "create", "--org", "default"])
        .env("DATABASE_URL", &database_url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let key = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let port = free_port();
    let address = format!("http://127.0.0.1:{port}");
    let client = client_with_key(Some(&key));
    let mut server = start_server(&database_url, port);
    wait_ready(&client, port).await;
    let app = TestApp::attach(&address, &key, &database_url);

    let items: Vec<Value> = (0..ITEMS)
        .map(|i| json!({ "clientItemId": format!("c{i}") }))
        .collect();
    let created = app
        .create(json!({ "type": "crash.test", "maxAttempts": 5, "items": items }))
        .await;
    let task_id = id_of(&created["task"]);

    let logs: Vec<_> = (0..WORKERS)
        .map(|i| dir.path().join(format!("acks-{i}.log")))
        .collect();
    let mut workers: Vec<Child> = logs
        .iter()
        .enumerate()
        .map(|(i, log)| {
            bulkwatch()
                .args([
                    "worker-demo",
                    "--url",
                    &format!("{address}/graphql"),
                    "--type",
                    "crash.test",
                ])
                .args([
                    "--batch",
                    "100",
                    "--lease",
                    "3",
                    "--work-ms",
                    "0",
                    "--fail-rate",
                    "0.05",
                ])
                .args(["--idle-tries", "8", "--worker-id", &format!("w{i}")])
                .arg("--ack-log")
                .arg(log)
                .env("BULKWATCH_API_KEY", &key)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("a worker starts")
        })
        .collect();

    for _ in 0..KILLS {
        tokio::time::sleep(jitter(300, 1500)).await;
        server.kill().expect("SIGKILL");
        server.wait().unwrap();
        server = start_server(&database_url, port);
        wait_ready(&client, port).await;
    }

    let deadline = Instant::now() + Duration::from_secs(600);
    for worker in &mut workers {
        loop {
            if let Some(status) = worker.try_wait().unwrap() {
                assert!(status.success(), "a worker failed: {status}");
                break;
            }
            assert!(Instant::now() < deadline, "workers did not finish");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let task = app.task(&task_id).await;
    let counters = &task["counters"];
    assert_eq!(counters["total"], json!(ITEMS), "{task:#}");
    assert_eq!(
        counters["finished"],
        json!(ITEMS),
        "every item is final: {task:#}"
    );
    assert_eq!(counters["pending"], json!(0));
    assert_eq!(counters["running"], json!(0));
    app.assert_counters_consistent(&task_id).await;

    // Every acknowledged SUCCEEDED stands; an acknowledged (retryable)
    // FAILED ended either FAILED or, retried, SUCCEEDED.
    let mut statuses: HashMap<i64, String> = HashMap::new();
    let mut after = Value::Null;
    loop {
        let page = app
            .data(
                "query($id: ID!, $after: String) { bulkTask(id: $id) { items(first: 100, after: $after) {
                    nodes { index status } pageInfo { hasNextPage endCursor } } } }",
                json!({ "id": task_id, "after": after }),
            )
            .await;
        let items = &page["bulkTask"]["items"];
        for node in items["nodes"].as_array().unwrap() {
            statuses.insert(
                node["index"].as_i64().unwrap(),
                node["status"].as_str().unwrap().to_owned(),
            );
        }
        if !items["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = items["pageInfo"]["endCursor"].clone();
    }
    let mut acknowledged = 0;
    for log in &logs {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in text.lines() {
            let parts: Vec<&str> = line.split(' ').collect();
            let (index, outcome) = (parts[1].parse::<i64>().unwrap(), parts[2]);
            let status = statuses.get(&index).map(String::as_str);
            match outcome {
                "SUCCEEDED" => assert_eq!(status, Some("SUCCEEDED"), "acknowledged item {index}"),
                _ => assert!(
                    matches!(status, Some("FAILED" | "SUCCEEDED")),
                    "acknowledged item {index}: {status:?}"
                ),
            }
            acknowledged += 1;
        }
    }
    assert!(
        acknowledged >= ITEMS,
        "the workers saw {acknowledged} acknowledgements"
    );
    server.kill().ok();
    server.wait().ok();
}
