//! Queries of the pruner: which finished tasks are due, marking one, and
//! deleting its items in bounded batches before the task row itself.
//!
//! A task is due `retain_for` seconds (the server's default when null, never
//! when 0) after it finished. The conditions are written out so that the
//! planners use the partial indexes of migration 000005.

use entity::bulk_task::{Column, Entity as Tasks};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    QuerySelect, Statement,
};
use uuid::Uuid;

use super::{Scoped, System};

/// When finished tasks expire: `default_cutoff` is the finish time before
/// which a task without its own `retain_for` is due (None when the server
/// keeps such tasks forever); `now` applies to tasks with their own.
#[derive(Clone, Copy, Debug)]
pub struct Expiry {
    pub now: i64,
    pub default_cutoff: Option<i64>,
}

#[derive(Debug, FromQueryResult)]
pub struct DueTask {
    pub id: Uuid,
    pub organisation_id: Uuid,
    pub pruned_at: Option<i64>,
}

const BY_DEFAULT: &str =
    "finished_at IS NOT NULL AND retain_for IS NULL AND pruned_at IS NULL AND finished_at < ";
const BY_OWN: &str = "finished_at IS NOT NULL AND retain_for > 0 AND pruned_at IS NULL \
                      AND finished_at + retain_for * 1000 < ";

/// Up to `limit` tasks of every organisation to prune: those a pruner
/// began and did not finish (an instance stopped midway) first, then
/// expired ones.
pub async fn due_tasks(
    db: &System<impl ConnectionTrait>,
    expiry: Expiry,
    limit: u64,
) -> Result<Vec<DueTask>, DbErr> {
    // sea-query numbers PostgreSQL's custom placeholders itself.
    let param = match db.conn().get_database_backend() {
        DbBackend::Postgres => "$1",
        _ => "?",
    };
    let select = || {
        Tasks::find()
            .select_only()
            .columns([Column::Id, Column::OrganisationId, Column::PrunedAt])
            .limit(limit)
    };
    let mut due: Vec<DueTask> = select()
        .filter(Column::PrunedAt.is_not_null())
        .into_model()
        .all(db.conn())
        .await?;
    if let Some(cutoff) = expiry.default_cutoff {
        let rows: Vec<DueTask> = select()
            .filter(Expr::cust_with_values(
                format!("{BY_DEFAULT}{param}"),
                [cutoff],
            ))
            .into_model()
            .all(db.conn())
            .await?;
        due.extend(rows);
    }
    let rows: Vec<DueTask> = select()
        .filter(Expr::cust_with_values(
            format!("{BY_OWN}{param}"),
            [expiry.now],
        ))
        .into_model()
        .all(db.conn())
        .await?;
    due.extend(rows);
    due.truncate(limit as usize);
    Ok(due)
}

/// Marks a task as being pruned when it is still due (a retry may have
/// reopened it since the scan); returns its version and last change time.
/// The check and the mark are one statement, under the task's row lock.
pub async fn mark(
    db: &Scoped<impl ConnectionTrait>,
    id: Uuid,
    expiry: Expiry,
) -> Result<Option<(i64, i64)>, DbErr> {
    let backend = db.backend();
    let by_default = match expiry.default_cutoff {
        Some(_) => format!("({BY_DEFAULT}?)"),
        None => "FALSE".to_owned(),
    };
    let sql = format!(
        "UPDATE bulk_tasks SET pruned_at = ? WHERE id = ? AND organisation_id = ? \
         AND ({by_default} OR ({BY_OWN}?)) RETURNING version, updated_at"
    );
    let mut values: Vec<sea_orm::Value> = vec![expiry.now.into(), id.into(), db.org().into()];
    if let Some(cutoff) = expiry.default_cutoff {
        values.push(cutoff.into());
    }
    values.push(expiry.now.into());
    let row = db
        .conn()
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            placeholders(backend, &sql),
            values,
        ))
        .await?;
    row.map(|r| Ok((r.try_get("", "version")?, r.try_get("", "updated_at")?)))
        .transpose()
}

/// Deletes up to `limit` items of a marked task; returns how many. On
/// PostgreSQL rows another pruner holds are skipped, so instances share the
/// work instead of queueing on each other's locks.
pub async fn delete_items(
    db: &Scoped<impl ConnectionTrait>,
    task_id: Uuid,
    limit: u64,
) -> Result<u64, DbErr> {
    let backend = db.backend();
    let lock = match backend {
        DbBackend::Postgres => " FOR UPDATE SKIP LOCKED",
        _ => "",
    };
    let sql = format!(
        "DELETE FROM task_items WHERE id IN (SELECT id FROM task_items \
         WHERE organisation_id = ? AND task_id = ? LIMIT ?{lock})"
    );
    let values: Vec<sea_orm::Value> = vec![db.org().into(), task_id.into(), (limit as i64).into()];
    let result = db
        .conn()
        .execute_raw(Statement::from_sql_and_values(
            backend,
            placeholders(backend, &sql),
            values,
        ))
        .await?;
    Ok(result.rows_affected())
}

/// Deletes a marked task once it has no items left; false when it still
/// has some (another pruner's batch is in flight) or is already gone.
pub async fn delete_task(db: &Scoped<impl ConnectionTrait>, id: Uuid) -> Result<bool, DbErr> {
    let backend = db.backend();
    let sql = "DELETE FROM bulk_tasks WHERE id = ? AND organisation_id = ? \
               AND pruned_at IS NOT NULL \
               AND NOT EXISTS (SELECT 1 FROM task_items WHERE task_id = ? AND organisation_id = ?)";
    let values: Vec<sea_orm::Value> = vec![id.into(), db.org().into(), id.into(), db.org().into()];
    let result = db
        .conn()
        .execute_raw(Statement::from_sql_and_values(
            backend,
            placeholders(backend, sql),
            values,
        ))
        .await?;
    Ok(result.rows_affected() > 0)
}

/// `?` placeholders as the backend numbers them.
fn placeholders(backend: DbBackend, sql: &str) -> String {
    if backend != DbBackend::Postgres {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}
