//! A PostgreSQL read transaction that costs one round trip to open.
//!
//! Row-level security needs the organisation set inside a transaction.
//! Through SeaORM that is `BEGIN`, then `SET LOCAL`, then the read, then
//! `ROLLBACK`: four round trips for a one-row poll. Here `BEGIN` and the
//! setting travel as one simple-protocol message, the read is one prepared
//! statement, and the rollback sqlx queues on drop rides along with the next
//! message on that connection. The statements themselves are SeaORM's,
//! bound with sea-query's sqlx values, and their rows are SeaORM's
//! `QueryResult`s, so every store function reads through this unchanged.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::sqlx::{self, AssertSqlSafe, PgPool, Postgres};
use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, ExecResult, QueryResult, RuntimeErr, Statement, Values,
};
use sea_query_sqlx::SqlxValues;
use tokio::sync::Mutex;

pub struct PgRead {
    tx: Mutex<sqlx::Transaction<'static, Postgres>>,
    statements: Arc<AtomicU64>,
}

impl PgRead {
    /// Opens the transaction with `setting` (a `SET LOCAL ...` of the
    /// store's own making, never user input) in the same message.
    pub(super) async fn begin(
        pool: &PgPool,
        setting: &str,
        statements: Arc<AtomicU64>,
    ) -> Result<Self, DbErr> {
        let tx = pool
            .begin_with(AssertSqlSafe(format!("BEGIN; {setting}")))
            .await
            .map_err(|e| DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e))))?;
        Ok(PgRead {
            tx: Mutex::new(tx),
            statements,
        })
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
        let mut tx = self.tx.lock().await;
        Ok(query(&stmt)
            .execute(&mut **tx)
            .await
            .map_err(exec_err)?
            .into())
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.counted();
        let mut tx = self.tx.lock().await;
        Ok(sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(&mut **tx)
            .await
            .map_err(exec_err)?
            .into())
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.counted();
        let mut tx = self.tx.lock().await;
        Ok(query(&stmt)
            .fetch_optional(&mut **tx)
            .await
            .map_err(query_err)?
            .map(Into::into))
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.counted();
        let mut tx = self.tx.lock().await;
        Ok(query(&stmt)
            .fetch_all(&mut **tx)
            .await
            .map_err(query_err)?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

/// What a `Reader` reads through: SQLite's reader pool, or a PostgreSQL
/// transaction carrying the organisation.
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
