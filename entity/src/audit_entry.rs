use sea_orm::entity::prelude::*;

/// One entry of a task's audit trail: who changed the task, how and why.
/// Entries outlive their task (no foreign key) until retention removes them.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_entries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organisation_id: Uuid,
    pub task_id: Uuid,
    /// Unix epoch milliseconds.
    pub at: i64,
    /// What was done, e.g. `pause` or `failure_threshold`.
    pub action: String,
    /// `system`, or the API key's id and prefix.
    pub actor: String,
    pub reason: Option<String>,
    /// JSON text (an object).
    pub details: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
