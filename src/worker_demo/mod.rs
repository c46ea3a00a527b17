//! `bulkwatch worker-demo`: a small worker that speaks only the public
//! GraphQL API. It claims a batch of items under a lease, "works" on them
//! while a background task renews the lease, then reports every outcome in
//! one request.
//!
//! ```sh
//! bulkwatch worker-demo --task <TASK_ID>
//! bulkwatch worker-demo --type links.bulk_create --type export --batch 50 --fail-rate 0.2
//! ```
//!
//! It exits once three claims in a row found nothing to do. Failures it
//! invents are reported as retryable, so the server hands those items out
//! again until their attempts run out.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::io::Write;

use clap::{ArgGroup, Args as ClapArgs};

mod client;

use client::{CLAIM, Client, RENEW, REPORT_FIELDS};
use serde_json::{Value, json};

/// Claims, renews and reports bulkwatch task items through GraphQL.
#[derive(ClapArgs, Debug, Clone)]
#[command(group(ArgGroup::new("source").required(true).multiple(true).args(["task", "types"])))]
pub struct Args {
    /// GraphQL endpoint of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080/graphql")]
    url: String,
    /// Claim from this task only.
    #[arg(long)]
    task: Option<String>,
    /// Claim from unfinished tasks of this type, oldest first (repeatable).
    #[arg(long = "type", value_name = "TYPE")]
    types: Vec<String>,
    /// Items per claim (1 to 1000).
    #[arg(long, default_value_t = 100)]
    batch: u32,
    /// Lease length in seconds; the lease is renewed every third of it.
    #[arg(long, default_value_t = 30)]
    lease: u32,
    /// Share of items reported as a (retryable) failure, 0 to 1.
    #[arg(long, default_value_t = 0.1)]
    fail_rate: f64,
    /// Pretend work per item, in milliseconds.
    #[arg(long, default_value_t = 20)]
    work_ms: u64,
    /// Name shown on the claimed items (default: worker-<pid>).
    #[arg(long)]
    worker_id: Option<String>,
    /// API key, sent as `Authorization: Bearer <key>` when given.
    #[arg(long, env = "BULKWATCH_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Empty claims in a row after which the worker exits.
    #[arg(long, default_value_t = 3)]
    idle_tries: u32,
    /// Append `TASK_ID INDEX OUTCOME` for every result the server acknowledged.
    #[arg(long, value_name = "FILE")]
    ack_log: Option<std::path::PathBuf>,
}

/// A number in [0, 1) from the random bits of a fresh UUIDv4 (no extra crate needed).
fn random_unit() -> f64 {
    let bits = (uuid::Uuid::new_v4().as_u128() as u64) & ((1u64 << 62) - 1);
    (bits >> 9) as f64 / (1u64 << 53) as f64
}

struct Claimed {
    item_id: String,
    task_id: String,
    index: i64,
    payload: Value,
    token: String,
}

#[derive(Default)]
struct Totals {
    claimed: u64,
    succeeded: u64,
    failed: u64,
    lost: u64,
    problems: u64,
}

async fn claim(client: &Client, args: &Args, worker: &str) -> Result<Vec<Claimed>, String> {
    let mut input = json!({ "limit": args.batch, "leaseSeconds": args.lease, "workerId": worker });
    if let Some(task) = &args.task {
        input["taskId"] = json!(task);
    }
    if !args.types.is_empty() {
        input["types"] = json!(args.types);
    }
    let data = client.request(CLAIM, json!({ "input": input })).await?;
    let items = data["claimTaskItems"]["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Ok(items
        .into_iter()
        .map(|c| Claimed {
            item_id: c["item"]["id"].as_str().unwrap_or_default().to_owned(),
            task_id: c["item"]["task"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            index: c["item"]["index"].as_i64().unwrap_or(-1),
            payload: c["item"]["payload"].clone(),
            token: c["leaseToken"].as_str().unwrap_or_default().to_owned(),
        })
        .collect())
}

/// Renews `tokens` every `every` until aborted; tokens the server calls
/// expired land in `lost` so their results are not sent.
async fn keep_renewing(
    client: Client,
    tokens: Vec<String>,
    lease: u32,
    every: Duration,
    lost: Arc<Mutex<HashSet<String>>>,
) {
    let mut live = tokens;
    loop {
        tokio::time::sleep(every).await;
        if live.is_empty() {
            return;
        }
        let input = json!({ "leaseTokens": live, "leaseSeconds": lease });
        match client.request(RENEW, json!({ "input": input })).await {
            Ok(data) => {
                let expired: HashSet<String> = data["renewLeases"]["expired"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|t| t.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                if !expired.is_empty() {
                    eprintln!(
                        "{} lease(s) expired while working; dropping those items",
                        expired.len()
                    );
                    live.retain(|t| !expired.contains(t));
                    lost.lock().unwrap().extend(expired);
                }
            }
            Err(e) => eprintln!("renewing leases failed: {e}"),
        }
    }
}

/// The outcome this demo worker "computes" for one item.
fn outcome(item: &Claimed, args: &Args, worker: &str) -> Value {
    if random_unit() < args.fail_rate {
        json!({
            "itemId": item.item_id,
            "leaseToken": item.token,
            "outcome": "FAILED",
            "retryable": true,
            "error": { "code": "DEMO_FAILURE", "message": format!("{worker} pretended that item {} failed", item.index) },
        })
    } else {
        json!({
            "itemId": item.item_id,
            "leaseToken": item.token,
            "outcome": "SUCCEEDED",
            "result": { "worker": worker, "echo": item.payload },
        })
    }
}

/// Reports one batch: one `reportItemResults` field per task, all in one request.
async fn report(
    client: &Client,
    batch: &[Claimed],
    results: Vec<Value>,
    totals: &mut Totals,
    ack_log: Option<&std::path::Path>,
) -> Result<(), String> {
    let mut by_task: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut indexes: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (item, result) in batch.iter().zip(results) {
        if !result.is_null() {
            by_task
                .entry(item.task_id.as_str())
                .or_default()
                .push(result);
            indexes
                .entry(item.task_id.as_str())
                .or_default()
                .push(item.index);
        }
    }
    if by_task.is_empty() {
        return Ok(());
    }
    let mut params = Vec::new();
    let mut fields = Vec::new();
    let mut variables = serde_json::Map::new();
    for (i, (task, results)) in by_task.iter().enumerate() {
        params.push(format!("$r{i}: ReportItemResultsInput!"));
        fields.push(format!(
            "r{i}: reportItemResults(input: $r{i}) {{ {REPORT_FIELDS} }}"
        ));
        variables.insert(
            format!("r{i}"),
            json!({ "taskId": task, "results": results }),
        );
    }
    let query = format!("mutation({}) {{ {} }}", params.join(", "), fields.join(" "));
    let data = client.request(&query, Value::Object(variables)).await?;
    let mut acknowledged = String::new();
    for (i, (task, results)) in by_task.iter().enumerate() {
        let payload = &data[format!("r{i}")];
        let problems = payload["problems"].as_array().cloned().unwrap_or_default();
        totals.problems += problems.len() as u64;
        let refused: HashSet<i64> = problems
            .iter()
            .filter_map(|p| p["position"].as_i64())
            .collect();
        for (position, (result, index)) in results.iter().zip(&indexes[task]).enumerate() {
            if !refused.contains(&(position as i64)) {
                let outcome = result["outcome"].as_str().unwrap_or("?");
                acknowledged.push_str(&format!("{task} {index} {outcome}\n"));
            }
        }
        for p in problems.iter().take(3) {
            eprintln!(
                "  problem at {}: {} {}",
                p["position"],
                p["code"].as_str().unwrap_or(""),
                p["message"].as_str().unwrap_or("")
            );
        }
        let task = &payload["task"];
        let c = &task["counters"];
        println!(
            "  task {}: {} {:>5.1}%  finished {}/{}  (succeeded {}, failed {}, cancelled {}, running {}, pending {})",
            task["id"].as_str().unwrap_or("?"),
            task["status"].as_str().unwrap_or("?"),
            task["progress"].as_f64().unwrap_or(0.0) * 100.0,
            c["finished"],
            c["total"],
            c["succeeded"],
            c["failed"],
            c["cancelled"],
            c["running"],
            c["pending"],
        );
    }
    if let Some(path) = ack_log {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("ack log: {e}"))?;
        file.write_all(acknowledged.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| format!("ack log: {e}"))?;
    }
    Ok(())
}

/// Works until three claims in a row find nothing.
pub async fn run(args: Args) -> Result<(), String> {
    if !(1..=1000).contains(&args.batch)
        || args.lease == 0
        || !(0.0..=1.0).contains(&args.fail_rate)
    {
        return Err(
            "--batch must be 1..=1000, --lease at least 1, --fail-rate between 0 and 1".into(),
        );
    }
    let worker = args
        .worker_id
        .clone()
        .unwrap_or_else(|| format!("worker-{}", std::process::id()));
    let client = Client {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTP client"),
        url: args.url.clone(),
        api_key: args.api_key.clone().filter(|k| !k.is_empty()),
    };
    let renew_every =
        Duration::from_millis(u64::from(args.lease) * 1000 / 3).max(Duration::from_millis(300));
    let started = Instant::now();
    let mut totals = Totals::default();
    let mut idle = 0;
    println!("{worker}: claiming from {} at {}", source(&args), args.url);

    loop {
        let batch = claim(&client, &args, &worker)
            .await
            .map_err(|e| format!("{worker}: claim failed: {e}"))?;
        if batch.is_empty() {
            idle += 1;
            if idle >= args.idle_tries {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        idle = 0;
        totals.claimed += batch.len() as u64;

        let lost = Arc::new(Mutex::new(HashSet::new()));
        let tokens = batch.iter().map(|c| c.token.clone()).collect();
        let renewer = tokio::spawn(keep_renewing(
            client.clone(),
            tokens,
            args.lease,
            renew_every,
            lost.clone(),
        ));
        let mut results = Vec::with_capacity(batch.len());
        for item in &batch {
            tokio::time::sleep(Duration::from_millis(args.work_ms)).await;
            results.push(outcome(item, &args, &worker));
        }
        renewer.abort();
        let lost = lost.lock().unwrap().clone();
        for (item, result) in batch.iter().zip(results.iter_mut()) {
            if lost.contains(&item.token) {
                *result = Value::Null;
                totals.lost += 1;
            } else if result["outcome"] == json!("FAILED") {
                totals.failed += 1;
            } else {
                totals.succeeded += 1;
            }
        }
        println!(
            "{worker}: batch of {} done ({} claimed so far, {:.1} items/s)",
            batch.len(),
            totals.claimed,
            totals.claimed as f64 / started.elapsed().as_secs_f64()
        );
        report(
            &client,
            &batch,
            results,
            &mut totals,
            args.ack_log.as_deref(),
        )
        .await
        .map_err(|e| format!("{worker}: report failed: {e}"))?;
    }
    println!(
        "{worker}: nothing left after {} tries; claimed {}, succeeded {}, failed {} (retryable), lost leases {}, problems {} in {:.1}s",
        args.idle_tries,
        totals.claimed,
        totals.succeeded,
        totals.failed,
        totals.lost,
        totals.problems,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn source(args: &Args) -> String {
    let mut parts = Vec::new();
    if let Some(task) = &args.task {
        parts.push(format!("task {task}"));
    }
    if !args.types.is_empty() {
        parts.push(format!("types {}", args.types.join(", ")));
    }
    parts.join(" and ")
}
