//! `notify`, second half: the same events through the NATS JetStream bus
//! the server offers as `BULKWATCH_EVENT_BUS=nats`. Each event is a short
//! write transaction that also inserts an outbox row; after the commit the
//! writer wakes the relays, which take rows with SKIP LOCKED, publish them
//! with a message id, wait for the stream's acks and delete them (one relay
//! per listening instance, as each server runs one), and every listener is
//! an ordered consumer of the stream on its own connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::push::OrderedConfig;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use futures_util::StreamExt;
use sea_orm::sqlx::{self, PgPool};
use tokio::sync::Notify;

use crate::{Figures, Res};

const RELAY_BATCH: i64 = 500;

/// Events/s sent and delivered to each of `n` listeners, for each `n`.
pub async fn run(
    pool: &PgPool,
    nats_url: &str,
    duration: Duration,
    listener_counts: &[usize],
    out: &mut Figures,
) -> Res<()> {
    sqlx::query(
        "CREATE TABLE bench_outbox (id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL, created_at BIGINT NOT NULL)",
    )
    .execute(pool)
    .await?;
    for &n in listener_counts {
        let subject = format!("bench_notify.{}", uuid::Uuid::now_v7().simple());
        let client = async_nats::connect(nats_url).await?;
        let context = jetstream::new(client.clone());
        let stream = context
            .get_or_create_stream(stream::Config {
                name: subject.replace('.', "_"),
                subjects: vec![subject.clone()],
                max_age: Duration::from_secs(600),
                duplicate_window: Duration::from_secs(120),
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await?;

        let delivered: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
        let mut tasks = Vec::new();
        for i in 0..n {
            let listener = async_nats::connect(nats_url).await?;
            let consumer = stream
                .create_consumer(OrderedConfig {
                    deliver_subject: listener.new_inbox(),
                    deliver_policy: DeliverPolicy::New,
                    filter_subject: subject.clone(),
                    ..Default::default()
                })
                .await?;
            let mut messages = consumer.messages().await?;
            let delivered = delivered.clone();
            tasks.push(tokio::spawn(async move {
                while let Some(Ok(_)) = messages.next().await {
                    delivered[i].fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let wake = Arc::new(Notify::new());
        for _ in 0..n {
            let (pool, context, subject, wake) =
                (pool.clone(), context.clone(), subject.clone(), wake.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let _ = tokio::time::timeout(Duration::from_millis(500), wake.notified()).await;
                    while let Ok(RELAY_BATCH) = relay_once(&pool, &context, &subject).await {}
                }
            }));
        }

        let started = Instant::now();
        let (sent, send_wall) = crate::notify::write_loop(
            pool,
            duration,
            Some("INSERT INTO bench_outbox (payload, created_at) VALUES ($1, 0)"),
            Some(wake.clone()),
        )
        .await?;
        let (slowest, wall) = crate::notify::drain(&delivered, sent, started).await;
        for task in tasks {
            task.abort();
        }
        context.delete_stream(subject.replace('.', "_")).await.ok();
        crate::notify::record(
            out,
            &format!("jetstream.listeners{n}"),
            sent,
            send_wall,
            slowest,
            wall,
        );
    }
    Ok(())
}

/// Takes a batch of outbox rows, publishes them, waits for the acks and
/// deletes them; returns how many.
async fn relay_once(pool: &PgPool, context: &jetstream::Context, subject: &str) -> Res<i64> {
    let mut tx = pool.begin().await?;
    // One relay at a time, as in the server: relays that took turns row by
    // row would publish small batches.
    let (leader,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_xact_lock(7364)")
        .fetch_one(&mut *tx)
        .await?;
    if !leader {
        return Ok(0);
    }
    let rows: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT id, payload, created_at FROM bench_outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(RELAY_BATCH)
    .fetch_all(&mut *tx)
    .await?;
    let mut acks = Vec::with_capacity(rows.len());
    for (id, payload, at) in &rows {
        let message = PublishMessage::build()
            .payload(payload.clone().into())
            .message_id(format!("{id}-{at}"));
        acks.push(context.send_publish(subject.to_owned(), message).await?);
    }
    for ack in acks {
        ack.await?;
    }
    let ids: Vec<i64> = rows.iter().map(|(id, _, _)| *id).collect();
    sqlx::query("DELETE FROM bench_outbox WHERE id = ANY($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(rows.len() as i64)
}
