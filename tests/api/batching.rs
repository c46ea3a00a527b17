//! Every list that resolves nested objects costs a constant number of SQL
//! statements, whatever its length: lookups are batched, never one per row.

use serde_json::json;

use crate::helpers::spawn_app;

const NODES: &str = "query($ids: [ID!]!) { nodes(ids: $ids) { id \
    ... on BulkTask { counters { failed } } \
    ... on TaskItem { status task { id counters { total } } } } }";

#[tokio::test]
async fn nodes_cost_the_same_for_four_ids_and_forty() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        let task = app.create_task(3).await;
        let items = app.item_ids(&task).await;
        app.report(
            &task,
            json!([{ "index": 0, "outcome": "FAILED", "error": { "code": "E", "message": "m" } }]),
        )
        .await;
        ids.push(json!(task));
        ids.push(json!(items[1]));
    }
    let (four, data) = app.cost(NODES, json!({ "ids": ids[..4] })).await;
    assert_eq!(data["nodes"].as_array().unwrap().len(), 4, "{data:#}");
    let (forty, data) = app.cost(NODES, json!({ "ids": ids })).await;
    let nodes = data["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 40);
    for (asked, got) in ids.iter().zip(nodes) {
        assert_eq!(&got["id"], asked, "in the order asked");
    }
    assert!(
        nodes
            .iter()
            .step_by(2)
            .all(|t| t["counters"]["failed"] == 1)
    );
    assert!(
        nodes
            .iter()
            .skip(1)
            .step_by(2)
            .all(|i| i["task"]["counters"]["total"] == 3)
    );
    // Not one per id (a key lookup after the key cache's second may add its
    // statements to one of them).
    assert!(
        forty <= four + 2,
        "4 ids: {four} statements, 40 ids: {forty}"
    );
    assert!(
        forty <= 6,
        "a handful of statements, not one per id: {forty}"
    );

    // Unknown ids are null in place and cost nothing more.
    let mut with_missing = ids.clone();
    with_missing.push(json!(app.create_task(0).await));
    let data = app
        .data(
            "mutation($id: ID!) { deleteBulkTask(id: $id) }",
            json!({ "id": with_missing[40] }),
        )
        .await;
    assert!(data["deleteBulkTask"].is_string());
    let (cost_missing, data) = app.cost(NODES, json!({ "ids": with_missing })).await;
    assert!(data["nodes"][40].is_null(), "{data:#}");
    assert!(
        cost_missing <= forty + 2,
        "{cost_missing} with a missing id"
    );
}

const TASKS_WITH_SUMMARIES: &str = "query($n: Int!) { bulkTasks(first: $n) { nodes { id \
    errorSummary { code count } items(first: 5) { nodes { task { id } } } } } }";

#[tokio::test]
async fn a_page_of_tasks_with_error_summaries_costs_constant_statements() {
    let app = spawn_app().await;
    for _ in 0..30 {
        let task = app.create_task(5).await;
        app.report(
            &task,
            json!([{ "index": 2, "outcome": "FAILED", "error": { "code": "X", "message": "m" } }]),
        )
        .await;
    }
    let (three, _) = app.cost(TASKS_WITH_SUMMARIES, json!({ "n": 3 })).await;
    let (thirty, data) = app.cost(TASKS_WITH_SUMMARIES, json!({ "n": 30 })).await;
    let nodes = data["bulkTasks"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 30);
    assert!(nodes.iter().all(|t| t["errorSummary"][0]["count"] == 1));
    assert!(
        thirty <= three + 2,
        "3 tasks: {three} statements, 30 tasks: {thirty}"
    );
}

const CLAIM_WITH_TASKS: &str = "mutation($task: ID!, $n: Int!) { claimTaskItems(input: \
    { taskId: $task, limit: $n }) { items { leaseToken item { id task { id errorSummary { code } } } } } }";

#[tokio::test]
async fn claimed_items_with_their_task_cost_constant_statements() {
    let app = spawn_app().await;
    let task = app.create_task(400).await;
    let claim = |n: i32| {
        let app = &app;
        let task = task.clone();
        async move {
            let before = app.metric("bulkwatch_sql_statements_total").await;
            let data = app
                .data(CLAIM_WITH_TASKS, json!({ "task": task, "n": n }))
                .await;
            let after = app.metric("bulkwatch_sql_statements_total").await;
            let items = data["claimTaskItems"]["items"].as_array().unwrap().clone();
            assert_eq!(items.len(), n as usize);
            assert!(items.iter().all(|i| i["item"]["task"]["id"] == json!(task)));
            after - before
        }
    };
    // The least of three claims of each size: a background job's statements
    // (the reaper, the webhook dispatcher waking on a commit) may slip in.
    let (mut few, mut many) = (u64::MAX, u64::MAX);
    for _ in 0..3 {
        few = few.min(claim(2).await);
        many = many.min(claim(100).await);
    }
    assert!(
        many <= few + 2,
        "2 items: {few} statements, 100 items: {many}"
    );
}

const POLL: &str =
    "query($id: ID!) { bulkTask(id: $id) { id status counters { total finished } updatedAt } }";

#[tokio::test]
async fn a_warm_status_poll_is_one_statement() {
    let app = spawn_app().await;
    let task = app.create_task(3).await;
    let (statements, data) = app.cost(POLL, json!({ "id": task })).await;
    assert_eq!(data["bulkTask"]["counters"]["total"], 3);
    // The key was checked a moment ago: no key lookup, only the task's row
    // (and on PostgreSQL the organisation's setting before it).
    let most = if app.database_url.starts_with("postgres") {
        2
    } else {
        1
    };
    assert!(statements <= most, "{statements} statements for a poll");
}

#[tokio::test]
async fn a_revoked_key_is_refused_by_every_instance_within_the_cache_bound() {
    let app = spawn_app().await;
    let other = app.second_instance().await;
    let key = app.key_for("default", "tasks:read");
    for instance in [&app, &other] {
        let body = instance.post_as(Some(&key), POLL_COUNT, json!({})).await;
        assert!(body.get("errors").is_none(), "{body:#}");
    }
    app.cli(&["keys", "revoke", &key[..11]]);
    let revoked = std::time::Instant::now();
    loop {
        let body = other.post_as(Some(&key), POLL_COUNT, json!({})).await;
        if body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED" {
            break;
        }
        assert!(
            revoked.elapsed()
                < bulkwatch::auth::KEY_CACHE_TTL + std::time::Duration::from_millis(500),
            "still accepted {:?} after revocation",
            revoked.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

const POLL_COUNT: &str = "{ bulkTasks(first: 1) { totalCount } }";
