//! The rules of bulkwatch: no GraphQL and no HTTP in here. Every public
//! function is one transaction, and publishes its change after the commit.

pub mod admission;
mod commit;
pub mod create;
pub mod keys;
pub mod leases;
pub(crate) mod outbox;
pub mod reports;
pub mod status;
pub mod task_snapshot;
pub mod tasks;
pub mod webhook_urls;
pub mod webhooks;

use uuid::Uuid;

/// Who is calling: the organisation every read and write is scoped to, and
/// what the caller's key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Principal {
    pub organisation_id: Uuid,
    pub scopes: keys::Scopes,
}

/// Milliseconds since the Unix epoch, the unit of every stored time.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
