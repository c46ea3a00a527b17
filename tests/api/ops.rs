//! The operations of the contract as a client sends them: each GraphQL
//! document written once, and a typed method on `TestApp` that sends it and
//! returns the payload of its root field.
//!
//! Every task payload selects the fragment `T` (every scalar of a task and
//! its counters) and every item payload the fragment `I`, so a task read
//! after a mutation compares equal to the task the mutation returned.
//!
//! Tests that deliberately send an unusual selection keep their own string.

use serde_json::{Value, json};

use crate::helpers::TestApp;

/// Appends the `T` fragment (every scalar of a task) to an operation.
macro_rules! with_task {
    ($q:literal) => {
        concat!(
            $q,
            "\nfragment T on BulkTask { id type description status sealed cancelRequested version progress \
             metadata idempotencyKey maxAttempts createdAt updatedAt startedAt finishedAt \
             error { code message details } \
             counters { total pending running succeeded failed skipped rejected cancelled finished } }"
        )
    };
}

/// Appends the `I` fragment (every scalar of an item, and its task's id) to an operation.
macro_rules! with_item {
    ($q:literal) => {
        concat!(
            $q,
            "\nfragment I on TaskItem { id index clientItemId status payload result attempts workerId \
             leaseExpiresAt startedAt finishedAt error { code message details } task { id } }"
        )
    };
}

// ---------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------

pub const CREATE: &str = with_task!(
    "mutation($input: CreateBulkTaskInput!) { createBulkTask(input: $input) { \
     created task { ...T } rejected { index clientItemId code message } } }"
);
pub const APPEND: &str = with_task!(
    "mutation($input: AppendTaskItemsInput!) { appendTaskItems(input: $input) { \
     task { ...T } rejected { index clientItemId code message } } }"
);
pub const SEAL: &str = with_task!("mutation($id: ID!) { sealBulkTask(id: $id) { ...T } }");
pub const REPORT: &str = with_task!(
    "mutation($input: ReportItemResultsInput!) { reportItemResults(input: $input) { \
     task { ...T } applied duplicates problems { position code message } } }"
);
pub const CANCEL: &str = with_task!("mutation($id: ID!) { cancelBulkTask(id: $id) { ...T } }");
pub const RETRY: &str = with_task!(
    "mutation($input: RetryFailedItemsInput!) { retryFailedItems(input: $input) { ...T } }"
);
pub const FAIL: &str =
    with_task!("mutation($input: FailBulkTaskInput!) { failBulkTask(input: $input) { ...T } }");
pub const DELETE: &str = "mutation($id: ID!) { deleteBulkTask(id: $id) }";
pub const CLAIM: &str = with_item!(
    "mutation($input: ClaimTaskItemsInput!) { claimTaskItems(input: $input) { \
     items { leaseToken item { ...I } } } }"
);
/// What a task hands back, selected by `UPDATE` and `RESULTS`.
macro_rules! with_results {
    ($q:literal) => {
        concat!(
            $q,
            "\nfragment R on BulkTask { id status version description metadata result \
             artifacts { name url contentType sizeBytes createdAt } lastHeartbeatAt finishedAt expiresAt }"
        )
    };
}
pub const UPDATE: &str = with_results!(
    "mutation($input: UpdateBulkTaskInput!) { updateBulkTask(input: $input) { ...R } }"
);
pub const RESULTS: &str = with_results!("query($id: ID!) { bulkTask(id: $id) { ...R } }");
pub const PAUSE: &str = "mutation($id: ID!, $reason: String) { pauseBulkTask(id: $id, reason: $reason) { \
     id status paused version } }";
pub const RESUME: &str = "mutation($id: ID!, $reason: String) { resumeBulkTask(id: $id, reason: $reason) { \
     id status paused version } }";
pub const SET_PRIORITY: &str = "mutation($id: ID!, $priority: Int!) { setTaskPriority(id: $id, priority: $priority) { id priority } }";
pub const CANCEL_BECAUSE: &str = "mutation($id: ID!, $reason: String) { cancelBulkTask(id: $id, reason: $reason) { id status } }";
pub const DELETE_BECAUSE: &str =
    "mutation($id: ID!, $reason: String) { deleteBulkTask(id: $id, reason: $reason) }";
pub const RENEW: &str =
    "mutation($input: RenewLeasesInput!) { renewLeases(input: $input) { renewed expired } }";

// ---------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------

pub const TASK: &str = with_task!("query($id: ID!) { bulkTask(id: $id) { ...T } }");
/// The smallest read of a task: its id, or null when the caller cannot see it.
pub const TASK_ID: &str = "query($id: ID!) { bulkTask(id: $id) { id } }";
pub const NODE_ID: &str = "query($id: ID!) { node(id: $id) { id } }";
pub const ITEM: &str = with_item!("query($id: ID!) { taskItem(id: $id) { ...I } }");
pub const ITEMS: &str = with_item!(
    "query($id: ID!) { bulkTask(id: $id) { items(first: 100) { totalCount nodes { ...I } } } }"
);
/// The ids and indexes of a task's first 100 items.
pub const ITEM_IDS: &str =
    "query($id: ID!) { bulkTask(id: $id) { items(first: 100) { nodes { id index } } } }";
pub const TASK_COUNT: &str = "query { bulkTasks { totalCount } }";
/// How a task is steered: its control fields and error.
pub const CONTROL: &str = "query($id: ID!) { bulkTask(id: $id) { id status paused priority notBefore deadline \
     failurePolicy { maxFailedItems maxFailureRatio minFinished nonRetryableCodes } \
     error { code message details } \
     counters { total pending running succeeded failed skipped rejected cancelled finished } } }";
/// A task's audit trail, newest first (at most 100 entries).
pub const AUDIT: &str = "query($id: ID!) { bulkTask(id: $id) { auditTrail(first: 100) { \
     nodes { at action actor reason details } } } }";

// ---------------------------------------------------------------------------
// Subscriptions
// ---------------------------------------------------------------------------

/// Watches one task; its events select the same fields as `TASK`.
pub const WATCH_TASK: &str =
    with_task!("subscription($id: ID!) { bulkTaskUpdated(id: $id) { ...T } }");
pub const WATCH_TASKS: &str = "subscription($filter: BulkTaskFilter) { bulkTasksUpdated(filter: $filter) { \
     id type status version counters { succeeded finished total } } }";
pub const WATCH_ITEMS: &str = "subscription($taskId: ID!, $status: [TaskItemStatus!]) { \
     taskItemsUpdated(taskId: $taskId, status: $status) { \
     id index status result error { code } task { id } } }";

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

/// `n` items with client ids `item-i` and payloads `{"n": i}`.
pub fn numbered_items(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({ "clientItemId": format!("item-{i}"), "payload": { "n": i } }))
        .collect()
}

/// The `id` of a task (or item) payload.
pub fn id_of(object: &Value) -> String {
    object["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {object:#}"))
        .to_owned()
}

// ---------------------------------------------------------------------------
// Typed operations
// ---------------------------------------------------------------------------

impl TestApp {
    /// `createBulkTask` with a whole `CreateBulkTaskInput`; returns the payload.
    pub async fn create(&self, input: Value) -> Value {
        self.data(CREATE, json!({ "input": input })).await["createBulkTask"].clone()
    }

    /// `createBulkTask` that must fail; returns the error code.
    pub async fn create_error(&self, input: Value) -> String {
        self.error_code(CREATE, json!({ "input": input })).await
    }

    /// Creates a sealed task of type `test.items` with `n` items whose
    /// payloads are `{"n": i}` and client ids `item-i`; returns the task id.
    pub async fn create_task(&self, n: usize) -> String {
        self.create_typed("test.items", n).await
    }

    /// Creates a sealed task of `task_type` with `n` numbered items; returns its id.
    pub async fn create_typed(&self, task_type: &str, n: usize) -> String {
        let payload = self
            .create(json!({ "type": task_type, "items": numbered_items(n) }))
            .await;
        assert_eq!(payload["created"], true, "{payload:#}");
        id_of(&payload["task"])
    }

    /// `appendTaskItems`; `seal` is left out when `None`. Returns the payload.
    pub async fn append(&self, task: &str, items: Value, seal: Option<bool>) -> Value {
        let mut input = json!({ "taskId": task, "items": items });
        if let Some(seal) = seal {
            input["seal"] = json!(seal);
        }
        self.data(APPEND, json!({ "input": input })).await["appendTaskItems"].clone()
    }

    /// `sealBulkTask`; returns the task.
    pub async fn seal(&self, id: &str) -> Value {
        self.data(SEAL, json!({ "id": id })).await["sealBulkTask"].clone()
    }

    /// `reportItemResults` for `task`; returns the payload.
    pub async fn report(&self, task: &str, results: Value) -> Value {
        self.data(
            REPORT,
            json!({ "input": { "taskId": task, "results": results } }),
        )
        .await["reportItemResults"]
            .clone()
    }

    /// Reports results that must all apply without problems; returns the payload.
    pub async fn report_all(&self, task: &str, results: Value) -> Value {
        let n = results.as_array().expect("a list of results").len();
        let payload = self.report(task, results).await;
        assert_eq!(
            payload["problems"],
            json!([]),
            "report refused: {payload:#}"
        );
        assert_eq!(
            payload["applied"], n as i64,
            "every result applies: {payload:#}"
        );
        payload
    }

    /// `claimTaskItems` with a `ClaimTaskItemsInput`; returns the claimed
    /// items as `{ leaseToken, item }`.
    pub async fn claim(&self, input: Value) -> Vec<Value> {
        let data = self.data(CLAIM, json!({ "input": input })).await;
        data["claimTaskItems"]["items"]
            .as_array()
            .unwrap_or_else(|| panic!("no items: {data:#}"))
            .clone()
    }

    /// Claims up to `limit` items of one task with a lease of `lease` seconds.
    pub async fn claim_task(&self, task: &str, limit: i64, lease: i64, worker: &str) -> Vec<Value> {
        self.claim(
            json!({ "taskId": task, "limit": limit, "leaseSeconds": lease, "workerId": worker }),
        )
        .await
    }

    /// `claimTaskItems` that must fail; returns the error code.
    pub async fn claim_error(&self, input: Value) -> String {
        self.error_code(CLAIM, json!({ "input": input })).await
    }

    /// `renewLeases`; `leaseSeconds` is left out when `None`. Returns the payload.
    pub async fn renew(&self, tokens: &[&str], seconds: Option<i64>) -> Value {
        let mut input = json!({ "leaseTokens": tokens });
        if let Some(s) = seconds {
            input["leaseSeconds"] = json!(s);
        }
        self.data(RENEW, json!({ "input": input })).await["renewLeases"].clone()
    }

    /// `cancelBulkTask`; returns the task.
    pub async fn cancel(&self, id: &str) -> Value {
        self.data(CANCEL, json!({ "id": id })).await["cancelBulkTask"].clone()
    }

    /// `retryFailedItems` with a `RetryFailedItemsInput`; returns the task.
    pub async fn retry(&self, input: Value) -> Value {
        self.data(RETRY, json!({ "input": input })).await["retryFailedItems"].clone()
    }

    /// `failBulkTask` with a `FailBulkTaskInput`; returns the task.
    pub async fn fail(&self, input: Value) -> Value {
        self.data(FAIL, json!({ "input": input })).await["failBulkTask"].clone()
    }

    /// `deleteBulkTask`; returns the deleted id.
    pub async fn delete(&self, id: &str) -> Value {
        self.data(DELETE, json!({ "id": id })).await["deleteBulkTask"].clone()
    }

    /// `updateBulkTask` with an `UpdateBulkTaskInput`; returns the task's `R` fields.
    pub async fn update(&self, input: Value) -> Value {
        self.data(UPDATE, json!({ "input": input })).await["updateBulkTask"].clone()
    }

    /// `updateBulkTask` that must fail; returns the error code.
    pub async fn update_error(&self, input: Value) -> String {
        self.error_code(UPDATE, json!({ "input": input })).await
    }

    /// What the task hands back: its `R` fields (null when the caller cannot see it).
    pub async fn results(&self, id: &str) -> Value {
        self.data(RESULTS, json!({ "id": id })).await["bulkTask"].clone()
    }

    /// A signed link to the task's items (`format` CSV or NDJSON; `status` a
    /// JSON list or null), made absolute.
    pub async fn export_url(&self, task: &str, format: &str, status: Value) -> String {
        let query = "query($id: ID!, $format: ExportFormat!, $status: [TaskItemStatus!]) { \
                     bulkTask(id: $id) { exportUrl(format: $format, status: $status) } }";
        let data = self
            .data(
                query,
                json!({ "id": task, "format": format, "status": status }),
            )
            .await;
        let path = data["bulkTask"]["exportUrl"]
            .as_str()
            .unwrap_or_else(|| panic!("no exportUrl: {data:#}"));
        self.url(path)
    }

    /// The task (null when the caller cannot see it).
    pub async fn task(&self, id: &str) -> Value {
        self.data(TASK, json!({ "id": id })).await["bulkTask"].clone()
    }

    /// The item (null when the caller cannot see it).
    pub async fn item(&self, id: &str) -> Value {
        self.data(ITEM, json!({ "id": id })).await["taskItem"].clone()
    }

    /// The task's items in index order (at most 100).
    pub async fn items(&self, task: &str) -> Vec<Value> {
        let data = self.data(ITEMS, json!({ "id": task })).await;
        data["bulkTask"]["items"]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("no items: {data:#}"))
            .clone()
    }

    /// The ids of the task's items in index order (at most 100).
    pub async fn item_ids(&self, task: &str) -> Vec<String> {
        let data = self.data(ITEM_IDS, json!({ "id": task })).await;
        data["bulkTask"]["items"]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("no items: {data:#}"))
            .iter()
            .map(id_of)
            .collect()
    }

    /// `pauseBulkTask`; returns the task.
    pub async fn pause(&self, id: &str, reason: Option<&str>) -> Value {
        let variables = json!({ "id": id, "reason": reason });
        self.data(PAUSE, variables).await["pauseBulkTask"].clone()
    }

    /// `resumeBulkTask`; returns the task.
    pub async fn resume(&self, id: &str, reason: Option<&str>) -> Value {
        let variables = json!({ "id": id, "reason": reason });
        self.data(RESUME, variables).await["resumeBulkTask"].clone()
    }

    /// `setTaskPriority`; returns the task.
    pub async fn set_priority(&self, id: &str, priority: i64) -> Value {
        let variables = json!({ "id": id, "priority": priority });
        self.data(SET_PRIORITY, variables).await["setTaskPriority"].clone()
    }

    /// The task's control fields, error and counters (null when not visible).
    pub async fn control(&self, id: &str) -> Value {
        self.data(CONTROL, json!({ "id": id })).await["bulkTask"].clone()
    }

    /// The task's audit trail, newest first.
    pub async fn audit_trail(&self, id: &str) -> Vec<Value> {
        let data = self.data(AUDIT, json!({ "id": id })).await;
        data["bulkTask"]["auditTrail"]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("no audit trail: {data:#}"))
            .clone()
    }

    /// How many tasks the caller sees.
    pub async fn task_count(&self) -> i64 {
        self.data(TASK_COUNT, json!({})).await["bulkTasks"]["totalCount"]
            .as_i64()
            .unwrap()
    }
}
