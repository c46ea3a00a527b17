//! `poll`: the request clients send most, one task's status every few
//! seconds, from 16 connections at once. The baseline in the same run is a
//! minimal hand-written HTTP handler (axum + sqlx, no GraphQL, no ORM, no key
//! check) doing the same single-row read and writing the same JSON: the
//! ceiling of the server's stack on this machine.

use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use bytes::Bytes;
use sea_orm::sqlx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::client::{self, Gql, global_id};
use crate::raw::{ORG, Pool};
use crate::scenarios::{Rig, cpu};
use crate::stats;
use crate::{Env, Figures, Res};

const POLL: &str = "query($id: ID!) { bulkTask(id: $id) { id status counters { total pending running succeeded failed } updatedAt } }";
const CONNECTIONS: usize = 16;
const READ_TASK: &str = "SELECT id, status, CAST(total AS BIGINT), CAST(pending AS BIGINT), \
     CAST(running AS BIGINT), CAST(succeeded AS BIGINT), CAST(failed AS BIGINT), updated_at \
     FROM bulk_tasks WHERE id = $1 AND organisation_id = $2";

type TaskRow = (Uuid, String, i64, i64, i64, i64, i64, i64);

#[derive(Deserialize)]
struct Request {
    variables: Variables,
}

#[derive(Deserialize)]
struct Variables {
    id: String,
}

#[derive(Serialize)]
struct Out {
    data: Data,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    bulk_task: Option<TaskOut>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TaskOut {
    id: String,
    status: String,
    counters: Counters,
    updated_at: String,
}

#[derive(Serialize)]
struct Counters {
    total: i64,
    pending: i64,
    running: i64,
    succeeded: i64,
    failed: i64,
}

/// The hand-written handler: decode the id, one prepared read, serde_json.
async fn handle(State(pool): State<Pool>, body: Bytes) -> axum::response::Response {
    match answer(&pool, &body).await {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => (axum::http::StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

async fn answer(pool: &Pool, body: &[u8]) -> Res<Vec<u8>> {
    let request: Request = serde_json::from_slice(body)?;
    let id = client::task_uuid(&request.variables.id)?;
    let row: Option<TaskRow> = match pool {
        Pool::Sqlite(p) => {
            sqlx::query_as(READ_TASK)
                .bind(id)
                .bind(ORG)
                .fetch_optional(p)
                .await?
        }
        Pool::Pg(p) => {
            sqlx::query_as(READ_TASK)
                .bind(id)
                .bind(ORG)
                .fetch_optional(p)
                .await?
        }
    };
    let bulk_task = row.map(
        |(id, status, total, pending, running, succeeded, failed, updated_at)| TaskOut {
            id: global_id("BulkTask", id),
            status,
            counters: Counters {
                total,
                pending,
                running,
                succeeded,
                failed,
            },
            updated_at: chrono::DateTime::from_timestamp_millis(updated_at)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        },
    );
    Ok(serde_json::to_vec(&Out {
        data: Data { bulk_task },
    })?)
}

/// Serves the baseline on a free port of this process; its base URL.
async fn serve_baseline(pool: Pool) -> Res<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
    let router = axum::Router::new()
        .route("/graphql", axum::routing::post(handle))
        .with_state(pool);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(base)
}

pub async fn run(env: &Env, rig: &Rig, out: &mut Figures) -> Res<()> {
    let secs = if env.full() { 10.0 } else { 3.0 };
    let (id, _) = client::create_task(&rig.gql, "bench.poll", 100).await?;
    let results: Vec<Value> = (0..10)
        .map(|i| json!({ "index": i, "outcome": "SUCCEEDED" }))
        .collect();
    rig.gql
        .query(
            crate::scenarios::REPORT,
            json!({ "input": { "taskId": id, "results": results } }),
        )
        .await?;
    let body = Gql::body(POLL, json!({ "id": id }));
    let baseline = Gql::new(&serve_baseline(rig.pool.clone()).await?, None);

    // The same JSON from both, before timing anything.
    let served: Value = serde_json::from_slice(&rig.gql.post_raw(body.clone()).await?)?;
    let produced: Value = serde_json::from_slice(&baseline.post_raw(body.clone()).await?)?;
    if served != produced {
        return Err(format!("the baseline differs from the server:\n{served}\n{produced}").into());
    }

    // Statements per warm poll, read off the server's own counter.
    let before = rig.gql.sql_statements().await?;
    for _ in 0..100 {
        rig.gql.post_raw(body.clone()).await?;
    }
    let per_poll = (rig.gql.sql_statements().await? - before) as f64 / 100.0;
    out.add("poll", "sql_statements_per_poll", per_poll, "statements");

    let load = |gql: Gql| {
        let body = body.clone();
        move || {
            let (gql, body) = (gql.clone(), body.clone());
            async move {
                std::hint::black_box(gql.post_raw(body).await?);
                Ok(())
            }
        }
    };
    let duration = Duration::from_secs_f64(secs);
    // Warm both, then measure each in turn.
    stats::closed_loop(CONNECTIONS, Duration::from_secs(1), load(rig.gql.clone())).await?;
    stats::closed_loop(CONNECTIONS, Duration::from_secs(1), load(baseline.clone())).await?;
    let mark = rig.sampler.mark();
    let mut server = stats::closed_loop(CONNECTIONS, duration, load(rig.gql.clone())).await?;
    let usage = rig.sampler.since(mark);
    let mut raw = stats::closed_loop(CONNECTIONS, duration, load(baseline)).await?;

    out.add("poll", "server.req_per_s", server.per_second(), "req/s");
    out.add("poll", "server.p50", server.latency.p50(), "ms");
    out.add("poll", "server.p99", server.latency.p99(), "ms");
    out.add("poll", "server.errors", server.errors as f64, "requests");
    cpu(out, "poll", "server", &usage);
    out.add("poll", "baseline.req_per_s", raw.per_second(), "req/s");
    out.add("poll", "baseline.p50", raw.latency.p50(), "ms");
    out.add("poll", "baseline.p99", raw.latency.p99(), "ms");
    out.add(
        "poll",
        "ratio_to_baseline",
        server.per_second() / raw.per_second(),
        "x",
    );
    Ok(())
}
