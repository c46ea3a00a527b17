//! `faults`: the database fails under a running server.
//!
//! PostgreSQL: while 4 workers claim and report a 20,000-item task, every
//! connection of the server is terminated (`pg_terminate_backend`) four
//! times and PostgreSQL is restarted once. Clients must see only
//! DATABASE_UNAVAILABLE, `/readyz` must say not-ready while the database is
//! gone, the same process must finish the work, and nothing acknowledged
//! may be lost. SQLite: see `sqlite_faults`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sea_orm::sqlx::{self, Connection};
use serde_json::json;
use tokio::task::JoinSet;

use crate::client::task_uuid;
use crate::raw::Pool;
use crate::resilient::{self, Acks, Api, Work};
use crate::server::{DEFAULT_POSTGRES_URL, FreshDb, Server};
use crate::{Backend, Env, Figures, Res};

const N: u64 = 20_000;
const WORKERS: usize = 4;

pub async fn run(env: &Env, out: &mut Figures) -> Res<()> {
    match env.backend {
        Backend::Postgres => postgres(env, out).await,
        Backend::Sqlite => crate::sqlite_faults::run(env, out).await,
    }
}

/// What `/readyz` answered, polled all along.
#[derive(Default)]
struct Readiness {
    ready: AtomicU64,
    not_ready: AtomicU64,
    /// 503s while PostgreSQL restarted (and shortly after).
    not_ready_in_restart: AtomicU64,
    failed: AtomicU64,
    in_restart: AtomicBool,
}

async fn probe(base: String, r: Arc<Readiness>, stop: Arc<AtomicBool>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .expect("a client");
    while !stop.load(Ordering::Relaxed) {
        match http.get(format!("{base}/readyz")).send().await {
            Ok(a) if a.status().is_success() => r.ready.fetch_add(1, Ordering::Relaxed),
            Ok(a) if a.status().as_u16() == 503 => {
                if r.in_restart.load(Ordering::Relaxed) {
                    r.not_ready_in_restart.fetch_add(1, Ordering::Relaxed);
                }
                r.not_ready.fetch_add(1, Ordering::Relaxed)
            }
            _ => r.failed.fetch_add(1, Ordering::Relaxed),
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Terminates every backend of the server (named by its application_name).
async fn terminate(base_url: &str, app: &str) -> Res<i64> {
    let mut conn = sqlx::PgConnection::connect(base_url).await?;
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1) t",
    )
    .bind(app)
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    Ok(n)
}

/// `pg_ctlcluster <version> main <action>` for the machine's cluster.
pub fn pg_ctl(action: &str) -> Res<()> {
    let version = std::fs::read_dir("/etc/postgresql")?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .max()
        .ok_or("no cluster under /etc/postgresql")?;
    let status = std::process::Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", action])
        .status()?;
    if !status.success() {
        return Err(format!("pg_ctlcluster {version} main {action}: {status}").into());
    }
    Ok(())
}

async fn restart_postgres(readiness: &Readiness) -> Res<f64> {
    readiness.in_restart.store(true, Ordering::Relaxed);
    let t = Instant::now();
    // Stop, hold the database down until `/readyz` has been asked at least
    // once (a quick restart could otherwise fall between two probes), start.
    let restarted = match tokio::task::spawn_blocking(|| pg_ctl("stop")).await? {
        Ok(()) => {
            let deadline = Instant::now() + Duration::from_secs(10);
            while readiness.not_ready_in_restart.load(Ordering::Relaxed) == 0
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tokio::task::spawn_blocking(|| pg_ctl("start")).await?
        }
        Err(e) => Err(e),
    };
    let secs = t.elapsed().as_secs_f64();
    if restarted.is_err() {
        // Whatever went wrong, later steps need PostgreSQL running.
        let _ = tokio::task::spawn_blocking(|| pg_ctl("start")).await;
    }
    // Readiness may trail the database by a check or two.
    tokio::time::sleep(Duration::from_secs(1)).await;
    readiness.in_restart.store(false, Ordering::Relaxed);
    restarted.map(|()| secs)
}

async fn postgres(env: &Env, out: &mut Figures) -> Res<()> {
    let base_url = std::env::var("BULKWATCH_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into());
    let mut db = FreshDb::new(env.backend).await?;
    let plain = db.url.clone();
    // Names the server's connections, so only they are terminated.
    let app = format!("bulkwatch-faults-{}", uuid::Uuid::now_v7().simple());
    db.url = format!("{plain}&application_name={app}");
    let mut server =
        Server::start(&env.binary, &db, &[("BULKWATCH_REAPER_INTERVAL_MS", "500")]).await?;
    let pid = server.pid();
    let key = server
        .api_key
        .clone()
        .ok_or("the server printed no API key")?;
    let pool = Pool::connect(env.backend, &plain, 2).await?;
    let api = Api::new(&server.base, &key)?;
    let deadline = Instant::now() + Duration::from_secs(240);
    let items: Vec<_> = (0..N)
        .map(|i| json!({ "clientItemId": format!("c-{i}") }))
        .collect();
    let data = api
        .until_ok(
            "mutation($input: CreateBulkTaskInput!) { createBulkTask(input: $input) { task { id } } }",
            json!({ "input": { "type": "chaos.faults", "maxAttempts": 20, "items": items } }),
            deadline,
        )
        .await?;
    let task_id = data["createBulkTask"]["task"]["id"]
        .as_str()
        .ok_or("no task id")?
        .to_owned();

    let readiness = Arc::new(Readiness::default());
    let stop = Arc::new(AtomicBool::new(false));
    let prober = tokio::spawn(probe(server.base.clone(), readiness.clone(), stop.clone()));
    let acks = Arc::new(Acks::default());
    let work = Arc::new(Work {
        api: api.clone(),
        task_id: task_id.clone(),
        n: N,
        acks: acks.clone(),
        deadline,
        pace: Duration::from_millis(100),
    });
    let mut workers = JoinSet::new();
    for w in 0..WORKERS {
        workers.spawn(resilient::worker(work.clone(), w));
    }

    let t = Instant::now();
    let (mut terminations, mut terminated, mut restart_secs) = (0, 0, None);
    for (mark, restart) in [
        (0.10, false),
        (0.25, false),
        (0.40, false),
        (0.55, true),
        (0.75, false),
    ] {
        while (acks.progress.load(Ordering::Relaxed) as f64) < N as f64 * mark
            && !workers.is_empty()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if let Some(r) = workers.try_join_next() {
                r??;
            }
        }
        if restart {
            eprintln!("  restarting PostgreSQL at {:.0} %", mark * 100.0);
            restart_secs = Some(restart_postgres(&readiness).await?);
        } else {
            terminated += terminate(&base_url, &app).await?;
            terminations += 1;
            eprintln!(
                "  terminated the server's connections at {:.0} % ({terminated} so far)",
                mark * 100.0
            );
        }
    }
    while let Some(r) = workers.join_next().await {
        r??;
    }
    let work_secs = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    prober.await?;
    let ready_at_end = reqwest::get(format!("{}/readyz", server.base))
        .await
        .is_ok_and(|r| r.status().is_success());
    let process = server.exit_status();

    let mut problems =
        crate::invariant::check(&pool, "faults", task_uuid(&task_id)?, N, &acks, out).await?;
    let tally = &api.tally;
    out.add("faults", "terminations", f64::from(terminations), "times");
    out.add(
        "faults",
        "connections_terminated",
        terminated as f64,
        "connections",
    );
    out.add(
        "faults",
        "postgres_restarts",
        f64::from(u8::from(restart_secs.is_some())),
        "times",
    );
    out.add(
        "faults",
        "postgres_restart_seconds",
        restart_secs.unwrap_or(0.0),
        "s",
    );
    out.add(
        "faults",
        "database_unavailable_seen",
        tally.db_unavailable.load(Ordering::Relaxed) as f64,
        "responses",
    );
    out.add(
        "faults",
        "database_unavailable_503_seen",
        tally.db_unavailable_503.load(Ordering::Relaxed) as f64,
        "responses",
    );
    out.add(
        "faults",
        "internal_seen",
        tally.internal.load(Ordering::Relaxed) as f64,
        "responses",
    );
    out.add(
        "faults",
        "unexpected_errors",
        tally.unexpected.load(Ordering::Relaxed) as f64,
        "responses",
    );
    out.add(
        "faults",
        "transport_errors",
        tally.transport.load(Ordering::Relaxed) as f64,
        "requests",
    );
    out.add(
        "faults",
        "readyz_ready",
        readiness.ready.load(Ordering::Relaxed) as f64,
        "answers",
    );
    out.add(
        "faults",
        "readyz_not_ready",
        readiness.not_ready.load(Ordering::Relaxed) as f64,
        "answers",
    );
    let in_restart = readiness.not_ready_in_restart.load(Ordering::Relaxed);
    out.add(
        "faults",
        "readyz_not_ready_in_restart",
        in_restart as f64,
        "answers",
    );
    out.add(
        "faults",
        "readyz_failed",
        readiness.failed.load(Ordering::Relaxed) as f64,
        "answers",
    );
    out.add(
        "faults",
        "server_restarts",
        if server.pid() == pid && process == "still running" {
            0.0
        } else {
            1.0
        },
        "restarts",
    );
    out.add("faults", "seconds", work_secs, "s");

    if process != "still running" {
        problems.push(format!("the server did not survive: {process}"));
    }
    if !ready_at_end {
        problems.push("/readyz is not ready after the faults".into());
    }
    if in_restart == 0 {
        problems.push("/readyz never said not-ready while PostgreSQL restarted".into());
    }
    if terminated == 0 {
        problems.push("no connection of the server was terminated".into());
    }
    let bad = tally.internal.load(Ordering::Relaxed) + tally.unexpected.load(Ordering::Relaxed);
    if bad > 0 {
        problems.push(format!(
            "{bad} INTERNAL or unexpected errors; first: {:?}",
            tally.first_bad.lock().expect("lock")
        ));
    }
    problems.extend(crate::invariant::panics(db.dir.path()));
    pool.close().await;
    if !problems.is_empty() {
        eprintln!("bench: server log tail:\n{}", server.log_tail());
        return Err(problems.join("; ").into());
    }
    Ok(())
}
