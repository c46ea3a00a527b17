//! One hub per watched task: it reloads the task once per change and hands
//! the snapshot to every watcher, latest wins.

use std::sync::Arc;

use entity::bulk_task;
use tokio::sync::{Notify, broadcast, watch};
use uuid::Uuid;

use super::TaskEvent;
use crate::store::{Db, tasks};

/// What watchers of a task see.
#[derive(Clone, Debug)]
pub enum HubState {
    /// Not loaded yet.
    Loading,
    Task(Arc<bulk_task::Model>),
    Deleted,
}

/// A watcher's ends of a hub.
pub struct TaskWatch {
    pub snapshots: watch::Receiver<HubState>,
    pub items: broadcast::Receiver<Arc<TaskEvent>>,
}

pub(super) struct Hub {
    snapshots: watch::Sender<HubState>,
    items: broadcast::Sender<Arc<TaskEvent>>,
    wake: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Hub {
    /// Starts a hub with its first watcher (subscribed before the hub runs,
    /// so it cannot find itself without watchers and stop).
    pub(super) fn start(db: Db, org: Uuid, task_id: Uuid, capacity: usize) -> (Hub, TaskWatch) {
        let (snapshots, first) = watch::channel(HubState::Loading);
        let (items, first_items) = broadcast::channel(capacity);
        let wake = Arc::new(Notify::new());
        wake.notify_one();
        let task = tokio::spawn(run(db, org, task_id, snapshots.clone(), wake.clone()));
        (
            Hub {
                snapshots,
                items,
                wake,
                task,
            },
            TaskWatch {
                snapshots: first,
                items: first_items,
            },
        )
    }

    pub(super) fn notify(&self, event: Arc<TaskEvent>) {
        if self.items.receiver_count() > 0 {
            let _ = self.items.send(event);
        }
        self.wake.notify_one();
    }

    /// Reloads the task and tells item feeds to read again since `notice.at`.
    pub(super) fn resync(&self, notice: Arc<TaskEvent>) {
        if self.items.receiver_count() > 0 {
            let _ = self.items.send(notice);
        }
        self.wake.notify_one();
    }

    pub(super) fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    pub(super) fn watch(&self) -> TaskWatch {
        TaskWatch {
            snapshots: self.snapshots.subscribe(),
            items: self.items.subscribe(),
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    db: Db,
    org: Uuid,
    task_id: Uuid,
    snapshots: watch::Sender<HubState>,
    wake: Arc<Notify>,
) {
    let mut version = -1;
    loop {
        tokio::select! {
            _ = wake.notified() => {}
            _ = snapshots.closed() => return,
        }
        let found = async { tasks::find(&db.reader(org).await?, task_id).await }.await;
        match found {
            Ok(Some(task)) if task.version > version => {
                version = task.version;
                snapshots.send_replace(HubState::Task(Arc::new(task)));
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                snapshots.send_replace(HubState::Deleted);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, %task_id, "reloading a watched task");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                wake.notify_one();
            }
        }
    }
}
