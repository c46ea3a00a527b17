//! Opening the database: connecting, migrating, and saying plainly what
//! went wrong when that fails (which database, the cause, the next step).

use std::path::Path;
use std::time::Duration;

use super::pg_read::{SessionPool, Sessions};
use migration::{APP_ROLE, Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnAcquireErr, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend,
    DbErr, RuntimeErr, Statement,
};

/// A database that cannot be used, said so that its operator can act.
#[derive(Debug, thiserror::Error)]
#[error("cannot open {target}: {cause}{}", hint.as_deref().map(|h| format!("\n  {h}")).unwrap_or_default())]
pub struct OpenError {
    /// The SQLite file, or the PostgreSQL URL without its password.
    target: String,
    cause: String,
    hint: Option<String>,
}

/// How long a PostgreSQL that does not answer is waited for at start.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a PostgreSQL connection may sit idle before it is checked again.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// The database's pools, migrated.
pub(super) struct Pools {
    pub read: DatabaseConnection,
    pub write: DatabaseConnection,
    /// PostgreSQL's readers, whose sessions carry a tenant.
    pub sessions: Option<SessionPool>,
}

/// The readers and the writer (on PostgreSQL one pool for transactions
/// and one of readers), migrated.
pub(super) async fn pools(url: &str, connections: u32) -> Result<Pools, OpenError> {
    if url.starts_with("sqlite:") {
        let target = format!("the SQLite database {}", sqlite_file(url));
        check_directory(url, &target)?;
        let fail = |e| failure(&target, url, e);
        let write = Database::connect(sqlite_options(url, 1))
            .await
            .map_err(fail)?;
        migrate(&write, &target).await?;
        let read = Database::connect(sqlite_options(url, connections))
            .await
            .map_err(|e| failure(&target, url, e))?;
        Ok(Pools {
            read,
            write,
            sessions: None,
        })
    } else {
        let target = format!("the PostgreSQL database {}", redact(url));
        let role = migrate_postgres(url, &target).await?;
        let mut options = ConnectOptions::new(url);
        options
            .max_connections(connections)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            // A connection in use moments ago is alive: pinging it on every
            // checkout was a round trip added to every request. One that
            // sat idle (where a restart or a proxy may have dropped it) is
            // still checked first.
            .test_before_acquire_if_idle_for(IDLE_BEFORE_PING)
            .sqlx_logging(false);
        if let Some(role) = role {
            options.map_sqlx_postgres_opts(move |o| o.options([("role", role)]));
        }
        let pool = Database::connect(options)
            .await
            .map_err(|e| failure(&target, url, e))?;
        let sessions = Sessions::pool(
            &pool.get_postgres_connection_pool().connect_options(),
            connections as usize,
            CONNECT_TIMEOUT,
            IDLE_BEFORE_PING,
        )
        .map_err(|cause| OpenError {
            target: target.clone(),
            cause,
            hint: None,
        })?;
        Ok(Pools {
            read: pool.clone(),
            write: pool,
            sessions: Some(sessions),
        })
    }
}

/// Applies pending migrations one at a time, so a failure names its migration.
async fn migrate(db: &DatabaseConnection, target: &str) -> Result<(), OpenError> {
    let pending = Migrator::get_pending_migrations(db)
        .await
        .map_err(|e| failure(target, "", e))?;
    for migration in pending {
        Migrator::up(db, Some(1)).await.map_err(|e| OpenError {
            target: target.to_owned(),
            cause: format!("migration {} failed: {}", migration.name(), cause(&e)),
            hint: Some(
                "the database is left at the migration before it; fix the cause and start again"
                    .into(),
            ),
        })?;
    }
    Ok(())
}

/// Migrates over a connection of the login role, then names the role the
/// server must work as: none when the login role is already subject to
/// row-level security, else the role the migrations made for it.
async fn migrate_postgres(url: &str, target: &str) -> Result<Option<&'static str>, OpenError> {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(1)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .sqlx_logging(false);
    let admin = Database::connect(options)
        .await
        .map_err(|e| failure(target, url, e))?;
    migrate(&admin, target).await?;
    let bypasses = async {
        admin
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT rolsuper OR rolbypassrls AS bypasses FROM pg_roles WHERE rolname = current_user",
            ))
            .await?
            .map(|row| row.try_get::<bool>("", "bypasses"))
            .transpose()
    }
    .await
    .map_err(|e| failure(target, url, e))?
    .unwrap_or(false);
    admin.close().await.ok();
    Ok(bypasses.then_some(APP_ROLE))
}

fn sqlite_options(url: &str, connections: u32) -> ConnectOptions {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        // A file has no peer to go away: a ping is a hop to the
        // connection's thread for nothing.
        .test_before_acquire(false)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                // A statement that changes many rows inside a transaction
                // keeps a statement journal, and SQLite moves one over
                // 64 KiB to a temporary file unless told otherwise: a file
                // created, written and deleted for every report of a few
                // hundred items.
                .pragma("temp_store", "memory")
        });
    options
}

/// The file of a `sqlite://FILE?options` URL.
fn sqlite_file(url: &str) -> &str {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    rest.split('?').next().unwrap_or(rest)
}

/// SQLite creates a missing file but not a missing directory.
fn check_directory(url: &str, target: &str) -> Result<(), OpenError> {
    let file = sqlite_file(url);
    if file.is_empty() || file == ":memory:" {
        return Ok(());
    }
    match Path::new(file).parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(OpenError {
            target: target.to_owned(),
            cause: format!("the directory {} does not exist", dir.display()),
            hint: Some(format!(
                "create it (mkdir -p {}) or set DATABASE_URL to a file in an existing directory",
                dir.display()
            )),
        }),
        _ => Ok(()),
    }
}

/// The URL with its password replaced, fit for logs and messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(an unreadable URL)".to_owned(),
    }
}

/// The database's own words, without driver wrapping.
fn cause(err: &DbErr) -> String {
    let runtime = match err {
        DbErr::Conn(r) | DbErr::Exec(r) | DbErr::Query(r) => r,
        DbErr::ConnectionAcquire(ConnAcquireErr::Timeout) => {
            return format!("no connection within {} s", CONNECT_TIMEOUT.as_secs());
        }
        other => return other.to_string(),
    };
    match runtime {
        RuntimeErr::SqlxError(e) => match e.as_ref() {
            sea_orm::sqlx::Error::Database(db) => db.message().to_owned(),
            sea_orm::sqlx::Error::Io(io) => io.to_string(),
            other => other.to_string(),
        },
        RuntimeErr::Internal(m) => m.clone(),
        #[allow(unreachable_patterns)]
        other => other.to_string(),
    }
}

fn failure(target: &str, url: &str, err: DbErr) -> OpenError {
    let cause = cause(&err);
    let lower = cause.to_lowercase();
    let address = url::Url::parse(url).ok().map(|u| {
        format!(
            "{}:{}",
            u.host_str().unwrap_or("localhost"),
            u.port().unwrap_or(5432)
        )
    });
    let hint = if lower.contains("refused")
        || lower.contains("no connection within")
        || lower.contains("timed out")
    {
        address.map(|a| format!("is PostgreSQL running at {a}? Check DATABASE_URL"))
    } else if lower.contains("password authentication") || lower.contains("role") {
        Some("check the user and password in DATABASE_URL".to_owned())
    } else if lower.contains("does not exist") && lower.contains("database") {
        Some("create the database first (createdb NAME) or fix its name in DATABASE_URL".to_owned())
    } else if lower.contains("unable to open")
        || lower.contains("readonly")
        || lower.contains("read-only")
    {
        Some("check that the file and its directory are writable by this user".to_owned())
    } else {
        None
    };
    OpenError {
        target: target.to_owned(),
        cause,
        hint,
    }
}
