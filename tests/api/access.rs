//! A caller without a valid key learns nothing but UNAUTHENTICATED, whatever
//! it asks and however wrong its arguments are.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// Every root Query and Mutation field, once, with arguments that would
/// each fail on their own (yet a document that validates against the schema).
fn attempts() -> Vec<(&'static str, String)> {
    let types = vec!["\"t\""; 101].join(", ");
    let mut list: Vec<(&str, String)> = FIXED.iter().map(|(f, q)| (*f, q.to_string())).collect();
    list.push((
        "bulkTaskStats",
        format!("{{ bulkTaskStats(filter: {{ type: [{types}] }}) {{ total }} }}"),
    ));
    list
}

const FIXED: &[(&str, &str)] = &[
    ("node", r#"{ node(id: "garbage") { id } }"#),
    ("nodes", r#"{ nodes(ids: ["a", "b"]) { id } }"#),
    ("bulkTask", r#"{ bulkTask(id: "nope") { id } }"#),
    (
        "bulkTasks",
        r#"{ bulkTasks(first: 101, after: "forged", offset: -1) { totalCount } }"#,
    ),
    ("taskItem", r#"{ taskItem(id: "nope") { id } }"#),
    (
        "createBulkTask",
        r#"mutation { createBulkTask(input: { type: "NOT A TYPE", items: [] }) { created } }"#,
    ),
    (
        "appendTaskItems",
        r#"mutation { appendTaskItems(input: { taskId: "nope", items: [] }) { rejected { index } } }"#,
    ),
    (
        "sealBulkTask",
        r#"mutation { sealBulkTask(id: "nope") { id } }"#,
    ),
    (
        "reportItemResults",
        r#"mutation { reportItemResults(input: { taskId: "nope", results: [] }) { applied } }"#,
    ),
    (
        "cancelBulkTask",
        r#"mutation { cancelBulkTask(id: "nope") { id } }"#,
    ),
    (
        "retryFailedItems",
        r#"mutation { retryFailedItems(input: { taskId: "nope", itemIds: ["x"] }) { id } }"#,
    ),
    (
        "failBulkTask",
        r#"mutation { failBulkTask(input: { id: "nope", code: "", message: "" }) { id } }"#,
    ),
    (
        "deleteBulkTask",
        r#"mutation { deleteBulkTask(id: "nope") }"#,
    ),
    (
        "claimTaskItems",
        r#"mutation { claimTaskItems(input: { taskId: "nope", limit: 100000 }) { items { leaseToken } } }"#,
    ),
    (
        "renewLeases",
        r#"mutation { renewLeases(input: { leaseTokens: [], leaseSeconds: -5 }) { renewed } }"#,
    ),
    (
        "webhookEndpoints",
        r#"{ webhookEndpoints(first: 101, after: "forged") { nodes { id } } }"#,
    ),
    (
        "updateBulkTask",
        r#"mutation { updateBulkTask(input: { id: "not-an-id", removeArtifacts: [""] }) { id } }"#,
    ),
    (
        "pauseBulkTask",
        r#"mutation { pauseBulkTask(id: "not-an-id", reason: "") { id } }"#,
    ),
    (
        "resumeBulkTask",
        r#"mutation { resumeBulkTask(id: "not-an-id", reason: "") { id } }"#,
    ),
    (
        "setTaskPriority",
        r#"mutation { setTaskPriority(id: "not-an-id", priority: 1000) { id } }"#,
    ),
    (
        "createWebhookEndpoint",
        r#"mutation { createWebhookEndpoint(input: { url: "not a url", events: [] }) { secret } }"#,
    ),
    (
        "updateWebhookEndpoint",
        r#"mutation { updateWebhookEndpoint(input: { id: "not-an-id", url: "not a url", events: [] }) { id } }"#,
    ),
    (
        "deleteWebhookEndpoint",
        r#"mutation { deleteWebhookEndpoint(id: "not-an-id") }"#,
    ),
    (
        "rotateWebhookSecret",
        r#"mutation { rotateWebhookSecret(id: "not-an-id") { secret } }"#,
    ),
    (
        "redeliverWebhook",
        r#"mutation { redeliverWebhook(deliveryId: "not-an-id") { id } }"#,
    ),
    (
        "sendTestWebhook",
        r#"mutation { sendTestWebhook(endpointId: "not-an-id") { id } }"#,
    ),
];

/// The names of every root Query and Mutation field, as introspection
/// (open without a key) reports them.
async fn root_fields(app: &TestApp) -> BTreeSet<String> {
    let body = app
        .post_as(
            None,
            "{ __schema { queryType { fields(includeDeprecated: true) { name } } \
             mutationType { fields(includeDeprecated: true) { name } } } }",
            json!({}),
        )
        .await;
    let schema = &body["data"]["__schema"];
    let mut names = BTreeSet::new();
    for root in ["queryType", "mutationType"] {
        let fields = schema[root]["fields"]
            .as_array()
            .unwrap_or_else(|| panic!("no {root} fields: {body:#}"));
        for field in fields {
            names.insert(field["name"].as_str().unwrap().to_owned());
        }
    }
    names
}

fn codes(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["extensions"]["code"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn without_a_valid_key_every_root_field_says_only_unauthenticated() {
    let app = spawn_app().await;
    // Every root field has its case: a new field without one fails here.
    let sent: Vec<&str> = attempts().iter().map(|(field, _)| *field).collect();
    let unique: BTreeSet<String> = sent.iter().map(|f| (*f).to_owned()).collect();
    assert_eq!(unique.len(), sent.len(), "a field with two cases: {sent:?}");
    let roots = root_fields(&app).await;
    assert_eq!(
        unique, roots,
        "the cases cover exactly the root Query and Mutation fields"
    );
    let placeholder = "bw_...";
    for key in [None, Some(placeholder), Some("Bearer-less")] {
        for (field, query) in attempts() {
            let body = app.post_as(key, &query, json!({})).await;
            assert_eq!(
                codes(&body),
                ["UNAUTHENTICATED"],
                "{field} with key {key:?}: {body:#}"
            );
            assert!(
                body["data"].is_null() || body["data"][field].is_null(),
                "{field}: {body:#}"
            );
            let message = body["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("Authorization: Bearer bw_"),
                "the message shows the header to send: {message}"
            );
        }
    }
    // The same attempts with a valid key fail on their arguments instead.
    for (field, query) in attempts() {
        let body = app.post(&query, json!({})).await;
        let found = codes(&body);
        assert!(
            !found.is_empty() && !found.contains(&"UNAUTHENTICATED".to_owned()),
            "{field}: {body:#}"
        );
    }
    // Introspection stays open: GraphiQL's documentation needs it.
    let body = app
        .post_as(
            None,
            "{ __typename __schema { queryType { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["__schema"]["queryType"]["name"], "Query",
        "{body:#}"
    );
}
