//! The state every request shares.

use std::sync::Arc;

use crate::config::Config;
use crate::events::EventBus;
use crate::jobs::webhooks::WebhookMetrics;
use crate::store::Db;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub events: EventBus,
    pub config: Config,
    pub webhooks: Arc<WebhookMetrics>,
}
