//! Organisations and API keys.

use entity::{api_key, organisation};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
    QueryOrder,
};
use uuid::Uuid;

pub async fn find_key_by_hash(
    db: &impl ConnectionTrait,
    hash: &str,
) -> Result<Option<api_key::Model>, DbErr> {
    api_key::Entity::find()
        .filter(api_key::Column::KeyHash.eq(hash))
        .one(db)
        .await
}

pub async fn touch_key(db: &impl ConnectionTrait, id: Uuid, now: i64) -> Result<(), DbErr> {
    api_key::Entity::update_many()
        .col_expr(api_key::Column::LastUsedAt, Expr::val(now))
        .filter(api_key::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn count_keys(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    api_key::Entity::find().count(db).await
}

pub async fn insert_key(db: &impl ConnectionTrait, key: api_key::Model) -> Result<(), DbErr> {
    api_key::Entity::insert(key.into_active_model())
        .exec_without_returning(db)
        .await?;
    Ok(())
}

pub async fn list_keys(db: &impl ConnectionTrait) -> Result<Vec<(api_key::Model, String)>, DbErr> {
    let keys = api_key::Entity::find()
        .order_by_asc(api_key::Column::CreatedAt)
        .all(db)
        .await?;
    let orgs = organisation::Entity::find().all(db).await?;
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

pub async fn revoke_key(db: &impl ConnectionTrait, id: Uuid, now: i64) -> Result<bool, DbErr> {
    let result = api_key::Entity::update_many()
        .col_expr(api_key::Column::RevokedAt, Expr::val(now))
        .filter(api_key::Column::Id.eq(id))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

pub async fn find_org_by_name(
    db: &impl ConnectionTrait,
    name: &str,
) -> Result<Option<organisation::Model>, DbErr> {
    organisation::Entity::find()
        .filter(organisation::Column::Name.eq(name))
        .one(db)
        .await
}

pub async fn insert_org(db: &impl ConnectionTrait, org: organisation::Model) -> Result<(), DbErr> {
    organisation::Entity::insert(org.into_active_model())
        .exec_without_returning(db)
        .await?;
    Ok(())
}
