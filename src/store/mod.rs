//! Every SQL statement of bulkwatch lives under this module; callers hold a
//! handle scoped to an organisation and never see a query builder.

pub mod audit;
mod by_id;
pub mod change_outbox;
pub mod deadlines;
mod handle;
pub mod items;
pub mod keys;
mod keyset;
pub mod leases;
pub mod metadata;
mod nested;
pub mod notify;
mod open;
pub mod page;
mod pg_read;
pub mod retention;
pub mod secrets;
pub mod tasks;
pub mod webhook_deliveries;
pub mod webhook_dispatch;
pub mod webhooks;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use migration::{ORGANISATION_SETTING, SYSTEM_SETTING};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use uuid::Uuid;

pub use handle::{Reader, Scoped, System, Writer};
pub use migration::DEFAULT_ORGANISATION_ID;
pub use open::{OpenError, redact};
pub use pg_read::ReadConn;

/// Whose rows a transaction may see. On PostgreSQL this becomes the
/// transaction's row-level security setting, the second wall behind the
/// organisation filter every store function applies itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tenant {
    Organisation(Uuid),
    System,
}

/// The row-level security setting of a PostgreSQL transaction. A UUID's
/// text is hex and dashes, safe to inline; inlined, the setting costs one
/// simple-protocol round trip and no prepare.
fn setting(tenant: Tenant) -> String {
    // Both values, so a session value left by anything else (a pooler in
    // transaction mode hands sessions around) cannot widen what it sees.
    let (org, system) = match tenant {
        Tenant::Organisation(id) => (id.to_string(), ""),
        Tenant::System => (String::new(), "on"),
    };
    format!("SET LOCAL {ORGANISATION_SETTING} = '{org}'; SET LOCAL {SYSTEM_SETTING} = '{system}'")
}

/// The database, as two pools: on SQLite one writer connection (SQLite
/// allows one writer; queueing in the pool is cheaper than SQLITE_BUSY
/// retries) and a pool of readers beside it under WAL; on PostgreSQL a pool
/// for transactions and one of readers whose sessions carry a tenant, both
/// working as a role that row-level security applies to. Callers reach
/// them only through `reader` and `begin`, which name a tenant.
#[derive(Clone)]
pub struct Db {
    read: DatabaseConnection,
    write: DatabaseConnection,
    sessions: Option<pg_read::SessionPool>,
    statements: Arc<AtomicU64>,
}

impl Db {
    /// Connects and applies every pending migration; the error says which
    /// database, what failed and what to do about it.
    pub async fn open(url: &str, connections: u32) -> Result<Self, OpenError> {
        let statements = Arc::new(AtomicU64::new(0));
        let open::Pools {
            mut read,
            mut write,
            sessions,
        } = open::pools(url, connections).await?;
        let counter = statements.clone();
        read.set_metric_callback(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        if write.get_database_backend() == DbBackend::Sqlite {
            let counter = statements.clone();
            write.set_metric_callback(move |_| {
                counter.fetch_add(1, Ordering::Relaxed);
            });
        } else {
            write = read.clone();
        }
        Ok(Db {
            read,
            write,
            sessions,
            statements,
        })
    }

    pub fn backend(&self) -> DbBackend {
        self.write.get_database_backend()
    }

    /// For a PostgreSQL reached through a pooler in transaction mode, which
    /// may hand a server session to another client between transactions:
    /// readers then carry their organisation in a transaction of their own
    /// (one round trip more per request) instead of in the session.
    pub fn behind_transaction_pooler(mut self) -> Self {
        self.sessions = None;
        self
    }

    /// Reads as organisation `org`. On PostgreSQL a reader connection whose
    /// session carries the organisation; on SQLite, the reader pool.
    pub async fn reader(&self, org: Uuid) -> Result<Reader<'_>, DbErr> {
        Ok(Scoped::new(
            self.executor(Tenant::Organisation(org)).await?,
            org,
        ))
    }

    /// A write transaction as organisation `org`.
    pub async fn begin(&self, org: Uuid) -> Result<Writer, DbErr> {
        Ok(Scoped::new(
            self.transaction(Tenant::Organisation(org)).await?,
            org,
        ))
    }

    /// Reads across organisations: authentication, the reaper's scan, the CLI.
    pub async fn system_reader(&self) -> Result<System<ReadConn<'_>>, DbErr> {
        Ok(System::new(self.executor(Tenant::System).await?))
    }

    /// A write transaction across organisations: key management from the CLI.
    pub async fn system_begin(&self) -> Result<System<DatabaseTransaction>, DbErr> {
        Ok(System::new(self.transaction(Tenant::System).await?))
    }

    async fn executor(&self, tenant: Tenant) -> Result<ReadConn<'_>, DbErr> {
        let statements = self.statements.clone();
        match (&self.sessions, tenant, self.backend()) {
            // System reads (authentication, the reaper's scan, the CLI) are
            // few, and take a transaction: a session never carries the
            // system setting, which widens what a statement may see.
            (Some(pool), Tenant::Organisation(org), _) => Ok(ReadConn::Postgres(
                pg_read::PgRead::session(pool, org, statements).await?,
            )),
            (_, _, DbBackend::Postgres) => {
                let pool = self.read.get_postgres_connection_pool();
                Ok(ReadConn::Postgres(
                    pg_read::PgRead::transaction(pool, &setting(tenant), statements).await?,
                ))
            }
            _ => Ok(ReadConn::Pool(&self.read)),
        }
    }

    async fn transaction(&self, tenant: Tenant) -> Result<DatabaseTransaction, DbErr> {
        // On SQLite the write lock is taken at BEGIN, where the busy timeout
        // waits for it: a deferred transaction that read first could not
        // upgrade once another process (the CLI, a second server) had written.
        let tx = self
            .write
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await?;
        if self.backend() == DbBackend::Postgres {
            tx.execute_unprepared(&setting(tenant)).await?;
        }
        Ok(tx)
    }

    /// SQL statements issued since start, for `/metrics`.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Whether the database answers, for `/readyz`.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.read.ping().await?;
        match &self.sessions {
            Some(readers) => pg_read::ping(readers).await,
            None => Ok(()),
        }
    }
}
