//! The test harness: a whole server on port 0 with a fresh database, and a
//! client that speaks GraphQL over HTTP the way a user's client would.
//!
//! Tests run on SQLite by default. With `BULKWATCH_TEST_DATABASE_URL` set to
//! a PostgreSQL URL, each test gets a fresh schema in that database instead.

use std::time::Duration;

use bulkwatch::{Application, Config};
use serde_json::{Value, json};

pub struct TestApp {
    pub address: String,
    /// Sends the first-start admin key with every request.
    pub client: reqwest::Client,
    /// The admin key of the default organisation, made on first start.
    pub admin_key: String,
    /// The database the server runs on, for the CLI.
    pub database_url: String,
    /// Keeps the SQLite file alive for the test's lifetime.
    _dir: Option<tempfile::TempDir>,
    /// Stops the server when the test ends.
    _server: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Stops a test that needs PostgreSQL when it was asked to run on SQLite.
/// Such tests are marked `#[ignore = "needs PostgreSQL"]`, so the default
/// run lists and counts them as ignored; the PostgreSQL pass runs them with
/// `-- --include-ignored`.
pub fn require_postgres() {
    let url = std::env::var("BULKWATCH_TEST_DATABASE_URL").unwrap_or_default();
    assert!(
        url.starts_with("postgres"),
        "this test needs PostgreSQL: set BULKWATCH_TEST_DATABASE_URL=postgres://... and run with -- --include-ignored"
    );
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts a server whose config `adjust` may change first.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let (database_url, dir) = fresh_database().await;
    let mut config = Config::with_database(database_url.clone());
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.db_connections = 4;
    adjust(&mut config);
    let (port, key, stop) = serve_in_thread(config).await;
    let admin_key = key.expect("a fresh database gets an admin key");
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: client_with_key(Some(&admin_key)),
        admin_key,
        database_url,
        _dir: dir,
        _server: Some(stop),
    }
}

/// Runs a server on a runtime of its own, so that a test that blocks its own
/// thread (on a CLI call, say) cannot stall the server mid-transaction.
/// Returns its port, its first-start key, and what stops it when dropped.
async fn serve_in_thread(
    config: Config,
) -> (u16, Option<String>, tokio::sync::oneshot::Sender<()>) {
    let (started, up) = tokio::sync::oneshot::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the server");
        runtime.block_on(async move {
            let app = Application::build(config).await.expect("the app starts");
            let key = app.first_start_key().map(str::to_owned);
            let _ = started.send((app.port(), key));
            let _ = app
                .run_until(async {
                    let _ = stopped.await;
                })
                .await;
        });
    });
    let (port, key) = up.await.expect("the server thread starts");
    (port, key, stop)
}

impl TestApp {
    /// SQL statements one request costs, and its data. The least of five
    /// runs, so that background jobs (the reaper, deadlines, the webhook
    /// dispatcher) cannot inflate it, less what reading `/metrics` costs.
    pub async fn cost(&self, query: &str, variables: Value) -> (u64, Value) {
        let statements = || self.metric("bulkwatch_sql_statements_total");
        let mut reading = u64::MAX;
        for _ in 0..3 {
            let before = statements().await;
            reading = reading.min(statements().await - before);
        }
        let mut best = u64::MAX;
        let mut data = Value::Null;
        for _ in 0..5 {
            // A request just before keeps the key in the server's one-second
            // key cache, so the measured request does not look it up again
            // however slowly a loaded machine runs the loop.
            self.data("{ bulkTaskStats { total } }", json!({})).await;
            let before = statements().await;
            data = self.data(query, variables.clone()).await;
            best = best.min(statements().await - before);
        }
        (best.saturating_sub(reading), data)
    }

    /// Another server instance on this app's database, as a client of it
    /// with the same admin key.
    pub async fn second_instance(&self) -> TestApp {
        let mut config = Config::with_database(self.database_url.clone());
        config.bind = "127.0.0.1:0".parse().unwrap();
        config.db_connections = 4;
        let (port, _, stop) = serve_in_thread(config).await;
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            client: client_with_key(Some(&self.admin_key)),
            admin_key: self.admin_key.clone(),
            database_url: self.database_url.clone(),
            _dir: None,
            _server: Some(stop),
        }
    }
}

pub async fn fresh_database() -> (String, Option<tempfile::TempDir>) {
    match std::env::var("BULKWATCH_TEST_DATABASE_URL") {
        Ok(base) if base.starts_with("postgres") => {
            let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
            let admin = sea_orm::Database::connect(&base)
                .await
                .expect("postgres answers");
            SWEPT.get_or_init(|| drop_stale_schemas(&admin)).await;
            sea_orm::ConnectionTrait::execute_unprepared(
                &admin,
                &format!("CREATE SCHEMA {schema}"),
            )
            .await
            .expect("create schema");
            admin.close().await.ok();
            let sep = if base.contains('?') { '&' } else { '?' };
            (
                format!("{base}{sep}options=-c%20search_path%3D{schema}"),
                None,
            )
        }
        _ => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
            (url, Some(dir))
        }
    }
}

/// An HTTP client that sends `key` (if any) as a bearer token.
pub fn client_with_key(key: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(key) = key {
        let value = format!("Bearer {key}").parse().expect("a header value");
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .default_headers(headers)
        .build()
        .unwrap()
}

static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// Drops test schemas left by runs more than an hour old (their names carry
/// a UUIDv7, hence their creation time), so the test database does not grow.
async fn drop_stale_schemas(admin: &sea_orm::DatabaseConnection) {
    use sea_orm::{ConnectionTrait, Statement};
    let rows = admin
        .query_all_raw(Statement::from_string(
            admin.get_database_backend(),
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 't\\_%'",
        ))
        .await
        .unwrap_or_default();
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    for row in rows {
        let Ok(name) = row.try_get::<String>("", "nspname") else {
            continue;
        };
        let Ok(id) = uuid::Uuid::try_parse(&name[2..]) else {
            continue;
        };
        let Some((secs, nanos)) = id.get_timestamp().map(|t| t.to_unix()) else {
            continue;
        };
        if std::time::UNIX_EPOCH + Duration::new(secs, nanos) < hour_ago {
            let _ = admin
                .execute_unprepared(&format!("DROP SCHEMA {name} CASCADE"))
                .await;
        }
    }
}

impl TestApp {
    /// A client of a server that runs elsewhere (e.g. as a child process).
    pub fn attach(address: &str, key: &str, database_url: &str) -> TestApp {
        TestApp {
            address: address.to_owned(),
            client: client_with_key(Some(key)),
            admin_key: key.to_owned(),
            database_url: database_url.to_owned(),
            _dir: None,
            _server: None,
        }
    }

    /// Runs the `bulkwatch` binary against this app's database; returns its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_bulkwatch"))
            .args(args)
            .env("DATABASE_URL", &self.database_url)
            .env("RUST_LOG", "warn")
            .output()
            .expect("the CLI runs");
        assert!(
            output.status.success(),
            "bulkwatch {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// The same server seen by a client holding `key`: every typed operation
    /// of `ops` then runs as that key.
    pub fn as_key(&self, key: &str) -> TestApp {
        TestApp::attach(&self.address, key, &self.database_url)
    }

    /// Makes an organisation and a key with `scopes`; returns the key.
    pub fn key_for(&self, org: &str, scopes: &str) -> String {
        if org != "default" && !self.cli(&["keys", "list"]).contains(&format!(" {org} ")) {
            self.cli(&["orgs", "create", org]);
        }
        self.cli(&["keys", "create", "--org", org, "--scopes", scopes])
            .trim()
            .to_owned()
    }

    /// POSTs a GraphQL request with another key (or none) and returns the JSON response.
    pub async fn post_as(&self, key: Option<&str>, query: &str, variables: Value) -> Value {
        client_with_key(key)
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request sent")
            .json()
            .await
            .expect("a JSON response")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// POSTs a GraphQL request and returns the whole JSON response.
    pub async fn post(&self, query: &str, variables: Value) -> Value {
        self.post_with_status(query, variables).await.1
    }

    /// POSTs a GraphQL request and returns the HTTP status and the JSON response.
    pub async fn post_with_status(&self, query: &str, variables: Value) -> (u16, Value) {
        let response = self
            .client
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON response"))
    }

    /// The whole `/metrics` page.
    pub async fn metrics_text(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("/metrics answers")
            .text()
            .await
            .unwrap()
    }

    /// The value of an unlabelled sample on `/metrics`.
    pub async fn metric(&self, name: &str) -> u64 {
        let text = self.metrics_text().await;
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"));
        let value = line.split_whitespace().nth(1).unwrap();
        value
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("not a number: {line}")) as u64
    }

    /// POSTs a GraphQL request that must succeed and returns its `data`.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let body = self.post(query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// Like `data`, as `key`.
    pub async fn data_as(&self, key: &str, query: &str, variables: Value) -> Value {
        let body = self.post_as(Some(key), query, variables).await;
        assert!(
            body.get("errors").is_none(),
            "unexpected errors for {query}: {body:#}"
        );
        body["data"].clone()
    }

    /// POSTs a GraphQL request that must fail and returns the code of its first error.
    pub async fn error_code(&self, query: &str, variables: Value) -> String {
        let body = self.post(query, variables).await;
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected a coded error: {body:#}"))
            .to_owned()
    }

    /// Asserts that the counters of a task equal those recomputed from its
    /// item rows, and that `total = pending + running + finished`.
    pub async fn assert_counters_consistent(&self, task_id: &str) {
        let query = r#"query($id: ID!, $after: String) { bulkTask(id: $id) {
            counters { total pending running succeeded failed skipped rejected cancelled finished }
            items(first: 100, after: $after) { nodes { status } pageInfo { hasNextPage endCursor } } } }"#;
        let mut seen = std::collections::HashMap::<String, i64>::new();
        let mut after = Value::Null;
        let counters = loop {
            let data = self
                .data(query, json!({ "id": task_id, "after": after }))
                .await;
            let task = &data["bulkTask"];
            for item in task["items"]["nodes"].as_array().unwrap() {
                *seen
                    .entry(item["status"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
            if !task["items"]["pageInfo"]["hasNextPage"].as_bool().unwrap() {
                break task["counters"].clone();
            }
            after = task["items"]["pageInfo"]["endCursor"].clone();
        };
        let count = |s: &str| seen.get(s).copied().unwrap_or(0);
        let expected = json!({
            "total": seen.values().sum::<i64>(),
            "pending": count("PENDING"),
            "running": count("RUNNING"),
            "succeeded": count("SUCCEEDED"),
            "failed": count("FAILED"),
            "skipped": count("SKIPPED"),
            "rejected": count("REJECTED"),
            "cancelled": count("CANCELLED"),
            "finished": count("SUCCEEDED") + count("FAILED") + count("SKIPPED") + count("REJECTED") + count("CANCELLED"),
        });
        assert_eq!(
            counters, expected,
            "stored counters differ from the item rows of {task_id}"
        );
    }
}

/// The id of `key` in the output of `keys list`, found by its prefix.
pub fn key_id(list: &str, key: &str) -> String {
    let prefix = &key[..11];
    let lines: Vec<&str> = list.lines().filter(|l| l.contains(prefix)).collect();
    assert_eq!(lines.len(), 1, "the prefix {prefix} names one key:\n{list}");
    lines[0].split_whitespace().next().unwrap().to_owned()
}

/// The expected `counters` object: the named statuses, the rest 0; total and finished computed.
pub fn counters(pairs: &[(&str, i64)]) -> Value {
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .unwrap_or(0)
    };
    for (k, _) in pairs {
        assert!(
            [
                "pending",
                "running",
                "succeeded",
                "failed",
                "skipped",
                "rejected",
                "cancelled"
            ]
            .contains(k),
            "test bug: unknown counter {k}"
        );
    }
    let finished =
        get("succeeded") + get("failed") + get("skipped") + get("rejected") + get("cancelled");
    json!({
        "total": get("pending") + get("running") + finished,
        "pending": get("pending"),
        "running": get("running"),
        "succeeded": get("succeeded"),
        "failed": get("failed"),
        "skipped": get("skipped"),
        "rejected": get("rejected"),
        "cancelled": get("cancelled"),
        "finished": finished,
    })
}

/// Asserts a report payload's `applied`, `duplicates` and problems as (position, code).
pub fn assert_report(payload: &Value, applied: i64, duplicates: i64, problems: &[(i64, &str)]) {
    let got: Vec<(i64, String)> = payload["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("no problems list: {payload:#}"))
        .iter()
        .map(|p| {
            (
                p["position"].as_i64().unwrap(),
                p["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(i64, String)> = problems
        .iter()
        .map(|(p, c)| (*p, (*c).to_owned()))
        .collect();
    assert_eq!(got, want, "problems of {payload:#}");
    for p in payload["problems"].as_array().unwrap() {
        assert!(
            p["message"].as_str().is_some_and(|m| !m.is_empty()),
            "a problem without message: {p}"
        );
    }
    assert_eq!(payload["applied"], json!(applied), "applied of {payload:#}");
    assert_eq!(
        payload["duplicates"],
        json!(duplicates),
        "duplicates of {payload:#}"
    );
}
