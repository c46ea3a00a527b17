//! What a worker with nothing to claim asks before it leaves: are items
//! still leased to other workers (they come back when a worker dies) or
//! pending but not claimable yet? Then it waits instead of exiting, so a
//! stopped worker's items are finished by the one that remains.

use serde_json::{Value, json};

use super::client::Client;

const TASK: &str = "query($id: ID!) { bulkTask(id: $id) { status counters { pending running } } }";
const TASKS: &str = "query($types: [String!]) { bulkTasks(first: 100, filter: { type: $types, finished: false }) \
    { nodes { counters { pending running } } } }";
const CREATE: &str =
    "mutation($input: CreateBulkTaskInput!) { createBulkTask(input: $input) { task { id } } }";

/// Items not final yet: (pending, running) over the task or the types.
pub(super) async fn outstanding(
    client: &Client,
    task: Option<&str>,
    types: &[String],
) -> Result<(i64, i64), String> {
    let counters: Vec<Value> = match task {
        Some(id) => {
            let data = client.request(TASK, json!({ "id": id })).await?;
            vec![data["bulkTask"]["counters"].clone()]
        }
        None => {
            let data = client.request(TASKS, json!({ "types": types })).await?;
            let nodes = data["bulkTasks"]["nodes"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            nodes.into_iter().map(|n| n["counters"].clone()).collect()
        }
    };
    let sum = |field: &str| {
        counters
            .iter()
            .map(|c| c[field].as_i64().unwrap_or(0))
            .sum()
    };
    Ok((sum("pending"), sum("running")))
}

/// Creates a task of `n` demo items of `task_type`; returns its id.
pub(super) async fn create_task(
    client: &Client,
    task_type: &str,
    n: u32,
) -> Result<String, String> {
    let items: Vec<Value> = (0..n)
        .map(|i| json!({ "clientItemId": format!("demo-{i}"), "payload": { "n": i } }))
        .collect();
    let input = json!({
        "type": task_type,
        "description": format!("{n} demo items"),
        "items": items,
    });
    let data = client.request(CREATE, json!({ "input": input })).await?;
    data["createBulkTask"]["task"]["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no task id in {data}"))
}
