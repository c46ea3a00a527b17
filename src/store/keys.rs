//! Organisations and API keys: read before a request has an organisation
//! (authentication) or across them (the CLI), hence `System` handles.

use entity::{api_key, organisation};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
    QueryOrder,
};
use uuid::Uuid;

use super::System;

pub async fn find_key_by_hash(
    db: &System<impl ConnectionTrait>,
    hash: &str,
) -> Result<Option<api_key::Model>, DbErr> {
    api_key::Entity::find()
        .filter(api_key::Column::KeyHash.eq(hash))
        .one(db.conn())
        .await
}

pub async fn touch_key(db: &System<impl ConnectionTrait>, id: Uuid, now: i64) -> Result<(), DbErr> {
    api_key::Entity::update_many()
        .col_expr(api_key::Column::LastUsedAt, Expr::val(now))
        .filter(api_key::Column::Id.eq(id))
        .exec(db.conn())
        .await?;
    Ok(())
}

pub async fn count_keys(db: &System<impl ConnectionTrait>) -> Result<u64, DbErr> {
    api_key::Entity::find().count(db.conn()).await
}

pub async fn insert_key(
    db: &System<impl ConnectionTrait>,
    key: api_key::Model,
) -> Result<(), DbErr> {
    api_key::Entity::insert(key.into_active_model())
        .exec_without_returning(db.conn())
        .await?;
    Ok(())
}

pub async fn list_keys(
    db: &System<impl ConnectionTrait>,
) -> Result<Vec<(api_key::Model, String)>, DbErr> {
    let keys = api_key::Entity::find()
        .order_by_asc(api_key::Column::CreatedAt)
        .all(db.conn())
        .await?;
    let orgs = organisation::Entity::find().all(db.conn()).await?;
    Ok(keys
        .into_iter()
        .map(|k| {
            let name = orgs
                .iter()
                .find(|o| o.id == k.organisation_id)
                .map(|o| o.name.clone())
                .unwrap_or_default();
            (k, name)
        })
        .collect())
}

pub async fn revoke_key(
    db: &System<impl ConnectionTrait>,
    id: Uuid,
    now: i64,
) -> Result<bool, DbErr> {
    let result = api_key::Entity::update_many()
        .col_expr(api_key::Column::RevokedAt, Expr::val(now))
        .filter(api_key::Column::Id.eq(id))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(db.conn())
        .await?;
    Ok(result.rows_affected > 0)
}

pub async fn find_org_by_name(
    db: &System<impl ConnectionTrait>,
    name: &str,
) -> Result<Option<organisation::Model>, DbErr> {
    organisation::Entity::find()
        .filter(organisation::Column::Name.eq(name))
        .one(db.conn())
        .await
}

pub async fn insert_org(
    db: &System<impl ConnectionTrait>,
    org: organisation::Model,
) -> Result<(), DbErr> {
    organisation::Entity::insert(org.into_active_model())
        .exec_without_returning(db.conn())
        .await?;
    Ok(())
}

pub async fn list_orgs(
    db: &System<impl ConnectionTrait>,
) -> Result<Vec<organisation::Model>, DbErr> {
    organisation::Entity::find()
        .order_by_asc(organisation::Column::CreatedAt)
        .all(db.conn())
        .await
}
