//! The HTTP surface: GET and POST /graphql, content types, body and batch
//! limits, depth and complexity limits, GraphiQL, health, metrics, and the
//! exported schema.

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

// ---------------------------------------------------------------------------
// Shared helpers of this file
// ---------------------------------------------------------------------------

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// Nothing a client sees may leak SQL, driver or panic text.
fn assert_clean(body: &str) {
    let lower = body.to_lowercase();
    for needle in [
        "select ",
        "insert into",
        "update bulk_tasks",
        "delete from",
        "sqlx",
        "sqlite",
        "postgres",
        "panicked",
        "syntax error at",
        "no such table",
        "bulk_tasks",
        "task_items",
        "stack backtrace",
    ] {
        assert!(
            !lower.contains(needle),
            "the response leaks {needle:?}: {body}"
        );
    }
}

fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// POSTs a raw body with the given headers; returns status, content type and text.
async fn post_raw(
    app: &TestApp,
    body: impl Into<reqwest::Body>,
    headers: &[(&str, &str)],
) -> (StatusCode, String, String) {
    let mut request = app.client.post(app.url("/graphql")).body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let ct = content_type(&response);
    let text = response.text().await.unwrap();
    assert_clean(&text);
    (status, ct, text)
}

async fn get_graphql(app: &TestApp, params: &[(&str, &str)]) -> (StatusCode, String, String) {
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(params)
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    let ct = content_type(&response);
    let text = response.text().await.unwrap();
    assert_clean(&text);
    (status, ct, text)
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn first_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a coded error: {body:#}"))
}

// ---------------------------------------------------------------------------
// GET /graphql
// ---------------------------------------------------------------------------

#[tokio::test]
async fn get_runs_queries_with_variables() {
    let app = spawn_app().await;
    let (status, ct, text) = get_graphql(&app, &[("query", "{ bulkTasks { totalCount } }")]).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(
        ct.starts_with("application/json") || ct.starts_with(GRAPHQL_RESPONSE),
        "{ct}"
    );
    assert_eq!(
        parse(&text),
        json!({ "data": { "bulkTasks": { "totalCount": 0 } } })
    );

    let id = app.create_task(2).await;
    let variables = json!({ "id": id }).to_string();
    let (status, _, text) = get_graphql(
        &app,
        &[
            (
                "query",
                "query One($id: ID!) { bulkTask(id: $id) { id counters { total } } }",
            ),
            ("variables", &variables),
            ("operationName", "One"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        parse(&text),
        json!({ "data": { "bulkTask": { "id": id, "counters": { "total": 2 } } } })
    );
}

#[tokio::test]
async fn get_refuses_mutations_with_405() {
    let app = spawn_app().await;
    let mutation = r#"mutation { createBulkTask(input: { type: "via.get", items: [{ clientItemId: "a" }] }) { task { id } } }"#;
    let (status, _, text) = get_graphql(&app, &[("query", mutation)]).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{text}");
    assert_eq!(
        app.task_count().await,
        0,
        "a mutation over GET changed nothing"
    );

    // Also when the mutation is picked by operationName from a document with a query.
    let doc = format!(
        "query Q {{ bulkTasks {{ totalCount }} }} {}",
        mutation.replacen("mutation", "mutation M", 1)
    );
    let (status, _, text) = get_graphql(&app, &[("query", &doc), ("operationName", "M")]).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{text}");
    assert_eq!(app.task_count().await, 0);
    let (status, _, text) = get_graphql(&app, &[("query", &doc), ("operationName", "Q")]).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(parse(&text)["data"]["bulkTasks"]["totalCount"], 0);
}

// ---------------------------------------------------------------------------
// POST /graphql: content types, sizes, batches
// ---------------------------------------------------------------------------

#[tokio::test]
async fn post_with_a_non_json_content_type_is_415() {
    let app = spawn_app().await;
    let body = json!({ "query": "{ bulkTasks { totalCount } }" }).to_string();
    for ct in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
    ] {
        let (status, _, text) = post_raw(&app, body.clone(), &[("content-type", ct)]).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct}: {text}");
    }
    let form = "query=%7B+bulkTasks+%7B+totalCount+%7D+%7D";
    let (status, _, text) = post_raw(
        &app,
        form,
        &[("content-type", "application/x-www-form-urlencoded")],
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{text}");

    // A mutation in a text/plain body (a CSRF "simple request") does nothing.
    let mutation = json!({ "query": r#"mutation { createBulkTask(input: { type: "csrf", items: [] }) { task { id } } }"# });
    let (status, _, _) = post_raw(
        &app,
        mutation.to_string(),
        &[("content-type", "text/plain")],
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(app.task_count().await, 0);

    // application/json works.
    let (status, _, text) = post_raw(&app, body, &[("content-type", "application/json")]).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(parse(&text)["data"]["bulkTasks"]["totalCount"], 0);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let app = spawn_app_with(|config| config.body_limit = 4096).await;
    let small = json!({ "query": "{ bulkTasks { totalCount } }", "variables": { "pad": "x".repeat(2000) } });
    let (status, _, text) = post_raw(
        &app,
        small.to_string(),
        &[("content-type", "application/json")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");

    let big = json!({ "query": "{ bulkTasks { totalCount } }", "variables": { "pad": "x".repeat(10_000) } });
    let (status, _, text) = post_raw(
        &app,
        big.to_string(),
        &[("content-type", "application/json")],
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");

    // A mutation over the limit creates nothing.
    let items: Vec<Value> = (0..200)
        .map(|i| json!({ "clientItemId": format!("item-{i}") }))
        .collect();
    let create = json!({
        "query": "mutation($input: CreateBulkTaskInput!) { createBulkTask(input: $input) { task { id } } }",
        "variables": { "input": { "type": "too.big", "items": items } }
    });
    assert!(create.to_string().len() > 4096);
    let (status, _, text) = post_raw(
        &app,
        create.to_string(),
        &[("content-type", "application/json")],
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    assert_eq!(app.task_count().await, 0);
}

#[tokio::test]
async fn batches_are_refused_when_max_batch_is_zero() {
    let app = spawn_app().await;
    let batch = json!([
        { "query": "{ bulkTasks { totalCount } }" },
        { "query": r#"mutation { createBulkTask(input: { type: "batched", items: [] }) { task { id } } }"# },
    ]);
    let (status, _, text) = post_raw(
        &app,
        batch.to_string(),
        &[("content-type", "application/json")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    let body = parse(&text);
    assert_eq!(first_code(&body), "BAD_USER_INPUT", "{body:#}");
    assert_eq!(app.task_count().await, 0, "nothing of a refused batch ran");
}

#[tokio::test]
async fn batches_up_to_max_batch_run() {
    let app = spawn_app_with(|config| config.max_batch = 2).await;
    app.create_task(1).await;
    let two = json!([
        { "query": "{ bulkTasks { totalCount } }" },
        { "query": "{ a: bulkTasks(first: 1) { nodes { type } } }" },
    ]);
    let (status, _, text) = post_raw(
        &app,
        two.to_string(),
        &[("content-type", "application/json")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        parse(&text),
        json!([
            { "data": { "bulkTasks": { "totalCount": 1 } } },
            { "data": { "a": { "nodes": [{ "type": "test.items" }] } } },
        ])
    );

    let three = json!([
        { "query": "{ bulkTasks { totalCount } }" },
        { "query": "{ bulkTasks { totalCount } }" },
        { "query": "{ bulkTasks { totalCount } }" },
    ]);
    let (status, _, text) = post_raw(
        &app,
        three.to_string(),
        &[("content-type", "application/json")],
    )
    .await;
    assert!(status.is_client_error(), "{status}: {text}");
    let body = parse(&text);
    assert!(
        body["errors"][0]["extensions"]["code"].is_string(),
        "a coded error: {body:#}"
    );
}

// ---------------------------------------------------------------------------
// application/graphql-response+json vs application/json
// ---------------------------------------------------------------------------

#[tokio::test]
async fn graphql_response_json_makes_request_errors_400() {
    let app = spawn_app().await;
    let accept = [
        ("content-type", "application/json"),
        ("accept", GRAPHQL_RESPONSE),
    ];
    let requests = [
        ("parse error", json!({ "query": "{ bulkTasks { " })),
        ("unknown field", json!({ "query": "{ noSuchField }" })),
        (
            "wrong argument type",
            json!({ "query": "{ bulkTasks(first: \"ten\") { totalCount } }" }),
        ),
    ];
    for (what, request) in &requests {
        let (status, ct, text) = post_raw(&app, request.to_string(), &accept).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {text}");
        assert!(
            ct.starts_with(GRAPHQL_RESPONSE),
            "{what}: content type {ct}"
        );
        let body = parse(&text);
        assert!(
            body["errors"].as_array().is_some_and(|e| !e.is_empty()),
            "{what}: {body:#}"
        );
        assert!(
            body.get("data").is_none() || body["data"].is_null(),
            "{what}: no data: {body:#}"
        );
    }

    // A well-formed request is 200 with the same content type.
    let ok = json!({ "query": "{ bulkTasks { totalCount } }" });
    let (status, ct, text) = post_raw(&app, ok.to_string(), &accept).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(ct.starts_with(GRAPHQL_RESPONSE), "{ct}");
    assert_eq!(
        parse(&text),
        json!({ "data": { "bulkTasks": { "totalCount": 0 } } })
    );

    // An error while executing (here a malformed id) is still 200: the request was valid.
    let exec = json!({ "query": "{ bulkTask(id: \"not-an-id\") { id } }" });
    let (status, _, text) = post_raw(&app, exec.to_string(), &accept).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(first_code(&parse(&text)), "BAD_USER_INPUT");

    // With plain application/json the same request errors are 200 with errors.
    let plain = [
        ("content-type", "application/json"),
        ("accept", "application/json"),
    ];
    for (what, request) in &requests {
        let (status, ct, text) = post_raw(&app, request.to_string(), &plain).await;
        assert_eq!(status, StatusCode::OK, "{what}: {text}");
        assert!(
            ct.starts_with("application/json"),
            "{what}: content type {ct}"
        );
        let body = parse(&text);
        assert!(
            body["errors"].as_array().is_some_and(|e| !e.is_empty()),
            "{what}: {body:#}"
        );
    }
    // No Accept header at all behaves like application/json.
    let (status, ct, text) = post_raw(
        &app,
        requests[0].1.to_string(),
        &[("content-type", "application/json")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(ct.starts_with("application/json"), "{ct}");
}

// ---------------------------------------------------------------------------
// Depth, fragment cycles, complexity
// ---------------------------------------------------------------------------

/// `bulkTasks { nodes { items { nodes { task { items ... } } } } }`, `levels`
/// fields deep.
fn nested_query(levels: usize) -> String {
    let mut open = String::from("bulkTasks(first: 1) { nodes { ");
    let mut depth = 2;
    let chain = ["items(first: 1) { ", "nodes { ", "task { "];
    let mut i = 0;
    while depth < levels - 1 {
        open.push_str(chain[i % 3]);
        i += 1;
        depth += 1;
    }
    // TaskItemConnection has no id; the others do.
    let leaf = if i > 0 && (i - 1) % 3 == 0 {
        "totalCount"
    } else {
        "id"
    };
    let close = "} ".repeat(depth);
    format!("{{ {open}{leaf} {close}}}")
}

#[tokio::test]
async fn deep_queries_are_limit_exceeded() {
    let app = spawn_app().await;
    app.create_task(1).await;
    // Within the limit (15): runs.
    let shallow = nested_query(10);
    let data = app.data(&shallow, json!({})).await;
    assert_eq!(
        data["bulkTasks"]["nodes"].as_array().unwrap().len(),
        1,
        "{data:#}"
    );

    for levels in [20, 21, 22, 100] {
        let query = nested_query(levels);
        let body = app.post(&query, json!({})).await;
        assert_clean(&body.to_string());
        assert_eq!(
            first_code(&body),
            "LIMIT_EXCEEDED",
            "depth {levels}: {body:#}"
        );
        assert!(
            body.get("data").is_none() || body["data"].is_null(),
            "{body:#}"
        );
    }
}

#[tokio::test]
async fn fragment_cycles_are_refused() {
    let app = spawn_app().await;
    app.create_task(1).await;
    let query = r#"
        query { bulkTasks { nodes { ...A } } }
        fragment A on BulkTask { id items { nodes { task { ...B } } } }
        fragment B on BulkTask { ...A }
    "#;
    let body = app.post(query, json!({})).await;
    assert_clean(&body.to_string());
    assert_eq!(first_code(&body), "BAD_USER_INPUT", "{body:#}");
    assert!(
        body.get("data").is_none() || body["data"].is_null(),
        "{body:#}"
    );

    let self_cycle = "query { bulkTasks { nodes { ...S } } } fragment S on BulkTask { id ...S }";
    let body = app.post(self_cycle, json!({})).await;
    assert_clean(&body.to_string());
    assert_eq!(first_code(&body), "BAD_USER_INPUT", "{body:#}");
}

#[tokio::test]
async fn too_complex_queries_are_limit_exceeded() {
    let app = spawn_app().await;
    app.create_task(1).await;
    let fields: String = (0..1000)
        .map(|i| format!("a{i}: bulkTasks(first: 100) {{ nodes {{ id }} }} "))
        .collect();
    let body = app.post(&format!("{{ {fields}}}"), json!({})).await;
    assert_clean(&body.to_string());
    assert_eq!(first_code(&body), "LIMIT_EXCEEDED", "{body:#}");
    assert!(
        body.get("data").is_none() || body["data"].is_null(),
        "{body:#}"
    );

    // Complexity follows the page size: few aliases of big pages also exceed it,
    // while the same aliases of small pages run.
    let nested = "{ a: bulkTasks(first: 100) { nodes { items(first: 100) { nodes { id status task { id } } } } } \
                    b: bulkTasks(first: 100) { nodes { items(first: 100) { nodes { id status task { id } } } } } }";
    let body = app.post(nested, json!({})).await;
    assert_eq!(first_code(&body), "LIMIT_EXCEEDED", "{body:#}");
    let small: String = (0..10)
        .map(|i| format!("a{i}: bulkTasks(first: 5) {{ nodes {{ id }} }} "))
        .collect();
    let data = app.data(&format!("{{ {small}}}"), json!({})).await;
    assert_eq!(data["a9"]["nodes"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn error_responses_never_leak_sql_or_panics() {
    let app = spawn_app().await;
    let id = app.create_task(2).await;
    let requests = [
        (
            "{ bulkTask(id: \"'; DROP TABLE tasks; --\") { id } }",
            json!({}),
        ),
        (
            "{ bulkTasks(after: \"' OR 1=1 --\") { totalCount } }",
            json!({}),
        ),
        (
            "{ bulkTasks(filter: { search: \"'\\\"%_\\\\\" }) { totalCount nodes { id } } }",
            json!({}),
        ),
        (
            "{ bulkTasks(filter: { createdAfter: \"yesterday\" }) { totalCount } }",
            json!({}),
        ),
        (
            "{ bulkTasks(filter: { createdAfter: \"99999-01-01T00:00:00Z\" }) { totalCount } }",
            json!({}),
        ),
        ("{ bulkTasks(first: 2147483648) { totalCount } }", json!({})),
        (
            "{ bulkTasks(offset: 2147483647) { totalCount } }",
            json!({}),
        ),
        (
            "query($f: BulkTaskFilter) { bulkTasks(filter: $f) { totalCount } }",
            json!({ "f": { "status": ["NOPE"] } }),
        ),
        (
            "query($id: ID!) { bulkTask(id: $id) { items(filter: { clientItemId: \"\\u0000\" }) { totalCount } } }",
            json!({ "id": id }),
        ),
        (
            "query($id: ID!) { bulkTask(id: $id) { items(filter: { errorCode: \"' OR '1'='1\" }) { totalCount } } }",
            json!({ "id": id }),
        ),
        ("{ nodes(ids: [\"x\", \"\"]) { id } }", json!({})),
        ("mutation { deleteBulkTask(id: \"nope\") }", json!({})),
    ];
    for (query, variables) in requests {
        let response = app
            .client
            .post(app.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(
            status.is_success() || status.is_client_error(),
            "{query}: {status} {text}"
        );
        assert_clean(&text);
        let body = parse(&text);
        if let Some(errors) = body["errors"].as_array() {
            for error in errors {
                let code = error["extensions"]["code"].as_str();
                assert!(
                    code.is_some_and(|c| c != "INTERNAL"),
                    "{query}: every error is coded, none INTERNAL: {body:#}"
                );
            }
        }
    }
    // The injected strings did nothing.
    let data = app.data("{ bulkTasks { totalCount } }", json!({})).await;
    assert_eq!(data["bulkTasks"]["totalCount"], 1);
    app.assert_counters_consistent(&id).await;
}

// ---------------------------------------------------------------------------
// GraphiQL, introspection, health, metrics
// ---------------------------------------------------------------------------

#[tokio::test]
async fn health_endpoints_answer() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_clean(&response.text().await.unwrap());
    }
    let response = app
        .client
        .get(app.url("/no/such/path"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_are_prometheus_text_and_count_statements() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let ct = content_type(&response);
    assert!(ct.starts_with("text/plain"), "{ct}");
    let before = app.metric("bulkwatch_sql_statements_total").await;

    app.create_task(3).await;
    app.data("{ bulkTasks { nodes { id } } }", json!({})).await;

    let text = app.metrics_text().await;
    let after = app.metric("bulkwatch_sql_statements_total").await;
    assert!(
        after > before,
        "statements were counted: {before} -> {after}"
    );
    // Every sample line is `name{labels} value`, every metric has a TYPE.
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let mut parts = line.rsplitn(2, ' ');
        let value = parts.next().unwrap();
        assert!(
            value.parse::<f64>().is_ok() || ["NaN", "+Inf", "-Inf"].contains(&value),
            "bad sample: {line}"
        );
        assert!(
            parts.next().is_some_and(|n| !n.is_empty()),
            "bad sample: {line}"
        );
    }
}

// ---------------------------------------------------------------------------
// The exported schema
// ---------------------------------------------------------------------------

#[test]
fn schema_graphql_matches_the_code() {
    let current = bulkwatch::graphql::sdl();
    let committed = include_str!("../../schema.graphql");
    if current.trim_end() != committed.trim_end() {
        let first_difference = current
            .lines()
            .zip(committed.lines())
            .position(|(a, b)| a != b)
            .map(|i| i + 1)
            .unwrap_or(current.lines().count().min(committed.lines().count()) + 1);
        panic!(
            "schema.graphql is out of date (first difference at line {first_difference}); \
             run `cargo run -- schema > schema.graphql` and commit it"
        );
    }
}

#[tokio::test]
async fn the_served_schema_has_the_contract_entry_points() {
    let app = spawn_app().await;
    let data = app
        .data(
            r#"{ q: __type(name: "Query") { fields { name } } m: __type(name: "Mutation") { fields { name } }
                 s: __type(name: "Subscription") { fields { name } } }"#,
            json!({}),
        )
        .await;
    let names = |v: &Value| -> Vec<String> {
        let mut n: Vec<String> = v["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_owned())
            .collect();
        n.sort();
        n
    };
    for field in [
        "bulkTask",
        "bulkTaskStats",
        "bulkTasks",
        "node",
        "nodes",
        "taskItem",
    ] {
        assert!(
            names(&data["q"]).contains(&field.to_owned()),
            "Query.{field}"
        );
    }
    for field in [
        "appendTaskItems",
        "cancelBulkTask",
        "claimTaskItems",
        "createBulkTask",
        "deleteBulkTask",
        "failBulkTask",
        "renewLeases",
        "reportItemResults",
        "retryFailedItems",
        "sealBulkTask",
    ] {
        assert!(
            names(&data["m"]).contains(&field.to_owned()),
            "Mutation.{field}"
        );
    }
    assert!(
        !data["s"].is_null(),
        "the schema has a Subscription type: {data:#}"
    );
    for field in ["bulkTaskUpdated", "bulkTasksUpdated", "taskItemsUpdated"] {
        assert!(
            names(&data["s"]).contains(&field.to_owned()),
            "Subscription.{field}"
        );
    }
}
