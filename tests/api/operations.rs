//! What an operator relies on: request ids on every answer and in the logs,
//! the client's W3C `traceparent` in the logs, and logs as JSON on request.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::crash::{bulkwatch, free_port};
use crate::helpers::spawn_app;

#[tokio::test]
async fn every_answer_carries_a_request_id_and_keeps_the_clients() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(uuid::Uuid::parse_str(&id).map(|_| ()), Ok(()), "{id}");
    let response = app
        .client
        .get(app.url("/readyz"))
        .header("x-request-id", "client-chosen-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "client-chosen-42");
}

#[tokio::test]
async fn json_logs_name_the_request_and_its_traceparent() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = bulkwatch()
        .args(["serve"])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/l.db", dir.path().display()),
        )
        .env("BULKWATCH_BIND", format!("127.0.0.1:{port}"))
        .env("BULKWATCH_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = server.stderr.take().unwrap();
    let (lines, logged) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    crate::crash::wait_ready(&reqwest::Client::new(), port).await;
    let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/graphql"))
        .header("traceparent", trace)
        .header("x-request-id", "req-json-1")
        .json(&serde_json::json!({ "query": "{ bulkTasks { totalCount } }" }))
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let found = loop {
        let line = logged
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("a request log line");
        let entry: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if entry["span"]["request_id"] == "req-json-1" {
            break entry;
        }
    };
    assert_eq!(found["span"]["traceparent"], trace, "{found:#}");
    server.kill().ok();
    server.wait().ok();
}

/// An operator reads what a metric means in the README; every metric the
/// server exposes must be there, by name, in the metrics table.
#[tokio::test]
async fn every_metric_on_metrics_is_explained_in_the_readme() {
    let app = spawn_app().await;
    let text = app.metrics_text().await;
    let readme = include_str!("../../README.md");
    let table = &readme[readme.find("## Metrics").expect("a Metrics section")..];
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.len() >= 10, "{text}");
    for name in names {
        assert!(
            table.contains(&format!("| `{name}`")) || table.contains(&format!("| `{name}{{")),
            "README's metrics table does not explain {name}"
        );
    }
}
