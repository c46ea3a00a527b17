//! The change bus. The domain stages a small event inside its transaction
//! and it reaches subscribers only once the transaction has committed: on
//! SQLite by in-process delivery right after the commit, on PostgreSQL
//! through NOTIFY (which PostgreSQL delivers on commit, in commit order) to
//! every instance's listener, this one included.
//!
//! Watchers of one task share a hub that reloads the task once per change,
//! so a change costs O(watchers of that task), not O(all subscribers).

mod hub;
mod postgres;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, Statement};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

pub use hub::{HubState, TaskWatch};

use crate::store::Db;

/// Name of the PostgreSQL channel every instance listens on.
pub const CHANNEL: &str = "bulkwatch_events";
/// NOTIFY payloads must stay under PostgreSQL's 8000-byte limit.
const MAX_PAYLOAD: usize = 7_000;

/// What changed: ids and counters, never whole rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskEvent {
    #[serde(rename = "o")]
    pub organisation_id: Uuid,
    #[serde(rename = "t")]
    pub task_id: Uuid,
    #[serde(rename = "v")]
    pub version: i64,
    /// Commit time (ms); every item the change touched has it as `updated_at`.
    #[serde(rename = "a")]
    pub at: i64,
    /// Indexes of the items that changed; `None` means "every item whose
    /// `updated_at` is `at`" (too many to list).
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<i32>>,
    /// The task is gone.
    #[serde(rename = "d", default)]
    pub deleted: bool,
}

#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    all: broadcast::Sender<Arc<TaskEvent>>,
    hubs: Mutex<HashMap<Uuid, hub::Hub>>,
    item_feed_capacity: usize,
}

/// An event staged in a transaction, delivered by `dispatch` after the commit.
#[must_use = "dispatch the event after the commit"]
pub struct Staged {
    local: Option<(EventBus, TaskEvent)>,
}

impl Staged {
    pub fn dispatch(self) {
        if let Some((bus, event)) = self.local {
            bus.deliver(Arc::new(event));
        }
    }
}

impl EventBus {
    /// A bus over `db`; on PostgreSQL it also starts the LISTEN bridge.
    pub fn start(db: Db, item_feed_capacity: usize, database_url: &str) -> EventBus {
        let bus = EventBus {
            inner: Arc::new(Inner {
                db,
                all: broadcast::channel(4096).0,
                hubs: Mutex::new(HashMap::new()),
                item_feed_capacity: item_feed_capacity.max(1),
            }),
        };
        if bus.inner.db.backend() == DbBackend::Postgres {
            tokio::spawn(postgres::listen(bus.clone(), database_url.to_owned()));
        }
        bus
    }

    /// Stages `event` in `tx`.
    pub async fn stage(
        &self,
        tx: &DatabaseTransaction,
        mut event: TaskEvent,
    ) -> Result<Staged, DbErr> {
        if tx.get_database_backend() != DbBackend::Postgres {
            return Ok(Staged {
                local: Some((self.clone(), event)),
            });
        }
        let mut payload = serde_json::to_string(&event).unwrap_or_default();
        if payload.len() > MAX_PAYLOAD {
            event.items = None;
            payload = serde_json::to_string(&event).unwrap_or_default();
        }
        tx.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), payload.into()],
        ))
        .await?;
        Ok(Staged { local: None })
    }

    /// Hands a committed change to this instance's subscribers.
    fn deliver(&self, event: Arc<TaskEvent>) {
        let _ = self.inner.all.send(event.clone());
        let hubs = self.inner.hubs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hub) = hubs.get(&event.task_id) {
            hub.notify(event);
        }
    }

    /// After a lost LISTEN connection: every hub reloads its task, so
    /// watchers get a fresh snapshot of whatever they missed.
    fn resync(&self) {
        let hubs = self.inner.hubs.lock().unwrap_or_else(|e| e.into_inner());
        for hub in hubs.values() {
            hub.reload();
        }
    }

    /// Every change of every task, for dashboards; callers filter.
    pub fn subscribe_all(&self) -> broadcast::Receiver<Arc<TaskEvent>> {
        self.inner.all.subscribe()
    }

    /// Follows one task: its latest snapshot and its item changes.
    pub fn watch(&self, task_id: Uuid) -> TaskWatch {
        let mut hubs = self.inner.hubs.lock().unwrap_or_else(|e| e.into_inner());
        hubs.retain(|_, hub| !hub.is_finished());
        if let Some(hub) = hubs.get(&task_id) {
            return hub.watch();
        }
        let (hub, watch) = hub::Hub::start(
            self.inner.db.clone(),
            task_id,
            self.inner.item_feed_capacity,
        );
        hubs.insert(task_id, hub);
        watch
    }

    /// Hubs alive, for `/metrics`.
    pub fn watched_tasks(&self) -> usize {
        self.inner.hubs.lock().map(|h| h.len()).unwrap_or_default()
    }
}
