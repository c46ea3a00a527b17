//! `FailurePolicy` and `AuditEntry` with its connection: how a task is
//! steered and the trail of who steered it.

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Object, SimpleObject};
use entity::audit_entry;
use serde_json::Value;

use super::json;
use crate::domain::policy;
use crate::graphql::connection::RowCursor;
use crate::graphql::scalars::DateTime;

pub type AuditEntryConnection = Connection<RowCursor, AuditEntry, EmptyFields, EmptyFields>;

/// A task's failure policy, as given at creation.
#[derive(SimpleObject, Clone, Debug)]
pub struct FailurePolicy {
    /// The task fails once this many items are FAILED.
    pub max_failed_items: Option<i32>,
    /// ... or once FAILED / finished items exceeds this.
    pub max_failure_ratio: Option<f64>,
    /// The ratio is not judged before this many items are final.
    pub min_finished: i32,
    /// FAILED results with these codes never go back to PENDING.
    pub non_retryable_codes: Vec<String>,
}

impl From<policy::FailurePolicy> for FailurePolicy {
    fn from(p: policy::FailurePolicy) -> Self {
        FailurePolicy {
            max_failed_items: p.max_failed_items,
            max_failure_ratio: p.max_failure_ratio,
            min_finished: p.min_finished,
            non_retryable_codes: p.non_retryable_codes,
        }
    }
}

/// One change to a task, by a caller or by the server.
#[derive(Clone, Debug)]
pub struct AuditEntry(pub audit_entry::Model);

#[Object]
impl AuditEntry {
    /// When the change committed.
    async fn at(&self) -> DateTime {
        DateTime(self.0.at)
    }

    /// What was done: create, append, seal, update, cancel, pause, resume,
    /// priority, retry, fail, delete; by the server: failure_threshold,
    /// deadline, lease_expiry, retention.
    async fn action(&self) -> &str {
        &self.0.action
    }

    /// `system` for the server, else `key <id> (<prefix>)`: the API key's id
    /// and public prefix, never its secret.
    async fn actor(&self) -> &str {
        &self.0.actor
    }

    /// Why, as the caller gave it (or the server's explanation).
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }

    /// Figures of the change, e.g. how many items were retried or cancelled.
    async fn details(&self) -> Option<Value> {
        json(&self.0.details)
    }
}
