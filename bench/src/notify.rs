//! `notify`: how many change events PostgreSQL's LISTEN/NOTIFY carries, the
//! server's change bus between instances. Each event is what the server
//! sends: a short write transaction that also queues a ~300-byte JSON
//! payload with `pg_notify`, delivered at commit to every listening
//! connection (one per server instance). The same writes without the
//! NOTIFY, in the same run, are the commit ceiling it is compared with.
//! PostgreSQL only: on SQLite the bus is in-process. The same events then
//! go through the NATS JetStream bus (`notify_nats`) when a NATS server
//! answers at `BULKWATCH_BENCH_NATS_URL` (default `nats://127.0.0.1:4222`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sea_orm::sqlx::postgres::{PgListener, PgPoolOptions};
use sea_orm::sqlx::{self, PgPool};

use crate::server::FreshDb;
use crate::{Backend, Env, Figures, Res};

const WRITERS: usize = 4;

pub async fn run(env: &Env, out: &mut Figures) -> Res<()> {
    if env.backend != Backend::Postgres {
        eprintln!("bench: notify measures PostgreSQL's LISTEN/NOTIFY; nothing to do on SQLite");
        return Ok(());
    }
    let (secs, listener_counts) = if env.full() {
        (10.0, vec![1, 4, 16])
    } else {
        (2.0, vec![1, 4])
    };
    let db = FreshDb::new(env.backend).await?;
    let pool = PgPoolOptions::new()
        // The writers, and a relay per listening instance of the JetStream half.
        .max_connections(WRITERS as u32 + 16)
        .connect(&db.url)
        .await?;
    sqlx::query("CREATE TABLE bench_notify (id INT PRIMARY KEY, n BIGINT NOT NULL)")
        .execute(&pool)
        .await?;
    sqlx::query("INSERT INTO bench_notify SELECT g, 0 FROM generate_series(0, $1) g")
        .bind(WRITERS as i32)
        .execute(&pool)
        .await?;
    let duration = Duration::from_secs_f64(secs);

    let (commits, wall) = write_loop(&pool, duration, None, None).await?;
    out.add(
        "notify",
        "commits_without_notify",
        commits as f64 / wall,
        "tx/s",
    );
    for &n in &listener_counts {
        let delivered: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
        let mut listeners = Vec::new();
        for i in 0..n {
            let mut listener = PgListener::connect(&db.url).await?;
            listener.listen("bench_notify").await?;
            let delivered = delivered.clone();
            listeners.push(tokio::spawn(async move {
                while listener.recv().await.is_ok() {
                    delivered[i].fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let started = Instant::now();
        let (total_sent, send_wall) = write_loop(
            &pool,
            duration,
            Some("SELECT pg_notify('bench_notify', $1)"),
            None,
        )
        .await?;
        let (slowest, wall) = drain(&delivered, total_sent, started).await;
        for l in listeners {
            l.abort();
        }
        record(
            out,
            &format!("listeners{n}"),
            total_sent,
            send_wall,
            slowest,
            wall,
        );
    }
    let nats_url = std::env::var("BULKWATCH_BENCH_NATS_URL")
        .unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    if std::net::TcpStream::connect(nats_url.trim_start_matches("nats://")).is_ok() {
        crate::notify_nats::run(&pool, &nats_url, duration, &listener_counts, out).await?;
    } else {
        eprintln!("bench: no NATS server at {nats_url}; the JetStream half of notify is left out");
    }
    pool.close().await;
    Ok(())
}

/// Waits until every listener has `sent` events or 10 s pass (what arrives
/// later still counts, over the longer time); the slowest listener's count
/// and the seconds since `started`.
pub(crate) async fn drain(delivered: &[AtomicU64], sent: u64, started: Instant) -> (u64, f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while delivered.iter().any(|d| d.load(Ordering::Relaxed) < sent) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let slowest = delivered
        .iter()
        .map(|d| d.load(Ordering::Relaxed))
        .min()
        .unwrap_or(0);
    (slowest, started.elapsed().as_secs_f64())
}

/// The figures of one listener count: events sent and delivered per
/// second, and events the slowest listener never got.
pub(crate) fn record(
    out: &mut Figures,
    name: &str,
    sent: u64,
    send_wall: f64,
    slowest: u64,
    wall: f64,
) {
    out.add(
        "notify",
        format!("{name}.sent"),
        sent as f64 / send_wall,
        "events/s",
    );
    out.add(
        "notify",
        format!("{name}.delivered_to_each"),
        slowest as f64 / wall,
        "events/s",
    );
    out.add(
        "notify",
        format!("{name}.lost"),
        sent.saturating_sub(slowest) as f64,
        "events",
    );
}

/// A change event of the size the server sends.
fn payload() -> String {
    format!(
        "{{\"org\":\"{}\",\"task\":\"{}\",\"version\":1,\"status\":\"RUNNING\",\"counters\":{{\"total\":10000,\"pending\":5000,\"running\":8,\"succeeded\":4990,\"failed\":2}},\"items\":[],\"updatedAt\":1760000000000,\"pad\":\"{}\"}}",
        uuid::Uuid::nil(),
        uuid::Uuid::nil(),
        "x".repeat(80)
    )
}

/// `WRITERS` loops of one-row write transactions for `duration`, each also
/// running `event` (bound to the event's payload) when given, and waking
/// `wake` after its commit; the transactions committed and the seconds taken.
pub(crate) async fn write_loop(
    pool: &PgPool,
    duration: Duration,
    event: Option<&'static str>,
    wake: Option<Arc<tokio::sync::Notify>>,
) -> Res<(u64, f64)> {
    let payload = payload();
    let end = Instant::now() + duration;
    let started = Instant::now();
    let mut loops = Vec::new();
    for w in 0..WRITERS {
        let (pool, payload, wake) = (pool.clone(), payload.clone(), wake.clone());
        loops.push(tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < end {
                let mut tx = pool.begin().await?;
                sqlx::query("UPDATE bench_notify SET n = n + 1 WHERE id = $1")
                    .bind(w as i32)
                    .execute(&mut *tx)
                    .await?;
                if let Some(event) = event {
                    sqlx::query(event).bind(&payload).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                if let Some(wake) = &wake {
                    wake.notify_one();
                }
                done += 1;
            }
            Ok::<u64, sqlx::Error>(done)
        }));
    }
    let mut total = 0;
    for l in loops {
        total += l.await??;
    }
    Ok((total, started.elapsed().as_secs_f64()))
}
