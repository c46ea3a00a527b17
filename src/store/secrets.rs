//! Server secrets shared by every instance on one database.

use sea_orm::{ConnectionTrait, DbErr, Statement};

use super::System;

/// The secret named `name`: the stored one, or `candidate` stored now when
/// there is none. Instances starting at once agree: the first insert wins
/// and everyone reads it back.
pub async fn get_or_create(
    db: &System<impl ConnectionTrait>,
    name: &str,
    candidate: &str,
    now: i64,
) -> Result<String, DbErr> {
    let backend = db.conn().get_database_backend();
    db.conn()
        .execute_raw(Statement::from_sql_and_values(
            backend,
            match backend {
                sea_orm::DbBackend::Postgres => {
                    "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO NOTHING"
                }
                _ => {
                    "INSERT INTO server_secrets (name, value, created_at) VALUES (?, ?, ?) \
                     ON CONFLICT (name) DO NOTHING"
                }
            },
            [name.into(), candidate.into(), now.into()],
        ))
        .await?;
    let row = db
        .conn()
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            match backend {
                sea_orm::DbBackend::Postgres => "SELECT value FROM server_secrets WHERE name = $1",
                _ => "SELECT value FROM server_secrets WHERE name = ?",
            },
            [name.into()],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("server secret {name}")))?;
    row.try_get::<String>("", "value")
}
