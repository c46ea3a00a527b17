//! What operators and load balancers ask: readiness and metrics.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Http;

/// How long readiness waits for the database. While PostgreSQL restarts,
/// taking a connection waits out the pool's acquire timeout (5 s) in
/// connection retries; a balancer's check must hear "not ready" sooner.
const READY_TIMEOUT: Duration = Duration::from_secs(1);

pub(super) async fn readyz(State(http): State<Http>) -> Response {
    let error = match tokio::time::timeout(READY_TIMEOUT, http.app.db.ping()).await {
        Ok(Ok(())) => return (StatusCode::OK, "ready").into_response(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {} s", READY_TIMEOUT.as_secs()),
    };
    tracing::warn!(%error, "readiness check failed");
    (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
}

pub(super) async fn metrics(State(http): State<Http>) -> Response {
    let m = &http.metrics;
    let mut body = format!(
        "# HELP bulkwatch_sql_statements_total SQL statements issued.\n\
         # TYPE bulkwatch_sql_statements_total counter\n\
         bulkwatch_sql_statements_total {}\n\
         # HELP bulkwatch_graphql_operations_total GraphQL operations executed.\n\
         # TYPE bulkwatch_graphql_operations_total counter\n\
         bulkwatch_graphql_operations_total {}\n\
         # HELP bulkwatch_graphql_failed_operations_total GraphQL operations that returned errors.\n\
         # TYPE bulkwatch_graphql_failed_operations_total counter\n\
         bulkwatch_graphql_failed_operations_total {}\n\
         # HELP bulkwatch_watched_tasks Tasks with live subscribers on this instance.\n\
         # TYPE bulkwatch_watched_tasks gauge\n\
         bulkwatch_watched_tasks {}\n\
         # HELP bulkwatch_websockets Open WebSocket connections.\n\
         # TYPE bulkwatch_websockets gauge\n\
         bulkwatch_websockets {}\n\
         # HELP bulkwatch_shared_subscriptions Task subscriptions executing once for all their identical subscribers.\n\
         # TYPE bulkwatch_shared_subscriptions gauge\n\
         bulkwatch_shared_subscriptions {}\n\
         # HELP bulkwatch_pruned_tasks_total Finished tasks this instance deleted after their retention.\n\
         # TYPE bulkwatch_pruned_tasks_total counter\n\
         bulkwatch_pruned_tasks_total {}\n\
         # HELP bulkwatch_pruned_items_total Items of those tasks this instance deleted.\n\
         # TYPE bulkwatch_pruned_items_total counter\n\
         bulkwatch_pruned_items_total {}\n",
        http.app.db.statements(),
        m.operations.load(Ordering::Relaxed),
        m.failed_operations.load(Ordering::Relaxed),
        http.app.events.watched_tasks(),
        http.ws_connections.load(Ordering::Relaxed),
        http.fanout.running(),
        http.app.jobs.pruned_tasks.load(Ordering::Relaxed),
        http.app.jobs.pruned_items.load(Ordering::Relaxed),
    );
    body.push_str(&http.app.webhooks.render());
    body.push_str(&http.app.limits.render());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
