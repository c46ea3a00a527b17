//! The `report` baseline on SQLite: the fastest way SQLite itself applies a
//! batch of outcomes. rusqlite against the same SQLite build as the server
//! (one `libsqlite3-sys`), a prepared per-item UPDATE run in a loop and the
//! counter UPDATE, in one IMMEDIATE transaction per batch, WAL with
//! synchronous=NORMAL, on the server's own tables and indexes. No JSON, no
//! async hop: each worker owns its connection on a blocking thread.

use std::path::PathBuf;
use std::time::Duration;

use rusqlite::{Connection, params};
use uuid::Uuid;

use crate::Res;
use crate::raw::{ERROR_CODE, ERROR_MESSAGE, Outcome, RESULT_TEXT, now_ms};

const ITEM: &str = "UPDATE task_items SET status = ?1, result = ?2, error_code = ?3, error_message = ?4, \
     attempts = attempts + 1, started_at = COALESCE(started_at, ?5), finished_at = ?5, updated_at = ?5, \
     lease_token = NULL, lease_expires_at = NULL \
     WHERE task_id = ?6 AND idx = ?7 AND status IN ('PENDING', 'RUNNING')";

const TASK: &str = "UPDATE bulk_tasks SET pending = pending - ?1, succeeded = succeeded + ?2, \
     failed = failed + ?3, version = version + 1, updated_at = ?4, started_at = COALESCE(started_at, ?4), \
     progress = CAST(succeeded + ?2 + failed + ?3 + skipped + rejected + cancelled AS DOUBLE PRECISION) / total, \
     status = CASE WHEN pending - ?1 + running = 0 THEN 'COMPLETED_WITH_FAILURES' ELSE 'RUNNING' END \
     WHERE id = ?5";

/// The database file of a `sqlite://FILE?...` URL.
pub fn path_of(url: &str) -> PathBuf {
    let rest = url.trim_start_matches("sqlite://");
    PathBuf::from(rest.split('?').next().unwrap_or(rest))
}

/// A connection with the server's settings.
pub fn connect(path: &PathBuf) -> Res<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// Applies one batch in one transaction; the item rows changed.
pub fn report_batch(conn: &mut Connection, task: Uuid, batch: &[Outcome]) -> Res<u64> {
    let now = now_ms();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut changed = 0u64;
    let mut failed = 0i64;
    {
        let mut item = tx.prepare_cached(ITEM)?;
        for o in batch {
            let n = if o.failed {
                failed += 1;
                item.execute(params![
                    "FAILED",
                    None::<&str>,
                    ERROR_CODE,
                    ERROR_MESSAGE,
                    now,
                    task.as_bytes(),
                    o.idx
                ])?
            } else {
                item.execute(params![
                    "SUCCEEDED",
                    RESULT_TEXT,
                    None::<&str>,
                    None::<&str>,
                    now,
                    task.as_bytes(),
                    o.idx
                ])?
            };
            changed += n as u64;
        }
        let n = batch.len() as i64;
        tx.prepare_cached(TASK)?
            .execute(params![n, n - failed, failed, now, task.as_bytes()])?;
    }
    tx.commit()?;
    Ok(changed)
}
