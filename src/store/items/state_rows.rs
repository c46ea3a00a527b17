//! `ItemState`: what reports, claims and expiries read of an item and
//! write back, decoded from the database's rows by position.
//!
//! A report of 1,000 results reads 1,000 of these inside its transaction,
//! while SQLite's one writer waits. Through SeaORM's derived decoding each
//! column was found by name and each NULL was first an error with a
//! formatted message: a tenth of the server's CPU on such a report.

use entity::task_item::{self, Column};
use sea_orm::sqlx::Row;
use sea_orm::{ActiveEnum, DbErr, FromQueryResult, QueryResult, RuntimeErr, TryGetError};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::status::ItemStatus;

/// What a report needs to know about an item, and the write that stores it
/// after a report, a claim or an expiry (serialised as one row of a batch
/// UPDATE, which finds the item by `idx`); payloads stay in the table.
#[derive(Clone, Debug, Serialize)]
pub struct ItemState {
    #[serde(skip)]
    pub id: Uuid,
    pub idx: i32,
    #[serde(skip)]
    pub client_item_id: Option<String>,
    /// SQLite's rowid, where the read selected it (a report's states, see
    /// `sqlite_states`): the write then finds the row without searching an
    /// index.
    #[serde(skip)]
    pub rowid: Option<i64>,
    pub status: ItemStatus,
    pub result: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub error_details: Option<String>,
    pub attempts: i32,
    pub worker_id: Option<String>,
    pub lease_token: Option<String>,
    pub lease_expires_at: Option<i64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// The columns of an `ItemState`, in the order it is decoded from: every
/// query that reads one selects exactly these.
pub const STATE_COLUMNS: [Column; 14] = [
    Column::Id,
    Column::Idx,
    Column::ClientItemId,
    Column::Status,
    Column::Result,
    Column::ErrorCode,
    Column::ErrorMessage,
    Column::ErrorDetails,
    Column::Attempts,
    Column::WorkerId,
    Column::LeaseToken,
    Column::LeaseExpiresAt,
    Column::StartedAt,
    Column::FinishedAt,
];

/// An item's status from its column's text.
pub(super) fn status_of(text: String) -> Result<ItemStatus, sea_orm::sqlx::Error> {
    ItemStatus::try_from_value(&text)
        .map_err(|e| sea_orm::sqlx::Error::Decode(e.to_string().into()))
}

/// One state from a row of either database, read by position.
macro_rules! decode {
    ($row:expr) => {{
        let row = $row;
        (|| -> Result<ItemState, sea_orm::sqlx::Error> {
            let status = status_of(row.try_get(3)?)?;
            Ok(ItemState {
                id: row.try_get(0)?,
                idx: row.try_get(1)?,
                client_item_id: row.try_get(2)?,
                rowid: None,
                status,
                result: row.try_get(4)?,
                error_code: row.try_get(5)?,
                error_message: row.try_get(6)?,
                error_details: row.try_get(7)?,
                attempts: row.try_get(8)?,
                worker_id: row.try_get(9)?,
                lease_token: row.try_get(10)?,
                lease_expires_at: row.try_get(11)?,
                started_at: row.try_get(12)?,
                finished_at: row.try_get(13)?,
            })
        })()
    }};
}

impl FromQueryResult for ItemState {
    fn from_query_result(row: &QueryResult, _prefix: &str) -> Result<Self, DbErr> {
        let decoded = if let Some(row) = row.try_as_sqlite_row() {
            decode!(row)
        } else if let Some(row) = row.try_as_pg_row() {
            decode!(row)
        } else {
            return Err(DbErr::Custom(
                "item states are read from SQLite or PostgreSQL".into(),
            ));
        };
        decoded.map_err(|e| DbErr::Query(RuntimeErr::SqlxError(e.into())))
    }

    fn from_query_result_nullable(row: &QueryResult, prefix: &str) -> Result<Self, TryGetError> {
        Self::from_query_result(row, prefix).map_err(TryGetError::DbErr)
    }
}

impl From<&task_item::Model> for ItemState {
    fn from(m: &task_item::Model) -> Self {
        ItemState {
            id: m.id,
            idx: m.idx,
            client_item_id: m.client_item_id.clone(),
            rowid: None,
            status: m.status,
            result: m.result.clone(),
            error_code: m.error_code.clone(),
            error_message: m.error_message.clone(),
            error_details: m.error_details.clone(),
            attempts: m.attempts,
            worker_id: m.worker_id.clone(),
            lease_token: m.lease_token.clone(),
            lease_expires_at: m.lease_expires_at,
            started_at: m.started_at,
            finished_at: m.finished_at,
        }
    }
}
