//! `bulkwatch worker-demo`: a small worker that speaks only the public
//! GraphQL API. It claims a batch of items under a lease, "works" on them
//! while a background task renews the lease, then reports every outcome in
//! one request.
//!
//! ```sh
//! bulkwatch worker-demo --create 2000          # makes a task of 2,000 items, then works on it
//! bulkwatch worker-demo --task <TASK_ID>
//! bulkwatch worker-demo --type links.bulk_create --type export --batch 50 --fail-rate 0.2
//! ```
//!
//! It exits once nothing is left: no item to claim and none leased to
//! another worker (those come back when that worker dies), or nothing has
//! changed for `--wait-seconds`. Failures it invents are reported as
//! retryable, so the server hands those items out again until their
//! attempts run out.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{ArgGroup, Args as ClapArgs};

mod client;
mod outstanding;
mod report;

use report::report;

use client::{CLAIM, Client, RENEW};
use serde_json::{Value, json};

/// Claims, renews and reports bulkwatch task items through GraphQL.
#[derive(ClapArgs, Debug, Clone)]
#[command(group(ArgGroup::new("source").required(true).multiple(true).args(["task", "types", "create"])))]
pub struct Args {
    /// GraphQL endpoint of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080/graphql")]
    url: String,
    /// Claim from this task only.
    #[arg(long, conflicts_with = "create")]
    task: Option<String>,
    /// Create a task of this many demo items first (of the first --type, or
    /// `demo.items`), print its id, then work on it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=200_000))]
    create: Option<u32>,
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
    /// Empty claims in a row, with nothing leased to other workers either,
    /// after which the worker exits.
    #[arg(long, default_value_t = 3)]
    idle_tries: u32,
    /// How long to wait, with nothing to claim, for items leased to other
    /// workers to finish or come back (a stopped worker's lease runs out).
    #[arg(long, default_value_t = 300)]
    wait_seconds: u64,
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

/// Works until nothing is left to claim or to wait for.
pub async fn run(mut args: Args) -> Result<(), String> {
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
    if let Some(n) = args.create {
        let task_type = args
            .types
            .first()
            .cloned()
            .unwrap_or_else(|| "demo.items".into());
        let id = outstanding::create_task(&client, &task_type, n)
            .await
            .map_err(|e| format!("{worker}: creating the demo task failed: {e}"))?;
        println!("{worker}: created task {id} with {n} items of type {task_type}");
        println!(
            "  watch it in GraphiQL:  subscription {{ bulkTaskUpdated(id: \"{id}\") {{ status progress counters {{ pending running succeeded failed }} }} }}"
        );
        // The same pace as this one, and the same server.
        println!(
            "  a second worker:       bulkwatch worker-demo --task {id} --batch {} --work-ms {} --fail-rate {} --url {}",
            args.batch, args.work_ms, args.fail_rate, args.url
        );
        args.task = Some(id);
        args.types.clear();
    }
    let renew_every =
        Duration::from_millis(u64::from(args.lease) * 1000 / 3).max(Duration::from_millis(300));
    let started = Instant::now();
    let mut totals = Totals::default();
    let mut idle = 0;
    let mut waiting: Option<(Instant, (i64, i64))> = None;
    println!("{worker}: claiming from {} at {}", source(&args), args.url);

    loop {
        let batch = claim(&client, &args, &worker)
            .await
            .map_err(|e| format!("{worker}: claim failed: {e}"))?;
        if batch.is_empty() {
            let left = outstanding::outstanding(&client, args.task.as_deref(), &args.types)
                .await
                .map_err(|e| format!("{worker}: reading the task failed: {e}"))?;
            if left == (0, 0) {
                idle += 1;
                if idle >= args.idle_tries {
                    break;
                }
            } else {
                // Others hold leases (or items wait for their time): keep
                // watching while they change, up to --wait-seconds of stillness.
                let since = match waiting {
                    Some((at, seen)) if seen == left => at,
                    _ => {
                        println!(
                            "{worker}: nothing to claim; {} pending, {} leased to other workers; waiting",
                            left.0, left.1
                        );
                        Instant::now()
                    }
                };
                if since.elapsed() > Duration::from_secs(args.wait_seconds) {
                    println!("{worker}: no change for {}s; giving up", args.wait_seconds);
                    break;
                }
                waiting = Some((since, left));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        idle = 0;
        waiting = None;
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
        "{worker}: done; claimed {}, succeeded {}, failed {} (retryable), lost leases {}, problems {} in {:.1}s",
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
