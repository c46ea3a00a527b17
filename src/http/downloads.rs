//! Files a browser or `curl` downloads: the failure report.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::{Http, authenticate};
use crate::domain::keys::Scope;
use crate::error::{AppResult, bad_input, not_found};
use crate::graphql::ids::{self, Kind};
use crate::store::items;

/// FAILED and REJECTED items of a task as NDJSON.
pub(super) async fn failure_report(
    State(http): State<Http>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let who = authenticate(&http, &headers)
        .await?
        .require(Scope::TasksRead)?;
    let task_id = ids::decode(Kind::BulkTask, &id).map_err(|_| bad_input("not a task id"))?;
    let db = http.app.db.reader(who.organisation_id).await?;
    let body = items::failures_ndjson(&db, task_id)
        .await?
        .ok_or_else(|| not_found("task"))?;
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}
