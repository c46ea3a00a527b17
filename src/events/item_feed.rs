//! `taskItemsUpdated`: one task's item changes in commit order.

use std::sync::Arc;

use entity::task_item;
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError};
use uuid::Uuid;

use super::{EventBus, HubState, TaskEvent, lagged};
use crate::domain::status::ItemStatus;
use crate::error::{AppResult, not_found};
use crate::store::items::{self, Touched};
use crate::store::{Db, tasks};

/// A change of many items is read a page at a time, so a subscriber never
/// holds more than one page in memory.
const PAGE: u64 = 500;

/// Where a feed is: waiting for the next change, or paging through one.
struct Feed {
    rx: broadcast::Receiver<Arc<TaskEvent>>,
    /// Keeps the task's hub alive for as long as the feed runs.
    _snapshots: tokio::sync::watch::Receiver<HubState>,
    paging: Option<(Arc<TaskEvent>, i32)>,
}

/// Items of the task that each change touched, now in one of `statuses`
/// (all when None). NOT_FOUND when the organisation has no such task; ends
/// with SUBSCRIBER_LAGGED when the subscriber falls too far behind, and when
/// the task is deleted.
pub async fn item_changes(
    db: Db,
    bus: &EventBus,
    org: Uuid,
    task_id: Uuid,
    statuses: Option<Vec<ItemStatus>>,
) -> AppResult<impl Stream<Item = AppResult<task_item::Model>> + use<>> {
    bus.until_live().await;
    let watch = bus.watch(org, task_id);
    // Changes up to this version were committed before the feed began (the
    // bus may still be delivering them): they are not the subscriber's.
    let began = tasks::find(&db.reader(org).await?, task_id)
        .await?
        .ok_or_else(|| not_found("task"))?;
    let (began_at_version, began_at) = (began.version, began.updated_at);
    let start = Some(Feed {
        rx: watch.items,
        _snapshots: watch.snapshots,
        paging: None,
    });
    let batches = stream::unfold(start, move |feed| {
        let (db, statuses) = (db.clone(), statuses.clone());
        async move {
            let mut feed = feed?;
            let (event, after) = match feed.paging.take() {
                Some(paging) => paging,
                None => loop {
                    match feed.rx.recv().await {
                        Ok(e) if e.deleted => return None,
                        Ok(e) if !e.resync && e.version <= began_at_version => continue,
                        Ok(e) => break (e, -1),
                        Err(RecvError::Lagged(_)) => return Some((vec![Err(lagged())], None)),
                        Err(RecvError::Closed) => return None,
                    }
                },
            };
            let touched = match (&event.items, event.resync) {
                // A resync reads again from before the last change this
                // instance saw, never from before the feed began.
                (_, true) => Touched::Since(event.at.max(began_at)),
                (Some(list), false) => Touched::Listed(list),
                (None, false) => Touched::At(event.at),
            };
            let read = async {
                let reader = db.reader(org).await?;
                items::changed(&reader, task_id, touched, statuses.as_deref(), after, PAGE).await
            }
            .await;
            let batch = match read {
                Ok(rows) => {
                    if rows.len() as u64 == PAGE
                        && let Some(last) = rows.last()
                    {
                        feed.paging = Some((event.clone(), last.idx));
                    }
                    rows.into_iter().map(Ok).collect()
                }
                Err(e) => vec![Err(e.into())],
            };
            Some((batch, Some(feed)))
        }
    });
    Ok(batches.flat_map(stream::iter))
}
