//! PostgreSQL reads in one round trip.
//!
//! Row-level security needs the organisation set on the connection. A
//! transaction carrying it (`BEGIN`, `SET LOCAL`, the read, `ROLLBACK`)
//! costs PostgreSQL four statements and the server two round trips for a
//! one-row poll. Readers instead draw from a pool of their own whose
//! connections carry the organisation as a session setting and remember
//! which one they carry: a reader for the same organisation sends only its
//! prepared read, and one for another organisation sends the setting first.
//! The connections start read-only (a write through a reader fails instead
//! of committing), and a connection whose setting may be unknown, because
//! it was interrupted while changing it or failed outside the database, is
//! set again or dropped, never trusted. (Behind a pooler in transaction
//! mode a session is not the server's to keep, and readers open a
//! transaction carrying `SET LOCAL` instead.) Each read then runs in its own
//! implicit transaction: under READ COMMITTED a transaction gave every
//! statement its own snapshot anyway. The statements themselves are
//! SeaORM's, bound with sea-query's sqlx values, and their rows are SeaORM's
//! `QueryResult`s, so every store function reads through this unchanged.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool::managed::{self, Metrics, Object, PoolError, RecycleError, RecycleResult};
use sea_orm::sqlx::postgres::PgConnectOptions;
use sea_orm::sqlx::{self, AssertSqlSafe, Connection, PgConnection, PgPool, Postgres};
use sea_orm::{
    ConnAcquireErr, ConnectionTrait, DbBackend, DbErr, ExecResult, QueryResult, RuntimeErr,
    Statement, Values,
};
use sea_query_sqlx::SqlxValues;
use tokio::sync::Mutex;

use migration::{ORGANISATION_SETTING, SYSTEM_SETTING};

use uuid::Uuid;

/// A reader's connection and the organisation its session is set to;
/// `None` while that is not known.
pub(super) struct Session {
    conn: PgConnection,
    organisation: Option<Uuid>,
    /// A statement was sent and its answer not yet read to the end: the
    /// request was dropped while waiting.
    in_flight: bool,
    broken: bool,
}

impl Session {
    /// The connection, for one statement whose answer is then read to the
    /// end (`answered`) unless the request is dropped first.
    fn sending(&mut self) -> &mut PgConnection {
        self.in_flight = true;
        &mut self.conn
    }

    /// The statement's answer is read: an error after which the connection
    /// cannot be trusted marks it for the pool to drop rather than lend
    /// again.
    fn answered<T>(&mut self, result: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        self.in_flight = false;
        if let Err(e) = &result {
            self.broken |= connection_ended(e);
        }
        result
    }
}

/// Opens and checks the readers' connections.
pub(super) struct Sessions {
    options: PgConnectOptions,
    idle_before_ping: Duration,
}

/// How long a reader connection serves before it is replaced, as sqlx's
/// pool does for the writers'.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

pub(super) type SessionPool = managed::Pool<Sessions>;

impl Sessions {
    /// A pool of at most `size` reader connections made with `options` (the
    /// writers' own, so the same role); one idle `idle_before_ping` or
    /// longer is pinged before it is lent again.
    pub(super) fn pool(
        options: &PgConnectOptions,
        size: usize,
        timeout: Duration,
        idle_before_ping: Duration,
    ) -> Result<SessionPool, String> {
        let options = options
            .clone()
            .options([("default_transaction_read_only", "on")]);
        managed::Pool::builder(Sessions {
            options,
            idle_before_ping,
        })
        .max_size(size)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| e.to_string())
    }
}

impl managed::Manager for Sessions {
    type Type = Session;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<Session, sqlx::Error> {
        Ok(Session {
            conn: PgConnection::connect_with(&self.options).await?,
            organisation: None,
            in_flight: false,
            broken: false,
        })
    }

    async fn recycle(
        &self,
        session: &mut Session,
        metrics: &Metrics,
    ) -> RecycleResult<sqlx::Error> {
        if session.broken {
            return Err(RecycleError::message("the connection failed"));
        }
        if metrics.age() >= MAX_LIFETIME {
            return Err(RecycleError::message("the connection is old"));
        }
        // A statement left running by a dropped request finishes here,
        // within the recycle timeout, not in the next request's time.
        if session.in_flight || metrics.last_used() >= self.idle_before_ping {
            session.conn.ping().await?;
            session.in_flight = false;
        }
        Ok(())
    }
}

/// The session setting that makes a connection read as organisation `org`.
/// Sessions never carry the system setting (system reads take a
/// transaction), and it is cleared all the same, so a session can only ever
/// narrow what a statement sees. A UUID's text is hex and dashes, safe to
/// inline.
fn session_setting(org: Uuid) -> String {
    format!("SET {ORGANISATION_SETTING} = '{org}'; SET {SYSTEM_SETTING} = ''")
}

/// What a PostgreSQL reader holds while it reads.
enum Held {
    Session(Object<Sessions>),
    /// Behind a pooler in transaction mode, which hands a server session to
    /// another client between transactions: a transaction carrying the
    /// organisation with `SET LOCAL`, rolled back when dropped.
    Transaction(sqlx::Transaction<'static, Postgres>),
}

impl Held {
    fn conn(&mut self) -> &mut PgConnection {
        match self {
            Held::Session(session) => session.sending(),
            Held::Transaction(tx) => tx,
        }
    }

    fn done<T>(&mut self, result: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        match self {
            Held::Session(session) => session.answered(result),
            Held::Transaction(_) => result,
        }
    }
}

/// An error after which the connection cannot be trusted: not one from a
/// statement (the connection may be gone, or mid-message), or the server
/// ending the connection (class 57P: operator
/// intervention; class 08: connection exception).
fn connection_ended(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("57P") || c.starts_with("08")),
        _ => true,
    }
}

fn conn_err(e: sqlx::Error) -> DbErr {
    DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e)))
}

fn acquire_err(e: PoolError<sqlx::Error>) -> DbErr {
    match e {
        PoolError::Timeout(_) => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        PoolError::Backend(e) => conn_err(e),
        _ => DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
    }
}

/// Whether the readers' pool lends a connection that answers, for
/// `/readyz`.
pub(super) async fn ping(pool: &SessionPool) -> Result<(), DbErr> {
    let mut session = pool.get().await.map_err(acquire_err)?;
    let answer = session.sending().ping().await;
    session.answered(answer).map_err(conn_err)
}

pub struct PgRead {
    held: Mutex<Held>,
    statements: Arc<AtomicU64>,
}

impl PgRead {
    /// A connection from `pool` whose session reads as organisation `org`.
    pub(super) async fn session(
        pool: &SessionPool,
        org: Uuid,
        statements: Arc<AtomicU64>,
    ) -> Result<Self, DbErr> {
        let mut session = pool.get().await.map_err(acquire_err)?;
        if session.organisation != Some(org) {
            // Unknown until the database has confirmed the new setting: a
            // request dropped in between leaves it to be set again.
            session.organisation = None;
            let set = sqlx::raw_sql(AssertSqlSafe(session_setting(org)))
                .execute(session.sending())
                .await;
            session.answered(set).map_err(conn_err)?;
            session.organisation = Some(org);
        }
        Ok(Self::holding(Held::Session(session), statements))
    }

    /// A transaction from `pool` opened with `setting` (a `SET LOCAL ...`
    /// of the store's own making, never user input) in the same message.
    pub(super) async fn transaction(
        pool: &PgPool,
        setting: &str,
        statements: Arc<AtomicU64>,
    ) -> Result<Self, DbErr> {
        let tx = pool
            .begin_with(AssertSqlSafe(format!("BEGIN; {setting}")))
            .await
            .map_err(conn_err)?;
        Ok(Self::holding(Held::Transaction(tx), statements))
    }

    fn holding(held: Held, statements: Arc<AtomicU64>) -> Self {
        PgRead {
            held: Mutex::new(held),
            statements,
        }
    }

    fn counted(&self) {
        self.statements.fetch_add(1, Ordering::Relaxed);
    }
}

fn query(stmt: &Statement) -> sqlx::query::Query<'_, Postgres, SqlxValues> {
    let values = stmt.values.clone().unwrap_or(Values(Vec::new()));
    sqlx::query_with(AssertSqlSafe(stmt.sql.as_str()), SqlxValues(values))
}

fn query_err(e: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(e)))
}

fn exec_err(e: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(Arc::new(e)))
}

#[async_trait::async_trait]
impl ConnectionTrait for PgRead {
    fn get_database_backend(&self) -> DbBackend {
        DbBackend::Postgres
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.counted();
        let mut held = self.held.lock().await;
        let done = query(&stmt).execute(held.conn()).await;
        Ok(held.done(done).map_err(exec_err)?.into())
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.counted();
        let mut held = self.held.lock().await;
        let done = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(held.conn())
            .await;
        Ok(held.done(done).map_err(exec_err)?.into())
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.counted();
        let mut held = self.held.lock().await;
        let row = query(&stmt).fetch_optional(held.conn()).await;
        Ok(held.done(row).map_err(query_err)?.map(Into::into))
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.counted();
        let mut held = self.held.lock().await;
        let rows = query(&stmt).fetch_all(held.conn()).await;
        Ok(held
            .done(rows)
            .map_err(query_err)?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

/// What a `Reader` reads through: SQLite's reader pool, or a PostgreSQL
/// connection whose session carries the organisation.
pub enum ReadConn<'a> {
    Pool(&'a sea_orm::DatabaseConnection),
    Postgres(PgRead),
}

#[async_trait::async_trait]
impl ConnectionTrait for ReadConn<'_> {
    fn get_database_backend(&self) -> DbBackend {
        match self {
            ReadConn::Pool(c) => c.get_database_backend(),
            ReadConn::Postgres(c) => c.get_database_backend(),
        }
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        match self {
            ReadConn::Pool(c) => c.execute_raw(stmt).await,
            ReadConn::Postgres(c) => c.execute_raw(stmt).await,
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        match self {
            ReadConn::Pool(c) => c.execute_unprepared(sql).await,
            ReadConn::Postgres(c) => c.execute_unprepared(sql).await,
        }
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        match self {
            ReadConn::Pool(c) => c.query_one_raw(stmt).await,
            ReadConn::Postgres(c) => c.query_one_raw(stmt).await,
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match self {
            ReadConn::Pool(c) => c.query_all_raw(stmt).await,
            ReadConn::Postgres(c) => c.query_all_raw(stmt).await,
        }
    }
}
