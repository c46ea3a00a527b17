//! Exports: a task's items as CSV or NDJSON through a signed link that
//! works without an API key, streamed in index order.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, client_with_key, spawn_app, spawn_app_with};
use crate::ops::id_of;

/// Payloads a CSV writer must quote and a reader must get back intact.
fn awkward_items() -> Vec<Value> {
    vec![
        json!({ "clientItemId": "plain", "payload": { "n": 0 } }),
        json!({ "clientItemId": "quote\"and,comma", "payload": { "text": "say \"hi\", then go" } }),
        json!({ "clientItemId": "lines", "payload": { "text": "one\ntwo\r\nthree" } }),
        json!({ "clientItemId": "ünïcødé-✓", "payload": { "name": "Zoë 東京 🚀" } }),
        json!({ "clientItemId": "refused", "payload": { "n": 4 },
                "reject": { "code": "INSUFFICIENT_CREDITS", "message": "no credits, \"none\"", "details": { "left": 0 } } }),
        json!({ "payload": { "n": 5 } }),
    ]
}

/// Creates the awkward task and gives its items outcomes: 0 and 3
/// succeed with results, 1 fails with details, the rest stay as they are.
async fn awkward_task(app: &TestApp) -> String {
    let created = app
        .create(json!({ "type": "exports.awkward", "items": awkward_items() }))
        .await;
    let task = id_of(&created["task"]);
    app.report_all(
        &task,
        json!([
            { "index": 0, "outcome": "SUCCEEDED", "result": { "id": "r-0", "note": "a,b" } },
            { "index": 3, "outcome": "SUCCEEDED", "result": { "msg": "fertig ✓" } },
            { "index": 1, "outcome": "FAILED",
              "error": { "code": "HLR_TIMEOUT", "message": "no answer,\nretry later", "details": { "after": 30 } } },
        ]),
    )
    .await;
    task
}

/// The task's items as the API shows them, as export rows (JSON columns as values).
async fn expected_rows(app: &TestApp, task: &str) -> Vec<Value> {
    let data = app
        .data(
            "query($id: ID!) { bulkTask(id: $id) { items(first: 100) { nodes { \
             index clientItemId status attempts payload result error { code message details } } } } }",
            json!({ "id": task }),
        )
        .await;
    data["bulkTask"]["items"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            json!({
                "index": i["index"],
                "clientItemId": i["clientItemId"],
                "status": i["status"],
                "attempts": i["attempts"],
                "errorCode": i["error"]["code"],
                "errorMessage": i["error"]["message"],
                "errorDetails": i["error"]["details"],
                "payload": i["payload"],
                "result": i["result"],
            })
        })
        .collect()
}

/// GETs `url` without any Authorization header.
async fn download(url: &str) -> reqwest::Response {
    client_with_key(None)
        .get(url)
        .send()
        .await
        .expect("request sent")
}

/// A CSV row back as an export row: empty cells are null, JSON cells parsed.
fn from_csv(header: &csv::StringRecord, record: &csv::StringRecord) -> Value {
    let cell = |name: &str| {
        let i = header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name} column"));
        record[i].to_owned()
    };
    let text = |name: &str| match cell(name) {
        s if s.is_empty() => Value::Null,
        s => Value::String(s),
    };
    let json_cell = |name: &str| match cell(name) {
        s if s.is_empty() => Value::Null,
        s => serde_json::from_str(&s).unwrap_or_else(|e| panic!("{name} is not JSON ({e}): {s}")),
    };
    json!({
        "index": cell("index").parse::<i64>().unwrap(),
        "clientItemId": text("clientItemId"),
        "status": cell("status"),
        "attempts": cell("attempts").parse::<i64>().unwrap(),
        "errorCode": text("errorCode"),
        "errorMessage": text("errorMessage"),
        "errorDetails": json_cell("errorDetails"),
        "payload": json_cell("payload"),
        "result": json_cell("result"),
    })
}

#[tokio::test]
async fn csv_export_parses_back_to_the_items() {
    let app = spawn_app().await;
    let task = awkward_task(&app).await;
    let url = app.export_url(&task, "CSV", Value::Null).await;
    let response = download(&url).await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains(".csv")
    );
    let body = response.bytes().await.unwrap();

    let mut reader = csv::Reader::from_reader(body.as_ref());
    let header = reader.headers().unwrap().clone();
    assert_eq!(
        header.iter().collect::<Vec<_>>(),
        [
            "index",
            "clientItemId",
            "status",
            "attempts",
            "errorCode",
            "errorMessage",
            "errorDetails",
            "payload",
            "result",
            "updatedAt"
        ]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let rows: Vec<Value> = records.iter().map(|r| from_csv(&header, r)).collect();
    assert_eq!(rows, expected_rows(&app, &task).await);
    for r in &records {
        let at = &r[9];
        assert!(
            chrono::DateTime::parse_from_rfc3339(at).is_ok(),
            "updatedAt {at}"
        );
    }
    // RFC 4180: CRLF ends every record; line breaks inside a quoted field stay as they are.
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.starts_with("index,clientItemId,status,"));
    assert!(text.ends_with("\r\n"));
    assert!(
        text.contains("\"{\"\"text\"\":\"\"say \\\"\"hi\\\"\", then go\"\"}\""),
        "{text}"
    );
}

#[tokio::test]
async fn ndjson_export_of_some_statuses_lists_them_in_index_order() {
    let app = spawn_app().await;
    let task = awkward_task(&app).await;
    let url = app
        .export_url(&task, "NDJSON", json!(["REJECTED", "FAILED"]))
        .await;
    let response = download(&url).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let want: Vec<Value> = expected_rows(&app, &task)
        .await
        .into_iter()
        .filter(|r| r["status"] == "FAILED" || r["status"] == "REJECTED")
        .collect();
    assert_eq!(want.len(), 2);
    let got: Vec<Value> = lines
        .iter()
        .map(|l| {
            assert!(l["updatedAt"].is_string());
            let mut l = l.clone();
            l.as_object_mut().unwrap().remove("updatedAt");
            l
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(lines[1]["errorCode"], "INSUFFICIENT_CREDITS");

    // An empty selection is a file with the header only (CSV) or nothing (NDJSON).
    let none = app.export_url(&task, "CSV", json!(["SKIPPED"])).await;
    let text = download(&none).await.text().await.unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
}

/// `url` with the query parameter `name` set to `value`.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut parsed = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .filter(|(k, _)| k != name)
        .collect();
    parsed
        .query_pairs_mut()
        .clear()
        .extend_pairs(&pairs)
        .append_pair(name, value);
    parsed.to_string()
}

async fn assert_forbidden(url: &str) {
    let response = download(url).await;
    assert_eq!(response.status(), 403, "{url}");
    let body: Value = response.json().await.expect("a JSON error");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
}

#[tokio::test]
async fn a_tampered_or_foreign_link_is_forbidden() {
    let app = spawn_app().await;
    let task = awkward_task(&app).await;
    let url = app.export_url(&task, "NDJSON", json!(["FAILED"])).await;
    assert_eq!(download(&url).await.status(), 200);

    let sig = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "sig")
        .unwrap()
        .1
        .into_owned();
    let mut flipped = sig.clone().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    assert_forbidden(&with_param(
        &url,
        "sig",
        std::str::from_utf8(&flipped).unwrap(),
    ))
    .await;
    assert_forbidden(&with_param(&url, "status", "FAILED,SUCCEEDED")).await;
    assert_forbidden(&with_param(&url, "expires", "99999999999")).await;
    assert_forbidden(&url.replace(".ndjson?", ".csv?")).await;
    assert_forbidden(&with_param(&url, "sig", "")).await;
    assert_forbidden(&with_param(&url, "org", &uuid::Uuid::now_v7().to_string())).await;

    // Another organisation's link names its own task and organisation: it
    // does not open this one, however the two are combined.
    let other = app.as_key(&app.key_for("other", "tasks:read,tasks:write"));
    let created = other
        .create(json!({ "type": "exports.other", "items": [{ "payload": { "secret": 1 } }] }))
        .await;
    let theirs = other
        .export_url(&id_of(&created["task"]), "NDJSON", json!(["FAILED"]))
        .await;
    assert_eq!(download(&theirs).await.status(), 200);
    let their_task = id_of(&created["task"]);
    assert_forbidden(&theirs.replace(&their_task, &task)).await;
    let our_org = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "org")
        .unwrap()
        .1
        .into_owned();
    assert_forbidden(&with_param(&theirs, "org", &our_org)).await;
    assert_forbidden(&with_param(
        &theirs.replace(&their_task, &task),
        "org",
        &our_org,
    ))
    .await;

    // A genuine link to a task that was deleted since is simply not found.
    app.delete(&task).await;
    assert_eq!(download(&url).await.status(), 404);
}

#[tokio::test]
async fn a_link_expires() {
    let app = spawn_app_with(|c| c.export_url_ttl_seconds = 1).await;
    let task = awkward_task(&app).await;
    let url = app.export_url(&task, "CSV", Value::Null).await;
    assert_eq!(download(&url).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_forbidden(&url).await;
}

/// Instances on one database sign with the key the first one stored, so a
/// link from one works on the other.
#[tokio::test]
async fn a_link_made_by_one_instance_works_on_another() {
    let mut database_url = String::new();
    let app = spawn_app_with(|c| database_url = c.database_url.clone()).await;
    let mut config = bulkwatch::Config::with_database(database_url);
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.db_connections = 2;
    let second = bulkwatch::Application::build(config)
        .await
        .expect("the second instance starts");
    let second_address = format!("http://127.0.0.1:{}", second.port());
    tokio::spawn(second.run_until(std::future::pending()));

    let task = awkward_task(&app).await;
    let url = app.export_url(&task, "NDJSON", Value::Null).await;
    let there = url.replace(&app.address, &second_address);
    let response = download(&there).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap().lines().count(), 6);

    // A configured key overrides the stored one: its links differ.
    let configured = spawn_app_with(|c| {
        c.signing_secret = Some(bulkwatch::config::SigningSecret("k".repeat(32)));
    })
    .await;
    let other_task = awkward_task(&configured).await;
    let link = configured
        .export_url(&other_task, "NDJSON", Value::Null)
        .await;
    assert_eq!(download(&link).await.status(), 200);
}

/// A server process that ends with the test, however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The resident memory of process `pid`.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// 100,000 items stream out without the file (about 45 MB here) or its
/// rows ever being held whole: the response has no length, and the server
/// (a process of its own, so that other tests do not count) grows by far
/// less than the file while it streams.
#[tokio::test]
async fn a_hundred_thousand_item_export_streams_in_bounded_memory() {
    use crate::crash::{bulkwatch, free_port, wait_ready};
    let (database_url, _dir) = crate::helpers::fresh_database().await;
    let output = bulkwatch()
        .args(["keys", "create", "--org", "default"])
        .env("DATABASE_URL", &database_url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let key = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let port = free_port();
    let server = KillOnDrop(
        bulkwatch()
            .args(["serve"])
            .env("DATABASE_URL", &database_url)
            .env("BULKWATCH_BIND", format!("127.0.0.1:{port}"))
            .env("BULKWATCH_DB_CONNECTIONS", "2")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the server starts"),
    );
    wait_ready(&client_with_key(None), port).await;
    let app = TestApp::attach(&format!("http://127.0.0.1:{port}"), &key, &database_url);
    let created = app
        .create(json!({ "type": "exports.big", "sealed": false, "items": [] }))
        .await;
    let task = id_of(&created["task"]);
    for chunk in 0..10 {
        let items: Vec<Value> = (0..10_000)
            .map(|i| json!({ "clientItemId": format!("c-{chunk}-{i}"), "payload": { "n": i, "pad": "x".repeat(200) } }))
            .collect();
        app.append(&task, json!(items), Some(chunk == 9)).await;
    }
    let url = app.export_url(&task, "NDJSON", Value::Null).await;
    let before = rss_bytes(server.0.id());
    let mut response = download(&url).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("content-length").is_none(),
        "a streamed body has no length"
    );
    let (mut bytes, mut lines, mut peak, mut next_index) = (0u64, 0u64, before, 0i64);
    let mut partial = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        bytes += chunk.len() as u64;
        partial.extend_from_slice(&chunk);
        while let Some(end) = partial.iter().position(|b| *b == b'\n') {
            let line: Value = serde_json::from_slice(&partial[..end]).unwrap();
            assert_eq!(line["index"], next_index, "index order");
            next_index += 1;
            lines += 1;
            partial.drain(..=end);
        }
        peak = peak.max(rss_bytes(server.0.id()));
    }
    assert_eq!(lines, 100_000);
    let grown = peak.saturating_sub(before);
    eprintln!("the server grew by {grown} bytes while streaming a {bytes}-byte export");
    assert!(
        grown < bytes / 2,
        "the process grew by {grown} bytes while streaming a {bytes}-byte export"
    );
}
