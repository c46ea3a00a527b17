//! Queries on `webhook_deliveries` for one organisation: the outbox writes,
//! the delivery log, redelivery. The dispatcher's statements, which work
//! across organisations, are in `webhook_dispatch`.

use std::collections::HashMap;

use entity::webhook_delivery::{self, Column, Entity as Deliveries};
use sea_orm::sea_query::{Asterisk, Expr, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter};
use uuid::Uuid;

use super::page::{Page, Window};
use super::{Scoped, by_id, nested};
use crate::domain::webhooks::{DeliveryStatus, WebhookEvent};
use crate::error::AppResult;

/// The order of delivery lists (newest first), named in their cursors.
pub const ORDER_TAG: &str = "webhook_delivery:CREATED_AT";

/// Statuses of deliveries still to be sent.
pub const OPEN: [&str; 2] = ["PENDING", "RETRYING"];

/// A delivery to write.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub message_id: String,
    pub event: WebhookEvent,
    pub task_id: Option<Uuid>,
    pub task_version: i64,
    pub body: String,
    pub status: DeliveryStatus,
    pub created_at: i64,
}

/// Writes deliveries due at once.
pub async fn insert(db: &Scoped<impl ConnectionTrait>, rows: &[NewDelivery]) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    let models = rows.iter().map(|r| {
        sea_orm::IntoActiveModel::into_active_model(webhook_delivery::Model {
            id: r.id,
            organisation_id: db.org(),
            endpoint_id: r.endpoint_id,
            message_id: r.message_id.clone(),
            event: r.event.as_str().to_owned(),
            task_id: r.task_id,
            task_version: r.task_version,
            body: r.body.clone(),
            status: r.status.as_str().to_owned(),
            attempts: 0,
            next_attempt_at: Some(r.created_at),
            last_response_status: None,
            last_response_body: None,
            last_error: None,
            last_duration_ms: None,
            created_at: r.created_at,
            delivered_at: None,
        })
    });
    Deliveries::insert_many(models)
        .exec_without_returning(db.conn())
        .await?;
    Ok(())
}

pub async fn find(
    db: &Scoped<impl ConnectionTrait>,
    id: Uuid,
) -> Result<Option<webhook_delivery::Model>, DbErr> {
    by_id::find::<Deliveries>(db, Column::OrganisationId.eq(db.org()), id).await
}

pub async fn find_many(
    db: &Scoped<impl ConnectionTrait>,
    ids: &[Uuid],
) -> Result<Vec<webhook_delivery::Model>, DbErr> {
    by_id::find_many::<Deliveries>(db, Column::OrganisationId.eq(db.org()), Column::Id, ids).await
}

/// Gives up the endpoint's deliveries still to be sent.
pub async fn fail_open(
    db: &Scoped<impl ConnectionTrait>,
    endpoint_id: Uuid,
    why: &str,
) -> Result<(), DbErr> {
    Deliveries::update_many()
        .col_expr(Column::Status, Expr::val(DeliveryStatus::Failed.as_str()))
        .col_expr(Column::NextAttemptAt, Expr::val(Option::<i64>::None))
        .col_expr(Column::LastError, Expr::val(why))
        .filter(Column::OrganisationId.eq(db.org()))
        .filter(Column::EndpointId.eq(endpoint_id))
        .filter(Column::Status.is_in(OPEN))
        .exec(db.conn())
        .await?;
    Ok(())
}

/// One page of deliveries, newest first, for each of several endpoints, in
/// one statement.
pub async fn pages_for_endpoints(
    db: &Scoped<impl ConnectionTrait>,
    endpoint_ids: &[Uuid],
    statuses: Option<&[DeliveryStatus]>,
    window: &Window,
) -> AppResult<HashMap<Uuid, Page<webhook_delivery::Model>>> {
    let sort = Expr::col((Deliveries, Column::CreatedAt));
    let id = Expr::col((Deliveries, Column::Id));
    let direction = window.fetch_order(false);
    let page = |endpoint_id: &Uuid| {
        let mut page = Query::select();
        page.column(Asterisk)
            .from(Deliveries)
            .and_where(Column::OrganisationId.eq(db.org()))
            .and_where(Column::EndpointId.eq(*endpoint_id))
            .order_by(Column::CreatedAt, direction.clone())
            .order_by(Column::Id, direction.clone())
            .limit(window.size + 1)
            .offset(window.offset);
        if let Some(statuses) = statuses {
            page.and_where(Column::Status.is_in(statuses.iter().map(|s| s.as_str())));
        }
        for c in window.conditions(&sort, &id, false) {
            page.and_where(c);
        }
        page
    };
    let Some(statement) = nested::union_all(endpoint_ids.iter().map(page), nested::every_column)
    else {
        return Ok(HashMap::new());
    };
    let rows = webhook_delivery::Model::find_by_statement(db.backend().build(&statement))
        .all(db.conn())
        .await?;
    Ok(nested::pages_by_parent(
        endpoint_ids,
        rows,
        |d| d.endpoint_id,
        |d| (d.created_at, d.id),
        direction == sea_orm::Order::Asc,
        window,
    ))
}
