//! The NATS JetStream change bus (`BULKWATCH_EVENT_BUS=nats`): instances on
//! one PostgreSQL database see each other's changes through the stream, and
//! a change committed by an instance that cannot reach NATS is published
//! from the outbox by another. Each test also reads the outbox table and the
//! stream, so that LISTEN/NOTIFY carrying the events instead would fail it.

use serde_json::{Value, json};

use crate::helpers::{TestApp, require_postgres, spawn_app_with};
use crate::ops::{WATCH_ITEMS, WATCH_TASK, WATCH_TASKS};
use crate::ws::{ConnectOptions, TRANSPORT, Ws};

/// The NATS server the tests use: `BULKWATCH_TEST_NATS_URL`, else the usual port.
fn nats_url() -> String {
    std::env::var("BULKWATCH_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn require_nats() {
    require_postgres();
    let url = nats_url();
    let address = url.trim_start_matches("nats://");
    assert!(
        std::net::TcpStream::connect(address).is_ok(),
        "this test needs a NATS server with JetStream at {url} (BULKWATCH_TEST_NATS_URL)"
    );
}

/// A subject of this test's own: every deployment needs its own subject,
/// and the tests' servers run side by side on one NATS server.
fn subject() -> String {
    format!("bulkwatch_test.{}", uuid::Uuid::now_v7().simple())
}

/// Another instance on `app`'s database, on the NATS bus at `url`.
async fn instance(app: &TestApp, url: &str, subject: &str) -> String {
    let mut config = bulkwatch::Config::with_database(app.database_url.clone());
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.db_connections = 4;
    config.coalesce_ms = 50;
    config.event_bus = bulkwatch::EventBusKind::Nats;
    config.nats_url = url.to_owned();
    config.nats_subject = subject.to_owned();
    let server = bulkwatch::Application::build(config)
        .await
        .expect("the instance starts");
    let address = format!("http://127.0.0.1:{}", server.port());
    tokio::spawn(server.run_until(std::future::pending()));
    address
}

async fn nats_app(url: &str, subject: &str) -> TestApp {
    let (url, subject) = (url.to_owned(), subject.to_owned());
    spawn_app_with(move |c| {
        c.coalesce_ms = 50;
        c.event_bus = bulkwatch::EventBusKind::Nats;
        c.nats_url = url;
        c.nats_subject = subject;
    })
    .await
}

/// Messages the deployment's stream holds.
async fn stream_messages(subject: &str) -> u64 {
    let client = async_nats::connect(nats_url().trim_start_matches("nats://"))
        .await
        .expect("NATS answers");
    let mut stream = async_nats::jetstream::new(client)
        .get_stream(subject.replace('.', "_"))
        .await
        .expect("the server made the stream");
    stream.info().await.expect("stream info").state.messages
}

/// Events waiting in the outbox table.
async fn outbox_rows(app: &TestApp) -> i64 {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let db = sea_orm::Database::connect(&app.database_url)
        .await
        .expect("the test connects");
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT COUNT(*) AS n FROM change_outbox",
        ))
        .await
        .unwrap()
        .unwrap();
    let n: i64 = row.try_get("", "n").unwrap();
    db.close().await.ok();
    n
}

async fn watcher(address: &str, key: &str) -> Ws {
    let mut ws = Ws::connect_to(address, TRANSPORT, ConnectOptions::default()).await;
    ws.init(key).await;
    ws
}

fn succeeded(index: usize) -> Value {
    json!({ "index": index, "outcome": "SUCCEEDED", "result": { "i": index } })
}

#[tokio::test]
#[ignore = "needs PostgreSQL and NATS"]
async fn instances_on_the_nats_bus_see_each_others_changes_in_every_subscription() {
    require_nats();
    let subject = subject();
    let app = nats_app(&nats_url(), &subject).await;
    let other = instance(&app, &nats_url(), &subject).await;

    // Watch on the other instance; change on the first.
    let mut dashboard = watcher(&other, &app.admin_key).await;
    dashboard
        .subscribe(
            "d",
            WATCH_TASKS,
            json!({ "filter": { "type": ["nats.bus"] } }),
        )
        .await;
    // Both instances follow the stream, and the subscription is set up.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // A task made after the subscription appears on the dashboard feed.
    let task = app.create_typed("nats.bus", 10).await;
    let seen = dashboard.next_data("d").await;
    assert_eq!(seen["bulkTasksUpdated"]["id"], json!(task));

    let mut ws = watcher(&other, &app.admin_key).await;
    ws.subscribe("t", WATCH_TASK, json!({ "id": task })).await;
    ws.next_data("t").await;
    let mut feed = watcher(&other, &app.admin_key).await;
    feed.subscribe("i", WATCH_ITEMS, json!({ "taskId": task }))
        .await;

    app.report(&task, json!([succeeded(0)])).await;
    ws.snapshots_until("t", |t| t["counters"]["succeeded"] == 1)
        .await;
    let item = feed.next_data("i").await;
    assert_eq!(item["taskItemsUpdated"]["index"], 0);

    // The terminal state reaches the other instance, then the stream ends.
    app.report(&task, json!((1..10).map(succeeded).collect::<Vec<_>>()))
        .await;
    let snapshots = ws.snapshots_until_complete("t").await;
    assert_eq!(snapshots.last().unwrap()["status"], json!("COMPLETED"));
    app.assert_counters_consistent(&task).await;
    // The other instance saw them through the stream: the create and the
    // two reports are in it.
    let published = stream_messages(&subject).await;
    assert!(published >= 3, "{published} events in the stream");
}

#[tokio::test]
#[ignore = "needs PostgreSQL and NATS"]
async fn a_change_from_an_instance_that_cannot_reach_nats_is_published_from_the_outbox_by_another()
{
    require_nats();
    let subject = subject();
    // The first instance's NATS is a closed port: its commits stay in the
    // outbox, and the second instance's relay publishes them.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("nats://{}", listener.local_addr().unwrap())
    };
    let cut_off = nats_app(&closed, &subject).await;
    let task = cut_off.create_typed("nats.outbox", 3).await;
    assert!(
        outbox_rows(&cut_off).await >= 1,
        "the create's event waits in the outbox"
    );
    let connected = instance(&cut_off, &nats_url(), &subject).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let mut ws = watcher(&connected, &cut_off.admin_key).await;
    ws.subscribe("t", WATCH_TASK, json!({ "id": task })).await;
    ws.next_data("t").await;
    cut_off
        .report(&task, json!([succeeded(0), succeeded(1), succeeded(2)]))
        .await;
    let snapshots = ws.snapshots_until_complete("t").await;
    assert_eq!(snapshots.last().unwrap()["status"], json!("COMPLETED"));
    // The other instance's relay emptied the outbox into the stream.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while outbox_rows(&cut_off).await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the outbox was not emptied"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(stream_messages(&subject).await >= 2);
}
