//! bulkwatch: a GraphQL server that tracks bulk tasks and the outcome of
//! every item in them. `Application` builds the whole server from a
//! `Config`, so the binary and the tests run the same thing.

pub mod auth;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod jobs;
pub mod limits;
pub mod logging;
mod state;
pub mod store;
pub mod worker_demo;

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;

pub use config::{Config, EventBusKind};
pub use state::AppState;

use crate::events::{EventBus, NatsBus};
use crate::store::Db;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Database(#[from] store::OpenError),
    /// Loading (or storing, on first start) the key fails first when the
    /// database cannot be written, e.g. a SQLite file on a read-only mount.
    #[error(
        "cannot load the signing key from {database}: {cause}\n  check that the database is reachable and writable by this user"
    )]
    SigningKey { database: String, cause: String },
    #[error("cannot create the first API key: {0}")]
    FirstKey(error::AppError),
    #[error("cannot listen on {address}: {cause}\n  {hint}")]
    Listen {
        address: SocketAddr,
        cause: std::io::Error,
        hint: String,
    },
}

/// What to do when the listen address cannot be had.
fn listen_hint(address: SocketAddr, err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "another process listens there; stop it, or pick another address with BULKWATCH_BIND (e.g. BULKWATCH_BIND={}:{})",
            address.ip(),
            address.port().wrapping_add(1).max(1)
        ),
        std::io::ErrorKind::PermissionDenied => {
            "ports below 1024 need privileges; pick another with BULKWATCH_BIND".to_owned()
        }
        _ => "set BULKWATCH_BIND to an address of this machine".to_owned(),
    }
}

/// A migrated database and a bound listener, ready to serve.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    first_start_key: Option<String>,
}

impl Application {
    /// Connects to the database, migrates it and binds the listen address
    /// (port 0 picks a free port).
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        config.validate().map_err(StartupError::Config)?;
        let mut db = Db::open(&config.database_url, config.db_connections).await?;
        if config.db_transaction_pooler {
            db = db.behind_transaction_pooler();
        }
        let first_start_key = domain::keys::first_start_key(&db)
            .await
            .map_err(StartupError::FirstKey)?;
        let listener =
            TcpListener::bind(config.bind)
                .await
                .map_err(|cause| StartupError::Listen {
                    address: config.bind,
                    hint: listen_hint(config.bind, &cause),
                    cause,
                })?;
        let signer = domain::exports::Signer::load(&db, config.signing_secret.as_ref())
            .await
            .map_err(|e| StartupError::SigningKey {
                database: store::redact(&config.database_url),
                cause: e.cause(),
            })?;
        let nats = (config.event_bus == EventBusKind::Nats).then(|| NatsBus {
            url: config.nats_url.clone(),
            subject: config.nats_subject.clone(),
        });
        let events = EventBus::start(
            db.clone(),
            config.item_feed_capacity,
            &config.database_url,
            nats,
        );
        let state = AppState {
            limits: std::sync::Arc::new(limits::Limits::new(&config)),
            db,
            events,
            config,
            keys: Default::default(),
            signer,
            jobs: Default::default(),
            webhooks: Default::default(),
            documents: Default::default(),
        };
        Ok(Application {
            listener,
            state,
            first_start_key,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The admin key made on first start (a database without keys), shown once.
    pub fn first_start_key(&self) -> Option<&str> {
        self.first_start_key.as_deref()
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// Serves until SIGINT or SIGTERM, then drains within the shutdown timeout.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `signal` resolves.
    pub async fn run_until(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let reaper = tokio::spawn(reap_leases(self.state.clone()));
        let pruner = tokio::spawn(jobs::pruner::run(self.state.clone()));
        let deadlines = tokio::spawn(jobs::deadlines::run(self.state.clone()));
        let webhooks = tokio::spawn(jobs::webhooks::dispatch(self.state.clone()));
        let limits = tokio::spawn(limits::sweep(self.state.limits.clone()));
        let result = http::serve(self.listener, self.state, signal).await;
        reaper.abort();
        pruner.abort();
        deadlines.abort();
        webhooks.abort();
        limits.abort();
        result
    }
}

/// Takes back the items of workers whose leases ran out, forever.
async fn reap_leases(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(
        state.config.reaper_interval_ms.max(10),
    ));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match domain::leases::reap_expired(&state.db, &state.events).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(items = n, "expired leases taken back"),
            Err(e) => tracing::warn!(error = ?e, "lease reaper"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}
