//! A request sent again gets the same answer. The server remembers small
//! requests that passed validation and skips the validation rules for them
//! the next time; a request that failed validation is checked again each
//! time. Whatever it remembers, the client must not be able to tell.

use serde_json::json;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

/// Sends each request three times and checks every answer equals the first.
async fn answers_alike(app: &TestApp, task: &str) {
    let cases = [
        (
            "a poll",
            "query($id: ID!) { bulkTask(id: $id) { id status counters { total } } }",
            json!({ "id": task }),
            None,
        ),
        (
            "a variable of the wrong type",
            "query($n: Int) { bulkTasks(first: $n) { nodes { id } } }",
            json!({ "n": "ten" }),
            Some("BAD_USER_INPUT"),
        ),
        (
            "a field the type does not have",
            "query($id: ID!) { bulkTask(id: $id) { id nope } }",
            json!({ "id": task }),
            Some("BAD_USER_INPUT"),
        ),
        (
            "an id of the wrong kind (a field error, not a validation error)",
            "query($id: ID!) { bulkTask(id: $id) { id } }",
            json!({ "id": "not-an-id" }),
            Some("BAD_USER_INPUT"),
        ),
    ];
    for (what, query, variables, code) in cases {
        let first = app.post_with_status(query, variables.clone()).await;
        match code {
            None => assert_eq!(first.1["data"]["bulkTask"]["id"], task, "{what}: {first:?}"),
            Some(code) => assert_eq!(
                first.1["errors"][0]["extensions"]["code"], code,
                "{what}: {first:?}"
            ),
        }
        for _ in 0..2 {
            let again = app.post_with_status(query, variables.clone()).await;
            assert_eq!(again, first, "{what}: the same request, another answer");
        }
    }
    // The same document with other variables is checked on its own.
    let query = "query($n: Int) { bulkTasks(first: $n) { nodes { id } } }";
    let (_, valid) = app.post_with_status(query, json!({ "n": 1 })).await;
    assert!(valid["errors"].is_null(), "{valid:#}");
    let (_, invalid) = app.post_with_status(query, json!({ "n": "one" })).await;
    assert_eq!(
        invalid["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{invalid:#}"
    );
}

#[tokio::test]
async fn a_request_sent_again_gets_the_same_answer() {
    let app = spawn_app().await;
    let task = app.create_task(3).await;
    answers_alike(&app, &task).await;
}

#[tokio::test]
async fn a_request_sent_again_gets_the_same_answer_without_a_complexity_budget() {
    let app = spawn_app_with(|c| c.rate_limit_org_complexity = 0).await;
    let task = app.create_task(3).await;
    answers_alike(&app, &task).await;
}
