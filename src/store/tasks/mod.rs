//! Queries on `bulk_tasks`, always scoped by organisation.

use entity::bulk_task::{self, Column, Entity as Tasks};
use sea_orm::IdenStatic;
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use std::sync::OnceLock;

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Statement, Value,
};
use uuid::Uuid;

use super::{Scoped, by_id, keyset};

mod write;
use super::page::{Page, SortValue, Window};
use crate::domain::status::{Counters, TaskStatus};
use crate::error::AppResult;
pub use write::*;

/// Which tasks a list or a stats query covers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskFilter {
    pub status: Option<Vec<TaskStatus>>,
    pub types: Option<Vec<String>>,
    pub finished: Option<bool>,
    pub has_failures: Option<bool>,
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
    pub updated_after: Option<i64>,
    pub started_after: Option<i64>,
    pub search: Option<String>,
    /// A JSON object every key and value of which the task's metadata has
    /// (nested objects match as subsets).
    pub metadata: Option<serde_json::Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskOrderField {
    CreatedAt,
    UpdatedAt,
    FinishedAt,
    Total,
    Failed,
    Progress,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskOrder {
    pub field: TaskOrderField,
    pub ascending: bool,
}

impl Default for TaskOrder {
    fn default() -> Self {
        TaskOrder {
            field: TaskOrderField::UpdatedAt,
            ascending: false,
        }
    }
}

/// Sorts unfinished tasks after finished ones (ascending), so the order is total.
const NOT_YET: i64 = i64::MAX;

impl TaskOrder {
    /// Tags cursors so that one minted for another order is refused.
    pub fn tag(&self) -> &'static str {
        match self.field {
            TaskOrderField::CreatedAt => "task:CREATED_AT",
            TaskOrderField::UpdatedAt => "task:UPDATED_AT",
            TaskOrderField::FinishedAt => "task:FINISHED_AT",
            TaskOrderField::Total => "task:TOTAL",
            TaskOrderField::Failed => "task:FAILED",
            TaskOrderField::Progress => "task:PROGRESS",
        }
    }

    pub fn float_valued(&self) -> bool {
        self.field == TaskOrderField::Progress
    }

    fn sort_expr(&self) -> Expr {
        match self.field {
            TaskOrderField::CreatedAt => Expr::col(Column::CreatedAt),
            TaskOrderField::UpdatedAt => Expr::col(Column::UpdatedAt),
            TaskOrderField::FinishedAt => {
                Func::coalesce([Expr::col(Column::FinishedAt), Expr::val(NOT_YET)]).into()
            }
            TaskOrderField::Total => Expr::col(Column::Total),
            TaskOrderField::Failed => Expr::col(Column::Failed),
            TaskOrderField::Progress => Expr::col(Column::Progress),
        }
    }

    /// The value a task has in this order, for its cursor.
    pub fn sort_value(&self, task: &bulk_task::Model) -> SortValue {
        match self.field {
            TaskOrderField::CreatedAt => SortValue::Int(task.created_at),
            TaskOrderField::UpdatedAt => SortValue::Int(task.updated_at),
            TaskOrderField::FinishedAt => SortValue::Int(task.finished_at.unwrap_or(NOT_YET)),
            TaskOrderField::Total => SortValue::Int(task.total.into()),
            TaskOrderField::Failed => SortValue::Int(task.failed.into()),
            TaskOrderField::Progress => SortValue::Float(task.progress),
        }
    }
}

impl TaskFilter {
    /// Refuses lists too long to become bind parameters.
    pub fn check(&self) -> AppResult<()> {
        let listed =
            self.status.as_ref().map_or(0, Vec::len) + self.types.as_ref().map_or(0, Vec::len);
        if listed > 100 {
            return Err(crate::error::limit_exceeded(
                "at most 100 statuses and types in a filter",
            ));
        }
        if let Some(subset) = &self.metadata {
            super::metadata::check(subset)?;
        }
        Ok(())
    }
}

fn statuses(list: &[TaskStatus]) -> Vec<&'static str> {
    list.iter().map(|s| s.as_str()).collect()
}

fn filter_condition(db: &Scoped<impl ConnectionTrait>, f: &TaskFilter) -> Condition {
    let mut c = visible(db.org());
    if let Some(list) = &f.status {
        c = c.add(Column::Status.is_in(statuses(list)));
    }
    if let Some(types) = &f.types {
        c = c.add(Column::TaskType.is_in(types.clone()));
    }
    if let Some(finished) = f.finished {
        let terminal = statuses(TaskStatus::TERMINAL);
        c = c.add(if finished {
            Column::Status.is_in(terminal)
        } else {
            Column::Status.is_not_in(terminal)
        });
    }
    if let Some(has) = f.has_failures {
        let failures = Expr::col(Column::Failed).add(Expr::col(Column::Rejected));
        c = c.add(if has { failures.gt(0) } else { failures.eq(0) });
    }
    if let Some(t) = f.created_after {
        c = c.add(Column::CreatedAt.gt(t));
    }
    if let Some(t) = f.created_before {
        c = c.add(Column::CreatedAt.lt(t));
    }
    if let Some(t) = f.updated_after {
        c = c.add(Column::UpdatedAt.gt(t));
    }
    if let Some(t) = f.started_after {
        c = c.add(Column::StartedAt.gt(t));
    }
    if let Some(text) = &f.search {
        let escaped = text
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let pattern = || LikeExpr::new(format!("%{escaped}%")).escape('\\');
        let lower = |col: Column| Expr::expr(Func::lower(Expr::col(col)));
        c = c.add(
            Condition::any()
                .add(lower(Column::Description).like(pattern()))
                .add(lower(Column::TaskType).like(pattern())),
        );
    }
    if let Some(subset) = &f.metadata {
        c = c.add(super::metadata::contains(db.backend(), subset));
    }
    c
}

/// The organisation's tasks that exist for readers and writers: a task the
/// pruner began deleting is gone.
pub(super) fn visible(org: Uuid) -> Condition {
    Condition::all()
        .add(Column::OrganisationId.eq(org))
        .add(Column::PrunedAt.is_null())
}

/// The task `id`, if the organisation may see it. The statement's text
/// never changes, so it is built once per backend and only its values are
/// bound: building it through sea-query each time was a tenth of the CPU of
/// a status poll, the request clients send most.
pub async fn find(
    db: &Scoped<impl ConnectionTrait>,
    id: Uuid,
) -> Result<Option<bulk_task::Model>, DbErr> {
    let backend = db.backend();
    let template = find_template(backend);
    let values = template.values.iter().flat_map(|v| &v.0).map(|v| match v {
        Value::Uuid(Some(slot)) if *slot == ID_SLOT => id.into(),
        Value::Uuid(Some(slot)) if *slot == ORGANISATION_SLOT => db.org().into(),
        other => other.clone(),
    });
    let statement = Statement::from_sql_and_values(backend, template.sql.as_str(), values);
    bulk_task::Model::find_by_statement(statement)
        .one(db.conn())
        .await
}

/// Stand-ins for the id and the organisation in the built statement.
const ID_SLOT: Uuid = Uuid::from_u128(1);
const ORGANISATION_SLOT: Uuid = Uuid::from_u128(2);

fn find_template(backend: DbBackend) -> &'static Statement {
    static SQLITE: OnceLock<Statement> = OnceLock::new();
    static POSTGRES: OnceLock<Statement> = OnceLock::new();
    let cell = match backend {
        DbBackend::Sqlite => &SQLITE,
        _ => &POSTGRES,
    };
    cell.get_or_init(|| {
        Tasks::find_by_id(ID_SLOT)
            .filter(visible(ORGANISATION_SLOT))
            .limit(1)
            .build(backend)
    })
}

pub async fn find_many(
    db: &Scoped<impl ConnectionTrait>,
    ids: &[Uuid],
) -> Result<Vec<bulk_task::Model>, DbErr> {
    by_id::find_many::<Tasks>(db, visible(db.org()), Column::Id, ids).await
}

/// The tasks among `ids` that match `filter`.
pub async fn find_matching(
    db: &Scoped<impl ConnectionTrait>,
    ids: &[Uuid],
    filter: &TaskFilter,
) -> Result<Vec<bulk_task::Model>, DbErr> {
    by_id::find_many::<Tasks>(db, filter_condition(db, filter), Column::Id, ids).await
}

pub async fn find_by_idempotency_key(
    db: &Scoped<impl ConnectionTrait>,
    key: &str,
) -> Result<Option<bulk_task::Model>, DbErr> {
    Tasks::find()
        .filter(visible(db.org()))
        .filter(Column::IdempotencyKey.eq(key))
        .one(db.conn())
        .await
}

/// One page of tasks.
pub async fn page(
    db: &Scoped<impl ConnectionTrait>,
    filter: &TaskFilter,
    order: TaskOrder,
    window: &Window,
) -> AppResult<Page<bulk_task::Model>> {
    let query = Tasks::find().filter(filter_condition(db, filter));
    let sort = order.sort_expr();
    Ok(keyset::page(db, query, sort, Column::Id, order.ascending, window).await?)
}

pub async fn count(db: &Scoped<impl ConnectionTrait>, filter: &TaskFilter) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    Tasks::find()
        .filter(filter_condition(db, filter))
        .count(db.conn())
        .await
}

#[derive(Debug, FromQueryResult)]
struct StatusRow {
    status: TaskStatus,
    tasks: i64,
    total: Option<i64>,
    pending: Option<i64>,
    running: Option<i64>,
    succeeded: Option<i64>,
    failed: Option<i64>,
    skipped: Option<i64>,
    rejected: Option<i64>,
    cancelled: Option<i64>,
}

/// Tasks per status and item counters summed over the filtered tasks, in one statement.
pub async fn stats(
    db: &Scoped<impl ConnectionTrait>,
    filter: &TaskFilter,
) -> Result<(Vec<(TaskStatus, i64)>, Counters), DbErr> {
    let sum = |c: Column| Expr::cust(format!("CAST(SUM({}) AS BIGINT)", c.as_str()));
    let rows = Tasks::find()
        .select_only()
        .column(Column::Status)
        .column_as(Expr::cust("COUNT(*)"), "tasks")
        .column_as(sum(Column::Total), "total")
        .column_as(sum(Column::Pending), "pending")
        .column_as(sum(Column::Running), "running")
        .column_as(sum(Column::Succeeded), "succeeded")
        .column_as(sum(Column::Failed), "failed")
        .column_as(sum(Column::Skipped), "skipped")
        .column_as(sum(Column::Rejected), "rejected")
        .column_as(sum(Column::Cancelled), "cancelled")
        .filter(filter_condition(db, filter))
        .group_by(Column::Status)
        .into_model::<StatusRow>()
        .all(db.conn())
        .await?;
    let mut by_status = Vec::new();
    let mut items = Counters::default();
    let n = |v: Option<i64>| i32::try_from(v.unwrap_or(0)).unwrap_or(i32::MAX);
    for row in rows {
        by_status.push((row.status, row.tasks));
        items.total += n(row.total);
        items.pending += n(row.pending);
        items.running += n(row.running);
        items.succeeded += n(row.succeeded);
        items.failed += n(row.failed);
        items.skipped += n(row.skipped);
        items.rejected += n(row.rejected);
        items.cancelled += n(row.cancelled);
    }
    by_status.sort_by_key(|(s, _)| TaskStatus::ALL.iter().position(|x| x == s));
    Ok((by_status, items))
}

/// Tasks matching `filter` changed at or after `since`, oldest change first.
pub async fn changed_since(
    db: &Scoped<impl ConnectionTrait>,
    filter: &TaskFilter,
    since: i64,
    limit: u64,
) -> Result<Vec<bulk_task::Model>, DbErr> {
    Tasks::find()
        .filter(filter_condition(db, filter))
        .filter(Column::UpdatedAt.gte(since))
        .order_by_asc(Column::UpdatedAt)
        .order_by_asc(Column::Id)
        .limit(limit)
        .all(db.conn())
        .await
}
