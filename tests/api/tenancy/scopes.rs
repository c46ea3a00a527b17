//! Every root field needs its scope and a valid key; unauthenticated
//! callers get nothing but introspection.

#[allow(unused_imports)]
use super::*;

// ---------------------------------------------------------------------------
// Scopes and authentication
// ---------------------------------------------------------------------------

struct Keys {
    /// Every combination of scopes, by its list.
    by_scopes: Vec<(&'static str, String)>,
    revoked: String,
}

impl Keys {
    fn lacking(&self, scope: &str) -> Vec<(&'static str, &str)> {
        self.by_scopes
            .iter()
            .filter(|(s, _)| !s.split(',').any(|x| x == scope))
            .map(|(s, k)| (*s, k.as_str()))
            .collect()
    }

    fn only(&self, scope: &str) -> &str {
        &self.by_scopes.iter().find(|(s, _)| *s == scope).unwrap().1
    }
}

async fn make_keys(app: &TestApp) -> Keys {
    let mut by_scopes = Vec::new();
    for scopes in [
        "tasks:read",
        "tasks:write",
        "items:report",
        "tasks:read,tasks:write",
        "tasks:read,items:report",
        "tasks:write,items:report",
    ] {
        by_scopes.push((scopes, app.key_for("default", scopes)));
    }
    let revoked = app.key_for("default", ALL_SCOPES);
    let id = key_id(&app.cli(&["keys", "list"]), &revoked);
    app.cli(&["keys", "revoke", &id]);
    Keys { by_scopes, revoked }
}

/// The admin's view of `task_ids` and of its lists.
async fn admin_view(app: &TestApp, task_ids: &[String]) -> Value {
    snapshot(app, &app.admin_key, task_ids).await
}

/// Every caller without `scope` is refused and nothing changes; then the key
/// holding only `scope` succeeds; returns its data.
async fn check_scope(
    app: &TestApp,
    keys: &Keys,
    scope: &str,
    field: &str,
    query: &str,
    variables: Value,
    watch: &[String],
) -> Value {
    let before = admin_view(app, watch).await;
    for (scopes, key) in keys.lacking(scope) {
        let body = refused(app, Some(key), query, variables.clone(), field, "FORBIDDEN").await;
        let message = body["errors"][0]["message"].as_str().unwrap_or("");
        assert!(
            message.contains(scope),
            "{field} with [{scopes}]: the message should name {scope}: {body:#}"
        );
    }
    let missing = refused(
        app,
        None,
        query,
        variables.clone(),
        field,
        "UNAUTHENTICATED",
    )
    .await;
    let (revoked_status, revoked) = post_with_header(
        app,
        Some(&format!("Bearer {}", keys.revoked)),
        query,
        variables.clone(),
    )
    .await;
    let unknown_key = format!("bw_{}", "0123456789abcdef".repeat(4));
    let (unknown_status, unknown) = post_with_header(
        app,
        Some(&format!("Bearer {unknown_key}")),
        query,
        variables.clone(),
    )
    .await;
    assert_eq!(
        first_code(&revoked),
        "UNAUTHENTICATED",
        "{field} with a revoked key: {revoked:#}"
    );
    assert_eq!(
        first_code(&unknown),
        "UNAUTHENTICATED",
        "{field} with an unknown key: {unknown:#}"
    );
    assert_eq!(
        (revoked_status, &revoked),
        (unknown_status, &unknown),
        "{field}: revoked and unknown keys are told apart"
    );
    for header in ["Basic xyz", "garbage", "Bearer", "Bearer ", "bw_nothing"] {
        let (_, body) = post_with_header(app, Some(header), query, variables.clone()).await;
        assert_eq!(
            first_code(&body),
            "UNAUTHENTICATED",
            "{field} with Authorization {header:?}: {body:#}"
        );
    }
    assert!(missing["errors"][0]["message"].as_str().is_some());
    assert_eq!(
        admin_view(app, watch).await,
        before,
        "{field}: a refused call changed something"
    );

    let body = app.post_as(Some(keys.only(scope)), query, variables).await;
    assert!(
        body.get("errors").is_none(),
        "{field} with only {scope} failed: {body:#}"
    );
    body["data"].clone()
}

async fn admin_task(app: &TestApp, input: Value) -> String {
    create(app, &app.admin_key, input).await
}

async fn admin_claim(app: &TestApp, task: &str, limit: i64) -> Vec<Value> {
    let data = app
        .data_as(
            &app.admin_key,
            CLAIM,
            json!({ "input": { "taskId": task, "limit": limit, "leaseSeconds": 3600 } }),
        )
        .await;
    data["claimTaskItems"]["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn every_root_field_needs_its_scope_and_a_valid_key() {
    let app = spawn_app().await;
    let keys = make_keys(&app).await;
    let sealed = |n: usize| json!({ "type": "scoped", "items": items(n) });

    // Queries: tasks:read.
    let task = admin_task(&app, sealed(2)).await;
    let item = app.as_key(&app.admin_key).item_ids(&task).await[0].clone();
    let watch = [task.clone()];
    let data = check_scope(
        &app,
        &keys,
        "tasks:read",
        "bulkTask",
        TASK_ID,
        json!({ "id": task }),
        &watch,
    )
    .await;
    assert_eq!(data["bulkTask"]["id"], task.as_str());
    let data = check_scope(
        &app,
        &keys,
        "tasks:read",
        "node",
        NODE_ID,
        json!({ "id": task }),
        &watch,
    )
    .await;
    assert_eq!(data["node"]["id"], task.as_str());
    let data = check_scope(
        &app,
        &keys,
        "tasks:read",
        "nodes",
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
        json!({ "ids": [task, item] }),
        &watch,
    )
    .await;
    assert_eq!(data["nodes"][1]["id"], item.as_str());
    let data = check_scope(
        &app,
        &keys,
        "tasks:read",
        "taskItem",
        "query($id: ID!) { taskItem(id: $id) { id } }",
        json!({ "id": item }),
        &watch,
    )
    .await;
    assert_eq!(data["taskItem"]["id"], item.as_str());
    let data = check_scope(
        &app,
        &keys,
        "tasks:read",
        "bulkTasks",
        "{ bulkTasks(first: 10) { totalCount } }",
        json!({}),
        &watch,
    )
    .await;
    assert_eq!(data["bulkTasks"]["totalCount"], 1);
    let data = check_scope(
        &app,
        &keys,
        "tasks:read",
        "bulkTaskStats",
        "{ bulkTaskStats { total } }",
        json!({}),
        &watch,
    )
    .await;
    assert_eq!(data["bulkTaskStats"]["total"], 1);

    // createBulkTask: tasks:write (the watched lists' totalCount proves nothing was created).
    let data = check_scope(
        &app,
        &keys,
        "tasks:write",
        "createBulkTask",
        CREATE,
        json!({ "input": sealed(2) }),
        &watch,
    )
    .await;
    assert_eq!(data["createBulkTask"]["created"], true);

    // appendTaskItems and sealBulkTask.
    let open = admin_task(
        &app,
        json!({ "type": "scoped", "sealed": false, "items": items(1) }),
    )
    .await;
    let data = check_scope(
        &app,
        &keys,
        "tasks:write",
        "appendTaskItems",
        APPEND,
        json!({ "input": { "taskId": open, "items": [{ "clientItemId": "extra" }], "seal": true } }),
        std::slice::from_ref(&open),
    )
    .await;
    assert_eq!(data["appendTaskItems"]["task"]["counters"]["total"], 2);
    assert_eq!(data["appendTaskItems"]["task"]["sealed"], true);
    let open = admin_task(
        &app,
        json!({ "type": "scoped", "sealed": false, "items": items(1) }),
    )
    .await;
    let data = check_scope(
        &app,
        &keys,
        "tasks:write",
        "sealBulkTask",
        SEAL,
        json!({ "id": open }),
        std::slice::from_ref(&open),
    )
    .await;
    assert_eq!(data["sealBulkTask"]["sealed"], true);

    // cancelBulkTask, failBulkTask, deleteBulkTask.
    let t = admin_task(&app, sealed(2)).await;
    let data = check_scope(
        &app,
        &keys,
        "tasks:write",
        "cancelBulkTask",
        CANCEL,
        json!({ "id": t }),
        std::slice::from_ref(&t),
    )
    .await;
    assert_eq!(data["cancelBulkTask"]["cancelRequested"], true);
    let t = admin_task(&app, sealed(2)).await;
    let data = check_scope(
        &app,
        &keys,
        "tasks:write",
        "failBulkTask",
        FAIL,
        json!({ "input": { "id": t, "code": "ABORTED", "message": "stop" } }),
        std::slice::from_ref(&t),
    )
    .await;
    assert_eq!(data["failBulkTask"]["error"]["code"], "ABORTED");
    let t = admin_task(&app, sealed(2)).await;
    let data = check_scope(
        &app,
        &keys,
        "tasks:write",
        "deleteBulkTask",
        DELETE,
        json!({ "id": t }),
        std::slice::from_ref(&t),
    )
    .await;
    assert_eq!(data["deleteBulkTask"], t.as_str());
    let data = app
        .data_as(&app.admin_key, TASK_ID, json!({ "id": t }))
        .await;
    assert!(data["bulkTask"].is_null(), "deleted: {data:#}");

    // retryFailedItems: a task with one FAILED item.
    let t = admin_task(
        &app,
        json!({ "type": "scoped", "maxAttempts": 1, "items": items(2) }),
    )
    .await;
    let claimed = admin_claim(&app, &t, 1).await;
    app.data_as(&app.admin_key,
        REPORT,
        json!({ "input": { "taskId": t, "results": [{ "itemId": claimed[0]["item"]["id"], "leaseToken": claimed[0]["leaseToken"],
            "outcome": "FAILED", "retryable": false, "error": { "code": "E", "message": "e" } }] } }),
    )
    .await;
    let data = check_scope(
        &app,
        &keys,
        "tasks:write",
        "retryFailedItems",
        RETRY,
        json!({ "input": { "taskId": t } }),
        std::slice::from_ref(&t),
    )
    .await;
    assert_eq!(
        data["retryFailedItems"]["counters"]["failed"], 0,
        "{data:#}"
    );
    assert_eq!(
        data["retryFailedItems"]["counters"]["pending"], 2,
        "{data:#}"
    );

    // claimTaskItems by task and by type.
    let t = admin_task(&app, json!({ "type": "scoped.claim", "items": items(2) })).await;
    let data = check_scope(
        &app,
        &keys,
        "items:report",
        "claimTaskItems",
        CLAIM,
        json!({ "input": { "taskId": t, "limit": 1 } }),
        std::slice::from_ref(&t),
    )
    .await;
    assert_eq!(data["claimTaskItems"]["items"].as_array().unwrap().len(), 1);
    let data = check_scope(
        &app,
        &keys,
        "items:report",
        "claimTaskItems",
        CLAIM,
        json!({ "input": { "types": ["scoped.claim"], "limit": 1 } }),
        std::slice::from_ref(&t),
    )
    .await;
    assert_eq!(data["claimTaskItems"]["items"].as_array().unwrap().len(), 1);

    // renewLeases: the refused calls must not move the lease.
    let t = admin_task(&app, sealed(1)).await;
    let claimed = admin_claim(&app, &t, 1).await;
    let token = claimed[0]["leaseToken"].as_str().unwrap().to_owned();
    let data = check_scope(
        &app,
        &keys,
        "items:report",
        "renewLeases",
        RENEW,
        json!({ "input": { "leaseTokens": [token], "leaseSeconds": 1800 } }),
        std::slice::from_ref(&t),
    )
    .await;
    assert_eq!(data["renewLeases"]["renewed"], 1, "{data:#}");

    // reportItemResults.
    let t = admin_task(&app, sealed(2)).await;
    let data = check_scope(
        &app,
        &keys,
        "items:report",
        "reportItemResults",
        REPORT,
        json!({ "input": { "taskId": t, "results": [{ "index": 0, "outcome": "SUCCEEDED" }, { "clientItemId": "item-1", "outcome": "SKIPPED" }] } }),
        std::slice::from_ref(&t),
    )
    .await;
    assert_eq!(data["reportItemResults"]["applied"], 2, "{data:#}");
}

#[tokio::test]
async fn unauthenticated_callers_get_nothing_but_introspection() {
    let app = spawn_app().await;
    let keys = make_keys(&app).await;
    let task = app.create_task(2).await;

    // Introspection needs no key.
    for key in [None, Some(keys.revoked.as_str())] {
        let body = app
            .post_as(
                key,
                "{ __schema { queryType { name } mutationType { name } } }",
                json!({}),
            )
            .await;
        assert!(
            body.get("errors").is_none(),
            "introspection with {key:?}: {body:#}"
        );
        assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
        assert_eq!(body["data"]["__schema"]["mutationType"]["name"], "Mutation");
    }
    let body = app
        .post_as(
            None,
            "{ __type(name: \"BulkTask\") { name } __typename }",
            json!({}),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body:#}");
    assert_eq!(body["data"]["__type"]["name"], "BulkTask");

    // A data field next to introspection is still refused.
    let body = app
        .post_as(
            None,
            "query($id: ID!) { __typename bulkTask(id: $id) { id } }",
            json!({ "id": task }),
        )
        .await;
    assert_eq!(first_code(&body), "UNAUTHENTICATED", "{body:#}");
    assert!(body["data"]["bulkTask"].is_null(), "{body:#}");

    // Revoked and unknown keys: same status, same body, for a query and a mutation.
    let unknown = format!("bw_{}", "f".repeat(64));
    for (query, vars) in [
        (TASK_ID, json!({ "id": task })),
        (
            "mutation($id: ID!) { cancelBulkTask(id: $id) { id } }",
            json!({ "id": task }),
        ),
    ] {
        let revoked = post_with_header(
            &app,
            Some(&format!("Bearer {}", keys.revoked)),
            query,
            vars.clone(),
        )
        .await;
        let garbage = post_with_header(
            &app,
            Some(&format!("Bearer {unknown}")),
            query,
            vars.clone(),
        )
        .await;
        let not_a_key = post_with_header(&app, Some("Bearer hello"), query, vars.clone()).await;
        assert_eq!(first_code(&revoked.1), "UNAUTHENTICATED", "{:#}", revoked.1);
        assert_eq!(
            revoked, garbage,
            "revoked and unknown keys must be indistinguishable"
        );
        assert_eq!(
            revoked, not_a_key,
            "revoked keys and junk must be indistinguishable"
        );
        let (_, basic) = post_with_header(
            &app,
            Some(&format!("Basic {}", app.admin_key)),
            query,
            vars.clone(),
        )
        .await;
        assert_eq!(
            first_code(&basic),
            "UNAUTHENTICATED",
            "the Basic scheme: {basic:#}"
        );
        let (_, bare) = post_with_header(&app, Some(&app.admin_key), query, vars.clone()).await;
        assert_eq!(
            first_code(&bare),
            "UNAUTHENTICATED",
            "a key without a scheme: {bare:#}"
        );
        let (_, missing) = post_with_header(&app, None, query, vars).await;
        assert_eq!(first_code(&missing), "UNAUTHENTICATED", "{missing:#}");
    }
    // GET runs queries under the same rules.
    let get = |authorization: Option<String>| {
        let mut request = reqwest::Client::new()
            .get(app.url("/graphql"))
            .query(&[("query", "{ bulkTasks { totalCount } }")]);
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        async move {
            let response = request.send().await.expect("request sent");
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.expect("a JSON response"),
            )
        }
    };
    let (_, missing) = get(None).await;
    assert_eq!(
        first_code(&missing),
        "UNAUTHENTICATED",
        "GET without a key: {missing:#}"
    );
    let revoked = get(Some(format!("Bearer {}", keys.revoked))).await;
    assert_eq!(
        first_code(&revoked.1),
        "UNAUTHENTICATED",
        "GET with a revoked key: {:#}",
        revoked.1
    );
    assert_eq!(
        revoked,
        get(Some(format!("Bearer {unknown}"))).await,
        "GET: revoked and unknown keys differ"
    );
    let (_, forbidden) = get(Some(format!("Bearer {}", keys.only("tasks:write")))).await;
    assert_eq!(
        first_code(&forbidden),
        "FORBIDDEN",
        "GET without tasks:read: {forbidden:#}"
    );
    let (_, allowed) = get(Some(format!("Bearer {}", keys.only("tasks:read")))).await;
    assert_eq!(
        allowed["data"]["bulkTasks"]["totalCount"], 1,
        "GET with tasks:read: {allowed:#}"
    );

    // The scheme is case-insensitive; the key itself is not.
    let (_, lower) = post_with_header(
        &app,
        Some(&format!("bearer {}", app.admin_key)),
        "{ bulkTasks { totalCount } }",
        json!({}),
    )
    .await;
    assert!(lower.get("errors").is_none(), "{lower:#}");
    let (_, upper) = post_with_header(
        &app,
        Some(&format!("Bearer {}", app.admin_key.to_uppercase())),
        "{ bulkTasks { totalCount } }",
        json!({}),
    )
    .await;
    assert_eq!(first_code(&upper), "UNAUTHENTICATED", "{upper:#}");

    // Nothing happened to the task.
    let data = app
        .data(
            "query($id: ID!) { bulkTask(id: $id) { status cancelRequested version } }",
            json!({ "id": task }),
        )
        .await;
    assert_eq!(data["bulkTask"]["cancelRequested"], false, "{data:#}");

    // The failure report: 401 without a valid key, 403 without tasks:read.
    let t = admin_task(
        &app,
        json!({ "type": "report", "maxAttempts": 1, "items": items(1) }),
    )
    .await;
    app.data_as(&app.admin_key,
        REPORT,
        json!({ "input": { "taskId": t, "results": [{ "index": 0, "outcome": "FAILED", "error": { "code": "BROKEN", "message": "b" } }] } }),
    )
    .await;
    let url = format!("/reports/{t}/failures.ndjson");
    assert_eq!(get_report(&app, &url, None).await.0, 401);
    let revoked = get_report(&app, &url, Some(&keys.revoked)).await;
    assert_eq!(revoked.0, 401, "{}", revoked.1);
    assert_eq!(
        revoked,
        get_report(&app, &url, Some(&unknown)).await,
        "revoked and unknown keys differ on the report"
    );
    for scopes in ["tasks:write", "items:report", "tasks:write,items:report"] {
        let key = &keys.by_scopes.iter().find(|(s, _)| *s == scopes).unwrap().1;
        let (status, body) = get_report(&app, &url, Some(key)).await;
        assert_eq!(status, 403, "report with [{scopes}]: {body}");
        assert!(!body.contains("BROKEN"), "{body}");
    }
    let (status, body) = get_report(&app, &url, Some(keys.only("tasks:read"))).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("BROKEN"), "{body}");
}
