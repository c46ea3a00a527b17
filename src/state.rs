//! The state every request shares.

use std::sync::Arc;

use crate::auth::KeyCache;
use crate::config::Config;
use crate::domain::exports::Signer;
use crate::events::EventBus;
use crate::graphql::document_cache::DocumentCache;
use crate::jobs::JobMetrics;
use crate::jobs::webhooks::WebhookMetrics;
use crate::limits::Limits;
use crate::store::Db;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub events: EventBus,
    pub config: Config,
    /// Keys checked a moment ago.
    pub keys: KeyCache,
    /// Signs and checks export links.
    pub signer: Signer,
    /// What the background jobs did, for `/metrics`.
    pub jobs: Arc<JobMetrics>,
    /// What the webhook dispatcher did, for `/metrics`.
    pub webhooks: Arc<WebhookMetrics>,
    /// Requests and complexity per organisation and key, on this instance.
    pub limits: Arc<Limits>,
    /// Documents parsed before, by query text.
    pub documents: DocumentCache,
}
