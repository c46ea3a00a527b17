//! The deadline timer: fails overdue unfinished tasks, forever.

use crate::AppState;
use crate::domain::deadlines::fail_overdue;

/// Runs a pass every reaper interval (the same cadence as lease expiry:
/// both bound how late the server notices that time ran out).
pub async fn run(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(
        state.config.reaper_interval_ms.max(10),
    ));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match fail_overdue(&state.db, &state.events).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(tasks = n, "tasks past their deadline failed"),
            Err(e) => tracing::warn!(error = ?e, "deadline timer"),
        }
    }
}
