//! Subscription roots: live task snapshots, dashboards and item feeds.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Context, ID, Result, Subscription};
use entity::bulk_task;
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use super::enums::TaskItemStatus;
use super::ids::{self, Kind};
use super::inputs::BulkTaskFilter;
use super::types::{BulkTask, TaskItem};
use super::{authorize, reader, state};
use crate::domain::keys::Scope;
use crate::domain::status::{ItemStatus, TaskStatus};
use crate::error::{AppError, not_found};
use crate::events::{HubState, TaskEvent};
use crate::store::tasks::TaskFilter;
use crate::store::{items, tasks};

#[derive(Default)]
pub struct TaskSubscription;

fn is_terminal(task: &bulk_task::Model) -> bool {
    TaskStatus::parse(&task.status).is_some_and(TaskStatus::is_terminal)
}

fn lagged() -> AppError {
    AppError::Lagged("the subscriber fell too far behind; subscribe again".into())
}

/// The first snapshot, then the latest one at most once per `interval`
/// with a growing version; ends after the terminal one.
fn snapshots(
    first: bulk_task::Model,
    rx: watch::Receiver<HubState>,
    interval: Duration,
) -> impl Stream<Item = BulkTask> {
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
            s.done = is_terminal(&task);
            s.next_at = Instant::now() + interval;
            return Some((BulkTask(task), s));
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
                    s.done = is_terminal(&task);
                    s.next_at = Instant::now() + interval;
                    return Some((BulkTask(Arc::unwrap_or_clone(task)), s));
                }
                HubState::Deleted => return None,
                _ => {}
            }
        }
    })
}

#[Subscription]
impl TaskSubscription {
    /// The task as it is now, then a new snapshot after changes (coalesced,
    /// latest wins, `version` never goes back); completes after the terminal state.
    async fn bulk_task_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The task's global id.")] id: ID,
    ) -> Result<impl Stream<Item = BulkTask> + use<>> {
        let who = authorize(ctx, Scope::TasksRead)?;
        let task_id = ids::decode(Kind::BulkTask, &id)?;
        let s = state(ctx)?;
        // Watch first, then read: a change in between is not missed.
        let watch = s.events.watch(task_id);
        let task = tasks::find(&reader(ctx, &who).await?, who.organisation_id, task_id)
            .await
            .map_err(AppError::from)?
            .ok_or_else(|| not_found("task"))?;
        Ok(snapshots(
            task,
            watch.snapshots,
            Duration::from_millis(s.config.coalesce_ms),
        ))
    }

    /// Every change to the caller's tasks that match the filter, coalesced per task.
    async fn bulk_tasks_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which tasks.")] filter: Option<BulkTaskFilter>,
    ) -> Result<impl Stream<Item = Result<BulkTask>> + use<>> {
        let who = authorize(ctx, Scope::TasksRead)?;
        let s = state(ctx)?;
        let filter: TaskFilter = filter.map(Into::into).unwrap_or_default();
        filter.check()?;
        let (db, interval) = (s.db.clone(), Duration::from_millis(s.config.coalesce_ms));
        let rx = s.events.subscribe_all();
        let (org, tenant) = (who.organisation_id, who.tenant());
        let batches = stream::unfold(Some(rx), move |rx| {
            let (db, filter) = (db.clone(), filter.clone());
            async move {
                let mut rx = rx?;
                let mut changed = HashSet::new();
                loop {
                    match rx.recv().await {
                        Ok(e) if e.organisation_id == org => {
                            changed.insert(e.task_id);
                            break;
                        }
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            return Some((vec![Err(lagged().into())], None));
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
                tokio::time::sleep(interval).await;
                loop {
                    match rx.try_recv() {
                        Ok(e) if e.organisation_id == org => {
                            changed.insert(e.task_id);
                        }
                        Ok(_) => {}
                        Err(broadcast::error::TryRecvError::Lagged(_)) => {
                            return Some((vec![Err(lagged().into())], None));
                        }
                        Err(_) => break,
                    }
                }
                let ids: Vec<_> = changed.into_iter().collect();
                let found = async {
                    tasks::find_matching(&db.reader(tenant).await?, org, &ids, &filter).await
                }
                .await;
                let batch = match found {
                    Ok(mut found) => {
                        found.sort_by_key(|t| (t.updated_at, t.id));
                        found.into_iter().map(|t| Ok(BulkTask(t))).collect()
                    }
                    Err(e) => vec![Err(AppError::from(e).into())],
                };
                Some((batch, Some(rx)))
            }
        });
        Ok(batches.flat_map(stream::iter))
    }

    /// Item-level changes of one task in commit order, e.g. a live feed of
    /// failures. A subscriber that falls behind gets SUBSCRIBER_LAGGED and is ended.
    async fn task_items_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The task's global id.")] task_id: ID,
        #[graphql(desc = "Only items now in one of these statuses.")] status: Option<
            Vec<TaskItemStatus>,
        >,
    ) -> Result<impl Stream<Item = Result<TaskItem>> + use<>> {
        let who = authorize(ctx, Scope::TasksRead)?;
        let task_id = ids::decode(Kind::BulkTask, &task_id)?;
        let s = state(ctx)?;
        let watch = s.events.watch(task_id);
        tasks::find(&reader(ctx, &who).await?, who.organisation_id, task_id)
            .await
            .map_err(AppError::from)?
            .ok_or_else(|| not_found("task"))?;
        let statuses: Option<Vec<ItemStatus>> =
            status.map(|l| l.into_iter().map(Into::into).collect());
        let db = s.db.clone();
        let (org, tenant) = (who.organisation_id, who.tenant());
        // The snapshot receiver keeps the hub alive for as long as the feed runs.
        // A change of many items is read a page at a time, so a subscriber
        // never holds more than one page in memory.
        const PAGE: u64 = 500;
        let start = Some((watch.items, watch.snapshots, None::<(Arc<TaskEvent>, i32)>));
        let batches = stream::unfold(start, move |held| {
            let (db, statuses) = (db.clone(), statuses.clone());
            async move {
                let (mut rx, snapshots, current) = held?;
                let (event, after) = match current {
                    Some(paging) => paging,
                    None => match rx.recv().await {
                        Ok(e) if e.deleted => return None,
                        Ok(e) => (e, -1),
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            return Some((vec![Err(lagged().into())], None));
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                };
                let read = async {
                    items::changed(
                        &db.reader(tenant).await?,
                        org,
                        task_id,
                        event.items.as_deref(),
                        event.at,
                        statuses.as_deref(),
                        after,
                        PAGE,
                    )
                    .await
                }
                .await;
                let (batch, next) = match read {
                    Ok(rows) => {
                        let more = (rows.len() as u64 == PAGE)
                            .then(|| rows.last().map(|r| r.idx))
                            .flatten();
                        let batch = rows.into_iter().map(|i| Ok(TaskItem::new(i))).collect();
                        (batch, more.map(|idx| (event, idx)))
                    }
                    Err(e) => (vec![Err(AppError::from(e).into())], None),
                };
                Some((batch, Some((rx, snapshots, next))))
            }
        });
        Ok(batches.flat_map(stream::iter))
    }
}
