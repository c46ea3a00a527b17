//! Relay connections: async-graphql's `Connection` with a lazily counted
//! `totalCount`, and the cost model that bounds a page's complexity.

use std::sync::Arc;

use async_graphql::connection::{Connection, CursorType, Edge, EmptyFields};
use async_graphql::{Context, Object, Result};
use uuid::Uuid;

use super::loaders::{ItemCountKey, RequestLoader};
use super::reader;
use super::types::{BulkTask, TaskItem};
use crate::domain::status::Counters;
use crate::error::{AppError, bad_cursor};
use crate::store::items::ItemFilter;
use crate::store::page::{Cursor, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page, SortValue};
use crate::store::tasks::{self, TaskFilter};

pub type BulkTaskConnection = Connection<RowCursor, BulkTask, TaskCount, EmptyFields>;
pub type TaskItemConnection = Connection<RowCursor, TaskItem, ItemCount, EmptyFields>;

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

/// The `totalCount` of a task list, counted only when asked for.
pub struct TaskCount {
    pub filter: TaskFilter,
}

#[Object]
impl TaskCount {
    /// Tasks matching the filter, on every page together.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i32> {
        let n = tasks::count(&reader(ctx).await?, &self.filter)
            .await
            .map_err(AppError::from)?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }
}

/// The `totalCount` of a task's items: from the task's counters when the
/// filter is by status alone, else counted.
pub struct ItemCount {
    pub task_id: Uuid,
    pub counters: Counters,
    pub filter: ItemFilter,
}

#[Object]
impl ItemCount {
    /// Items matching the filter, on every page together.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i32> {
        if self.filter.counted_by_status_only() {
            return Ok(match &self.filter.status {
                None => self.counters.total,
                Some(list) => {
                    let distinct: std::collections::HashSet<_> = list.iter().collect();
                    distinct.into_iter().map(|s| self.counters.get(*s)).sum()
                }
            });
        }
        let key = ItemCountKey {
            task_id: self.task_id,
            filter: Arc::new(self.filter.clone()),
        };
        let n = ctx
            .data::<RequestLoader>()?
            .load_one(key)
            .await?
            .unwrap_or(0);
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }
}
