//! Global ids: opaque, type-tagged, resolvable through `node(id:)`.

use async_graphql::ID;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::error::{AppError, bad_input};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    BulkTask,
    TaskItem,
    WebhookEndpoint,
    WebhookDelivery,
}

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Kind::BulkTask => "BulkTask",
            Kind::TaskItem => "TaskItem",
            Kind::WebhookEndpoint => "WebhookEndpoint",
            Kind::WebhookDelivery => "WebhookDelivery",
        }
    }
}

pub fn encode(kind: Kind, id: Uuid) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{}:{}", kind.tag(), id.simple())))
}

/// Reads any global id.
pub fn decode_any(id: &str) -> Result<(Kind, Uuid), AppError> {
    let malformed = || bad_input(format!("{id:?} is not a valid id"));
    let bytes = URL_SAFE_NO_PAD.decode(id).map_err(|_| malformed())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| malformed())?;
    let (tag, uuid) = text.split_once(':').ok_or_else(malformed)?;
    let kind = match tag {
        "BulkTask" => Kind::BulkTask,
        "TaskItem" => Kind::TaskItem,
        "WebhookEndpoint" => Kind::WebhookEndpoint,
        "WebhookDelivery" => Kind::WebhookDelivery,
        _ => return Err(malformed()),
    };
    let uuid = Uuid::try_parse(uuid).map_err(|_| malformed())?;
    Ok((kind, uuid))
}

/// Reads a global id that must be of `kind`.
pub fn decode(kind: Kind, id: &str) -> Result<Uuid, AppError> {
    match decode_any(id)? {
        (k, uuid) if k == kind => Ok(uuid),
        _ => Err(bad_input(format!("{id:?} is not a {} id", kind.tag()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_keep_their_type() {
        let uuid = Uuid::now_v7();
        let id = encode(Kind::TaskItem, uuid);
        assert_eq!(decode(Kind::TaskItem, &id).unwrap(), uuid);
        assert!(decode(Kind::BulkTask, &id).is_err());
        assert!(decode_any("nope").is_err());
    }
}
