//! The PostgreSQL bridge: LISTEN on one channel, deliver to this instance.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::postgres::PgListener;

use super::{CHANNEL, EventBus, TaskEvent};

/// Listens forever; a lost connection is re-established and every hub
/// reloads, so watchers miss nothing.
pub(super) async fn listen(bus: EventBus, url: String) {
    loop {
        let mut listener = match PgListener::connect(&url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "event listener cannot connect; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "event listener cannot LISTEN; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        bus.resync();
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    match serde_json::from_str::<TaskEvent>(notification.payload()) {
                        Ok(event) => bus.deliver(Arc::new(event)),
                        Err(e) => tracing::warn!(error = %e, "unreadable event"),
                    }
                }
                // The connection was lost: connect and LISTEN afresh, then
                // resync, so nothing committed in between is missed.
                Ok(None) => {
                    tracing::warn!("event listener lost its connection; reconnecting");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "event listener failed; reconnecting");
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
