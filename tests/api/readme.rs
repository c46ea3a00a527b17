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
    let mut downloads = 0;
    let mut export_url: Option<String> = None;
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
                if let Some(update) = data.get("updateBulkTask") {
                    assert_eq!(update["metadata"]["credits"]["consumed"], 1, "{data:#}");
                    assert_eq!(update["result"], json!({ "provisioned": 1 }));
                    assert_eq!(update["artifacts"][0]["name"], "hlr_log");
                    export_url = update["exportUrl"].as_str().map(str::to_owned);
                }
                queries += 1;
            }
            "sh" if block.text.contains("curl") => {
                let path = export_url
                    .as_deref()
                    .expect("the tour gives an exportUrl before it downloads one");
                assert!(block.text.contains("http://127.0.0.1:8080$EXPORT_URL"));
                // No key: the signed link is all a browser or curl needs.
                let response = reqwest::get(app.url(path)).await.unwrap();
                assert_eq!(response.status(), 200);
                let csv = response.text().await.unwrap();
                let rows: Vec<&str> = csv.lines().collect();
                assert_eq!(
                    rows.len(),
                    3,
                    "a header, one failed and one rejected item: {csv}"
                );
                assert!(rows[0].starts_with("index,"), "{csv}");
                assert!(rows[1].contains("HLR_TIMEOUT"), "{csv}");
                assert!(rows[2].contains("REJECTED"), "{csv}");
                downloads += 1;
            }
            "json" => panic!("a Variables block without its query:\n{}", block.text),
            _ => {}
        }
    }
    assert_eq!(queries, 4, "the tour's four GraphQL steps ran");
    assert_eq!(downloads, 1, "the tour's download ran");
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

/// GraphiQL opens with the tour as its tabs: every GraphQL step of the tour
/// is in them as written (the tabs name their operations, so the first
/// line may differ).
#[test]
fn graphiql_opens_with_the_tour() {
    let tabs = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/web/src/graphiql/tabs.ts"
    ));
    let steps: Vec<Block> = blocks("## A short tour")
        .into_iter()
        .filter(|b| b.lang == "graphql")
        .collect();
    assert_eq!(steps.len(), 4);
    for step in steps {
        let body = step.text.split_once('\n').map(|(_, rest)| rest).unwrap();
        assert!(
            tabs.contains(body),
            "GraphiQL's tabs lack this tour step:\n{}",
            step.text
        );
    }
}
