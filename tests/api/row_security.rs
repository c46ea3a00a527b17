//! PostgreSQL's row-level security, the second wall behind the store's own
//! organisation filters: the server's connections are subject to it, and a
//! statement whose transaction names no organisation sees no rows at all.
//!
//! SQLite has no row-level security, so these tests are ignored on the
//! default run and run in the PostgreSQL pass of the suite.

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use serde_json::json;

use crate::helpers::{TestApp, require_postgres, spawn_app, spawn_app_with};
use crate::ops::TASK_ID;

/// The test's own database, as the login role (which bypasses the policies).
async fn owner(app: &TestApp) -> DatabaseConnection {
    Database::connect(&app.database_url).await.expect("connect")
}

async fn count(db: &impl ConnectionTrait, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .expect(sql)
        .expect("a row")
        .try_get_by_index::<i64>(0)
        .expect("a count")
}

async fn exec(db: &impl ConnectionTrait, sql: &str) {
    db.execute_unprepared(sql).await.expect(sql);
}

/// The policy on tasks as the migrations make it.
const MIGRATED_TASK_POLICY: &str = "organisation_id = \
    nullif(current_setting('bulkwatch.organisation_id', true), '')::uuid \
    OR current_setting('bulkwatch.system', true) = 'on'";

/// The same without the system setting's way in.
const ORGANISATION_ONLY: &str =
    "organisation_id = nullif(current_setting('bulkwatch.organisation_id', true), '')::uuid";

/// Replaces the condition of the policy on tasks.
async fn task_policy(db: &impl ConnectionTrait, using: &str) {
    let sql = format!("ALTER POLICY organisation_isolation ON bulk_tasks USING ({using})");
    exec(db, &sql).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn a_statement_without_the_organisation_setting_sees_no_rows() {
    require_postgres();
    let app = spawn_app().await;
    let db = owner(&app).await;
    let other_key = app.key_for("globex", "tasks:read,tasks:write");
    app.create_task(3).await;
    app.post_as(
        Some(&other_key),
        "mutation { createBulkTask(input: { type: \"t\", items: [{}, {}] }) { task { id } } }",
        json!({}),
    )
    .await;
    let default_org = "00000000-0000-7000-8000-000000000001";
    assert_eq!(count(&db, "SELECT count(*) FROM bulk_tasks").await, 2);

    // One transaction, one connection: the role and settings hold for what follows.
    let tx = sea_orm::TransactionTrait::begin(&db).await.unwrap();
    exec(&tx, "SET LOCAL ROLE bulkwatch_app").await;
    for table in ["bulk_tasks", "task_items", "api_keys", "organisations"] {
        let sql = format!("SELECT count(*) FROM {table}");
        assert_eq!(count(&tx, &sql).await, 0, "{table} without a setting");
    }

    exec(
        &tx,
        &format!("SET LOCAL bulkwatch.organisation_id = '{default_org}'"),
    )
    .await;
    assert_eq!(count(&tx, "SELECT count(*) FROM bulk_tasks").await, 1);
    assert_eq!(count(&tx, "SELECT count(*) FROM task_items").await, 3);
    let foreign = count(
        &tx,
        &format!("SELECT count(*) FROM bulk_tasks WHERE organisation_id <> '{default_org}'"),
    )
    .await;
    assert_eq!(foreign, 0, "another organisation's task is out of sight");

    // Nor can a row be moved or written into another organisation.
    let globex = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT id::text FROM organisations WHERE name = 'globex'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<String>(0)
        .unwrap();
    for write in [
        format!("UPDATE bulk_tasks SET organisation_id = '{globex}'"),
        format!(
            "INSERT INTO organisations (id, name, created_at) VALUES ('{}', 'elsewhere', 0)",
            uuid::Uuid::now_v7()
        ),
    ] {
        exec(&tx, "SAVEPOINT attempt").await;
        let refused = tx.execute_unprepared(&write).await.expect_err(&write);
        assert!(
            refused.to_string().contains("row-level security"),
            "{write}: {refused}"
        );
        exec(&tx, "ROLLBACK TO SAVEPOINT attempt").await;
    }
    tx.rollback().await.unwrap();

    let no_role = count(
        &db,
        "SELECT count(*) FROM pg_roles WHERE rolname = 'bulkwatch_app' \
         AND NOT rolbypassrls AND NOT rolsuper",
    )
    .await;
    assert_eq!(no_role, 1, "the server's role is subject to the policies");
}

#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn the_server_itself_is_subject_to_the_policies() {
    require_postgres();
    let app = spawn_app().await;
    let db = owner(&app).await;
    let id = app.create_task(1).await;
    let seen = app.data(TASK_ID, json!({ "id": id })).await;
    assert_eq!(seen["bulkTask"]["id"], id.as_str());

    // A policy that admits nothing: a server that bypassed row-level
    // security would still find the task through its own filters.
    task_policy(&db, "false").await;
    let hidden = app.post(TASK_ID, json!({ "id": id })).await;
    let other_path = app
        .post(
            "{ bulkTasks(first: 5) { totalCount nodes { id } } }",
            json!({}),
        )
        .await;
    task_policy(&db, MIGRATED_TASK_POLICY).await;
    assert_eq!(hidden, json!({ "data": { "bulkTask": null } }));
    assert_eq!(
        other_path,
        json!({ "data": { "bulkTasks": { "totalCount": 0, "nodes": [] } } })
    );
    let back = app.data(TASK_ID, json!({ "id": id })).await;
    assert_eq!(back["bulkTask"]["id"], id.as_str());
}

/// Readers keep the organisation on their connection between requests: with
/// one reader connection, organisations taking turns must each find their
/// own rows and never the other's. The policy on tasks admits only the
/// organisation setting for the test (not the system one that
/// authentication reads with), so a setting left on the connection from the
/// previous request, whoever made it, hides the reader's own task.
#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn organisations_taking_turns_on_one_reader_connection_each_see_their_own_rows() {
    organisations_take_turns(false).await;
}

/// The same behind a pooler in transaction mode, where readers set their
/// organisation per transaction.
#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn organisations_taking_turns_behind_a_transaction_pooler_each_see_their_own_rows() {
    organisations_take_turns(true).await;
}

async fn organisations_take_turns(transaction_pooler: bool) {
    require_postgres();
    let app = spawn_app_with(|c| {
        c.db_connections = 1;
        c.db_transaction_pooler = transaction_pooler;
    })
    .await;
    let db = owner(&app).await;
    let globex = app.as_key(&app.key_for("globex", "tasks:read,tasks:write"));
    let ours = app.create_task(2).await;
    let theirs = globex.create_task(3).await;
    task_policy(&db, ORGANISATION_ONLY).await;
    let list = "{ bulkTasks(first: 5) { totalCount nodes { id } } }";
    let mut seen = Vec::new();
    for _ in 0..5 {
        for (reader, own, other) in [(&app, &ours, &theirs), (&globex, &theirs, &ours)] {
            let found = reader.post(TASK_ID, json!({ "id": own })).await;
            let hidden = reader.post(TASK_ID, json!({ "id": other })).await;
            let listed = reader.post(list, json!({})).await;
            seen.push((found, hidden, listed, own.clone()));
        }
    }
    task_policy(&db, MIGRATED_TASK_POLICY).await;
    for (turn, (found, hidden, listed, own)) in seen.into_iter().enumerate() {
        assert_eq!(
            found["data"]["bulkTask"]["id"],
            own.as_str(),
            "turn {turn}: {found}"
        );
        assert_eq!(
            hidden,
            json!({ "data": { "bulkTask": null } }),
            "turn {turn}"
        );
        assert_eq!(
            listed["data"]["bulkTasks"],
            json!({ "totalCount": 1, "nodes": [{ "id": own }] }),
            "turn {turn}: {listed}"
        );
    }
}
