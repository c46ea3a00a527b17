//! A report of more results than SQLite's read of item states takes in one
//! statement, whose results, errors and client ids hold text that JSON must
//! escape: each result applies once and, sent again, every one is a
//! duplicate.

use serde_json::{Value, json};

use crate::helpers::spawn_app;
use crate::ops::id_of;

/// More results than the server reads item states for in one statement on SQLite.
const N: usize = 2_500;

fn client_id(i: usize) -> String {
    format!("c\"{i}\\\n\té✓")
}

/// The outcome for item `i`; the first items' skips name them by id.
fn result(i: usize, ids: &[String]) -> Value {
    match i % 3 {
        0 => json!({
            "index": i,
            "outcome": "SUCCEEDED",
            "result": { "text": format!("line\n\"{i}\"\\ ✓"), "n": i }
        }),
        1 => json!({
            "clientItemId": client_id(i),
            "outcome": "FAILED",
            "error": { "code": "E_QUOTED", "message": format!("bad \"{i}\"\n"), "details": { "i": i } }
        }),
        _ => match ids.get(i) {
            Some(id) => json!({ "itemId": id, "outcome": "SKIPPED" }),
            None => json!({ "clientItemId": client_id(i), "outcome": "SKIPPED" }),
        },
    }
}

#[tokio::test]
async fn a_large_report_applies_once_and_its_repeat_is_all_duplicates() {
    let app = spawn_app().await;
    let items: Vec<Value> = (0..N)
        .map(|i| json!({ "clientItemId": client_id(i), "payload": { "n": i } }))
        .collect();
    let created = app
        .create(json!({ "type": "test.large", "items": items }))
        .await;
    let task = id_of(&created["task"]);
    let ids = app.item_ids(&task).await;
    let results: Vec<Value> = (0..N).map(|i| result(i, &ids)).collect();

    let first = app.report(&task, json!(results)).await;
    assert_eq!(first["problems"], json!([]), "{:#}", first["problems"]);
    assert_eq!(first["applied"], json!(N));
    assert_eq!(first["duplicates"], json!(0));
    let counters = &first["task"]["counters"];
    assert_eq!(counters["succeeded"], json!(834));
    assert_eq!(counters["failed"], json!(833));
    assert_eq!(counters["skipped"], json!(833));
    assert_eq!(first["task"]["status"], json!("COMPLETED_WITH_FAILURES"));

    let again = app.report(&task, json!(results)).await;
    assert_eq!(again["problems"], json!([]), "{:#}", again["problems"]);
    assert_eq!(again["applied"], json!(0));
    assert_eq!(again["duplicates"], json!(N));
    assert_eq!(
        again["task"]["version"], first["task"]["version"],
        "a batch of duplicates commits nothing"
    );

    // The stored outcomes are the ones sent, escapes and all.
    let stored = app.items(&task).await;
    assert_eq!(stored[0]["result"], results[0]["result"]);
    assert_eq!(stored[1]["clientItemId"], json!(client_id(1)));
    assert_eq!(
        stored[1]["error"]["message"],
        results[1]["error"]["message"]
    );
    assert_eq!(stored[1]["error"]["details"], json!({ "i": 1 }));
    assert_eq!(stored[2]["status"], json!("SKIPPED"));
    app.assert_counters_consistent(&task).await;
}
