//! Parallel writers on one task, on PostgreSQL: claims, reports, retries,
//! pauses and cancels from eight clients at once must never deadlock, never
//! fail inside the server, and leave counters equal to the item rows.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{TestApp, require_postgres, spawn_app_with};
use crate::ops::{CANCEL, CLAIM, PAUSE, REPORT, RESUME, RETRY, id_of, numbered_items};

const CLIENTS: u64 = 8;
const RUN: Duration = Duration::from_secs(30);
const ITEMS: usize = 5_000;
/// A task is cancelled at the earliest this long after it was created, so
/// that each task sees every kind of change before it stops.
const ROUND: Duration = Duration::from_secs(4);

/// A small deterministic generator: the seed is printed, so a failing mix
/// can be replayed with `BULKWATCH_TEST_SEED`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A lease a client holds.
#[derive(Clone)]
struct Lease {
    task: String,
    item: Value,
    token: String,
}

/// What the clients share: the task they work on now, every task so far,
/// and what went wrong.
#[derive(Default)]
struct Shared {
    tasks: Vec<(String, Instant)>,
    unexpected: Vec<String>,
    /// Versions the applied reports returned, per task.
    versions: HashMap<String, Vec<i64>>,
    /// Requests that went through, by kind.
    done: std::collections::BTreeMap<&'static str, u64>,
}

/// Sends `query`; returns its data, or None after recording an error that
/// the mix can cause (INVALID_STATE: pausing a stopping task, retrying a
/// cancelled one). Any other error is recorded as unexpected.
async fn send(
    app: &TestApp,
    shared: &Mutex<Shared>,
    kind: &'static str,
    query: &str,
    variables: Value,
) -> Option<Value> {
    let body = app.post(query, variables).await;
    let Some(errors) = body.get("errors") else {
        *shared.lock().unwrap().done.entry(kind).or_default() += 1;
        return Some(body["data"].clone());
    };
    let code = errors[0]["extensions"]["code"].as_str().unwrap_or("");
    if code != "INVALID_STATE" {
        shared.lock().unwrap().unexpected.push(errors.to_string());
    }
    None
}

fn outcome(rng: &mut Rng, lease: &Lease) -> Value {
    let mut r = json!({ "itemId": lease.item, "leaseToken": lease.token });
    match rng.below(20) {
        0..=13 => r["outcome"] = json!("SUCCEEDED"),
        14..=17 => {
            r["outcome"] = json!("FAILED");
            r["retryable"] = json!(true);
            r["error"] = json!({ "code": "FLAKY", "message": "try again" });
        }
        18 => {
            r["outcome"] = json!("FAILED");
            r["error"] = json!({ "code": "BROKEN", "message": "no" });
        }
        _ => r["outcome"] = json!("SKIPPED"),
    }
    r
}

async fn new_task(app: &TestApp) -> String {
    let payload = app
        .create(json!({ "type": "t.contention", "maxAttempts": 3, "items": numbered_items(ITEMS) }))
        .await;
    id_of(&payload["task"])
}

/// One client's random mix until the run ends; returns the leases it
/// holds, on the open task and on those cancelled before.
async fn client(app: &TestApp, shared: &Mutex<Shared>, seed: u64, until: Instant) -> Vec<Lease> {
    let mut rng = Rng(seed);
    let (mut held, mut earlier): (Vec<Lease>, Vec<Lease>) = (Vec::new(), Vec::new());
    let mut sent: Vec<Value> = Vec::new();
    while Instant::now() < until {
        let (task, since) = shared.lock().unwrap().tasks.last().cloned().unwrap();
        let (now, before): (Vec<Lease>, Vec<Lease>) =
            held.into_iter().partition(|l| l.task == task);
        held = now;
        earlier.extend(before);
        match rng.below(100) {
            0..=34 => {
                // A few claims take short leases and are forgotten: the
                // reaper takes those items back meanwhile.
                let forget = rng.below(10) == 0;
                let lease = if forget { 1 } else { 60 };
                let input = json!({ "taskId": task, "limit": 1 + rng.below(25), "leaseSeconds": lease, "workerId": format!("c{seed}") });
                if let Some(data) =
                    send(app, shared, "claim", CLAIM, json!({ "input": input })).await
                    && !forget
                {
                    for c in data["claimTaskItems"]["items"].as_array().unwrap() {
                        held.push(Lease {
                            task: task.clone(),
                            item: c["item"]["id"].clone(),
                            token: c["leaseToken"].as_str().unwrap().to_owned(),
                        });
                    }
                }
            }
            35..=79 => {
                let take = (1 + rng.below(40) as usize).min(held.len());
                let mut results: Vec<Value> =
                    held.drain(..take).map(|l| outcome(&mut rng, &l)).collect();
                // Now and then a result sent before comes again: a
                // duplicate, or a conflict with what the item now is.
                if !sent.is_empty() && rng.below(5) == 0 {
                    results.push(sent[rng.below(sent.len() as u64) as usize].clone());
                }
                // And a result without a lease for some position.
                if rng.below(5) == 0 {
                    results
                        .push(json!({ "index": rng.below(ITEMS as u64), "outcome": "SUCCEEDED" }));
                }
                sent.extend(results.iter().take(take).cloned());
                if results.is_empty() {
                    continue;
                }
                let input = json!({ "taskId": task, "results": results });
                if let Some(data) =
                    send(app, shared, "report", REPORT, json!({ "input": input })).await
                {
                    let r = &data["reportItemResults"];
                    if r["applied"].as_i64().unwrap() > 0 {
                        let version = r["task"]["version"].as_i64().unwrap();
                        shared
                            .lock()
                            .unwrap()
                            .versions
                            .entry(task.clone())
                            .or_default()
                            .push(version);
                    }
                }
            }
            80..=87 => {
                let input = json!({ "taskId": task });
                send(app, shared, "retry", RETRY, json!({ "input": input })).await;
            }
            88..=92 => {
                send(app, shared, "pause", PAUSE, json!({ "id": task })).await;
            }
            93..=97 => {
                send(app, shared, "resume", RESUME, json!({ "id": task })).await;
            }
            _ if since.elapsed() < ROUND => {}
            _ => {
                send(app, shared, "cancel", CANCEL, json!({ "id": task })).await;
                let next = new_task(app).await;
                let mut s = shared.lock().unwrap();
                if s.tasks.last().is_some_and(|(t, _)| *t == task) {
                    s.tasks.push((next, Instant::now()));
                }
            }
        }
    }
    held.extend(earlier);
    held
}

/// Reports what is still held, then works the open task to its end and
/// waits until no item of any task runs.
async fn finish(app: &TestApp, shared: &Mutex<Shared>, held: Vec<Lease>) {
    let tasks: Vec<String> = shared
        .lock()
        .unwrap()
        .tasks
        .iter()
        .map(|(t, _)| t.clone())
        .collect();
    for task in &tasks {
        let results: Vec<Value> = held
            .iter()
            .filter(|l| &l.task == task)
            .map(|l| json!({ "itemId": l.item, "leaseToken": l.token, "outcome": "SUCCEEDED" }))
            .collect();
        if !results.is_empty() {
            let input = json!({ "taskId": task, "results": results });
            send(app, shared, "report", REPORT, json!({ "input": input })).await;
        }
        send(app, shared, "resume", RESUME, json!({ "id": task })).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for task in &tasks {
        loop {
            assert!(Instant::now() < deadline, "task {task} never settled");
            let claimed = app.claim_task(task, 200, 60, "finisher").await;
            if claimed.is_empty() {
                let t = app.task(task).await;
                let stopped = t["cancelRequested"] == true || t["counters"]["pending"] == 0;
                if t["counters"]["running"] == 0 && stopped {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            let results: Vec<Value> = claimed
                .iter()
                .map(|c| json!({ "itemId": c["item"]["id"], "leaseToken": c["leaseToken"], "outcome": "SUCCEEDED" }))
                .collect();
            app.report_all(task, json!(results)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL"]
async fn eight_clients_mixing_every_change_on_one_task_never_deadlock() {
    require_postgres();
    let app = spawn_app_with(|c| {
        c.reaper_interval_ms = 200;
        c.db_connections = 12;
    })
    .await;
    let seed = std::env::var("BULKWATCH_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| (std::process::id() as u64 * 0x9E37_79B9) | 1);
    eprintln!("seed {seed}");
    let shared = Arc::new(Mutex::new(Shared::default()));
    let first = new_task(&app).await;
    shared.lock().unwrap().tasks.push((first, Instant::now()));

    let until = Instant::now() + RUN;
    let clients = (0..CLIENTS).map(|c| {
        let (app, shared) = (&app, &shared);
        async move { client(app, shared, seed.wrapping_add(c * 7919), until).await }
    });
    let held: Vec<Lease> = futures_util::future::join_all(clients)
        .await
        .into_iter()
        .flatten()
        .collect();
    finish(&app, &shared, held).await;

    let tasks: Vec<String> = {
        let shared = shared.lock().unwrap();
        assert_eq!(shared.unexpected, Vec::<String>::new(), "seed {seed}");
        for (task, versions) in &shared.versions {
            let distinct: HashSet<&i64> = versions.iter().collect();
            assert_eq!(
                distinct.len(),
                versions.len(),
                "two changes of {task} share a version"
            );
        }
        let done: Vec<String> = shared
            .done
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        eprintln!("{} tasks; {}", shared.tasks.len(), done.join(", "));
        shared.tasks.iter().map(|(t, _)| t.clone()).collect()
    };
    for (n, task) in tasks.iter().enumerate() {
        app.assert_counters_consistent(task).await;
        let t = app.task(task).await;
        let status = t["status"].as_str().unwrap();
        // A task may finish before anyone cancels it.
        let expected: &[&str] = if n + 1 < tasks.len() {
            &["CANCELLED", "COMPLETED", "COMPLETED_WITH_FAILURES"]
        } else {
            &["COMPLETED", "COMPLETED_WITH_FAILURES"]
        };
        assert!(expected.contains(&status), "task {n} ended {status}: {t:#}");
        // A cancel leaves nothing to hand out, whatever raced with it.
        if t["cancelRequested"] == true {
            assert_eq!(t["counters"]["pending"], 0, "task {n}: {t:#}");
        }
    }
}
