//! The webhook dispatcher: claims due deliveries from the outbox, sends
//! each as one signed attempt, and records the answer; failed attempts are
//! retried on the configured schedule, then given up.
//!
//! Several instances over one PostgreSQL share the work safely: a claim
//! takes rows with `FOR UPDATE SKIP LOCKED` and counts the attempt in the
//! same statement, so no two instances send the same attempt; an instance
//! that dies mid-send lets its claims run out and another sends them as
//! the next attempt (at least once, same `webhook-id`). On SQLite the one
//! writer serialises claims.

mod guard;
pub mod metrics;
mod send;

use std::sync::Arc;
use std::time::{Duration, Instant};

use entity::{webhook_delivery, webhook_endpoint};
use tokio::sync::{Notify, Semaphore};

pub use metrics::WebhookMetrics;

use crate::AppState;
use crate::domain::now_ms;
use crate::domain::webhooks::DeliveryStatus;
use crate::store::webhook_dispatch::{self, Attempt};

/// How often the backlog `/metrics` shows is read again.
const BACKLOG_EVERY: Duration = Duration::from_secs(2);

/// Pauses before recording an attempt again when the database refused it
/// (a pool busy past its acquire timeout, a dropped connection). Without
/// them the claim would run out and the endpoint, which may well have
/// taken the request, would get it again half a minute later.
const RECORD_AGAIN_AFTER: [Duration; 3] = [
    Duration::from_millis(200),
    Duration::from_secs(1),
    Duration::from_secs(3),
];

/// Runs the dispatcher until the task is aborted.
pub async fn dispatch(state: AppState) {
    let client = match send::client(&state.config) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook client; webhooks are not sent");
            return;
        }
    };
    let concurrency = state.config.webhook_concurrency.max(1);
    let permits = Arc::new(Semaphore::new(concurrency));
    let finished = Arc::new(Notify::new());
    let mut changes = state.events.subscribe_all();
    let poll = Duration::from_millis(state.config.webhook_poll_ms.max(10));
    let mut backlog_read: Option<Instant> = None;
    loop {
        if backlog_read.is_none_or(|t| t.elapsed() >= BACKLOG_EVERY) {
            if let Err(e) = state.webhooks.refresh_backlog(&state.db).await {
                tracing::debug!(error = ?e, "reading the webhook backlog");
            }
            backlog_read = Some(Instant::now());
        }
        let free = permits.available_permits();
        let claimed = if free > 0 {
            claim(&state, free).await
        } else {
            Ok(Vec::new())
        };
        let claimed = claimed.unwrap_or_else(|e| {
            tracing::warn!(error = ?e, "claiming webhook deliveries");
            Vec::new()
        });
        let full = free > 0 && claimed.len() == free;
        for (delivery, endpoint) in claimed {
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                break;
            };
            let (state, client, finished) = (state.clone(), client.clone(), finished.clone());
            tokio::spawn(async move {
                deliver(&state, &client, delivery, endpoint).await;
                drop(permit);
                finished.notify_one();
            });
        }
        if full {
            continue;
        }
        // A commit anywhere (this instance or, on PostgreSQL, another) may
        // have written deliveries; an attempt that ended may have freed a
        // slot or the next snapshot of a task; retries come due with time.
        tokio::select! {
            received = changes.recv() => {
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = received {
                    tokio::time::sleep(poll).await;
                }
                while changes.try_recv().is_ok() {}
            }
            _ = finished.notified() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

type Claimed = Vec<(webhook_delivery::Model, webhook_endpoint::Model)>;

/// Claims up to `limit` due deliveries with their endpoints; a read-only
/// look comes first, so a wake-up with nothing due costs no write.
async fn claim(state: &AppState, limit: usize) -> Result<Claimed, sea_orm::DbErr> {
    let now = now_ms();
    if !webhook_dispatch::any_due(&state.db.system_reader().await?, now).await? {
        return Ok(Vec::new());
    }
    // Long enough for an attempt to end and be recorded.
    let claimed_until = now + 2 * state.config.webhook_timeout_ms as i64 + 1_000;
    let tx = state.db.system_begin().await?;
    let deliveries = webhook_dispatch::claim(&tx, now, claimed_until, limit as u64).await?;
    let mut ids: Vec<_> = deliveries.iter().map(|d| d.endpoint_id).collect();
    ids.sort();
    ids.dedup();
    let endpoints = if ids.is_empty() {
        Vec::new()
    } else {
        webhook_dispatch::endpoints(&tx, &ids).await?
    };
    tx.commit().await?;
    Ok(deliveries
        .into_iter()
        .filter_map(|d| {
            let endpoint = endpoints.iter().find(|e| e.id == d.endpoint_id)?.clone();
            Some((d, endpoint))
        })
        .collect())
}

/// `gap` stretched or shrunk by up to a tenth, so that deliveries failing
/// together do not all come back at the same moment.
fn jittered(gap: Duration) -> Duration {
    let random = (uuid::Uuid::new_v4().as_u128() % 1_000) as f64 / 1_000.0;
    gap.mul_f64(0.9 + 0.2 * random)
}

/// Sends one claimed attempt and records what came of it.
async fn deliver(
    state: &AppState,
    client: &reqwest::Client,
    delivery: webhook_delivery::Model,
    endpoint: webhook_endpoint::Model,
) {
    let allow_private = state.config.webhook_allow_private;
    let started = Instant::now();
    let answer = send::attempt(client, &endpoint, &delivery, allow_private).await;
    let took = started.elapsed();
    let now = now_ms();
    let schedule = state.config.retry_schedule().unwrap_or_default();
    let succeeded = answer.succeeded();
    let gap = usize::try_from(delivery.attempts - 1)
        .ok()
        .and_then(|n| schedule.get(n));
    let (status, next_attempt_at) = match (succeeded, gap) {
        (true, _) => (DeliveryStatus::Succeeded, None),
        (false, Some(gap)) => (
            DeliveryStatus::Retrying,
            Some(now + jittered(*gap).as_millis() as i64),
        ),
        (false, None) => (DeliveryStatus::Failed, None),
    };
    let attempt = Attempt {
        status,
        next_attempt_at,
        response_status: answer.status.map(i32::from),
        response_body: answer.body,
        error: answer.error,
        duration_ms: i32::try_from(took.as_millis()).unwrap_or(i32::MAX),
        delivered_at: succeeded.then_some(now),
    };
    let mut recorded = record(state, &delivery, &attempt, now).await;
    for pause in RECORD_AGAIN_AFTER {
        if recorded.is_ok() {
            break;
        }
        tokio::time::sleep(pause).await;
        recorded = record(state, &delivery, &attempt, now).await;
    }
    match recorded {
        Ok(true) => state
            .webhooks
            .attempt(succeeded, status == DeliveryStatus::Failed, took),
        Ok(false) => tracing::info!(
            delivery = %delivery.id,
            "a webhook attempt outlived its claim; another instance took it over"
        ),
        // The claim runs out and the delivery is attempted again.
        Err(e) => {
            tracing::warn!(error = ?e, delivery = %delivery.id, "recording a webhook attempt")
        }
    }
}

/// Writes the attempt and the endpoint's health; disables an endpoint that
/// has failed every attempt for longer than allowed.
async fn record(
    state: &AppState,
    delivery: &webhook_delivery::Model,
    attempt: &Attempt,
    now: i64,
) -> Result<bool, sea_orm::DbErr> {
    let tx = state.db.system_begin().await?;
    if !webhook_dispatch::record(&tx, delivery.id, delivery.attempts, attempt).await? {
        return Ok(false);
    }
    if attempt.status == DeliveryStatus::Succeeded {
        webhook_dispatch::endpoint_succeeded(&tx, delivery.endpoint_id).await?;
    } else {
        let since = webhook_dispatch::endpoint_failed(&tx, delivery.endpoint_id, now).await?;
        let allowed = state.config.webhook_disable_after_secs.saturating_mul(1000) as i64;
        if since.is_some_and(|since| now - since >= allowed) {
            let reason = format!(
                "every delivery failed for {} seconds",
                state.config.webhook_disable_after_secs
            );
            webhook_dispatch::disable(&tx, delivery.endpoint_id, &reason, now).await?;
            tracing::warn!(endpoint = %delivery.endpoint_id, "webhook endpoint disabled: {reason}");
        }
    }
    tx.commit().await?;
    Ok(true)
}
