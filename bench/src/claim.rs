//! `claim`: W ∈ {1, 4} workers, each run on a task of its own, each worker
//! looping claimTaskItems (limit 100, lease 60 s) → reportItemResults of
//! those items with their lease tokens (10 % FAILED, not retryable) until
//! nothing is left. Claims/s, items/s end to end, how 4 workers scale over
//! one, and checks: no item handed out twice, every item once, counters
//! consistent.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::client::{self, Gql};
use crate::raw;
use crate::scenarios::{REPORT, Rig, cpu};
use crate::stats::Samples;
use crate::{Env, Figures, Res};

const CLAIM: &str = "mutation($input: ClaimTaskItemsInput!) { claimTaskItems(input: $input) { items { leaseToken item { id index } } } }";

const WORKERS: [usize; 2] = [1, 4];
const LIMIT: usize = 100;

/// What one worker did.
#[derive(Default)]
struct Worker {
    claims: usize,
    empty_claims: usize,
    claim_lat: Samples,
    report_lat: Samples,
    indexes: Vec<u64>,
    tokens: Vec<String>,
    applied: u64,
}

pub async fn run(env: &Env, rig: &Rig, out: &mut Figures) -> Res<()> {
    let mut rates = Vec::new();
    for workers in WORKERS {
        rates.push(run_with(env, rig, workers, out).await?);
    }
    out.add("claim", "w4_over_w1_items_per_s", rates[1] / rates[0], "x");
    Ok(())
}

/// One run with `workers` workers on a fresh task; returns items/s end to end.
async fn run_with(env: &Env, rig: &Rig, workers: usize, out: &mut Figures) -> Res<f64> {
    let n = if env.full() { 20_000 } else { 10_000 };
    let budget = Duration::from_secs(if env.full() { 180 } else { 60 });
    let (task_id, task_uuid) = client::create_task(&rig.gql, "bench.claim", n).await?;
    rig.pool.analyze().await?;

    let mark = rig.sampler.mark();
    let t = Instant::now();
    let deadline = t + budget;
    let mut set = JoinSet::new();
    for w in 0..workers {
        let (gql, task_id) = (rig.gql.clone(), task_id.clone());
        set.spawn(async move { worker(&gql, &task_id, w, deadline).await });
    }
    let mut all = Worker::default();
    while let Some(r) = set.join_next().await {
        let w = r??;
        all.claims += w.claims;
        all.empty_claims += w.empty_claims;
        all.claim_lat.extend(w.claim_lat);
        all.report_lat.extend(w.report_lat);
        all.indexes.extend(w.indexes);
        all.tokens.extend(w.tokens);
        all.applied += w.applied;
    }
    let wall = t.elapsed().as_secs_f64();
    let usage = rig.sampler.since(mark);

    // Checks: each item handed out once, each lease token unique, every item reported.
    let handed = all.indexes.len();
    let distinct: HashSet<u64> = all.indexes.iter().copied().collect();
    let twice = handed - distinct.len();
    let tokens: HashSet<&String> = all.tokens.iter().collect();
    let tokens_ok = tokens.len() == all.tokens.len();
    let task = client::task_counters(&rig.gql, &task_id).await?;
    let c = &task["counters"];
    let get = |k: &str| c[k].as_i64().unwrap_or(-1);
    let failed = n.div_ceil(10) as i64;
    let mut counters_ok = get("total") == n as i64
        && get("pending") == 0
        && get("running") == 0
        && get("finished") == n as i64
        && get("failed") == failed
        && get("succeeded") == n as i64 - failed
        && task["status"] == json!("COMPLETED_WITH_FAILURES");
    let rows = rig.pool.item_counts(task_uuid).await?;
    for (status, count) in &rows {
        counters_ok &= get(&status.to_lowercase()) == *count;
    }

    let f = |name: &str| format!("w{workers}.{name}");
    out.add("claim", f("items"), n as f64, "items");
    out.add("claim", f("workers"), workers as f64, "workers");
    out.add("claim", f("seconds"), wall, "s");
    out.add("claim", f("claims"), all.claims as f64, "claims");
    out.add(
        "claim",
        f("claims_per_s"),
        all.claims as f64 / wall,
        "claims/s",
    );
    out.add(
        "claim",
        f("claimed_items_per_s"),
        handed as f64 / wall,
        "items/s",
    );
    let rate = all.applied as f64 / wall;
    out.add("claim", f("items_per_s_end_to_end"), rate, "items/s");
    out.add("claim", f("claim_p50"), all.claim_lat.p50(), "ms");
    out.add("claim", f("claim_p99"), all.claim_lat.p99(), "ms");
    out.add("claim", f("report_p50"), all.report_lat.p50(), "ms");
    out.add("claim", f("report_p99"), all.report_lat.p99(), "ms");
    out.add("claim", f("items_handed_out"), handed as f64, "items");
    out.add("claim", f("items_handed_out_twice"), twice as f64, "items");
    out.add("claim", f("items_applied"), all.applied as f64, "items");
    out.add(
        "claim",
        f("counters_ok"),
        f64::from(u8::from(counters_ok)),
        "bool",
    );
    cpu(out, "claim", &f("run"), &usage);

    let mut problems = Vec::new();
    if twice > 0 {
        problems.push(format!("{twice} items were handed out twice"));
    }
    if !tokens_ok {
        problems.push("a lease token was handed out twice".into());
    }
    if distinct.len() != n || all.applied != n as u64 {
        problems.push(format!(
            "{} distinct items handed out and {} applied, of {n}",
            distinct.len(),
            all.applied
        ));
    }
    if !counters_ok {
        problems.push(format!("counters {c}, rows {rows:?}"));
    }
    if problems.is_empty() {
        Ok(rate)
    } else {
        Err(problems.join("; ").into())
    }
}

/// Claims, reports what it claimed, until a claim comes back empty.
async fn worker(gql: &Gql, task_id: &str, w: usize, deadline: Instant) -> Res<Worker> {
    let mut me = Worker::default();
    let worker_id = format!("bench-{w}");
    while Instant::now() < deadline {
        let t = Instant::now();
        let data = gql
            .query(
                CLAIM,
                json!({ "input": { "taskId": task_id, "limit": LIMIT, "leaseSeconds": 60, "workerId": worker_id } }),
            )
            .await?;
        me.claim_lat.push(t.elapsed());
        let items = data["claimTaskItems"]["items"]
            .as_array()
            .ok_or_else(|| format!("a claim without items: {data}"))?;
        if items.is_empty() {
            me.empty_claims += 1;
            return Ok(me);
        }
        me.claims += 1;
        let mut results = Vec::with_capacity(items.len());
        for claimed in items {
            let index = claimed["item"]["index"].as_u64().ok_or("no index")?;
            let token = claimed["leaseToken"].as_str().ok_or("no lease token")?;
            let id = &claimed["item"]["id"];
            me.indexes.push(index);
            me.tokens.push(token.to_owned());
            results.push(if index % 10 == 0 {
                json!({ "itemId": id, "leaseToken": token, "outcome": "FAILED", "retryable": false,
                        "error": { "code": raw::ERROR_CODE, "message": raw::ERROR_MESSAGE } })
            } else {
                json!({ "itemId": id, "leaseToken": token, "outcome": "SUCCEEDED", "result": { "ok": true } })
            });
        }
        let t = Instant::now();
        let data = gql
            .query(
                REPORT,
                json!({ "input": { "taskId": task_id, "results": Value::Array(results) } }),
            )
            .await?;
        me.report_lat.push(t.elapsed());
        let r = &data["reportItemResults"];
        if r["problems"].as_array().is_some_and(|p| !p.is_empty()) {
            return Err(format!("report problems: {}", r["problems"]).into());
        }
        me.applied += r["applied"].as_u64().unwrap_or(0);
    }
    Err(format!("worker {w} ran out of time").into())
}
