//! The change outbox of the NATS JetStream bus: one row per change event,
//! written in the change's transaction and taken by a relay that publishes
//! it to the stream.

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, Statement, Value};

use super::{System, Writer};

/// Queues `payload` in the writing transaction: it exists exactly when the
/// transaction commits.
pub async fn stage(tx: &Writer, payload: String, at: i64) -> Result<(), DbErr> {
    tx.conn()
        .execute_raw(Statement::from_sql_and_values(
            tx.backend(),
            "INSERT INTO change_outbox (organisation_id, payload, created_at) VALUES ($1, $2, $3)",
            [tx.org().into(), payload.into(), at.into()],
        ))
        .await?;
    Ok(())
}

/// Whether this transaction is the relay that publishes now: one relay at a
/// time takes whole batches (relays taking turns row by row would publish
/// small ones). The lock ends with the transaction, or with the connection
/// of an instance that died.
pub async fn lead(tx: &System<DatabaseTransaction>) -> Result<bool, DbErr> {
    let row = tx
        .conn()
        .query_one_raw(Statement::from_string(
            tx.conn().get_database_backend(),
            format!("SELECT pg_try_advisory_xact_lock({RELAY_LOCK}) AS leader"),
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get::<bool>("", "leader"))
        .transpose()?
        .unwrap_or(false))
}

/// The advisory lock key of the relay. Tasks lock their UUID folded to 64
/// bits; should one ever fold to this key, the relay only skips a turn.
const RELAY_LOCK: i64 = 0x0062_7772_656c_6179; // "bwrelay"

/// A queued event.
pub struct Queued {
    pub id: i64,
    pub payload: String,
    pub created_at: i64,
}

/// The oldest queued events, locked for this relay: another instance's
/// relay skips them and takes the next ones (PostgreSQL only; the bus that
/// uses the outbox runs only there).
pub async fn take(tx: &System<DatabaseTransaction>, limit: u64) -> Result<Vec<Queued>, DbErr> {
    tx.conn()
        .query_all_raw(Statement::from_sql_and_values(
            tx.conn().get_database_backend(),
            "SELECT id, payload, created_at FROM change_outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
            [Value::BigInt(Some(limit as i64))],
        ))
        .await?
        .iter()
        .map(|row| {
            Ok(Queued {
                id: row.try_get("", "id")?,
                payload: row.try_get("", "payload")?,
                created_at: row.try_get("", "created_at")?,
            })
        })
        .collect()
}

/// Removes events the stream has acknowledged.
pub async fn remove(tx: &System<DatabaseTransaction>, ids: &[i64]) -> Result<(), DbErr> {
    tx.conn()
        .execute_raw(Statement::from_sql_and_values(
            tx.conn().get_database_backend(),
            "DELETE FROM change_outbox WHERE id = ANY($1::bigint[])",
            [array_literal(ids).into()],
        ))
        .await?;
    Ok(())
}

/// `{1,2,3}`: PostgreSQL's text form of an array, cast in the statement.
fn array_literal(ids: &[i64]) -> String {
    let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
    format!("{{{}}}", ids.join(","))
}
