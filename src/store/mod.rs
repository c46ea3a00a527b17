//! Every SQL statement of bulkwatch lives under this module; callers pass the
//! caller's organisation and never see a query builder.

pub mod items;
pub mod keys;
pub mod leases;
pub mod page;
pub mod tasks;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr};

pub use migration::DEFAULT_ORGANISATION_ID;

/// The database, as two handles: on SQLite one writer connection (SQLite
/// allows one writer; queueing in the pool is cheaper than SQLITE_BUSY
/// retries) and a pool of readers beside it under WAL; on PostgreSQL both are
/// the same pool.
#[derive(Clone)]
pub struct Db {
    pub read: DatabaseConnection,
    pub write: DatabaseConnection,
    statements: Arc<AtomicU64>,
}

impl Db {
    pub async fn connect(url: &str, connections: u32) -> Result<Self, DbErr> {
        let statements = Arc::new(AtomicU64::new(0));
        let (mut read, mut write) = if url.starts_with("sqlite:") {
            let write = Database::connect(sqlite_options(url, 1)).await?;
            let read = Database::connect(sqlite_options(url, connections)).await?;
            (read, write)
        } else {
            let mut options = ConnectOptions::new(url);
            options
                .max_connections(connections)
                .acquire_timeout(Duration::from_secs(5))
                .sqlx_logging(false);
            let pool = Database::connect(options).await?;
            (pool.clone(), pool)
        };
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
            statements,
        })
    }

    pub fn backend(&self) -> DbBackend {
        self.write.get_database_backend()
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> Result<(), DbErr> {
        Migrator::up(&self.write, None).await
    }

    /// SQL statements issued since start, for `/metrics`.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Whether the database answers, for `/readyz`.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.read.ping().await
    }
}

fn sqlite_options(url: &str, connections: u32) -> ConnectOptions {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    options
}
