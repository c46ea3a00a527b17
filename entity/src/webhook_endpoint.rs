use sea_orm::entity::prelude::*;

/// Where an organisation wants task events pushed, and how they are signed.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organisation_id: Uuid,
    pub url: String,
    pub description: Option<String>,
    /// Comma-separated event names, e.g. `TASK_FINISHED,TASK_CREATED`.
    pub events: String,
    /// JSON array of task types; `None` for every type.
    pub types: Option<String>,
    pub enabled: bool,
    /// The signing secret (`whsec_...`).
    pub secret: String,
    /// The secret before the last rotation, still signed with until `previous_secret_until`.
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<i64>,
    pub disabled_reason: Option<String>,
    /// When the current run of failed attempts began; `None` after a success.
    pub failing_since: Option<i64>,
    /// Unix epoch milliseconds, like every `*_at` column.
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
