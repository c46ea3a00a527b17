//! The README's tour, run exactly as written: every GraphQL block with the
//! Variables JSON beside it, the download command and the demo worker. A
//! README that drifts from the server fails here.

use serde_json::{Value, json};

use crate::crash::bulkwatch;
use crate::helpers::{TestApp, spawn_app};
use crate::ws::{TRANSPORT, Ws};

const README: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));

/// A fenced code block: its language and its text.
struct Block {
    lang: String,
    text: String,
}

/// The fenced blocks between a heading and the next heading of its level.
fn blocks(heading: &str) -> Vec<Block> {
    let start = README
        .find(heading)
        .unwrap_or_else(|| panic!("README has {heading}"));
    let rest = &README[start + heading.len()..];
    let level = heading.split(' ').next().unwrap();
    let end = rest.find(&format!("\n{level} ")).unwrap_or(rest.len());
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for line in rest[..end].lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(lang)) => {
                open = Some(Block {
                    lang: lang.trim().to_owned(),
                    text: String::new(),
                })
            }
            (Some(_), Some(_)) => out.extend(open.take()),
            (Some(block), None) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

async fn run(app: &TestApp, query: &str, variables: Value) -> Value {
    let body = app.post(query, variables).await;
    assert!(body.get("errors").is_none(), "{query}\n{body:#}");
    body["data"].clone()
}

#[tokio::test]
async fn the_tour_works_as_pasted() {
    let app = spawn_app().await;
    let tour = blocks("## A short tour");
    let mut task = String::new();
    let mut steps = tour.iter().peekable();
    let mut queries = 0;
    while let Some(block) = steps.next() {
        match block.lang.as_str() {
            "graphql" => {
                let variables = match steps.peek() {
                    Some(next) if next.lang == "json" => {
                        let text = steps.next().unwrap().text.replace("TASK_ID", &task);
                        serde_json::from_str(&text).expect("the Variables JSON parses")
                    }
                    _ => json!({}),
                };
                let data = run(&app, &block.text, variables).await;
                if let Some(id) = data["createBulkTask"]["task"]["id"].as_str() {
                    task = id.to_owned();
                    assert_eq!(
                        data["createBulkTask"]["rejected"].as_array().unwrap().len(),
                        1
                    );
                }
                if let Some(status) = data["reportItemResults"]["task"]["status"].as_str() {
                    assert_eq!(status, "COMPLETED_WITH_FAILURES", "as the README says");
                }
                if let Some(nodes) = data["bulkTasks"]["nodes"].as_array() {
                    assert_eq!(nodes.len(), 1, "{data:#}");
                }
                queries += 1;
            }
            "sh" if block.text.contains("curl") => {
                let url = block
                    .text
                    .split_whitespace()
                    .find(|w| w.starts_with("http://127.0.0.1:8080/"))
                    .expect("a URL on the server")
                    .replace("http://127.0.0.1:8080", &app.address)
                    .replace("TASK_ID", &task);
                let response = app.client.get(url).send().await.unwrap();
                assert_eq!(response.status(), 200);
                let lines = response.text().await.unwrap();
                assert_eq!(
                    lines.lines().count(),
                    2,
                    "one failed and one rejected item: {lines}"
                );
            }
            "json" => panic!("a Variables block without its query:\n{}", block.text),
            _ => {}
        }
    }
    assert_eq!(queries, 3, "the tour's three GraphQL steps ran");
}

#[tokio::test]
async fn the_demo_worker_command_runs_as_written() {
    let app = spawn_app().await;
    let watch = blocks("### Watch a task move");
    let command = watch
        .iter()
        .filter(|b| b.lang == "sh")
        .flat_map(|b| b.text.lines())
        .find(|l| l.contains("worker-demo"))
        .expect("the README runs a demo worker");
    let mut args: Vec<String> = command
        .split_whitespace()
        .skip_while(|w| *w != "worker-demo")
        .map(str::to_owned)
        .collect();
    // The README's worker pretends 100 ms of work per item, for people to
    // watch; here it may hurry, and its task is smaller.
    for (flag, fast) in [("--work-ms", "1"), ("--create", "200")] {
        if let Some(at) = args.iter().position(|a| a == flag) {
            args[at + 1] = fast.to_owned();
        }
    }
    args.extend(["--url".to_owned(), app.url("/graphql")]);
    let mut demo = bulkwatch();
    demo.args(&args).env("BULKWATCH_API_KEY", &app.admin_key);
    let output = tokio::task::spawn_blocking(move || demo.output())
        .await
        .unwrap()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "{said}");

    // The subscription it prints runs as printed.
    let subscription = said
        .lines()
        .find_map(|l| l.split("watch it in GraphiQL:").nth(1))
        .expect("the subscription to paste")
        .trim()
        .to_owned();
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&app.admin_key).await;
    ws.subscribe("w", &subscription, json!({})).await;
    let first = ws.next_data("w").await;
    let status = first["bulkTaskUpdated"]["status"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        ["COMPLETED", "COMPLETED_WITH_FAILURES", "FAILED"].contains(&status.as_str()),
        "the worker finished the task: {first:#}\n{said}"
    );
    ws.expect_complete("w").await;
}
