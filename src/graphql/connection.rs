//! Relay connections: async-graphql's `Connection` over a store page, lazy
//! cursors, and the cost model that bounds a page's complexity.

use async_graphql::connection::{Connection, CursorType, Edge, EmptyFields};
use uuid::Uuid;

use crate::error::{AppError, bad_cursor};
use crate::store::page::{Cursor, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page, SortValue};

/// A row's cursor, encoded only when a client selects it: a page mints one
/// per row, and most clients read `nodes` alone.
pub struct RowCursor {
    order_tag: &'static str,
    value: SortValue,
    id: Uuid,
}

impl RowCursor {
    pub fn new(order_tag: &'static str, value: SortValue, id: Uuid) -> Self {
        RowCursor {
            order_tag,
            value,
            id,
        }
    }
}

impl CursorType for RowCursor {
    type Error = AppError;

    /// Lists decode `after` and `before` themselves, with the order they
    /// know (`Cursor::decode`); nothing decodes through this type.
    fn decode_cursor(_: &str) -> Result<Self, AppError> {
        Err(bad_cursor())
    }

    fn encode_cursor(&self) -> String {
        Cursor::encode(self.order_tag, self.value, self.id)
    }
}

/// Complexity of a list field: its children count once per row it may return.
pub fn page_cost(first: Option<i32>, last: Option<i32>, child: usize) -> usize {
    let rows = first
        .or(last)
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .clamp(1, MAX_PAGE_SIZE) as usize;
    2 + rows * child
}

pub fn connection<T, N, F>(
    page: &Page<T>,
    extra: F,
    cursor: impl Fn(&T) -> RowCursor,
    node: impl Fn(&T) -> N,
) -> Connection<RowCursor, N, F, EmptyFields>
where
    N: async_graphql::OutputType,
    F: async_graphql::ObjectType,
{
    let mut c =
        Connection::with_additional_fields(page.has_previous_page, page.has_next_page, extra);
    c.edges.extend(
        page.rows
            .iter()
            .map(|row| Edge::new(cursor(row), node(row))),
    );
    c
}
