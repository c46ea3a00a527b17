//! What tasks hand back: `export` streams a big task's items as NDJSON and
//! CSV through a signed link; `filter` lists tasks by metadata among many;
//! `prune` deletes a finished 100k-item task while a worker keeps reporting
//! to another one.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sea_orm::sqlx;
use serde_json::{Value, json};

use crate::client::{self, Gql};
use crate::procfs::status_kib;
use crate::raw::{ORG, Pool, now_ms};
use crate::scenarios::{Rig, cpu};
use crate::stats::Samples;
use crate::{Env, Figures, Res};

const EXPORT_URL: &str =
    "query($id: ID!, $format: ExportFormat!) { bulkTask(id: $id) { exportUrl(format: $format) } }";

/// `export`: one task of N items downloaded in both formats; the server's
/// RSS is sampled every 20 ms while it streams.
pub async fn export(env: &Env, rig: &Rig, out: &mut Figures) -> Res<()> {
    let n = if env.full() { 100_000 } else { 10_000 };
    eprintln!("bench: seeding a task with {n} items");
    let (id, uuid) = client::create_task(&rig.gql, "bench.export", n).await?;
    out.add("export", "items", n as f64, "items");
    let http = reqwest::Client::new();
    for format in ["NDJSON", "CSV"] {
        let data = rig
            .gql
            .query(EXPORT_URL, json!({ "id": id, "format": format }))
            .await?;
        let path = data["bulkTask"]["exportUrl"]
            .as_str()
            .ok_or("no exportUrl")?;
        let url = format!("{}{path}", rig.server.base);
        // Restarts the RSS peak, so that the seeding's does not count.
        rig.sampler.since(rig.sampler.mark());
        let rss_before = status_kib(rig.server.pid(), "VmRSS").unwrap_or(0);
        let mark = rig.sampler.mark();
        let t = Instant::now();
        let mut response = http.get(&url).send().await?;
        if !response.status().is_success() {
            return Err(format!("export {format}: HTTP {}", response.status()).into());
        }
        let (mut bytes, mut lines) = (0u64, 0u64);
        while let Some(chunk) = response.chunk().await? {
            bytes += chunk.len() as u64;
            lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        }
        let wall = t.elapsed().as_secs_f64();
        let usage = rig.sampler.since(mark);
        let want = if format == "CSV" {
            n as u64 + 1
        } else {
            n as u64
        };
        if lines != want {
            return Err(format!("export {format}: {lines} lines, expected {want}").into());
        }
        let f = format.to_lowercase();
        out.add(
            "export",
            format!("{f}.items_per_s"),
            n as f64 / wall,
            "items/s",
        );
        out.add(
            "export",
            format!("{f}.mib_per_s"),
            bytes as f64 / wall / 1048576.0,
            "MiB/s",
        );
        out.add(
            "export",
            format!("{f}.file"),
            bytes as f64 / 1048576.0,
            "MiB",
        );
        out.add(
            "export",
            format!("{f}.rss_before"),
            rss_before as f64 / 1024.0,
            "MiB",
        );
        out.add(
            "export",
            format!("{f}.peak_rss"),
            usage.peak_rss_kib as f64 / 1024.0,
            "MiB",
        );
        cpu(out, "export", &f, &usage);
    }

    // Baseline: the same rows in index order, one streamed statement,
    // written as NDJSON lines with serde_json into a reused buffer.
    let t = Instant::now();
    let rows = raw_export(&rig.pool, uuid).await?;
    let wall = t.elapsed().as_secs_f64();
    if rows != n as u64 {
        return Err(format!("baseline export: {rows} rows").into());
    }
    out.add(
        "export",
        "raw_ndjson.items_per_s",
        n as f64 / wall,
        "items/s",
    );
    Ok(())
}

type ExportRow = (
    i32,
    Option<String>,
    String,
    i32,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

async fn raw_export(pool: &Pool, task: uuid::Uuid) -> Res<u64> {
    const SQL: &str = "SELECT idx, client_item_id, status, attempts, error_code, error_message, \
         error_details, payload, result, updated_at FROM task_items WHERE task_id = $1 ORDER BY idx";
    let mut line = Vec::with_capacity(512);
    let mut n = 0;
    let mut write = |r: ExportRow| {
        line.clear();
        let v = json!({
            "index": r.0, "clientItemId": r.1, "status": r.2, "attempts": r.3,
            "errorCode": r.4, "errorMessage": r.5, "errorDetails": r.6,
            "payload": r.7, "result": r.8, "updatedAt": r.9,
        });
        let _ = serde_json::to_writer(&mut line, &v);
        line.push(b'\n');
        n += 1;
    };
    match pool {
        Pool::Sqlite(p) => {
            let mut rows = sqlx::query_as::<_, ExportRow>(SQL).bind(task).fetch(p);
            while let Some(r) = rows.next().await {
                write(r?);
            }
        }
        Pool::Pg(p) => {
            let mut rows = sqlx::query_as::<_, ExportRow>(SQL).bind(task).fetch(p);
            while let Some(r) = rows.next().await {
                write(r?);
            }
        }
    }
    Ok(n)
}

const FILTERED: &str = "query($filter: BulkTaskFilter) { bulkTasks(first: 20, filter: $filter) { \
     totalCount nodes { id metadata } } }";

/// `filter`: N tasks with metadata (`campaign_id` one of 1,000 values,
/// `template.id` one of 50), inserted by SQL; then pages of tasks by metadata.
pub async fn filter(env: &Env, rig: &Rig, out: &mut Figures) -> Res<()> {
    let (n, rounds) = if env.full() {
        (100_000, 200)
    } else {
        (10_000, 50)
    };
    eprintln!("bench: inserting {n} tasks");
    insert_tasks(&rig.pool, n).await?;
    rig.pool.analyze().await?;
    out.add("filter", "tasks", n as f64, "tasks");
    let cases = [
        ("no_filter", json!(null), 20),
        (
            "campaign_id",
            json!({ "metadata": { "campaign_id": "c-7" } }),
            n / 1000,
        ),
        (
            "nested_template_id",
            json!({ "metadata": { "template": { "id": 7 } } }),
            n / 50,
        ),
        (
            "no_match",
            json!({ "metadata": { "campaign_id": "none" } }),
            0,
        ),
    ];
    for (name, filter, expected) in cases {
        let body = Gql::body(FILTERED, json!({ "filter": filter }));
        let data = rig.gql.post(body.clone()).await?;
        let total = data["bulkTasks"]["totalCount"].as_u64().unwrap_or(0) as usize;
        if name != "no_filter" && total != expected {
            return Err(format!("filter {name}: {total} tasks, expected {expected}").into());
        }
        let mut latency = Samples::default();
        for _ in 0..rounds {
            let t = Instant::now();
            rig.gql.post(body.clone()).await?;
            latency.push(t.elapsed());
        }
        out.add("filter", format!("{name}.p50"), latency.p50(), "ms");
        out.add("filter", format!("{name}.p99"), latency.p99(), "ms");
    }
    Ok(())
}

/// Inserts `n` empty finished tasks with metadata in one statement.
async fn insert_tasks(pool: &Pool, n: usize) -> Res<()> {
    let now = now_ms();
    let columns = "INSERT INTO bulk_tasks (id, organisation_id, task_type, status, sealed, cancel_requested, \
         total, pending, running, succeeded, failed, skipped, rejected, cancelled, progress, version, metadata, \
         max_attempts, created_at, updated_at, finished_at, retain_for) ";
    let values = "'bench.filter', 'COMPLETED', TRUE, FALSE, 0, 0, 0, 0, 0, 0, 0, 0, 1.0, 1, \
         '{\"campaign_id\":\"c-' || (i % 1000) || '\",\"template\":{\"id\":' || (i % 50) || ',\"kind\":\"sms\"},\"n\":' || i || '}', \
         3, $2 + i, $2 + i, $2 + i, 0";
    match pool {
        Pool::Sqlite(p) => {
            let sql = format!(
                "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < $3) \
                 {columns} SELECT randomblob(16), $1, {values} FROM s"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(ORG)
                .bind(now)
                .bind(n as i64)
                .execute(p)
                .await?;
        }
        Pool::Pg(p) => {
            let sql = format!(
                "{columns} SELECT gen_random_uuid(), $1, {values} FROM generate_series(0, $3 - 1) AS i"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(ORG)
                .bind(now)
                .bind(n as i64)
                .execute(p)
                .await?;
        }
    }
    Ok(())
}

const REPORT: &str =
    "mutation($input: ReportItemResultsInput!) { reportItemResults(input: $input) { applied } }";
const CREATE_QUIET: &str = "mutation($input: CreateBulkTaskInput!) { createBulkTask(input: $input) { task { id status } } }";

/// `prune`: a worker reports batches of 10 to one task, first alone, then
/// while the pruner deletes a finished task of N items (all refused by the
/// producer, so it is finished at creation) whose `retainFor` ran out.
pub async fn prune(env: &Env, rig: &Rig, out: &mut Figures) -> Res<()> {
    let n = if env.full() { 100_000 } else { 10_000 };
    let (busy, _) = client::create_task(&rig.gql, "bench.busy", 40_000).await?;
    let mut next = 0usize;
    let mut report = async |gql: &Gql| -> Res<Duration> {
        let results: Vec<Value> = (next..next + 10)
            .map(|i| json!({ "index": i, "outcome": "SUCCEEDED" }))
            .collect();
        next += 10;
        let t = Instant::now();
        let data = gql
            .query(
                REPORT,
                json!({ "input": { "taskId": busy, "results": results } }),
            )
            .await?;
        if data["reportItemResults"]["applied"] != 10 {
            return Err(format!("report: {data}").into());
        }
        Ok(t.elapsed())
    };
    let mut alone = Samples::default();
    for _ in 0..300 {
        alone.push(report(&rig.gql).await?);
    }
    eprintln!("bench: creating a finished task of {n} items");
    let items: Vec<Value> = (0..n)
        .map(|i| {
            json!({ "clientItemId": format!("r-{i}"), "payload": { "i": i },
                          "reject": { "code": "NO_CREDITS", "message": "none left" } })
        })
        .collect();
    rig.gql
        .query(
            CREATE_QUIET,
            json!({ "input": { "type": "bench.pruned", "retainFor": 1, "items": items } }),
        )
        .await?;
    let (mut during, mut started, mut longest) = (Samples::default(), None, Duration::ZERO);
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let pruned = metric(&rig.server.base, "bulkwatch_pruned_items_total").await?;
        if pruned >= n as u64 {
            break;
        }
        if Instant::now() > deadline {
            return Err("the task was never pruned".into());
        }
        let took = report(&rig.gql).await?;
        let tasks = rig
            .gql
            .query(
                "{ bulkTasks(filter: { type: [\"bench.pruned\"] }) { totalCount } }",
                json!({}),
            )
            .await?;
        if tasks["bulkTasks"]["totalCount"] == 0 {
            started.get_or_insert_with(Instant::now);
            during.push(took);
            longest = longest.max(took);
        }
    }
    let pruning = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
    out.add("prune", "items", n as f64, "items");
    out.add(
        "prune",
        "items_per_s",
        n as f64 / pruning.max(0.001),
        "items/s",
    );
    out.add("prune", "report_alone.p50", alone.p50(), "ms");
    out.add("prune", "report_alone.p99", alone.p99(), "ms");
    out.add(
        "prune",
        "reports_while_pruning",
        during.len() as f64,
        "reports",
    );
    out.add("prune", "report_while_pruning.p50", during.p50(), "ms");
    out.add("prune", "report_while_pruning.p99", during.p99(), "ms");
    out.add(
        "prune",
        "report_while_pruning.max",
        longest.as_secs_f64() * 1000.0,
        "ms",
    );
    Ok(())
}

async fn metric(base: &str, name: &str) -> Res<u64> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await?
        .text()
        .await?;
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .ok_or_else(|| format!("no {name} in /metrics"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .unwrap_or("0")
        .parse::<f64>()? as u64)
}
