//! The pruner: deletes finished tasks once their retention has run out.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::AppState;
use crate::domain::retention::{Retention, prune_due};

/// Sweeps forever, every `prune_interval_ms`.
pub async fn run(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_millis(
        state.config.prune_interval_ms.max(10),
    ));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let retention = Retention {
        default_seconds: state.config.retention_seconds,
        batch: state.config.prune_batch,
    };
    loop {
        tick.tick().await;
        match prune_due(&state.db, &state.events, retention).await {
            Ok(pruned) => {
                state
                    .jobs
                    .pruned_tasks
                    .fetch_add(pruned.tasks, Ordering::Relaxed);
                state
                    .jobs
                    .pruned_items
                    .fetch_add(pruned.items, Ordering::Relaxed);
                if pruned.tasks > 0 {
                    tracing::info!(
                        tasks = pruned.tasks,
                        items = pruned.items,
                        "finished tasks pruned"
                    );
                }
            }
            Err(e) => tracing::warn!(error = ?e, "pruner"),
        }
    }
}
