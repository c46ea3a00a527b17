//! The one statement of the change bus: PostgreSQL's NOTIFY, sent inside
//! the writing transaction so that it is delivered exactly when that commits.

use sea_orm::{ConnectionTrait, DbErr, Statement};

use super::Writer;

/// Queues `payload` on `channel`; PostgreSQL delivers it at commit, in commit order.
pub async fn notify(tx: &Writer, channel: &str, payload: String) -> Result<(), DbErr> {
    tx.conn()
        .execute_raw(Statement::from_sql_and_values(
            tx.backend(),
            "SELECT pg_notify($1, $2)",
            [channel.into(), payload.into()],
        ))
        .await?;
    Ok(())
}
