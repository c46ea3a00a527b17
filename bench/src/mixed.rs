//! `mixed`: the load a deployment lives under, held for 10 minutes (30 s in the
//! quick profile): 4 workers claiming and reporting, 200 pollers at 1 req/s
//! each, 1,000 `bulkTaskUpdated` subscribers, 5 dashboard readers paging
//! `bulkTasks` with nested items, and a producer creating a 10,000-item task
//! every 10 s. Reports p50/p99 per operation, errors (there must be none),
//! the server's RSS before the load, after a tenth of it and at the end
//! (the last two must stay within 10 %), and where the CPU went.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Gql};
use crate::procfs;
use crate::scenarios::{REPORT, Rig, cpu};
use crate::stats::{self, Samples};
use crate::{Env, Figures, Res};

const CLAIM: &str = "mutation($input: ClaimTaskItemsInput!) { claimTaskItems(input: $input) { items { leaseToken item { id } } } }";
const POLL: &str = "query($id: ID!) { bulkTask(id: $id) { id status counters { total pending finished } updatedAt } }";
const PAGE: &str = "query { bulkTasks(first: 20) { nodes { id status counters { total finished } items(first: 20) { nodes { id index status } } } } }";
const SUBSCRIBE: &str =
    "subscription($id: ID!) { bulkTaskUpdated(id: $id) { version counters { finished } } }";
const TASK_ITEMS: usize = 10_000;

/// Latencies and errors per operation, shared by every client.
#[derive(Clone, Default)]
struct Book(Arc<Mutex<HashMap<&'static str, (Samples, u64)>>>);

impl Book {
    fn ok(&self, op: &'static str, took: Duration) {
        self.0.lock().unwrap().entry(op).or_default().0.push(took);
    }

    fn error(&self, op: &'static str, e: &dyn std::fmt::Display) {
        let mut book = self.0.lock().unwrap();
        let entry = book.entry(op).or_default();
        if entry.1 == 0 {
            eprintln!("bench: mixed: {op} failed: {e}");
        }
        entry.1 += 1;
    }
}

/// The tasks made so far, newest last.
#[derive(Clone, Default)]
struct Tasks(Arc<Mutex<Vec<String>>>);

impl Tasks {
    fn newest(&self) -> Option<String> {
        self.0.lock().unwrap().last().cloned()
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    fn pick(&self, n: usize) -> Option<String> {
        let tasks = self.0.lock().unwrap();
        (!tasks.is_empty()).then(|| tasks[n % tasks.len()].clone())
    }
}

pub async fn run(env: &Env, rig: &Rig, out: &mut Figures) -> Res<()> {
    phase(env, rig, out, "mixed", "").await.map(|_| ())
}

/// One run of the mixed load; its figures are named `{prefix}{figure}`
/// under `scenario`. The polls' p99, in ms.
pub(crate) async fn phase(
    env: &Env,
    rig: &Rig,
    out: &mut Figures,
    scenario: &'static str,
    prefix: &str,
) -> Res<f64> {
    let (duration, subscribers) = if env.full() {
        (Duration::from_secs(600), 1_000)
    } else {
        (Duration::from_secs(30), 1_000)
    };
    let book = Book::default();
    let tasks = Tasks::default();
    let (first, _) = client::create_task(&rig.gql, "bench.mixed", TASK_ITEMS).await?;
    tasks.0.lock().unwrap().push(first);
    let end = Instant::now() + duration;
    let mut set: JoinSet<()> = JoinSet::new();

    let addr = rig.gql.base().trim_start_matches("http://").to_owned();
    let authorization = format!("Bearer {}", rig.server.api_key.clone().unwrap_or_default());
    let connecting = Arc::new(tokio::sync::Semaphore::new(50));
    for s in 0..subscribers {
        let (addr, authorization, tasks, book) = (
            addr.clone(),
            authorization.clone(),
            tasks.clone(),
            book.clone(),
        );
        let permit = connecting.clone().acquire_owned().await?;
        set.spawn(async move {
            match subscriber(&addr, &authorization, &tasks, end, permit).await {
                Ok(()) => book.ok("subscription", Duration::ZERO),
                Err(e) => book.error("subscription", &format!("subscriber {s}: {e}")),
            }
        });
    }
    // Every subscriber connected before the clock starts.
    let _ = connecting.acquire_many(50).await?;
    let rss_start = procfs::status_kib(rig.server.pid(), "VmRSS").unwrap_or(0);
    let mark = rig.sampler.mark();
    // Memory over each tenth of the run, as the mean of a sample a second:
    // one reading swings by a fifth as 10,000-item creates come and go.
    let pid = rig.server.pid();
    let rss_tenths = tokio::spawn(async move {
        let mut tenths = Vec::with_capacity(10);
        for _ in 0..10 {
            let (until, mut sum, mut n) = (Instant::now() + duration / 10, 0u64, 0u64);
            while Instant::now() < until {
                sum += procfs::status_kib(pid, "VmRSS").unwrap_or(0);
                n += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            tenths.push(sum as f64 / n.max(1) as f64 / 1024.0);
        }
        tenths
    });

    {
        let (gql, tasks, book) = (rig.gql.clone(), tasks.clone(), book.clone());
        set.spawn(async move {
            let mut next = Instant::now() + Duration::from_secs(10);
            while next < end {
                tokio::time::sleep_until(next.into()).await;
                next += Duration::from_secs(10);
                let t = Instant::now();
                match client::create_task(&gql, "bench.mixed", TASK_ITEMS).await {
                    Ok((id, _)) => {
                        book.ok("create_10k", t.elapsed());
                        tasks.0.lock().unwrap().push(id);
                    }
                    Err(e) => book.error("create_10k", &e),
                }
            }
        });
    }
    for w in 0..4 {
        let (gql, tasks, book) = (rig.gql.clone(), tasks.clone(), book.clone());
        set.spawn(async move { worker(&gql, &tasks, &book, w, end).await });
    }
    for _ in 0..5 {
        let (gql, book) = (rig.gql.clone(), book.clone());
        set.spawn(async move {
            let body = Gql::body(PAGE, json!({}));
            while Instant::now() < end {
                let t = Instant::now();
                match gql.post(body.clone()).await {
                    Ok(_) => book.ok("dashboard_page", t.elapsed()),
                    Err(e) => book.error("dashboard_page", &e),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
    // 200 pollers at 1 req/s are 200 polls a second, open loop, over every task made.
    let (gql, poll_tasks) = (rig.gql.clone(), tasks.clone());
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut polls = stats::open_loop(200.0, duration, move || {
        let (gql, tasks, counter) = (gql.clone(), poll_tasks.clone(), counter.clone());
        async move {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let id = tasks.pick(n).ok_or("no task")?;
            gql.query(POLL, json!({ "id": id })).await.map(|_| ())
        }
    })
    .await?;
    while set.join_next().await.is_some() {}
    let usage = rig.sampler.since(mark);
    let rss_end = procfs::status_kib(rig.server.pid(), "VmRSS").unwrap_or(0);
    let huge_end = procfs::rollup_kib(rig.server.pid(), "AnonHugePages").unwrap_or(0);

    let p99 = polls.latency.p99();
    out.add(
        scenario,
        format!("{prefix}poll.p50"),
        polls.latency.p50(),
        "ms",
    );
    out.add(
        scenario,
        format!("{prefix}poll.p99"),
        polls.latency.p99(),
        "ms",
    );
    out.add(
        scenario,
        format!("{prefix}poll.errors"),
        polls.errors as f64,
        "requests",
    );
    let mut errors = polls.errors as u64;
    let mut book = std::mem::take(&mut *book.0.lock().unwrap());
    let mut ops: Vec<_> = book.keys().copied().collect();
    ops.sort();
    for op in ops {
        let (samples, failed) = book.get_mut(op).expect("listed");
        if op != "subscription" {
            out.add(scenario, format!("{prefix}{op}.p50"), samples.p50(), "ms");
            out.add(scenario, format!("{prefix}{op}.p99"), samples.p99(), "ms");
            out.add(
                scenario,
                format!("{prefix}{op}.count"),
                samples.len() as f64,
                "requests",
            );
        }
        out.add(
            scenario,
            format!("{prefix}{op}.errors"),
            *failed as f64,
            "requests",
        );
        errors += *failed;
    }
    out.add(
        scenario,
        format!("{prefix}tasks_created"),
        tasks.0.lock().unwrap().len() as f64,
        "tasks",
    );
    out.add(
        scenario,
        format!("{prefix}rss_start"),
        rss_start as f64 / 1024.0,
        "MiB",
    );
    out.add(
        scenario,
        format!("{prefix}rss_end"),
        rss_end as f64 / 1024.0,
        "MiB",
    );
    // Of that, what sits in transparent huge pages: 2 MiB resident for
    // every one the allocator touched.
    let figure = format!("{prefix}rss_huge_pages_end");
    out.add(scenario, figure, huge_end as f64 / 1024.0, "MiB");
    let rss_tenths = rss_tenths.await?;
    for (k, mib) in rss_tenths.iter().enumerate() {
        let figure = format!("{prefix}rss_mean_tenth_{}", k + 1);
        out.add(scenario, figure, *mib, "MiB");
    }
    let tenth = |k: usize| rss_tenths.get(k).copied().unwrap_or(0.0).max(1.0);
    // "Warm": the first tenth, as pools and caches grow.
    out.add(scenario, format!("{prefix}rss_warm"), tenth(0), "MiB");
    out.add(
        scenario,
        format!("{prefix}rss_end_over_warm"),
        tenth(9) / tenth(0),
        "x",
    );
    // The second half alone: 1 for a server whose caches and allocator
    // have reached their working size, however long that took.
    out.add(
        scenario,
        format!("{prefix}rss_end_over_half"),
        tenth(9) / tenth(4),
        "x",
    );
    cpu(out, scenario, &format!("{prefix}run"), &usage);
    if errors > 0 {
        return Err(format!("{errors} operations failed").into());
    }
    Ok(p99)
}

/// Claims 100 items of the oldest unfinished task and reports them, until the end.
async fn worker(gql: &Gql, tasks: &Tasks, book: &Book, w: usize, end: Instant) {
    let worker_id = format!("mixed-{w}");
    let mut at = 0usize;
    while Instant::now() < end {
        at = at.min(tasks.len().saturating_sub(1));
        let Some(task) = tasks.pick(at) else { return };
        let t = Instant::now();
        let claimed = gql
            .query(
                CLAIM,
                json!({ "input": { "taskId": task, "limit": 100, "leaseSeconds": 60, "workerId": worker_id } }),
            )
            .await;
        let items = match claimed {
            Ok(data) => {
                book.ok("claim", t.elapsed());
                data["claimTaskItems"]["items"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            }
            Err(e) => {
                book.error("claim", &e);
                continue;
            }
        };
        if items.is_empty() {
            // This task is done: the next one, or a pause until the producer makes one.
            if at + 1 >= tasks.len() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            at += 1;
            continue;
        }
        let results: Vec<Value> = items
            .iter()
            .map(|c| json!({ "itemId": c["item"]["id"], "leaseToken": c["leaseToken"], "outcome": "SUCCEEDED" }))
            .collect();
        let t = Instant::now();
        match gql
            .query(
                REPORT,
                json!({ "input": { "taskId": task, "results": results } }),
            )
            .await
        {
            Ok(data)
                if data["reportItemResults"]["problems"]
                    .as_array()
                    .is_some_and(|p| !p.is_empty()) =>
            {
                book.error("report", &data["reportItemResults"]["problems"]);
            }
            Ok(_) => book.ok("report_100", t.elapsed()),
            Err(e) => book.error("report_100", &e),
        }
    }
}

/// Watches the newest task; when it completes, the newest then, until the end.
async fn subscriber(
    addr: &str,
    authorization: &str,
    tasks: &Tasks,
    end: Instant,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Res<()> {
    let mut ws = crate::client::ws_connect(addr, authorization).await?;
    let send = |v: Value| Message::text(v.to_string());
    let mut permit = Some(permit);
    let mut id = 0u64;
    let mut watching = String::new();
    loop {
        let message = tokio::select! {
            m = ws.next() => m,
            _ = tokio::time::sleep_until(end.into()) => break,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => return Err(format!("closed: {frame:?}").into()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => return Err("the server hung up".into()),
        };
        let v: Value = serde_json::from_str(&text)?;
        match v["type"].as_str() {
            Some("connection_ack") | Some("complete") => {
                // A finished task completes its subscription: wait for a newer one.
                let mut task = tasks.newest().ok_or("no task")?;
                while task == watching && Instant::now() < end {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    task = tasks.newest().ok_or("no task")?;
                }
                watching.clone_from(&task);
                id += 1;
                ws.send(send(json!({ "type": "subscribe", "id": id.to_string(),
                    "payload": { "query": SUBSCRIBE, "variables": { "id": task } } })))
                    .await?;
            }
            Some("ping") => ws.send(send(json!({ "type": "pong" }))).await?,
            Some("next") => {
                permit.take();
                if v["payload"].get("errors").is_some() {
                    return Err(format!("an event with errors: {text}").into());
                }
            }
            Some("error") => return Err(format!("subscription error: {text}").into()),
            _ => {}
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), ws.close(None)).await;
    Ok(())
}
