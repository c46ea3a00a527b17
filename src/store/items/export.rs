//! Reads behind exports: a task's items in index order, a page at a time.

use entity::task_item::{self, Column, Entity as Items};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::domain::status::ItemStatus;
use crate::store::Scoped;

/// Up to `limit` items of a task after index `after`, in index order, of
/// the given statuses (all when empty). Keyset on `(task_id, idx)`, so every
/// page costs the same however deep the export is.
pub async fn export_page(
    db: &Scoped<impl ConnectionTrait>,
    task_id: Uuid,
    statuses: &[ItemStatus],
    after: i32,
    limit: u64,
) -> Result<Vec<task_item::Model>, DbErr> {
    let mut query = Items::find()
        .filter(Column::OrganisationId.eq(db.org()))
        .filter(Column::TaskId.eq(task_id))
        .filter(Column::Idx.gt(after));
    if !statuses.is_empty() {
        query = query.filter(Column::Status.is_in(statuses.iter().map(|s| s.as_str())));
    }
    query
        .order_by_asc(Column::Idx)
        .limit(limit)
        .all(db.conn())
        .await
}
