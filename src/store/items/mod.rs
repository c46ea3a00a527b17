//! Queries on `task_items`, every one filtered by the handle's organisation.
//! Writes are set-based: one statement per batch, the rows passed as one
//! JSON array that SQLite's `jsonb_each` or PostgreSQL's `jsonb_to_recordset`
//! turns into a table.

mod export;
mod pages;
mod pg_rows;
mod read;
mod sqlite_states;
mod state_rows;
mod write;

use entity::task_item::{self, Column};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{ColumnTrait, Condition};

pub use export::export_page;
pub use pages::pages_for_tasks;
pub use read::*;
pub use state_rows::{ItemState, STATE_COLUMNS};
pub use write::*;

use super::page::SortValue;
use crate::domain::status::ItemStatus;
use crate::error::AppResult;

/// Rows per insert or update statement: large enough to amortise the
/// statement, small enough to keep one JSON argument in the tens of MB.
const CHUNK: usize = 5_000;

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ItemFilter {
    pub status: Option<Vec<ItemStatus>>,
    pub client_item_id: Option<String>,
    pub error_code: Option<String>,
}

impl ItemFilter {
    /// Refuses lists too long to become bind parameters.
    pub fn check(&self) -> AppResult<()> {
        if self.status.as_ref().is_some_and(|l| l.len() > 100) {
            return Err(crate::error::limit_exceeded(
                "at most 100 statuses in a filter",
            ));
        }
        Ok(())
    }

    /// Whether the counters on the task row alone answer "how many match".
    pub fn counted_by_status_only(&self) -> bool {
        self.client_item_id.is_none() && self.error_code.is_none()
    }

    fn condition(&self) -> Condition {
        let mut c = Condition::all();
        if let Some(list) = &self.status {
            c = c.add(Column::Status.is_in(list.iter().map(|s| s.as_str())));
        }
        if let Some(id) = &self.client_item_id {
            c = c.add(Column::ClientItemId.eq(id.as_str()));
        }
        if let Some(code) = &self.error_code {
            c = c.add(Column::ErrorCode.eq(code.as_str()));
        }
        c
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ItemOrderField {
    Index,
    CreatedAt,
    UpdatedAt,
    FinishedAt,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ItemOrder {
    pub field: ItemOrderField,
    pub ascending: bool,
}

impl Default for ItemOrder {
    fn default() -> Self {
        ItemOrder {
            field: ItemOrderField::Index,
            ascending: true,
        }
    }
}

const NOT_YET: i64 = i64::MAX;

impl ItemOrder {
    pub fn tag(&self) -> &'static str {
        match self.field {
            ItemOrderField::Index => "item:INDEX",
            ItemOrderField::CreatedAt => "item:CREATED_AT",
            ItemOrderField::UpdatedAt => "item:UPDATED_AT",
            ItemOrderField::FinishedAt => "item:FINISHED_AT",
        }
    }

    fn sort_expr(&self) -> Expr {
        match self.field {
            ItemOrderField::Index => Expr::col(Column::Idx),
            ItemOrderField::CreatedAt => Expr::col(Column::CreatedAt),
            ItemOrderField::UpdatedAt => Expr::col(Column::UpdatedAt),
            ItemOrderField::FinishedAt => {
                Func::coalesce([Expr::col(Column::FinishedAt), Expr::val(NOT_YET)]).into()
            }
        }
    }

    pub fn sort_value(&self, item: &task_item::Model) -> SortValue {
        SortValue::Int(match self.field {
            ItemOrderField::Index => item.idx.into(),
            ItemOrderField::CreatedAt => item.created_at,
            ItemOrderField::UpdatedAt => item.updated_at,
            ItemOrderField::FinishedAt => item.finished_at.unwrap_or(NOT_YET),
        })
    }
}
