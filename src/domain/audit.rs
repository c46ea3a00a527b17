//! The audit trail: every change to a task, by a caller or by the server,
//! appends an entry in the transaction that makes the change, so the trail
//! holds exactly the changes that committed. Item reports are not audited
//! one by one; the items themselves record them.

use sea_orm::DbErr;
use serde_json::Value;
use uuid::Uuid;

use super::Principal;
use super::admission::MAX_TEXT;
use crate::error::{AppResult, bad_input};
use crate::store::{Writer, audit};

/// Who made a change.
#[derive(Clone, Copy, Debug)]
pub enum Actor {
    /// A caller, named by its key's id and public prefix (never the secret).
    Key(Principal),
    /// The server itself: thresholds, deadlines, the reaper, retention.
    System,
}

impl Actor {
    /// The stored text: `system`, or `key <id> (<prefix>)`.
    pub fn text(&self) -> String {
        match self {
            Actor::Key(who) => format!("key {} ({})", who.key_id, who.key_prefix.as_str()),
            Actor::System => "system".to_owned(),
        }
    }
}

impl From<Principal> for Actor {
    fn from(who: Principal) -> Self {
        Actor::Key(who)
    }
}

/// Action names, as stored.
pub mod action {
    pub const CREATE: &str = "create";
    pub const APPEND: &str = "append";
    pub const SEAL: &str = "seal";
    pub const UPDATE: &str = "update";
    pub const CANCEL: &str = "cancel";
    pub const PAUSE: &str = "pause";
    pub const RESUME: &str = "resume";
    pub const PRIORITY: &str = "priority";
    pub const RETRY: &str = "retry";
    pub const FAIL: &str = "fail";
    pub const DELETE: &str = "delete";
    pub const FAILURE_THRESHOLD: &str = "failure_threshold";
    pub const DEADLINE: &str = "deadline";
    pub const LEASE_EXPIRY: &str = "lease_expiry";
    pub const RETENTION: &str = "retention";
}

/// Refuses a reason too long to keep.
pub fn check_reason(reason: &Option<String>) -> AppResult<()> {
    if reason.as_ref().is_some_and(|r| r.len() > MAX_TEXT) {
        return Err(bad_input(format!(
            "`reason` must be at most {MAX_TEXT} bytes"
        )));
    }
    Ok(())
}

/// Appends an entry to `task_id`'s trail inside `tx`, at `at` (the change's
/// time, so entries and the task agree).
pub async fn record(
    tx: &Writer,
    task_id: Uuid,
    at: i64,
    actor: impl Into<Actor>,
    action: &str,
    reason: Option<String>,
    details: Option<Value>,
) -> Result<(), DbErr> {
    let entry = entity::audit_entry::Model {
        id: Uuid::now_v7(),
        organisation_id: tx.org(),
        task_id,
        at,
        action: action.to_owned(),
        actor: actor.into().text(),
        reason: reason.filter(|r| !r.is_empty()),
        details: details.as_ref().map(Value::to_string),
    };
    audit::insert(tx, entry).await
}
