//! Clients that keep working through faults, as production ones must: every
//! failed request is unacknowledged and sent again (reports are idempotent:
//! an identical repeat of a final outcome is a duplicate, not a conflict),
//! and every acknowledged outcome is recorded so a check can look for it
//! in the database afterwards.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;

use crate::Res;
use crate::client::task_uuid;

const CLAIM: &str = "mutation($input: ClaimTaskItemsInput!) { claimTaskItems(input: $input) { items { leaseToken item { index } } } }";
const REPORT: &str = "mutation($input: ReportItemResultsInput!) { reportItemResults(input: $input) { applied duplicates problems { position code message } } }";
const COUNTERS: &str = "query($id: ID!) { bulkTask(id: $id) { counters { finished } } }";
const CREATE: &str =
    "mutation($input: CreateBulkTaskInput!) { createBulkTask(input: $input) { task { id } } }";

/// What clients saw go wrong, by kind.
#[derive(Default)]
pub struct Tally {
    /// DATABASE_UNAVAILABLE in a GraphQL error of a 200 answer (a field error).
    pub db_unavailable: AtomicU64,
    /// DATABASE_UNAVAILABLE as the whole answer, HTTP 503.
    pub db_unavailable_503: AtomicU64,
    pub internal: AtomicU64,
    /// Any other error code, which none of these clients should provoke.
    pub unexpected: AtomicU64,
    /// The connection failed or broke: an instance died under the request.
    pub transport: AtomicU64,
    /// A 5xx without a GraphQL body: the balancer had no instance to offer.
    pub gateway: AtomicU64,
    pub first_bad: Mutex<Option<String>>,
}

impl Tally {
    fn bad(&self, counter: &AtomicU64, what: String) {
        counter.fetch_add(1, Ordering::Relaxed);
        self.first_bad.lock().expect("lock").get_or_insert(what);
    }

    pub fn db_unavailable_total(&self) -> u64 {
        self.db_unavailable.load(Ordering::Relaxed)
            + self.db_unavailable_503.load(Ordering::Relaxed)
    }
}

/// A GraphQL-over-HTTP client that classifies every failure into a `Tally`.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    pub base: String,
    authorization: String,
    pub tally: Arc<Tally>,
}

impl Api {
    pub fn new(base: &str, api_key: &str) -> Res<Api> {
        Ok(Api {
            // Long enough for an acquire timeout on the server (5 s) to answer first.
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()?,
            base: base.to_owned(),
            authorization: format!("Bearer {api_key}"),
            tally: Arc::default(),
        })
    }

    /// `data`, or None when the request failed in any way (already tallied).
    pub async fn call(&self, query: &str, variables: Value) -> Option<Value> {
        let sent = self
            .http
            .post(format!("{}/graphql", self.base))
            .header("authorization", &self.authorization)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(_) => {
                self.tally.transport.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        let status = response.status();
        let Ok(bytes) = response.bytes().await else {
            self.tally.transport.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let Ok(mut body) = serde_json::from_slice::<Value>(&bytes) else {
            if status.is_server_error() {
                self.tally.gateway.fetch_add(1, Ordering::Relaxed);
            } else {
                let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
                self.tally
                    .bad(&self.tally.unexpected, format!("HTTP {status}: {text}"));
            }
            return None;
        };
        let Some(errors) = body.get("errors").and_then(Value::as_array) else {
            return Some(body["data"].take());
        };
        for error in errors {
            match error["extensions"]["code"].as_str() {
                Some("DATABASE_UNAVAILABLE") if status.as_u16() == 503 => {
                    self.tally
                        .db_unavailable_503
                        .fetch_add(1, Ordering::Relaxed);
                }
                Some("DATABASE_UNAVAILABLE") => {
                    self.tally.db_unavailable.fetch_add(1, Ordering::Relaxed);
                }
                Some("INTERNAL") => self
                    .tally
                    .bad(&self.tally.internal, format!("HTTP {status}: {error}")),
                _ => self
                    .tally
                    .bad(&self.tally.unexpected, format!("HTTP {status}: {error}")),
            }
        }
        None
    }

    /// Sends until acknowledged or `deadline`.
    pub async fn until_ok(&self, query: &str, variables: Value, deadline: Instant) -> Res<Value> {
        loop {
            if let Some(data) = self.call(query, variables.clone()).await {
                return Ok(data);
            }
            if Instant::now() > deadline {
                return Err(format!("no answer before the deadline to {query}").into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The outcome every client reports for item `idx`: fixed per item, so a
/// repeat by anyone (a retry, a second claim) is an identical duplicate.
pub fn outcome_of(idx: i64) -> &'static str {
    if idx % 10 == 0 { "FAILED" } else { "SUCCEEDED" }
}

fn result_for(idx: i64) -> Value {
    if outcome_of(idx) == "FAILED" {
        json!({ "outcome": "FAILED", "retryable": false,
                "error": { "code": "E_CHAOS", "message": "simulated failure" } })
    } else {
        json!({ "outcome": "SUCCEEDED", "result": { "ok": true } })
    }
}

/// Every acknowledged outcome, and what the answers said.
#[derive(Default)]
pub struct Acks {
    /// (task, item index, outcome) the server acknowledged.
    pub items: Mutex<Vec<(Uuid, i64, &'static str)>>,
    /// Sum of `applied` over acknowledged reports of the claimed task.
    pub applied: AtomicU64,
    pub duplicates: AtomicU64,
    /// Results refused because the lease had expired and moved on.
    pub lease_lost: AtomicU64,
    /// Any other problem: a conflicting outcome for a final item, which
    /// fixed outcomes make impossible unless something double-applied.
    pub conflicts: AtomicU64,
    pub first_conflict: Mutex<Option<String>>,
    /// Items acknowledged of the claimed task, for pacing faults by progress.
    pub progress: AtomicU64,
}

pub struct Work {
    pub api: Api,
    pub task_id: String,
    pub n: u64,
    pub acks: Arc<Acks>,
    pub deadline: Instant,
    /// Pause after each report, so the faults land while work flows.
    pub pace: Duration,
}

/// One worker: claims (short leases, so items of a claim whose answer was
/// lost come back soon), reports until acknowledged, and stops when the
/// task has every item final.
pub async fn worker(work: Arc<Work>, w: usize) -> Res<()> {
    let task = task_uuid(&work.task_id)?;
    let input = json!({ "input": { "taskId": work.task_id, "limit": 50, "leaseSeconds": 10, "workerId": format!("chaos-{w}") } });
    loop {
        if Instant::now() > work.deadline {
            return Err(format!("worker {w} ran out of time").into());
        }
        let Some(data) = work.api.call(CLAIM, input.clone()).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let claimed = data["claimTaskItems"]["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if claimed.is_empty() {
            let done = work
                .api
                .call(COUNTERS, json!({ "id": work.task_id }))
                .await
                .and_then(|d| d["bulkTask"]["counters"]["finished"].as_u64());
            if done == Some(work.n) {
                return Ok(());
            }
            // Items of lost claims wait for their leases to run out.
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        }
        let mut results = Vec::with_capacity(claimed.len());
        let mut indexes = Vec::with_capacity(claimed.len());
        for c in &claimed {
            let idx = c["item"]["index"]
                .as_i64()
                .ok_or("a claim without an index")?;
            let mut r = result_for(idx);
            r["index"] = json!(idx);
            r["leaseToken"] = c["leaseToken"].clone();
            results.push(r);
            indexes.push(idx);
        }
        let vars = json!({ "input": { "taskId": work.task_id, "results": results } });
        let data = work.api.until_ok(REPORT, vars, work.deadline).await?;
        record(&work.acks, task, &indexes, &data["reportItemResults"], true);
        tokio::time::sleep(work.pace).await;
    }
}

/// Records the acknowledged positions of a report answer.
fn record(acks: &Acks, task: Uuid, indexes: &[i64], answer: &Value, claimed: bool) {
    let mut refused = vec![false; indexes.len()];
    for p in answer["problems"].as_array().into_iter().flatten() {
        let Some(pos) = p["position"].as_u64().map(|p| p as usize) else {
            continue;
        };
        if let Some(r) = refused.get_mut(pos) {
            *r = true;
        }
        if p["code"] == "LEASE_MISMATCH" {
            acks.lease_lost.fetch_add(1, Ordering::Relaxed);
        } else {
            acks.conflicts.fetch_add(1, Ordering::Relaxed);
            let what = format!("item {}: {p}", indexes.get(pos).copied().unwrap_or(-1));
            acks.first_conflict
                .lock()
                .expect("lock")
                .get_or_insert(what);
        }
    }
    let mut items = acks.items.lock().expect("lock");
    let mut acked = 0;
    for (idx, refused) in indexes.iter().zip(refused) {
        if !refused {
            items.push((task, *idx, outcome_of(*idx)));
            acked += 1;
        }
    }
    if claimed {
        let applied = answer["applied"].as_u64().unwrap_or(0);
        acks.applied.fetch_add(applied, Ordering::Relaxed);
        acks.progress.fetch_add(acked, Ordering::Relaxed);
    }
    acks.duplicates.fetch_add(
        answer["duplicates"].as_u64().unwrap_or(0),
        Ordering::Relaxed,
    );
}

/// What the producer made and finished.
#[derive(Default)]
pub struct Produced {
    /// Global ids of the tasks it created and finished (every report acknowledged).
    pub finished: Mutex<Vec<String>>,
    pub created: AtomicU64,
}

/// A producer: creates small tasks (an idempotency key makes the retry of a
/// create whose answer was lost return the same task) and finishes each by
/// reporting its items, until `stop`.
pub async fn producer(
    api: Api,
    acks: Arc<Acks>,
    out: Arc<Produced>,
    stop: Arc<AtomicBool>,
    deadline: Instant,
) -> Res<()> {
    const ITEMS: i64 = 3;
    let run = Uuid::now_v7().simple().to_string();
    let mut k = 0;
    while !stop.load(Ordering::Relaxed) {
        let items: Vec<Value> = (0..ITEMS)
            .map(|i| json!({ "clientItemId": format!("p{i}") }))
            .collect();
        let input = json!({ "input": { "type": "chaos.producer", "idempotencyKey": format!("{run}-{k}"), "items": items } });
        let data = api.until_ok(CREATE, input, deadline).await?;
        let id = data["createBulkTask"]["task"]["id"]
            .as_str()
            .ok_or("a created task without an id")?
            .to_owned();
        out.created.fetch_add(1, Ordering::Relaxed);
        let results: Vec<Value> = (0..ITEMS)
            .map(|i| {
                let mut r = result_for(i);
                r["index"] = json!(i);
                r
            })
            .collect();
        let vars = json!({ "input": { "taskId": id, "results": results } });
        let answer = api.until_ok(REPORT, vars, deadline).await?;
        let indexes: Vec<i64> = (0..ITEMS).collect();
        record(
            &acks,
            task_uuid(&id)?,
            &indexes,
            &answer["reportItemResults"],
            false,
        );
        out.finished.lock().expect("lock").push(id);
        k += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}
