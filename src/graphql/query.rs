//! Query roots: each field parses its arguments and delegates.

use async_graphql::{Context, ID, Object, Result, SimpleObject};

use super::connection::{RowCursor, connection, page_cost};
use super::enums::BulkTaskStatus;
use super::ids::{self, Kind};
use super::inputs::{BulkTaskFilter, BulkTaskOrder};
use super::loaders::{ItemKey, RequestLoader, TaskKey};
use super::types::{
    BulkTask, BulkTaskConnection, Node, TaskCount, TaskCounters, TaskItem, WebhookDelivery,
    WebhookEndpoint, prefetch_items,
};
use super::webhook_loaders::{DeliveryKey, EndpointKey};
use super::{Need, reader};
use crate::auth::Auth;
use crate::domain::keys::Scope;
use crate::error::{AppError, limit_exceeded};
use crate::store::page::{MAX_PAGE_SIZE, PageArgs, Window};
use crate::store::tasks::{self, TaskFilter, TaskOrder};

#[derive(Default)]
pub struct TaskQuery;

/// Tasks per status.
#[derive(SimpleObject)]
pub struct StatusCount {
    /// The status.
    pub status: BulkTaskStatus,
    /// Tasks in it.
    pub count: i32,
}

/// Figures for dashboards, in one round trip.
#[derive(SimpleObject)]
pub struct BulkTaskStats {
    /// Tasks matching the filter.
    pub total: i32,
    /// Those tasks per status (statuses with none are left out).
    pub by_status: Vec<StatusCount>,
    /// Item counters summed over those tasks.
    pub items: TaskCounters,
}

/// Objects by global id, one statement per kind however many ids.
async fn load_nodes(ctx: &Context<'_>, ids: &[ID]) -> Result<Vec<Option<Node>>> {
    let decoded = ids
        .iter()
        .map(|id| ids::decode_any(id))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let of_kind = |kind: Kind| {
        decoded
            .iter()
            .filter(move |(k, _)| *k == kind)
            .map(|(_, uuid)| *uuid)
    };
    // Webhook objects need the scope that manages them.
    if decoded
        .iter()
        .any(|(k, _)| matches!(k, Kind::WebhookEndpoint | Kind::WebhookDelivery))
    {
        ctx.data::<Auth>()?.require(Scope::WebhooksManage)?;
    }
    let loader = ctx.data::<RequestLoader>()?;
    let (tasks, items, endpoints, deliveries) = futures_util::try_join!(
        loader.load_many(of_kind(Kind::BulkTask).map(TaskKey)),
        loader.load_many(of_kind(Kind::TaskItem).map(ItemKey)),
        loader.load_many(of_kind(Kind::WebhookEndpoint).map(EndpointKey)),
        loader.load_many(of_kind(Kind::WebhookDelivery).map(DeliveryKey)),
    )?;
    Ok(decoded
        .iter()
        .map(|(kind, uuid)| match kind {
            Kind::BulkTask => tasks
                .get(&TaskKey(*uuid))
                .map(|t| Node::BulkTask(BulkTask(t.clone()))),
            Kind::TaskItem => items
                .get(&ItemKey(*uuid))
                .map(|i| Node::TaskItem(TaskItem::new(i.clone()))),
            Kind::WebhookEndpoint => endpoints
                .get(&EndpointKey(*uuid))
                .map(|e| Node::WebhookEndpoint(WebhookEndpoint(e.clone()))),
            Kind::WebhookDelivery => deliveries
                .get(&DeliveryKey(*uuid))
                .map(|d| Node::WebhookDelivery(WebhookDelivery(d.clone()))),
        })
        .collect())
}

#[Object]
impl TaskQuery {
    /// Any object by its global id; null when there is none.
    #[graphql(guard = "Need(Scope::TasksRead)")]
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A global id.")] id: ID,
    ) -> Result<Option<Node>> {
        Ok(load_nodes(ctx, &[id]).await?.pop().flatten())
    }

    /// Objects by their global ids, in the same order; null where there is none.
    #[graphql(
        guard = "Need(Scope::TasksRead)",
        complexity = "1 + ids.len() * child_complexity"
    )]
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "At most 100 global ids.")] ids: Vec<ID>,
    ) -> Result<Vec<Option<Node>>> {
        if ids.len() > MAX_PAGE_SIZE as usize {
            return Err(limit_exceeded(format!("at most {MAX_PAGE_SIZE} ids")).into());
        }
        load_nodes(ctx, &ids).await
    }

    /// A bulk task by id; null when there is none.
    #[graphql(guard = "Need(Scope::TasksRead)")]
    async fn bulk_task(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The task's global id.")] id: ID,
    ) -> Result<Option<BulkTask>> {
        let uuid = ids::decode(Kind::BulkTask, &id)?;
        // One task by id, the request clients poll: read directly rather
        // than through the loader, whose batching window (a timer on another
        // thread) would be most of the request's time. The loader is fed, so
        // the rest of the request reuses the row.
        let task = tasks::find(&reader(ctx).await?, uuid)
            .await
            .map_err(AppError::from)?;
        if let Some(task) = &task {
            ctx.data::<RequestLoader>()?
                .feed_one(TaskKey(uuid), task.clone())
                .await;
        }
        Ok(task.map(BulkTask))
    }

    /// Bulk tasks, a page at a time; default order UPDATED_AT DESC.
    #[allow(clippy::too_many_arguments)]
    #[graphql(
        guard = "Need(Scope::TasksRead)",
        complexity = "page_cost(first, last, child_complexity)"
    )]
    async fn bulk_tasks(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Tasks after `after`, at most 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor of the task before the page.")] after: Option<String>,
        #[graphql(desc = "Tasks before `before`, at most 100.")] last: Option<i32>,
        #[graphql(desc = "Cursor of the task after the page.")] before: Option<String>,
        #[graphql(desc = "Rows to skip first, for page-number UIs (at most 10000).")]
        offset: Option<i32>,
        #[graphql(desc = "Which tasks.")] filter: Option<BulkTaskFilter>,
        #[graphql(desc = "Sort order; default UPDATED_AT DESC.")] order_by: Option<BulkTaskOrder>,
    ) -> Result<BulkTaskConnection> {
        let filter: TaskFilter = filter.map(Into::into).unwrap_or_default();
        filter.check()?;
        let order: TaskOrder = order_by.map(Into::into).unwrap_or_default();
        let window = Window::new(
            &PageArgs {
                first,
                after,
                last,
                before,
                offset,
            },
            order.tag(),
            order.float_valued(),
        )?;
        let page = tasks::page(&reader(ctx).await?, &filter, order, &window).await?;
        let ids: Vec<_> = page.rows.iter().map(|t| t.id).collect();
        prefetch_items(ctx, &ids).await;
        Ok(connection(
            &page,
            TaskCount { filter },
            |t| RowCursor::new(order.tag(), order.sort_value(t), t.id),
            |t| BulkTask(t.clone()),
        ))
    }

    /// An item by id; null when there is none.
    #[graphql(guard = "Need(Scope::TasksRead)")]
    async fn task_item(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The item's global id.")] id: ID,
    ) -> Result<Option<TaskItem>> {
        let uuid = ids::decode(Kind::TaskItem, &id)?;
        Ok(ctx
            .data::<RequestLoader>()?
            .load_one(ItemKey(uuid))
            .await?
            .map(TaskItem::new))
    }

    /// Task and item figures over the tasks matching the filter.
    #[graphql(guard = "Need(Scope::TasksRead)")]
    async fn bulk_task_stats(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which tasks.")] filter: Option<BulkTaskFilter>,
    ) -> Result<BulkTaskStats> {
        let filter: TaskFilter = filter.map(Into::into).unwrap_or_default();
        filter.check()?;
        let (by_status, items) = tasks::stats(&reader(ctx).await?, &filter)
            .await
            .map_err(AppError::from)?;
        let count = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
        Ok(BulkTaskStats {
            total: count(by_status.iter().map(|(_, n)| n).sum()),
            by_status: by_status
                .into_iter()
                .map(|(s, n)| StatusCount {
                    status: s.into(),
                    count: count(n),
                })
                .collect(),
            items: items.into(),
        })
    }
}
