//! Rows by id, for the tables keyed by a UUID. The caller names the rows its
//! organisation may see, so the organisation filter stays in each table's
//! module beside its other statements.

use sea_orm::sea_query::IntoCondition;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PrimaryKeyTrait, QueryFilter};
use uuid::Uuid;

use super::Scoped;

/// The row `id`, if it is among the `visible` ones.
pub(super) async fn find<E>(
    db: &Scoped<impl ConnectionTrait>,
    visible: impl IntoCondition,
    id: Uuid,
) -> Result<Option<E::Model>, DbErr>
where
    E: EntityTrait,
    <E::PrimaryKey as PrimaryKeyTrait>::ValueType: From<Uuid>,
{
    E::find_by_id(id).filter(visible).one(db.conn()).await
}

/// The `visible` rows among `ids`, in no particular order; an empty list
/// costs no statement.
pub(super) async fn find_many<E: EntityTrait>(
    db: &Scoped<impl ConnectionTrait>,
    visible: impl IntoCondition,
    id_column: E::Column,
    ids: &[Uuid],
) -> Result<Vec<E::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    E::find()
        .filter(visible)
        .filter(id_column.is_in(ids.iter().copied()))
        .all(db.conn())
        .await
}
