use sea_orm::entity::prelude::*;

pub use crate::status::TaskStatus;

/// A bulk task with its counters. Counters change in the same transaction as
/// the items they count; `status` and `progress` are derived from them and
/// stored only so that filters and orders can use indexes.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "bulk_tasks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organisation_id: Uuid,
    pub task_type: String,
    pub description: Option<String>,
    pub status: TaskStatus,
    pub sealed: bool,
    pub cancel_requested: bool,
    pub total: i32,
    pub pending: i32,
    pub running: i32,
    pub succeeded: i32,
    pub failed: i32,
    pub skipped: i32,
    pub rejected: i32,
    pub cancelled: i32,
    pub progress: f64,
    pub version: i64,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// JSON text.
    pub error_details: Option<String>,
    /// JSON text (an object).
    pub metadata: String,
    pub idempotency_key: Option<String>,
    /// SHA-256 of the creating request, to tell a retry from a conflicting reuse of its key.
    pub request_hash: Option<String>,
    pub max_attempts: i32,
    /// Unix epoch milliseconds, like every `*_at` column.
    pub created_at: i64,
    pub updated_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// JSON text: what the task handed back, set by `updateBulkTask`.
    pub result: Option<String>,
    /// JSON text: an array of `{name, url, contentType, sizeBytes, createdAt}`.
    pub artifacts: String,
    /// The latest claim, lease renewal or report on the task.
    pub last_heartbeat_at: Option<i64>,
    /// Seconds the task is kept after it finishes; the server's default when null, forever when 0.
    pub retain_for: Option<i64>,
    /// When the pruner began deleting the task; from then on no reader or writer sees it.
    pub pruned_at: Option<i64>,
    /// Claims hand out none of its items while set.
    pub paused: bool,
    /// Claims by type take higher first; -100 to 100.
    pub priority: i32,
    /// No item is handed out before this time.
    pub not_before: Option<i64>,
    /// Unfinished at this time, the task fails with DEADLINE_EXCEEDED.
    pub deadline: Option<i64>,
    /// JSON text: the failure policy as given, when any.
    pub failure_policy: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
