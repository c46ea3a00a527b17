//! One `Config`, read from flags and environment and validated once.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

/// Everything the server can be told. Defaults suit a laptop: an SQLite file
/// beside the binary's working directory, GraphiQL on, batching off.
#[derive(Args, Clone, Debug)]
pub struct Config {
    /// Database to use: `sqlite://FILE` (created when missing) or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://bulkwatch.db")]
    pub database_url: String,

    /// Address to listen on.
    #[arg(long, env = "BULKWATCH_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Largest accepted request body in bytes (a 100k-item create is about 10 MB).
    #[arg(long, env = "BULKWATCH_BODY_LIMIT", default_value_t = 64 * 1024 * 1024)]
    pub body_limit: usize,

    /// Most operations in one batched HTTP request; 0 refuses batches.
    #[arg(long, env = "BULKWATCH_MAX_BATCH", default_value_t = 0)]
    pub max_batch: usize,

    /// Deepest selection set accepted.
    #[arg(long, env = "BULKWATCH_MAX_DEPTH", default_value_t = 15)]
    pub max_depth: usize,

    /// Highest query complexity accepted; list fields multiply their children by `first`/`last`.
    #[arg(long, env = "BULKWATCH_MAX_COMPLEXITY", default_value_t = 25_000)]
    pub max_complexity: usize,

    /// Deepest nesting of fragments, lists and input objects accepted by the parser.
    #[arg(long, env = "BULKWATCH_MAX_RECURSIVE_DEPTH", default_value_t = 32)]
    pub max_recursive_depth: usize,

    /// Most directives on one field.
    #[arg(long, env = "BULKWATCH_MAX_DIRECTIVES", default_value_t = 8)]
    pub max_directives: usize,

    /// Serve the schema through introspection (GraphiQL needs it).
    #[arg(long, env = "BULKWATCH_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub introspection: bool,

    /// Serve GraphiQL at `/graphiql`.
    #[arg(long, env = "BULKWATCH_GRAPHIQL", default_value_t = true, action = clap::ArgAction::Set)]
    pub graphiql: bool,

    /// Serve the web dashboard at `/`.
    #[arg(long, env = "BULKWATCH_DASHBOARD", default_value_t = true, action = clap::ArgAction::Set)]
    pub dashboard: bool,

    /// Connections in the database pool (readers, on SQLite; the writer is one more).
    #[arg(long, env = "BULKWATCH_DB_CONNECTIONS", default_value_t = 8)]
    pub db_connections: u32,

    /// PostgreSQL is reached through a pooler in transaction mode (PgBouncer's
    /// `pool_mode = transaction`): readers then name their organisation per
    /// transaction instead of keeping it on the session.
    #[arg(long, env = "BULKWATCH_DB_TRANSACTION_POOLER", default_value_t = false, action = clap::ArgAction::Set)]
    pub db_transaction_pooler: bool,

    /// Least time between two events of one subscription, in milliseconds (latest wins).
    #[arg(long, env = "BULKWATCH_COALESCE_MS", default_value_t = 250)]
    pub coalesce_ms: u64,

    /// Item changes a `taskItemsUpdated` subscriber may fall behind before it is dropped.
    #[arg(long, env = "BULKWATCH_ITEM_FEED_CAPACITY", default_value_t = 1024)]
    pub item_feed_capacity: usize,

    /// Milliseconds a WebSocket client has to send `connection_init`.
    #[arg(long, env = "BULKWATCH_WS_INIT_TIMEOUT_MS", default_value_t = 3_000)]
    pub ws_init_timeout_ms: u64,

    /// Most active subscriptions on one WebSocket.
    #[arg(long, env = "BULKWATCH_WS_MAX_SUBSCRIPTIONS", default_value_t = 100)]
    pub ws_max_subscriptions: usize,

    /// Largest WebSocket message accepted, in bytes.
    #[arg(long, env = "BULKWATCH_WS_MAX_MESSAGE", default_value_t = 256 * 1024)]
    pub ws_max_message: usize,

    /// Milliseconds between two sweeps of the lease reaper.
    #[arg(long, env = "BULKWATCH_REAPER_INTERVAL_MS", default_value_t = 2_000)]
    pub reaper_interval_ms: u64,

    /// Seconds a finished task is kept before the pruner deletes it (a task's
    /// `retainFor` overrides it); 0 keeps finished tasks forever.
    #[arg(long, env = "BULKWATCH_RETENTION_SECONDS", default_value_t = 30 * 24 * 3600)]
    pub retention_seconds: u64,

    /// Milliseconds between two sweeps of the pruner.
    #[arg(long, env = "BULKWATCH_PRUNE_INTERVAL_MS", default_value_t = 60_000)]
    pub prune_interval_ms: u64,

    /// Items the pruner deletes in one transaction: small enough that no
    /// concurrent writer waits long for it.
    #[arg(long, env = "BULKWATCH_PRUNE_BATCH", default_value_t = 1_000)]
    pub prune_batch: u64,

    /// Seconds an export link stays valid.
    #[arg(long, env = "BULKWATCH_EXPORT_URL_TTL_SECONDS", default_value_t = 900)]
    pub export_url_ttl_seconds: u64,

    /// Key that signs export links (at least 32 bytes). When unset, one is
    /// generated on first start and kept in the database, so that every
    /// instance on that database signs alike.
    #[arg(long, env = "BULKWATCH_SIGNING_SECRET", hide_env_values = true)]
    pub signing_secret: Option<SigningSecret>,
    /// Seconds between a webhook delivery's attempts, comma-separated; after
    /// the last gap's attempt fails the delivery is FAILED.
    #[arg(
        long,
        env = "BULKWATCH_WEBHOOK_RETRY_SCHEDULE",
        default_value = "5,60,600,3600,21600,86400"
    )]
    pub webhook_retry_schedule: String,

    /// Send webhooks to loopback, private, link-local and metadata addresses too (tests, on-premise).
    #[arg(long, env = "BULKWATCH_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_private: bool,

    /// Seconds an endpoint may fail every delivery before it is disabled.
    #[arg(long, env = "BULKWATCH_WEBHOOK_DISABLE_AFTER", default_value_t = 5 * 24 * 3600)]
    pub webhook_disable_after_secs: u64,

    /// Milliseconds one webhook request may take in all (connecting takes at most 5 s of it).
    #[arg(long, env = "BULKWATCH_WEBHOOK_TIMEOUT_MS", default_value_t = 15_000)]
    pub webhook_timeout_ms: u64,

    /// Webhook requests one instance sends at once.
    #[arg(long, env = "BULKWATCH_WEBHOOK_CONCURRENCY", default_value_t = 32)]
    pub webhook_concurrency: usize,

    /// Milliseconds between two looks for due webhook deliveries when nothing wakes the dispatcher.
    #[arg(long, env = "BULKWATCH_WEBHOOK_POLL_MS", default_value_t = 1_000)]
    pub webhook_poll_ms: u64,

    /// Requests per second one organisation may make on this instance (the
    /// burst is one second's worth); 0 turns the limit off.
    #[arg(long, env = "BULKWATCH_RATE_LIMIT_ORG_RPS", default_value_t = 2_000)]
    pub rate_limit_org_rps: u32,

    /// Requests per second one API key may make on this instance; 0 turns the limit off.
    #[arg(long, env = "BULKWATCH_RATE_LIMIT_KEY_RPS", default_value_t = 1_000)]
    pub rate_limit_key_rps: u32,

    /// GraphQL complexity one organisation may spend per second on this
    /// instance; at least BULKWATCH_MAX_COMPLEXITY, or 0 to turn it off.
    #[arg(
        long,
        env = "BULKWATCH_RATE_LIMIT_ORG_COMPLEXITY",
        default_value_t = 2_000_000
    )]
    pub rate_limit_org_complexity: u32,

    /// The change bus between instances: `database` (PostgreSQL's
    /// LISTEN/NOTIFY, or in-process on SQLite) or `nats` (NATS JetStream fed
    /// from an outbox table, for more events per second than NOTIFY carries
    /// to many instances; PostgreSQL only).
    #[arg(long, env = "BULKWATCH_EVENT_BUS", value_enum, default_value_t = EventBusKind::Database)]
    pub event_bus: EventBusKind,

    /// NATS server of the `nats` change bus.
    #[arg(
        long,
        env = "BULKWATCH_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,

    /// Subject the `nats` change bus publishes on; its stream is named after
    /// it. Every deployment (every database) needs a subject of its own.
    #[arg(
        long,
        env = "BULKWATCH_NATS_SUBJECT",
        default_value = "bulkwatch.events"
    )]
    pub nats_subject: String,

    /// Seconds a graceful shutdown may take before open connections are dropped.
    #[arg(long, env = "BULKWATCH_SHUTDOWN_TIMEOUT", default_value_t = 10)]
    pub shutdown_timeout_secs: u64,
}

/// Which change bus carries events between instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EventBusKind {
    Database,
    Nats,
}

/// A secret from the environment, kept out of `Debug` output and logs.
#[derive(Clone)]
pub struct SigningSecret(pub String);

impl std::str::FromStr for SigningSecret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(SigningSecret(s.to_owned()))
    }
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(..)")
    }
}

impl Config {
    /// A config with every default, for the given database.
    pub fn with_database(database_url: impl Into<String>) -> Self {
        use clap::Parser;
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            config: Config,
        }
        let mut config = Defaults::parse_from(["bulkwatch"]).config;
        config.database_url = database_url.into();
        config
    }

    /// Refuses settings the server could not run with.
    pub fn validate(&self) -> Result<(), String> {
        let known = ["sqlite:", "postgres:", "postgresql:"];
        if !known.iter().any(|p| self.database_url.starts_with(p)) {
            return Err("DATABASE_URL must start with sqlite: or postgres:".into());
        }
        if self.body_limit < 1024 {
            return Err("the body limit must be at least 1024 bytes".into());
        }
        self.retry_schedule()?;
        if self.webhook_concurrency == 0 || self.webhook_timeout_ms == 0 {
            return Err("webhook concurrency and timeout must be positive".into());
        }
        if self.db_connections == 0 {
            return Err("the database pool needs at least one connection".into());
        }
        if self.signing_secret.as_ref().is_some_and(|s| s.0.len() < 32) {
            return Err("the signing secret must be at least 32 bytes".into());
        }
        if self.prune_batch == 0 || self.export_url_ttl_seconds == 0 {
            return Err("the prune batch and the export link lifetime must be positive".into());
        }
        if self.event_bus == EventBusKind::Nats && self.database_url.starts_with("sqlite:") {
            return Err(
                "BULKWATCH_EVENT_BUS=nats needs PostgreSQL: on SQLite one instance serves and its \
                 bus is in-process; leave BULKWATCH_EVENT_BUS unset"
                    .into(),
            );
        }
        let subject_ok = !self.nats_subject.is_empty()
            && self.nats_subject.split('.').all(|t| {
                !t.is_empty()
                    && t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            });
        if !subject_ok {
            return Err(format!(
                "BULKWATCH_NATS_SUBJECT {:?} must be dot-separated tokens of letters, digits, - and _",
                self.nats_subject
            ));
        }
        let budget = self.rate_limit_org_complexity as usize;
        if budget != 0 && budget < self.max_complexity {
            return Err(format!(
                "BULKWATCH_RATE_LIMIT_ORG_COMPLEXITY ({budget}) is below BULKWATCH_MAX_COMPLEXITY ({}): \
                 a query the server accepts could never run; raise it, or 0 turns it off",
                self.max_complexity
            ));
        }
        Ok(())
    }

    /// The gaps between a webhook delivery's attempts.
    pub fn retry_schedule(&self) -> Result<Vec<Duration>, String> {
        self.webhook_retry_schedule
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && *n >= 0.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| {
                        format!(
                            "BULKWATCH_WEBHOOK_RETRY_SCHEDULE: {s:?} is not a number of seconds"
                        )
                    })
            })
            .collect()
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }
}
