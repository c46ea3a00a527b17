//! Item rows decoded straight from PostgreSQL's rows, by position.
//!
//! A nested page is about a thousand rows of nineteen columns. Through
//! SeaORM's model decoding each column is found by name and each NULL is
//! first an error whose message is formatted, then `None`: together a
//! quarter of the server's CPU on a page. Here the columns are selected in
//! the model's order and read by position with sqlx.

use entity::task_item::{self, Column};
use sea_orm::sqlx::Row;
use sea_orm::sqlx::postgres::PgRow;
use sea_orm::{DbErr, FromQueryResult, QueryResult, RuntimeErr};

use super::state_rows::status_of;

/// The model's columns, in the order `decode` reads them.
pub(super) const COLUMNS: [Column; 19] = [
    Column::Id,
    Column::OrganisationId,
    Column::TaskId,
    Column::Idx,
    Column::ClientItemId,
    Column::Status,
    Column::Payload,
    Column::Result,
    Column::ErrorCode,
    Column::ErrorMessage,
    Column::ErrorDetails,
    Column::Attempts,
    Column::WorkerId,
    Column::LeaseToken,
    Column::LeaseExpiresAt,
    Column::CreatedAt,
    Column::UpdatedAt,
    Column::StartedAt,
    Column::FinishedAt,
];

/// One item from a row that selected `COLUMNS`.
pub(super) fn decode(row: &QueryResult) -> Result<task_item::Model, DbErr> {
    match row.try_as_pg_row() {
        Some(row) => from_pg(row).map_err(|e| DbErr::Query(RuntimeErr::SqlxError(e.into()))),
        None => task_item::Model::from_query_result(row, ""),
    }
}

fn from_pg(row: &PgRow) -> Result<task_item::Model, sea_orm::sqlx::Error> {
    let status = status_of(row.try_get(5)?)?;
    Ok(task_item::Model {
        id: row.try_get(0)?,
        organisation_id: row.try_get(1)?,
        task_id: row.try_get(2)?,
        idx: row.try_get(3)?,
        client_item_id: row.try_get(4)?,
        status,
        payload: row.try_get(6)?,
        result: row.try_get(7)?,
        error_code: row.try_get(8)?,
        error_message: row.try_get(9)?,
        error_details: row.try_get(10)?,
        attempts: row.try_get(11)?,
        worker_id: row.try_get(12)?,
        lease_token: row.try_get(13)?,
        lease_expires_at: row.try_get(14)?,
        created_at: row.try_get(15)?,
        updated_at: row.try_get(16)?,
        started_at: row.try_get(17)?,
        finished_at: row.try_get(18)?,
    })
}
