//! The deadline timer's scan, across organisations.

use entity::bulk_task::{Column, Entity as Tasks};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter};
use sea_orm::{QueryOrder, QuerySelect};
use uuid::Uuid;

use super::System;

#[derive(Debug, FromQueryResult)]
pub struct OverdueTask {
    pub id: Uuid,
    pub organisation_id: Uuid,
}

/// Unfinished tasks, not already stopping, whose deadline passed by `now`,
/// earliest first. The predicate is the `bulk_tasks_deadline` partial
/// index's, written out so that the planner uses it.
pub async fn overdue(
    db: &System<impl ConnectionTrait>,
    now: i64,
    limit: u64,
) -> Result<Vec<OverdueTask>, DbErr> {
    Tasks::find()
        .select_only()
        .column(Column::Id)
        .column(Column::OrganisationId)
        .filter(Expr::cust(
            "deadline IS NOT NULL AND finished_at IS NULL AND error_code IS NULL AND NOT cancel_requested",
        ))
        .filter(Column::Deadline.lte(now))
        .order_by_asc(Column::Deadline)
        .limit(limit)
        .into_model::<OverdueTask>()
        .all(db.conn())
        .await
}
