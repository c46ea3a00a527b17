//! `BulkTask.items`: its arguments, the prefetch that batches a list's
//! nested pages, and the items' `totalCount`.

use std::sync::Arc;

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, InputType, Name, Object, Result, Value as ConstValue};
use uuid::Uuid;

use super::TaskItem;
use crate::domain::status::Counters;
use crate::graphql::connection::RowCursor;
use crate::graphql::inputs::{TaskItemFilter, TaskItemOrder};
use crate::graphql::loaders::{AuditPageKey, ItemCountKey, ItemPageKey, ItemsQuery, RequestLoader};
use crate::store::audit;
use crate::store::items::ItemFilter;
use crate::store::page::{PageArgs, Window};

pub type TaskItemConnection = Connection<RowCursor, TaskItem, ItemCount, EmptyFields>;

/// The query a `BulkTask.items` field with these arguments runs.
pub(super) fn items_query(
    page: PageArgs,
    filter: Option<TaskItemFilter>,
    order_by: Option<TaskItemOrder>,
) -> ItemsQuery {
    ItemsQuery {
        filter: filter.map(Into::into).unwrap_or_default(),
        order: order_by.map(Into::into).unwrap_or_default(),
        page,
    }
}

fn argument<T: InputType>(args: &[(Name, ConstValue)], name: &str) -> Option<T> {
    let value = args
        .iter()
        .find(|(n, _)| n.as_str() == name)
        .map(|(_, v)| v.clone());
    T::parse(value).ok()
}

/// The arguments of every selection of `field` on the nodes of the list
/// being resolved, reached through `nodes` or `edges { node }`.
fn node_field_arguments(ctx: &Context<'_>, field: &str) -> Vec<Vec<(Name, ConstValue)>> {
    let look = ctx.look_ahead();
    [
        look.field("nodes").field(field),
        look.field("edges").field("node").field(field),
    ]
    .iter()
    .flat_map(|lookahead| lookahead.selection_fields())
    .filter_map(|selection| selection.arguments().ok())
    .collect()
}

/// Loads the nested `items` pages (and `auditTrail` pages) a list of tasks
/// is about to resolve, one statement per distinct set of arguments, into
/// the request's loader
/// cache: the statement count of a page then does not depend on how the
/// runtime happens to batch its children.
pub async fn prefetch_items(ctx: &Context<'_>, task_ids: &[uuid::Uuid]) {
    let mut queries = std::collections::HashSet::new();
    for args in node_field_arguments(ctx, "items") {
        let page = PageArgs {
            first: argument(&args, "first").flatten(),
            after: argument(&args, "after").flatten(),
            last: argument(&args, "last").flatten(),
            before: argument(&args, "before").flatten(),
            offset: argument(&args, "offset").flatten(),
        };
        let (Some(filter), Some(order_by)) =
            (argument(&args, "filter"), argument(&args, "orderBy"))
        else {
            continue;
        };
        let query = items_query(page, filter, order_by);
        if Window::new(&query.page, query.order.tag(), false).is_ok() {
            queries.insert(query);
        }
    }
    let Ok(loader) = ctx.data::<RequestLoader>() else {
        return;
    };
    for query in queries {
        let query = Arc::new(query);
        let keys = task_ids.iter().map(|id| ItemPageKey {
            task_id: *id,
            query: query.clone(),
        });
        // Errors surface where the field itself loads.
        let _ = loader.load_many(keys).await;
    }
    // Audit trails likewise, one statement per distinct page.
    let mut trails = std::collections::HashSet::new();
    for args in node_field_arguments(ctx, "auditTrail") {
        let page = PageArgs {
            first: argument(&args, "first").flatten(),
            after: argument(&args, "after").flatten(),
            ..Default::default()
        };
        if Window::new(&page, audit::ORDER_TAG, false).is_ok() {
            trails.insert(page);
        }
    }
    for page in trails {
        let page = Arc::new(page);
        let keys = task_ids.iter().map(|id| AuditPageKey {
            task_id: *id,
            page: page.clone(),
        });
        let _ = loader.load_many(keys).await;
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
