//! One page of a top-level list, by keyset: rows strictly between the
//! window's cursors, in the window's order, one more than the page.

use sea_orm::sea_query::Expr;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};

use super::Scoped;
use super::page::{Page, Window};

/// The window's page of `query` (which already filters by organisation),
/// sorted by `sort` and then by the table's `id` column.
pub(super) async fn page<E: EntityTrait>(
    db: &Scoped<impl ConnectionTrait>,
    mut query: Select<E>,
    sort: Expr,
    id: E::Column,
    ascending: bool,
    window: &Window,
) -> Result<Page<E::Model>, DbErr> {
    for c in window.conditions(&sort, &Expr::col((E::default(), id)), ascending) {
        query = query.filter(c);
    }
    let direction = window.fetch_order(ascending);
    let rows = query
        .order_by(sort, direction.clone())
        .order_by(id, direction)
        .offset(window.offset)
        .limit(window.size + 1)
        .all(db.conn())
        .await?;
    Ok(window.finish(rows))
}
