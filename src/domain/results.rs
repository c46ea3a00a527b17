//! What a task hands back, changed while it runs and after it finished:
//! its description, metadata (an RFC 7396 merge patch), result and
//! artifacts, all in one transaction that bumps the task's version.

use std::collections::HashSet;

use entity::bulk_task;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::Principal;
use super::admission::{MAX_JSON_BYTES, MAX_KEY, MAX_TEXT};
use super::audit::{self, action};
use super::commit::{clock, touch, with_task};
use super::status::Counters;
use crate::error::{AppResult, bad_input, limit_exceeded};
use crate::events::EventBus;
use crate::store::Db;

/// Most artifacts one task keeps.
pub const MAX_ARTIFACTS: usize = 100;
const MAX_URL: usize = 2_048;

/// A file the task produced, kept elsewhere (object storage, say).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    pub name: String,
    pub url: String,
    pub content_type: Option<String>,
    pub size_bytes: Option<f64>,
    pub created_at: i64,
}

/// An artifact as a client adds it.
#[derive(Clone, Debug)]
pub struct NewArtifact {
    pub name: String,
    pub url: String,
    pub content_type: Option<String>,
    pub size_bytes: Option<f64>,
}

/// What to change; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Clone, Debug, Default)]
pub struct TaskUpdate {
    pub description: Option<Option<String>>,
    pub metadata_patch: Option<Value>,
    pub result: Option<Option<Value>>,
    pub add_artifacts: Vec<NewArtifact>,
    pub remove_artifacts: Vec<String>,
}

/// The artifacts stored on a task, oldest first.
pub fn artifacts(task: &bulk_task::Model) -> Vec<Artifact> {
    serde_json::from_str(&task.artifacts).unwrap_or_default()
}

fn json_text(value: &Value, what: &str) -> AppResult<String> {
    let text = serde_json::to_string(value)?;
    if text.len() > MAX_JSON_BYTES {
        return Err(bad_input(format!(
            "`{what}` must be at most {MAX_JSON_BYTES} bytes of JSON"
        )));
    }
    Ok(text)
}

fn check_artifact(a: &NewArtifact) -> AppResult<()> {
    if a.name.is_empty() || a.name.len() > MAX_KEY {
        return Err(bad_input(format!(
            "an artifact name must be 1 to {MAX_KEY} bytes"
        )));
    }
    let url = url::Url::parse(&a.url)
        .map_err(|_| bad_input(format!("artifact {:?}: `url` is not a URL", a.name)))?;
    if !matches!(url.scheme(), "http" | "https") || a.url.len() > MAX_URL {
        return Err(bad_input(format!(
            "artifact {:?}: `url` must be http or https, at most {MAX_URL} bytes",
            a.name
        )));
    }
    if a.content_type.as_ref().is_some_and(|c| c.len() > MAX_KEY) {
        return Err(bad_input(format!(
            "artifact {:?}: `contentType` must be at most {MAX_KEY} bytes",
            a.name
        )));
    }
    if a.size_bytes.is_some_and(|s| !s.is_finite() || s < 0.0) {
        return Err(bad_input(format!(
            "artifact {:?}: `sizeBytes` must be a number of bytes",
            a.name
        )));
    }
    Ok(())
}

/// Checks what can be checked without the task.
fn check(update: &TaskUpdate) -> AppResult<()> {
    if let Some(Some(d)) = &update.description
        && d.len() > MAX_TEXT
    {
        return Err(bad_input(format!(
            "`description` must be at most {MAX_TEXT} bytes"
        )));
    }
    if let Some(patch) = &update.metadata_patch {
        if !patch.is_object() {
            return Err(bad_input("`metadataPatch` must be a JSON object"));
        }
        json_text(patch, "metadataPatch")?;
    }
    if let Some(Some(result)) = &update.result {
        json_text(result, "result")?;
    }
    if update.add_artifacts.len() + update.remove_artifacts.len() > 2 * MAX_ARTIFACTS {
        return Err(limit_exceeded(format!(
            "at most {MAX_ARTIFACTS} artifacts per task"
        )));
    }
    let mut names = HashSet::new();
    for a in &update.add_artifacts {
        check_artifact(a)?;
        if !names.insert(a.name.as_str()) {
            return Err(bad_input(format!("artifact {:?} is added twice", a.name)));
        }
    }
    Ok(())
}

/// The task's artifacts after removing, then adding: removing a name that
/// is not there changes nothing, adding one that is is refused (remove it
/// in the same call to replace it).
fn next_artifacts(
    task: &bulk_task::Model,
    update: &TaskUpdate,
    now: i64,
) -> AppResult<Vec<Artifact>> {
    let mut list = artifacts(task);
    list.retain(|a| !update.remove_artifacts.contains(&a.name));
    for a in &update.add_artifacts {
        if list.iter().any(|b| b.name == a.name) {
            return Err(bad_input(format!(
                "the task already has an artifact named {:?}",
                a.name
            )));
        }
        list.push(Artifact {
            name: a.name.clone(),
            url: a.url.clone(),
            content_type: a.content_type.clone(),
            size_bytes: a.size_bytes,
            created_at: now,
        });
    }
    if list.len() > MAX_ARTIFACTS {
        return Err(limit_exceeded(format!(
            "at most {MAX_ARTIFACTS} artifacts per task"
        )));
    }
    Ok(list)
}

/// Stored metadata after an RFC 7396 merge patch, as it is stored again.
fn patched_metadata(stored: &str, patch: &Value) -> AppResult<String> {
    let mut metadata: Value = serde_json::from_str(stored)?;
    json_patch::merge(&mut metadata, patch);
    json_text(&metadata, "metadata")
}

/// Applies `update` to the task, finished or not, and publishes the change.
pub async fn update(
    db: &Db,
    events: &EventBus,
    who: Principal,
    id: Uuid,
    update: TaskUpdate,
) -> AppResult<bulk_task::Model> {
    check(&update)?;
    let (task, ()) = with_task(db, events, who.organisation_id, id, async |tx, task| {
        let now = clock(task);
        if let Some(description) = &update.description {
            task.description = description.clone();
        }
        if let Some(patch) = &update.metadata_patch {
            task.metadata = patched_metadata(&task.metadata, patch)?;
        }
        if let Some(result) = &update.result {
            task.result = result
                .as_ref()
                .map(|r| json_text(r, "result"))
                .transpose()?;
        }
        if !update.add_artifacts.is_empty() || !update.remove_artifacts.is_empty() {
            task.artifacts = serde_json::to_string(&next_artifacts(task, &update, now)?)?;
        }
        touch(task, Counters::from_task(task), now);
        // Which parts changed, not their contents: the trail is not a copy.
        let details = serde_json::json!({
            "description": update.description.is_some(),
            "metadata": update.metadata_patch.is_some(),
            "result": update.result.is_some(),
            "artifactsAdded": update.add_artifacts.len(),
            "artifactsRemoved": update.remove_artifacts.len(),
        });
        audit::record(tx, task.id, now, who, action::UPDATE, None, Some(details)).await?;
        Ok(())
    })
    .await?;
    Ok(task)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, json};

    use super::*;

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "[a-z]{0,6}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-d]", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn object() -> impl Strategy<Value = Value> {
        proptest::collection::btree_map("[a-d]", json(), 0..5)
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>()))
    }

    fn merged(target: &Value, patch: &Value) -> Value {
        let mut out = target.clone();
        json_patch::merge(&mut out, patch);
        out
    }

    /// A patch with its object members' nulls removed, recursively: what
    /// it produces when applied to nothing.
    fn without_nulls(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), without_nulls(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    // RFC 7396 properties of the metadata patch of `updateBulkTask`.
    proptest! {
        #[test]
        fn applying_a_patch_twice_is_applying_it_once(target in json(), patch in json()) {
            let once = merged(&target, &patch);
            prop_assert_eq!(merged(&once, &patch), once);
        }

        #[test]
        fn object_patches_set_remove_and_keep_keys(target in object(), patch in object()) {
            let out = merged(&target, &patch);
            let (out, t, p) = (out.as_object().unwrap(), target.as_object().unwrap(), patch.as_object().unwrap());
            for (k, v) in p {
                if v.is_null() {
                    prop_assert!(!out.contains_key(k), "null removes {}", k);
                } else {
                    let before = t.get(k).cloned().unwrap_or(Value::Null);
                    prop_assert_eq!(&out[k], &merged(&before, v));
                }
            }
            for (k, v) in t.iter().filter(|(k, _)| !p.contains_key(*k)) {
                prop_assert_eq!(&out[k], v, "untouched key {}", k);
            }
        }

        #[test]
        fn anything_but_an_object_replaces(target in json(), patch in json()) {
            prop_assume!(!patch.is_object());
            prop_assert_eq!(merged(&target, &patch), patch);
        }

        #[test]
        fn a_patch_applied_to_nothing_or_itself_is_itself_without_nulls(patch in json()) {
            prop_assert_eq!(merged(&Value::Null, &patch), without_nulls(&patch));
            let clean = without_nulls(&patch);
            prop_assert_eq!(merged(&clean, &clean), clean.clone());
            if clean.is_object() {
                prop_assert_eq!(merged(&clean, &json!({})), clean);
            }
        }

        /// The stored form: metadata stays an object, and a patch that
        /// grows it past the limit is refused, not stored.
        #[test]
        fn stored_metadata_stays_an_object(target in object(), patch in object()) {
            match patched_metadata(&target.to_string(), &patch) {
                Ok(text) => {
                    let back: Value = serde_json::from_str(&text).unwrap();
                    prop_assert!(back.is_object());
                    prop_assert_eq!(back, merged(&target, &patch));
                }
                Err(e) => prop_assert_eq!(e.code(), "BAD_USER_INPUT"),
            }
        }
    }
}
