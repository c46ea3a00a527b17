//! Queries on `audit_entries`, always scoped by organisation (but for the
//! pruning by age, which crosses organisations).

use std::collections::HashMap;

use entity::audit_entry::{self, Column, Entity as Entries};
use sea_orm::sea_query::{Asterisk, Expr, ExprTrait, Order, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter};
use uuid::Uuid;

use super::page::{Page, SortValue, Window};
use super::{Scoped, System, nested};

/// Cursors of audit trails carry this tag.
pub const ORDER_TAG: &str = "audit:AT";

/// The value an entry's cursor carries.
pub fn sort_value(entry: &audit_entry::Model) -> SortValue {
    SortValue::Int(entry.at)
}

pub async fn insert(
    db: &Scoped<impl ConnectionTrait>,
    entry: audit_entry::Model,
) -> Result<(), DbErr> {
    let mut entry = sea_orm::IntoActiveModel::into_active_model(entry);
    entry.organisation_id = sea_orm::ActiveValue::Set(db.org());
    Entries::insert(entry)
        .exec_without_returning(db.conn())
        .await?;
    Ok(())
}

/// One page of each task's trail, newest first, in one statement.
pub async fn pages_for_tasks(
    db: &Scoped<impl ConnectionTrait>,
    task_ids: &[Uuid],
    window: &Window,
) -> Result<HashMap<Uuid, Page<audit_entry::Model>>, DbErr> {
    let at = Expr::col((Entries, Column::At));
    let id = Expr::col((Entries, Column::Id));
    let page = |task_id: &Uuid| {
        let mut page = Query::select();
        page.column(Asterisk)
            .from(Entries)
            .and_where(Column::OrganisationId.eq(db.org()))
            .and_where(Column::TaskId.eq(*task_id))
            .order_by(Column::At, Order::Desc)
            .order_by(Column::Id, Order::Desc)
            .limit(window.size + 1);
        for c in window.conditions(&at, &id, false) {
            page.and_where(c);
        }
        page
    };
    let Some(statement) = nested::union_all(task_ids.iter().map(page), nested::every_column) else {
        return Ok(HashMap::new());
    };
    let rows = audit_entry::Model::find_by_statement(db.backend().build(&statement))
        .all(db.conn())
        .await?;
    let newest_first = false;
    Ok(nested::pages_by_parent(
        task_ids,
        rows,
        |e| e.task_id,
        |e| (e.at, e.id),
        newest_first,
        window,
    ))
}

/// Removes entries of deleted tasks written before `before`, at most
/// `limit` of them; for the retention pruner. A live task keeps its trail.
pub async fn delete_before(
    db: &System<impl ConnectionTrait>,
    before: i64,
    limit: u64,
) -> Result<u64, DbErr> {
    let oldest = Query::select()
        .column(Column::Id)
        .from(Entries)
        .and_where(Column::At.lt(before))
        .and_where(
            Expr::col(Column::TaskId).not_in_subquery(
                Query::select()
                    .column(entity::bulk_task::Column::Id)
                    .from(entity::bulk_task::Entity)
                    .to_owned(),
            ),
        )
        .order_by(Column::At, Order::Asc)
        .limit(limit)
        .to_owned();
    let result = Entries::delete_many()
        .filter(Column::Id.in_subquery(oldest))
        .exec(db.conn())
        .await?;
    Ok(result.rows_affected)
}
