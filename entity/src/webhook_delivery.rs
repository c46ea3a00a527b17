use sea_orm::entity::prelude::*;

/// One message to one endpoint, written in the transaction of the change it
/// reports (the outbox), then claimed, sent and recorded by the dispatcher.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organisation_id: Uuid,
    pub endpoint_id: Uuid,
    /// The `webhook-id` header: the same for every attempt and redelivery.
    pub message_id: String,
    /// `TASK_FINISHED`, `TASK_STATUS_CHANGED` or `TASK_CREATED`.
    pub event: String,
    /// `None` for a test delivery.
    pub task_id: Option<Uuid>,
    pub task_version: i64,
    /// The exact JSON body sent (and signed).
    pub body: String,
    /// `PENDING`, `RETRYING`, `SUCCEEDED` or `FAILED`.
    pub status: String,
    /// Attempts claimed so far, the one in flight included.
    pub attempts: i32,
    /// When the next attempt is due (while claimed: when the claim runs out).
    pub next_attempt_at: Option<i64>,
    pub last_response_status: Option<i32>,
    /// The start of the last response's body, at most 1 KiB.
    pub last_response_body: Option<String>,
    pub last_error: Option<String>,
    pub last_duration_ms: Option<i32>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
