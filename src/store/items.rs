//! Queries on `task_items`. Writes are set-based: one statement per batch,
//! the rows passed as one JSON array that SQLite's `json_each` or
//! PostgreSQL's `jsonb_to_recordset` turns into a table.

use std::collections::HashMap;

use entity::task_item::{self, Column, Entity as Items};
use sea_orm::sea_query::{Alias, Asterisk, Expr, ExprTrait, Func, Order, Query, UnionType};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QuerySelect, Statement,
};
use serde::Serialize;
use uuid::Uuid;

use super::Scoped;
use super::page::{Page, SortValue, Window};
use crate::domain::status::ItemStatus;
use crate::error::AppResult;

/// Rows per insert or update statement: large enough to amortise the
/// statement, small enough to keep one JSON argument in the tens of MB.
const CHUNK: usize = 5_000;

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ItemFilter {
    pub status: Option<Vec<ItemStatus>>,
    pub client_item_id: Option<String>,
    pub error_code: Option<String>,
}

impl ItemFilter {
    /// Refuses lists too long to become bind parameters.
    pub fn check(&self) -> AppResult<()> {
        if self.status.as_ref().is_some_and(|l| l.len() > 100) {
            return Err(crate::error::limit_exceeded(
                "at most 100 statuses in a filter",
            ));
        }
        Ok(())
    }

    /// Whether the counters on the task row alone answer "how many match".
    pub fn counted_by_status_only(&self) -> bool {
        self.client_item_id.is_none() && self.error_code.is_none()
    }

    fn condition(&self) -> Condition {
        let mut c = Condition::all();
        if let Some(list) = &self.status {
            c = c.add(Column::Status.is_in(list.iter().map(|s| s.as_str())));
        }
        if let Some(id) = &self.client_item_id {
            c = c.add(Column::ClientItemId.eq(id.as_str()));
        }
        if let Some(code) = &self.error_code {
            c = c.add(Column::ErrorCode.eq(code.as_str()));
        }
        c
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ItemOrderField {
    Index,
    CreatedAt,
    UpdatedAt,
    FinishedAt,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ItemOrder {
    pub field: ItemOrderField,
    pub ascending: bool,
}

impl Default for ItemOrder {
    fn default() -> Self {
        ItemOrder {
            field: ItemOrderField::Index,
            ascending: true,
        }
    }
}

const NOT_YET: i64 = i64::MAX;

impl ItemOrder {
    pub fn tag(&self) -> &'static str {
        match self.field {
            ItemOrderField::Index => "item:INDEX",
            ItemOrderField::CreatedAt => "item:CREATED_AT",
            ItemOrderField::UpdatedAt => "item:UPDATED_AT",
            ItemOrderField::FinishedAt => "item:FINISHED_AT",
        }
    }

    fn sort_expr(&self) -> Expr {
        match self.field {
            ItemOrderField::Index => Expr::col(Column::Idx),
            ItemOrderField::CreatedAt => Expr::col(Column::CreatedAt),
            ItemOrderField::UpdatedAt => Expr::col(Column::UpdatedAt),
            ItemOrderField::FinishedAt => {
                Func::coalesce([Expr::col(Column::FinishedAt), Expr::val(NOT_YET)]).into()
            }
        }
    }

    pub fn sort_value(&self, item: &task_item::Model) -> SortValue {
        SortValue::Int(match self.field {
            ItemOrderField::Index => item.idx.into(),
            ItemOrderField::CreatedAt => item.created_at,
            ItemOrderField::UpdatedAt => item.updated_at,
            ItemOrderField::FinishedAt => item.finished_at.unwrap_or(NOT_YET),
        })
    }
}

pub async fn find(
    db: &Scoped<impl ConnectionTrait>,
    id: Uuid,
) -> Result<Option<task_item::Model>, DbErr> {
    Items::find_by_id(id)
        .filter(Column::OrganisationId.eq(db.org()))
        .one(db.conn())
        .await
}

pub async fn find_many(
    db: &Scoped<impl ConnectionTrait>,
    ids: &[Uuid],
) -> Result<Vec<task_item::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Items::find()
        .filter(Column::OrganisationId.eq(db.org()))
        .filter(Column::Id.is_in(ids.iter().copied()))
        .all(db.conn())
        .await
}

/// One page of items for each of several tasks, in one statement: a
/// `UNION ALL` of one index-ordered, limited branch per task, so each page
/// costs what its rows cost, however many items follow it.
pub async fn pages_for_tasks(
    db: &Scoped<impl ConnectionTrait>,
    task_ids: &[Uuid],
    filter: &ItemFilter,
    order: ItemOrder,
    window: &Window,
) -> AppResult<HashMap<Uuid, Page<task_item::Model>>> {
    let Some((first, rest)) = task_ids.split_first() else {
        return Ok(HashMap::new());
    };
    let sort = order.sort_expr();
    let id = Expr::col((Items, Column::Id));
    let direction = window.fetch_order(order.ascending);
    let backend = db.backend();
    let branch = |n: usize, task_id: Uuid| {
        let mut page = Query::select();
        page.column(Asterisk)
            .from(Items)
            .and_where(Column::OrganisationId.eq(db.org()))
            .and_where(Column::TaskId.eq(task_id))
            .cond_where(filter.condition())
            .order_by_expr(sort.clone(), direction.clone())
            .order_by(Column::Id, direction.clone())
            .limit(window.size + 1)
            .offset(window.offset);
        for c in window.conditions(&sort, &id, order.ascending) {
            page.and_where(c);
        }
        if let Some((from, to)) = positions(filter, order, window) {
            page.and_where(Column::Idx.gte(from))
                .and_where(Column::Idx.lt(to));
        }
        // SQLite allows no ORDER BY or LIMIT on a member of a compound select.
        let mut member = Query::select();
        match backend {
            DbBackend::Sqlite => {
                member.expr_as(Expr::cust(AGGREGATE_ITEMS_SQLITE), Alias::new("items"))
            }
            _ => member.column(Asterisk),
        };
        member
            .from_subquery(page, Alias::new(format!("p{n}")))
            .to_owned()
    };
    let mut statement = branch(0, *first);
    for (n, task_id) in rest.iter().enumerate() {
        statement.union(UnionType::All, branch(n + 1, *task_id));
    }
    let statement = backend.build(&statement);
    let rows = match backend {
        DbBackend::Sqlite => {
            let mut rows = Vec::new();
            for page in ItemsJson::find_by_statement(statement)
                .all(db.conn())
                .await?
            {
                let items: Vec<task_item::Model> = serde_json::from_str(&page.items)?;
                rows.extend(items);
            }
            rows
        }
        _ => {
            task_item::Model::find_by_statement(statement)
                .all(db.conn())
                .await?
        }
    };
    let mut grouped: HashMap<Uuid, Vec<task_item::Model>> = HashMap::new();
    for row in rows {
        grouped.entry(row.task_id).or_default().push(row);
    }
    let ascending = direction == Order::Asc;
    Ok(task_ids
        .iter()
        .map(|id| {
            let mut rows = grouped.remove(id).unwrap_or_default();
            // A compound select does not promise its members' order.
            rows.sort_by(|a, b| {
                let key = |i: &task_item::Model| (order.sort_value(i).as_i64(), i.id);
                if ascending {
                    key(a).cmp(&key(b))
                } else {
                    key(b).cmp(&key(a))
                }
            });
            (*id, window.finish(rows))
        })
        .collect())
}

/// One task's page of items as a JSON array.
#[derive(Debug, FromQueryResult)]
struct ItemsJson {
    items: String,
}

/// On SQLite a page's rows are built into one JSON array per task in the
/// database: a page of 50 tasks comes back as 50 rows rather than 1,000, so
/// sqlx's per-row hand-off from its worker thread and the per-column copies
/// and decoding are paid 50 times. UUIDs are blobs in SQLite, which JSON
/// cannot hold, hence `hex`. On PostgreSQL building JSON costs the database more than
/// plain rows cost the server, so it returns rows.
const AGGREGATE_ITEMS_SQLITE: &str = "json_group_array(json_object(\
     'id', lower(hex(id)), 'organisation_id', lower(hex(organisation_id)), \
     'task_id', lower(hex(task_id)), 'idx', idx, 'client_item_id', client_item_id, \
     'status', status, 'payload', payload, 'result', result, 'error_code', error_code, \
     'error_message', error_message, 'error_details', error_details, 'attempts', attempts, \
     'worker_id', worker_id, 'lease_token', lease_token, 'lease_expires_at', lease_expires_at, \
     'created_at', created_at, 'updated_at', updated_at, 'started_at', started_at, \
     'finished_at', finished_at))";

/// The positions a forward page in index order without a filter can hold.
/// Positions are dense (a task's items, rejected ones included, hold 0 to
/// total - 1, and items are never removed one by one), so the page is the
/// `offset + size + 1` positions after the cursor. The bound keeps the scan
/// to the page itself whatever the planner believes about the task's size;
/// on PostgreSQL, stale statistics of a freshly imported task otherwise
/// make it scan and sort the whole task for the first page.
fn positions(filter: &ItemFilter, order: ItemOrder, window: &Window) -> Option<(i64, i64)> {
    let plain = order == ItemOrder::default() && *filter == ItemFilter::default();
    if !plain || window.backward {
        return None;
    }
    let from = window.after.as_ref().map_or(0, |c| c.value.as_i64() + 1);
    let span = i64::try_from(window.offset + window.size + 1).ok()?;
    Some((from, from.checked_add(span)?))
}

#[derive(Debug, FromQueryResult)]
struct TaskCount {
    task_id: Uuid,
    n: i64,
}

/// How many items of each task match a filter the counters cannot answer.
pub async fn counts_for_tasks(
    db: &Scoped<impl ConnectionTrait>,
    task_ids: &[Uuid],
    filter: &ItemFilter,
) -> Result<HashMap<Uuid, i64>, DbErr> {
    let rows = Items::find()
        .select_only()
        .column(Column::TaskId)
        .column_as(Expr::cust("COUNT(*)"), "n")
        .filter(Column::OrganisationId.eq(db.org()))
        .filter(Column::TaskId.is_in(task_ids.iter().copied()))
        .filter(filter.condition())
        .group_by(Column::TaskId)
        .into_model::<TaskCount>()
        .all(db.conn())
        .await?;
    Ok(rows.into_iter().map(|r| (r.task_id, r.n)).collect())
}

#[derive(Debug, FromQueryResult)]
pub struct ErrorCount {
    pub task_id: Uuid,
    pub code: String,
    pub n: i64,
    pub sample: String,
}

/// FAILED and REJECTED items grouped by error code, for several tasks.
pub async fn error_counts(
    db: &Scoped<impl ConnectionTrait>,
    task_ids: &[Uuid],
) -> Result<Vec<ErrorCount>, DbErr> {
    Items::find()
        .select_only()
        .column(Column::TaskId)
        .column_as(
            Expr::expr(Func::coalesce([
                Expr::col(Column::ErrorCode),
                Expr::val("UNKNOWN"),
            ])),
            "code",
        )
        .column_as(Expr::cust("COUNT(*)"), "n")
        .column_as(
            Expr::expr(Func::coalesce([
                Expr::col(Column::ErrorMessage).min(),
                Expr::val(""),
            ])),
            "sample",
        )
        .filter(Column::OrganisationId.eq(db.org()))
        .filter(Column::TaskId.is_in(task_ids.iter().copied()))
        .filter(Column::Status.is_in([ItemStatus::Failed.as_str(), ItemStatus::Rejected.as_str()]))
        .group_by(Column::TaskId)
        .group_by(Column::ErrorCode)
        .into_model::<ErrorCount>()
        .all(db.conn())
        .await
}

/// An item as admission decided it.
#[derive(Debug, Serialize)]
pub struct NewItem {
    pub id: String,
    pub idx: i32,
    pub client_item_id: Option<String>,
    pub status: ItemStatus,
    pub payload: Option<String>,
    pub error_code: Option<&'static str>,
    pub error_message: Option<String>,
    pub finished_at: Option<i64>,
}

impl NewItem {
    pub fn new_id() -> String {
        Uuid::now_v7().simple().to_string()
    }
}

fn json_rows<T: Serialize>(rows: &[T]) -> Result<String, DbErr> {
    serde_json::to_string(rows).map_err(|e| DbErr::Custom(format!("encoding rows: {e}")))
}

pub async fn insert(
    db: &Scoped<impl ConnectionTrait>,
    task_id: Uuid,
    now: i64,
    items: &[NewItem],
) -> Result<(), DbErr> {
    let backend = db.backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "INSERT INTO task_items (id, organisation_id, task_id, idx, client_item_id, status, payload, \
             error_code, error_message, attempts, created_at, updated_at, finished_at) \
             SELECT u.id, $1, $2, u.idx, u.client_item_id, u.status, u.payload, u.error_code, \
             u.error_message, 0, $3, $3, u.finished_at \
             FROM jsonb_to_recordset($4::jsonb) AS u(id uuid, idx integer, client_item_id text, \
             status text, payload text, error_code text, error_message text, finished_at bigint)"
        }
        _ => {
            "INSERT INTO task_items (id, organisation_id, task_id, idx, client_item_id, status, payload, \
             error_code, error_message, attempts, created_at, updated_at, finished_at) \
             SELECT unhex(value ->> 'id'), ?1, ?2, value ->> 'idx', value ->> 'client_item_id', \
             value ->> 'status', value ->> 'payload', value ->> 'error_code', value ->> 'error_message', \
             0, ?3, ?3, value ->> 'finished_at' FROM json_each(?4)"
        }
    };
    for chunk in items.chunks(CHUNK) {
        let values: Vec<sea_orm::Value> = vec![
            db.org().into(),
            task_id.into(),
            now.into(),
            json_rows(chunk)?.into(),
        ];
        db.conn()
            .execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    Ok(())
}

/// What a report needs to know about an item; payloads stay in the table.
#[derive(Clone, Debug, FromQueryResult)]
pub struct ItemState {
    pub id: Uuid,
    pub idx: i32,
    pub client_item_id: Option<String>,
    pub status: ItemStatus,
    pub result: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub error_details: Option<String>,
    pub attempts: i32,
    pub worker_id: Option<String>,
    pub lease_token: Option<String>,
    pub lease_expires_at: Option<i64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// The columns of an `ItemState`.
pub const STATE_COLUMNS: [Column; 14] = [
    Column::Id,
    Column::Idx,
    Column::ClientItemId,
    Column::Status,
    Column::Result,
    Column::ErrorCode,
    Column::ErrorMessage,
    Column::ErrorDetails,
    Column::Attempts,
    Column::WorkerId,
    Column::LeaseToken,
    Column::LeaseExpiresAt,
    Column::StartedAt,
    Column::FinishedAt,
];

impl ItemState {
    /// The write that stores this state.
    pub fn change(&self) -> ItemChange {
        ItemChange {
            idx: self.idx,
            status: self.status,
            result: self.result.clone(),
            error_code: self.error_code.clone(),
            error_message: self.error_message.clone(),
            error_details: self.error_details.clone(),
            attempts: self.attempts,
            worker_id: self.worker_id.clone(),
            lease_token: self.lease_token.clone(),
            lease_expires_at: self.lease_expires_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
        }
    }
}

impl From<&task_item::Model> for ItemState {
    fn from(m: &task_item::Model) -> Self {
        ItemState {
            id: m.id,
            idx: m.idx,
            client_item_id: m.client_item_id.clone(),
            status: m.status,
            result: m.result.clone(),
            error_code: m.error_code.clone(),
            error_message: m.error_message.clone(),
            error_details: m.error_details.clone(),
            attempts: m.attempts,
            worker_id: m.worker_id.clone(),
            lease_token: m.lease_token.clone(),
            lease_expires_at: m.lease_expires_at,
            started_at: m.started_at,
            finished_at: m.finished_at,
        }
    }
}

/// The items of one task named by id, index or client id.
pub async fn states(
    db: &Scoped<impl ConnectionTrait>,
    task_id: Uuid,
    ids: &[Uuid],
    indexes: &[i32],
    client_ids: &[String],
) -> Result<Vec<ItemState>, DbErr> {
    let mut out = Vec::new();
    let select = || {
        Items::find()
            .select_only()
            .columns(STATE_COLUMNS)
            .filter(Column::OrganisationId.eq(db.org()))
            .filter(Column::TaskId.eq(task_id))
    };
    for chunk in ids.chunks(CHUNK) {
        let rows = select()
            .filter(Column::Id.is_in(chunk.iter().copied()))
            .into_model()
            .all(db.conn())
            .await?;
        out.extend(rows);
    }
    for chunk in indexes.chunks(CHUNK) {
        let rows = select()
            .filter(Column::Idx.is_in(chunk.iter().copied()))
            .into_model()
            .all(db.conn())
            .await?;
        out.extend(rows);
    }
    for chunk in client_ids.chunks(CHUNK) {
        let rows = select()
            .filter(Column::ClientItemId.is_in(chunk.iter().cloned()))
            .filter(Column::Status.ne(ItemStatus::Rejected.as_str()))
            .into_model()
            .all(db.conn())
            .await?;
        out.extend(rows);
    }
    Ok(out)
}

/// Client ids among `candidates` that accepted items of the task already use.
pub async fn taken_client_ids(
    db: &Scoped<impl ConnectionTrait>,
    task_id: Uuid,
    candidates: &[String],
) -> Result<Vec<String>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        client_item_id: Option<String>,
    }
    let mut out = Vec::new();
    for chunk in candidates.chunks(CHUNK) {
        let rows: Vec<Row> = Items::find()
            .select_only()
            .column(Column::ClientItemId)
            .filter(Column::OrganisationId.eq(db.org()))
            .filter(Column::TaskId.eq(task_id))
            .filter(Column::ClientItemId.is_in(chunk.iter().cloned()))
            .filter(Column::Status.ne(ItemStatus::Rejected.as_str()))
            .into_model()
            .all(db.conn())
            .await?;
        out.extend(rows.into_iter().filter_map(|r| r.client_item_id));
    }
    Ok(out)
}

/// The new state of an item after a report, a claim or an expiry.
#[derive(Debug, Serialize)]
pub struct ItemChange {
    pub idx: i32,
    pub status: ItemStatus,
    pub result: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub error_details: Option<String>,
    pub attempts: i32,
    pub worker_id: Option<String>,
    pub lease_token: Option<String>,
    pub lease_expires_at: Option<i64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// Writes many item changes of one task in one statement per chunk.
pub async fn apply(
    db: &Scoped<impl ConnectionTrait>,
    task_id: Uuid,
    now: i64,
    changes: &[ItemChange],
) -> Result<(), DbErr> {
    let backend = db.backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "UPDATE task_items AS t SET status = u.status, result = u.result, error_code = u.error_code, \
             error_message = u.error_message, error_details = u.error_details, attempts = u.attempts, \
             worker_id = u.worker_id, lease_token = u.lease_token, lease_expires_at = u.lease_expires_at, \
             started_at = u.started_at, finished_at = u.finished_at, updated_at = $1 \
             FROM jsonb_to_recordset($2::jsonb) AS u(idx integer, status text, result text, error_code text, \
             error_message text, error_details text, attempts integer, worker_id text, lease_token text, \
             lease_expires_at bigint, started_at bigint, finished_at bigint) \
             WHERE t.organisation_id = $4 AND t.task_id = $3 AND t.idx = ANY($5::integer[]) \
             AND t.idx = u.idx"
        }
        _ => {
            // Materialising the rows first makes SQLite loop over them and
            // look each item up by (task_id, idx), instead of scanning the
            // whole task once per row.
            "WITH u AS MATERIALIZED (SELECT CAST(value ->> 'idx' AS INTEGER) AS idx, \
             value ->> 'status' AS status, value ->> 'result' AS result, \
             value ->> 'error_code' AS error_code, value ->> 'error_message' AS error_message, \
             value ->> 'error_details' AS error_details, value ->> 'attempts' AS attempts, \
             value ->> 'worker_id' AS worker_id, value ->> 'lease_token' AS lease_token, \
             value ->> 'lease_expires_at' AS lease_expires_at, value ->> 'started_at' AS started_at, \
             value ->> 'finished_at' AS finished_at FROM json_each(?2)) \
             UPDATE task_items SET status = u.status, result = u.result, error_code = u.error_code, \
             error_message = u.error_message, error_details = u.error_details, attempts = u.attempts, \
             worker_id = u.worker_id, lease_token = u.lease_token, lease_expires_at = u.lease_expires_at, \
             started_at = u.started_at, finished_at = u.finished_at, updated_at = ?1 \
             FROM u WHERE task_items.organisation_id = ?4 AND task_items.task_id = ?3 \
             AND task_items.idx = u.idx"
        }
    };
    for chunk in changes.chunks(CHUNK) {
        let mut values: Vec<sea_orm::Value> = vec![
            now.into(),
            json_rows(chunk)?.into(),
            task_id.into(),
            db.org().into(),
        ];
        if backend == DbBackend::Postgres {
            // The positions as an index condition: the planner then reads only
            // the batch's rows, whatever its (often stale) estimate of the task's size.
            let positions: Vec<String> = chunk.iter().map(|c| c.idx.to_string()).collect();
            values.push(format!("{{{}}}", positions.join(",")).into());
        }
        db.conn()
            .execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    Ok(())
}

/// Marks every PENDING item of a task CANCELLED; returns how many.
pub async fn cancel_pending(
    db: &Scoped<impl ConnectionTrait>,
    task_id: Uuid,
    now: i64,
) -> Result<i32, DbErr> {
    let result = Items::update_many()
        .col_expr(Column::Status, Expr::val(ItemStatus::Cancelled.as_str()))
        .col_expr(Column::UpdatedAt, Expr::val(now))
        .col_expr(Column::FinishedAt, Expr::val(now))
        .filter(Column::OrganisationId.eq(db.org()))
        .filter(Column::TaskId.eq(task_id))
        .filter(Column::Status.eq(ItemStatus::Pending.as_str()))
        .exec(db.conn())
        .await?;
    Ok(result.rows_affected as i32)
}

/// Returns FAILED items of a task (all, or those with the given ids or error
/// codes) to PENDING with a fresh round of attempts; returns how many.
pub async fn retry_failed(
    db: &Scoped<impl ConnectionTrait>,
    task_id: Uuid,
    ids: Option<&[Uuid]>,
    codes: Option<&[String]>,
    now: i64,
) -> Result<i32, DbErr> {
    let mut query = Items::update_many()
        .col_expr(Column::Status, Expr::val(ItemStatus::Pending.as_str()))
        .col_expr(Column::UpdatedAt, Expr::val(now))
        .col_expr(Column::FinishedAt, Expr::val(Option::<i64>::None))
        .col_expr(Column::Attempts, Expr::val(0))
        .col_expr(Column::LeaseToken, Expr::val(Option::<String>::None))
        .col_expr(Column::LeaseExpiresAt, Expr::val(Option::<i64>::None))
        .filter(Column::OrganisationId.eq(db.org()))
        .filter(Column::TaskId.eq(task_id))
        .filter(Column::Status.eq(ItemStatus::Failed.as_str()));
    if let Some(ids) = ids {
        query = query.filter(Column::Id.is_in(ids.iter().copied()));
    }
    if let Some(codes) = codes {
        query = query.filter(Column::ErrorCode.is_in(codes.iter().cloned()));
    }
    Ok(query.exec(db.conn()).await?.rows_affected as i32)
}

/// FAILED and REJECTED items of a task as NDJSON, or None when there is no such task.
pub async fn failures_ndjson(
    db: &Scoped<impl ConnectionTrait>,
    task_id: Uuid,
) -> Result<Option<String>, DbErr> {
    use sea_orm::QueryOrder;
    if super::tasks::find(db, task_id).await?.is_none() {
        return Ok(None);
    }
    let mut out = String::new();
    let mut after = -1;
    loop {
        let rows = Items::find()
            .filter(Column::OrganisationId.eq(db.org()))
            .filter(Column::TaskId.eq(task_id))
            .filter(
                Column::Status.is_in([ItemStatus::Failed.as_str(), ItemStatus::Rejected.as_str()]),
            )
            .filter(Column::Idx.gt(after))
            .order_by_asc(Column::Idx)
            .limit(1000)
            .all(db.conn())
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.idx;
        for item in &rows {
            let line = serde_json::json!({
                "index": item.idx,
                "clientItemId": item.client_item_id,
                "status": item.status,
                "errorCode": item.error_code,
                "errorMessage": item.error_message,
                "attempts": item.attempts,
            });
            out.push_str(&line.to_string());
            out.push('\n');
        }
    }
    Ok(Some(out))
}

/// Which items a change touched.
#[derive(Clone, Copy, Debug)]
pub enum Touched<'a> {
    /// These positions.
    Listed(&'a [i32]),
    /// Every item written at the change's commit time (too many to list).
    At(i64),
    /// Every item written since a time: after the change bus lost events.
    Since(i64),
}

/// Up to `limit` items a change touched, after index `after`, in index order.
pub async fn changed(
    db: &Scoped<impl ConnectionTrait>,
    task_id: Uuid,
    touched: Touched<'_>,
    statuses: Option<&[ItemStatus]>,
    after: i32,
    limit: u64,
) -> Result<Vec<task_item::Model>, DbErr> {
    use sea_orm::QueryOrder;
    let mut query = Items::find()
        .filter(Column::OrganisationId.eq(db.org()))
        .filter(Column::TaskId.eq(task_id))
        .filter(Column::Idx.gt(after))
        .limit(limit);
    query = match touched {
        Touched::Listed([]) => return Ok(Vec::new()),
        Touched::Listed(list) => query.filter(Column::Idx.is_in(list.iter().copied())),
        Touched::At(at) => query.filter(Column::UpdatedAt.eq(at)),
        Touched::Since(at) => query.filter(Column::UpdatedAt.gte(at)),
    };
    if let Some(list) = statuses {
        query = query.filter(Column::Status.is_in(list.iter().copied()));
    }
    query.order_by_asc(Column::Idx).all(db.conn()).await
}

#[derive(Debug, FromQueryResult)]
pub struct RejectedRow {
    pub idx: i32,
    pub client_item_id: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// The items of a task refused at admission, in index order.
pub async fn rejected(
    db: &Scoped<impl ConnectionTrait>,
    task_id: Uuid,
) -> Result<Vec<RejectedRow>, DbErr> {
    use sea_orm::QueryOrder;
    Items::find()
        .select_only()
        .columns([
            Column::Idx,
            Column::ClientItemId,
            Column::ErrorCode,
            Column::ErrorMessage,
        ])
        .filter(Column::OrganisationId.eq(db.org()))
        .filter(Column::TaskId.eq(task_id))
        .filter(Column::Status.eq(ItemStatus::Rejected.as_str()))
        .order_by_asc(Column::Idx)
        .into_model()
        .all(db.conn())
        .await
}
