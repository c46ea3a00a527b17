//! `webhooks`: tasks of one item each are created, then finished by 16
//! concurrent reporters; each finish is a TASK_FINISHED webhook to a
//! receiver in this process. Deliveries/s (from the first finish to the
//! last receipt) and commit-to-receipt latency (receipt time minus the
//! commit time the message carries). Checks: every task delivered once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::client::Gql;
use crate::procfs::Sampler;
use crate::server::{FreshDb, Server};
use crate::stats::Samples;
use crate::{Env, Figures, Res};

const REPORTERS: usize = 16;

type Log = Arc<Mutex<Vec<(String, String, i64)>>>;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Records the `webhook-id`, the task id and the receipt time; answers 204.
async fn receive(
    State(log): State<Log>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> axum::http::StatusCode {
    let at = now_ms();
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let task = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| {
            Some(format!(
                "{}|{}",
                v["data"]["id"].as_str()?,
                v["data"]["updatedAt"].as_str()?
            ))
        })
        .unwrap_or_default();
    log.lock().unwrap().push((id, task, at));
    axum::http::StatusCode::NO_CONTENT
}

pub async fn run(env: &Env, out: &mut Figures) -> Res<()> {
    let n = if env.full() { 10_000 } else { 2_000 };
    let db = FreshDb::new(env.backend).await?;
    let server = Server::start(
        &env.binary,
        &db,
        &[("BULKWATCH_WEBHOOK_ALLOW_PRIVATE", "true")],
    )
    .await?;
    let sampler = Sampler::start(server.pid());
    let gql = Gql::new(&server.base, server.api_key.as_deref());

    let log: Log = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://127.0.0.1:{}/hook", listener.local_addr()?.port());
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(log.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    gql.query(
        "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { secret } }",
        json!({ "input": { "url": url, "events": ["TASK_FINISHED"] } }),
    )
    .await?;

    eprintln!("  creating {n} one-item tasks");
    let mut ids = Vec::with_capacity(n);
    let mut set = JoinSet::new();
    for r in 0..REPORTERS {
        let gql = gql.clone();
        set.spawn(async move {
            let mut ids = Vec::new();
            for i in (r..n).step_by(REPORTERS) {
                let data = gql
                    .query(
                        "mutation($input: CreateBulkTaskInput!) { createBulkTask(input: $input) { task { id } } }",
                        json!({ "input": { "type": "bench.hooks", "items": [{ "clientItemId": format!("c{i}") }] } }),
                    )
                    .await?;
                ids.push(data["createBulkTask"]["task"]["id"].as_str().unwrap_or_default().to_owned());
            }
            Res::Ok(ids)
        });
    }
    while let Some(r) = set.join_next().await {
        ids.extend(r??);
    }

    eprintln!("  finishing them");
    let mark = sampler.mark();
    let started = Instant::now();
    let start_ms = now_ms();
    let ids = Arc::new(ids);
    for r in 0..REPORTERS {
        let (gql, ids) = (gql.clone(), ids.clone());
        set.spawn(async move {
            for i in (r..ids.len()).step_by(REPORTERS) {
                gql.query(
                    "mutation($input: ReportItemResultsInput!) { reportItemResults(input: $input) { applied } }",
                    json!({ "input": { "taskId": ids[i], "results": [{ "index": 0, "outcome": "SUCCEEDED" }] } }),
                )
                .await?;
            }
            Res::Ok(Vec::new())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    let reported = started.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(300);
    while log.lock().unwrap().len() < n {
        if Instant::now() > deadline {
            return Err(
                format!("only {} of {n} webhooks arrived", log.lock().unwrap().len()).into(),
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let usage = sampler.since(mark);
    let log = log.lock().unwrap().clone();
    let last = log.iter().map(|(_, _, at)| *at).max().unwrap_or(start_ms);
    let wall = (last - start_ms) as f64 / 1000.0;

    let mut latency = Samples::default();
    for (_, task, at) in &log {
        let committed = task
            .split_once('|')
            .and_then(|(_, t)| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis())
            .ok_or("a webhook without the task's updatedAt")?;
        latency.push(Duration::from_millis((at - committed).max(0) as u64));
    }
    let messages: HashSet<&String> = log.iter().map(|(id, _, _)| id).collect();
    let tasks: HashSet<&str> = log
        .iter()
        .filter_map(|(_, t, _)| t.split_once('|').map(|(id, _)| id))
        .collect();
    let expected: HashSet<&str> = ids.iter().map(String::as_str).collect();
    if messages.len() != n || tasks != expected {
        return Err(format!(
            "{} messages for {} tasks; expected one for each of {n}",
            messages.len(),
            tasks.len()
        )
        .into());
    }
    out.add("webhooks", "finishes", n as f64, "tasks");
    out.add(
        "webhooks",
        "finish_reports_per_s",
        n as f64 / reported,
        "/s",
    );
    out.add("webhooks", "deliveries_per_s", n as f64 / wall, "/s");
    out.add("webhooks", "commit_to_receipt_p50", latency.p50(), "ms");
    out.add("webhooks", "commit_to_receipt_p99", latency.p99(), "ms");
    out.add(
        "webhooks",
        "duplicates",
        (log.len() - messages.len()) as f64,
        "deliveries",
    );
    crate::scenarios::cpu(out, "webhooks", "finish", &usage);
    out.add(
        "webhooks",
        "server_peak_rss",
        sampler.hwm_kib() as f64 / 1024.0,
        "MiB",
    );
    drop(server);
    Ok(())
}
