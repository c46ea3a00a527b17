//! The state every request shares.

use crate::auth::KeyCache;
use crate::config::Config;
use crate::events::EventBus;
use crate::store::Db;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub events: EventBus,
    pub config: Config,
    /// Keys checked a moment ago.
    pub keys: KeyCache,
}
