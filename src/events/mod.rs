//! The change bus: the domain publishes a small event after each commit;
//! subscribers (live updates) receive it. In-process for now.

use std::sync::Arc;

use tokio::sync::broadcast;
use uuid::Uuid;

use crate::domain::status::{Counters, TaskStatus};

/// What changed: ids and counters, never whole rows.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskEvent {
    pub organisation_id: Uuid,
    pub task_id: Uuid,
    pub version: i64,
    pub status: TaskStatus,
    pub counters: Counters,
    /// The task is gone.
    pub deleted: bool,
}

#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<TaskEvent>>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus { sender: broadcast::channel(4096).0 }
    }
}

impl EventBus {
    /// Publishes a committed change; nobody listening is fine.
    pub fn publish(&self, event: TaskEvent) {
        let _ = self.sender.send(Arc::new(event));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<TaskEvent>> {
        self.sender.subscribe()
    }
}
