//! The change bus. The domain stages a small event inside its transaction
//! and it reaches subscribers only once the transaction has committed: on
//! SQLite by in-process delivery right after the commit, on PostgreSQL
//! through NOTIFY (which PostgreSQL delivers on commit, in commit order) to
//! every instance's listener, this one included; or, with the NATS bus,
//! through an outbox row that a relay publishes to a JetStream stream that
//! every instance follows (this instance delivers its own at commit).
//!
//! Watchers of one task share a hub that reloads the task once per change,
//! so a change costs O(watchers of that task), not O(all subscribers).

mod dashboard;
mod hub;
mod item_feed;
mod jetstream;
mod postgres;
mod snapshots;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use sea_orm::{DbBackend, DbErr};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

pub use dashboard::task_changes;
pub use hub::{HubState, TaskWatch};
pub use item_feed::item_changes;
pub use snapshots::task_snapshots;

use crate::domain::now_ms;
use crate::error::AppError;
use crate::store::{Db, Writer, change_outbox, notify};

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
    /// Not a change but a notice, local to this instance: the bus lost
    /// events, and every change since `at` must be read again.
    #[serde(skip)]
    pub resync: bool,
    /// The instance that made the change, on the NATS bus: it delivered the
    /// event itself at commit and skips it on the stream.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Uuid>,
}

impl TaskEvent {
    fn resync(task_id: Uuid, since: i64) -> TaskEvent {
        TaskEvent {
            organisation_id: Uuid::nil(),
            task_id,
            version: 0,
            at: since,
            items: None,
            deleted: false,
            resync: true,
            origin: None,
        }
    }
}

/// How far back a resync reads before the last change this instance saw:
/// instances' clocks (which stamp `updated_at`) may disagree by this much.
const RESYNC_MARGIN_MS: i64 = 5_000;

/// How long a new feed waits for the bus to go live.
const LIVE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The event as the bus carries it; a NOTIFY payload must stay under
/// PostgreSQL's limit, so a long list of items becomes "every item of the
/// change" (`items: None`).
fn payload(event: &mut TaskEvent) -> String {
    let mut payload = serde_json::to_string(&event).unwrap_or_default();
    if payload.len() > MAX_PAYLOAD {
        event.items = None;
        payload = serde_json::to_string(&event).unwrap_or_default();
    }
    payload
}

/// The error a subscriber gets when it fell too far behind.
pub(crate) fn lagged() -> AppError {
    AppError::Lagged("the subscriber fell too far behind; subscribe again".into())
}

#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    all: broadcast::Sender<Arc<TaskEvent>>,
    /// Hubs by organisation and task: a watcher of another organisation's
    /// task id finds nothing and cannot end a hub that others use.
    hubs: Mutex<HashMap<(Uuid, Uuid), hub::Hub>>,
    item_feed_capacity: usize,
    /// Commit time of the newest change delivered, where a resync starts.
    last_at: AtomicI64,
    /// Whether changes reach this instance yet: on PostgreSQL and NATS
    /// once the first listener or follower runs.
    live: tokio::sync::watch::Sender<bool>,
    transport: Transport,
}

/// How a committed change reaches other instances.
enum Transport {
    /// SQLite: one instance, delivery in-process.
    Local,
    /// PostgreSQL's NOTIFY, queued in the transaction.
    Notify,
    /// An outbox row in the transaction, published to NATS JetStream.
    Nats(jetstream::Outbox),
}

/// Where the NATS bus publishes: the server and the deployment's subject.
#[derive(Clone, Debug)]
pub struct NatsBus {
    pub url: String,
    pub subject: String,
}

/// An event staged in a transaction, delivered by `dispatch` after the commit.
#[must_use = "dispatch the event after the commit"]
pub struct Staged {
    local: Option<(EventBus, TaskEvent)>,
}

impl Staged {
    pub fn dispatch(self) {
        if let Some((bus, event)) = self.local {
            if let Transport::Nats(outbox) = &bus.inner.transport {
                outbox.wake();
            }
            bus.deliver(Arc::new(event));
        }
    }
}

impl EventBus {
    /// A bus over `db`; on PostgreSQL it also starts the LISTEN bridge, or
    /// with `nats` the outbox relay and the stream's follower.
    pub fn start(
        db: Db,
        item_feed_capacity: usize,
        database_url: &str,
        nats: Option<NatsBus>,
    ) -> EventBus {
        let postgres = db.backend() == DbBackend::Postgres;
        let transport = match (&nats, postgres) {
            (Some(_), true) => Transport::Nats(jetstream::Outbox::new()),
            (_, true) => Transport::Notify,
            (_, false) => Transport::Local,
        };
        let bus = EventBus {
            inner: Arc::new(Inner {
                db,
                all: broadcast::channel(4096).0,
                hubs: Mutex::new(HashMap::new()),
                item_feed_capacity: item_feed_capacity.max(1),
                last_at: AtomicI64::new(now_ms()),
                live: tokio::sync::watch::channel(!postgres).0,
                transport,
            }),
        };
        match (&bus.inner.transport, nats) {
            (Transport::Nats(outbox), Some(nats)) => jetstream::start(bus.clone(), outbox, nats),
            (Transport::Notify, _) => {
                tokio::spawn(postgres::listen(bus.clone(), database_url.to_owned()));
            }
            _ => {}
        }
        bus
    }

    /// Stages `event` in `tx`.
    pub async fn stage(&self, tx: &Writer, mut event: TaskEvent) -> Result<Staged, DbErr> {
        match &self.inner.transport {
            Transport::Local => Ok(Staged {
                local: Some((self.clone(), event)),
            }),
            Transport::Notify => {
                notify::notify(tx, CHANNEL, payload(&mut event)).await?;
                Ok(Staged { local: None })
            }
            Transport::Nats(outbox) => {
                event.origin = Some(outbox.origin());
                change_outbox::stage(tx, payload(&mut event), event.at).await?;
                Ok(Staged {
                    local: Some((self.clone(), event)),
                })
            }
        }
    }

    /// Hands a committed change to this instance's subscribers.
    fn deliver(&self, event: Arc<TaskEvent>) {
        self.inner.last_at.fetch_max(event.at, Ordering::Relaxed);
        let _ = self.inner.all.send(event.clone());
        let hubs = self.inner.hubs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hub) = hubs.get(&(event.organisation_id, event.task_id)) {
            hub.notify(event);
        }
    }

    /// After a lost LISTEN connection: every hub reloads its task, and every
    /// feed reads again what changed since shortly before the last change
    /// this instance saw, so no subscriber misses a commit made meanwhile.
    fn resync(&self) {
        let since = self.inner.last_at.load(Ordering::Relaxed) - RESYNC_MARGIN_MS;
        let _ = self
            .inner
            .all
            .send(Arc::new(TaskEvent::resync(Uuid::nil(), since)));
        let hubs = self.inner.hubs.lock().unwrap_or_else(|e| e.into_inner());
        for ((_, task_id), hub) in hubs.iter() {
            hub.resync(Arc::new(TaskEvent::resync(*task_id, since)));
        }
        self.inner.live.send_replace(true);
    }

    /// Waits, at most `LIVE_WAIT`, until changes reach this instance, so a
    /// feed that begins at startup starts from what its first read saw
    /// instead of being sent the first resync's catch-up. Past the wait
    /// the feed begins anyway: that resync covers what it missed.
    async fn until_live(&self) {
        let mut live = self.inner.live.subscribe();
        let _ = tokio::time::timeout(LIVE_WAIT, live.wait_for(|l| *l)).await;
    }

    fn db(&self) -> &Db {
        &self.inner.db
    }

    /// Every change of every task, for dashboards; callers filter.
    pub fn subscribe_all(&self) -> broadcast::Receiver<Arc<TaskEvent>> {
        self.inner.all.subscribe()
    }

    /// Follows one task of `org`: its latest snapshot and its item changes.
    pub fn watch(&self, org: Uuid, task_id: Uuid) -> TaskWatch {
        let mut hubs = self.inner.hubs.lock().unwrap_or_else(|e| e.into_inner());
        hubs.retain(|_, hub| !hub.is_finished());
        if let Some(hub) = hubs.get(&(org, task_id)) {
            return hub.watch();
        }
        let (hub, watch) = hub::Hub::start(
            self.inner.db.clone(),
            org,
            task_id,
            self.inner.item_feed_capacity,
        );
        hubs.insert((org, task_id), hub);
        watch
    }

    /// Tasks with live watchers, for `/metrics`: a hub whose watchers all
    /// left (or were refused) has ended and is not counted.
    pub fn watched_tasks(&self) -> usize {
        self.inner
            .hubs
            .lock()
            .map(|h| h.values().filter(|hub| !hub.is_finished()).count())
            .unwrap_or_default()
    }
}
