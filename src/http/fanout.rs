//! One execution for many watchers of a task. `bulkTaskUpdated` streams the
//! latest snapshot of one task, so every subscriber that sends the same
//! operation with the same variables, for the same organisation and scopes,
//! would get the same payloads: those subscribers share one GraphQL
//! execution, rendered once per change, instead of one each. Latest-wins is
//! what makes sharing exact: a watch channel holds the newest payload, a late
//! joiner starts from it, and a slow one skips to it, as a coalesced stream
//! of its own would.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use async_graphql::parser::types::{DocumentOperations, OperationType, Selection};
use async_graphql::{Request, Response};
use futures_util::{Stream, StreamExt};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use uuid::Uuid;

use crate::domain::Principal;
use crate::domain::keys::Scopes;

const SHAREABLE_FIELD: &str = "bulkTaskUpdated";

/// What makes two subscriptions produce the same payloads.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    organisation_id: Uuid,
    scopes: Scopes,
    query: String,
    operation_name: Option<String>,
    variables: String,
}

impl Key {
    /// The key of `request` when its one root field is `bulkTaskUpdated`.
    pub fn of(request: &Request, who: &Principal) -> Option<Key> {
        let document = async_graphql::parser::parse_query(&request.query).ok()?;
        let operation = match (&document.operations, &request.operation_name) {
            (DocumentOperations::Single(op), None) => op,
            (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name.as_str())?,
            _ => return None,
        };
        let operation = &operation.node;
        let shareable = operation.ty == OperationType::Subscription
            && operation.directives.is_empty()
            && matches!(
                operation.selection_set.node.items.as_slice(),
                [item] if matches!(&item.node, Selection::Field(f)
                    if f.node.name.node == SHAREABLE_FIELD && f.node.directives.is_empty())
            );
        shareable.then(|| Key {
            organisation_id: who.organisation_id,
            scopes: who.scopes,
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
            variables: serde_json::to_string(&request.variables).unwrap_or_default(),
        })
    }
}

/// The newest payload of a shared execution, and how it ended.
#[derive(Clone, Debug, Default)]
pub struct State {
    /// Counts payloads, so a subscriber knows whether it has sent the newest.
    pub seq: u64,
    /// The newest response, serialised.
    pub last: Option<Arc<str>>,
    pub end: Option<End>,
}

#[derive(Clone, Debug)]
pub enum End {
    Complete,
    /// A response without data: its errors, serialised.
    Errors(Arc<serde_json::Value>),
}

/// A running shared execution; it stops when its last subscriber lets go.
pub struct Shared {
    state: watch::Receiver<State>,
    upstream: AbortHandle,
    registry: Weak<Fanout>,
    key: Key,
    generation: u64,
}

impl Shared {
    pub fn watch(&self) -> watch::Receiver<State> {
        self.state.clone()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.upstream.abort();
        if let Some(registry) = self.registry.upgrade() {
            registry.forget(&self.key, self.generation);
        }
    }
}

/// The shared executions, by key.
#[derive(Default)]
pub struct Fanout {
    streams: Mutex<HashMap<Key, (Weak<Shared>, u64)>>,
    generations: std::sync::atomic::AtomicU64,
}

impl Fanout {
    /// Joins the execution for `key`, starting it with `start` when none runs.
    pub fn join<S>(self: &Arc<Self>, key: Key, start: impl FnOnce() -> S) -> Arc<Shared>
    where
        S: Stream<Item = Response> + Send + 'static,
    {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(shared) = streams.get(&key).and_then(|(weak, _)| weak.upgrade()) {
            return shared;
        }
        let generation = self
            .generations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = watch::channel(State::default());
        let registry = Arc::downgrade(self);
        let ended_key = key.clone();
        let stream = start();
        let upstream = tokio::spawn(async move {
            publish(stream, &tx).await;
            // Later subscribers start afresh: a task that ended may yet be
            // retried and move again.
            if let Some(registry) = registry.upgrade() {
                registry.forget(&ended_key, generation);
            }
        });
        let shared = Arc::new(Shared {
            state: rx,
            upstream: upstream.abort_handle(),
            registry: Arc::downgrade(self),
            key: key.clone(),
            generation,
        });
        streams.insert(key, (Arc::downgrade(&shared), generation));
        shared
    }

    fn forget(&self, key: &Key, generation: u64) {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if streams.get(key).is_some_and(|(_, g)| *g == generation) {
            streams.remove(key);
        }
    }

    /// Shared executions running now, for `/metrics`.
    pub fn running(&self) -> usize {
        self.streams.lock().map(|s| s.len()).unwrap_or_default()
    }
}

async fn publish(stream: impl Stream<Item = Response>, tx: &watch::Sender<State>) {
    let mut stream = std::pin::pin!(stream);
    while let Some(response) = stream.next().await {
        if response.data == async_graphql::Value::Null && !response.errors.is_empty() {
            let errors = serde_json::to_value(&response.errors).unwrap_or_default();
            tx.send_modify(|s| s.end = Some(End::Errors(Arc::new(errors))));
            return;
        }
        let payload: Arc<str> = serde_json::to_string(&response).unwrap_or_default().into();
        tx.send_modify(|s| {
            s.seq += 1;
            s.last = Some(payload);
        });
    }
    tx.send_modify(|s| s.end = Some(End::Complete));
}
