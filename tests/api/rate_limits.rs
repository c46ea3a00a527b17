//! Rate limits: requests per second per organisation and per key, and query
//! complexity per second per organisation. Each test sets small limits and
//! floods until refused, so none depends on how fast the machine is.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, client_with_key, spawn_app_with};
use crate::ws::{Received, TRANSPORT, Ws};

const CHEAP: &str = "{ bulkTasks(first: 1) { nodes { id } } }";
/// About 1,850 of complexity: 80 tasks, each with a page of 10 items.
const HEAVY: &str = "{ bulkTasks(first: 80) { nodes { items(first: 10) { nodes { id } } } } }";
const WATCH: &str = "subscription { bulkTasksUpdated { id } }";

/// What an HTTP client sees of one answer.
struct Answer {
    status: StatusCode,
    retry_after: Option<u64>,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or("")
    }

    fn message(&self) -> &str {
        self.body["errors"][0]["message"].as_str().unwrap_or("")
    }

    fn assert_served(&self) {
        assert_eq!(self.status, StatusCode::OK, "{:#}", self.body);
        assert!(self.body.get("errors").is_none(), "{:#}", self.body);
    }

    /// 429, a `Retry-After` of whole seconds, RATE_LIMITED, and a message
    /// that names the setting of the limit.
    fn assert_refused(&self, setting: &str) {
        assert_eq!(
            self.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{:#}",
            self.body
        );
        let wait = self.retry_after.expect("a Retry-After header");
        assert!((1..=2).contains(&wait), "Retry-After: {wait}");
        assert_eq!(self.code(), "RATE_LIMITED", "{:#}", self.body);
        assert_eq!(
            self.body["errors"][0]["extensions"]["retryAfter"],
            json!(wait)
        );
        assert!(
            self.message().contains(setting) && self.message().contains("retry after"),
            "the message names the limit and what to do: {}",
            self.message()
        );
    }
}

async fn ask(app: &TestApp, key: Option<&str>, query: &str) -> Answer {
    let response = client_with_key(key)
        .post(app.url("/graphql"))
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("request sent");
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().parse::<u64>().expect("whole seconds"));
    Answer {
        status: response.status(),
        retry_after,
        body: response.json().await.expect("a JSON body"),
    }
}

/// Sends `query` as `key` until it is refused; every answer before that is served.
async fn flood(app: &TestApp, key: &str, query: &str) -> Answer {
    for _ in 0..200 {
        let answer = ask(app, Some(key), query).await;
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            return answer;
        }
        answer.assert_served();
    }
    panic!("200 requests of {query} in a row were all served");
}

/// The refusals `/metrics` counts for one limit.
async fn refused(app: &TestApp, limit: &str) -> u64 {
    let text = app.metrics_text().await;
    let sample = format!("bulkwatch_rate_limited_total{{limit=\"{limit}\"}} ");
    let line = text
        .lines()
        .find(|l| l.starts_with(&sample))
        .unwrap_or_else(|| panic!("no {sample} in /metrics:\n{text}"));
    line[sample.len()..].parse().unwrap()
}

#[tokio::test]
async fn an_organisation_over_its_request_rate_waits_while_another_is_served() {
    let app = spawn_app_with(|c| {
        c.rate_limit_org_rps = 5;
        c.rate_limit_key_rps = 0;
    })
    .await;
    let acme = app.key_for("acme", "tasks:read");
    assert_eq!(refused(&app, "organisation_requests").await, 0);

    let refusal = flood(&app, &app.admin_key, CHEAP).await;
    refusal.assert_refused("BULKWATCH_RATE_LIMIT_ORG_RPS");
    ask(&app, Some(&acme), CHEAP).await.assert_served();
    assert!(refused(&app, "organisation_requests").await >= 1);
    assert_eq!(refused(&app, "key_requests").await, 0);

    let wait = refusal.retry_after.unwrap();
    tokio::time::sleep(Duration::from_secs(wait)).await;
    ask(&app, Some(&app.admin_key), CHEAP).await.assert_served();
}

#[tokio::test]
async fn one_key_over_its_rate_leaves_the_other_keys_of_its_organisation_served() {
    let app = spawn_app_with(|c| {
        c.rate_limit_org_rps = 1_000;
        c.rate_limit_key_rps = 3;
    })
    .await;
    let other = app.key_for("default", "tasks:read");

    flood(&app, &app.admin_key, CHEAP)
        .await
        .assert_refused("BULKWATCH_RATE_LIMIT_KEY_RPS");
    ask(&app, Some(&other), CHEAP).await.assert_served();
    assert!(refused(&app, "key_requests").await >= 1);
    assert_eq!(refused(&app, "organisation_requests").await, 0);
}

#[tokio::test]
async fn heavy_queries_spend_the_complexity_budget_and_cheap_ones_still_pass() {
    let app = spawn_app_with(|c| {
        c.max_complexity = 2_000;
        c.rate_limit_org_complexity = 2_000;
    })
    .await;
    let acme = app.key_for("acme", "tasks:read");

    // The first heavy query fits the budget; the next ones within a second do not.
    ask(&app, Some(&app.admin_key), HEAVY).await.assert_served();
    flood(&app, &app.admin_key, HEAVY)
        .await
        .assert_refused("BULKWATCH_RATE_LIMIT_ORG_COMPLEXITY");
    ask(&app, Some(&app.admin_key), CHEAP).await.assert_served();
    ask(&app, Some(&acme), HEAVY).await.assert_served();
    assert!(refused(&app, "organisation_complexity").await >= 1);
}

#[tokio::test]
async fn in_a_batch_only_the_operation_over_the_budget_is_refused() {
    let app = spawn_app_with(|c| {
        c.max_batch = 5;
        c.max_complexity = 2_000;
        c.rate_limit_org_complexity = 2_000;
    })
    .await;
    let batch: Vec<Value> = [HEAVY, HEAVY, CHEAP]
        .iter()
        .map(|q| json!({ "query": q }))
        .collect();
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let results: Vec<Value> = response.json().await.unwrap();
    assert!(results[0].get("errors").is_none(), "{results:#?}");
    let refused = &results[1]["errors"][0];
    assert_eq!(
        refused["extensions"]["code"], "RATE_LIMITED",
        "{results:#?}"
    );
    assert!(refused["extensions"]["retryAfter"].as_u64() >= Some(1));
    assert!(results[2].get("errors").is_none(), "{results:#?}");
}

#[tokio::test]
async fn callers_without_a_key_are_refused_as_such_and_charged_to_no_one() {
    let app = spawn_app_with(|c| {
        c.rate_limit_org_rps = 2;
        c.rate_limit_key_rps = 2;
    })
    .await;
    for _ in 0..10 {
        let answer = ask(&app, None, CHEAP).await;
        assert_eq!(answer.code(), "UNAUTHENTICATED", "{:#}", answer.body);
        assert_ne!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    }
    ask(&app, Some(&app.admin_key), CHEAP).await.assert_served();
}

#[tokio::test]
async fn a_subscribe_over_the_rate_ends_with_an_error_and_the_socket_stays_open() {
    let app = spawn_app_with(|c| {
        c.rate_limit_org_rps = 0;
        c.rate_limit_key_rps = 2;
    })
    .await;
    let mut ws = Ws::connect(&app, TRANSPORT).await;
    ws.init(&app.admin_key).await;
    // `bulkTasksUpdated` sends nothing until a task changes: the only
    // messages are the refusals.
    for n in 0..8 {
        ws.subscribe(&format!("s{n}"), WATCH, Value::Null).await;
    }
    let first = ws.next_message().await;
    assert_eq!(first["type"], "error", "{first}");
    let errors = first["payload"].as_array().expect("a list of errors");
    assert_eq!(errors[0]["extensions"]["code"], "RATE_LIMITED", "{first}");
    let wait = errors[0]["extensions"]["retryAfter"].as_u64().unwrap();
    assert!(wait >= 1, "{first}");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("BULKWATCH_RATE_LIMIT_KEY_RPS"),
        "{first}"
    );
    while let Some(Received::Message(message)) = ws.recv(Duration::from_millis(300)).await {
        assert_eq!(message["type"], "error", "{message}");
    }
    ws.ping(None).await;

    // The subscriptions that were let in still run, and a subscribe after
    // the wait is let in too.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    ws.subscribe("late", WATCH, Value::Null).await;
    ws.expect_quiet(Duration::from_millis(500)).await;
    ws.ping(None).await;
}

#[test]
fn a_complexity_budget_below_the_complexity_limit_is_refused_at_start() {
    let mut config = bulkwatch::Config::with_database("sqlite::memory:");
    config.max_complexity = 25_000;
    config.rate_limit_org_complexity = 10_000;
    let err = config.validate().unwrap_err();
    assert!(err.contains("BULKWATCH_RATE_LIMIT_ORG_COMPLEXITY"), "{err}");
    config.rate_limit_org_complexity = 0;
    config.validate().expect("0 turns the budget off");
}

#[tokio::test]
async fn a_large_report_over_the_budget_is_refused_and_applies_nothing() {
    let app = spawn_app_with(|c| {
        c.max_complexity = 2_000;
        c.rate_limit_org_complexity = 2_000;
    })
    .await;
    let task = app.create_task(2_000).await;
    ask(&app, Some(&app.admin_key), HEAVY).await.assert_served();

    // Reports of 20 results (more than the server remembers validations
    // for), each to items of its own, until one is refused.
    let mut served = 0;
    let refusal = loop {
        assert!(served < 100, "100 reports in a row were all served");
        let results: Vec<Value> = (served * 20..served * 20 + 20)
            .map(|i| json!({ "index": i, "outcome": "SUCCEEDED" }))
            .collect();
        let variables = json!({ "input": { "taskId": task, "results": results } });
        let (status, body) = app.post_with_status(crate::ops::REPORT, variables).await;
        if status == StatusCode::TOO_MANY_REQUESTS.as_u16() {
            break body;
        }
        assert_eq!(body["data"]["reportItemResults"]["applied"], 20, "{body:#}");
        served += 1;
    };
    assert_eq!(
        refusal["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{refusal:#}"
    );
    assert!(
        refusal.get("data").is_none_or(Value::is_null),
        "{refusal:#}"
    );
    // Read the task once the budget has refilled, as the refusal says.
    let wait = refusal["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(wait * 1_000 + 100)).await;
    let counters = &app.task(&task).await["counters"];
    assert_eq!(
        counters["succeeded"],
        json!(served * 20),
        "the refused report applied nothing"
    );
    assert_eq!(counters["pending"], json!(2_000 - served * 20));
}
