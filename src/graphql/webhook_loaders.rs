//! DataLoaders of webhook endpoints and deliveries: by id (for `node`) and
//! delivery pages of many endpoints in one statement.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use entity::{webhook_delivery, webhook_endpoint};
use uuid::Uuid;

use super::loaders::{LoadResult, Loaders, db_error};
use crate::domain::webhooks::DeliveryStatus;
use crate::error::AppError;
use crate::store::page::{Page, PageArgs, Window};
use crate::store::{webhook_deliveries, webhooks};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EndpointKey(pub Uuid);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeliveryKey(pub Uuid);

/// Which page of an endpoint's deliveries: the same arguments for every
/// endpoint of a list share one statement.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeliveriesQuery {
    pub statuses: Option<Vec<DeliveryStatus>>,
    pub page: PageArgs,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeliveryPageKey {
    pub endpoint_id: Uuid,
    pub query: Arc<DeliveriesQuery>,
}

impl Loader<EndpointKey> for Loaders {
    type Value = webhook_endpoint::Model;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[EndpointKey]) -> LoadResult<EndpointKey, Self::Value> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = webhooks::find_many(&self.reader().await?, &ids)
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(|e| (EndpointKey(e.id), e)).collect())
    }
}

impl Loader<DeliveryKey> for Loaders {
    type Value = webhook_delivery::Model;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[DeliveryKey]) -> LoadResult<DeliveryKey, Self::Value> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = webhook_deliveries::find_many(&self.reader().await?, &ids)
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(|d| (DeliveryKey(d.id), d)).collect())
    }
}

impl Loader<DeliveryPageKey> for Loaders {
    type Value = Arc<Page<webhook_delivery::Model>>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[DeliveryPageKey]) -> LoadResult<DeliveryPageKey, Self::Value> {
        let mut groups: HashMap<Arc<DeliveriesQuery>, Vec<Uuid>> = HashMap::new();
        for key in keys {
            groups
                .entry(key.query.clone())
                .or_default()
                .push(key.endpoint_id);
        }
        let mut out = HashMap::with_capacity(keys.len());
        let db = self.reader().await?;
        for (query, endpoint_ids) in groups {
            let window =
                Window::new(&query.page, webhook_deliveries::ORDER_TAG, false).map_err(Arc::new)?;
            let pages = webhook_deliveries::pages_for_endpoints(
                &db,
                &endpoint_ids,
                query.statuses.as_deref(),
                &window,
            )
            .await
            .map_err(Arc::new)?;
            for (endpoint_id, page) in pages {
                let key = DeliveryPageKey {
                    endpoint_id,
                    query: query.clone(),
                };
                out.insert(key, Arc::new(page));
            }
        }
        Ok(out)
    }
}
