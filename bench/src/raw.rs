//! The baselines: what a perfect implementation would send to the database
//! for the same work, on the same tables, through sqlx prepared statements
//! (sqlx caches each statement per connection), with no GraphQL, HTTP or ORM.

use std::str::FromStr;
use std::time::Duration;

use sea_orm::sqlx::postgres::PgPoolOptions;
use sea_orm::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sea_orm::sqlx::{self, AssertSqlSafe, PgPool, SqlitePool};
use serde::Serialize;
use uuid::Uuid;

use crate::client::global_id;
use crate::{Backend, Res};

/// The organisation every task belongs to until tenancy is switched on.
pub const ORG: Uuid = Uuid::from_u128(0x00000000_0000_7000_8000_000000000001);

#[derive(Clone)]
pub enum Pool {
    Sqlite(SqlitePool),
    Pg(PgPool),
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Pool {
    /// Connects to the database the server uses, with the server's SQLite
    /// settings (WAL, synchronous NORMAL, foreign keys). Each connection is
    /// pinged when it is handed out, so the checks of scenarios that kill
    /// connections or restart PostgreSQL get a live one.
    pub async fn connect(backend: Backend, url: &str, connections: u32) -> Res<Pool> {
        Self::open(backend, url, connections, true).await
    }

    /// As `connect`, without the ping on checkout, as the server has: the
    /// baselines' fastest way to the same rows.
    pub async fn baseline(backend: Backend, url: &str, connections: u32) -> Res<Pool> {
        Self::open(backend, url, connections, false).await
    }

    async fn open(backend: Backend, url: &str, connections: u32, ping: bool) -> Res<Pool> {
        Ok(match backend {
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)?
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true);
                Pool::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(connections)
                        .test_before_acquire(ping)
                        .connect_with(options)
                        .await?,
                )
            }
            Backend::Postgres => Pool::Pg(
                PgPoolOptions::new()
                    .max_connections(connections)
                    .test_before_acquire(ping)
                    .connect(url)
                    .await?,
            ),
        })
    }

    pub async fn close(&self) {
        match self {
            Pool::Sqlite(p) => p.close().await,
            Pool::Pg(p) => p.close().await,
        }
    }

    /// Refreshes planner statistics (PostgreSQL; SQLite plans without them here).
    pub async fn analyze(&self) -> Res<()> {
        if let Pool::Pg(p) = self {
            sqlx::raw_sql("ANALYZE bulk_tasks; ANALYZE task_items")
                .execute(p)
                .await?;
        }
        Ok(())
    }

    /// Items of a task per status, counted from the rows.
    pub async fn item_counts(&self, task: Uuid) -> Res<Vec<(String, i64)>> {
        const SQL: &str = "SELECT status, COUNT(*) AS n FROM task_items WHERE task_id = $1 GROUP BY status ORDER BY status";
        let rows: Vec<(String, i64)> = match self {
            Pool::Sqlite(p) => sqlx::query_as(SQL).bind(task).fetch_all(p).await?,
            Pool::Pg(p) => sqlx::query_as(SQL).bind(task).fetch_all(p).await?,
        };
        Ok(rows)
    }
}

/// One outcome of a report batch.
pub struct Outcome {
    pub idx: i32,
    pub failed: bool,
}

pub const RESULT_TEXT: &str = r#"{"ok":true}"#;
pub const ERROR_CODE: &str = "E_BENCH";
pub const ERROR_MESSAGE: &str = "simulated failure";

const TASK_COUNTERS_AFTER_REPORT: &str = "UPDATE bulk_tasks SET pending = pending - $1, succeeded = succeeded + $2, \
     failed = failed + $3, version = version + 1, updated_at = $4, started_at = COALESCE(started_at, $4), \
     progress = CAST(succeeded + $2 + failed + $3 + skipped + rejected + cancelled AS DOUBLE PRECISION) / total, \
     status = CASE WHEN pending - $1 + running = 0 THEN 'COMPLETED_WITH_FAILURES' ELSE 'RUNNING' END \
     WHERE id = $5";

/// Applies a batch of outcomes in one transaction: the item rows, then the
/// task's counter row. Returns how many items changed.
pub async fn report_batch(pool: &Pool, task: Uuid, batch: &[Outcome]) -> Res<u64> {
    let now = now_ms();
    let failed = batch.iter().filter(|o| o.failed).count() as i32;
    let n = batch.len() as i32;
    let changed = match pool {
        Pool::Sqlite(p) => {
            // One statement per batch, as for PostgreSQL: the rows arrive as
            // one JSON array and are materialised first, so that SQLite finds
            // each item by (task_id, idx).
            const ITEMS: &str = "WITH u AS MATERIALIZED (SELECT CAST(value ->> 'idx' AS INTEGER) AS idx, \
                 value ->> 'status' AS status, value ->> 'result' AS result, \
                 value ->> 'error_code' AS error_code, value ->> 'error_message' AS error_message \
                 FROM json_each(?1)) \
                 UPDATE task_items SET status = u.status, result = u.result, error_code = u.error_code, \
                 error_message = u.error_message, attempts = attempts + 1, \
                 started_at = COALESCE(started_at, ?2), finished_at = ?2, updated_at = ?2, \
                 lease_token = NULL, lease_expires_at = NULL \
                 FROM u WHERE task_items.task_id = ?3 AND task_items.idx = u.idx \
                 AND task_items.status IN ('PENDING', 'RUNNING')";
            let rows: Vec<serde_json::Value> = batch
                .iter()
                .map(|o| {
                    if o.failed {
                        serde_json::json!({ "idx": o.idx, "status": "FAILED",
                            "error_code": ERROR_CODE, "error_message": ERROR_MESSAGE })
                    } else {
                        serde_json::json!({ "idx": o.idx, "status": "SUCCEEDED", "result": RESULT_TEXT })
                    }
                })
                .collect();
            let mut tx = p.begin().await?;
            let changed = sqlx::query(ITEMS)
                .bind(serde_json::to_string(&rows)?)
                .bind(now)
                .bind(task)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query(TASK_COUNTERS_AFTER_REPORT)
                .bind(n)
                .bind(n - failed)
                .bind(failed)
                .bind(now)
                .bind(task)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            changed
        }
        Pool::Pg(p) => {
            // Over a socket, one statement per batch: the rows travel as arrays.
            const ITEMS: &str = "UPDATE task_items AS t SET status = u.status, result = u.result, \
                 error_code = u.error_code, error_message = u.error_message, attempts = t.attempts + 1, \
                 started_at = COALESCE(t.started_at, $1), finished_at = $1, updated_at = $1, \
                 lease_token = NULL, lease_expires_at = NULL \
                 FROM UNNEST($2::int4[], $3::text[], $4::text[], $5::text[], $6::text[]) \
                 AS u(idx, status, result, error_code, error_message) \
                 WHERE t.task_id = $7 AND t.idx = u.idx AND t.status IN ('PENDING', 'RUNNING')";
            let idx: Vec<i32> = batch.iter().map(|o| o.idx).collect();
            let status: Vec<&str> = batch
                .iter()
                .map(|o| if o.failed { "FAILED" } else { "SUCCEEDED" })
                .collect();
            let result: Vec<Option<&str>> = batch
                .iter()
                .map(|o| (!o.failed).then_some(RESULT_TEXT))
                .collect();
            let code: Vec<Option<&str>> = batch
                .iter()
                .map(|o| o.failed.then_some(ERROR_CODE))
                .collect();
            let message: Vec<Option<&str>> = batch
                .iter()
                .map(|o| o.failed.then_some(ERROR_MESSAGE))
                .collect();
            let mut tx = p.begin().await?;
            let changed = sqlx::query(ITEMS)
                .bind(now)
                .bind(idx)
                .bind(status)
                .bind(result)
                .bind(code)
                .bind(message)
                .bind(task)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query(TASK_COUNTERS_AFTER_REPORT)
                .bind(n)
                .bind(n - failed)
                .bind(failed)
                .bind(now)
                .bind(task)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            changed
        }
    };
    Ok(changed)
}

/// Rows per multi-row INSERT: 4 parameters a row plus 3 shared.
const INSERT_ROWS: usize = 1000;

fn insert_sql(rows: usize, backend: Backend) -> String {
    let mut sql = String::from(
        "INSERT INTO task_items (id, organisation_id, task_id, idx, client_item_id, status, payload, attempts, \
         created_at, updated_at) VALUES ",
    );
    for r in 0..rows {
        let p = 4 + r * 4;
        if r > 0 {
            sql.push(',');
        }
        let mark = if backend == Backend::Postgres {
            '$'
        } else {
            '?'
        };
        sql.push_str(&format!(
            "({mark}{}, {mark}1, {mark}2, {mark}{}, {mark}{}, 'PENDING', {mark}{}, 0, {mark}3, {mark}3)",
            p,
            p + 1,
            p + 2,
            p + 3
        ));
    }
    sql
}

/// Creates an empty task row; its id.
pub async fn create_task(pool: &Pool, sealed: bool) -> Res<Uuid> {
    const SQL: &str = "INSERT INTO bulk_tasks (id, organisation_id, task_type, status, sealed, cancel_requested, \
         total, pending, running, succeeded, failed, skipped, rejected, cancelled, progress, version, metadata, \
         max_attempts, created_at, updated_at) \
         VALUES ($1, $2, 'bench.raw', 'QUEUED', $3, FALSE, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 1, '{}', 3, $4, $4)";
    let id = Uuid::now_v7();
    let now = now_ms();
    match pool {
        Pool::Sqlite(p) => {
            sqlx::query(SQL)
                .bind(id)
                .bind(ORG)
                .bind(sealed)
                .bind(now)
                .execute(p)
                .await?;
        }
        Pool::Pg(p) => {
            sqlx::query(SQL)
                .bind(id)
                .bind(ORG)
                .bind(sealed)
                .bind(now)
                .execute(p)
                .await?;
        }
    }
    Ok(id)
}

/// Inserts items `from..from + n` (the same rows `client::new_items` makes)
/// into a task with multi-row prepared INSERTs and bumps its counters, in
/// one transaction; `task` None creates the task row in the same
/// transaction. The payload texts are made before the clock starts.
pub async fn insert_items(
    pool: &Pool,
    task: Option<Uuid>,
    from: usize,
    payloads: &[(String, String)],
) -> Res<Uuid> {
    let now = now_ms();
    let n = payloads.len() as i32;
    macro_rules! run {
        ($p:expr, $backend:expr) => {{
            let mut tx = $p.begin().await?;
            let task = match task {
                Some(t) => t,
                None => {
                    let id = Uuid::now_v7();
                    sqlx::query(
                        "INSERT INTO bulk_tasks (id, organisation_id, task_type, status, sealed, cancel_requested, \
                         total, pending, running, succeeded, failed, skipped, rejected, cancelled, progress, version, \
                         metadata, max_attempts, created_at, updated_at) VALUES ($1, $2, 'bench.raw', 'QUEUED', TRUE, \
                         FALSE, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 1, '{}', 3, $3, $3)",
                    )
                    .bind(id)
                    .bind(ORG)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    id
                }
            };
            for (c, chunk) in payloads.chunks(INSERT_ROWS).enumerate() {
                let mut q = sqlx::query(AssertSqlSafe(insert_sql(chunk.len(), $backend))).bind(ORG).bind(task).bind(now);
                for (r, (client_id, payload)) in chunk.iter().enumerate() {
                    let idx = (from + c * INSERT_ROWS + r) as i32;
                    q = q.bind(Uuid::now_v7()).bind(idx).bind(client_id.as_str()).bind(payload.as_str());
                }
                q.execute(&mut *tx).await?;
            }
            sqlx::query(
                "UPDATE bulk_tasks SET total = total + $1, pending = pending + $1, version = version + 1, \
                 updated_at = $2 WHERE id = $3",
            )
            .bind(n)
            .bind(now)
            .bind(task)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            task
        }};
    }
    Ok(match pool {
        Pool::Sqlite(p) => run!(p, Backend::Sqlite),
        Pool::Pg(p) => run!(p, Backend::Postgres),
    })
}

/// Seals a task (the last step of a chunked create).
pub async fn seal(pool: &Pool, task: Uuid) -> Res<()> {
    const SQL: &str =
        "UPDATE bulk_tasks SET sealed = TRUE, version = version + 1, updated_at = $1 WHERE id = $2";
    match pool {
        Pool::Sqlite(p) => {
            sqlx::query(SQL)
                .bind(now_ms())
                .bind(task)
                .execute(p)
                .await?;
        }
        Pool::Pg(p) => {
            sqlx::query(SQL)
                .bind(now_ms())
                .bind(task)
                .execute(p)
                .await?;
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct Data<'a> {
    data: BulkTasks<'a>,
}
#[derive(Serialize)]
struct BulkTasks<'a> {
    #[serde(rename = "bulkTasks")]
    bulk_tasks: Nodes<TaskOut<'a>>,
}
#[derive(Serialize)]
struct Nodes<T> {
    nodes: Vec<T>,
}
#[derive(Serialize)]
struct TaskOut<'a> {
    id: String,
    #[serde(rename = "type")]
    task_type: String,
    status: String,
    counters: CountersOut,
    items: Nodes<ItemOut<'a>>,
}
#[derive(Serialize)]
struct CountersOut {
    total: i64,
    finished: i64,
}
#[derive(Serialize)]
struct ItemOut<'a> {
    id: String,
    index: i64,
    status: &'a str,
}

const READ_TASKS: &str = "SELECT id, task_type, status, CAST(total AS BIGINT) AS total, \
     CAST(succeeded + failed + skipped + rejected + cancelled AS BIGINT) AS finished \
     FROM bulk_tasks WHERE organisation_id = $1 ORDER BY updated_at DESC, id DESC LIMIT $2";

fn read_items_sql(backend: Backend, tasks: usize) -> String {
    let filter = match backend {
        Backend::Postgres => "task_id = ANY($3)".to_owned(),
        Backend::Sqlite => {
            let marks: Vec<String> = (0..tasks).map(|i| format!("?{}", i + 3)).collect();
            format!("task_id IN ({})", marks.join(", "))
        }
    };
    let sql = format!(
        "SELECT task_id, id, CAST(idx AS BIGINT) AS idx, status FROM (SELECT task_id, id, idx, status, \
         ROW_NUMBER() OVER (PARTITION BY task_id ORDER BY idx, id) AS rn FROM task_items \
         WHERE organisation_id = $1 AND {filter}) AS ranked WHERE rn <= $2 ORDER BY task_id, rn"
    );
    // SQLite numbers `$N` parameters by first appearance; `?N` is explicit.
    if backend == Backend::Sqlite {
        sql.replace('$', "?")
    } else {
        sql
    }
}

/// The hand-written producer of
/// `bulkTasks(first) { nodes { id type status counters { total finished } items(first) { nodes { id index status } } } }`:
/// two statements (the task page, then every task's items by a window
/// function) and serde_json, in process.
pub async fn read_page(pool: &Pool, first: i64, items: i64) -> Res<Vec<u8>> {
    type TaskRow = (Uuid, String, String, i64, i64);
    type ItemRow = (Uuid, Uuid, i64, String);
    let (tasks, rows): (Vec<TaskRow>, Vec<ItemRow>) = match pool {
        Pool::Sqlite(p) => {
            let tasks: Vec<TaskRow> = sqlx::query_as(READ_TASKS)
                .bind(ORG)
                .bind(first)
                .fetch_all(p)
                .await?;
            let mut q = sqlx::query_as(AssertSqlSafe(read_items_sql(Backend::Sqlite, tasks.len())))
                .bind(ORG)
                .bind(items);
            for t in &tasks {
                q = q.bind(t.0);
            }
            let rows = if tasks.is_empty() {
                Vec::new()
            } else {
                q.fetch_all(p).await?
            };
            (tasks, rows)
        }
        Pool::Pg(p) => {
            let tasks: Vec<TaskRow> = sqlx::query_as(READ_TASKS)
                .bind(ORG)
                .bind(first)
                .fetch_all(p)
                .await?;
            let ids: Vec<Uuid> = tasks.iter().map(|t| t.0).collect();
            let rows = sqlx::query_as(AssertSqlSafe(read_items_sql(Backend::Postgres, 0)))
                .bind(ORG)
                .bind(items)
                .bind(ids)
                .fetch_all(p)
                .await?;
            (tasks, rows)
        }
    };
    let mut by_task: std::collections::HashMap<Uuid, Vec<ItemOut>> =
        std::collections::HashMap::with_capacity(tasks.len());
    for (task_id, id, idx, status) in &rows {
        by_task.entry(*task_id).or_default().push(ItemOut {
            id: global_id("TaskItem", *id),
            index: *idx,
            status: status.as_str(),
        });
    }
    let nodes = tasks
        .into_iter()
        .map(|(id, task_type, status, total, finished)| TaskOut {
            items: Nodes {
                nodes: by_task.remove(&id).unwrap_or_default(),
            },
            id: global_id("BulkTask", id),
            task_type,
            status,
            counters: CountersOut { total, finished },
        })
        .collect();
    Ok(serde_json::to_vec(&Data {
        data: BulkTasks {
            bulk_tasks: Nodes { nodes },
        },
    })?)
}
