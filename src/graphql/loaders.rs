//! DataLoaders: every nested lookup of a request is batched into one
//! statement per kind, so a page costs the same number of statements
//! whatever its size. One loader per request, scoped to its organisation.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use entity::{audit_entry, bulk_task, task_item};
use uuid::Uuid;

use crate::error::AppError;
use crate::store::items::{ErrorCount, ItemFilter, ItemOrder};
use crate::store::page::{Page, PageArgs, Window};
use crate::store::{Db, Reader, audit, items, tasks};

pub type RequestLoader = DataLoader<Loaders, HashMapCache>;

pub struct Loaders {
    db: Db,
    organisation_id: Uuid,
}

/// A loader for one request. Its cache lets a list prefetch what its
/// children will ask for; a subscription, which lives across changes,
/// gets one without a cache.
pub fn request_loader(db: Db, organisation_id: Uuid, cached: bool) -> RequestLoader {
    let loaders = Loaders {
        db,
        organisation_id,
    };
    let loader = DataLoader::with_cache(loaders, tokio::spawn, HashMapCache::default());
    loader.enable_all_cache(cached);
    loader
}

pub(super) type LoadResult<K, V> = Result<HashMap<K, V>, Arc<AppError>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TaskKey(pub Uuid);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ItemKey(pub Uuid);

/// Which page of a task's items: the same arguments for every task of a list
/// share one statement.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ItemsQuery {
    pub filter: ItemFilter,
    pub order: ItemOrder,
    pub page: PageArgs,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ItemPageKey {
    pub task_id: Uuid,
    pub query: Arc<ItemsQuery>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ItemCountKey {
    pub task_id: Uuid,
    pub filter: Arc<ItemFilter>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ErrorSummaryKey(pub Uuid);

/// Which page of a task's audit trail: the same arguments for every task of
/// a list share one statement.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AuditPageKey {
    pub task_id: Uuid,
    pub page: Arc<PageArgs>,
}

pub(super) fn db_error(err: sea_orm::DbErr) -> Arc<AppError> {
    Arc::new(err.into())
}

impl Loaders {
    pub(super) async fn reader(&self) -> Result<Reader<'_>, Arc<AppError>> {
        self.db.reader(self.organisation_id).await.map_err(db_error)
    }
}

impl Loader<TaskKey> for Loaders {
    type Value = bulk_task::Model;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[TaskKey]) -> LoadResult<TaskKey, Self::Value> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = tasks::find_many(&self.reader().await?, &ids)
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(|t| (TaskKey(t.id), t)).collect())
    }
}

impl Loader<ItemKey> for Loaders {
    type Value = task_item::Model;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[ItemKey]) -> LoadResult<ItemKey, Self::Value> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = items::find_many(&self.reader().await?, &ids)
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(|i| (ItemKey(i.id), i)).collect())
    }
}

impl Loader<ItemPageKey> for Loaders {
    type Value = Arc<Page<task_item::Model>>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[ItemPageKey]) -> LoadResult<ItemPageKey, Self::Value> {
        let mut groups: HashMap<Arc<ItemsQuery>, Vec<Uuid>> = HashMap::new();
        for key in keys {
            groups
                .entry(key.query.clone())
                .or_default()
                .push(key.task_id);
        }
        let mut out = HashMap::with_capacity(keys.len());
        let db = self.reader().await?;
        for (query, task_ids) in groups {
            let window = Window::new(&query.page, query.order.tag(), false).map_err(Arc::new)?;
            let pages = items::pages_for_tasks(&db, &task_ids, &query.filter, query.order, &window)
                .await
                .map_err(Arc::new)?;
            for (task_id, page) in pages {
                out.insert(
                    ItemPageKey {
                        task_id,
                        query: query.clone(),
                    },
                    Arc::new(page),
                );
            }
        }
        Ok(out)
    }
}

impl Loader<ItemCountKey> for Loaders {
    type Value = i64;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[ItemCountKey]) -> LoadResult<ItemCountKey, Self::Value> {
        let mut groups: HashMap<Arc<ItemFilter>, Vec<Uuid>> = HashMap::new();
        for key in keys {
            groups
                .entry(key.filter.clone())
                .or_default()
                .push(key.task_id);
        }
        let mut out = HashMap::with_capacity(keys.len());
        let db = self.reader().await?;
        for (filter, task_ids) in groups {
            let counts = items::counts_for_tasks(&db, &task_ids, &filter)
                .await
                .map_err(db_error)?;
            for task_id in task_ids {
                let n = counts.get(&task_id).copied().unwrap_or(0);
                out.insert(
                    ItemCountKey {
                        task_id,
                        filter: filter.clone(),
                    },
                    n,
                );
            }
        }
        Ok(out)
    }
}

impl Loader<ErrorSummaryKey> for Loaders {
    type Value = Arc<Vec<ErrorCount>>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[ErrorSummaryKey]) -> LoadResult<ErrorSummaryKey, Self::Value> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = items::error_counts(&self.reader().await?, &ids)
            .await
            .map_err(db_error)?;
        let mut grouped: HashMap<Uuid, Vec<ErrorCount>> =
            ids.iter().map(|id| (*id, Vec::new())).collect();
        for row in rows {
            grouped.entry(row.task_id).or_default().push(row);
        }
        Ok(grouped
            .into_iter()
            .map(|(id, mut list)| {
                list.sort_by(|a, b| b.n.cmp(&a.n).then_with(|| a.code.cmp(&b.code)));
                (ErrorSummaryKey(id), Arc::new(list))
            })
            .collect())
    }
}

impl Loader<AuditPageKey> for Loaders {
    type Value = Arc<Page<audit_entry::Model>>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[AuditPageKey]) -> LoadResult<AuditPageKey, Self::Value> {
        let mut groups: HashMap<Arc<PageArgs>, Vec<Uuid>> = HashMap::new();
        for key in keys {
            groups
                .entry(key.page.clone())
                .or_default()
                .push(key.task_id);
        }
        let mut out = HashMap::with_capacity(keys.len());
        let db = self.reader().await?;
        for (page, task_ids) in groups {
            let window = Window::new(&page, audit::ORDER_TAG, false).map_err(Arc::new)?;
            let pages = audit::pages_for_tasks(&db, &task_ids, &window)
                .await
                .map_err(db_error)?;
            for (task_id, rows) in pages {
                let key = AuditPageKey {
                    task_id,
                    page: page.clone(),
                };
                out.insert(key, Arc::new(rows));
            }
        }
        Ok(out)
    }
}
