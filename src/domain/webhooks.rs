//! Webhook endpoints of an organisation: create, change, rotate, delete,
//! and deliveries sent again or for a test. One transaction per function.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use entity::{webhook_delivery, webhook_endpoint};
use serde_json::json;
use uuid::Uuid;

use super::task_snapshot::rfc3339;
use super::webhook_urls;
use super::{Principal, now_ms};
use crate::error::{AppResult, bad_input, invalid_state, not_found};
use crate::store::webhook_deliveries::{self, NewDelivery};
use crate::store::{Db, webhooks};

/// What happened to a task that an endpoint may subscribe to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WebhookEvent {
    TaskFinished,
    TaskStatusChanged,
    TaskCreated,
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 3] = [
        WebhookEvent::TaskFinished,
        WebhookEvent::TaskStatusChanged,
        WebhookEvent::TaskCreated,
    ];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::TaskFinished => "TASK_FINISHED",
            WebhookEvent::TaskStatusChanged => "TASK_STATUS_CHANGED",
            WebhookEvent::TaskCreated => "TASK_CREATED",
        }
    }

    pub fn parse(text: &str) -> Option<WebhookEvent> {
        WebhookEvent::ALL.into_iter().find(|e| e.as_str() == text)
    }

    /// The `type` of the message body.
    pub fn message_type(self) -> &'static str {
        match self {
            WebhookEvent::TaskFinished => "bulk_task.finished",
            WebhookEvent::TaskStatusChanged => "bulk_task.status_changed",
            WebhookEvent::TaskCreated => "bulk_task.created",
        }
    }
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
    Retrying,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 4] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Succeeded,
        DeliveryStatus::Failed,
        DeliveryStatus::Retrying,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "PENDING",
            DeliveryStatus::Succeeded => "SUCCEEDED",
            DeliveryStatus::Failed => "FAILED",
            DeliveryStatus::Retrying => "RETRYING",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        DeliveryStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A fresh `webhook-id`.
pub fn message_id() -> String {
    format!("msg_{}", Uuid::now_v7().simple())
}

/// A fresh signing secret: `whsec_` and 32 random bytes in base64.
fn new_secret() -> String {
    let mut key = Vec::with_capacity(32);
    key.extend_from_slice(Uuid::new_v4().as_bytes());
    key.extend_from_slice(Uuid::new_v4().as_bytes());
    format!("whsec_{}", STANDARD.encode(key))
}

/// How long a rotated-out secret still signs.
pub const ROTATION_GRACE_MS: i64 = 24 * 3600 * 1000;

/// Most endpoints one organisation may have.
const MAX_ENDPOINTS: u64 = 100;

/// The events an endpoint subscribes to.
pub fn events_of(endpoint: &webhook_endpoint::Model) -> Vec<WebhookEvent> {
    endpoint
        .events
        .split(',')
        .filter_map(WebhookEvent::parse)
        .collect()
}

/// The task types an endpoint is limited to; `None` for all.
pub fn types_of(endpoint: &webhook_endpoint::Model) -> Option<Vec<String>> {
    endpoint
        .types
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
}

/// Whether `endpoint` wants `event` of a task of `task_type`.
pub fn subscribes(
    endpoint: &webhook_endpoint::Model,
    event: WebhookEvent,
    task_type: &str,
) -> bool {
    endpoint.enabled
        && events_of(endpoint).contains(&event)
        && types_of(endpoint).is_none_or(|types| types.iter().any(|t| t == task_type))
}

fn check_events(events: &[WebhookEvent]) -> AppResult<String> {
    if events.is_empty() {
        return Err(bad_input("`events` must name at least one event"));
    }
    let mut names: Vec<&str> = WebhookEvent::ALL
        .into_iter()
        .filter(|e| events.contains(e))
        .map(WebhookEvent::as_str)
        .collect();
    names.dedup();
    Ok(names.join(","))
}

fn check_types(types: Option<&[String]>) -> AppResult<Option<String>> {
    let Some(types) = types else { return Ok(None) };
    if types.is_empty() || types.len() > 100 || types.iter().any(|t| t.is_empty() || t.len() > 200)
    {
        return Err(bad_input(
            "`types` must list 1 to 100 task types of 1 to 200 bytes, or be null for all",
        ));
    }
    Ok(Some(serde_json::to_string(types)?))
}

fn check_description(description: Option<&str>) -> AppResult<()> {
    if description.is_some_and(|d| d.len() > 1000) {
        return Err(bad_input("`description` must be at most 1000 bytes"));
    }
    Ok(())
}

/// An endpoint as created: its only view of the secret.
pub struct WithSecret {
    pub endpoint: webhook_endpoint::Model,
    pub secret: String,
}

pub struct NewEndpoint {
    pub url: String,
    pub events: Vec<WebhookEvent>,
    pub types: Option<Vec<String>>,
    pub description: Option<String>,
}

pub async fn create(
    db: &Db,
    who: Principal,
    input: NewEndpoint,
    allow_private: bool,
) -> AppResult<WithSecret> {
    let url = webhook_urls::check(&input.url, allow_private)?;
    let events = check_events(&input.events)?;
    let types = check_types(input.types.as_deref())?;
    check_description(input.description.as_deref())?;
    let now = now_ms();
    let secret = new_secret();
    let endpoint = webhook_endpoint::Model {
        id: Uuid::now_v7(),
        organisation_id: who.organisation_id,
        url: url.to_string(),
        description: input.description,
        events,
        types,
        enabled: true,
        secret: secret.clone(),
        previous_secret: None,
        previous_secret_until: None,
        disabled_reason: None,
        failing_since: None,
        created_at: now,
        updated_at: now,
    };
    let tx = db.begin(who.organisation_id).await?;
    if webhooks::count(&tx).await? >= MAX_ENDPOINTS {
        return Err(crate::error::limit_exceeded(format!(
            "at most {MAX_ENDPOINTS} webhook endpoints per organisation"
        )));
    }
    webhooks::insert(&tx, endpoint.clone()).await?;
    tx.commit().await?;
    Ok(WithSecret { endpoint, secret })
}

/// A change to an endpoint: `None` leaves a field as it is; `types` and
/// `description` are `Some(None)` to clear them.
#[derive(Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub events: Option<Vec<WebhookEvent>>,
    pub types: Option<Option<Vec<String>>>,
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
}

pub async fn update(
    db: &Db,
    who: Principal,
    id: Uuid,
    change: EndpointChange,
    allow_private: bool,
) -> AppResult<webhook_endpoint::Model> {
    let tx = db.begin(who.organisation_id).await?;
    let mut endpoint = webhooks::lock(&tx, id)
        .await?
        .ok_or_else(|| not_found("webhook endpoint"))?;
    if let Some(url) = change.url {
        endpoint.url = webhook_urls::check(&url, allow_private)?.to_string();
    }
    if let Some(events) = change.events {
        endpoint.events = check_events(&events)?;
    }
    if let Some(types) = change.types {
        endpoint.types = check_types(types.as_deref())?;
    }
    if let Some(description) = change.description {
        check_description(description.as_deref())?;
        endpoint.description = description;
    }
    let now = now_ms();
    match change.enabled {
        Some(true) if !endpoint.enabled => {
            endpoint.enabled = true;
            endpoint.disabled_reason = None;
            endpoint.failing_since = None;
        }
        Some(false) if endpoint.enabled => {
            endpoint.enabled = false;
            endpoint.disabled_reason = Some("disabled by updateWebhookEndpoint".into());
            webhook_deliveries::fail_open(&tx, endpoint.id, "the endpoint was disabled").await?;
        }
        _ => {}
    }
    endpoint.updated_at = now;
    webhooks::save(&tx, &endpoint).await?;
    tx.commit().await?;
    Ok(endpoint)
}

pub async fn delete(db: &Db, who: Principal, id: Uuid) -> AppResult<()> {
    let tx = db.begin(who.organisation_id).await?;
    if !webhooks::delete(&tx, id).await? {
        return Err(not_found("webhook endpoint"));
    }
    tx.commit().await?;
    Ok(())
}

/// A new secret; the old one keeps signing (beside it) for a day, so that
/// receivers can switch without losing a delivery.
pub async fn rotate(db: &Db, who: Principal, id: Uuid) -> AppResult<WithSecret> {
    let tx = db.begin(who.organisation_id).await?;
    let mut endpoint = webhooks::lock(&tx, id)
        .await?
        .ok_or_else(|| not_found("webhook endpoint"))?;
    let now = now_ms();
    let secret = new_secret();
    endpoint.previous_secret = Some(std::mem::replace(&mut endpoint.secret, secret.clone()));
    endpoint.previous_secret_until = Some(now + ROTATION_GRACE_MS);
    endpoint.updated_at = now;
    webhooks::save(&tx, &endpoint).await?;
    tx.commit().await?;
    Ok(WithSecret { endpoint, secret })
}

/// Sends a delivery's message again, as a new delivery with the same
/// `webhook-id` and body (receivers that saw it drop it).
pub async fn redeliver(db: &Db, who: Principal, id: Uuid) -> AppResult<webhook_delivery::Model> {
    let tx = db.begin(who.organisation_id).await?;
    let original = webhook_deliveries::find(&tx, id)
        .await?
        .ok_or_else(|| not_found("webhook delivery"))?;
    let endpoint = webhooks::lock(&tx, original.endpoint_id)
        .await?
        .ok_or_else(|| not_found("webhook delivery"))?;
    if !endpoint.enabled {
        return Err(invalid_state("the endpoint is disabled; enable it first"));
    }
    let event = WebhookEvent::parse(&original.event).unwrap_or(WebhookEvent::TaskFinished);
    let row = NewDelivery {
        id: Uuid::now_v7(),
        endpoint_id: original.endpoint_id,
        message_id: original.message_id,
        event,
        task_id: original.task_id,
        task_version: original.task_version,
        body: original.body,
        status: DeliveryStatus::Pending,
        created_at: now_ms(),
    };
    let id = row.id;
    webhook_deliveries::insert(&tx, std::slice::from_ref(&row)).await?;
    let created = webhook_deliveries::find(&tx, id)
        .await?
        .ok_or_else(|| not_found("webhook delivery"))?;
    tx.commit().await?;
    Ok(created)
}

/// A signed message of type `webhook.test` about no task, recorded under
/// the endpoint's first event, so that a receiver can check its setup.
pub async fn send_test(db: &Db, who: Principal, id: Uuid) -> AppResult<webhook_delivery::Model> {
    let tx = db.begin(who.organisation_id).await?;
    let endpoint = webhooks::lock(&tx, id)
        .await?
        .ok_or_else(|| not_found("webhook endpoint"))?;
    if !endpoint.enabled {
        return Err(invalid_state("the endpoint is disabled; enable it first"));
    }
    let now = now_ms();
    let event = events_of(&endpoint)
        .first()
        .copied()
        .unwrap_or(WebhookEvent::TaskFinished);
    let body = json!({
        "type": "webhook.test",
        "timestamp": rfc3339(now),
        "data": { "endpointId": crate::graphql::ids::encode(crate::graphql::ids::Kind::WebhookEndpoint, endpoint.id).0 },
    });
    let row = NewDelivery {
        id: Uuid::now_v7(),
        endpoint_id: endpoint.id,
        message_id: message_id(),
        event,
        task_id: None,
        task_version: 0,
        body: body.to_string(),
        status: DeliveryStatus::Pending,
        created_at: now,
    };
    webhook_deliveries::insert(&tx, std::slice::from_ref(&row)).await?;
    let created = webhook_deliveries::find(&tx, row.id)
        .await?
        .ok_or_else(|| not_found("webhook delivery"))?;
    tx.commit().await?;
    Ok(created)
}
