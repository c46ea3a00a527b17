//! Small requests that passed validation before, and what they cost.
//!
//! Validation is a function of the document, the operation and the
//! variables' values, and is about a tenth of a poll's CPU. A client polling
//! a task sends the same small request again and again; once it validated,
//! the same request runs on a schema that skips the validation rules and
//! only measures depth and complexity against their limits. Requests with
//! large variables (a batch of outcomes) are not remembered: their key would
//! cost what it saves.

use std::sync::Arc;

use async_graphql::{Request, Value};
use moka::sync::Cache;

/// Requests with at most this many values in their variables are remembered.
const SMALL_VARIABLES: usize = 16;

/// Query texts, operations and variables of at most this many bytes in all.
const CAPACITY_BYTES: u64 = 4 * 1024 * 1024;

/// A request's query text, and its operation name and variables as text.
pub type Key = (Arc<str>, String);

/// Validated small requests, with the complexity the gate measured when the
/// organisation's budget was charged.
#[derive(Clone)]
pub struct Validated(Cache<Key, Option<usize>>);

impl Default for Validated {
    fn default() -> Self {
        Validated(
            Cache::builder()
                .weigher(|(query, rest): &Key, _| {
                    u32::try_from(query.len() + rest.len()).unwrap_or(u32::MAX)
                })
                .max_capacity(CAPACITY_BYTES)
                .build(),
        )
    }
}

impl Validated {
    /// The key of a small request; none for one with large variables.
    pub fn key(request: &Request) -> Option<Key> {
        let mut budget = SMALL_VARIABLES;
        if !request.variables.values().all(|v| small(v, &mut budget)) {
            return None;
        }
        let variables = serde_json::to_string(&request.variables).ok()?;
        let name = request.operation_name.as_deref().unwrap_or("");
        Some((
            Arc::from(request.query.as_str()),
            format!("{name}\n{variables}"),
        ))
    }

    /// `Some` when the request validated before; inside, its complexity if
    /// the gate measured it.
    pub fn get(&self, key: &Key) -> Option<Option<usize>> {
        self.0.get(key)
    }

    pub fn insert(&self, key: Key, complexity: Option<usize>) {
        self.0.insert(key, complexity);
    }
}

fn small(value: &Value, budget: &mut usize) -> bool {
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    match value {
        Value::List(items) => items.iter().all(|v| small(v, budget)),
        Value::Object(fields) => fields.values().all(|v| small(v, budget)),
        _ => true,
    }
}
