//! Writes to `bulk_tasks`, and the task-level lock that orders them.
//!
//! Lock order on PostgreSQL, for every transaction that changes a task's
//! items: the task's advisory lock (shared for claims, reports and the
//! reaper, exclusive for everything else), then item rows, then the task
//! row last. Writers that take no advisory lock (lease renewals, the
//! pruner) also take items before the task row, so no cycle can form.

use entity::bulk_task::{self, Column, Entity as Tasks};
use sea_orm::sea_query::{Expr, ExprTrait, Func, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait,
    FromQueryResult, IntoActiveModel, QueryFilter, Statement,
};
use uuid::Uuid;

use super::visible;
use crate::domain::status::Counters;
use crate::store::Scoped;

/// How a transaction holds a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    /// Claims, reports and the reaper: they run side by side, each item
    /// guarded by its own row, and add their counter deltas to the row last.
    Shared,
    /// Every other change: it waits for the shared holders in flight, and
    /// new ones queue behind it, so it sees and changes a task at rest.
    Exclusive,
}

/// The advisory lock key of a task: its UUID folded to 64 bits. Two tasks
/// that share a key only queue behind each other; the lock order is the same.
fn key(id: Uuid) -> i64 {
    let (high, low) = id.as_u64_pair();
    (high ^ low) as i64
}

/// Takes the task's lock for this transaction, until it ends. PostgreSQL's
/// lock manager queues a shared request behind a waiting exclusive one, so
/// a steady stream of reports cannot starve a cancel. SQLite has a single
/// writer, which already orders everything.
pub async fn hold(db: &Scoped<impl ConnectionTrait>, id: Uuid, how: Hold) -> Result<(), DbErr> {
    if db.backend() != DbBackend::Postgres {
        return Ok(());
    }
    let sql = match how {
        Hold::Shared => "SELECT pg_advisory_xact_lock_shared($1)",
        Hold::Exclusive => "SELECT pg_advisory_xact_lock($1)",
    };
    let values: Vec<sea_orm::Value> = vec![key(id).into()];
    db.conn()
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?;
    Ok(())
}

pub async fn insert(
    db: &Scoped<impl ConnectionTrait>,
    task: bulk_task::Model,
) -> Result<(), DbErr> {
    let mut task = task.into_active_model();
    task.organisation_id = ActiveValue::Set(db.org());
    Tasks::insert(task)
        .exec_without_returning(db.conn())
        .await?;
    Ok(())
}

/// Writes back a task whose state the domain changed under the exclusive
/// hold; false when the pruner took it meanwhile. The heartbeat and the
/// prune mark are left as they are: renewals and the pruner write them
/// without the hold.
pub async fn save(
    db: &Scoped<impl ConnectionTrait>,
    task: &bulk_task::Model,
) -> Result<bool, DbErr> {
    let mut active = task.clone().into_active_model();
    active = active.reset_all();
    active.id = ActiveValue::Unchanged(task.id);
    active.organisation_id = ActiveValue::Unchanged(db.org());
    active.last_heartbeat_at = ActiveValue::NotSet;
    active.pruned_at = ActiveValue::NotSet;
    let result = Tasks::update_many()
        .set(active)
        .filter(Column::Id.eq(task.id))
        .filter(visible(db.org()))
        .exec(db.conn())
        .await?;
    Ok(result.rows_affected > 0)
}

/// Adds counter deltas to the task row in one statement, with a new
/// version and change time (never earlier than the last), and returns the
/// row as it now is; None when the task is gone. The row stays locked until
/// the transaction ends, so versions follow commit order.
pub async fn add_counters(
    db: &Scoped<impl ConnectionTrait>,
    id: Uuid,
    delta: &Counters,
    now: i64,
    heartbeat: bool,
) -> Result<Option<bulk_task::Model>, DbErr> {
    let plus = |c: Column, d: i32| (c, Expr::col(c).add(d));
    let mut statement = Query::update();
    statement
        .table(Tasks)
        .values([
            plus(Column::Total, delta.total),
            plus(Column::Pending, delta.pending),
            plus(Column::Running, delta.running),
            plus(Column::Succeeded, delta.succeeded),
            plus(Column::Failed, delta.failed),
            plus(Column::Skipped, delta.skipped),
            plus(Column::Rejected, delta.rejected),
            plus(Column::Cancelled, delta.cancelled),
            (Column::Version, Expr::col(Column::Version).add(1)),
            (
                Column::UpdatedAt,
                Func::greatest([Expr::col(Column::UpdatedAt), Expr::val(now)]).into(),
            ),
        ])
        .and_where(Column::Id.eq(id))
        .and_where(Column::OrganisationId.eq(db.org()))
        .and_where(Column::PrunedAt.is_null())
        .returning_all();
    if heartbeat {
        statement.value(Column::LastHeartbeatAt, now);
    }
    bulk_task::Model::find_by_statement(db.backend().build(&statement))
        .one(db.conn())
        .await
}

/// Stores what is derived from a task's counters (status, progress and the
/// start and finish times) on the row `add_counters` returned and locked.
pub async fn set_derived(
    db: &Scoped<impl ConnectionTrait>,
    task: &bulk_task::Model,
) -> Result<(), DbErr> {
    Tasks::update_many()
        .col_expr(Column::Status, Expr::val(task.status.as_str()))
        .col_expr(Column::Progress, Expr::val(task.progress))
        .col_expr(Column::StartedAt, Expr::val(task.started_at))
        .col_expr(Column::FinishedAt, Expr::val(task.finished_at))
        .filter(Column::Id.eq(task.id))
        .filter(Column::OrganisationId.eq(db.org()))
        .exec(db.conn())
        .await?;
    Ok(())
}

pub async fn delete(db: &Scoped<impl ConnectionTrait>, id: Uuid) -> Result<bool, DbErr> {
    // Items go first: SQLite enforces the cascade only with foreign keys on,
    // and an explicit delete costs the same.
    entity::task_item::Entity::delete_many()
        .filter(entity::task_item::Column::TaskId.eq(id))
        .filter(entity::task_item::Column::OrganisationId.eq(db.org()))
        .exec(db.conn())
        .await?;
    let result = Tasks::delete_many()
        .filter(Column::Id.eq(id))
        .filter(Column::OrganisationId.eq(db.org()))
        .exec(db.conn())
        .await?;
    Ok(result.rows_affected > 0)
}
