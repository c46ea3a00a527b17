//! What `/metrics` tells about webhooks: attempts and their latency, as
//! counted by this instance, and the backlog, as the dispatcher last read
//! it from the database (at most a few seconds old). `/metrics` itself
//! runs no SQL, so reading it never changes the statement counter.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::domain::now_ms;
use crate::store::{Db, webhook_dispatch};

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 10] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0];

#[derive(Default)]
pub struct WebhookMetrics {
    attempts_succeeded: AtomicU64,
    attempts_failed: AtomicU64,
    delivered: AtomicU64,
    given_up: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    pending: AtomicI64,
    retrying: AtomicI64,
    /// Creation time of the oldest delivery still to be sent; 0 when none.
    oldest_created_at: AtomicI64,
}

impl WebhookMetrics {
    /// Counts one recorded attempt; `final_failure` when it gave the delivery up.
    pub fn attempt(&self, succeeded: bool, final_failure: bool, took: Duration) {
        if succeeded {
            self.attempts_succeeded.fetch_add(1, Ordering::Relaxed);
            self.delivered.fetch_add(1, Ordering::Relaxed);
        } else {
            self.attempts_failed.fetch_add(1, Ordering::Relaxed);
            if final_failure {
                self.given_up.fetch_add(1, Ordering::Relaxed);
            }
        }
        let seconds = took.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.latency_buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// Reads the backlog over every organisation again.
    pub async fn refresh_backlog(&self, db: &Db) -> Result<(), sea_orm::DbErr> {
        let backlog = webhook_dispatch::backlog(&db.system_reader().await?).await?;
        self.pending.store(backlog.pending, Ordering::Relaxed);
        self.retrying.store(backlog.retrying, Ordering::Relaxed);
        self.oldest_created_at
            .store(backlog.oldest_created_at.unwrap_or(0), Ordering::Relaxed);
        Ok(())
    }

    /// The webhook section of `/metrics`.
    pub fn render(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::new();
        let pending = self.pending.load(Ordering::Relaxed);
        let retrying = self.retrying.load(Ordering::Relaxed);
        let oldest = self.oldest_created_at.load(Ordering::Relaxed);
        let oldest_age = if oldest == 0 {
            0.0
        } else {
            (now_ms() - oldest).max(0) as f64 / 1000.0
        };
        let _ = write!(
            out,
            "# HELP bulkwatch_webhook_deliveries Webhook deliveries still to be sent (database), and those finished by this instance.\n\
             # TYPE bulkwatch_webhook_deliveries gauge\n\
             bulkwatch_webhook_deliveries{{status=\"PENDING\"}} {pending}\n\
             bulkwatch_webhook_deliveries{{status=\"RETRYING\"}} {retrying}\n\
             bulkwatch_webhook_deliveries{{status=\"SUCCEEDED\"}} {}\n\
             bulkwatch_webhook_deliveries{{status=\"FAILED\"}} {}\n\
             # HELP bulkwatch_webhook_outbox_backlog Webhook deliveries waiting in the outbox (read every few seconds).\n\
             # TYPE bulkwatch_webhook_outbox_backlog gauge\n\
             bulkwatch_webhook_outbox_backlog {}\n\
             # HELP bulkwatch_webhook_oldest_pending_seconds Age of the oldest delivery still to be sent.\n\
             # TYPE bulkwatch_webhook_oldest_pending_seconds gauge\n\
             bulkwatch_webhook_oldest_pending_seconds {oldest_age:.3}\n\
             # HELP bulkwatch_webhook_attempts_total Webhook attempts sent by this instance.\n\
             # TYPE bulkwatch_webhook_attempts_total counter\n\
             bulkwatch_webhook_attempts_total{{result=\"success\"}} {}\n\
             bulkwatch_webhook_attempts_total{{result=\"failure\"}} {}\n\
             # HELP bulkwatch_webhook_attempt_seconds Time from sending an attempt to its answer.\n\
             # TYPE bulkwatch_webhook_attempt_seconds histogram\n",
            get(&self.delivered),
            get(&self.given_up),
            pending + retrying,
            get(&self.attempts_succeeded),
            get(&self.attempts_failed),
        );
        for (bound, bucket) in BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(
                out,
                "bulkwatch_webhook_attempt_seconds_bucket{{le=\"{bound}\"}} {}",
                get(bucket)
            );
        }
        let count = get(&self.latency_count);
        let _ = write!(
            out,
            "bulkwatch_webhook_attempt_seconds_bucket{{le=\"+Inf\"}} {count}\n\
             bulkwatch_webhook_attempt_seconds_sum {:.6}\n\
             bulkwatch_webhook_attempt_seconds_count {count}\n",
            get(&self.latency_sum_us) as f64 / 1e6,
        );
        out
    }
}
