//! `bulkTasksUpdated`: every change to an organisation's tasks that match a
//! filter, coalesced per task.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use entity::bulk_task;
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use uuid::Uuid;

use super::{EventBus, TaskEvent, lagged};
use crate::error::AppResult;
use crate::store::Db;
use crate::store::tasks::{self, TaskFilter};

/// Most tasks a resync sends: a dashboard shows far fewer.
const RESYNC_LIMIT: u64 = 1_000;

/// What one coalescing window gathered.
#[derive(Default)]
struct Window {
    changed: HashSet<Uuid>,
    /// The change bus lost events: send every task changed since then.
    resync_since: Option<i64>,
}

impl Window {
    /// Takes an event in; false when it is not the organisation's.
    fn add(&mut self, org: Uuid, event: &TaskEvent) -> bool {
        if event.resync {
            self.resync_since = Some(self.resync_since.map_or(event.at, |s| s.min(event.at)));
            true
        } else if event.organisation_id == org {
            self.changed.insert(event.task_id);
            true
        } else {
            false
        }
    }
}

/// Changed tasks of `org` matching `filter`, in batches at most once per
/// `interval`, oldest change first. Ends with SUBSCRIBER_LAGGED when the
/// subscriber falls too far behind.
pub fn task_changes(
    db: Db,
    bus: &EventBus,
    org: Uuid,
    filter: TaskFilter,
    interval: Duration,
) -> impl Stream<Item = AppResult<bulk_task::Model>> + use<> {
    let rx = bus.subscribe_all();
    // The version last sent of each task: an event whose change an earlier
    // read already showed sends nothing, so versions only ever grow.
    let start = Some((rx, HashMap::<Uuid, i64>::new()));
    let batches = stream::unfold(start, move |state| {
        let (db, filter) = (db.clone(), filter.clone());
        async move {
            let (mut rx, mut sent) = state?;
            let window = match gather(&mut rx, org, interval).await {
                Ok(window) => window,
                Err(Gather::Lagged) => return Some((vec![Err(lagged())], None)),
                Err(Gather::Closed) => return None,
            };
            let batch = match load(&db, org, &filter, window).await {
                Ok(found) => found
                    .into_iter()
                    .filter(|t| sent.insert(t.id, t.version).is_none_or(|v| v < t.version))
                    .map(Ok)
                    .collect(),
                Err(e) => vec![Err(e)],
            };
            Some((batch, Some((rx, sent))))
        }
    });
    batches.flat_map(stream::iter)
}

enum Gather {
    Lagged,
    Closed,
}

/// Waits for the organisation's first change, then gathers what else comes
/// within `interval`.
async fn gather(
    rx: &mut broadcast::Receiver<Arc<TaskEvent>>,
    org: Uuid,
    interval: Duration,
) -> Result<Window, Gather> {
    let mut window = Window::default();
    loop {
        match rx.recv().await {
            Ok(e) if window.add(org, &e) => break,
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => return Err(Gather::Lagged),
            Err(RecvError::Closed) => return Err(Gather::Closed),
        }
    }
    tokio::time::sleep(interval).await;
    loop {
        match rx.try_recv() {
            Ok(e) => {
                window.add(org, &e);
            }
            Err(TryRecvError::Lagged(_)) => return Err(Gather::Lagged),
            Err(_) => return Ok(window),
        }
    }
}

async fn load(
    db: &Db,
    org: Uuid,
    filter: &TaskFilter,
    window: Window,
) -> AppResult<Vec<bulk_task::Model>> {
    let reader = db.reader(org).await?;
    let ids: Vec<_> = window.changed.into_iter().collect();
    let mut found = tasks::find_matching(&reader, &ids, filter).await?;
    if let Some(since) = window.resync_since {
        let missed = tasks::changed_since(&reader, filter, since, RESYNC_LIMIT).await?;
        let known: HashSet<Uuid> = found.iter().map(|t| t.id).collect();
        found.extend(missed.into_iter().filter(|t| !known.contains(&t.id)));
    }
    found.sort_by_key(|t| (t.updated_at, t.id));
    Ok(found)
}
