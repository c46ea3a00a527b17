//! A report's item states on SQLite, read as one row.
//!
//! sqlx hands SQLite's rows from its worker thread to the caller one at a
//! time through a channel, and each is then decoded column by column: for a
//! report of 1,000 results that was most of the states read. Aggregated
//! by SQLite into one JSON array, the states cross once and are decoded by
//! serde in one pass.

use entity::task_item::Entity as Items;
use sea_orm::sea_query::Expr;
use sea_orm::{ConnectionTrait, DbErr, QuerySelect, Select};
use uuid::Uuid;

use super::ItemState;
use crate::domain::status::ItemStatus;
use crate::store::Scoped;

/// The state columns, then the rowid, as one JSON array per row; the id
/// (a blob, which JSON cannot hold) as hex.
const AGGREGATE: &str = "json_group_array(json_array(hex(task_items.id), task_items.idx, \
     task_items.client_item_id, task_items.status, task_items.result, task_items.error_code, \
     task_items.error_message, task_items.error_details, task_items.attempts, \
     task_items.worker_id, task_items.lease_token, task_items.lease_expires_at, \
     task_items.started_at, task_items.finished_at, task_items.rowid))";

type Row = (
    String,
    i32,
    Option<String>,
    ItemStatus,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i32,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    i64,
);

/// The states the filtered query selects, with their rowids.
pub(super) async fn states(
    db: &Scoped<impl ConnectionTrait>,
    query: Select<Items>,
) -> Result<Vec<ItemState>, DbErr> {
    let text: Option<String> = query
        .select_only()
        .expr(Expr::cust(AGGREGATE))
        .into_tuple()
        .one(db.conn())
        .await?;
    let rows: Vec<Row> = serde_json::from_str(text.as_deref().unwrap_or("[]"))
        .map_err(|e| DbErr::Custom(format!("item states: {e}")))?;
    rows.into_iter()
        .map(|r| {
            Ok(ItemState {
                id: Uuid::try_parse(&r.0).map_err(|e| DbErr::Custom(format!("item id: {e}")))?,
                idx: r.1,
                client_item_id: r.2,
                rowid: Some(r.14),
                status: r.3,
                result: r.4,
                error_code: r.5,
                error_message: r.6,
                error_details: r.7,
                attempts: r.8,
                worker_id: r.9,
                lease_token: r.10,
                lease_expires_at: r.11,
                started_at: r.12,
                finished_at: r.13,
            })
        })
        .collect()
}
