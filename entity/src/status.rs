//! The lifecycle values stored in the `status` columns, as SeaORM value
//! types: a row whose stored text is none of them fails to decode (and the
//! request gets INTERNAL) instead of passing for some default status.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A task's status, derived from its counters (see the domain's `derive_status`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    #[sea_orm(string_value = "QUEUED")]
    Queued,
    #[sea_orm(string_value = "RUNNING")]
    Running,
    #[sea_orm(string_value = "CANCELLING")]
    Cancelling,
    #[sea_orm(string_value = "COMPLETED")]
    Completed,
    #[sea_orm(string_value = "COMPLETED_WITH_FAILURES")]
    CompletedWithFailures,
    #[sea_orm(string_value = "FAILED")]
    Failed,
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
    /// Paused and not terminal: claims hand out none of its items.
    #[sea_orm(string_value = "PAUSED")]
    Paused,
}

/// An item's status.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ItemStatus {
    #[sea_orm(string_value = "PENDING")]
    Pending,
    #[sea_orm(string_value = "RUNNING")]
    Running,
    #[sea_orm(string_value = "SUCCEEDED")]
    Succeeded,
    #[sea_orm(string_value = "FAILED")]
    Failed,
    #[sea_orm(string_value = "SKIPPED")]
    Skipped,
    #[sea_orm(string_value = "REJECTED")]
    Rejected,
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
}

impl TaskStatus {
    pub const ALL: &'static [TaskStatus] = &[
        TaskStatus::Queued,
        TaskStatus::Running,
        TaskStatus::Cancelling,
        TaskStatus::Completed,
        TaskStatus::CompletedWithFailures,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
        TaskStatus::Paused,
    ];

    pub const TERMINAL: &'static [TaskStatus] = &[
        TaskStatus::Completed,
        TaskStatus::CompletedWithFailures,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
    ];

    pub fn is_terminal(self) -> bool {
        Self::TERMINAL.contains(&self)
    }

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "QUEUED",
            TaskStatus::Running => "RUNNING",
            TaskStatus::Cancelling => "CANCELLING",
            TaskStatus::Completed => "COMPLETED",
            TaskStatus::CompletedWithFailures => "COMPLETED_WITH_FAILURES",
            TaskStatus::Failed => "FAILED",
            TaskStatus::Cancelled => "CANCELLED",
            TaskStatus::Paused => "PAUSED",
        }
    }
}

impl ItemStatus {
    /// Final statuses never change again (but for an explicit retry of FAILED).
    pub fn is_final(self) -> bool {
        !matches!(self, ItemStatus::Pending | ItemStatus::Running)
    }

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Pending => "PENDING",
            ItemStatus::Running => "RUNNING",
            ItemStatus::Succeeded => "SUCCEEDED",
            ItemStatus::Failed => "FAILED",
            ItemStatus::Skipped => "SKIPPED",
            ItemStatus::Rejected => "REJECTED",
            ItemStatus::Cancelled => "CANCELLED",
        }
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for ItemStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
