//! Reads behind exports: a task's items in index order, a page at a time.

use entity::task_item::{self, Column, Entity as Items};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::domain::status::ItemStatus;
use crate::store::Scoped;

/// The items of a task with an index in `from..to`, in index order, of the
/// given statuses (all when empty). Positions are dense, so a window holds
/// at most `to - from` rows and costs the same however deep it lies, even
/// when the planner, without statistics on a freshly filled table, reads
/// the index as a bitmap and sorts: an open-ended `idx > after` would then
/// sort the rest of the task for every page.
pub async fn export_page(
    db: &Scoped<impl ConnectionTrait>,
    task_id: Uuid,
    statuses: &[ItemStatus],
    from: i32,
    to: i32,
) -> Result<Vec<task_item::Model>, DbErr> {
    let mut query = Items::find()
        .filter(Column::OrganisationId.eq(db.org()))
        .filter(Column::TaskId.eq(task_id))
        .filter(Column::Idx.gte(from))
        .filter(Column::Idx.lt(to));
    if !statuses.is_empty() {
        query = query.filter(Column::Status.is_in(statuses.iter().map(|s| s.as_str())));
    }
    query.order_by_asc(Column::Idx).all(db.conn()).await
}
