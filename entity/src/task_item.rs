use sea_orm::entity::prelude::*;

pub use crate::status::ItemStatus;

/// One item of a bulk task and its outcome. Deserialisable because item
/// pages arrive aggregated as one JSON array per task.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Deserialize)]
#[sea_orm(table_name = "task_items")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organisation_id: Uuid,
    pub task_id: Uuid,
    /// Zero-based position in the submission order.
    pub idx: i32,
    pub client_item_id: Option<String>,
    pub status: ItemStatus,
    /// JSON text.
    pub payload: Option<String>,
    /// JSON text.
    pub result: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// JSON text.
    pub error_details: Option<String>,
    pub attempts: i32,
    pub worker_id: Option<String>,
    pub lease_token: Option<String>,
    /// Unix epoch milliseconds, like every `*_at` column.
    pub lease_expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
