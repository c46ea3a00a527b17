//! The HTTP surface: routes, the state they share, and serving until stopped.
//! GraphQL over HTTP and WebSocket, downloads, probes and the embedded web
//! pages each live in a module of their own.

mod assets;
mod downloads;
mod exports;
mod fanout;
mod graphql;
mod probes;
mod response;
mod ws;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::AppState;
use crate::auth::{self, Auth};
use crate::error::AppError;
use crate::graphql::executor::Executor;

/// What every handler shares, behind one pointer: axum clones the state for
/// each request.
#[derive(Clone)]
struct Http(Arc<Shared>);

impl std::ops::Deref for Http {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

struct Shared {
    graphql: Executor,
    app: AppState,
    metrics: Arc<Metrics>,
    /// Turns true when the server stops: open WebSockets close.
    shutdown: tokio::sync::watch::Receiver<bool>,
    ws_connections: Arc<std::sync::atomic::AtomicUsize>,
    /// `bulkTaskUpdated` executions shared by identical subscriptions.
    fanout: Arc<fanout::Fanout>,
}

#[derive(Default)]
struct Metrics {
    operations: AtomicU64,
    failed_operations: AtomicU64,
}

fn router(http: Http) -> Router {
    let config = &http.app.config;
    let router = Router::new()
        .route(
            "/graphql",
            get(graphql::graphql_get_or_upgrade).post(graphql::graphql_post),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(probes::readyz))
        .route("/metrics", get(probes::metrics))
        .route(
            "/reports/{id}/failures.ndjson",
            get(downloads::failure_report),
        )
        .route("/exports/{file}", get(exports::export))
        .merge(assets::routes(config.dashboard, config.graphiql));
    router
        .layer(DefaultBodyLimit::max(config.body_limit))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a request handler panicked");
            AppError::Internal("a handler panicked".into()).into_response()
        }))
        // Outermost: every log line of a request carries its id (the
        // client's `x-request-id`, or a new one, echoed in the response)
        // and the `traceparent` the client sent, if any.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(http)
}

fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %header("x-request-id"),
        traceparent = %header("traceparent"),
    )
}

/// Resolves the request's API key; a database that cannot answer is
/// DATABASE_UNAVAILABLE.
async fn authenticate(http: &Http, headers: &HeaderMap) -> Result<Auth, AppError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    auth::authenticate(&http.app.db, &http.app.keys, value).await
}

pub async fn serve(
    listener: TcpListener,
    app: AppState,
    signal: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let timeout = app.config.shutdown_timeout();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let http = Http(Arc::new(Shared {
        graphql: Executor::new(app.clone()),
        metrics: Arc::default(),
        app,
        shutdown,
        ws_connections: Arc::default(),
        fanout: Arc::default(),
    }));
    let sockets = http.ws_connections.clone();
    let mut stopping = stop.subscribe();
    let server = axum::serve(listener, router(http)).with_graceful_shutdown(async move {
        signal.await;
        let _ = stop.send(true);
    });
    let result = tokio::select! {
        result = server => result,
        _ = async { let _ = stopping.wait_for(|s| *s).await; tokio::time::sleep(timeout).await } => {
            tracing::warn!("shutdown timeout reached; dropping open connections");
            Ok(())
        }
    };
    // WebSockets left the server's bookkeeping at upgrade: give them a
    // moment to send their close frames.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    while sockets.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    result
}
