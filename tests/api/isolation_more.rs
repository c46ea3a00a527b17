//! The rest of the mutations against a task with another organisation's
//! rows under its id (see `isolation`): appending, sealing, updating,
//! steering, claiming by type, failing and deleting it leave those rows as
//! they were and count nothing of them.

use serde_json::json;

use bulkwatch::graphql::ids::{self, Kind};

use crate::helpers::{counters, spawn_app};
use crate::isolation::{connect, foreign_rows, intruder, plant};
use crate::ops::{id_of, numbered_items};

#[tokio::test]
async fn building_steering_claiming_and_failing_a_task_never_touch_another_organisations_rows() {
    let app = spawn_app().await;
    let db = connect(&app).await;
    let org = intruder(&app, &db).await;
    let created = app
        .create(json!({ "type": "test.items", "sealed": false, "items": numbered_items(3) }))
        .await;
    let task = id_of(&created["task"]);
    let task_uuid = ids::decode(Kind::BulkTask, &task).unwrap();
    plant(&db, org, task_uuid, "").await;
    let before = foreign_rows(&db, task_uuid).await;
    assert_eq!(before.len(), 3);

    // Appended items continue the task's own indexes (not those after the
    // foreign 1000..1002); a client id of its own is still taken. (Whether a
    // foreign client id counts as taken cannot be seen: the unique index
    // `task_items_client_id (task_id, client_item_id)` would refuse the row.)
    let appended = app
        .append(
            &task,
            json!([
                { "clientItemId": "item-3", "payload": { "n": 3 } },
                { "clientItemId": "item-4", "payload": { "n": 4 } },
                { "clientItemId": "item-0", "payload": { "n": 0 } },
            ]),
            None,
        )
        .await;
    let rejected: Vec<(i64, &str)> = appended["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_i64().unwrap(), r["code"].as_str().unwrap()))
        .collect();
    assert_eq!(rejected, [(5, "DUPLICATE_CLIENT_ITEM_ID")], "{appended:#}");
    assert_eq!(
        appended["task"]["counters"],
        counters(&[("pending", 5), ("rejected", 1)]),
        "{appended:#}"
    );
    let indexes: Vec<i64> = app
        .items(&task)
        .await
        .iter()
        .map(|i| i["index"].as_i64().unwrap())
        .collect();
    assert_eq!(indexes, [0, 1, 2, 3, 4, 5]);

    // Sealing, updating and steering count only the task's own items.
    let sealed = app.seal(&task).await;
    assert_eq!(sealed["sealed"], true, "{sealed:#}");
    assert_eq!(
        sealed["counters"],
        counters(&[("pending", 5), ("rejected", 1)]),
        "{sealed:#}"
    );
    let updated = app
        .update(json!({ "id": task, "description": "steered", "metadataPatch": { "k": 1 } }))
        .await;
    assert_eq!(updated["description"], "steered", "{updated:#}");
    let prioritised = app.set_priority(&task, 5).await;
    assert_eq!(prioritised["priority"], 5, "{prioritised:#}");
    let paused = app.pause(&task, Some("hold on")).await;
    assert_eq!(paused["paused"], true, "{paused:#}");

    // A claim by type finds nothing in a paused task, and after the resume
    // only the task's own pending items, though it asks for many more.
    let by_type =
        json!({ "types": ["test.items"], "limit": 100, "leaseSeconds": 60, "workerId": "w" });
    let claimed = app.claim(by_type.clone()).await;
    assert!(claimed.is_empty(), "{claimed:#?}");
    let resumed = app.resume(&task, Some("go")).await;
    assert_eq!(resumed["paused"], false, "{resumed:#}");
    let claimed = app.claim(by_type).await;
    let mut claimed: Vec<i64> = claimed
        .iter()
        .map(|c| c["item"]["index"].as_i64().unwrap())
        .collect();
    claimed.sort();
    assert_eq!(claimed, [0, 1, 2, 3, 4]);

    // Failing the task cancels pending items: it has none of its own left,
    // and the foreign PENDING row is not its to cancel.
    let failed = app
        .fail(json!({ "id": task, "code": "STOPPED", "message": "enough" }))
        .await;
    assert_eq!(failed["error"]["code"], "STOPPED", "{failed:#}");
    assert_eq!(
        failed["counters"],
        counters(&[("running", 5), ("rejected", 1)]),
        "{failed:#}"
    );
    app.assert_counters_consistent(&task).await;

    assert_eq!(
        foreign_rows(&db, task_uuid).await,
        before,
        "the foreign rows are as they were"
    );
    db.close().await.ok();
}

/// Deleting a task removes its own items; another organisation's rows
/// under another task stay as they were. (Rows under the deleted task's
/// own id cannot outlive it whatever the statements do: the foreign key
/// `task_items.task_id -> bulk_tasks.id ON DELETE CASCADE` takes them
/// with the task row.)
#[tokio::test]
async fn deleting_a_task_leaves_another_organisations_rows_alone() {
    let app = spawn_app().await;
    let db = connect(&app).await;
    let org = intruder(&app, &db).await;
    let doomed = app.create_task(3).await;
    let kept = app.create_task(3).await;
    let doomed_uuid = ids::decode(Kind::BulkTask, &doomed).unwrap();
    let kept_uuid = ids::decode(Kind::BulkTask, &kept).unwrap();
    plant(&db, org, doomed_uuid, "_doomed").await;
    plant(&db, org, kept_uuid, "_kept").await;
    let before = foreign_rows(&db, kept_uuid).await;
    assert_eq!(before.len(), 3);

    assert_eq!(app.delete(&doomed).await, json!(doomed));
    assert!(app.task(&doomed).await.is_null());
    let own = app.item_ids(&kept).await;
    assert_eq!(own.len(), 3, "{own:?}");
    let seen = app.task(&kept).await;
    assert_eq!(seen["counters"], counters(&[("pending", 3)]), "{seen:#}");
    assert_eq!(
        foreign_rows(&db, kept_uuid).await,
        before,
        "the foreign rows are as they were"
    );
    db.close().await.ok();
}
