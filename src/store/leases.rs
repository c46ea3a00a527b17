//! Queries behind claims, lease renewals and the reaper.

use entity::bulk_task::{self, Entity as Tasks};
use entity::task_item::{self, Column, Entity as Items};
use sea_orm::sea_query::{Expr, LockBehavior, LockType, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, Select,
};
use uuid::Uuid;

use super::items::{self, ItemState};
use super::{Scoped, System};
use crate::domain::status::{ItemStatus, TaskStatus};

/// On PostgreSQL, rows another transaction holds are skipped rather than
/// waited for, so concurrent claimers and reapers never take the same item.
fn skip_locked<E: EntityTrait>(db: &Scoped<impl ConnectionTrait>, query: Select<E>) -> Select<E> {
    match db.backend() {
        DbBackend::Postgres => query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked),
        _ => query,
    }
}

/// Unfinished tasks of these types that have pending items, oldest first.
pub async fn claimable_tasks(
    db: &Scoped<impl ConnectionTrait>,
    types: &[String],
    limit: u64,
) -> Result<Vec<Uuid>, DbErr> {
    let terminal: Vec<&str> = TaskStatus::TERMINAL.iter().map(|s| s.as_str()).collect();
    let tasks = Tasks::find()
        .select_only()
        .column(bulk_task::Column::Id)
        .filter(bulk_task::Column::OrganisationId.eq(db.org()))
        .filter(bulk_task::Column::TaskType.is_in(types.iter().cloned()))
        .filter(bulk_task::Column::Status.is_not_in(terminal))
        .filter(bulk_task::Column::CancelRequested.eq(false))
        .filter(bulk_task::Column::ErrorCode.is_null())
        .filter(bulk_task::Column::Pending.gt(0))
        .order_by_asc(bulk_task::Column::CreatedAt)
        .order_by_asc(bulk_task::Column::Id)
        .limit(limit)
        .into_tuple::<Uuid>()
        .all(db.conn())
        .await?;
    Ok(tasks)
}

/// The oldest pending items of a task, locked for the claim.
pub async fn pending_items(
    db: &Scoped<impl ConnectionTrait>,
    task_id: Uuid,
    limit: u64,
) -> Result<Vec<task_item::Model>, DbErr> {
    let query = Items::find()
        .filter(Column::OrganisationId.eq(db.org()))
        .filter(Column::TaskId.eq(task_id))
        .filter(Column::Status.eq(ItemStatus::Pending))
        .order_by_asc(Column::Idx)
        .limit(limit);
    skip_locked(db, query).all(db.conn()).await
}

/// Extends the leases among `tokens` whose items are still held (a lease
/// that ran out stays valid until the reaper takes the item back, exactly
/// as reports with it are still accepted); returns the tokens it extended
/// with their items' tasks.
pub async fn renew(
    db: &Scoped<impl ConnectionTrait>,
    tokens: &[String],
    expires_at: i64,
) -> Result<Vec<(String, Uuid)>, DbErr> {
    if tokens.is_empty() {
        return Ok(Vec::new());
    }
    let statement = Query::update()
        .table(Items)
        .value(Column::LeaseExpiresAt, expires_at)
        .and_where(Column::OrganisationId.eq(db.org()))
        .and_where(Column::LeaseToken.is_in(tokens.iter().cloned()))
        .and_where(Column::Status.eq(ItemStatus::Running.as_str()))
        .returning(Query::returning().columns([Column::LeaseToken, Column::TaskId]))
        .to_owned();
    let rows = db
        .conn()
        .query_all_raw(db.backend().build(&statement))
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let token = r.try_get::<String>("", "lease_token").ok()?;
            Some((token, r.try_get::<Uuid>("", "task_id").ok()?))
        })
        .collect())
}

/// Records a worker heartbeat on the tasks among `ids` whose last one is
/// older than `stale_before`; a recent one is left alone, so frequent
/// reports and renewals cost no extra write.
pub async fn heartbeat(
    db: &Scoped<impl ConnectionTrait>,
    ids: &[Uuid],
    now: i64,
    stale_before: i64,
) -> Result<(), DbErr> {
    if ids.is_empty() {
        return Ok(());
    }
    Tasks::update_many()
        .col_expr(bulk_task::Column::LastHeartbeatAt, Expr::val(now))
        .filter(super::tasks::visible(db.org()))
        .filter(bulk_task::Column::Id.is_in(ids.iter().copied()))
        .filter(
            Condition::any()
                .add(bulk_task::Column::LastHeartbeatAt.is_null())
                .add(bulk_task::Column::LastHeartbeatAt.lt(stale_before)),
        )
        .exec(db.conn())
        .await?;
    Ok(())
}

#[derive(Debug, FromQueryResult)]
pub struct ExpiredTask {
    pub task_id: Uuid,
    pub organisation_id: Uuid,
}

/// Tasks that hold at least one expired lease.
pub async fn tasks_with_expired_leases(
    db: &System<impl ConnectionTrait>,
    now: i64,
    limit: u64,
) -> Result<Vec<ExpiredTask>, DbErr> {
    Items::find()
        .select_only()
        .column(Column::TaskId)
        .column(Column::OrganisationId)
        // Written out, not bound, so that the planner can use the partial
        // index of RUNNING items' lease expiries.
        .filter(Expr::cust("status = 'RUNNING'"))
        .filter(Column::LeaseExpiresAt.lt(now))
        .group_by(Column::TaskId)
        .group_by(Column::OrganisationId)
        .limit(limit)
        .into_model::<ExpiredTask>()
        .all(db.conn())
        .await
}

/// The expired items of a task, locked for the reaper.
pub async fn expired_items(
    db: &Scoped<impl ConnectionTrait>,
    task_id: Uuid,
    now: i64,
) -> Result<Vec<ItemState>, DbErr> {
    let query = Items::find()
        .select_only()
        .columns(items::STATE_COLUMNS)
        .filter(Column::OrganisationId.eq(db.org()))
        .filter(Column::TaskId.eq(task_id))
        .filter(Column::Status.eq(ItemStatus::Running.as_str()))
        .filter(Column::LeaseExpiresAt.lt(now));
    skip_locked(db, query).into_model().all(db.conn()).await
}
