//! Queries on `webhook_endpoints`, always scoped by organisation.

use entity::webhook_endpoint::{self, Column, Entity as Endpoints};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QuerySelect,
};
use uuid::Uuid;

use super::page::{Page, Window};
use super::{Scoped, by_id, keyset};
use crate::error::AppResult;

/// The order of endpoint lists, named in their cursors.
pub const ORDER_TAG: &str = "webhook_endpoint:CREATED_AT";

/// The organisation's enabled endpoints: the candidates of a change's deliveries.
pub async fn enabled(
    db: &Scoped<impl ConnectionTrait>,
) -> Result<Vec<webhook_endpoint::Model>, DbErr> {
    Endpoints::find()
        .filter(Column::OrganisationId.eq(db.org()))
        .filter(Column::Enabled.eq(true))
        .all(db.conn())
        .await
}

pub async fn count(db: &Scoped<impl ConnectionTrait>) -> Result<u64, DbErr> {
    Endpoints::find()
        .filter(Column::OrganisationId.eq(db.org()))
        .count(db.conn())
        .await
}

pub async fn insert(
    db: &Scoped<impl ConnectionTrait>,
    endpoint: webhook_endpoint::Model,
) -> Result<(), DbErr> {
    let mut endpoint = endpoint.into_active_model();
    endpoint.organisation_id = sea_orm::ActiveValue::Set(db.org());
    Endpoints::insert(endpoint)
        .exec_without_returning(db.conn())
        .await?;
    Ok(())
}

/// Reads an endpoint for an update, locking its row on PostgreSQL.
pub async fn lock(
    db: &Scoped<impl ConnectionTrait>,
    id: Uuid,
) -> Result<Option<webhook_endpoint::Model>, DbErr> {
    let query = Endpoints::find_by_id(id).filter(Column::OrganisationId.eq(db.org()));
    match db.backend() {
        DbBackend::Postgres => query.lock_exclusive().one(db.conn()).await,
        _ => query.one(db.conn()).await,
    }
}

pub async fn find_many(
    db: &Scoped<impl ConnectionTrait>,
    ids: &[Uuid],
) -> Result<Vec<webhook_endpoint::Model>, DbErr> {
    by_id::find_many::<Endpoints>(db, Column::OrganisationId.eq(db.org()), Column::Id, ids).await
}

/// One page of endpoints, oldest first.
pub async fn page(
    db: &Scoped<impl ConnectionTrait>,
    window: &Window,
) -> AppResult<Page<webhook_endpoint::Model>> {
    let query = Endpoints::find().filter(Column::OrganisationId.eq(db.org()));
    let oldest_first = true;
    let created_at = Expr::col((Endpoints, Column::CreatedAt));
    Ok(keyset::page(db, query, created_at, Column::Id, oldest_first, window).await?)
}

pub async fn save(
    db: &Scoped<impl ConnectionTrait>,
    endpoint: &webhook_endpoint::Model,
) -> Result<(), DbErr> {
    let mut active = endpoint.clone().into_active_model().reset_all();
    active.id = sea_orm::ActiveValue::Unchanged(endpoint.id);
    active.organisation_id = sea_orm::ActiveValue::Unchanged(db.org());
    Endpoints::update_many()
        .set(active)
        .filter(Column::Id.eq(endpoint.id))
        .filter(Column::OrganisationId.eq(db.org()))
        .exec(db.conn())
        .await?;
    Ok(())
}

/// Deletes an endpoint and its delivery log.
pub async fn delete(db: &Scoped<impl ConnectionTrait>, id: Uuid) -> Result<bool, DbErr> {
    use entity::webhook_delivery::{Column as D, Entity as Deliveries};
    Deliveries::delete_many()
        .filter(D::OrganisationId.eq(db.org()))
        .filter(D::EndpointId.eq(id))
        .exec(db.conn())
        .await?;
    let gone = Endpoints::delete_many()
        .filter(Column::OrganisationId.eq(db.org()))
        .filter(Column::Id.eq(id))
        .exec(db.conn())
        .await?;
    Ok(gone.rows_affected > 0)
}
