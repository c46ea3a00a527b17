//! The state every request shares.

use crate::config::Config;
use crate::events::EventBus;
use crate::store::Db;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub events: EventBus,
    pub config: Config,
}
