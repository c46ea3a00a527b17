//! Queries behind claims, lease renewals and the reaper.

use entity::bulk_task::{self, Entity as Tasks};
use entity::task_item::{self, Column, Entity as Items};
use sea_orm::sea_query::{
    Alias, Asterisk, Expr, ExprTrait, LockBehavior, LockType, Order, Query, UnionType,
};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, Select,
};
use uuid::Uuid;

use super::items::{self, ItemState};
use super::{Scoped, System};
use crate::domain::status::ItemStatus;

/// On PostgreSQL, rows another transaction holds are skipped rather than
/// waited for, so concurrent claimers and reapers never take the same item.
fn skip_locked<E: EntityTrait>(db: &Scoped<impl ConnectionTrait>, query: Select<E>) -> Select<E> {
    match db.backend() {
        DbBackend::Postgres => query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked),
        _ => query,
    }
}

/// The predicate of the `bulk_tasks_claimable` partial index, written out
/// word for word (not bound) so that both planners, and PostgreSQL's
/// generic plans, can prove a query lies within the index.
const CLAIMABLE: &str =
    "pending > 0 AND NOT paused AND NOT cancel_requested AND error_code IS NULL";

/// Tasks of these types that have pending items and are neither paused,
/// stopping nor scheduled after `now`: highest priority first, then oldest.
///
/// One limited, index-ordered branch per type under a `UNION ALL`, so a
/// claim reads at most `limit` index entries per type (plus the scheduled
/// ones it skips) and sorts at most `limit` rows per type, never the backlog.
pub async fn claimable_tasks(
    db: &Scoped<impl ConnectionTrait>,
    types: &[String],
    now: i64,
    limit: u64,
) -> Result<Vec<Uuid>, DbErr> {
    let Some((first, rest)) = types.split_first() else {
        return Ok(Vec::new());
    };
    let branch = |n: usize, task_type: &str| {
        let page = Query::select()
            .columns([
                bulk_task::Column::Id,
                bulk_task::Column::Priority,
                bulk_task::Column::CreatedAt,
            ])
            .from(Tasks)
            .and_where(bulk_task::Column::OrganisationId.eq(db.org()))
            .and_where(bulk_task::Column::TaskType.eq(task_type))
            .and_where(Expr::cust(CLAIMABLE))
            .and_where(
                bulk_task::Column::NotBefore
                    .is_null()
                    .or(bulk_task::Column::NotBefore.lte(now)),
            )
            .order_by(bulk_task::Column::Priority, Order::Desc)
            .order_by(bulk_task::Column::CreatedAt, Order::Asc)
            .order_by(bulk_task::Column::Id, Order::Asc)
            .limit(limit)
            .to_owned();
        // SQLite allows no ORDER BY or LIMIT on a member of a compound select.
        Query::select()
            .column(Asterisk)
            .from_subquery(page, Alias::new(format!("t{n}")))
            .to_owned()
    };
    let mut statement = branch(0, first);
    for (n, task_type) in rest.iter().enumerate() {
        statement.union(UnionType::All, branch(n + 1, task_type));
    }
    let mut rows: Vec<(Uuid, i32, i64)> = db
        .conn()
        .query_all_raw(db.backend().build(&statement))
        .await?
        .iter()
        .map(|row| {
            Ok((
                row.try_get::<Uuid>("", "id")?,
                row.try_get::<i32>("", "priority")?,
                row.try_get::<i64>("", "created_at")?,
            ))
        })
        .collect::<Result<_, DbErr>>()?;
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)).then(a.0.cmp(&b.0)));
    rows.truncate(limit as usize);
    Ok(rows.into_iter().map(|(id, _, _)| id).collect())
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
