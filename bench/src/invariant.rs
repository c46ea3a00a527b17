//! The checks after a run with faults, straight from the tables: every item
//! final, every acknowledged outcome stored, and every task's counters equal
//! to its item rows.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;

use sea_orm::sqlx;
use uuid::Uuid;

use crate::raw::Pool;
use crate::resilient::Acks;
use crate::{Figures, Res};

/// Tasks whose counters differ from their item rows.
const MISMATCHED: &str = "SELECT COUNT(*) FROM bulk_tasks t LEFT JOIN (
    SELECT task_id, COUNT(*) AS total,
      SUM(CASE WHEN status = 'PENDING' THEN 1 ELSE 0 END) AS pending,
      SUM(CASE WHEN status = 'RUNNING' THEN 1 ELSE 0 END) AS running,
      SUM(CASE WHEN status = 'SUCCEEDED' THEN 1 ELSE 0 END) AS succeeded,
      SUM(CASE WHEN status = 'FAILED' THEN 1 ELSE 0 END) AS failed,
      SUM(CASE WHEN status = 'SKIPPED' THEN 1 ELSE 0 END) AS skipped,
      SUM(CASE WHEN status = 'REJECTED' THEN 1 ELSE 0 END) AS rejected,
      SUM(CASE WHEN status = 'CANCELLED' THEN 1 ELSE 0 END) AS cancelled
    FROM task_items GROUP BY task_id) c ON c.task_id = t.id
  WHERE COALESCE(c.total, 0) <> t.total OR COALESCE(c.pending, 0) <> t.pending
    OR COALESCE(c.running, 0) <> t.running OR COALESCE(c.succeeded, 0) <> t.succeeded
    OR COALESCE(c.failed, 0) <> t.failed OR COALESCE(c.skipped, 0) <> t.skipped
    OR COALESCE(c.rejected, 0) <> t.rejected OR COALESCE(c.cancelled, 0) <> t.cancelled";

const ITEMS: &str = "SELECT idx, status FROM task_items WHERE task_id = $1";

/// How many tasks have counters that differ from their item rows.
pub async fn mismatched(pool: &Pool) -> Res<i64> {
    scalar(pool, MISMATCHED).await
}

async fn scalar(pool: &Pool, sql: &'static str) -> Res<i64> {
    Ok(match pool {
        Pool::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await?,
        Pool::Pg(p) => sqlx::query_scalar(sql).fetch_one(p).await?,
    })
}

async fn items(pool: &Pool, task: Uuid) -> Res<HashMap<i64, String>> {
    let rows: Vec<(i32, String)> = match pool {
        Pool::Sqlite(p) => sqlx::query_as(ITEMS).bind(task).fetch_all(p).await?,
        Pool::Pg(p) => sqlx::query_as(ITEMS).bind(task).fetch_all(p).await?,
    };
    Ok(rows.into_iter().map(|(i, s)| (i64::from(i), s)).collect())
}

/// Checks the tables against what clients were told; adds the figures and
/// returns the violations.
pub async fn check(
    pool: &Pool,
    scenario: &'static str,
    claimed: Uuid,
    n: u64,
    acks: &Acks,
    out: &mut Figures,
) -> Res<Vec<String>> {
    let mut problems = Vec::new();
    let acked = acks.items.lock().expect("lock").clone();
    let mut by_task: HashMap<Uuid, Vec<(i64, &str)>> = HashMap::new();
    for (task, idx, outcome) in &acked {
        by_task.entry(*task).or_default().push((*idx, outcome));
    }
    let mut lost = 0u64;
    let mut first_lost = None;
    for (task, list) in &by_task {
        let rows = items(pool, *task).await?;
        for (idx, outcome) in list {
            if rows.get(idx).map(String::as_str) != Some(*outcome) {
                lost += 1;
                first_lost.get_or_insert(format!(
                    "task {task} item {idx}: acknowledged {outcome}, stored {:?}",
                    rows.get(idx)
                ));
            }
        }
    }
    let rows = items(pool, claimed).await?;
    let not_final = rows
        .values()
        .filter(|s| *s == "PENDING" || *s == "RUNNING")
        .count();
    let mismatched = mismatched(pool).await?;
    let applied = acks.applied.load(Ordering::Relaxed);
    let conflicts = acks.conflicts.load(Ordering::Relaxed);
    let double = applied.saturating_sub(n) + conflicts;

    out.add(scenario, "items", rows.len() as f64, "items");
    out.add(scenario, "items_not_final", not_final as f64, "items");
    out.add(
        scenario,
        "acknowledged_outcomes",
        acked.len() as f64,
        "outcomes",
    );
    out.add(scenario, "lost", lost as f64, "outcomes");
    out.add(scenario, "double", double as f64, "items");
    out.add(scenario, "applied_acknowledged", applied as f64, "items");
    out.add(
        scenario,
        "duplicates_answered",
        acks.duplicates.load(Ordering::Relaxed) as f64,
        "items",
    );
    out.add(
        scenario,
        "lease_lost",
        acks.lease_lost.load(Ordering::Relaxed) as f64,
        "items",
    );
    out.add(
        scenario,
        "tasks_counters_mismatched",
        mismatched as f64,
        "tasks",
    );

    if rows.len() as u64 != n {
        problems.push(format!("{} item rows of {n}", rows.len()));
    }
    if not_final > 0 {
        problems.push(format!("{not_final} items are not final"));
    }
    if lost > 0 {
        problems.push(format!(
            "{lost} acknowledged outcomes are not stored; first: {}",
            first_lost.unwrap_or_default()
        ));
    }
    if double > 0 {
        let first = acks.first_conflict.lock().expect("lock").clone();
        problems.push(format!(
            "{double} items counted twice or conflicting ({applied} applied of {n}); first conflict: {first:?}"
        ));
    }
    if mismatched > 0 {
        problems.push(format!(
            "{mismatched} tasks have counters that differ from their rows"
        ));
    }
    Ok(problems)
}

/// Panics any server log in `dir` records (killed instances' logs included).
pub fn panics(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "log")
            && let Ok(text) = std::fs::read_to_string(&path)
            && let Some(line) = text.lines().find(|l| l.contains("panicked"))
        {
            found.push(format!("{}: {line}", path.display()));
        }
    }
    found
}
