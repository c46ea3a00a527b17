//! Sending a batch's outcomes, and keeping the tally of what the server said.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;

use serde_json::{Value, json};

use super::client::{Client, REPORT_FIELDS};
use super::{Claimed, Totals};

/// Reports one batch: one `reportItemResults` field per task, all in one request.
pub(super) async fn report(
    client: &Client,
    batch: &[Claimed],
    results: Vec<Value>,
    totals: &mut Totals,
    ack_log: Option<&std::path::Path>,
) -> Result<(), String> {
    let mut by_task: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut indexes: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (item, result) in batch.iter().zip(results) {
        if !result.is_null() {
            by_task
                .entry(item.task_id.as_str())
                .or_default()
                .push(result);
            indexes
                .entry(item.task_id.as_str())
                .or_default()
                .push(item.index);
        }
    }
    if by_task.is_empty() {
        return Ok(());
    }
    let mut params = Vec::new();
    let mut fields = Vec::new();
    let mut variables = serde_json::Map::new();
    for (i, (task, results)) in by_task.iter().enumerate() {
        params.push(format!("$r{i}: ReportItemResultsInput!"));
        fields.push(format!(
            "r{i}: reportItemResults(input: $r{i}) {{ {REPORT_FIELDS} }}"
        ));
        variables.insert(
            format!("r{i}"),
            json!({ "taskId": task, "results": results }),
        );
    }
    let query = format!("mutation({}) {{ {} }}", params.join(", "), fields.join(" "));
    let data = client.request(&query, Value::Object(variables)).await?;
    let mut acknowledged = String::new();
    for (i, (task, results)) in by_task.iter().enumerate() {
        let payload = &data[format!("r{i}")];
        let problems = payload["problems"].as_array().cloned().unwrap_or_default();
        totals.problems += problems.len() as u64;
        let refused: HashSet<i64> = problems
            .iter()
            .filter_map(|p| p["position"].as_i64())
            .collect();
        for (position, (result, index)) in results.iter().zip(&indexes[task]).enumerate() {
            if !refused.contains(&(position as i64)) {
                let outcome = result["outcome"].as_str().unwrap_or("?");
                acknowledged.push_str(&format!("{task} {index} {outcome}\n"));
            }
        }
        for p in problems.iter().take(3) {
            eprintln!(
                "  problem at {}: {} {}",
                p["position"],
                p["code"].as_str().unwrap_or(""),
                p["message"].as_str().unwrap_or("")
            );
        }
        let task = &payload["task"];
        let c = &task["counters"];
        println!(
            "  task {}: {} {:>5.1}%  finished {}/{}  (succeeded {}, failed {}, cancelled {}, running {}, pending {})",
            task["id"].as_str().unwrap_or("?"),
            task["status"].as_str().unwrap_or("?"),
            task["progress"].as_f64().unwrap_or(0.0) * 100.0,
            c["finished"],
            c["total"],
            c["succeeded"],
            c["failed"],
            c["cancelled"],
            c["running"],
            c["pending"],
        );
    }
    if let Some(path) = ack_log {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("ack log: {e}"))?;
        file.write_all(acknowledged.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| format!("ack log: {e}"))?;
    }
    Ok(())
}
