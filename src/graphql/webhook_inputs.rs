//! Inputs of the webhook mutations.

use async_graphql::{ID, InputObject};

/// A new webhook endpoint.
#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    /// Where to POST: an http(s) URL.
    pub url: String,
    /// The events to send (at least one).
    pub events: Vec<super::enums::WebhookEvent>,
    /// Only tasks of these types; null for every type.
    pub types: Option<Vec<String>>,
    /// Free text for people.
    pub description: Option<String>,
}

impl From<CreateWebhookEndpointInput> for crate::domain::webhooks::NewEndpoint {
    fn from(i: CreateWebhookEndpointInput) -> Self {
        crate::domain::webhooks::NewEndpoint {
            url: i.url,
            events: i.events.into_iter().map(Into::into).collect(),
            types: i.types,
            description: i.description,
        }
    }
}

/// A change to a webhook endpoint: omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateWebhookEndpointInput {
    /// The endpoint's global id.
    pub id: ID,
    /// A new URL.
    pub url: Option<String>,
    /// A new list of events.
    pub events: Option<Vec<super::enums::WebhookEvent>>,
    /// A new list of task types; null for every type.
    pub types: async_graphql::MaybeUndefined<Vec<String>>,
    /// A new description; null clears it.
    pub description: async_graphql::MaybeUndefined<String>,
    /// Enable (clears `disabledReason`) or disable (gives up deliveries still to be sent).
    pub enabled: Option<bool>,
}

impl From<UpdateWebhookEndpointInput> for crate::domain::webhooks::EndpointChange {
    fn from(i: UpdateWebhookEndpointInput) -> Self {
        crate::domain::webhooks::EndpointChange {
            url: i.url,
            events: i.events.map(|e| e.into_iter().map(Into::into).collect()),
            types: i.types.as_opt_ref().map(|t| t.cloned()),
            description: i.description.as_opt_ref().map(|d| d.cloned()),
            enabled: i.enabled,
        }
    }
}
