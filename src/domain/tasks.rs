//! Task lifecycle: create, append, seal, cancel, fail, retry, delete.

use std::collections::HashSet;
use std::sync::LazyLock;

use entity::bulk_task;
use sea_orm::{DatabaseTransaction, DbErr, SqlErr};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::status::{Counters, ItemStatus, derive_status};
use super::{Principal, now_ms};
use crate::error::{
    AppError, AppResult, bad_input, conflict, invalid_state, limit_exceeded, not_found,
};
use crate::events::{EventBus, Staged, TaskEvent};
use crate::store::items::{ItemChange, NewItem};
use crate::store::{Db, Tenant, items, tasks};

/// Largest payload, metadata or result accepted, in bytes of JSON.
pub const MAX_JSON_BYTES: usize = 64 * 1024;
/// Most items accepted in one create or append.
pub const MAX_ITEMS_PER_CALL: usize = 200_000;
pub const DEFAULT_MAX_ATTEMPTS: i32 = 3;
const MAX_ATTEMPTS_LIMIT: i32 = 100;
const MAX_TEXT: usize = 10_000;
const MAX_KEY: usize = 255;
/// Most entries in a list argument that becomes bind parameters.
pub const MAX_LIST: usize = 10_000;

static TASK_TYPE: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[a-z][a-z0-9_.:-]{0,63}$").expect("a valid pattern"));

#[derive(Clone, Debug, Serialize)]
pub struct NewTaskItem {
    pub client_item_id: Option<String>,
    pub payload: Option<Value>,
}

#[derive(Clone, Debug, Serialize)]
pub struct NewTask {
    pub task_type: String,
    pub description: Option<String>,
    pub metadata: Option<Value>,
    pub idempotency_key: Option<String>,
    pub max_attempts: Option<i32>,
    pub sealed: Option<bool>,
    pub items: Vec<NewTaskItem>,
}

/// An item refused at admission; it is stored as REJECTED.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    pub index: i32,
    pub client_item_id: Option<String>,
    pub code: &'static str,
    pub message: String,
}

pub struct Created {
    pub task: bulk_task::Model,
    pub created: bool,
    pub rejected: Vec<Rejection>,
}

pub struct Appended {
    pub task: bulk_task::Model,
    pub rejected: Vec<Rejection>,
}

fn validate(input: &NewTask) -> AppResult<()> {
    if !TASK_TYPE.is_match(&input.task_type) {
        return Err(bad_input(
            "`type` must start with a lower-case letter and use only a-z, 0-9, _ . : - (at most 64 characters)",
        ));
    }
    if input
        .description
        .as_ref()
        .is_some_and(|d| d.len() > MAX_TEXT)
    {
        return Err(bad_input(format!(
            "`description` must be at most {MAX_TEXT} bytes"
        )));
    }
    if let Some(meta) = &input.metadata {
        if !meta.is_object() {
            return Err(bad_input("`metadata` must be a JSON object"));
        }
        if serde_json::to_string(meta)?.len() > MAX_JSON_BYTES {
            return Err(bad_input(format!(
                "`metadata` must be at most {MAX_JSON_BYTES} bytes"
            )));
        }
    }
    if let Some(key) = &input.idempotency_key
        && (key.is_empty() || key.len() > MAX_KEY)
    {
        return Err(bad_input(format!(
            "`idempotencyKey` must be 1 to {MAX_KEY} bytes"
        )));
    }
    if let Some(n) = input.max_attempts
        && !(1..=MAX_ATTEMPTS_LIMIT).contains(&n)
    {
        return Err(bad_input(format!(
            "`maxAttempts` must be between 1 and {MAX_ATTEMPTS_LIMIT}"
        )));
    }
    check_item_count(input.items.len())
}

fn check_item_count(n: usize) -> AppResult<()> {
    if n > MAX_ITEMS_PER_CALL {
        return Err(limit_exceeded(format!(
            "at most {MAX_ITEMS_PER_CALL} items per call; append the rest with appendTaskItems"
        )));
    }
    Ok(())
}

/// The admission codes, as stored text comes back.
fn rejection_code(code: &str) -> &'static str {
    [
        "DUPLICATE_CLIENT_ITEM_ID",
        "PAYLOAD_TOO_LARGE",
        "PAYLOAD_NOT_OBJECT",
        "INVALID_CLIENT_ITEM_ID",
    ]
    .into_iter()
    .find(|c| *c == code)
    .unwrap_or("REJECTED")
}

/// Decides which items are admitted; `taken` holds client ids that accepted
/// items of the task already use.
fn admit(
    items: &[NewTaskItem],
    first_index: i32,
    mut taken: HashSet<String>,
    now: i64,
) -> AppResult<(Vec<NewItem>, Vec<Rejection>)> {
    let mut rows = Vec::with_capacity(items.len());
    let mut rejected = Vec::new();
    for (n, item) in items.iter().enumerate() {
        let index = first_index + n as i32;
        let payload = item
            .payload
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?;
        let refusal = match (&item.client_item_id, &item.payload, &payload) {
            (Some(id), _, _) if id.is_empty() || id.len() > MAX_KEY || id.contains('\0') => Some((
                "INVALID_CLIENT_ITEM_ID",
                format!("clientItemId must be 1 to {MAX_KEY} bytes, without NUL"),
            )),
            (_, Some(p), _) if !p.is_object() => {
                Some(("PAYLOAD_NOT_OBJECT", "payload must be a JSON object".into()))
            }
            (_, _, Some(text)) if text.len() > MAX_JSON_BYTES => Some((
                "PAYLOAD_TOO_LARGE",
                format!(
                    "payload is {} bytes, the limit is {MAX_JSON_BYTES}",
                    text.len()
                ),
            )),
            (Some(id), _, _) if taken.contains(id) => Some((
                "DUPLICATE_CLIENT_ITEM_ID",
                format!("clientItemId {id:?} is already used by another item of this task"),
            )),
            _ => None,
        };
        let mut row = NewItem {
            id: NewItem::new_id(),
            idx: index,
            client_item_id: item.client_item_id.clone(),
            status: ItemStatus::Pending.as_str(),
            payload,
            error_code: None,
            error_message: None,
            finished_at: None,
        };
        match refusal {
            Some((code, message)) => {
                row.status = ItemStatus::Rejected.as_str();
                row.error_code = Some(code);
                row.error_message = Some(message.clone());
                row.finished_at = Some(now);
                rejected.push(Rejection {
                    index,
                    client_item_id: item.client_item_id.clone(),
                    code,
                    message,
                });
            }
            None => {
                if let Some(id) = &item.client_item_id {
                    taken.insert(id.clone());
                }
            }
        }
        rows.push(row);
    }
    Ok((rows, rejected))
}

fn count_admitted(counters: &mut Counters, rows: &[NewItem]) {
    let rejected = rows
        .iter()
        .filter(|r| r.status == ItemStatus::Rejected.as_str())
        .count() as i32;
    counters.admit(ItemStatus::Rejected, rejected);
    counters.admit(ItemStatus::Pending, rows.len() as i32 - rejected);
}

/// The time of a change to a locked task: never before its last change, so
/// every row the change writes carries the task's new `updated_at`, even
/// when instances' clocks disagree.
pub(crate) fn clock(task: &bulk_task::Model) -> i64 {
    now_ms().max(task.updated_at)
}

/// Records a committed-to-be change on the task row: counters, derived
/// status and progress, timestamps and a new version.
pub(crate) fn touch(task: &mut bulk_task::Model, c: Counters, now: i64) {
    task.total = c.total;
    task.pending = c.pending;
    task.running = c.running;
    task.succeeded = c.succeeded;
    task.failed = c.failed;
    task.skipped = c.skipped;
    task.rejected = c.rejected;
    task.cancelled = c.cancelled;
    let status = derive_status(
        &c,
        task.sealed,
        task.cancel_requested,
        task.error_code.is_some(),
    );
    task.status = status.as_str().to_owned();
    task.progress = c.progress(task.sealed);
    if task.started_at.is_none() && c.running + c.succeeded + c.failed + c.skipped > 0 {
        task.started_at = Some(now);
    }
    task.finished_at = if status.is_terminal() {
        task.finished_at.or(Some(now))
    } else {
        None
    };
    task.version += 1;
    task.updated_at = now.max(task.updated_at);
}

/// Writes item changes and the task's new state in `tx`, commits, and then
/// delivers the change to subscribers.
pub(crate) async fn commit_items(
    tx: DatabaseTransaction,
    events: &EventBus,
    task: &mut bulk_task::Model,
    counters: Counters,
    now: i64,
    changes: &[ItemChange],
) -> AppResult<()> {
    items::apply(&tx, task.id, now, changes).await?;
    touch(task, counters, now);
    tasks::save(&tx, task).await?;
    let indexes = changes.iter().map(|c| c.idx).collect();
    let staged = events.stage(&tx, event(task, Some(indexes))).await?;
    tx.commit().await?;
    staged.dispatch();
    Ok(())
}

/// The event of a change to `task`; `items` lists the indexes of the items
/// it touched, `None` for "all items changed at the task's `updated_at`".
pub(crate) fn event(task: &bulk_task::Model, items: Option<Vec<i32>>) -> TaskEvent {
    TaskEvent {
        organisation_id: task.organisation_id,
        task_id: task.id,
        version: task.version,
        at: task.updated_at,
        items,
        deleted: false,
    }
}

fn request_hash(input: &NewTask) -> AppResult<String> {
    let bytes = serde_json::to_vec(input)?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// A repeat of the create that made `existing`: the same answer, rejected
/// items included, so a producer whose first response was lost learns them.
async fn same_request(db: &Db, existing: bulk_task::Model, hash: &str) -> AppResult<Created> {
    if existing.request_hash.as_deref() == Some(hash) {
        let reader = db
            .reader(Tenant::Organisation(existing.organisation_id))
            .await?;
        let rejected = items::rejected(&reader, existing.id)
            .await?
            .into_iter()
            .map(|r| Rejection {
                index: r.idx,
                client_item_id: r.client_item_id,
                code: rejection_code(r.error_code.as_deref().unwrap_or_default()),
                message: r.error_message.unwrap_or_default(),
            })
            .collect();
        Ok(Created {
            task: existing,
            created: false,
            rejected,
        })
    } else {
        Err(conflict(
            "this idempotencyKey was used for a different task",
        ))
    }
}

pub async fn create(
    db: &Db,
    events: &EventBus,
    who: Principal,
    input: NewTask,
) -> AppResult<Created> {
    validate(&input)?;
    // Only a key needs the fingerprint that tells a retry from a reuse.
    let hash = match &input.idempotency_key {
        Some(_) => request_hash(&input)?,
        None => String::new(),
    };
    let org = who.organisation_id;
    if let Some(key) = &input.idempotency_key {
        let existing =
            tasks::find_by_idempotency_key(&db.reader(who.tenant()).await?, org, key).await?;
        if let Some(existing) = existing {
            return same_request(db, existing, &hash).await;
        }
    }
    let now = now_ms();
    let (rows, rejected) = admit(&input.items, 0, HashSet::new(), now)?;
    let mut counters = Counters::default();
    count_admitted(&mut counters, &rows);
    let mut task = bulk_task::Model {
        id: Uuid::now_v7(),
        organisation_id: org,
        task_type: input.task_type.clone(),
        description: input.description.clone(),
        status: String::new(),
        sealed: input.sealed.unwrap_or(true),
        cancel_requested: false,
        total: 0,
        pending: 0,
        running: 0,
        succeeded: 0,
        failed: 0,
        skipped: 0,
        rejected: 0,
        cancelled: 0,
        progress: 0.0,
        version: 0,
        error_code: None,
        error_message: None,
        error_details: None,
        metadata: serde_json::to_string(
            input
                .metadata
                .as_ref()
                .unwrap_or(&Value::Object(Default::default())),
        )?,
        idempotency_key: input.idempotency_key.clone(),
        request_hash: (!hash.is_empty()).then(|| hash.clone()),
        max_attempts: input.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS),
        created_at: now,
        updated_at: now,
        started_at: None,
        finished_at: None,
    };
    touch(&mut task, counters, now);

    let result: Result<Staged, DbErr> = async {
        let tx = db.begin(who.tenant()).await?;
        // A second create with the key may have committed since the check above.
        if let Some(key) = &input.idempotency_key
            && tasks::find_by_idempotency_key(&tx, org, key)
                .await?
                .is_some()
        {
            return Err(DbErr::RecordNotInserted);
        }
        tasks::insert(&tx, task.clone()).await?;
        items::insert(&tx, org, task.id, now, &rows).await?;
        let staged = events.stage(&tx, event(&task, None)).await?;
        tx.commit().await?;
        Ok(staged)
    }
    .await;
    match result {
        Ok(staged) => {
            staged.dispatch();
            Ok(Created {
                task,
                created: true,
                rejected,
            })
        }
        Err(err) if input.idempotency_key.is_some() && is_duplicate_key(&err) => {
            let key = input.idempotency_key.as_deref().unwrap_or_default();
            let existing =
                tasks::find_by_idempotency_key(&db.reader(who.tenant()).await?, org, key).await?;
            match existing {
                Some(existing) => same_request(db, existing, &hash).await,
                None => Err(AppError::from(err)),
            }
        }
        Err(err) => Err(err.into()),
    }
}

fn is_duplicate_key(err: &DbErr) -> bool {
    matches!(err, DbErr::RecordNotInserted)
        || matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Runs `change` on the locked task in one transaction; publishes the task
/// after commit when `change` bumped its version.
async fn with_task<T, F>(
    db: &Db,
    events: &EventBus,
    who: Principal,
    id: Uuid,
    change: F,
) -> AppResult<(bulk_task::Model, T)>
where
    F: AsyncFnOnce(&DatabaseTransaction, &mut bulk_task::Model) -> AppResult<T>,
{
    let tx = db.begin(who.tenant()).await?;
    let mut task = tasks::lock(&tx, who.organisation_id, id)
        .await?
        .ok_or_else(|| not_found("task"))?;
    let before = task.version;
    let out = change(&tx, &mut task).await?;
    if task.version != before {
        tasks::save(&tx, &task).await?;
        let staged = events.stage(&tx, event(&task, None)).await?;
        tx.commit().await?;
        staged.dispatch();
    } else {
        tx.rollback().await?;
    }
    Ok((task, out))
}

fn ensure_open(task: &bulk_task::Model) -> AppResult<()> {
    if task.error_code.is_some() {
        return Err(invalid_state("the task was failed"));
    }
    if task.cancel_requested {
        return Err(invalid_state("the task was cancelled"));
    }
    Ok(())
}

pub async fn append(
    db: &Db,
    events: &EventBus,
    who: Principal,
    id: Uuid,
    new_items: Vec<NewTaskItem>,
    seal: bool,
) -> AppResult<Appended> {
    check_item_count(new_items.len())?;
    let (task, rejected) = with_task(db, events, who, id, async |tx, task| {
        ensure_open(task)?;
        if task.sealed {
            return Err(invalid_state(
                "the task is sealed; no more items can be appended",
            ));
        }
        let candidates: Vec<String> = new_items
            .iter()
            .filter_map(|i| i.client_item_id.clone())
            .collect();
        let taken = items::taken_client_ids(tx, task.id, &candidates)
            .await?
            .into_iter()
            .collect();
        let now = clock(task);
        let (rows, rejected) = admit(&new_items, task.total, taken, now)?;
        items::insert(tx, task.organisation_id, task.id, now, &rows).await?;
        let mut counters = Counters::from_task(task);
        count_admitted(&mut counters, &rows);
        task.sealed = seal;
        if !rows.is_empty() || seal {
            touch(task, counters, now);
        }
        Ok(rejected)
    })
    .await?;
    Ok(Appended { task, rejected })
}

pub async fn seal(
    db: &Db,
    events: &EventBus,
    who: Principal,
    id: Uuid,
) -> AppResult<bulk_task::Model> {
    let (task, ()) = with_task(db, events, who, id, async |_, task| {
        if !task.sealed {
            task.sealed = true;
            touch(task, Counters::from_task(task), clock(task));
        }
        Ok(())
    })
    .await?;
    Ok(task)
}

pub async fn cancel(
    db: &Db,
    events: &EventBus,
    who: Principal,
    id: Uuid,
) -> AppResult<bulk_task::Model> {
    let (task, ()) = with_task(db, events, who, id, async |tx, task| {
        if task.cancel_requested {
            return Ok(());
        }
        let status = super::status::TaskStatus::parse(&task.status);
        if status.is_some_and(|s| s.is_terminal()) {
            return Err(invalid_state(format!(
                "the task already finished as {}",
                task.status
            )));
        }
        let now = clock(task);
        let cancelled = items::cancel_pending(tx, task.id, now).await?;
        let mut counters = Counters::from_task(task);
        counters.shift(ItemStatus::Pending, ItemStatus::Cancelled, cancelled);
        task.cancel_requested = true;
        task.sealed = true;
        touch(task, counters, now);
        Ok(())
    })
    .await?;
    Ok(task)
}

pub struct TaskError {
    pub code: String,
    pub message: String,
    pub details: Option<Value>,
}

pub async fn fail(
    db: &Db,
    events: &EventBus,
    who: Principal,
    id: Uuid,
    error: TaskError,
) -> AppResult<bulk_task::Model> {
    if error.code.is_empty() || error.code.len() > MAX_KEY {
        return Err(bad_input(format!("`code` must be 1 to {MAX_KEY} bytes")));
    }
    if error.message.len() > MAX_TEXT {
        return Err(bad_input(format!(
            "`message` must be at most {MAX_TEXT} bytes"
        )));
    }
    let details = error
        .details
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?;
    let (task, ()) = with_task(db, events, who, id, async |tx, task| {
        let status = super::status::TaskStatus::parse(&task.status);
        if status.is_some_and(|s| s.is_terminal()) {
            return Err(invalid_state(format!(
                "the task already finished as {}",
                task.status
            )));
        }
        let now = clock(task);
        let cancelled = items::cancel_pending(tx, task.id, now).await?;
        let mut counters = Counters::from_task(task);
        counters.shift(ItemStatus::Pending, ItemStatus::Cancelled, cancelled);
        task.error_code = Some(error.code);
        task.error_message = Some(error.message);
        task.error_details = details;
        task.sealed = true;
        touch(task, counters, now);
        Ok(())
    })
    .await?;
    Ok(task)
}

pub async fn retry_failed(
    db: &Db,
    events: &EventBus,
    who: Principal,
    id: Uuid,
    item_ids: Option<Vec<Uuid>>,
    error_codes: Option<Vec<String>>,
) -> AppResult<bulk_task::Model> {
    let listed = item_ids.as_ref().map_or(0, Vec::len) + error_codes.as_ref().map_or(0, Vec::len);
    if listed > MAX_LIST {
        return Err(limit_exceeded(format!(
            "at most {MAX_LIST} item ids and error codes"
        )));
    }
    let (task, ()) = with_task(db, events, who, id, async |tx, task| {
        ensure_open(task)?;
        let now = clock(task);
        let retried = items::retry_failed(
            tx,
            task.id,
            item_ids.as_deref(),
            error_codes.as_deref(),
            now,
        )
        .await?;
        if retried > 0 {
            let mut counters = Counters::from_task(task);
            counters.shift(ItemStatus::Failed, ItemStatus::Pending, retried);
            touch(task, counters, now);
        }
        Ok(())
    })
    .await?;
    Ok(task)
}

pub async fn delete(db: &Db, events: &EventBus, who: Principal, id: Uuid) -> AppResult<()> {
    let tx = db.begin(who.tenant()).await?;
    let task = tasks::lock(&tx, who.organisation_id, id)
        .await?
        .ok_or_else(|| not_found("task"))?;
    tasks::delete(&tx, who.organisation_id, id).await?;
    let mut gone = event(&task, Some(Vec::new()));
    gone.version += 1;
    gone.deleted = true;
    let staged = events.stage(&tx, gone).await?;
    tx.commit().await?;
    staged.dispatch();
    Ok(())
}
