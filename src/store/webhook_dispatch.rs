//! The dispatcher's statements. It serves every organisation, so these
//! take `System` handles: claiming due deliveries, recording attempts, and
//! the health of endpoints.

use entity::webhook_delivery::{self, Column, Entity as Deliveries};
use entity::webhook_endpoint::{self, Column as E, Entity as Endpoints};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    QuerySelect, Statement,
};
use uuid::Uuid;

use super::System;
use super::webhook_deliveries::OPEN;
use crate::domain::webhooks::DeliveryStatus;

/// Due deliveries whose endpoint is enabled and that no older snapshot of
/// the same task waits before (per endpoint, deliveries go in `version`
/// order). `{lock}` is `FOR UPDATE SKIP LOCKED` on PostgreSQL, so that
/// instances claiming at once never take the same row; SQLite has one writer.
const CLAIM: &str = "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = {p1}
WHERE id IN (
    SELECT d.id FROM webhook_deliveries d
    WHERE d.status IN ('PENDING', 'RETRYING') AND d.next_attempt_at <= {p2}
      AND d.endpoint_id IN (SELECT e.id FROM webhook_endpoints e WHERE e.enabled)
      AND NOT EXISTS (
          SELECT 1 FROM webhook_deliveries p
          WHERE p.endpoint_id = d.endpoint_id AND p.task_id = d.task_id
            AND p.status IN ('PENDING', 'RETRYING') AND p.task_version < d.task_version)
    ORDER BY d.next_attempt_at
    LIMIT {p3}
    {lock})
RETURNING *";

/// Claims up to `limit` due deliveries for one attempt each: the attempt
/// is counted, and the row is not due again before `claimed_until`, when
/// an instance that died while sending has let it go.
pub async fn claim(
    db: &System<impl ConnectionTrait>,
    now: i64,
    claimed_until: i64,
    limit: u64,
) -> Result<Vec<webhook_delivery::Model>, DbErr> {
    let backend = db.conn().get_database_backend();
    if backend == DbBackend::Postgres {
        // A plan for this statement's values and the outbox as it is now.
        // The connection otherwise keeps the generic plan it settled on
        // while the outbox was nearly empty, which re-runs the locking
        // subquery for every row of the table: with a few thousand open
        // deliveries one claim took minutes, holding its row locks, and
        // every writer of deliveries and endpoints queued behind it until
        // the pool ran dry. The claim's transaction is the caller's.
        db.conn()
            .execute_unprepared("SET LOCAL plan_cache_mode = force_custom_plan")
            .await?;
    }
    let sql = match backend {
        DbBackend::Postgres => CLAIM
            .replace("{p1}", "$1")
            .replace("{p2}", "$2")
            .replace("{p3}", "$3")
            .replace("{lock}", "FOR UPDATE SKIP LOCKED"),
        _ => CLAIM
            .replace("{p1}", "?")
            .replace("{p2}", "?")
            .replace("{p3}", "?")
            .replace("{lock}", ""),
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    webhook_delivery::Model::find_by_statement(Statement::from_sql_and_values(
        backend,
        sql,
        [claimed_until.into(), now.into(), limit.into()],
    ))
    .all(db.conn())
    .await
}

pub async fn endpoints(
    db: &System<impl ConnectionTrait>,
    ids: &[Uuid],
) -> Result<Vec<webhook_endpoint::Model>, DbErr> {
    Endpoints::find()
        .filter(E::Id.is_in(ids.iter().copied()))
        .all(db.conn())
        .await
}

/// What one attempt came to.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<i64>,
    pub response_status: Option<i32>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub duration_ms: i32,
    pub delivered_at: Option<i64>,
}

/// Records attempt number `attempt` of a delivery; false when the claim
/// was lost meanwhile (another instance took the row over after the claim
/// ran out), and then nothing is written.
pub async fn record(
    db: &System<impl ConnectionTrait>,
    id: Uuid,
    attempt: i32,
    a: &Attempt,
) -> Result<bool, DbErr> {
    let done = Deliveries::update_many()
        .col_expr(Column::Status, Expr::val(a.status.as_str()))
        .col_expr(Column::NextAttemptAt, Expr::val(a.next_attempt_at))
        .col_expr(Column::LastResponseStatus, Expr::val(a.response_status))
        .col_expr(Column::LastResponseBody, Expr::val(a.response_body.clone()))
        .col_expr(Column::LastError, Expr::val(a.error.clone()))
        .col_expr(Column::LastDurationMs, Expr::val(a.duration_ms))
        .col_expr(Column::DeliveredAt, Expr::val(a.delivered_at))
        .filter(Column::Id.eq(id))
        .filter(Column::Attempts.eq(attempt))
        .filter(Column::Status.is_in(OPEN))
        .exec(db.conn())
        .await?;
    Ok(done.rows_affected == 1)
}

/// A delivery succeeded: the endpoint is healthy again.
pub async fn endpoint_succeeded(db: &System<impl ConnectionTrait>, id: Uuid) -> Result<(), DbErr> {
    Endpoints::update_many()
        .col_expr(E::FailingSince, Expr::val(Option::<i64>::None))
        .filter(E::Id.eq(id))
        .filter(E::FailingSince.is_not_null())
        .exec(db.conn())
        .await?;
    Ok(())
}

/// An attempt failed: returns since when the endpoint has failed every attempt.
pub async fn endpoint_failed(
    db: &System<impl ConnectionTrait>,
    id: Uuid,
    now: i64,
) -> Result<Option<i64>, DbErr> {
    Endpoints::update_many()
        .col_expr(E::FailingSince, Expr::val(now))
        .filter(E::Id.eq(id))
        .filter(E::FailingSince.is_null())
        .exec(db.conn())
        .await?;
    let since: Option<Option<i64>> = Endpoints::find_by_id(id)
        .select_only()
        .column(E::FailingSince)
        .into_tuple()
        .one(db.conn())
        .await?;
    Ok(since.flatten())
}

/// Disables an endpoint and gives up its deliveries still to be sent.
pub async fn disable(
    db: &System<impl ConnectionTrait>,
    id: Uuid,
    reason: &str,
    now: i64,
) -> Result<(), DbErr> {
    Endpoints::update_many()
        .col_expr(E::Enabled, Expr::val(false))
        .col_expr(E::DisabledReason, Expr::val(reason))
        .col_expr(E::UpdatedAt, Expr::val(now))
        .filter(E::Id.eq(id))
        .filter(E::Enabled.eq(true))
        .exec(db.conn())
        .await?;
    Deliveries::update_many()
        .col_expr(Column::Status, Expr::val(DeliveryStatus::Failed.as_str()))
        .col_expr(Column::NextAttemptAt, Expr::val(Option::<i64>::None))
        .col_expr(Column::LastError, Expr::val(reason))
        .filter(Column::EndpointId.eq(id))
        .filter(Column::Status.is_in(OPEN))
        .exec(db.conn())
        .await?;
    Ok(())
}

#[derive(Debug, FromQueryResult)]
pub struct Backlog {
    pub pending: i64,
    pub retrying: i64,
    pub oldest_created_at: Option<i64>,
}

/// Deliveries still to be sent, over every organisation, for `/metrics`.
pub async fn backlog(db: &System<impl ConnectionTrait>) -> Result<Backlog, DbErr> {
    let backend = db.conn().get_database_backend();
    let row = Backlog::find_by_statement(Statement::from_string(
        backend,
        "SELECT
            CAST(COALESCE(SUM(CASE WHEN status = 'PENDING' THEN 1 ELSE 0 END), 0) AS BIGINT) AS pending,
            CAST(COALESCE(SUM(CASE WHEN status = 'RETRYING' THEN 1 ELSE 0 END), 0) AS BIGINT) AS retrying,
            MIN(created_at) AS oldest_created_at
         FROM webhook_deliveries WHERE status IN ('PENDING', 'RETRYING')",
    ))
    .all(db.conn())
    .await?
    .pop();
    Ok(row.unwrap_or(Backlog {
        pending: 0,
        retrying: 0,
        oldest_created_at: None,
    }))
}

/// Whether any delivery is due, read without a write lock.
pub async fn any_due(db: &System<impl ConnectionTrait>, now: i64) -> Result<bool, DbErr> {
    let found = Deliveries::find()
        .select_only()
        .column(Column::Id)
        .filter(Column::Status.is_in(OPEN))
        .filter(Column::NextAttemptAt.lte(now))
        .limit(1)
        .into_tuple::<Uuid>()
        .all(db.conn())
        .await?;
    Ok(!found.is_empty())
}
