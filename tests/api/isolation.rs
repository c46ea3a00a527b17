//! Every item statement carries the organisation. Another organisation's
//! items are written straight into the database under the same task id
//! (something the API can never do), then every mutation runs against the
//! task: none of them may see, count or change those rows. More
//! mutations meet the same rows in `isolation_more`.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value as DbValue};
use serde_json::{Value, json};

use bulkwatch::graphql::ids::{self, Kind};

use crate::helpers::{TestApp, spawn_app};

/// The foreign rows: (index, client id, status, lease token).
const FOREIGN: [(i32, &str, &str, Option<&str>); 3] = [
    (1000, "foreign-pending", "PENDING", None),
    (1001, "foreign-failed", "FAILED", None),
    (1002, "foreign-running", "RUNNING", Some("lt_foreign")),
];

pub(crate) async fn connect(app: &TestApp) -> DatabaseConnection {
    sea_orm::Database::connect(&app.database_url)
        .await
        .expect("the test database answers")
}

/// `?` on SQLite, `$n` on PostgreSQL.
fn sql(db: &DatabaseConnection, text: &str) -> String {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let mut n = 0;
            text.chars()
                .map(|c| {
                    if c == '?' {
                        n += 1;
                        format!("${n}")
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        }
        _ => text.to_owned(),
    }
}

async fn run(
    db: &DatabaseConnection,
    text: &str,
    values: Vec<DbValue>,
) -> Vec<sea_orm::QueryResult> {
    let statement =
        Statement::from_sql_and_values(db.get_database_backend(), sql(db, text), values);
    db.query_all_raw(statement).await.expect("a raw statement")
}

/// Makes the organisation `intruder`; returns its id.
pub(crate) async fn intruder(app: &TestApp, db: &DatabaseConnection) -> uuid::Uuid {
    app.cli(&["orgs", "create", "intruder"]);
    let rows = run(
        db,
        "SELECT id FROM organisations WHERE name = ?",
        vec!["intruder".into()],
    )
    .await;
    rows[0].try_get("", "id").unwrap()
}

/// Writes the `FOREIGN` rows of `org` under `task` (the API never could);
/// their lease tokens end in `suffix`, as tokens are unique across tasks.
pub(crate) async fn plant(
    db: &DatabaseConnection,
    org: uuid::Uuid,
    task: uuid::Uuid,
    suffix: &str,
) {
    for (idx, client_id, status, token) in FOREIGN {
        run(
            db,
            "INSERT INTO task_items (id, organisation_id, task_id, idx, client_item_id, status, attempts, \
             lease_token, lease_expires_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, 1, 1)",
            vec![
                uuid::Uuid::now_v7().into(),
                org.into(),
                task.into(),
                idx.into(),
                client_id.into(),
                status.into(),
                token.map(|t| format!("{t}{suffix}")).into(),
                token.map(|_| 4_102_444_800_000_i64).into(),
            ],
        )
        .await;
    }
}

/// The foreign rows as they are now: (index, status, updated_at, attempts).
pub(crate) async fn foreign_rows(
    db: &DatabaseConnection,
    task: uuid::Uuid,
) -> Vec<(i32, String, i64, i32)> {
    let rows = run(
        db,
        "SELECT idx, status, updated_at, attempts FROM task_items WHERE task_id = ? AND idx >= 1000 ORDER BY idx",
        vec![task.into()],
    )
    .await;
    rows.iter()
        .map(|r| {
            (
                r.try_get("", "idx").unwrap(),
                r.try_get("", "status").unwrap(),
                r.try_get("", "updated_at").unwrap(),
                r.try_get("", "attempts").unwrap(),
            )
        })
        .collect()
}

fn failed(index: i64) -> Value {
    json!({ "index": index, "outcome": "FAILED", "error": { "code": "E", "message": "m" } })
}

#[tokio::test]
async fn another_organisations_rows_under_the_same_task_id_are_never_touched() {
    let app = spawn_app().await;
    let db = connect(&app).await;
    let org = intruder(&app, &db).await;
    let task = app.create_task(3).await;
    let task_uuid = ids::decode(Kind::BulkTask, &task).unwrap();
    plant(&db, org, task_uuid, "").await;
    let before = foreign_rows(&db, task_uuid).await;
    assert_eq!(before.len(), 3);

    // Reports naming the foreign items by index or client id find nothing,
    // and neither does the foreign lease token.
    let report = app
        .report(
            &task,
            json!([
                { "index": 1000, "outcome": "SUCCEEDED" },
                { "clientItemId": "foreign-pending", "outcome": "SUCCEEDED" },
                { "index": 1002, "leaseToken": "lt_foreign", "outcome": "SUCCEEDED" },
                failed(0),
            ]),
        )
        .await;
    let codes: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["ITEM_NOT_FOUND"; 3], "{report:#}");
    let renewal = app.renew(&["lt_foreign"], Some(60)).await;
    assert_eq!(renewal["renewed"], 0);
    assert_eq!(renewal["expired"], json!(["lt_foreign"]));

    // The task's own figures and lists know nothing of them.
    let seen = app.task(&task).await;
    assert_eq!(seen["counters"]["total"], 3, "{seen:#}");
    assert_eq!(app.items(&task).await.len(), 3);
    let summary = app
        .data(
            "query($id: ID!) { bulkTask(id: $id) { errorSummary { code count } items(filter: { status: [PENDING, FAILED, RUNNING] }) { totalCount nodes { index } } } }",
            json!({ "id": task }),
        )
        .await;
    assert_eq!(
        summary["bulkTask"]["errorSummary"],
        json!([{ "code": "E", "count": 1 }])
    );
    let indexes: Vec<i64> = summary["bulkTask"]["items"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["index"].as_i64().unwrap())
        .collect();
    assert_eq!(indexes, [0, 1, 2]);

    // Retry, claim and cancel work on the task's own items only.
    app.retry(json!({ "taskId": task })).await;
    let claimed = app.claim_task(&task, 100, 60, "w").await;
    let mut claimed: Vec<i64> = claimed
        .iter()
        .map(|c| c["item"]["index"].as_i64().unwrap())
        .collect();
    claimed.sort();
    assert_eq!(claimed, [0, 1, 2]);
    let cancelled = app.cancel(&task).await;
    assert_eq!(cancelled["counters"]["total"], 3);

    let report = app
        .data(
            "query($id: ID!) { bulkTask(id: $id) { failureReportUrl } }",
            json!({ "id": task }),
        )
        .await;
    assert!(
        report["bulkTask"]["failureReportUrl"].is_null(),
        "no failures of its own left: {report:#}"
    );

    assert_eq!(
        foreign_rows(&db, task_uuid).await,
        before,
        "the foreign rows are as they were"
    );
    db.close().await.ok();
}

#[tokio::test]
async fn a_stored_status_the_server_does_not_know_is_an_internal_error_not_a_guess() {
    let app = spawn_app().await;
    let task = app.create_task(2).await;
    let task_uuid = ids::decode(Kind::BulkTask, &task).unwrap();
    let db = connect(&app).await;
    run(
        &db,
        "UPDATE task_items SET status = 'HALF_DONE' WHERE task_id = ? AND idx = 1",
        vec![task_uuid.into()],
    )
    .await;
    let body = app
        .post(
            "query($id: ID!) { bulkTask(id: $id) { items { nodes { index status } } } }",
            json!({ "id": task }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "INTERNAL",
        "{body:#}"
    );
    assert!(
        !body.to_string().contains("HALF_DONE"),
        "the stored text is logged, not sent: {body:#}"
    );
    // A report on the task meets the same wall instead of treating the item as PENDING.
    let body = app
        .post(
            "mutation($id: ID!) { reportItemResults(input: { taskId: $id, results: [{ index: 1, outcome: SUCCEEDED }] }) { applied } }",
            json!({ "id": task }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "INTERNAL",
        "{body:#}"
    );
    db.close().await.ok();
}
