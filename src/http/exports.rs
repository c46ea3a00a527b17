//! `GET /exports/{taskId}.csv|.ndjson`: a task's items as a file, streamed
//! a page at a time so that memory stays flat however many items there are.
//! The link's signature, not an API key, says who may download it.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{SecondsFormat, TimeZone, Utc};
use entity::task_item;
use futures_util::stream;
use uuid::Uuid;

use super::Http;
use crate::domain::exports::{ExportFormat, ExportGrant};
use crate::domain::status::ItemStatus;
use crate::error::{AppError, AppResult, not_found};
use crate::graphql::ids::{self, Kind};
use crate::store::{Db, items, tasks};

/// Positions read and written per step: the most the stream holds at once.
const PAGE: i32 = 1_000;

const COLUMNS: [&str; 10] = [
    "index",
    "clientItemId",
    "status",
    "attempts",
    "errorCode",
    "errorMessage",
    "errorDetails",
    "payload",
    "result",
    "updatedAt",
];

fn forbidden() -> AppError {
    AppError::Forbidden("the export link is not valid".into())
}

/// The grant a link names, before its signature is checked. Anything
/// malformed is a link that was not made here: 403 like a bad signature.
fn grant_of(file: &str, query: &HashMap<String, String>) -> AppResult<(ExportGrant, String)> {
    let (id, ext) = file.rsplit_once('.').ok_or_else(|| not_found("export"))?;
    let format = ExportFormat::from_extension(ext).ok_or_else(|| not_found("export"))?;
    let task_id = ids::decode(Kind::BulkTask, id).map_err(|_| forbidden())?;
    let param = |name: &str| query.get(name).ok_or_else(forbidden);
    let organisation_id = Uuid::try_parse(param("org")?).map_err(|_| forbidden())?;
    let expires = param("expires")?.parse::<i64>().map_err(|_| forbidden())?;
    let statuses = match query.get("status").map(String::as_str) {
        None | Some("") => Vec::new(),
        Some(list) => list
            .split(',')
            .map(parse_status)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(forbidden)?,
    };
    let grant = ExportGrant {
        organisation_id,
        task_id,
        format,
        statuses: ExportGrant::canonical_statuses(statuses),
        expires,
    };
    Ok((grant, param("sig")?.clone()))
}

fn parse_status(name: &str) -> Option<ItemStatus> {
    use sea_orm::Iterable;
    ItemStatus::iter().find(|s| s.as_str() == name)
}

pub(super) async fn export(
    State(http): State<Http>,
    Path(file): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> AppResult<Response> {
    let (grant, signature) = grant_of(&file, &query)?;
    http.app.signer.verify(&grant, &signature)?;
    let db = http.app.db.clone();
    let task = tasks::find(&db.reader(grant.organisation_id).await?, grant.task_id)
        .await?
        .ok_or_else(|| not_found("task"))?;
    let (content_type, name) = match grant.format {
        ExportFormat::Csv => ("text/csv; charset=utf-8; header=present", "csv"),
        ExportFormat::Ndjson => ("application/x-ndjson", "ndjson"),
    };
    let disposition = format!("attachment; filename=\"{}-items.{name}\"", task.id);
    // Items appended after this moment are not part of the file.
    let body = Body::from_stream(pages(db, grant, task.total));
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        body,
    )
        .into_response())
}

/// Where the stream is: the next position to read, and whether the CSV
/// header is still to be written.
struct Cursor {
    next: i32,
    header: bool,
}

/// The file, one chunk per window of positions that holds matching items;
/// each window is read in a transaction of its own, so a long download
/// holds no database resources.
fn pages(
    db: Db,
    grant: ExportGrant,
    total: i32,
) -> impl futures_util::Stream<Item = AppResult<Bytes>> {
    let start = Cursor {
        next: 0,
        header: grant.format == ExportFormat::Csv,
    };
    stream::try_unfold(start, move |mut cursor| {
        let (db, grant) = (db.clone(), grant.clone());
        async move {
            let mut chunk = Vec::new();
            if std::mem::take(&mut cursor.header) {
                chunk = csv_chunk(&[], true)?;
            }
            while chunk.is_empty() && cursor.next < total {
                let to = cursor.next.saturating_add(PAGE).min(total);
                let reader = db.reader(grant.organisation_id).await?;
                let rows =
                    items::export_page(&reader, grant.task_id, &grant.statuses, cursor.next, to)
                        .await?;
                drop(reader);
                cursor.next = to;
                chunk = match grant.format {
                    ExportFormat::Csv => csv_chunk(&rows, false)?,
                    ExportFormat::Ndjson => ndjson_chunk(&rows),
                };
            }
            if chunk.is_empty() {
                return Ok(None);
            }
            Ok(Some((Bytes::from(chunk), cursor)))
        }
    })
}

fn updated_at(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// RFC 4180: comma-separated, CRLF line ends, fields with quotes, commas or
/// line breaks quoted. JSON columns hold the stored JSON text.
fn csv_chunk(rows: &[task_item::Model], header: bool) -> AppResult<Vec<u8>> {
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(rows.len() * 200));
    let failed = |e: csv::Error| AppError::Internal(format!("writing csv: {e}"));
    if header {
        out.write_record(COLUMNS).map_err(failed)?;
    }
    for item in rows {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        out.write_record([
            item.idx.to_string(),
            text(&item.client_item_id),
            item.status.as_str().to_owned(),
            item.attempts.to_string(),
            text(&item.error_code),
            text(&item.error_message),
            text(&item.error_details),
            text(&item.payload),
            text(&item.result),
            updated_at(item.updated_at),
        ])
        .map_err(failed)?;
    }
    out.into_inner()
        .map_err(|e| AppError::Internal(format!("writing csv: {e}")))
}

/// One JSON object per line; the JSON columns are written as the JSON they
/// hold, not as strings.
fn ndjson_chunk(rows: &[task_item::Model]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * 200);
    let string = |out: &mut Vec<u8>, v: Option<&str>| match v {
        Some(s) => serde_json::to_writer(&mut *out, s).expect("a string serialises"),
        None => out.extend_from_slice(b"null"),
    };
    let raw = |out: &mut Vec<u8>, v: &Option<String>| {
        out.extend_from_slice(v.as_deref().unwrap_or("null").as_bytes())
    };
    for item in rows {
        out.extend_from_slice(format!("{{\"index\":{},\"clientItemId\":", item.idx).as_bytes());
        string(&mut out, item.client_item_id.as_deref());
        out.extend_from_slice(
            format!(
                ",\"status\":\"{}\",\"attempts\":{},\"errorCode\":",
                item.status.as_str(),
                item.attempts
            )
            .as_bytes(),
        );
        string(&mut out, item.error_code.as_deref());
        out.extend_from_slice(b",\"errorMessage\":");
        string(&mut out, item.error_message.as_deref());
        out.extend_from_slice(b",\"errorDetails\":");
        raw(&mut out, &item.error_details);
        out.extend_from_slice(b",\"payload\":");
        raw(&mut out, &item.payload);
        out.extend_from_slice(b",\"result\":");
        raw(&mut out, &item.result);
        out.extend_from_slice(
            format!(",\"updatedAt\":\"{}\"}}\n", updated_at(item.updated_at)).as_bytes(),
        );
    }
    out
}
