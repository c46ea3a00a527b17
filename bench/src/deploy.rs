//! `deploy` (PostgreSQL): three server instances on one database behind
//! HAProxy (`deploy/haproxy.cfg`). Through the balancer 4 workers claim and
//! report a 20,000-item task, 100 subscribers watch it and a producer
//! creates and finishes small tasks, while one instance is SIGKILLed and
//! restarted twice and a second one stopped with SIGTERM. Then: every item
//! final and counted once, every acknowledged outcome stored, counters equal
//! to the rows, every subscriber saw the end, a webhook for every finish.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::task::JoinSet;

use crate::client::task_uuid;
use crate::raw::Pool;
use crate::resilient::{self, Acks, Api, Produced, Work};
use crate::server::{FreshDb, Server};
use crate::watchers::{self, Receiver, Watch};
use crate::{Backend, Env, Figures, Res};

const N: u64 = 20_000;
const WORKERS: usize = 4;
const SUBSCRIBERS: usize = 100;

/// Every instance: webhooks to the local receiver, retried soon; expired
/// leases taken back soon; a graceful stop that fits the run.
pub const SETTINGS: &[(&str, &str)] = &[
    ("BULKWATCH_WEBHOOK_ALLOW_PRIVATE", "true"),
    ("BULKWATCH_WEBHOOK_RETRY_SCHEDULE", "1,1,2,2,5,5"),
    ("BULKWATCH_WEBHOOK_TIMEOUT_MS", "3000"),
    ("BULKWATCH_REAPER_INTERVAL_MS", "500"),
    ("BULKWATCH_SHUTDOWN_TIMEOUT", "5"),
];

/// HAProxy in the foreground; killed on drop.
struct Balancer(Child);

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Res<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn balancer(ports: &[u16; 3], dir: &Path) -> Res<(Balancer, String)> {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/haproxy.cfg");
    let port = free_port()?;
    let log = std::fs::File::create(dir.join("haproxy.log"))?;
    let child = Command::new("haproxy")
        .args(["-db", "-f"])
        .arg(&config)
        .env("BULKWATCH_LB_BIND", format!("127.0.0.1:{port}"))
        .env("BULKWATCH_BACKEND_1", format!("127.0.0.1:{}", ports[0]))
        .env("BULKWATCH_BACKEND_2", format!("127.0.0.1:{}", ports[1]))
        .env("BULKWATCH_BACKEND_3", format!("127.0.0.1:{}", ports[2]))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start haproxy (is the package installed?): {e}"))?;
    let lb = Balancer(child);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        if Instant::now() > deadline {
            return Err("HAProxy did not answer /readyz".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Until its first checks have seen every instance up.
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok((lb, base))
}

/// The faults, each once the acknowledged progress passes its mark.
#[derive(Default)]
struct Faults {
    kills_survived: u32,
    graceful_exit: Option<String>,
    before_end: bool,
}

async fn progress_reaches(acks: &Acks, fraction: f64, done: &AtomicBool) -> bool {
    while (acks.progress.load(Ordering::Relaxed) as f64) < N as f64 * fraction {
        if done.load(Ordering::Relaxed) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

async fn inflict(
    env: &Env,
    db: &FreshDb,
    servers: &mut [Server],
    ports: &[u16; 3],
    acks: &Acks,
    done: &AtomicBool,
) -> Res<Faults> {
    let mut f = Faults::default();
    for (k, mark) in [0.15, 0.40].into_iter().enumerate() {
        if !progress_reaches(acks, mark, done).await {
            return Ok(f);
        }
        eprintln!("  SIGKILL bw1 at {:.0} %", mark * 100.0);
        servers[0].kill();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let name = format!("bw1-restart{}", k + 1);
        servers[0] = Server::start_on(&env.binary, db, ports[0], &name, SETTINGS).await?;
        f.kills_survived += 1;
    }
    if !progress_reaches(acks, 0.65, done).await {
        return Ok(f);
    }
    eprintln!("  SIGTERM bw2 at 65 %");
    let status = servers[1].terminate(Duration::from_secs(15)).await?;
    f.graceful_exit = Some(status.to_string());
    f.before_end = !done.load(Ordering::Relaxed);
    Ok(f)
}

pub async fn run(env: &Env, out: &mut Figures) -> Res<()> {
    if env.backend != Backend::Postgres {
        return Err("deploy runs on PostgreSQL only (--db postgres)".into());
    }
    let started = Instant::now();
    let db = FreshDb::new(env.backend).await?;
    let ports = [free_port()?, free_port()?, free_port()?];
    let mut servers = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        servers.push(
            Server::start_on(&env.binary, &db, *port, &format!("bw{}", i + 1), SETTINGS).await?,
        );
    }
    let key = servers[0]
        .api_key
        .clone()
        .ok_or("the first instance printed no API key")?;
    let (_lb, base) = balancer(&ports, db.dir.path()).await?;
    let pool = Pool::connect(env.backend, &db.url, 2).await?;
    let api = Api::new(&base, &key)?;
    let deadline = Instant::now() + Duration::from_secs(240);

    let (receiver, hook_url) = Receiver::start().await?;
    api.until_ok(
        "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { secret } }",
        json!({ "input": { "url": hook_url, "events": ["TASK_FINISHED"] } }),
        deadline,
    )
    .await?;
    let items: Vec<_> = (0..N)
        .map(|i| json!({ "clientItemId": format!("c-{i}") }))
        .collect();
    let data = api
        .until_ok(
            "mutation($input: CreateBulkTaskInput!) { createBulkTask(input: $input) { task { id } } }",
            json!({ "input": { "type": "chaos.deploy", "idempotencyKey": "deploy-main", "maxAttempts": 20, "items": items } }),
            deadline,
        )
        .await?;
    let task_id = data["createBulkTask"]["task"]["id"]
        .as_str()
        .ok_or("no task id")?
        .to_owned();

    eprintln!("  {SUBSCRIBERS} subscribers through the balancer");
    let watch = Arc::new(Watch::default());
    let addr = base.trim_start_matches("http://").to_owned();
    let mut subscribers = JoinSet::new();
    for _ in 0..SUBSCRIBERS {
        let (a, auth, t, w) = (
            addr.clone(),
            format!("Bearer {key}"),
            task_id.clone(),
            watch.clone(),
        );
        subscribers.spawn(watchers::subscriber(a, auth, t, N, w, deadline));
    }
    while watch.subscribed.load(Ordering::Relaxed) < SUBSCRIBERS as u64 && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    eprintln!("  {WORKERS} workers and a producer; faults as the work goes");
    let acks = Arc::new(Acks::default());
    let work = Arc::new(Work {
        api: api.clone(),
        task_id: task_id.clone(),
        n: N,
        acks: acks.clone(),
        deadline,
        pace: Duration::from_millis(150),
    });
    let mut workers = JoinSet::new();
    for w in 0..WORKERS {
        workers.spawn(resilient::worker(work.clone(), w));
    }
    let (stop, produced) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(Produced::default()),
    );
    let producer = tokio::spawn(resilient::producer(
        api.clone(),
        acks.clone(),
        produced.clone(),
        stop.clone(),
        deadline,
    ));
    let done = Arc::new(AtomicBool::new(false));
    let faults = {
        let flag = done.clone();
        let watcher = tokio::spawn(async move {
            let mut errors = Vec::new();
            while let Some(r) = workers.join_next().await {
                if let Err(e) = r
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()))
                {
                    errors.push(e);
                }
            }
            flag.store(true, Ordering::Relaxed);
            errors
        });
        let faults = inflict(env, &db, &mut servers, &ports, &acks, &done).await;
        let errors = watcher.await?;
        if !errors.is_empty() {
            return Err(format!("workers failed: {}", errors.join("; ")).into());
        }
        faults?
    };
    let work_secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    producer.await??;

    // The end reaches every subscriber and every finish its webhook.
    let mut finished = produced.finished.lock().expect("lock").clone();
    finished.push(task_id.clone());
    let wait = Instant::now() + Duration::from_secs(30);
    while (watch.saw_end.load(Ordering::Relaxed) < SUBSCRIBERS as u64
        || receiver.finished(&finished) < finished.len())
        && Instant::now() < wait
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    subscribers.abort_all();

    let mut problems =
        crate::invariant::check(&pool, "deploy", task_uuid(&task_id)?, N, &acks, out).await?;
    let saw_end = watch.saw_end.load(Ordering::Relaxed);
    let delivered = receiver.finished(&finished);
    let t = &api.tally;
    out.add("deploy", "instances", 3.0, "instances");
    out.add(
        "deploy",
        "kills_survived",
        f64::from(faults.kills_survived),
        "kills",
    );
    out.add(
        "deploy",
        "graceful_stops",
        f64::from(u8::from(faults.graceful_exit.is_some())),
        "stops",
    );
    out.add("deploy", "subscribers", SUBSCRIBERS as f64, "subscribers");
    out.add(
        "deploy",
        "subscribers_saw_end",
        saw_end as f64,
        "subscribers",
    );
    out.add(
        "deploy",
        "subscriber_reconnects",
        watch.reconnects.load(Ordering::Relaxed) as f64,
        "reconnects",
    );
    out.add(
        "deploy",
        "producer_tasks_finished",
        (finished.len() - 1) as f64,
        "tasks",
    );
    out.add(
        "deploy",
        "webhook_finishes_expected",
        finished.len() as f64,
        "tasks",
    );
    out.add(
        "deploy",
        "webhook_finishes_delivered",
        delivered as f64,
        "tasks",
    );
    out.add(
        "deploy",
        "webhook_messages",
        receiver.received.load(Ordering::Relaxed) as f64,
        "messages",
    );
    out.add(
        "deploy",
        "database_unavailable_seen",
        t.db_unavailable_total() as f64,
        "responses",
    );
    out.add(
        "deploy",
        "internal_seen",
        t.internal.load(Ordering::Relaxed) as f64,
        "responses",
    );
    out.add(
        "deploy",
        "unexpected_errors",
        t.unexpected.load(Ordering::Relaxed) as f64,
        "responses",
    );
    out.add(
        "deploy",
        "transport_errors",
        t.transport.load(Ordering::Relaxed) as f64,
        "requests",
    );
    out.add(
        "deploy",
        "balancer_5xx",
        t.gateway.load(Ordering::Relaxed) as f64,
        "responses",
    );
    out.add("deploy", "seconds", work_secs, "s");

    if faults.kills_survived != 2 || faults.graceful_exit.is_none() || !faults.before_end {
        problems.push(format!(
            "the work ended before every fault ({} kills, SIGTERM: {:?}); slow the pace",
            faults.kills_survived, faults.graceful_exit
        ));
    }
    if let Some(status) = &faults.graceful_exit
        && status != "exit status: 0"
    {
        problems.push(format!("the SIGTERMed instance ended with {status}"));
    }
    if saw_end < SUBSCRIBERS as u64 {
        problems.push(format!(
            "{} of {SUBSCRIBERS} subscribers did not see the end; first error {:?}",
            SUBSCRIBERS as u64 - saw_end,
            watch.first_error.lock().expect("lock")
        ));
    }
    if watch.version_went_back.load(Ordering::Relaxed) > 0 {
        problems.push("a subscriber saw a version go back".into());
    }
    if delivered < finished.len() {
        problems.push(format!(
            "{} finished tasks got no finish webhook",
            finished.len() - delivered
        ));
    }
    let bad = t.internal.load(Ordering::Relaxed) + t.unexpected.load(Ordering::Relaxed);
    if bad > 0 {
        problems.push(format!(
            "{bad} INTERNAL or unexpected errors; first: {:?}",
            t.first_bad.lock().expect("lock")
        ));
    }
    problems.extend(crate::invariant::panics(db.dir.path()));
    pool.close().await;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; ").into())
    }
}
