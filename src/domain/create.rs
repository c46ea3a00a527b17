//! Creating a task with its items in one transaction, idempotently: a
//! repeat of the same request under the same key gets the first answer.

use std::collections::HashSet;

use entity::bulk_task;
use sea_orm::{DbErr, SqlErr};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::admission::{DEFAULT_MAX_ATTEMPTS, NewTask, Rejection, admit, count_admitted, validate};
use super::audit::{self, action};
use super::commit::{event, touch};
use super::outbox;
use super::status::{Counters, TaskStatus};
use super::{Principal, now_ms};
use crate::error::{AppResult, conflict};
use crate::events::{EventBus, Staged};
use crate::store::{Db, items, tasks};

pub struct Created {
    pub task: bulk_task::Model,
    pub created: bool,
    pub rejected: Vec<Rejection>,
}

/// How the insert went.
enum Inserted {
    Committed(Staged),
    /// Another create with the same idempotency key committed first.
    KeyTaken,
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
    if existing.request_hash.as_deref() != Some(hash) {
        return Err(conflict(
            "this idempotencyKey was used for a different task",
        ));
    }
    let reader = db.reader(existing.organisation_id).await?;
    let rejected = items::rejected(&reader, existing.id)
        .await?
        .into_iter()
        .map(|r| Rejection {
            index: r.idx,
            client_item_id: r.client_item_id,
            code: r.error_code.unwrap_or_else(|| "REJECTED".to_owned()),
            message: r.error_message.unwrap_or_default(),
        })
        .collect();
    Ok(Created {
        task: existing,
        created: false,
        rejected,
    })
}

/// The task a key names, if any.
async fn existing(db: &Db, who: Principal, key: &str) -> AppResult<Option<bulk_task::Model>> {
    let reader = db.reader(who.organisation_id).await?;
    Ok(tasks::find_by_idempotency_key(&reader, key).await?)
}

fn new_task(input: &NewTask, org: Uuid, hash: &str, now: i64) -> AppResult<bulk_task::Model> {
    Ok(bulk_task::Model {
        id: Uuid::now_v7(),
        organisation_id: org,
        task_type: input.task_type.clone(),
        description: input.description.clone(),
        status: TaskStatus::Queued,
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
        request_hash: (!hash.is_empty()).then(|| hash.to_owned()),
        max_attempts: input.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS),
        created_at: now,
        updated_at: now,
        started_at: None,
        finished_at: None,
        result: None,
        artifacts: "[]".to_owned(),
        last_heartbeat_at: None,
        retain_for: input.retain_for.map(i64::from),
        pruned_at: None,
        paused: false,
        priority: input.priority.unwrap_or(0),
        not_before: input.not_before,
        deadline: input.deadline,
        failure_policy: input
            .failure_policy
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?,
    })
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
    if let Some(key) = &input.idempotency_key
        && let Some(found) = existing(db, who, key).await?
    {
        return same_request(db, found, &hash).await;
    }
    let now = now_ms();
    let (rows, rejected) = admit(&input.items, 0, HashSet::new(), now)?;
    let mut counters = Counters::default();
    count_admitted(&mut counters, &rows);
    let mut task = new_task(&input, who.organisation_id, &hash, now)?;
    touch(&mut task, counters, now);

    let inserted = async {
        let tx = db.begin(who.organisation_id).await?;
        // A second create with the key may have committed since the check above.
        if let Some(key) = &input.idempotency_key
            && tasks::find_by_idempotency_key(&tx, key).await?.is_some()
        {
            return Ok(Inserted::KeyTaken);
        }
        tasks::insert(&tx, task.clone()).await?;
        items::insert(&tx, task.id, now, &rows).await?;
        let details = serde_json::json!({ "items": task.total, "rejected": rejected.len() });
        audit::record(&tx, task.id, now, who, action::CREATE, None, Some(details)).await?;
        outbox::record(&tx, &task, None).await?;
        let staged = events.stage(&tx, event(&task, None)).await?;
        tx.commit().await?;
        Ok::<_, DbErr>(Inserted::Committed(staged))
    }
    .await;
    let inserted = match inserted {
        // Or it committed between that check and the insert, and the unique
        // index refused ours.
        Err(err)
            if input.idempotency_key.is_some()
                && matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) =>
        {
            Inserted::KeyTaken
        }
        other => other?,
    };
    match inserted {
        Inserted::Committed(staged) => {
            staged.dispatch();
            Ok(Created {
                task,
                created: true,
                rejected,
            })
        }
        Inserted::KeyTaken => {
            let key = input.idempotency_key.as_deref().unwrap_or_default();
            match existing(db, who, key).await? {
                Some(found) => same_request(db, found, &hash).await,
                None => Err(conflict(
                    "a task with this idempotencyKey was being created; retry",
                )),
            }
        }
    }
}
