//! `bulkTaskUpdated`: one task's snapshots, coalesced, latest wins.

use std::sync::Arc;
use std::time::Duration;

use entity::bulk_task;
use futures_util::stream::{self, Stream};
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

use super::{EventBus, HubState};
use crate::error::{AppResult, not_found};
use crate::store::{Db, tasks};

/// The task as it is now, then the latest snapshot at most once per
/// `interval` with a growing version; ends after the terminal one, or when
/// the task is deleted. NOT_FOUND when the organisation has no such task.
pub async fn task_snapshots(
    db: &Db,
    bus: &EventBus,
    org: Uuid,
    task_id: Uuid,
    interval: Duration,
) -> AppResult<impl Stream<Item = bulk_task::Model> + use<>> {
    // Watch first, then read: a change in between is not missed.
    let watch = bus.watch(org, task_id);
    let first = tasks::find(&db.reader(org).await?, task_id)
        .await?
        .ok_or_else(|| not_found("task"))?;
    Ok(follow(first, watch.snapshots, interval))
}

fn follow(
    first: bulk_task::Model,
    rx: watch::Receiver<HubState>,
    interval: Duration,
) -> impl Stream<Item = bulk_task::Model> {
    struct Follow {
        rx: watch::Receiver<HubState>,
        first: Option<bulk_task::Model>,
        version: i64,
        next_at: Instant,
        done: bool,
    }
    let start = Follow {
        rx,
        first: Some(first),
        version: -1,
        next_at: Instant::now(),
        done: false,
    };
    stream::unfold(start, move |mut s| async move {
        if let Some(task) = s.first.take() {
            s.version = task.version;
            s.done = task.status.is_terminal();
            s.next_at = Instant::now() + interval;
            return Some((task, s));
        }
        if s.done {
            return None;
        }
        loop {
            s.rx.changed().await.ok()?;
            tokio::time::sleep_until(s.next_at).await;
            let latest = s.rx.borrow_and_update().clone();
            match latest {
                HubState::Task(task) if task.version > s.version => {
                    s.version = task.version;
                    s.done = task.status.is_terminal();
                    s.next_at = Instant::now() + interval;
                    return Some((Arc::unwrap_or_clone(task), s));
                }
                HubState::Deleted => return None,
                _ => {}
            }
        }
    })
}
