//! Nested item pages: one page for each of many tasks in one statement.

use std::collections::HashMap;

use entity::task_item::{self, Column, Entity as Items};
use sea_orm::sea_query::{Alias, Asterisk, Expr, Order, Query, SelectStatement};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, FromQueryResult};
use uuid::Uuid;

use crate::error::AppResult;
use crate::store::page::{Page, Window};
use crate::store::{Scoped, nested};

use super::pg_rows;

use super::{ItemFilter, ItemOrder};

/// One page of items for each of several tasks, in one statement.
pub async fn pages_for_tasks(
    db: &Scoped<impl ConnectionTrait>,
    task_ids: &[Uuid],
    filter: &ItemFilter,
    order: ItemOrder,
    window: &Window,
) -> AppResult<HashMap<Uuid, Page<task_item::Model>>> {
    let sort = order.sort_expr();
    let id = Expr::col((Items, Column::Id));
    let direction = window.fetch_order(order.ascending);
    let backend = db.backend();
    let page = |task_id: &Uuid| {
        let mut page = Query::select();
        page.column(Asterisk)
            .from(Items)
            .and_where(Column::OrganisationId.eq(db.org()))
            .and_where(Column::TaskId.eq(*task_id))
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
        page
    };
    let columns = |member: &mut SelectStatement| match backend {
        DbBackend::Sqlite => {
            member.expr_as(Expr::cust(AGGREGATE_ITEMS_SQLITE), Alias::new("items"));
        }
        _ => {
            member.columns(pg_rows::COLUMNS);
        }
    };
    let Some(statement) = nested::union_all(task_ids.iter().map(page), columns) else {
        return Ok(HashMap::new());
    };
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
        _ => db
            .conn()
            .query_all_raw(statement)
            .await?
            .iter()
            .map(pg_rows::decode)
            .collect::<Result<_, _>>()?,
    };
    Ok(nested::pages_by_parent(
        task_ids,
        rows,
        |i| i.task_id,
        |i| (order.sort_value(i).as_i64(), i.id),
        direction == Order::Asc,
        window,
    ))
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
