//! The rules of bulkwatch: no GraphQL and no HTTP in here. Every public
//! function is one transaction, and publishes its change after the commit.

pub mod admission;
pub mod audit;
mod commit;
pub mod control;
pub mod create;
pub mod deadlines;
pub mod exports;
pub mod keys;
pub mod leases;
pub(crate) mod outbox;
pub mod policy;
pub mod reports;
pub mod results;
pub mod retention;
pub mod status;
pub mod task_snapshot;
pub mod tasks;
pub mod webhook_urls;
pub mod webhooks;

use uuid::Uuid;

/// Who is calling: the organisation every read and write is scoped to,
/// what the caller's key may do, and which key it is (for the audit trail).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Principal {
    pub organisation_id: Uuid,
    pub scopes: keys::Scopes,
    pub key_id: Uuid,
    pub key_prefix: keys::KeyPrefix,
}

/// Milliseconds since the Unix epoch, the unit of every stored time.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
