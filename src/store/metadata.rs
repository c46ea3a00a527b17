//! Metadata filters: "every key and value of this object is in the task's
//! metadata", nested objects matching as subsets.
//!
//! On PostgreSQL that is jsonb containment (`@>`), answered by the GIN index
//! on the metadata as jsonb through a function of migration 000005 (under
//! row-level security a plain `@>` in the query would be checked row by row
//! after the policy, since it is not leakproof). SQLite has no such index: each leaf of the
//! filter becomes a `json_type`/`json_extract` test on the rows the other
//! conditions leave (the organisation's tasks, at worst).

use migration::METADATA_FUNCTION;
use sea_orm::sea_query::Expr;
use sea_orm::{Condition, DbBackend};
use serde_json::Value;

use crate::domain::admission::MAX_JSON_BYTES;
use crate::error::{AppResult, bad_input, limit_exceeded};

/// Most scalar values one filter may name.
const MAX_LEAVES: usize = 32;

/// Refuses what the two backends would not answer alike: only objects and
/// scalars (containment of arrays differs), keys without `"` or `\`.
pub fn check(subset: &Value) -> AppResult<()> {
    if !subset.is_object() {
        return Err(bad_input("the `metadata` filter must be a JSON object"));
    }
    if serde_json::to_string(subset)?.len() > MAX_JSON_BYTES {
        return Err(limit_exceeded(
            "the `metadata` filter is larger than 64 KiB",
        ));
    }
    let mut leaves = Vec::new();
    collect(subset, "$", &mut leaves)?;
    if leaves.len() > MAX_LEAVES {
        return Err(limit_exceeded(format!(
            "at most {MAX_LEAVES} values in a `metadata` filter"
        )));
    }
    Ok(())
}

/// The filter's leaves as (SQLite JSON path, value); an empty nested object
/// is a leaf that asks for an object there.
fn collect<'a>(value: &'a Value, path: &str, out: &mut Vec<(String, &'a Value)>) -> AppResult<()> {
    match value {
        Value::Object(map) if map.is_empty() && path != "$" => out.push((path.to_owned(), value)),
        Value::Object(map) => {
            for (key, v) in map {
                if key.contains('"') || key.contains('\\') {
                    return Err(bad_input(
                        "`metadata` filter keys must not contain `\"` or `\\`",
                    ));
                }
                collect(v, &format!("{path}.\"{key}\""), out)?;
            }
        }
        Value::Array(_) => {
            return Err(bad_input(
                "a `metadata` filter matches objects and scalars, not arrays",
            ));
        }
        scalar => out.push((path.to_owned(), scalar)),
    }
    Ok(())
}

/// The condition that the task's metadata contains `subset` (checked).
pub(super) fn contains(backend: DbBackend, subset: &Value) -> Condition {
    if backend == DbBackend::Postgres {
        // sea-query numbers PostgreSQL's custom placeholders itself.
        return Condition::all().add(Expr::cust_with_values(
            format!("id IN (SELECT {METADATA_FUNCTION}(CAST($1 AS jsonb)))"),
            [subset.to_string()],
        ));
    }
    let mut leaves = Vec::new();
    // Checked before: a filter that fails here matches nothing.
    if collect(subset, "$", &mut leaves).is_err() {
        return Condition::all().add(Expr::cust("0 = 1"));
    }
    let mut c = Condition::all();
    for (path, value) in leaves {
        let typed = |types: &str| {
            Expr::cust_with_values(
                format!("json_type(metadata, ?) IN ({types})"),
                [path.clone()],
            )
        };
        let equal = |v: sea_orm::Value| {
            Expr::cust_with_values("json_extract(metadata, ?) = ?", [path.clone().into(), v])
        };
        c = match value {
            Value::Null => c.add(typed("'null'")),
            Value::Bool(true) => c.add(typed("'true'")),
            Value::Bool(false) => c.add(typed("'false'")),
            Value::String(s) => c.add(typed("'text'")).add(equal(s.clone().into())),
            Value::Number(n) => {
                let v: sea_orm::Value = match n.as_i64() {
                    Some(i) => i.into(),
                    None => n.as_f64().unwrap_or(f64::NAN).into(),
                };
                c.add(typed("'integer', 'real'")).add(equal(v))
            }
            Value::Object(_) => c.add(typed("'object'")),
            Value::Array(_) => c.add(Expr::cust("0 = 1")),
        };
    }
    c
}
